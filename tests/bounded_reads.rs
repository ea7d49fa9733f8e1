//! Bounded, typed reads (issue 9 items 3 and 7) against a running agent: `ca.pem` turned into a
//! link to `/dev/zero`, a FIFO, a 100 MB bad file, and `xconf.txt` deleted — each refused with
//! an error naming the file in `xStatus Agent LastReload Error`, while a real `openssl s_client`
//! handshake still succeeds on the generation in force; `CA Add File: /dev/zero` and a FIFO
//! through the shell; the generation counter at `u64::MAX`; a deleted `xagent.lock` that must not
//! admit a second agent; and `Agent Reload CloseRefused Mode` with a connection held open across
//! an EKU mode flip.
//!
//! Nothing here asserts on timing: conditions are polled up to a generous deadline.

mod agent_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use agent_support::*;
use xsh::certs::pki::LeafEku;

/// A live `openssl s_client` connection to a node's SIP listener, its stdout collected.
struct SClient {
    guard: ChildGuard,
    stdin: Option<std::process::ChildStdin>,
    out: Lines,
}

impl SClient {
    fn connect(port: u16, l: &LeafFiles) -> SClient {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-quiet", "-no_ign_eof"])
            .arg("-cert")
            .arg(&l.cert)
            .arg("-key")
            .arg(&l.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openssl s_client");
        let out = Lines::capture(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        SClient {
            guard: ChildGuard::new(child, "openssl s_client"),
            stdin,
            out,
        }
    }

    /// Sends one OPTIONS and waits for the `n`-th `200 OK` on this connection.
    fn options(&mut self, n: usize, what: &str) {
        let req =
            format!("OPTIONS sip:x SIP/2.0\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n");
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(req.as_bytes()).expect("write to s_client");
        w.flush().ok();
        wait_for(what, || {
            let got = self
                .out
                .all()
                .iter()
                .filter(|l| l.starts_with("SIP/2.0 200"))
                .count();
            if got >= n {
                Ok(())
            } else {
                Err(self.out.text())
            }
        });
    }
}

/// One full handshake + OPTIONS round trip with openssl; panics if it does not succeed.
fn handshake_ok(n: &Node, l: &LeafFiles, what: &str) {
    let mut c = SClient::connect(n.sip_port, l);
    c.options(1, what);
}

/// A node with CA1 trusted, its agent running, and a clientAuth leaf that it accepts.
fn serving_node(name: &str, pki: &Pki) -> (Node, LeafFiles) {
    let mut n = Node::new(name);
    n.ca_add(&pki.ca1_root());
    let client = pki.issue(true, "client.example", LeafEku::ClientAuth);
    n.start();
    handshake_ok(&n, &client, "first handshake");
    (n, client)
}

/// Waits until `Agent LastReload Error` names `file` and holds `text`.
fn wait_fault(n: &Node, file: &str, text: &str) -> String {
    wait_for(
        &format!("{}: a fault naming {file}: {text}", n.name),
        || {
            let v = n.status_leaf("Agent LastReload Error");
            if v.contains(file) && v.contains(text) {
                Ok(v)
            } else {
                let ev = n.events();
                let tail: Vec<&str> = ev.lines().rev().take(8).collect();
                Err(format!("{v:?}; last events: {tail:#?}"))
            }
        },
    )
}

fn wait_no_fault(n: &Node) {
    n.wait_leaf("Agent LastReload Error", str::is_empty);
}

/// Puts `bytes` in place of `path` by rename (replaces a link or a FIFO, never writes through it).
fn put(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("test-tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn watched_file_faults_keep_the_last_good_generation() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    let (n, client) = serving_node("faults", &pki);
    let ca = n.certs().join("ca.pem");
    let good = std::fs::read(&ca).unwrap();
    let generation = n.status_leaf("Agent Generation");

    // A link to /dev/zero: refused at fstat, nothing read.
    std::fs::remove_file(&ca).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &ca).unwrap();
    let e = wait_fault(&n, "ca.pem", "a character device");
    assert!(e.contains("/dev/zero"), "{e}");
    handshake_ok(&n, &client, "handshake while ca.pem links to /dev/zero");
    put(&ca, &good);
    wait_no_fault(&n);

    // A FIFO nobody writes: opened non-blocking, refused; reloads go on.
    std::fs::remove_file(&ca).unwrap();
    nix::unistd::mkfifo(&ca, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    wait_fault(&n, "ca.pem", "a FIFO");
    handshake_ok(&n, &client, "handshake while ca.pem is a FIFO");
    // Another file changes meanwhile: the agent is not stuck on the FIFO, it rebuilds and
    // still names ca.pem.
    n.ok(&["xConfiguration SystemUnit Description: \"while a FIFO\""]);
    wait_fault(&n, "ca.pem", "a FIFO");
    put(&ca, &good);
    wait_no_fault(&n);
    n.wait_leaf("Agent LastReload Result", |v| v == "ok");

    // 100 MB of garbage: refused by its size, never parsed.
    let big = ca.with_extension("big");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    drop(f);
    std::fs::rename(&big, &ca).unwrap();
    wait_fault(&n, "ca.pem", "larger than 8 MiB");
    handshake_ok(&n, &client, "handshake while ca.pem is 100 MB");
    put(&ca, &good);
    wait_no_fault(&n);

    // xconf.txt deleted: a fault, not "every default" (the listeners stay where they are).
    let xconf = n.root().join("config/xconf.txt");
    let cfg = std::fs::read(&xconf).unwrap();
    std::fs::remove_file(&xconf).unwrap();
    wait_fault(&n, "xconf.txt", "the configuration file is missing");
    handshake_ok(&n, &client, "handshake while xconf.txt is missing");
    assert_eq!(n.status_leaf("SIP TLS Listener Mode"), "On");
    put(&xconf, &cfg);
    wait_no_fault(&n);
    handshake_ok(&n, &client, "handshake after the faults");
    assert!(
        n.events().contains("kept generation"),
        "event log names the kept generation:\n{}",
        n.events()
    );
    assert_ne!(generation, "", "a generation was reported");
}

#[test]
fn file_parameters_refuse_devices_and_fifos_by_name() {
    let n = Node::new("params");
    let o = n.xsh(&["xCommand Security Certificates CA Add File: \"/dev/zero\""]);
    assert!(
        o.stdout.contains("/dev/zero") && o.stdout.contains("a character device"),
        "CA Add File: /dev/zero:\n{}",
        o.stdout
    );
    let fifo = n.root().join("fifo.pem");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let o = n.xsh(&[&format!(
        "xCommand Security Certificates Server Upload CertificateFile: \"{}\"",
        fifo.display()
    )]);
    assert!(
        o.stdout.contains("fifo.pem") && o.stdout.contains("a FIFO"),
        "Upload CertificateFile: FIFO:\n{}",
        o.stdout
    );
    // The limits the table holds are the ones the help names.
    let o = n.xsh(&["xCommand Security Certificates CA Add ??"]);
    let ca = xsh::bounded::FileKind::CaList.limit().bytes;
    assert!(
        o.stdout
            .contains(&format!("At most {}", xsh::bounded::human(ca))),
        "CA Add help names the CA list limit:\n{}",
        o.stdout
    );
    let o = n.xsh(&["xCommand Security Certificates Server Upload ??"]);
    for k in [
        xsh::bounded::FileKind::Certificate,
        xsh::bounded::FileKind::Key,
    ] {
        let h = format!("At most {}", xsh::bounded::human(k.limit().bytes));
        assert!(
            o.stdout.contains(&h),
            "upload help holds {h:?}:\n{}",
            o.stdout
        );
    }
}

#[test]
fn generation_refuses_to_wrap() {
    let n = Node::new("wrap");
    let xconf = n.root().join("config/xconf.txt");
    let text = std::fs::read_to_string(&xconf).unwrap();
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("# generation:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let at_end = format!("# generation: {}\n{body}", u64::MAX);
    std::fs::write(&xconf, &at_end).unwrap();
    let o = n.xsh(&["xConfiguration SystemUnit Description: \"one more\""]);
    assert!(
        o.stdout.contains("at its end") && o.stdout.contains("wrap"),
        "a change at u64::MAX is refused:\n{}",
        o.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&xconf).unwrap(),
        at_end,
        "nothing stored"
    );
}

#[test]
fn deleting_the_lock_file_does_not_admit_a_second_agent() {
    let mut n = Node::new("lock");
    n.start();
    let first = n.agent().guard.pid();
    std::fs::remove_file(n.root().join("status/xagent.lock")).unwrap();
    let mut second = spawn_agent(n.root());
    let status = second.guard.wait_exit("second agent");
    assert!(!status.success(), "a second agent ran");
    let err = second.stderr.text() + &second.stdout.text();
    assert!(err.contains("another xagent is running"), "{err}");
    n.wait_leaf("Agent Pid", |p| p == first.to_string());
    assert!(n.root().join("status/agent.json").exists(), "snapshot kept");
}

#[test]
fn close_refused_closes_established_connections_at_the_mode_flip() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    // serverAuth-only: accepted with the mode Off, refused with it On.
    let leaf = pki.issue(true, "server-only.example", LeafEku::ServerAuth);
    let mut n = Node::new("close");
    n.ca_add(&pki.ca1_root());
    n.ok(&["xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: Off"]);
    n.start();

    // Off (the default): the connection keeps the decision of its handshake.
    let mut kept = SClient::connect(n.sip_port, &leaf);
    kept.options(1, "accepted with mode Off");
    n.set_mode("On");
    kept.options(
        2,
        "the same connection still answered after the flip (setting Off)",
    );
    drop(kept);

    n.set_mode("Off");
    n.ok(&["xConfiguration Agent Reload CloseRefused Mode: On"]);
    n.wait_leaf("Agent LastReload Result", |v| v == "ok");
    let mut held = SClient::connect(n.sip_port, &leaf);
    held.options(1, "accepted with mode Off");
    n.set_mode("On");
    let status = held
        .guard
        .wait_exit("s_client ends when the agent closes it");
    let _ = status;
    let ev = n.events();
    assert!(
        ev.contains("closed the established sip connection"),
        "event log names the closed connection:\n{ev}"
    );
}

/// A client that runs full mutual-TLS handshakes + `OPTIONS` in a loop (rustls), counting
/// successes and failures, until stopped.
struct Load {
    ok: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, l: &LeafFiles) -> Load {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use std::sync::atomic::Ordering;
        use std::sync::Arc;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&l.root).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&l.chain)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&l.key).unwrap();
        let cfg = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap(),
        );
        let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (o, f, s) = (ok.clone(), failed.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match one_round_trip(&cfg, port) {
                    Ok(()) => {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => f.lock().unwrap().push(e),
                }
            }
        });
        Load {
            ok,
            failed,
            stop,
            thread: Some(thread),
        }
    }

    fn ok(&self) -> u64 {
        self.ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until a few more handshakes succeeded.
    fn more(&self, what: &str) {
        let since = self.ok();
        wait_for(what, || {
            if self.ok() >= since + 3 {
                Ok(())
            } else {
                Err(format!(
                    "{} ok, failures {:?}",
                    self.ok(),
                    self.failed.lock().unwrap()
                ))
            }
        });
    }

    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (self.ok(), self.failed.lock().unwrap().clone())
    }
}

fn one_round_trip(cfg: &std::sync::Arc<rustls::ClientConfig>, port: u16) -> Result<(), String> {
    use std::io::Read;
    let tcp =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .ok();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before the answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if !buf.starts_with(b"SIP/2.0 200") {
        return Err(format!("answer: {:?}", String::from_utf8_lossy(&buf)));
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

/// File faults under load (RELIABILITY.md, "File faults under load"): rounds of every fault
/// while a client handshakes without pause; each fault is refused and reported, then undone,
/// and no handshake fails. Prints the counts.
#[test]
fn file_faults_under_load_fail_no_handshake() {
    let pki = Pki::new();
    let mut n = Node::new("load");
    n.ca_add(&pki.ca1_root());
    let server = pki.issue(true, "load server", LeafEku::Both);
    n.upload_server(&server, false);
    let client = pki.issue(true, "load.example", LeafEku::ClientAuth);
    n.start();
    let load = Load::start(n.sip_port, &client);
    load.more("first handshakes");
    let ca = n.certs().join("ca.pem");
    let crl = n.certs().join("client-ca.crl");
    let xconf = n.root().join("config/xconf.txt");
    let good_ca = std::fs::read(&ca).unwrap();
    let good_cfg = std::fs::read(&xconf).unwrap();
    let rounds = 5;
    let mut faults = 0;
    for round in 0..rounds {
        // ca.pem → /dev/zero
        std::fs::remove_file(&ca).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &ca).unwrap();
        wait_fault(&n, "ca.pem", "a character device");
        load.more("handshakes with ca.pem → /dev/zero");
        put(&ca, &good_ca);
        wait_no_fault(&n);
        // ca.pem a FIFO
        std::fs::remove_file(&ca).unwrap();
        nix::unistd::mkfifo(&ca, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        wait_fault(&n, "ca.pem", "a FIFO");
        load.more("handshakes with a FIFO ca.pem");
        put(&ca, &good_ca);
        wait_no_fault(&n);
        // 100 MB ca.pem
        let big = ca.with_extension("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(100 * 1024 * 1024)
            .unwrap();
        std::fs::rename(&big, &ca).unwrap();
        wait_fault(&n, "ca.pem", "larger than 8 MiB");
        load.more("handshakes with a 100 MB ca.pem");
        put(&ca, &good_ca);
        wait_no_fault(&n);
        // xconf.txt missing, then a link to /dev/zero
        std::fs::remove_file(&xconf).unwrap();
        wait_fault(&n, "xconf.txt", "missing");
        load.more("handshakes without xconf.txt");
        // (xsh refuses the link too, so the fault is read from the event log, not xStatus.)
        let seen = |n: &Node| n.events().matches("xconf.txt: is a symbolic link").count();
        let before = seen(&n);
        std::os::unix::fs::symlink("/dev/zero", &xconf).unwrap();
        wait_for("the agent refuses xconf.txt → /dev/zero", || {
            if seen(&n) > before {
                Ok(())
            } else {
                Err(n.events())
            }
        });
        load.more("handshakes with xconf.txt → /dev/zero");
        put(&xconf, &good_cfg);
        wait_no_fault(&n);
        // client-ca.crl a folder (read only when revocation is on: the hash still sees it)
        std::fs::create_dir(&crl).unwrap();
        load.more("handshakes with a folder as the CRL");
        std::fs::remove_dir(&crl).unwrap();
        faults += 6;
        println!("round {} done: {} handshakes so far", round + 1, load.ok());
    }
    let (ok, failed) = load.finish();
    println!(
        "file faults under load: {faults} faults in {rounds} rounds, {ok} handshakes succeeded, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "handshakes failed: {failed:?}");
}
