//! The seed's scenario matrix end to end (domain.md §3): two real agents, "core" and "edge", each
//! on its own temp ROOT and free loopback ports, with real TLS between them; every mode flip and
//! store replacement goes through `xsh` while both agents run. Plus OpenSSL as a peer in both
//! directions, and resumption across a mode switch (issue 4 item 5).
//!
//! The role rule is shown capture-free: what the TLS server saw presented as client (its
//! `LastAccepted` / `handshakes.log`) is the client store's serial, and what the TLS client saw as
//! server (zone `PeerSerial`) is the server store's serial.
//!
//! Nothing here asserts on timing: conditions are polled up to a generous deadline.

mod agent_support;

use std::io::Write;
use std::process::{Command, Stdio};

use agent_support::*;
use xsh::certs::pki::LeafEku;

fn active(z: &Zone) -> bool {
    z.status == "Active" && z.tunnel_status == "Active"
}

/// Test case 1 and Test case 2: every certificate from CA2 (serverAuth-only); edge's mode On →
/// zone Failed naming the EKU; edge's mode Off (through xsh) → zone Active, tunnel still Failed
/// ("Permission denied") because tunnels always require clientAuth.
#[test]
fn test_case_1_and_2_serverauth_only_client_cert() {
    let pki = Pki::new();
    let mut core = Node::new("core");
    let mut edge = Node::new("edge");
    let core_cert = pki.issue(false, "core ca2 serverAuth", LeafEku::ServerAuth);
    let edge_cert = pki.issue(false, "edge ca2 serverAuth", LeafEku::ServerAuth);
    for (n, c) in [(&core, &core_cert), (&edge, &edge_cert)] {
        n.ca_add(&pki.ca2_root());
        // The escape hatch: the serverAuth-only certificate goes into both stores.
        n.upload_server(c, true);
    }
    // A serverAuth-only certificate is refused by the client store on its own.
    let refused = core.xsh(&[&format!(
        "xCommand Security Certificates Client Upload CertificateFile: \"{}\" KeyFile: \"{}\"",
        core_cert.chain.display(),
        core_cert.key.display()
    )]);
    assert!(!refused.ok, "client upload of serverAuth-only accepted: {refused:?}");
    assert!(
        refused.stdout.contains("client usage attribute"),
        "{}",
        refused.stdout
    );
    core.start();
    edge.start();
    assert_eq!(edge.status_leaf("SIP TLS Listener Mode"), "On");
    core.zone_to(1, "TraversalClient", edge.sip_port, edge.tunnel_port, true);

    // Test case 1: mode On at edge.
    let z = core.wait_zone(1, "Failed naming the EKU", |z| {
        z.status == "Failed" && z.reason.contains("clientAuth") && z.tunnel_status == "Failed"
    });
    eprintln!("Test case 1: {z}");
    assert!(z.reason.contains(&core_cert.serial), "{z}");
    assert!(z.tunnel_reason.contains("Permission denied"), "{z}");
    assert_eq!(z.presented_serial, core_cert.serial, "{z}");
    // The TLS server saw the client store's certificate and says why it refused it.
    let rej = wait_for("edge LastRejection of core's cert", || {
        let r = edge.status_leaf("SIP TLS Listener LastRejection");
        if r.contains("lacks clientAuth EKU") && r.contains("Mode is On") {
            Ok(r)
        } else {
            Err(r)
        }
    });
    eprintln!("Test case 1 edge LastRejection: {rej}");
    assert_eq!(serial_in(&rej).as_deref(), Some(core_cert.serial.as_str()));
    assert_ne!(edge.status_leaf("SIP TLS Listener RejectedEku"), "0");

    // Test case 2: edge turns checking Off through xsh while both run.
    edge.set_mode("Off");
    let z = core.wait_zone(1, "Active with tunnel Failed", |z| {
        z.status == "Active" && z.tunnel_status == "Failed"
    });
    eprintln!("Test case 2: {z}");
    assert!(z.tunnel_reason.contains("Permission denied"), "{z}");
    // Role rule: edge's server store went out to core, core's client store to edge.
    assert_eq!(z.peer_serial, edge_cert.serial, "{z}");
    assert_eq!(z.peer_serial, edge.store_serial("Server"));
    let acc = edge.status_leaf("SIP TLS Listener LastAccepted");
    assert_eq!(serial_in(&acc), Some(core.store_serial("Client")), "{acc}");
    let trej = edge.status_leaf("Tunnel Listener LastRejection");
    assert!(
        trej.contains("lacks clientAuth EKU") && trej.contains("tunnel"),
        "{trej}"
    );
    let log = edge.handshakes();
    let rec = find_handshake(&log, "sip", "accepted", &core_cert.serial).expect("accepted record");
    assert_eq!(rec["mode"], "Off", "{rec}");
    assert_eq!(rec["sent_server_serial"], edge_cert.serial.as_str(), "{rec}");
    assert!(find_handshake(&log, "tunnel", "rejected", &core_cert.serial).is_some());

    // Back to On: Failed again.
    edge.set_mode("On");
    let z = core.wait_zone(1, "Failed again under On", |z| z.status == "Failed");
    assert!(z.reason.contains("clientAuth"), "{z}");
}
