//! `web_bench`: the HTTPS plane of `xagent` against nginx (issue 11 item 8, but the /ws-vs-SSH
//! figure, which is `ws_bench`'s). Figures only: nothing here fails a build.
//!
//! ```text
//! cargo bench --bench web_bench -- web [--clients 16] [--seconds 10] [--ttfb 500]
//! ```
//!
//! * `getxml?location=/Status/SystemUnit` with HTTP Basic over TLS, N keep-alive clients, for
//!   the given seconds, against the agent and against nginx serving the same bytes as a static
//!   file with the same certificate and key (nginx on 127.0.0.1, an ephemeral port, a temp
//!   config, `daemon off`, as many workers as cores): requests/s (goal: agent ≥ 0.5× nginx),
//!   p50/p99 latency, and CPU per request of each server (utime+stime of its processes from
//!   `/proc/PID/stat`, before and after).
//! * Time to first byte of a page (`GET /login`), one keep-alive connection, sequential: p99
//!   (goal ≤ 20 ms).
//! * The agent's resident set with the web listener on, idle after start and after the load
//!   (`VmRSS`; goal idle ≤ 20 MiB).
//!
//! The client is this program: tokio + tokio-rustls and a minimal HTTP/1.1 keep-alive client
//! (Content-Length or chunked bodies), verifying the server against the bench CA. Everything runs
//! on 127.0.0.1 in a temp folder removed at the end.

#![forbid(unsafe_code)]

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::agent::Agent;
use common::fixture::{configure, install_certs};
use common::pki::{Ca, Eku, Leaf};
use common::stats::{ms, summary, verdict, Summary};
use common::{die, free_port, procfs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::{client::TlsStream, TlsConnector};

const USAGE: &str =
    "usage: cargo bench --bench web_bench -- web [--clients 16] [--seconds 10] [--ttfb 500]";
const USER: &str = "bench";
const PASSWORD: &str = "bench-password-1";
const GETXML: &str = "/getxml?location=/Status/SystemUnit";
const RATIO_GOAL: f64 = 0.5;
const TTFB_GOAL_MS: f64 = 20.0;
const RSS_GOAL_KIB: u64 = 20 * 1024;

fn flag(args: &[String], name: &str, default: u64, max: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

fn main() {
    let args = common::args();
    if !args.iter().any(|a| a == "web" || a == "all") {
        println!("{USAGE}");
        return;
    }
    let clients = flag(&args, "--clients", 16, 1024) as usize;
    let seconds = flag(&args, "--seconds", 10, 3600);
    let ttfb_n = flag(&args, "--ttfb", 500, 100_000) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(&e.to_string()));

    let work = common::WorkDir::new("xsh-web-bench");
    let ca = Ca::new("web bench CA");
    let server = ca.issue("web bench server", Eku::Both);
    let root = work.path().join("root");
    install_certs(
        &root,
        &ca.pem,
        &server,
        &ca.issue("web bench client", Eku::Both),
    );
    let https_port = free_port();
    configure(
        &root,
        &format!(
            "xConfiguration SIP TLS Port: {}\nxConfiguration Tunnel Port: {}\n\
             xConfiguration Administration HTTPS Mode: On\n\
             xConfiguration Administration HTTPS Port: {https_port}\n",
            free_port(),
            free_port()
        ),
    );
    xsh::accounts::Accounts::open(&root)
        .and_then(|a| a.add(USER, PASSWORD, xsh::accounts::Access::ReadOnly))
        .unwrap_or_else(|e| die(&format!("account: {e}")));
    let agent = Agent::start(&root);
    let agent_addr: SocketAddr = ([127, 0, 0, 1], https_port).into();
    let tls = client_config(&ca.pem);
    std::thread::sleep(Duration::from_secs(2));
    let (rss_idle, _) = agent.rss_kib();

    let first = rt
        .block_on(one_get(&tls, agent_addr, GETXML, true))
        .unwrap_or_else(|e| die(&format!("getxml from the agent: {e}")));
    println!(
        "web_bench: agent getxml {GETXML}: HTTP {}, {} bytes",
        first.status,
        first.body.len()
    );
    if first.status != 200 {
        println!(
            "web_bench: the agent does not answer getxml with 200 in this build; the load figures below measure what it answers"
        );
    }

    let nginx = Nginx::start(work.path(), &server, &first.body);
    let ng_first = rt
        .block_on(one_get(&tls, nginx.addr, GETXML, true))
        .unwrap_or_else(|e| die(&format!("getxml from nginx: {e}")));
    if ng_first.body != first.body {
        die("nginx does not serve the agent's bytes");
    }

    let pids_agent = vec![agent.pid];
    let a = rt.block_on(load(&tls, agent_addr, clients, seconds, &pids_agent));
    let pids_nginx = nginx.pids();
    let n = rt.block_on(load(&tls, nginx.addr, clients, seconds, &pids_nginx));
    let (rss_after, hwm) = agent.rss_kib();

    let page = rt.block_on(ttfb(&tls, agent_addr, "/login", ttfb_n));

    println!();
    println!(
        "getxml {GETXML}, {clients} keep-alive clients, {seconds} s each, {} cores, TLS 1.3, {} bytes",
        common::cores(),
        first.body.len()
    );
    print_load("xagent", &a);
    print_load("nginx ", &n);
    let ratio = a.rps / n.rps;
    println!(
        "  ratio agent/nginx: {ratio:.2}x (goal >= {RATIO_GOAL}x: {}); p99 {:.2} ms vs {:.2} ms",
        verdict(ratio >= RATIO_GOAL),
        a.lat.p99,
        n.lat.p99
    );
    match page {
        Ok((status, s)) => println!(
            "page GET /login (HTTP {status}), {} sequential requests on one connection: time to first byte p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (goal p99 <= {TTFB_GOAL_MS} ms: {})",
            s.n,
            s.p50,
            s.p99,
            s.max,
            verdict(s.p99 <= TTFB_GOAL_MS)
        ),
        Err(e) => println!("page GET /login: {e}"),
    }
    println!(
        "agent RSS with the web listener on: idle {:.1} MiB (goal <= 20 MiB: {}), after the load {:.1} MiB, peak {:.1} MiB",
        rss_idle as f64 / 1024.0,
        verdict(rss_idle <= RSS_GOAL_KIB),
        rss_after as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(nginx);
    drop(agent);
}

fn print_load(who: &str, r: &LoadResult) {
    println!(
        "  {who}: {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  CPU {:.0} µs/request  ({} requests, {} errors, statuses {:?})",
        r.rps, r.lat.p50, r.lat.p99, r.lat.max, r.cpu_us_per_req, r.lat.n, r.errors, r.statuses
    );
}

fn client_config(ca_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let der = common::pki::pem_der(ca_pem);
    roots
        .add(rustls::pki_types::CertificateDer::from(der))
        .unwrap_or_else(|e| die(&format!("CA: {e}")));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| die(&e.to_string()))
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(cfg))
}

type Conn = TlsStream<TcpStream>;

async fn connect(tls: &TlsConnector, addr: SocketAddr) -> std::io::Result<Conn> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    tls.connect(name, tcp).await
}

fn request(path: &str, auth: bool) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n");
    if auth {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        r.push_str(&format!("Authorization: Basic {b}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

struct Response {
    status: u16,
    body: Vec<u8>,
    /// From the write of the request to the first byte of the answer.
    ttfb: Duration,
}

/// A keep-alive HTTP/1.1 reader: whatever was read past one answer stays for the next.
struct Reader {
    buf: Vec<u8>,
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

impl Reader {
    async fn fill(&mut self, c: &mut Conn) -> std::io::Result<()> {
        let mut tmp = [0u8; 16384];
        let n = c.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed by the server",
            ));
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    async fn answer(&mut self, c: &mut Conn, sent: Instant) -> std::io::Result<Response> {
        let mut first = None;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill(c).await?;
            first.get_or_insert_with(|| sent.elapsed());
        };
        let ttfb = first.unwrap_or_else(|| sent.elapsed());
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        self.buf.drain(..head_end);
        let body = if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            self.chunked(c).await?
        } else {
            let len: usize = header("content-length:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while self.buf.len() < len {
                self.fill(c).await?;
            }
            self.buf.drain(..len).collect()
        };
        Ok(Response { status, body, ttfb })
    }

    async fn chunked(&mut self, c: &mut Conn) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill(c).await?;
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {size_text:?}")))?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                self.fill(c).await?;
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

async fn one_get(
    tls: &TlsConnector,
    addr: SocketAddr,
    path: &str,
    auth: bool,
) -> std::io::Result<Response> {
    let mut c = connect(tls, addr).await?;
    c.write_all(&request(path, auth)).await?;
    Reader { buf: Vec::new() }
        .answer(&mut c, Instant::now())
        .await
}

struct LoadResult {
    rps: f64,
    lat: Summary,
    cpu_us_per_req: f64,
    errors: usize,
    statuses: Vec<(u16, usize)>,
}

/// `clients` connections, each sending getxml after getxml for `seconds`; the first request of
/// each connection (its handshake) is made before the clock starts.
async fn load(
    tls: &TlsConnector,
    addr: SocketAddr,
    clients: usize,
    seconds: u64,
    pids: &[u32],
) -> LoadResult {
    let req = Arc::new(request(GETXML, true));
    let mut conns = Vec::new();
    for _ in 0..clients {
        let mut c = connect(tls, addr)
            .await
            .unwrap_or_else(|e| die(&format!("connect {addr}: {e}")));
        let mut r = Reader { buf: Vec::new() };
        if c.write_all(&req).await.is_err() || r.answer(&mut c, Instant::now()).await.is_err() {
            die(&format!("first request to {addr} failed"));
        }
        conns.push((c, r));
    }
    let cpu0: f64 = pids.iter().map(|&p| procfs::cpu_secs(p)).sum();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (mut c, mut r) in conns {
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut statuses = std::collections::BTreeMap::new();
            let mut errors = 0;
            while Instant::now() < end {
                let t = Instant::now();
                if c.write_all(&req).await.is_err() {
                    errors += 1;
                    break;
                }
                match r.answer(&mut c, t).await {
                    Ok(resp) => {
                        lat.push(ms(t.elapsed()));
                        *statuses.entry(resp.status).or_insert(0usize) += 1;
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (lat, statuses, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, s, e)) = t.await {
            lat.extend(l);
            for (k, v) in s {
                *statuses.entry(k).or_insert(0) += v;
            }
            errors += e;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1: f64 = pids.iter().map(|&p| procfs::cpu_secs(p)).sum();
    let n = lat.len().max(1);
    LoadResult {
        rps: lat.len() as f64 / elapsed,
        lat: summary(&lat),
        cpu_us_per_req: (cpu1 - cpu0) * 1e6 / n as f64,
        errors,
        statuses: statuses.into_iter().collect(),
    }
}

/// Time to first byte of `path`, `n` sequential requests on one keep-alive connection (after
/// one warm-up request); the status of the last answer.
async fn ttfb(
    tls: &TlsConnector,
    addr: SocketAddr,
    path: &str,
    n: usize,
) -> Result<(u16, Summary), String> {
    let mut c = connect(tls, addr).await.map_err(|e| e.to_string())?;
    let mut r = Reader { buf: Vec::new() };
    let req = request(path, false);
    let mut v = Vec::with_capacity(n);
    let mut status = 0;
    for i in 0..=n {
        let t = Instant::now();
        c.write_all(&req).await.map_err(|e| e.to_string())?;
        let resp = r.answer(&mut c, t).await.map_err(|e| e.to_string())?;
        status = resp.status;
        if i > 0 {
            v.push(ms(resp.ttfb));
        }
    }
    Ok((status, summary(&v)))
}

/// nginx on 127.0.0.1 (an ephemeral port) with the agent's certificate and key, serving
/// `body` at `/getxml` as a static file; stopped on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
}

impl Nginx {
    fn start(work: &Path, server: &Leaf, body: &[u8]) -> Nginx {
        let dir = work.join("nginx");
        let html = dir.join("html");
        std::fs::create_dir_all(&html).unwrap_or_else(|e| die(&e.to_string()));
        let w = |p: &Path, b: &[u8]| std::fs::write(p, b).unwrap_or_else(|e| die(&e.to_string()));
        w(&html.join("status.xml"), body);
        w(&dir.join("server.pem"), server.cert_pem.as_bytes());
        w(&dir.join("privkey.pem"), server.key_pem.as_bytes());
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "worker_processes {cores};\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/tmp-body; proxy_temp_path {d}/tmp-proxy;\n\
               fastcgi_temp_path {d}/tmp-fcgi; uwsgi_temp_path {d}/tmp-uwsgi; scgi_temp_path {d}/tmp-scgi;\n\
               keepalive_requests 100000000; keepalive_timeout 60s;\n\
               server {{\n\
                 listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {d}/server.pem; ssl_certificate_key {d}/privkey.pem;\n\
                 ssl_protocols TLSv1.2 TLSv1.3;\n\
                 root {html};\n\
                 location = /getxml {{ default_type text/xml; try_files /status.xml =404; }}\n\
               }}\n\
             }}\n",
            cores = common::cores(),
            html = html.display()
        );
        w(&dir.join("nginx.conf"), conf.as_bytes());
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(&format!("nginx (apt-get install nginx): {e}")));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > end {
                die(&format!(
                    "nginx did not listen on {addr}; see {}",
                    dir.join("error.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, addr }
    }

    /// The master and its workers.
    fn pids(&self) -> Vec<u32> {
        let mut p = vec![self.child.id()];
        p.extend(procfs::children_of(self.child.id()));
        p
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGQUIT,
        );
        let end = Instant::now() + Duration::from_secs(5);
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
