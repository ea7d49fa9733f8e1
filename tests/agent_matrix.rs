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

/// Condition 2.1: core's client store from private CA1 with both EKUs (uploaded through xsh while
/// both run, replacing the serverAuth-only copy) → zone and tunnel Active in On and in Off. Core's
/// server store stays CA2 serverAuth-only, so the two roles present different serials.
#[test]
fn condition_2_1_private_client_cert_active_in_either_mode() {
    let pki = Pki::new();
    let mut core = Node::new("core");
    let mut edge = Node::new("edge");
    let core_srv = pki.issue(false, "core ca2 server", LeafEku::ServerAuth);
    let edge_srv = pki.issue(false, "edge ca2 server", LeafEku::ServerAuth);
    for (n, c) in [(&core, &core_srv), (&edge, &edge_srv)] {
        n.ca_add(&pki.ca2_root());
        n.upload_server(c, true);
    }
    core.start();
    edge.start();
    core.zone_to(1, "TraversalClient", edge.sip_port, edge.tunnel_port, true);
    core.wait_zone(1, "Failed (Test case 1 before the fix)", |z| {
        z.status == "Failed"
    });

    // The fix, through xsh while both run: edge trusts CA1, core's client store gets a CA1 cert.
    let core_cli = pki.issue(true, "core ca1 client both", LeafEku::Both);
    edge.ca_add(&pki.ca1_root());
    core.upload_client(&core_cli);
    assert_eq!(core.store_serial("Client"), core_cli.serial);
    assert_eq!(core.store_serial("Server"), core_srv.serial);
    for mode in ["On", "Off"] {
        let before = core.zone(1).last_check;
        edge.set_mode(mode);
        // A SIP and a tunnel handshake accepted by edge under this mode's generation.
        let gen = wait_for(&format!("edge accepts core's CA1 client cert in {mode}"), || {
            let log = edge.handshakes();
            let sip = log.iter().rev().find(|r| {
                r["listener"] == "sip"
                    && r["decision"] == "accepted"
                    && r["mode"] == mode
                    && r["presented_by_peer"].as_str().and_then(serial_in)
                        == Some(core_cli.serial.clone())
            });
            let Some(sip) = sip else {
                return Err(format!("{} records, none accepted in {mode}", log.len()));
            };
            let g = sip["generation"].as_u64().unwrap_or(0);
            let tunnel = log.iter().any(|r| {
                r["listener"] == "tunnel"
                    && r["decision"] == "accepted"
                    && r["generation"].as_u64() >= Some(g)
                    && r["presented_by_peer"].as_str().and_then(serial_in)
                        == Some(core_cli.serial.clone())
            });
            if tunnel {
                Ok(g)
            } else {
                Err(format!("sip accepted in generation {g}, no tunnel yet"))
            }
        });
        let z = core.wait_zone(1, &format!("Active/Active in {mode}"), |z| {
            active(z) && z.last_check > before
        });
        eprintln!("Condition 2.1, edge mode {mode} (edge generation {gen}): {z}");
        // Role rule: core presented its client store as TLS client, edge its server store.
        assert_eq!(z.presented_serial, core_cli.serial, "{z}");
        assert_ne!(z.presented_serial, core_srv.serial, "{z}");
        assert_eq!(z.peer_serial, edge.store_serial("Server"), "{z}");
        let acc = edge.status_leaf("SIP TLS Listener LastAccepted");
        assert_eq!(serial_in(&acc), Some(core.store_serial("Client")), "{acc}");
        let tacc = edge.status_leaf("Tunnel Listener LastAccepted");
        assert_eq!(serial_in(&tacc), Some(core_cli.serial.clone()), "{tacc}");
    }
}

/// Condition 3: everything from private CA1 with both EKUs, zones in both directions → Active;
/// edge drops CA1 from its trusted list (through xsh) → both zones Failed with a reason that names
/// the trust problem; edge adds it back → Active again.
#[test]
fn condition_3_all_private_ca1() {
    let pki = Pki::new();
    let mut core = Node::new("core");
    let mut edge = Node::new("edge");
    let mut certs = Vec::new();
    for n in [&core, &edge] {
        let srv = pki.issue(true, &format!("{} ca1 server", n.name), LeafEku::Both);
        let cli = pki.issue(true, &format!("{} ca1 client", n.name), LeafEku::Both);
        n.ca_add(&pki.ca1_root());
        n.upload_server(&srv, false);
        n.upload_client(&cli);
        certs.push((srv, cli));
    }
    let (core_srv, core_cli) = certs[0].clone();
    let (edge_srv, edge_cli) = certs[1].clone();
    core.start();
    edge.start();
    core.zone_to(1, "TraversalClient", edge.sip_port, edge.tunnel_port, true);
    edge.zone_to(1, "Neighbor", core.sip_port, core.tunnel_port, true);
    let zc = core.wait_zone(1, "Active/Active", active);
    let ze = edge.wait_zone(1, "Active/Active", active);
    eprintln!("Condition 3 trusted: core->edge {zc}\n  edge->core {ze}");
    // Role rule in both directions.
    assert_eq!(zc.presented_serial, core_cli.serial);
    assert_eq!(zc.peer_serial, edge_srv.serial);
    assert_eq!(ze.presented_serial, edge_cli.serial);
    assert_eq!(ze.peer_serial, core_srv.serial);
    let rec = find_handshake(&edge.handshakes(), "sip", "accepted", &core_cli.serial)
        .cloned()
        .expect("edge accepted core's client cert");
    assert_eq!(rec["sent_server_serial"], edge_srv.serial.as_str(), "{rec}");
    let rec = find_handshake(&core.handshakes(), "sip", "accepted", &edge_cli.serial)
        .cloned()
        .expect("core accepted edge's client cert");
    assert_eq!(rec["sent_server_serial"], core_srv.serial.as_str(), "{rec}");

    // Edge no longer trusts CA1.
    edge.ok(&["xCommand Security Certificates CA Remove Subject: \"CN=xsh test private CA1\""]);
    let zc = core.wait_zone(1, "Failed: edge rejects core's client cert", |z| {
        z.status == "Failed" && z.tunnel_status == "Failed"
    });
    eprintln!("Condition 3 edge lacks CA1: core->edge {zc}");
    assert!(
        zc.reason.contains("peer rejected this node's client certificate")
            && zc.reason.contains(&core_cli.serial),
        "{zc}"
    );
    let rej = wait_for("edge LastRejection names the untrusted issuer", || {
        let r = edge.status_leaf("SIP TLS Listener LastRejection");
        if r.contains(&core_cli.serial) && r.contains("trusted CA") {
            Ok(r)
        } else {
            Err(r)
        }
    });
    eprintln!("  edge LastRejection: {rej}");
    assert!(rej.contains("xsh test private CA1"), "{rej}");
    assert_ne!(edge.status_leaf("SIP TLS Listener RejectedChain"), "0");
    let ze = edge.wait_zone(1, "Failed: edge does not trust core's server cert", |z| {
        z.status == "Failed"
    });
    eprintln!("  edge->core {ze}");
    assert!(ze.reason.contains("not trusted"), "{ze}");

    // Trust restored.
    edge.ca_add(&pki.ca1_root());
    core.wait_zone(1, "Active/Active again", active);
    edge.wait_zone(1, "Active/Active again", active);
}

/// Condition 4: edge's server certificate from CA2 (serverAuth-only) copied to its client store
/// (AlsoAsClient); core all CA1. Core→edge works; edge as TLS client to core fails while core
/// checks clientAuth (On) and works once core turns checking Off (the tunnel still needs it).
#[test]
fn condition_4_edge_as_tls_client_with_serverauth_only_copy() {
    let pki = Pki::new();
    let mut core = Node::new("core");
    let mut edge = Node::new("edge");
    let core_cert = pki.issue(true, "core ca1 both", LeafEku::Both);
    let edge_cert = pki.issue(false, "edge ca2 serverAuth", LeafEku::ServerAuth);
    for n in [&core, &edge] {
        n.ca_add(&pki.ca1_root());
        n.ca_add(&pki.ca2_root());
    }
    core.upload_server(&core_cert, true);
    edge.upload_server(&edge_cert, true);
    assert_eq!(edge.status_leaf("Security Certificates Client SameAsServer"), "True");
    core.start();
    edge.start();
    core.zone_to(1, "TraversalClient", edge.sip_port, edge.tunnel_port, true);
    edge.zone_to(1, "Neighbor", core.sip_port, core.tunnel_port, true);

    let zc = core.wait_zone(1, "core->edge Active/Active", active);
    eprintln!("Condition 4 core->edge: {zc}");
    let ze = edge.wait_zone(1, "edge->core Failed (core checks clientAuth)", |z| {
        z.status == "Failed" && z.reason.contains("clientAuth")
    });
    eprintln!("Condition 4 edge->core, core On: {ze}");
    assert_eq!(ze.presented_serial, edge_cert.serial, "{ze}");
    let rej = wait_for("core LastRejection of edge's cert", || {
        let r = core.status_leaf("SIP TLS Listener LastRejection");
        if serial_in(&r) == Some(edge_cert.serial.clone()) && r.contains("lacks clientAuth EKU") {
            Ok(r)
        } else {
            Err(r)
        }
    });
    eprintln!("  core LastRejection: {rej}");

    core.set_mode("Off");
    let ze = edge.wait_zone(1, "edge->core Active once core checks Off", |z| {
        z.status == "Active"
    });
    eprintln!("Condition 4 edge->core, core Off: {ze}");
    assert_eq!(ze.tunnel_status, "Failed", "{ze}");
    assert!(ze.tunnel_reason.contains("Permission denied"), "{ze}");
    // Role rule: the copy in edge's client store went out as client; core's server store as server.
    let acc = core.status_leaf("SIP TLS Listener LastAccepted");
    assert_eq!(serial_in(&acc), Some(edge.store_serial("Client")), "{acc}");
    assert_eq!(ze.peer_serial, core.store_serial("Server"), "{ze}");
    // Core→edge is unaffected.
    core.wait_zone(1, "core->edge still Active", active);
}

/// Fresh roots right after the migration: both stores hold the same default certificate, and that
/// one serial goes out in both roles (as TLS client in the zone, as TLS server on the listener).
#[test]
fn fresh_roots_same_serial_in_both_roles() {
    let mut core = Node::new("core");
    let mut edge = Node::new("edge");
    for n in [&core, &edge] {
        assert_eq!(n.store_serial("Client"), n.store_serial("Server"));
        assert_eq!(n.status_leaf("Security Certificates Client SameAsServer"), "True");
    }
    // Each trusts the other's default (self-signed) certificate.
    core.ca_add(&edge.certs().join("server.pem"));
    edge.ca_add(&core.certs().join("server.pem"));
    let (sc, se) = (core.store_serial("Server"), edge.store_serial("Server"));
    core.start();
    edge.start();
    // The default certificate names the host only, not 127.0.0.1: the peer's name is not checked
    // here (TLS Verify Mode Off); the peer still checks this node's client certificate.
    core.zone_to(1, "TraversalClient", edge.sip_port, edge.tunnel_port, false);
    edge.zone_to(1, "Neighbor", core.sip_port, core.tunnel_port, false);
    let zc = core.wait_zone(1, "Active/Active", active);
    let ze = edge.wait_zone(1, "Active/Active", active);
    eprintln!("fresh roots: core->edge {zc}\n  edge->core {ze}");
    assert_eq!(zc.presented_serial, sc);
    assert_eq!(ze.peer_serial, sc);
    assert_eq!(ze.presented_serial, se);
    assert_eq!(zc.peer_serial, se);
    let rec = find_handshake(&edge.handshakes(), "sip", "accepted", &sc)
        .cloned()
        .expect("edge accepted core's certificate");
    assert_eq!(rec["sent_server_serial"], se.as_str());
    let rec = find_handshake(&core.handshakes(), "sip", "accepted", &se)
        .cloned()
        .expect("core accepted edge's certificate");
    assert_eq!(rec["sent_server_serial"], sc.as_str());
}
