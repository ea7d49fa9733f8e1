//! Helpers shared by `tests/agent_matrix.rs` and `tests/agent_faults.rs`: nodes (a temp ROOT with
//! an `xagent` on free loopback ports), `xsh` in JSON mode, status leaves, the handshake log,
//! PEM files from `TestCa`, and child processes that are always killed (Drop guard, also on panic).
//!
//! Nothing here asserts on timing: [`wait_for`] polls a condition up to a generous deadline and
//! fails with the last observed state.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
pub mod common;
pub mod sip;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use xsh::certs::pki::{IssuedLeaf, LeafEku, LeafSpec, TestCa};

pub const XSH: &str = env!("CARGO_BIN_EXE_xsh");
pub const XAGENT: &str = env!("CARGO_BIN_EXE_xagent");

/// How long a condition may take before a test gives up (not a timing assertion: a deadline).
pub const DEADLINE: Duration = Duration::from_secs(25);
const POLL: Duration = Duration::from_millis(100);

/// Polls `f` every 100 ms until it returns `Ok`, up to [`DEADLINE`]; then panics with `what` and
/// the last observed state.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    wait_for_within(what, DEADLINE, &mut f)
}

pub fn wait_for_within<T>(
    what: &str,
    deadline: Duration,
    f: &mut dyn FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    let mut last;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        if start.elapsed() > deadline {
            panic!("gave up waiting for {what}; last observed: {last}");
        }
        std::thread::sleep(POLL);
    }
}

/// A child process that is killed and reaped when dropped (also during a panic).
pub struct ChildGuard {
    pub child: Option<Child>,
    pub label: String,
}

impl ChildGuard {
    pub fn new(child: Child, label: &str) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            label: label.to_string(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// Non-blocking: the exit status if the process ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits (polling, up to the deadline) for the process to exit.
    pub fn wait_exit(&mut self, what: &str) -> ExitStatus {
        wait_for(what, || {
            self.try_wait().ok_or_else(|| "still running".into())
        })
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Collected lines of a child's stdout or stderr, filled by a reader thread.
#[derive(Clone, Default)]
pub struct Lines(pub Arc<Mutex<Vec<String>>>);

impl Lines {
    pub fn capture<R: std::io::Read + Send + 'static>(r: R) -> Lines {
        let l = Lines::default();
        let l2 = l.clone();
        std::thread::spawn(move || {
            let mut br = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match br.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let s = String::from_utf8_lossy(&buf).trim_end().to_string();
                        l2.0.lock().unwrap().push(s);
                    }
                }
            }
        });
        l
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    pub fn contains(&self, s: &str) -> bool {
        self.all().iter().any(|l| l.contains(s))
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; [`Node::start`] retries if it was taken).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Output of one `xsh` run.
#[derive(Debug)]
pub struct XshOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `xsh --root ROOT --no-banner` with `input` on stdin.
pub fn xsh_run(root: &Path, input: &str) -> XshOut {
    let mut child = Command::new(XSH)
        .arg("--root")
        .arg(root)
        .arg("--no-banner")
        .env_remove("XSH_ROOT")
        .env_remove("SSH_ORIGINAL_COMMAND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xsh");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait xsh");
    let _ = w.join();
    XshOut {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every JSON document of a JSON-mode reply stream.
pub fn json_docs(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .collect()
}

/// A leaf of a JSON status document by path words (`Zones Zone 1 Peer 1 Tunnel Status`): objects by key,
/// instance arrays by their `id`, ending at `{"Value": ..}`.
pub fn leaf(doc: &Value, words: &str) -> Option<String> {
    let mut v = doc.get("Status").unwrap_or(doc);
    let mut it = words.split_whitespace();
    while let Some(w) = it.next() {
        v = v.get(w)?;
        if let Value::Array(items) = v {
            let id = it.next()?;
            v = items
                .iter()
                .find(|i| i.get("id").and_then(|x| x.as_str()) == Some(id))?;
        }
    }
    v.get("Value").and_then(|x| x.as_str()).map(str::to_string)
}

/// The `serial=..` of a `describe()` text (`LastAccepted`, `LastRejection`, handshake log).
pub fn serial_in(text: &str) -> Option<String> {
    let i = text.find("serial=")? + "serial=".len();
    Some(
        text[i..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string(),
    )
}

/// Serial of the first certificate of a PEM text, in the product's format.
pub fn pem_serial(pem: &str) -> String {
    let certs = xsh::certs::info::parse_pem_certs(pem.as_bytes()).expect("pem");
    xsh::certs::decode(&certs[0], rustls::pki_types::UnixTime::now())
        .expect("decode")
        .serial
}

/// The state of an outbound zone, as `xstatus Zones` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    pub status: String,
    pub reason: String,
    pub presented_serial: String,
    pub peer_serial: String,
    pub last_check: String,
    pub tunnel_status: String,
    pub tunnel_reason: String,
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "zone {} ({}) presented={} peer={} check={}; tunnel {} ({})",
            self.status,
            self.reason,
            self.presented_serial,
            self.peer_serial,
            self.last_check,
            self.tunnel_status,
            self.tunnel_reason
        )
    }
}

/// One PKI of a test: CA1 (private) and CA2 (public, serverAuth-only intermediate), PEM files in a
/// folder outside every ROOT.
pub struct Pki {
    pub ca1: TestCa,
    pub ca2: TestCa,
    pub dir: tempfile::TempDir,
    n: Mutex<u32>,
}

/// Files of one issued leaf.
#[derive(Debug, Clone)]
pub struct LeafFiles {
    pub leaf: IssuedLeaf,
    pub cert: PathBuf,
    pub chain: PathBuf,
    pub key: PathBuf,
    pub root: PathBuf,
    pub intermediate: Option<PathBuf>,
    pub serial: String,
}

impl Pki {
    pub fn new() -> Pki {
        let p = Pki {
            ca1: TestCa::private_ca1().expect("CA1"),
            ca2: TestCa::public_ca2().expect("CA2"),
            dir: tempfile::Builder::new()
                .prefix("xsh-pki-")
                .tempdir()
                .unwrap(),
            n: Mutex::new(0),
        };
        std::fs::write(p.ca1_root(), p.ca1.root_pem()).unwrap();
        std::fs::write(p.ca2_root(), p.ca2.root_pem()).unwrap();
        p
    }

    pub fn ca1_root(&self) -> PathBuf {
        self.dir.path().join("ca1-root.pem")
    }

    pub fn ca2_root(&self) -> PathBuf {
        self.dir.path().join("ca2-root.pem")
    }

    /// Issues a leaf from CA1 (`private`) or CA2 and writes its files.
    pub fn issue(&self, private: bool, cn: &str, eku: LeafEku) -> LeafFiles {
        let ca = if private { &self.ca1 } else { &self.ca2 };
        let leaf = ca.issue(&LeafSpec::new(cn, eku)).expect("issue");
        let n = {
            let mut g = self.n.lock().unwrap();
            *g += 1;
            *g
        };
        let base = self
            .dir
            .path()
            .join(format!("{n:03}-{}", cn.replace(' ', "_")));
        let f = |ext: &str, text: &str| {
            let p = PathBuf::from(format!("{}.{ext}", base.display()));
            std::fs::write(&p, text).unwrap();
            p
        };
        let intermediate =
            (!leaf.intermediates_pem.is_empty()).then(|| f("inter.pem", &leaf.intermediates_pem));
        LeafFiles {
            cert: f("cert.pem", &leaf.cert_pem),
            chain: f("chain.pem", &leaf.chain_pem),
            key: f("key.pem", &leaf.key_pem),
            root: if private {
                self.ca1_root()
            } else {
                self.ca2_root()
            },
            intermediate,
            serial: pem_serial(&leaf.cert_pem),
            leaf,
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `xagent` and its stdout.
pub struct AgentProc {
    pub guard: ChildGuard,
    pub stdout: Lines,
    pub stderr: Lines,
}

/// A node: its own temp ROOT, its listener ports, and (once started) its agent. The agent is
/// declared first so it is killed before the ROOT is removed.
pub struct Node {
    pub agent: Option<AgentProc>,
    pub name: String,
    pub sip_port: u16,
    pub tunnel_port: u16,
    pub dir: tempfile::TempDir,
}

impl Node {
    /// A fresh ROOT (default certificate, migrated stores) with free ports and a 1 s zone interval.
    pub fn new(name: &str) -> Node {
        let dir = tempfile::Builder::new()
            .prefix(&format!("xsh-{name}-"))
            .tempdir()
            .unwrap();
        let mut n = Node {
            agent: None,
            name: name.to_string(),
            sip_port: 0,
            tunnel_port: 0,
            dir,
        };
        n.pick_ports();
        n.ok(&["xConfiguration Agent StatusInterval: 1"]);
        n
    }

    fn pick_ports(&mut self) {
        self.sip_port = free_port();
        loop {
            self.tunnel_port = free_port();
            if self.tunnel_port != self.sip_port {
                break;
            }
        }
        let (s, t) = (self.sip_port, self.tunnel_port);
        self.ok(&[
            &format!("xConfiguration SIP TLS Port: {s}"),
            &format!("xConfiguration Tunnel Port: {t}"),
        ]);
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// One `openssl s_client` handshake against this node's SIP listener with a client
    /// certificate, sending one `OPTIONS`; the outcome is read from status or the handshake log.
    pub fn openssl_handshake(&self, cert: &Path, key: &Path) {
        let child = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", self.sip_port),
                "-brief",
            ])
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut c) = child {
            if let Some(mut i) = c.stdin.take() {
                let _ = i.write_all(
                    b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                );
            }
            let _ = c.wait();
        }
    }

    pub fn certs(&self) -> PathBuf {
        self.root().join("certs")
    }

    /// Runs commands; returns the output.
    pub fn xsh(&self, cmds: &[&str]) -> XshOut {
        let mut input = cmds.join("\n");
        input.push('\n');
        xsh_run(self.root(), &input)
    }

    /// Runs commands and insists that every one succeeded.
    pub fn ok(&self, cmds: &[&str]) -> String {
        let o = self.xsh(cmds);
        assert!(
            o.ok,
            "{}: xsh {cmds:?} failed:\n{}\n{}",
            self.name, o.stdout, o.stderr
        );
        o.stdout
    }

    /// Runs one command in JSON mode; returns its reply documents.
    pub fn json(&self, cmd: &str) -> Vec<Value> {
        let o = self.xsh(&["xPreferences OutputMode JSON", cmd]);
        json_docs(&o.stdout)
    }

    /// `xStatus <path>` in JSON mode (the first document, or Null).
    pub fn status(&self, path: &str) -> Value {
        self.json(&format!("xStatus {path}"))
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    }

    /// One status leaf by its full path words (empty when absent).
    pub fn status_leaf(&self, words: &str) -> String {
        leaf(&self.status(words), words).unwrap_or_default()
    }

    /// Waits until a status leaf satisfies `pred` (the snapshot is written shortly after the
    /// event, so a leaf is never read just once right after something happened).
    pub fn wait_leaf(&self, words: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_for(&format!("{}: {words}", self.name), || {
            let v = self.status_leaf(words);
            if pred(&v) {
                Ok(v)
            } else {
                Err(format!("{v:?}"))
            }
        })
    }

    /// Waits until a listener's `LastAccepted` (or another describe() leaf) shows `serial`.
    pub fn wait_serial_in(&self, words: &str, serial: &str) -> String {
        self.wait_leaf(words, |v| serial_in(v).as_deref() == Some(serial))
    }

    pub fn zone(&self, id: u32) -> Zone {
        let doc = self.status("Zones");
        let g = |w: &str| leaf(&doc, &format!("Zones Zone {id} {w}")).unwrap_or_default();
        Zone {
            status: g("Status"),
            reason: g("Reason"),
            presented_serial: g("Peer 1 PresentedSerial"),
            peer_serial: g("Peer 1 PeerSerial"),
            last_check: g("Peer 1 LastCheck"),
            tunnel_status: g("Peer 1 Tunnel Status"),
            tunnel_reason: g("Peer 1 Tunnel Reason"),
        }
    }

    /// Peer `m` of zone `id`, as `xstatus Zones Zone N Peer M` shows it (`status` and `reason`
    /// are the peer's own).
    pub fn peer(&self, id: u32, m: u32) -> Zone {
        let doc = self.status("Zones");
        let g = |w: &str| leaf(&doc, &format!("Zones Zone {id} Peer {m} {w}")).unwrap_or_default();
        Zone {
            status: g("Status"),
            reason: g("Reason"),
            presented_serial: g("PresentedSerial"),
            peer_serial: g("PeerSerial"),
            last_check: g("LastCheck"),
            tunnel_status: g("Tunnel Status"),
            tunnel_reason: g("Tunnel Reason"),
        }
    }

    /// Waits until zone `id` satisfies `pred`.
    pub fn wait_zone(&self, id: u32, what: &str, pred: impl Fn(&Zone) -> bool) -> Zone {
        wait_for(&format!("{}: zone {id} {what}", self.name), || {
            let z = self.zone(id);
            if pred(&z) {
                Ok(z)
            } else {
                Err(z.to_string())
            }
        })
    }

    /// The serial of a store as `xStatus Security Certificates <Server|Client> SerialNumber`.
    pub fn store_serial(&self, store: &str) -> String {
        self.status_leaf(&format!("Security Certificates {store} SerialNumber"))
    }

    /// Sets the EKU checking mode through xsh and waits until the agent applied it.
    pub fn set_mode(&self, mode: &str) {
        self.ok(&[&format!(
            "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: {mode}"
        )]);
        if self.agent.is_some() {
            wait_for(&format!("{}: agent applies mode {mode}", self.name), || {
                let m = self.status_leaf("SIP TLS Listener Mode");
                if m == mode {
                    Ok(())
                } else {
                    Err(format!("Mode {m:?}"))
                }
            });
        }
    }

    /// Adds a CA file to the trusted list through xsh.
    pub fn ca_add(&self, file: &Path) {
        self.ok(&[&format!(
            "xCommand Security Certificates CA Add File: \"{}\"",
            file.display()
        )]);
    }

    /// Uploads the server store (chain + key) through xsh, optionally also as client.
    pub fn upload_server(&self, l: &LeafFiles, also_as_client: bool) {
        self.ok(&[&format!(
            "xCommand Security Certificates Server Upload CertificateFile: \"{}\" KeyFile: \"{}\" AlsoAsClient: {}",
            l.chain.display(),
            l.key.display(),
            if also_as_client { "True" } else { "False" }
        )]);
    }

    /// Uploads the client store through xsh (refused without clientAuth).
    pub fn upload_client(&self, l: &LeafFiles) {
        self.ok(&[&format!(
            "xCommand Security Certificates Client Upload CertificateFile: \"{}\" KeyFile: \"{}\"",
            l.chain.display(),
            l.key.display()
        )]);
    }

    /// Configures zone `id` (Neighbor/TraversalClient) to `peer`'s listeners.
    pub fn zone_to(&self, id: u32, ty: &str, sip_port: u16, tunnel_port: u16, verify: bool) {
        let p = format!("xConfiguration Zones Zone {id}");
        self.ok(&[
            &format!("{p} Name: \"{}-zone{id}\"", self.name),
            &format!("{p} Type: {ty}"),
            &format!("{p} {ty} SIP Port: {sip_port}"),
            &format!("{p} {ty} Tunnel Port: {tunnel_port}"),
            &format!(
                "{p} {ty} SIP TLS Verify Mode: {}",
                if verify { "On" } else { "Off" }
            ),
            &format!("{p} {ty} Peer 1 Address: 127.0.0.1"),
        ]);
    }

    /// Starts `xagent --root R --verbose` and waits for `ready` with both listeners bound; picks
    /// new ports and retries if another process took one meanwhile.
    pub fn start(&mut self) {
        assert!(self.agent.is_none(), "{}: agent already started", self.name);
        for attempt in 1..=5 {
            let mut a = spawn_agent(self.root());
            let ready = wait_for(&format!("{}: xagent ready", self.name), || {
                if a.stdout.contains("xagent: ready") {
                    return Ok(true);
                }
                if a.guard.try_wait().is_some() {
                    return Ok(false);
                }
                Err(format!(
                    "stdout: {}\nstderr: {}",
                    a.stdout.text(),
                    a.stderr.text()
                ))
            });
            let bound = a
                .stdout
                .contains(&format!("sip listening on 127.0.0.1:{}", self.sip_port))
                && a.stdout.contains(&format!(
                    "tunnel listening on 127.0.0.1:{}",
                    self.tunnel_port
                ));
            if ready && bound {
                self.agent = Some(a);
                return;
            }
            assert!(
                attempt < 5,
                "{}: xagent did not start with its listeners:\nstdout: {}\nstderr: {}",
                self.name,
                a.stdout.text(),
                a.stderr.text()
            );
            drop(a);
            self.pick_ports();
        }
    }

    pub fn agent(&mut self) -> &mut AgentProc {
        self.agent.as_mut().expect("agent started")
    }

    /// The agent's handshake log, one JSON record per line.
    pub fn handshakes(&self) -> Vec<Value> {
        std::fs::read_to_string(self.root().join("status/handshakes.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The agent's event log.
    pub fn events(&self) -> String {
        std::fs::read_to_string(self.root().join("status/events.log")).unwrap_or_default()
    }
}

/// Spawns an agent on `root` with captured output (not waiting for anything).
pub fn spawn_agent(root: &Path) -> AgentProc {
    let mut child = Command::new(XAGENT)
        .arg("--root")
        .arg(root)
        .arg("--verbose")
        .env_remove("XSH_ROOT")
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xagent");
    let stdout = Lines::capture(child.stdout.take().unwrap());
    let stderr = Lines::capture(child.stderr.take().unwrap());
    AgentProc {
        guard: ChildGuard::new(child, "xagent"),
        stdout,
        stderr,
    }
}

/// `true` when the `openssl` command runs; otherwise a visible skip (a failure under `CI=true`).
pub fn require_openssl() -> bool {
    common::require_tool("openssl", "version", "openssl")
}

/// A handshake-log record matching `listener` and `decision` whose presented serial is `serial`.
pub fn find_handshake<'a>(
    log: &'a [Value],
    listener: &str,
    decision: &str,
    serial: &str,
) -> Option<&'a Value> {
    log.iter().rev().find(|r| {
        r["listener"] == listener
            && r["decision"] == decision
            && r["presented_by_peer"]
                .as_str()
                .and_then(serial_in)
                .as_deref()
                == Some(serial)
    })
}
