//! `xCommand Security Certificates Probe` against real peers on 127.0.0.1: our own xagent in
//! EKU mode On and Off, `openssl s_server` requesting (`-Verify 1`) with and without
//! `-verify_return_error`, with `-purpose sslclient`, requesting nothing, trusting another CA,
//! TLS 1.2 and 1.3; a peer that closes without an alert and one that never answers. Each
//! verdict must name the right cause; the TLS 1.3 refusal after Finished is a refusal, never a
//! success. Replies are snapshotted with serials, dates, ports and temp paths redacted.
//!
//! No timed assertion: the peer that never answers is only required to come back with the
//! timeout outcome.

mod agent_support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use agent_support::*;
use serde_json::Value;
use xsh::certs::pki::LeafEku;

/// One probe in JSON mode: the result object.
fn probe_json(node: &Node, port: u16, args: &str) -> Value {
    let docs = node.json(&format!(
        "xCommand Security Certificates Probe Address: 127.0.0.1 Port: {port} {args}"
    ));
    docs.into_iter()
        .find_map(|d| {
            d.get("CommandResponse")
                .and_then(|c| c.get("SecurityCertificatesProbeResult"))
                .cloned()
        })
        .unwrap_or_else(|| panic!("{}: no probe result", node.name))
}

/// A leaf of the result by path words (`Identity 1 Outcome`).
fn r(doc: &Value, words: &str) -> String {
    leaf(doc, words).unwrap_or_default()
}

/// One probe in a given output mode (`Terminal`, `XML`, `JSON`), the text as printed.
fn probe_text(node: &Node, mode: &str, port: u16, args: &str) -> String {
    let o = node.xsh(&[
        &format!("xPreferences OutputMode {mode}"),
        &format!("xCommand Security Certificates Probe Address: 127.0.0.1 Port: {port} {args}"),
    ]);
    assert!(
        o.ok,
        "{}: probe failed:\n{}\n{}",
        node.name, o.stdout, o.stderr
    );
    o.stdout
}

/// Replaces what changes from run to run: serial numbers (colon hex), RFC 3339 times, the
/// port, and temp paths.
fn redact(text: &str, port: u16) -> String {
    let mut out = String::new();
    // The default certificate is named after the machine.
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let t = text
        .replace(&port.to_string(), "[PORT]")
        .replace(&format!("CN={host}\""), "CN=[HOST]\"")
        .replace(&format!("CN={host}<"), "CN=[HOST]<");
    let chars: Vec<char> = t.chars().collect();
    let mut i = 0;
    let hex = |c: char| c.is_ascii_hexdigit() && !c.is_ascii_lowercase();
    while i < chars.len() {
        // Colon hex of at least four bytes: a serial or a fingerprint.
        let mut j = i;
        let mut groups = 0;
        while j + 1 < chars.len() && hex(chars[j]) && hex(chars[j + 1]) {
            groups += 1;
            j += 2;
            if j < chars.len() && chars[j] == ':' && j + 2 < chars.len() && hex(chars[j + 1]) {
                j += 1;
            } else {
                break;
            }
        }
        let boundary = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if boundary && groups >= 4 {
            out.push_str("[SERIAL]");
            i = j;
            continue;
        }
        // 2026-12-01T12:54:01Z or with .123
        if chars.len() >= i + 20
            && chars[i..i + 4].iter().all(char::is_ascii_digit)
            && chars[i + 4] == '-'
            && chars[i + 10] == 'T'
        {
            let mut k = i + 11;
            while k < chars.len()
                && (chars[k].is_ascii_digit() || chars[k] == ':' || chars[k] == '.')
            {
                k += 1;
            }
            if k < chars.len() && chars[k] == 'Z' {
                out.push_str("[TIME]");
                i = k + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `openssl s_server` on a free port with `args`, waiting until it accepts.
struct Server {
    _guard: ChildGuard,
    port: u16,
}

fn s_server(cert: &Path, key: &Path, args: &[&str]) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new("openssl")
            .arg("s_server")
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl s_server");
        let out = Lines::capture(child.stdout.take().unwrap());
        let err = Lines::capture(child.stderr.take().unwrap());
        let mut guard = ChildGuard::new(child, "s_server");
        let up = wait_for("s_server ACCEPT", || {
            if out.contains("ACCEPT") {
                return Ok(true);
            }
            if guard.try_wait().is_some() {
                return Ok(false);
            }
            Err(format!("stdout {} stderr {}", out.text(), err.text()))
        });
        if up {
            return Server {
                _guard: guard,
                port,
            };
        }
    }
    panic!("openssl s_server did not start");
}

/// The prober: client and server store hold a CA2 serverAuth-only leaf (the seed's Test case
/// 1/2 node, via AlsoAsClient), trusting CA1 (the partners' issuer).
fn prober(pki: &Pki) -> Node {
    let q = Node::new("prober");
    q.ca_add(&pki.ca1_root());
    q.ca_add(&pki.ca2_root());
    let leaf = pki.issue(false, "prober.example", LeafEku::ServerAuth);
    q.upload_server(&leaf, true);
    q
}

/// The partner's server certificate (CA1, serverAuth + clientAuth).
fn partner_leaf(pki: &Pki) -> LeafFiles {
    pki.issue(true, "partner.example", LeafEku::Both)
}

#[test]
fn our_agent_in_mode_on_refuses_after_finished_and_mode_off_accepts() {
    let pki = Pki::new();
    let mut p = Node::new("partner");
    p.ca_add(&pki.ca1_root());
    p.ca_add(&pki.ca2_root());
    p.upload_server(&partner_leaf(&pki), false);
    p.start();
    let q = prober(&pki);
    let port = p.sip_port;

    // Mode On: the serverAuth-only client store is refused with unsupported_certificate, and in
    // TLS 1.3 that alert arrives after Finished: a refusal, not a success.
    let d = probe_json(&q, port, "");
    assert_eq!(r(&d, "Negotiated Version"), "TLSv1.3", "{d}");
    assert_eq!(r(&d, "Identity 1 Present"), "Client");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Refused", "{d}");
    assert_eq!(r(&d, "Identity 1 Alert"), "unsupported_certificate (43)");
    assert_eq!(
        r(&d, "Identity 1 When"),
        "after Finished (on the first read)"
    );
    assert_eq!(r(&d, "Identity 1 Sent"), "True");
    assert_eq!(r(&d, "CertificateRequest Requested"), "True");
    assert_eq!(r(&d, "Identity 1 IssuerNamed"), "True", "{d}");
    assert_eq!(r(&d, "Identity 3 Outcome"), "Refused", "{d}");
    assert!(r(&d, "Peer Verified").starts_with("True"), "{d}");
    let v = r(&d, "Verdict");
    assert!(v.starts_with("the partner enforces clientAuth"), "{v}");
    assert!(
        v.contains("alert unsupported_certificate (43) after Finished"),
        "{v}"
    );
    assert!(v.contains("Condition 2.1"), "{v}");

    // Three modes, one reply each.
    for mode in ["Terminal", "XML", "JSON"] {
        let text = redact(&probe_text(&q, mode, port, ""), port);
        insta::assert_snapshot!(format!("agent_mode_on_{}", mode.to_lowercase()), text);
    }

    // Recorded: the handshake log, xStatus, the bundle.
    let log = q.handshakes();
    let line = log
        .iter()
        .rev()
        .find(|l| l["listener"] == "probe" && l["identity"] == "Client")
        .expect("a probe line in the handshake log");
    assert_eq!(line["decision"], "refused");
    assert_eq!(line["alert"], 43);
    assert_eq!(line["alert_after_finished"], true);
    let st = q.status("Security Certificates Probe");
    let got =
        |w: &str| leaf(&st, &format!("Security Certificates Probe 1 {w}")).unwrap_or_default();
    assert_eq!(got("Address"), "127.0.0.1");
    assert_eq!(got("Port"), port.to_string());
    assert!(
        got("Client").contains("unsupported_certificate (43)"),
        "{st}"
    );
    assert!(got("Verdict").contains("enforces clientAuth"), "{st}");
    let folder = q.root().join("bundle");
    q.ok(&[&format!(
        "xCommand DiagnosticLogging Collect Folder: \"{}\"",
        folder.display()
    )]);
    let bundle = std::fs::read_dir(&folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let listing = Command::new("tar")
        .arg("-xzOf")
        .arg(&bundle)
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&listing.stdout);
    assert!(
        all.contains("\"listener\":\"probe\""),
        "bundle lacks the probe's handshake lines"
    );
    assert!(
        all.contains("enforces clientAuth"),
        "bundle lacks probes.json"
    );

    // A clientAuth certificate from CA1 in the client store: accepted (Condition 2.1).
    let good = pki.issue(true, "prober-client", LeafEku::Both);
    q.upload_client(&good);
    let d = probe_json(&q, port, "Present: Client");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Accepted", "{d}");
    assert!(
        r(&d, "Identity 1 SipStatus").starts_with("SIP/2.0 200"),
        "{d}"
    );
    assert!(
        r(&d, "Verdict").starts_with("the partner accepts the client store certificate"),
        "{d}"
    );

    // Mode Off: the serverAuth-only server store is accepted (Test case 2).
    p.set_mode("Off");
    let d = probe_json(&q, port, "Present: Server");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Accepted", "{d}");
    let v = r(&d, "Verdict");
    assert!(
        v.starts_with("the partner does not enforce clientAuth"),
        "{v}"
    );
    assert!(v.contains("Test case 2"), "{v}");
}

#[test]
fn openssl_peers_are_told_apart() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    let q = prober(&pki);
    let srv = partner_leaf(&pki);
    let (chain, key) = (&srv.chain, &srv.key);
    let ca2 = pki.ca2_root();
    let ca2 = ca2.to_str().unwrap();
    let ca1 = pki.ca1_root();
    let ca1 = ca1.to_str().unwrap();

    // -Verify 1 alone: asks, checks the chain, but goes on whatever it thinks of it.
    let s = s_server(chain, key, &["-Verify", "1", "-CAfile", ca2]);
    let d = probe_json(&q, s.port, "Protocol: TLS");
    // -Verify (not -verify) requires a certificate: none is refused, any other goes through.
    for n in 1..=2 {
        assert_eq!(r(&d, &format!("Identity {n} Outcome")), "Accepted", "{d}");
    }
    assert_eq!(
        r(&d, "Identity 3 Alert"),
        "certificate_required (116)",
        "{d}"
    );
    assert!(
        r(&d, "Verdict").starts_with("the partner does not enforce clientAuth"),
        "{d}"
    );
    insta::assert_snapshot!(
        "openssl_verify_lenient",
        redact(&probe_text(&q, "Terminal", s.port, "Protocol: TLS"), s.port)
    );
    drop(s);

    // -verify_return_error -purpose sslclient: the serverAuth-only chain is refused (43),
    // after Finished in TLS 1.3; none is refused with certificate_required (116).
    let s = s_server(
        chain,
        key,
        &[
            "-Verify",
            "1",
            "-verify_return_error",
            "-purpose",
            "sslclient",
            "-CAfile",
            ca2,
        ],
    );
    let d = probe_json(&q, s.port, "Protocol: TLS TLSVersion: 1.3");
    assert_eq!(
        r(&d, "Identity 1 Alert"),
        "unsupported_certificate (43)",
        "{d}"
    );
    assert_eq!(
        r(&d, "Identity 1 When"),
        "after Finished (on the first read)"
    );
    assert_eq!(
        r(&d, "Identity 3 Alert"),
        "certificate_required (116)",
        "{d}"
    );
    assert!(
        r(&d, "Verdict").starts_with("the partner enforces clientAuth"),
        "{d}"
    );
    insta::assert_snapshot!(
        "openssl_purpose_sslclient",
        redact(
            &probe_text(&q, "Terminal", s.port, "Protocol: TLS TLSVersion: 1.3"),
            s.port
        )
    );

    // The same peer in TLS 1.2: the refusal comes during the handshake.
    let d = probe_json(&q, s.port, "Protocol: TLS TLSVersion: 1.2");
    assert_eq!(r(&d, "Negotiated Version"), "TLSv1.2", "{d}");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Refused", "{d}");
    assert_eq!(r(&d, "Identity 1 When"), "during the handshake", "{d}");
    assert!(
        r(&d, "Verdict").starts_with("the partner enforces clientAuth"),
        "{d}"
    );
    drop(s);

    // -verify_return_error without -purpose: OpenSSL's server still checks clientAuth.
    let s = s_server(
        chain,
        key,
        &["-Verify", "1", "-verify_return_error", "-CAfile", ca2],
    );
    let d = probe_json(&q, s.port, "Protocol: TLS");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Refused", "{d}");
    assert!(
        r(&d, "Verdict").starts_with("the partner enforces clientAuth"),
        "{d}"
    );
    drop(s);

    // Requires a certificate but trusts another CA (CA1 only; ours is CA2's): unknown_ca.
    let s = s_server(
        chain,
        key,
        &["-Verify", "1", "-verify_return_error", "-CAfile", ca1],
    );
    let d = probe_json(&q, s.port, "Protocol: TLS Present: Client");
    assert_eq!(r(&d, "Identity 1 Alert"), "unknown_ca (48)", "{d}");
    assert_eq!(r(&d, "Identity 1 IssuerNamed"), "False", "{d}");
    let v = r(&d, "Verdict");
    assert!(
        v.starts_with("the partner does not trust the issuer"),
        "{v}"
    );
    assert!(v.contains("Condition 3"), "{v}");
    insta::assert_snapshot!(
        "openssl_other_ca",
        redact(
            &probe_text(&q, "Terminal", s.port, "Protocol: TLS Present: Client"),
            s.port
        )
    );
    drop(s);

    // Requests no certificate at all.
    let s = s_server(chain, key, &[]);
    let d = probe_json(&q, s.port, "Protocol: TLS ServerName: localhost");
    assert_eq!(r(&d, "CertificateRequest Requested"), "False", "{d}");
    assert_eq!(r(&d, "Identity 1 Sent"), "False", "{d}");
    assert_eq!(r(&d, "Peer NameChecked"), "True", "{d}");
    assert!(
        r(&d, "Verdict").starts_with("the partner requests no client certificate"),
        "{d}"
    );
    // A name the certificate does not hold: the chain is reported unverified, the handshake
    // still completes.
    let d = probe_json(
        &q,
        s.port,
        "Protocol: TLS ServerName: other.example Present: None",
    );
    assert!(r(&d, "Peer Verified").starts_with("False"), "{d}");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Accepted", "{d}");
    assert!(r(&d, "Peer Verified").contains("the chain verifies"), "{d}");
    assert!(
        r(&d, "Verdict").starts_with("the partner's certificate is not valid for other.example"),
        "{d}"
    );
}

#[test]
fn a_peer_that_closes_without_alert_and_one_that_never_answers() {
    let q = Node::new("prober");
    // Closes without an alert once it has read the ClientHello: a close with the hello still
    // unread would be a reset (RST), not the orderly close (FIN) this case is about.
    let closer = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closer.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in closer.incoming().flatten() {
            use std::io::Read;
            let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(200)));
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            drop(s);
        }
    });
    let d = probe_json(&q, port, "");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Failed", "{d}");
    assert!(
        r(&d, "Identity 1 Detail")
            .contains("closed the connection during the handshake without an alert")
            || r(&d, "Identity 1 Detail").contains("reset the connection"),
        "{d}"
    );
    assert_eq!(r(&d, "Identity 2 Outcome"), "NotTried", "{d}");
    assert!(
        r(&d, "Verdict").starts_with("the partner could not be probed"),
        "{d}"
    );
    insta::assert_snapshot!(
        "closes_without_alert",
        redact(&probe_text(&q, "Terminal", port, "Present: Client"), port)
    );

    // Completes the handshake (rustls, no client certificate asked), then closes without a
    // close_notify or an alert: "closed after Finished", never "accepted".
    let pki = Pki::new();
    let leaf = pki.issue(true, "closer.example", LeafEku::Both);
    let chain = xsh::certs::info::parse_pem_certs(leaf.leaf.chain_pem.as_bytes()).unwrap();
    let key = xsh::certs::info::parse_pem_key(leaf.leaf.key_pem.as_bytes()).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let after = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = after.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut tcp in after.incoming().flatten() {
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            while conn.is_handshaking() {
                if conn.complete_io(&mut tcp).is_err() {
                    break;
                }
            }
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    });
    let d = probe_json(&q, port, "Present: None");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Closed", "{d}");
    assert!(
        r(&d, "Verdict").contains("closed the connection after Finished without an alert"),
        "{d}"
    );

    // Accepts and never answers: the probe comes back with the timeout outcome.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for s in silent.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    let d = probe_json(&q, port, "");
    assert_eq!(r(&d, "Identity 1 Outcome"), "Failed", "{d}");
    assert!(
        r(&d, "Identity 1 Detail").contains("did not complete the handshake within"),
        "{d}"
    );
    assert_eq!(r(&d, "Identity 3 Outcome"), "NotTried", "{d}");

    // Nothing listens: refused, typed.
    let port = free_port();
    let d = probe_json(&q, port, "Present: None");
    assert!(
        r(&d, "Identity 1 Detail").contains("connection refused"),
        "{d}"
    );
}
