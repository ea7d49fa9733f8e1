//! Faults (issue 4 item 9): while a client keeps handshaking against a running agent, bad files
//! are written by hand — a truncated and a garbled `server.pem`, a certificate with a key that does
//! not match, a deleted `ca.pem`, an invalid line in `config/xconf.txt`. The agent keeps the last
//! good generation (no handshake fails because of a reload), names the bad file in
//! `xStatus Agent LastReload Error` and in the event log, and picks up the next good write.
//! Plus: one agent per ROOT, SIGHUP forces a reload, SIGTERM exits 0 and status says so.
//!
//! Nothing here asserts on timing: conditions are polled up to a generous deadline.

mod agent_support;

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_support::*;
use nix::sys::signal::Signal;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use xsh::certs::pki::LeafEku;

/// What the handshake loop saw.
#[derive(Debug, Default, Clone)]
struct LoopStats {
    ok: u64,
    failed: u64,
    errors: Vec<String>,
    /// Server serial of the last successful handshake.
    last_serial: String,
}

/// A client that handshakes (mutual TLS, then `OPTIONS` → `200`) in a loop until dropped.
struct HandshakeLoop {
    stats: Arc<Mutex<LoopStats>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HandshakeLoop {
    fn start(port: u16, client: &LeafFiles, ca_root: &Path) -> HandshakeLoop {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in xsh::certs::info::parse_pem_certs(&std::fs::read(ca_root).unwrap()).unwrap() {
            roots.add(c).unwrap();
        }
        let chain: Vec<CertificateDer<'static>> =
            xsh::certs::info::parse_pem_certs(client.leaf.chain_pem.as_bytes()).unwrap();
        let key =
            PrivateKeyDer::try_from(pem_der(&client.leaf.key_pem, "PRIVATE KEY").expect("key der"))
                .unwrap();
        let cfg = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .unwrap(),
        );
        let stats = Arc::new(Mutex::new(LoopStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (stats.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                let r = sip::options_handshake(&cfg, port);
                let mut s = s2.lock().unwrap();
                match r {
                    Ok(serial) => {
                        s.ok += 1;
                        s.last_serial = serial;
                    }
                    Err(e) => {
                        s.failed += 1;
                        if s.errors.len() < 20 {
                            s.errors.push(e);
                        }
                    }
                }
                drop(s);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        HandshakeLoop {
            stats,
            stop,
            thread: Some(thread),
        }
    }

    fn stats(&self) -> LoopStats {
        self.stats.lock().unwrap().clone()
    }

    /// Waits until at least `n` more handshakes succeeded than `since`.
    fn wait_more(&self, since: u64, n: u64, what: &str) -> LoopStats {
        wait_for(what, || {
            let s = self.stats();
            if s.ok >= since + n {
                Ok(s)
            } else {
                Err(format!("{s:?}"))
            }
        })
    }

    /// Waits until the served serial is `serial` and a few handshakes succeeded with it.
    fn wait_serial(&self, serial: &str, what: &str) {
        wait_for(what, || {
            let s = self.stats();
            if s.last_serial == serial {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        });
        let ok = self.stats().ok;
        self.wait_more(ok, 3, what);
    }
}

impl Drop for HandshakeLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let a = pem.find(&begin)? + begin.len();
    let b = a + pem[a..].find(&end)?;
    let b64: String = pem[a..b].split_whitespace().collect();
    base64_decode(&b64)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let k = chunk.len() * 6 / 8;
        for i in 0..k {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// Waits until `xStatus Agent LastReload Error` names `file` and the event log has an ERROR line
/// naming it; returns the error text.
fn wait_reload_error(node: &Node, file: &str, events_before: usize) -> String {
    wait_reload_error_with(node, file, "", events_before)
}

/// Like [`wait_reload_error`], also waiting for `detail` in the error (a plain write is seen
/// half-done first: an empty file is an error of its own).
fn wait_reload_error_with(node: &Node, file: &str, detail: &str, events_before: usize) -> String {
    let err = wait_for(&format!("LastReload Error naming {file} {detail}"), || {
        let e = node.status_leaf("Agent LastReload Error");
        if e.contains(file) && e.contains(detail) {
            Ok(e)
        } else {
            Err(format!(
                "Error {e:?}, Result {:?}",
                node.status_leaf("Agent LastReload Result")
            ))
        }
    });
    let line = wait_for(&format!("event log ERROR naming {file}"), || {
        let ev = node.events();
        ev.lines()
            .skip(events_before)
            .find(|l| l.contains("Level=\"ERROR\"") && l.contains(file))
            .map(str::to_string)
            .ok_or_else(|| {
                ev.lines()
                    .skip(events_before)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    });
    eprintln!("  status: {err}\n  event:  {line}");
    err
}

fn wait_reload_ok(node: &Node, what: &str) {
    wait_for(what, || {
        let e = node.status_leaf("Agent LastReload Error");
        let r = node.status_leaf("Agent LastReload Result");
        if e.is_empty() && r.starts_with("ok") {
            Ok(())
        } else {
            Err(format!("Error {e:?}, Result {r:?}"))
        }
    });
}

#[test]
fn bad_files_keep_the_last_good_generation_without_failed_handshakes() {
    let pki = Pki::new();
    let mut node = Node::new("faults");
    node.ca_add(&pki.ca1_root());
    let first = pki.issue(true, "faults server 1", LeafEku::Both);
    node.upload_server(&first, true);
    node.start();
    let client = pki.issue(true, "faults loop client", LeafEku::Both);
    let hl = HandshakeLoop::start(node.sip_port, &client, &pki.ca1_root());
    hl.wait_serial(&first.serial, "loop handshakes with the first certificate");
    let certs = node.certs();
    let server_pem = certs.join("server.pem");
    let mut serial = 1;
    let mut next_good = |node: &Node, hl: &HandshakeLoop, what: &str| {
        serial += 1;
        let c = pki.issue(true, &format!("faults server {serial}"), LeafEku::Both);
        node.upload_server(&c, false);
        hl.wait_serial(&c.serial, &format!("new serial served after {what}"));
        wait_reload_ok(node, &format!("reload ok after {what}"));
        eprintln!("  next good write picked up: serial {}", c.serial);
    };

    // 1. server.pem truncated by hand (a plain, non-atomic write).
    eprintln!("fault: truncated server.pem");
    let ev = node.events().lines().count();
    let good = std::fs::read(&server_pem).unwrap();
    std::fs::write(&server_pem, &good[..good.len() / 2]).unwrap();
    wait_reload_error(&node, "server.pem", ev);
    let ok = hl.stats().ok;
    hl.wait_more(ok, 5, "handshakes go on with the last good generation");
    next_good(&node, &hl, "truncated server.pem");

    // 2. server.pem garbled (base64 body damaged, framing intact).
    eprintln!("fault: garbled server.pem");
    let ev = node.events().lines().count();
    let text = std::fs::read_to_string(&server_pem).unwrap();
    let garbled: String = text
        .lines()
        .map(|l| {
            if l.starts_with("-----") {
                l.to_string()
            } else {
                l.chars().rev().collect::<String>().replace('A', "!")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&server_pem, garbled).unwrap();
    wait_reload_error(&node, "server.pem", ev);
    let ok = hl.stats().ok;
    hl.wait_more(ok, 5, "handshakes go on after the garbled file");
    next_good(&node, &hl, "garbled server.pem");

    // 3. A valid certificate whose key is not in privkey.pem.
    eprintln!("fault: certificate with a non-matching key");
    let ev = node.events().lines().count();
    let other = pki.issue(true, "faults server mismatched", LeafEku::Both);
    std::fs::write(&server_pem, &other.leaf.chain_pem).unwrap();
    let err = wait_reload_error_with(&node, "server.pem", "does not match", ev);
    assert!(err.contains("privkey.pem"), "{err}");
    let ok = hl.stats().ok;
    let s = hl.wait_more(ok, 5, "handshakes go on after the key mismatch");
    assert_ne!(s.last_serial, other.serial, "mismatched certificate served");
    next_good(&node, &hl, "key mismatch");

    // 4. ca.pem deleted.
    eprintln!("fault: ca.pem deleted");
    let ev = node.events().lines().count();
    std::fs::remove_file(certs.join("ca.pem")).unwrap();
    wait_reload_error(&node, "ca.pem", ev);
    let ok = hl.stats().ok;
    hl.wait_more(ok, 5, "handshakes go on without ca.pem on disk");
    node.ca_add(&pki.ca1_root());
    wait_reload_ok(&node, "reload ok after ca.pem came back");
    next_good(&node, &hl, "ca.pem restored");

    // 5. config/xconf.txt truncated to nothing (what a plain save looks like half-way): it must
    // not become a configuration of defaults (the listeners would move to the default ports).
    eprintln!("fault: empty config/xconf.txt");
    let ev = node.events().lines().count();
    let cfg_path = node.root().join("config/xconf.txt");
    let cfg_good = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, "").unwrap();
    wait_reload_error_with(&node, "xconf.txt", "empty", ev);
    let ok = hl.stats().ok;
    hl.wait_more(ok, 5, "handshakes go on with an empty xconf.txt");
    std::fs::write(&cfg_path, &cfg_good).unwrap();
    wait_reload_ok(&node, "status clears once xconf.txt is back");

    // 6. An invalid line written by hand into config/xconf.txt.
    eprintln!("fault: invalid line in config/xconf.txt");
    let ev = node.events().lines().count();
    let bad_line = "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: \"Maybe\"";
    std::fs::write(&cfg_path, format!("{cfg_good}{bad_line}\n")).unwrap();
    let line_no = cfg_good.lines().count() + 1;
    let err = wait_reload_error_with(&node, "xconf.txt", &format!("line {line_no}:"), ev);
    assert!(err.contains("Maybe"), "{err}");
    let ok = hl.stats().ok;
    hl.wait_more(ok, 5, "handshakes go on with the bad configuration line");
    // The admin removes the line again: the files match the generation in force.
    std::fs::write(&cfg_path, &cfg_good).unwrap();
    wait_reload_ok(&node, "status clears once xconf.txt is good again");
    // And the next good change through xsh is applied.
    node.set_mode("Off");
    next_good(&node, &hl, "configuration fixed");

    let s = hl.stats();
    eprintln!(
        "handshake loop: {} ok, {} failed; {} reloads",
        s.ok,
        s.failed,
        node.status_leaf("Agent Reloads")
    );
    assert_eq!(
        s.failed, 0,
        "handshakes failed during reloads: {:?}",
        s.errors
    );
}

#[test]
fn one_agent_per_root_sighup_reloads_sigterm_exits_zero() {
    let mut node = Node::new("signals");
    node.start();
    assert_eq!(node.status_leaf("Agent Running"), "True");

    // A second agent on the same root refuses to run.
    let mut second = spawn_agent(node.root());
    let status = second.guard.wait_exit("second xagent exits");
    assert!(!status.success(), "second agent: {status:?}");
    let msg = wait_for("second agent's message", || {
        let e = second.stderr.text();
        if e.contains("another xagent is running") {
            Ok(e)
        } else {
            Err(e)
        }
    });
    eprintln!("second agent: {status:?}: {}", msg.trim());
    // The first one is unaffected.
    assert_eq!(node.status_leaf("Agent Running"), "True");

    // SIGHUP forces a reload even without a change.
    let before: u64 = node.status_leaf("Agent Reloads").parse().unwrap();
    node.agent().guard.signal(Signal::SIGHUP);
    let after = wait_for("Agent Reloads grows after SIGHUP", || {
        let n: u64 = node.status_leaf("Agent Reloads").parse().unwrap_or(0);
        if n > before {
            Ok(n)
        } else {
            Err(format!("Reloads {n}"))
        }
    });
    eprintln!("SIGHUP: Reloads {before} -> {after}");
    assert!(node.events().contains("SIGHUP"));

    // SIGTERM: exit 0, and xsh says no agent runs.
    node.agent().guard.signal(Signal::SIGTERM);
    let status = node.agent().guard.wait_exit("xagent exits after SIGTERM");
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    let running = node.status_leaf("Agent Running");
    assert_eq!(running, "False");
    eprintln!(
        "SIGTERM: {status:?}; Agent Running {running}; {}",
        node.status_leaf("Agent LastReload Result")
    );
    // The lock is released: a new agent may run on this root.
    node.agent = None;
    node.start();
    assert_eq!(node.status_leaf("Agent Running"), "True");
}

/// Moving one listener to a new port rebinds both; the one whose port did not change must come
/// back on that same port (the old accept loop has to let go of the socket first), repeatedly.
#[test]
fn changing_one_port_keeps_the_other_listener_bound() {
    let mut node = Node::new("rebind");
    node.start();
    let tunnel = node.tunnel_port;
    for round in 1..=3 {
        let new_sip = loop {
            let p = free_port();
            if p != tunnel && p != node.sip_port {
                break p;
            }
        };
        node.ok(&[&format!("xConfiguration SIP TLS Port: {new_sip}")]);
        node.sip_port = new_sip;
        let out = wait_for(&format!("round {round}: listeners rebound"), || {
            let a = node.agent.as_ref().unwrap();
            let text = a.stdout.text();
            let events = node.events();
            let tunnel_lines = text
                .matches(&format!("tunnel listening on 127.0.0.1:{tunnel}"))
                .count();
            if events.contains("cannot listen on") {
                return Ok(Err(events));
            }
            if text.contains(&format!("sip listening on 127.0.0.1:{new_sip}"))
                && tunnel_lines > round
            {
                return Ok(Ok(()));
            }
            Err(text)
        });
        if let Err(events) = out {
            panic!("round {round}: a listener failed to rebind:\n{events}");
        }
        assert_eq!(node.status_leaf("Tunnel Listener Status"), "Active");
        TcpStream::connect(("127.0.0.1", tunnel)).expect("tunnel port accepts");
    }
}

/// Removing the last CA of the trusted list (`xCommand Security Certificates CA Remove`) writes an
/// empty `ca.pem`: the agent must stop trusting that CA, not keep the generation that trusts it.
#[test]
fn removing_the_last_ca_stops_trusting_it() {
    let pki = Pki::new();
    let mut node = Node::new("lastca");
    node.ca_add(&pki.ca1_root());
    let server = pki.issue(true, "lastca server", LeafEku::Both);
    node.upload_server(&server, true);
    node.start();
    let client = pki.issue(true, "lastca client", LeafEku::Both);
    let hl = HandshakeLoop::start(node.sip_port, &client, &pki.ca1_root());
    hl.wait_more(0, 3, "handshakes accepted while CA1 is trusted");
    let now = rustls::pki_types::UnixTime::now();
    for ca in xsh::certs::calist::list(node.root(), now).unwrap() {
        node.ok(&[&format!(
            "xCommand Security Certificates CA Remove Fingerprint: {}",
            ca.sha256_fingerprint
        )]);
    }
    assert!(
        xsh::certs::calist::list(node.root(), now)
            .unwrap()
            .is_empty(),
        "the trusted CA list is empty now"
    );
    let failed = hl.stats().failed;
    wait_for("handshakes refused once no CA is trusted", || {
        let s = hl.stats();
        if s.failed >= failed + 3 {
            Ok(())
        } else {
            Err(format!(
                "{s:?}; LastReload Error {:?}",
                node.status_leaf("Agent LastReload Error")
            ))
        }
    });
    drop(hl);
    assert_eq!(node.status_leaf("Agent LastReload Error"), "");
    let rej = node.status_leaf("SIP TLS Listener LastRejection");
    assert!(rej.contains("trusted CA list is empty"), "{rej}");
}
