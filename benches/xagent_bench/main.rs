//! `xagent-bench`: the agent's measurements side by side with nginx, printing figures and ratios.
//!
//! ```text
//! cargo build --release --bins
//! target/release/xagent-bench [all|p3|p4|p5 ...] [--flips N] [--seconds S] [--threads N]
//!                             [--conns N] [--rounds N] [--no-nginx] [--nginx PATH]
//! ```
//!
//! * P3 reload latency. Ours: `xsh -c '... ExtendedKeyUsage Checking Mode: Off|On'`; from the line
//!   `OK` (the change is durable) to the first new handshake that obeys it, probing with a
//!   serverAuth-only client certificate (accepted under Off, rejected under On). Also ours for a
//!   certificate change (atomic write of server.pem/privkey.pem → first handshake presenting it).
//!   nginx: the same certificate files in a temp dir, `nginx -s reload` after the change, from the
//!   reload command's exit to the first handshake presenting the new certificate.
//! * P4 mutual-TLS handshakes/s (ECDSA P-256, TLS 1.3, x25519): one Rust/rustls load generator, N
//!   client threads, a fresh full handshake per connection (resumption disabled) plus one request
//!   and its response (the only way a TLS 1.3 client learns that its certificate was accepted),
//!   against our SIP listener (`OPTIONS` → `200`) and nginx with `ssl_verify_client on`
//!   (`GET /` → `200`). Then the same load against ours while the mode is flipped through `xsh`
//!   and the server certificate re-uploaded, 10 times a second each; every handshake should pass
//!   (client certificate with both EKUs, both server certificates chain to the trusted CA).
//! * P5 agent VmRSS idle, and with N (1,000) idle TLS connections held open.
//!
//! Everything runs on 127.0.0.1, in a temp dir that is removed at the end; every loop is bounded
//! in count and time. Figures only: nothing here passes or fails a build.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use xsh::certs::pki::{IssuedLeaf, LeafEku, LeafSpec, TestCa};
use xsh::certs::store::{write_file_atomic, write_pair_atomic};
use xsh::certs::{parse_pem_certs, parse_pem_key};

const MODE_KEY: &str = "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode";
const SIP_REQ: &[u8] = b"OPTIONS sip:bench@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKbench\r\nFrom: <sip:bench@127.0.0.1>;tag=1\r\nTo: <sip:bench@127.0.0.1>\r\nCall-ID: 1@bench\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
const SIP_OK: &[u8] = b"SIP/2.0 200";
const HTTP_REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
const HTTP_OK: &[u8] = b"HTTP/1.1 200";
/// Give up on one flip after this long (counted as a timeout, never waited out silently).
const FLIP_LIMIT: Duration = Duration::from_secs(5);

struct Opts {
    flips: usize,
    seconds: u64,
    threads: usize,
    conns: usize,
    rounds: usize,
    nginx: Option<PathBuf>,
}

fn main() {
    let mut what: Vec<String> = Vec::new();
    let mut opts = Opts {
        flips: 200,
        seconds: 5,
        threads: 8,
        conns: 1000,
        rounds: 3,
        nginx: Some(PathBuf::from("nginx")),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| die(&format!("{name} needs a number")))
        };
        match a.as_str() {
            "all" | "p3" | "p4" | "p5" => what.push(a),
            "--flips" => opts.flips = num("--flips").max(2) as usize,
            "--seconds" => opts.seconds = num("--seconds").clamp(1, 120),
            "--threads" => opts.threads = num("--threads").clamp(1, 256) as usize,
            "--conns" => opts.conns = num("--conns").clamp(1, 10_000) as usize,
            "--rounds" => opts.rounds = num("--rounds").clamp(1, 20) as usize,
            "--no-nginx" => opts.nginx = None,
            "--nginx" => opts.nginx = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: xagent-bench [all|p3|p4|p5 ...] [--flips N] [--seconds S] [--threads N] [--conns N] [--rounds N] [--no-nginx] [--nginx PATH]");
                return;
            }
            other => die(&format!("unknown argument '{other}'")),
        }
    }
    if what.is_empty() || what.iter().any(|w| w == "all") {
        what = vec!["p3".into(), "p4".into(), "p5".into()];
    }
    raise_nofile(opts.conns as u64 * 2 + 4096);
    if let Some(n) = &opts.nginx {
        match Command::new(n).arg("-v").output() {
            Ok(o) if o.status.success() => {
                println!(
                    "nginx: {}",
                    String::from_utf8_lossy(&o.stderr)
                        .trim()
                        .replace("nginx version: ", "")
                );
            }
            _ => {
                println!(
                    "nginx: not found (apt-get install -y nginx); the nginx columns are skipped"
                );
                opts.nginx = None;
            }
        }
    }
    let work = std::env::temp_dir().join(format!("xagent-bench.{}", std::process::id()));
    let _cleanup = RemoveOnDrop(work.clone());
    std::fs::create_dir_all(&work).unwrap_or_else(|e| die(&format!("{}: {e}", work.display())));
    let pki = Pki::new();
    println!(
        "machine: {} cores; bench pid {}; work dir {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::process::id(),
        work.display()
    );
    for w in &what {
        match w.as_str() {
            "p3" => p3(&work, &pki, &opts),
            "p4" => p4(&work, &pki, &opts),
            "p5" => p5(&work, &pki, &opts),
            _ => {}
        }
    }
}

fn die(msg: &str) -> ! {
    eprintln!("xagent-bench: {msg}");
    std::process::exit(2)
}

struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Soft RLIMIT_NOFILE up to `want` (bounded by the hard limit); children inherit it.
fn raise_nofile(want: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let target = want.min(hard);
        if soft < target {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, target, hard);
        }
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((soft, hard));
        if soft < want {
            println!(
                "note: open-file limit is {soft} (< {want}); P5 may not reach its connection count"
            );
        }
    }
}

fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let p = exe.with_file_name(name);
    if !p.exists() {
        die(&format!(
            "{} not found: build it first (cargo build --release --bins)",
            p.display()
        ));
    }
    p
}

// ---------------------------------------------------------------------------------------------
// PKI and client configurations

struct Pki {
    ca_pem: String,
    server_a: IssuedLeaf,
    server_b: IssuedLeaf,
    /// serverAuth + clientAuth: passes in both modes.
    client_both: Arc<ClientConfig>,
    /// serverAuth only: accepted under Off, rejected under On.
    client_srv: Arc<ClientConfig>,
    agent_client: IssuedLeaf,
}

impl Pki {
    fn new() -> Pki {
        let ca = TestCa::private_ca1().unwrap_or_else(|e| die(&e.to_string()));
        let issue = |cn: &str, eku| {
            ca.issue(&LeafSpec::new(cn, eku))
                .unwrap_or_else(|e| die(&e.to_string()))
        };
        let server_a = issue("xagent-bench server A", LeafEku::Both);
        let server_b = issue("xagent-bench server B", LeafEku::Both);
        let both_leaf = issue("xagent-bench client both EKUs", LeafEku::Both);
        let srv_leaf = issue("xagent-bench client serverAuth only", LeafEku::ServerAuth);
        let agent_client = issue("xagent-bench agent client store", LeafEku::Both);
        let ca_pem = ca.root_pem().to_string();
        Pki {
            client_both: client_config(&ca_pem, &both_leaf),
            client_srv: client_config(&ca_pem, &srv_leaf),
            ca_pem,
            server_a,
            server_b,
            agent_client,
        }
    }
}

fn client_config(ca_pem: &str, leaf: &IssuedLeaf) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in parse_pem_certs(ca_pem.as_bytes()).unwrap_or_default() {
        let _ = roots.add(c);
    }
    let chain = parse_pem_certs(leaf.chain_pem.as_bytes()).unwrap_or_else(|e| die(&e.to_string()));
    let key = parse_pem_key(leaf.key_pem.as_bytes()).unwrap_or_else(|e| die(&e.to_string()));
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap_or_else(|e| die(&e.to_string()))
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap_or_else(|e| die(&e.to_string()));
    c.resumption = Resumption::disabled();
    Arc::new(c)
}

fn cert_der(pem: &str) -> Vec<u8> {
    parse_pem_certs(pem.as_bytes())
        .ok()
        .and_then(|v| v.into_iter().next())
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// One fresh full handshake plus one request/response. Ok = the server accepted us; returns the
/// stream (to hold it open) and the server's leaf certificate.
fn exchange(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    req: &[u8],
    ok: &[u8],
) -> Result<(Tls, Vec<u8>), String> {
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(req).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut got = Vec::with_capacity(64);
    let mut buf = [0u8; 512];
    while got.len() < ok.len() {
        let n = tls.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a response".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    if !got.starts_with(ok) {
        return Err(format!(
            "unexpected response {:?}",
            String::from_utf8_lossy(&got[..got.len().min(40)])
        ));
    }
    let server_cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c: &CertificateDer<'_>| c.to_vec())
        .unwrap_or_default();
    Ok((tls, server_cert))
}

// ---------------------------------------------------------------------------------------------
// Our agent

struct Agent {
    root: PathBuf,
    child: Child,
    sip: SocketAddr,
    pid: u32,
    /// Lines the agent printed after `ready`, with the time they were read.
    lines: Receiver<(Instant, String)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| die(&format!("no free port: {e}")))
}

fn xsh(root: &Path, cmd: &str) -> (Instant, Duration) {
    let start = Instant::now();
    let mut child = Command::new(sibling("xsh"))
        .arg("--root")
        .arg(root)
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| die(&format!("xsh: {e}")));
    let mut at = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.trim() == "OK" && at.is_none() {
                at = Some(Instant::now());
            }
        }
    }
    let st = child.wait();
    match (at, st) {
        (Some(t), Ok(s)) if s.success() => (t, t - start),
        _ => die(&format!("xsh -c {cmd:?} did not print OK")),
    }
}

impl Agent {
    fn start(work: &Path, name: &str, pki: &Pki) -> Agent {
        let root = work.join(name);
        let certs = root.join("certs");
        std::fs::create_dir_all(&certs).unwrap_or_else(|e| die(&e.to_string()));
        write_pair_atomic(
            &certs,
            "server.pem",
            "privkey.pem",
            pki.server_a.chain_pem.as_bytes(),
            pki.server_a.key_pem.as_bytes(),
        )
        .unwrap_or_else(|e| die(&e.to_string()));
        write_pair_atomic(
            &certs,
            "client.pem",
            "clientprivkey.pem",
            pki.agent_client.chain_pem.as_bytes(),
            pki.agent_client.key_pem.as_bytes(),
        )
        .unwrap_or_else(|e| die(&e.to_string()));
        write_file_atomic(&certs, "ca.pem", pki.ca_pem.as_bytes(), 0o644)
            .unwrap_or_else(|e| die(&e.to_string()));
        xsh(
            &root,
            &format!(
                "xConfiguration SIP TLS Port: {}\nxConfiguration Tunnel Port: {}\n{MODE_KEY}: On",
                free_port(),
                free_port()
            ),
        );
        let mut child = Command::new(sibling("xagent"))
            .arg("--root")
            .arg(&root)
            .arg("--verbose")
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| die(&format!("xagent: {e}")));
        let pid = child.id();
        let out = child.stdout.take().unwrap_or_else(|| die("no stdout"));
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let end = Instant::now() + Duration::from_secs(30);
        let mut sip = None;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((_, l)) => {
                    if let Some(a) = l.strip_prefix("xagent: sip listening on ") {
                        sip = a.trim().parse().ok();
                    }
                    if l == "xagent: ready" {
                        break;
                    }
                }
                Err(_) => die("xagent did not become ready within 30 s"),
            }
        }
        let sip = sip.unwrap_or_else(|| die("xagent printed no SIP listener address"));
        Agent {
            root,
            child,
            sip,
            pid,
            lines: rx,
        }
    }

    fn drain(&self) -> Vec<(Instant, String)> {
        self.lines.try_iter().collect()
    }

    fn rss_kib(&self) -> (u64, u64) {
        rss_of(self.pid)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (VmRSS, VmHWM) in KiB.
fn rss_of(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---------------------------------------------------------------------------------------------
// nginx

struct Nginx {
    bin: PathBuf,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Nginx {
    fn start(bin: &Path, work: &Path, pki: &Pki) -> Option<Nginx> {
        let dir = work.join("nginx");
        std::fs::create_dir_all(dir.join("logs")).ok()?;
        write_pair_atomic(
            &dir,
            "server.pem",
            "privkey.pem",
            pki.server_a.chain_pem.as_bytes(),
            pki.server_a.key_pem.as_bytes(),
        )
        .ok()?;
        std::fs::write(dir.join("ca.pem"), &pki.ca_pem).ok()?;
        let port = free_port();
        let d = dir.display();
        let user = if nix::unistd::geteuid().is_root() {
            "user root;\n"
        } else {
            ""
        };
        let conf = format!(
            "{user}worker_processes 2;
worker_rlimit_nofile 16384;
error_log {d}/logs/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name localhost;
    ssl_certificate {d}/server.pem;
    ssl_certificate_key {d}/privkey.pem;
    ssl_client_certificate {d}/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / {{ return 200 \"ok\\n\"; }}
  }}
}}
"
        );
        std::fs::write(dir.join("nginx.conf"), conf).ok()?;
        let st = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .output()
            .ok()?;
        if !st.status.success() {
            println!(
                "nginx failed to start: {}",
                String::from_utf8_lossy(&st.stderr).trim()
            );
            return None;
        }
        let n = Nginx {
            bin: bin.to_path_buf(),
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if exchange(n.addr, &pki.client_both, HTTP_REQ, HTTP_OK).is_ok() {
                return Some(n);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("nginx did not answer within 10 s");
        None
    }

    fn signal(&self, s: &str) -> bool {
        Command::new(&self.bin)
            .arg("-p")
            .arg(&self.dir)
            .arg("-e")
            .arg(self.dir.join("logs/error.log"))
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-s", s])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("nginx.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// VmRSS of the master and its workers, in KiB.
    fn rss_kib(&self) -> u64 {
        let Some(master) = self.master_pid() else {
            return 0;
        };
        let mut total = rss_of(master).0;
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(master) {
                    total += rss_of(pid).0;
                }
            }
        }
        total
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.master_pid();
        self.signal("stop");
        if let Some(pid) = pid {
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end && Path::new(&format!("/proc/{pid}")).exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Lat {
    ms: Vec<f64>,
    timeouts: usize,
}

impl Lat {
    fn summary(&self) -> (f64, f64, f64) {
        let mut v = self.ms.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        (
            pct(&v, 50.0),
            pct(&v, 99.0),
            v.last().copied().unwrap_or(f64::NAN),
        )
    }
    fn line(&self, label: &str) -> String {
        let (p50, p99, max) = self.summary();
        format!(
            "  {label:<44} n={:<4} p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  max {max:>8.2} ms  timeouts {}",
            self.ms.len(),
            self.timeouts
        )
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

// ---------------------------------------------------------------------------------------------
// P3

fn p3(work: &Path, pki: &Pki, opts: &Opts) {
    println!("\n== P3 reload latency ({} flips each) ==", opts.flips);
    let agent = Agent::start(work, "p3", pki);
    let srv_a = cert_der(&pki.server_a.cert_pem);
    let srv_b = cert_der(&pki.server_b.cert_pem);

    // Ours, mode flips: OK → first handshake that obeys the new mode.
    let mut mode = Lat {
        ms: Vec::new(),
        timeouts: 0,
    };
    let mut apply_ms = Vec::new();
    let mut xsh_ms = Vec::new();
    let mut probes = 0u64;
    let mut on_reason = BTreeMap::new();
    let _ = agent.drain();
    for i in 0..opts.flips {
        let off = i.is_multiple_of(2);
        let (t0, took) = xsh(
            &agent.root,
            &format!("{MODE_KEY}: {}", if off { "Off" } else { "On" }),
        );
        xsh_ms.push(took.as_secs_f64() * 1e3);
        let mut done = None;
        while t0.elapsed() < FLIP_LIMIT {
            probes += 1;
            let r = exchange(agent.sip, &pki.client_srv, SIP_REQ, SIP_OK);
            let obeys = match &r {
                Ok(_) => off,
                Err(e) => {
                    if !off {
                        *on_reason.entry(e.clone()).or_insert(0u64) += 1;
                    }
                    !off
                }
            };
            if obeys {
                done = Some(Instant::now());
                break;
            }
        }
        match done {
            Some(t1) => mode.ms.push((t1 - t0).as_secs_f64() * 1e3),
            None => mode.timeouts += 1,
        }
        // The agent prints 'applied' just after the swap, so the line may trail the obeying
        // handshake; wait for it (bounded) so it is attributed to this flip. It may also precede
        // the OK, which xsh prints only once the write is durable: signed milliseconds.
        let until = Instant::now() + Duration::from_millis(500);
        while let Ok((ta, l)) = agent
            .lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            if l.starts_with("xagent: applied generation") {
                let ms = match ta.checked_duration_since(t0) {
                    Some(d) => d.as_secs_f64() * 1e3,
                    None => -((t0 - ta).as_secs_f64() * 1e3),
                };
                apply_ms.push(ms);
                break;
            }
        }
    }

    // Ours, certificate change: atomic write of the pair → first handshake presenting it.
    let mut ours_cert = Lat {
        ms: Vec::new(),
        timeouts: 0,
    };
    let certs = agent.root.join("certs");
    for i in 0..opts.flips {
        let (leaf, der) = if i.is_multiple_of(2) {
            (&pki.server_b, &srv_b)
        } else {
            (&pki.server_a, &srv_a)
        };
        write_pair_atomic(
            &certs,
            "server.pem",
            "privkey.pem",
            leaf.chain_pem.as_bytes(),
            leaf.key_pem.as_bytes(),
        )
        .unwrap_or_else(|e| die(&e.to_string()));
        let t0 = Instant::now();
        ours_cert.push_first(t0, || {
            exchange(agent.sip, &pki.client_both, SIP_REQ, SIP_OK)
                .map(|(_, c)| c == *der)
                .unwrap_or(false)
        });
    }
    let _ = agent.drain();
    drop(agent);

    // nginx: same files, `nginx -s reload` → first handshake presenting the new certificate.
    let mut ng = Lat {
        ms: Vec::new(),
        timeouts: 0,
    };
    let mut ng_cmd = Vec::new();
    if let Some(bin) = &opts.nginx {
        if let Some(n) = Nginx::start(bin, work, pki) {
            for i in 0..opts.flips {
                let (leaf, der) = if i.is_multiple_of(2) {
                    (&pki.server_b, &srv_b)
                } else {
                    (&pki.server_a, &srv_a)
                };
                write_pair_atomic(
                    &n.dir,
                    "server.pem",
                    "privkey.pem",
                    leaf.chain_pem.as_bytes(),
                    leaf.key_pem.as_bytes(),
                )
                .unwrap_or_else(|e| die(&e.to_string()));
                let ts = Instant::now();
                if !n.signal("reload") {
                    println!("  nginx -s reload failed");
                    break;
                }
                let t0 = Instant::now();
                ng_cmd.push((t0 - ts).as_secs_f64() * 1e3);
                ng.push_first(t0, || {
                    exchange(n.addr, &pki.client_both, HTTP_REQ, HTTP_OK)
                        .map(|(_, c)| c == *der)
                        .unwrap_or(false)
                });
            }
        }
    }

    println!(
        "{}",
        mode.line("ours: mode change, xsh OK → obeying handshake")
    );
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        (pct(v, 50.0), pct(v, 99.0))
    };
    let (a50, a99) = med(&mut apply_ms);
    let (x50, x99) = med(&mut xsh_ms);
    println!(
        "    agent printed 'applied' at OK {a50:+.2} ms (p50), {a99:+.2} ms (p99) (n={}; negative = before xsh printed OK); xsh -c itself (spawn → OK): p50 {x50:.2} ms p99 {x99:.2} ms; {probes} probes",
        apply_ms.len()
    );
    if let Some((reason, n)) = on_reason.iter().max_by_key(|(_, n)| **n) {
        println!("    rejection seen by the serverAuth-only client under On ({n}×): {reason}");
    }
    println!(
        "{}",
        ours_cert.line("ours: cert change, write → new cert served")
    );
    let (_, m99, _) = mode.summary();
    let (m50, _, _) = mode.summary();
    if !ng.ms.is_empty() {
        let (c50, c99) = med(&mut ng_cmd);
        println!("{}", ng.line("nginx: cert change, -s reload → new cert"));
        println!("    (nginx -s reload itself: p50 {c50:.2} ms p99 {c99:.2} ms, not included)");
        let (n50, n99, _) = ng.summary();
        let (o50, o99, _) = ours_cert.summary();
        println!(
            "  ratio ours(mode)/nginx: p50 {:.3}x  p99 {:.3}x   ours(cert)/nginx: p50 {:.3}x  p99 {:.3}x",
            m50 / n50,
            m99 / n99,
            o50 / n50,
            o99 / n99
        );
        println!(
            "  goal p99 ≤ 25 ms: {} ({m99:.2} ms); goal ≤ 0.1× nginx: {} ({:.3}x)",
            verdict(m99 <= 25.0 && mode.timeouts == 0),
            verdict(m99 / n99 <= 0.1),
            m99 / n99
        );
    } else {
        println!(
            "  goal p99 ≤ 25 ms: {} ({m99:.2} ms); nginx ratio: not measured",
            verdict(m99 <= 25.0 && mode.timeouts == 0)
        );
    }
}

impl Lat {
    /// Polls `obeys` until it returns true (recording the latency from `t0`) or FLIP_LIMIT.
    fn push_first(&mut self, t0: Instant, mut obeys: impl FnMut() -> bool) {
        while t0.elapsed() < FLIP_LIMIT {
            if obeys() {
                self.ms.push(t0.elapsed().as_secs_f64() * 1e3);
                return;
            }
        }
        self.timeouts += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// P4

struct Load {
    ok: u64,
    failed: u64,
    secs: f64,
    errors: BTreeMap<String, u64>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

fn load(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    req: &'static [u8],
    ok: &'static [u8],
    threads: usize,
    dur: Duration,
) -> Load {
    let okc = Arc::new(AtomicU64::new(0));
    let fail = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (okc, fail, errors, stop, cfg) = (
                okc.clone(),
                fail.clone(),
                errors.clone(),
                stop.clone(),
                cfg.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) && start.elapsed() < dur {
                    match exchange(addr, &cfg, req, ok) {
                        Ok(_) => {
                            okc.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            fail.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut m) = errors.lock() {
                                *m.entry(e).or_insert(0) += 1;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in hs {
        let _ = h.join();
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let errors = errors.lock().map(|m| m.clone()).unwrap_or_default();
    Load {
        ok: okc.load(Ordering::Relaxed),
        failed: fail.load(Ordering::Relaxed),
        secs,
        errors,
    }
}

fn p4(work: &Path, pki: &Pki, opts: &Opts) {
    let dur = Duration::from_secs(opts.seconds);
    println!(
        "\n== P4 mutual-TLS handshakes/s (ECDSA P-256, TLS 1.3, no resumption; {} client threads, {} s per run, interleaved ×{}) ==",
        opts.threads, opts.seconds, opts.rounds
    );
    let agent = Agent::start(work, "p4", pki);
    let nginx = opts.nginx.as_ref().and_then(|b| Nginx::start(b, work, pki));
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..opts.rounds {
        let l = load(
            agent.sip,
            &pki.client_both,
            SIP_REQ,
            SIP_OK,
            opts.threads,
            dur,
        );
        println!(
            "  round {}: ours  {:>8.0} handshakes/s ({} ok, {} failed)",
            round + 1,
            l.rate(),
            l.ok,
            l.failed
        );
        ours.push(l.rate());
        if let Some(n) = &nginx {
            let l = load(
                n.addr,
                &pki.client_both,
                HTTP_REQ,
                HTTP_OK,
                opts.threads,
                dur,
            );
            println!(
                "  round {}: nginx {:>8.0} handshakes/s ({} ok, {} failed)",
                round + 1,
                l.rate(),
                l.ok,
                l.failed
            );
            theirs.push(l.rate());
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (o, t) = (mean(&ours), mean(&theirs));
    if theirs.is_empty() {
        println!("  ours: {o:.0} handshakes/s; nginx not measured");
    } else {
        println!(
            "  mean: ours {o:.0}/s, nginx {t:.0}/s, ratio ours/nginx {:.2}x — goal ≥ 1.0×: {}",
            o / t,
            verdict(o / t >= 1.0)
        );
        let mut per: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
        per.sort_by(|a, b| a.total_cmp(b));
        println!(
            "  per-round ratios (adjacent runs, so less exposed to the machine's noise): {}; median {:.2}x",
            per.iter()
                .map(|r| format!("{r:.2}x"))
                .collect::<Vec<_>>()
                .join(" "),
            pct(&per, 50.0)
        );
        if let Some(n) = &nginx {
            println!(
                "  RSS after the load: agent {} KiB, nginx (master + workers) {} KiB",
                agent.rss_kib().0,
                n.rss_kib()
            );
        }
    }
    drop(nginx);

    // Under reloads: mode flipped through xsh and the server certificate re-uploaded, 10×/s each.
    let _ = agent.drain();
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        let root = agent.root.clone();
        let (a, b) = (pki.server_a.clone(), pki.server_b.clone());
        std::thread::spawn(move || {
            let certs = root.join("certs");
            let mut ticks = 0u64;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && ticks < 100_000 {
                let due = start + Duration::from_millis(100 * ticks);
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
                let mode = if ticks.is_multiple_of(2) { "Off" } else { "On" };
                xsh(&root, &format!("{MODE_KEY}: {mode}"));
                let leaf = if ticks.is_multiple_of(2) { &b } else { &a };
                let _ = write_pair_atomic(
                    &certs,
                    "server.pem",
                    "privkey.pem",
                    leaf.chain_pem.as_bytes(),
                    leaf.key_pem.as_bytes(),
                );
                ticks += 1;
            }
            ticks
        })
    };
    let l = load(
        agent.sip,
        &pki.client_both,
        SIP_REQ,
        SIP_OK,
        opts.threads,
        dur,
    );
    stop.store(true, Ordering::Relaxed);
    let ticks = flipper.join().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(200));
    let lines = agent.drain();
    let applied = lines
        .iter()
        .filter(|(_, l)| l.starts_with("xagent: applied generation"))
        .count();
    let kept = lines
        .iter()
        .filter(|(_, l)| l.starts_with("xagent: kept generation"))
        .count();
    println!(
        "  under reloads: ours {:.0} handshakes/s ({} ok, {} FAILED) while {} mode flips + {} certificate re-uploads ({:.1}/s each) → {} generations applied, {} builds kept the previous one",
        l.rate(),
        l.ok,
        l.failed,
        ticks,
        ticks,
        ticks as f64 / l.secs,
        applied,
        kept
    );
    for (e, n) in l.errors.iter().take(5) {
        println!("    failure ({n}×): {e}");
    }
    println!(
        "  goal 0 failed handshakes under reloads: {}; throughput under reloads / steady: {:.2}x",
        verdict(l.failed == 0),
        l.rate() / o
    );
}

// ---------------------------------------------------------------------------------------------
// P5

fn p5(work: &Path, pki: &Pki, opts: &Opts) {
    println!(
        "\n== P5 agent memory (VmRSS), idle and with {} idle TLS connections ==",
        opts.conns
    );
    let agent = Agent::start(work, "p5", pki);
    // Warm up: one handshake, then let the first status flush settle.
    let _ = exchange(agent.sip, &pki.client_both, SIP_REQ, SIP_OK);
    std::thread::sleep(Duration::from_secs(1));
    let (idle, _) = agent.rss_kib();
    let mut held = Vec::with_capacity(opts.conns);
    let mut failed = 0usize;
    let start = Instant::now();
    // The agent closes SIP connections idle for 30 s: open them all well within that.
    while held.len() < opts.conns && start.elapsed() < Duration::from_secs(20) {
        match exchange(agent.sip, &pki.client_both, SIP_REQ, SIP_OK) {
            Ok((tls, _)) => held.push(tls),
            Err(_) => failed += 1,
        }
        if failed > 100 {
            break;
        }
    }
    let opened = start.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let (busy, hwm) = agent.rss_kib();
    // Check the connections are still alive (an OPTIONS on the first and last).
    let mut alive = 0;
    for i in [0, held.len().saturating_sub(1)] {
        if let Some(t) = held.get_mut(i) {
            let mut b = [0u8; 11];
            if t.write_all(SIP_REQ).is_ok() && t.read_exact(&mut b).is_ok() && b == *SIP_OK {
                alive += 1;
            }
        }
    }
    let n = held.len();
    drop(held);
    std::thread::sleep(Duration::from_secs(1));
    let (after, _) = agent.rss_kib();
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "  idle: {:.1} MiB — goal ≤ 16 MiB: {}",
        mib(idle),
        verdict(mib(idle) <= 16.0)
    );
    println!(
        "  with {n} idle TLS connections (opened in {:.1} s, {failed} failed, {alive}/2 probed alive): {:.1} MiB (peak {:.1} MiB), {:.1} KiB per connection — goal ≤ 64 MiB: {}",
        opened.as_secs_f64(),
        mib(busy),
        mib(hwm),
        (busy.saturating_sub(idle)) as f64 / n.max(1) as f64,
        verdict(mib(busy) <= 64.0 && n >= opts.conns)
    );
    println!("  after closing them: {:.1} MiB", mib(after));
}
