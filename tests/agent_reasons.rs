//! Honest zone and tunnel reasons (issue 10 item 7), with the real agent: a closed loopback
//! port is "connection refused", a name under `.invalid` does not resolve (refused without a
//! lookup, so no query leaves the machine), a peer that accepts TCP and closes "closed" (or "reset") the
//! connection, and a peer that refuses the client certificate for its issuer says so. None of
//! these is "Permission denied" (the seed's word for the EKU refusal of a tunnel, pinned in
//! tests/agent_matrix.rs), and `PresentedSerial` is set only when the client store's certificate
//! went out in a handshake. Nothing here asserts on timing: status is polled to a deadline.

mod agent_support;

use std::net::TcpListener;

use agent_support::*;

fn failed(z: &Zone) -> bool {
    z.status == "Failed" && z.tunnel_status == "Failed"
}

#[test]
fn zone_reasons_say_what_happened() {
    let pki = Pki::new();
    let mut core = Node::new("core");
    let mut edge = Node::new("edge");
    // A peer that accepts TCP and closes at once, before any TLS.
    let closer = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closer_port = closer.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in closer.incoming() {
            drop(c);
        }
    });
    edge.start();
    let closed = free_port();
    core.zone_to(1, "Neighbor", closed, closed, false);
    core.zone_to(2, "Neighbor", 5061, 2222, false);
    core.ok(&["xConfiguration Zones Zone 2 Neighbor Peer 1 Address: \"nonexistent.invalid\""]);
    core.zone_to(3, "Neighbor", closer_port, closer_port, false);
    // Edge trusts only its own default certificate: it refuses core's CA1 client certificate
    // for its issuer.
    core.upload_client(&pki.issue(true, "core ca1 client", xsh::certs::pki::LeafEku::Both));
    core.zone_to(4, "Neighbor", edge.sip_port, edge.tunnel_port, false);
    core.start();

    let z = core.wait_zone(1, "Failed (closed port)", failed);
    eprintln!("closed port: {z}");
    for r in [&z.reason, &z.tunnel_reason] {
        assert!(r.contains("connection refused by 127.0.0.1:"), "{z}");
        assert!(!r.contains("Permission denied"), "{z}");
    }
    assert_eq!(
        z.presented_serial, "",
        "no handshake, nothing presented: {z}"
    );

    let z = core.wait_zone(2, "Failed (.invalid)", failed);
    eprintln!(".invalid: {z}");
    for r in [&z.reason, &z.tunnel_reason] {
        assert!(
            r.contains("name 'nonexistent.invalid' does not resolve"),
            "{z}"
        );
        assert!(!r.contains("Permission denied"), "{z}");
    }
    assert_eq!(z.presented_serial, "", "{z}");

    let z = core.wait_zone(3, "Failed (peer closes)", failed);
    eprintln!("peer closes: {z}");
    for r in [&z.reason, &z.tunnel_reason] {
        // Closed or reset: which one depends on whether our ClientHello was read first.
        assert!(
            r.contains("peer closed the connection") || r.contains("peer reset the connection"),
            "{z}"
        );
        assert!(!r.contains("Permission denied"), "{z}");
    }
    assert_eq!(z.presented_serial, "", "{z}");

    let client_serial = core.store_serial("Client");
    let z = core.wait_zone(4, "Failed (peer refuses the issuer)", failed);
    eprintln!("refusing peer: {z}");
    for r in [&z.reason, &z.tunnel_reason] {
        assert!(
            r.contains("peer rejected this node's client certificate"),
            "{z}"
        );
        assert!(r.contains("does not trust its issuer"), "{z}");
        assert!(!r.contains("Permission denied"), "{z}");
    }
    assert_eq!(
        z.presented_serial, client_serial,
        "the certificate went out: {z}"
    );
    drop(core);
    drop(edge);
}
