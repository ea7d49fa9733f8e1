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

use agent_support::*;
use std::process::{Command, Stdio};
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
    assert!(
        !refused.ok,
        "client upload of serverAuth-only accepted: {refused:?}"
    );
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
    assert!(z.reason.contains("refused its extended key usage"), "{z}");
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
    edge.wait_serial_in(
        "SIP TLS Listener LastAccepted",
        &core.store_serial("Client"),
    );
    edge.wait_leaf("Tunnel Listener LastRejection", |r| {
        r.contains("lacks clientAuth EKU") && r.contains("tunnel")
    });
    let log = edge.handshakes();
    let rec = find_handshake(&log, "sip", "accepted", &core_cert.serial).expect("accepted record");
    assert_eq!(rec["mode"], "Off", "{rec}");
    assert_eq!(
        rec["sent_server_serial"],
        edge_cert.serial.as_str(),
        "{rec}"
    );
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
        let gen = wait_for(
            &format!("edge accepts core's CA1 client cert in {mode}"),
            || {
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
            },
        );
        let z = core.wait_zone(1, &format!("Active/Active in {mode}"), |z| {
            active(z) && z.last_check > before
        });
        eprintln!("Condition 2.1, edge mode {mode} (edge generation {gen}): {z}");
        // Role rule: core presented its client store as TLS client, edge its server store.
        assert_eq!(z.presented_serial, core_cli.serial, "{z}");
        assert_ne!(z.presented_serial, core_srv.serial, "{z}");
        assert_eq!(z.peer_serial, edge.store_serial("Server"), "{z}");
        edge.wait_serial_in(
            "SIP TLS Listener LastAccepted",
            &core.store_serial("Client"),
        );
        edge.wait_serial_in("Tunnel Listener LastAccepted", &core_cli.serial);
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
        zc.reason
            .contains("peer rejected this node's client certificate")
            && zc.reason.contains(&core_cli.serial),
        "{zc}"
    );
    // The alert tells core it is a trust problem, not the EKU rule.
    assert!(zc.reason.contains("does not trust its issuer"), "{zc}");
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
    assert_eq!(
        edge.status_leaf("Security Certificates Client SameAsServer"),
        "True"
    );
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
    core.wait_serial_in(
        "SIP TLS Listener LastAccepted",
        &edge.store_serial("Client"),
    );
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
        assert_eq!(
            n.status_leaf("Security Certificates Client SameAsServer"),
            "True"
        );
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

/// An `openssl` child with its stdin kept open (so it does not quit before the server answers)
/// and its output collected; killed when dropped.
struct Ossl {
    stdin: Option<std::process::ChildStdin>,
    out: Lines,
    err: Lines,
    guard: ChildGuard,
}

impl Ossl {
    fn spawn(args: &[&str]) -> Ossl {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl");
        let out = Lines::capture(child.stdout.take().unwrap());
        let err = Lines::capture(child.stderr.take().unwrap());
        Ossl {
            stdin: child.stdin.take(),
            out,
            err,
            guard: ChildGuard::new(child, "openssl"),
        }
    }

    fn send(&mut self, text: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(text.as_bytes());
            let _ = s.flush();
        }
    }

    fn both(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.out.text(), self.err.text())
    }

    fn wait_out(&self, what: &str, pred: impl Fn(&str) -> bool) {
        wait_for(what, || {
            if pred(&self.out.text()) {
                Ok(())
            } else {
                Err(self.both())
            }
        });
    }

    /// Waits for the process to end (it does after a fatal alert).
    fn wait_exit(&mut self, what: &str) {
        self.guard.wait_exit(what);
    }
}

const OPTIONS: &str = "OPTIONS sip:core@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKossl\r\nFrom: <sip:openssl@localhost>;tag=1\r\nTo: <sip:core@127.0.0.1>\r\nCall-ID: ossl-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

/// `openssl s_client` to our SIP listener.
fn s_client(port: u16, cert: &LeafFiles, ca: &std::path::Path, extra: &[&str]) -> Ossl {
    let addr = format!("127.0.0.1:{port}");
    let (c, k, caf) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
        ca.display().to_string(),
    );
    let mut args = vec![
        "s_client",
        "-connect",
        &addr,
        "-cert",
        &c,
        "-key",
        &k,
        "-CAfile",
        &caf,
        "-verify_return_error",
        "-nocommands",
    ];
    let inter = cert.intermediate.as_ref().map(|p| p.display().to_string());
    if let Some(i) = &inter {
        args.extend(["-cert_chain", i.as_str()]);
    }
    args.extend(extra);
    Ossl::spawn(&args)
}

/// Issue 8 deliver 6: by default no TLS 1.3 ticket is sent (resumption is per generation and
/// nobody asked for it), and `CertificateRequest CANames Mode: Off` leaves the CA list out of the
/// CertificateRequest (OpenSSL then prints no "Acceptable client certificate CA names").
#[test]
fn no_tickets_by_default_and_ca_names_can_be_left_out() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    let mut core = Node::new("core");
    let srv = pki.issue(true, "core ca1 server", LeafEku::Both);
    core.ca_add(&pki.ca1_root());
    core.upload_server(&srv, false);
    core.start();
    let cli = pki.issue(true, "openssl ca1 both", LeafEku::Both);
    let ca = pki.ca1_root();
    let names = |c: &Ossl| c.out.contains("Acceptable client certificate CA names");
    let sess = pki.dir.path().join("no-ticket-session.pem");
    let sp = sess.display().to_string();
    let mut c = s_client(core.sip_port, &cli, &ca, &["-tls1_3", "-sess_out", &sp]);
    c.send(OPTIONS);
    c.wait_out("TLSv1.3 answered", |o| o.contains("SIP/2.0 200 OK"));
    c.stdin = None;
    c.wait_exit("s_client quits at end of input");
    // s_client saves a TLS 1.3 session when a ticket arrives; none may arrive.
    assert!(
        !c.out.contains("New Session Ticket") && !sess.exists(),
        "a ticket was sent: {}",
        c.both()
    );
    assert!(
        names(&c),
        "the CA names are listed by default: {}",
        c.both()
    );
    core.ok(&["xConfiguration SIP TLS Certificate CANames Mode: Off"]);
    wait_for("CertificateRequest without CA names", || {
        let mut c = s_client(core.sip_port, &cli, &ca, &["-tls1_3"]);
        c.send(OPTIONS);
        c.wait_out("TLSv1.3 answered", |o| o.contains("SIP/2.0 200 OK"));
        c.stdin = None;
        c.wait_exit("s_client quits at end of input");
        if names(&c) {
            Err(c.both())
        } else {
            Ok(())
        }
    });
}

/// Real OpenSSL as TLS client: a serverAuth-only client certificate (CA2, with its intermediate)
/// is rejected in On with our reason, and accepted in Off where `OPTIONS` gets `SIP/2.0 200`.
#[test]
fn openssl_s_client_against_sip_listener_in_both_modes() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    let mut core = Node::new("core");
    let srv = pki.issue(true, "core ca1 server", LeafEku::Both);
    core.ca_add(&pki.ca1_root());
    core.ca_add(&pki.ca2_root());
    core.upload_server(&srv, true);
    core.start();
    let cli = pki.issue(false, "openssl ca2 serverAuth", LeafEku::ServerAuth);

    // On: rejected, and our status says exactly why.
    let mut on = s_client(core.sip_port, &cli, &pki.ca1_root(), &[]);
    on.send(OPTIONS);
    let rej = wait_for("LastRejection of the OpenSSL client", || {
        let r = core.status_leaf("SIP TLS Listener LastRejection");
        if serial_in(&r) == Some(cli.serial.clone()) {
            Ok(r)
        } else {
            Err(r)
        }
    });
    eprintln!("openssl s_client, mode On: {rej}");
    assert!(
        rej.contains("lacks clientAuth EKU (has serverAuth)") && rej.contains("Mode is On"),
        "{rej}"
    );
    on.wait_exit("s_client ends after the alert");
    assert!(!on.out.contains("SIP/2.0 200"), "{}", on.both());
    // s_client verified our server certificate (the server store) before being refused.
    assert!(
        on.out
            .contains(&format!("subject=CN = {}", "core ca1 server")),
        "{}",
        on.both()
    );
    // The EKU refusal goes out as the `unsupported_certificate` alert, so the peer can tell it
    // from a trust problem (`unknown_ca`).
    assert!(
        on.err.contains("alert unsupported certificate"),
        "{}",
        on.both()
    );

    // Off (through xsh): accepted, OPTIONS answered.
    core.set_mode("Off");
    let mut off = s_client(core.sip_port, &cli, &pki.ca1_root(), &[]);
    off.send(OPTIONS);
    off.wait_out("SIP/2.0 200 through s_client", |o| {
        o.contains("SIP/2.0 200 OK")
    });
    assert!(off.out.contains("Call-ID: ossl-1"), "{}", off.both());
    let acc = core.wait_serial_in("SIP TLS Listener LastAccepted", &cli.serial);
    eprintln!("openssl s_client, mode Off: {acc}");
}

/// Real OpenSSL as TLS server (`s_server -Verify 1 -verify_return_error`): our outbound zone
/// presents the CLIENT store certificate, not the server store's.
#[test]
fn openssl_s_server_receives_client_store_certificate() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    let mut core = Node::new("core");
    let core_srv = pki.issue(false, "core ca2 server", LeafEku::ServerAuth);
    let core_cli = pki.issue(true, "core ca1 client", LeafEku::Both);
    core.ca_add(&pki.ca1_root());
    core.ca_add(&pki.ca2_root());
    core.upload_server(&core_srv, false);
    core.upload_client(&core_cli);
    core.start();
    let remote = pki.issue(true, "openssl s_server", LeafEku::Both);

    // s_server on a free port (retried if another process took it meanwhile).
    let mut attempt = 0;
    let (server, port) = loop {
        attempt += 1;
        let port = free_port();
        let p = port.to_string();
        let (c, k, ca) = (
            remote.cert.display().to_string(),
            remote.key.display().to_string(),
            pki.ca1_root().display().to_string(),
        );
        let mut s = Ossl::spawn(&[
            "s_server",
            "-accept",
            &p,
            "-Verify",
            "1",
            "-verify_return_error",
            "-CAfile",
            &ca,
            "-cert",
            &c,
            "-key",
            &k,
        ]);
        let up = wait_for("s_server ACCEPT", || {
            if s.out.contains("ACCEPT") {
                return Ok(true);
            }
            if s.guard.try_wait().is_some() {
                return Ok(false);
            }
            Err(s.both())
        });
        if up {
            break (s, port);
        }
        assert!(attempt < 5, "s_server did not start: {}", s.both());
    };
    core.zone_to(1, "Neighbor", port, port, true);
    server.wait_out("s_server prints the client certificate", |o| {
        o.contains("Client certificate") && o.contains("OPTIONS sip:")
    });
    let text = server.out.text();
    let start = text.find("Client certificate").unwrap();
    let pem_start = start + text[start..].find("-----BEGIN CERTIFICATE-----").unwrap();
    let end_marker = "-----END CERTIFICATE-----";
    let pem_end = pem_start + text[pem_start..].find(end_marker).unwrap() + end_marker.len();
    let got = pem_serial(&text[pem_start..pem_end]);
    eprintln!(
        "openssl s_server received serial {got}; client store {}, server store {}",
        core.store_serial("Client"),
        core.store_serial("Server")
    );
    assert_eq!(got, core.store_serial("Client"));
    assert_eq!(got, core_cli.serial);
    assert_ne!(got, core.store_serial("Server"));
    assert!(text.contains("subject=CN = core ca1 client"), "{text}");
    // s_server verified it (-verify_return_error would have refused the connection otherwise).
    assert!(
        server.err.contains("depth=0 CN = core ca1 client"),
        "{}",
        server.both()
    );
    let z = core.wait_zone(1, "checked", |z| !z.last_check.is_empty());
    assert_eq!(z.presented_serial, core_cli.serial, "{z}");
    drop(server);
    let _ = port;
}

/// Issue 4 item 5: a session from a generation with checking Off must not let a serverAuth-only
/// client back in after the switch to On: the old session is not resumed (full handshake) and the
/// verifier rejects the certificate. Positive control: under Off the session does resume.
/// TLS 1.3 (tickets) and TLS 1.2 (session IDs).
#[test]
fn resumption_does_not_bypass_the_verifier_after_mode_switch() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    let mut core = Node::new("core");
    let srv = pki.issue(true, "core ca1 server", LeafEku::Both);
    core.ca_add(&pki.ca1_root());
    core.upload_server(&srv, true);
    core.set_mode("Off");
    // TLS 1.3 resumption needs tickets, which are Off unless asked for (issue 8 deliver 6).
    core.ok(&["xConfiguration SIP TLS SessionTickets Mode: On"]);
    core.start();
    let cli = pki.issue(true, "openssl ca1 serverAuth", LeafEku::ServerAuth);
    let ca = pki.ca1_root();
    let mut sessions = Vec::new();
    for (ver, flag) in [("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")] {
        let sess = pki.dir.path().join(format!("session-{ver}.pem"));
        let sp = sess.display().to_string();
        let mut first = s_client(core.sip_port, &cli, &ca, &[flag, "-sess_out", &sp]);
        first.send(OPTIONS);
        first.wait_out(&format!("{ver}: first connection answered"), |o| {
            o.contains("SIP/2.0 200 OK") && o.contains(&format!("New, {ver}"))
        });
        wait_for(&format!("{ver}: session saved"), || {
            let t = std::fs::read_to_string(&sess).unwrap_or_default();
            if t.contains("BEGIN SSL SESSION PARAMETERS") {
                Ok(())
            } else {
                Err(format!("{} bytes", t.len()))
            }
        });
        // End of input makes s_client quit, which flushes what it printed about the session.
        first.stdin = None;
        first.wait_exit("s_client quits at end of input");
        if ver == "TLSv1.3" {
            assert!(
                first
                    .out
                    .contains("Post-Handshake New Session Ticket arrived")
                    && first.out.contains("TLS session ticket:"),
                "no ticket: {}",
                first.both()
            );
        }
        // Positive control: the same generation resumes it. TLS 1.3 tickets are single-use, so
        // the resumed connection's fresh ticket (`-sess_out`) is what is tried after the switch;
        // a TLS 1.2 session ID stays reusable.
        let sess2 = pki.dir.path().join(format!("session-{ver}-2.pem"));
        let sp2 = sess2.display().to_string();
        let mut again = s_client(
            core.sip_port,
            &cli,
            &ca,
            &[flag, "-sess_in", &sp, "-sess_out", &sp2],
        );
        again.send(OPTIONS);
        again.wait_out(&format!("{ver}: resumed under Off"), |o| {
            o.contains("SIP/2.0 200 OK") && o.contains(&format!("Reused, {ver}"))
        });
        let next = if ver == "TLSv1.3" {
            wait_for(&format!("{ver}: ticket of the resumed connection"), || {
                let t = std::fs::read_to_string(&sess2).unwrap_or_default();
                if t.contains("BEGIN SSL SESSION PARAMETERS") {
                    Ok(())
                } else {
                    Err(format!("{} bytes", t.len()))
                }
            });
            sp2
        } else {
            sp
        };
        eprintln!("{ver}: session issued under Off and resumed under Off");
        sessions.push((ver, flag, next));
    }

    let rejected_before: u64 = core
        .status_leaf("SIP TLS Listener RejectedEku")
        .parse()
        .unwrap();
    assert_eq!(rejected_before, 0);
    core.set_mode("On");
    for (n, (ver, flag, sp)) in sessions.iter().enumerate() {
        let mut c = s_client(core.sip_port, &cli, &ca, &[flag, "-sess_in", sp]);
        c.send(OPTIONS);
        let rej = wait_for(&format!("{ver}: rejection after the switch to On"), || {
            assert!(
                !c.out.contains("Reused"),
                "{ver}: the Off-generation session was resumed under On (verifier bypassed): {}",
                c.both()
            );
            let r = core.status_leaf("SIP TLS Listener RejectedEku");
            if r.parse::<u64>().unwrap_or(0) > n as u64 {
                Ok(core.status_leaf("SIP TLS Listener LastRejection"))
            } else {
                Err(format!("RejectedEku {r}; {}", c.both()))
            }
        });
        c.wait_exit("s_client ends after the alert");
        eprintln!("{ver}: old session after switch to On: {rej}");
        assert_eq!(serial_in(&rej), Some(cli.serial.clone()), "{rej}");
        assert!(rej.contains("lacks clientAuth EKU"), "{rej}");
        assert!(!c.out.contains("Reused"), "{ver} resumed: {}", c.both());
        assert!(!c.out.contains("SIP/2.0 200"), "{}", c.both());
    }
}
