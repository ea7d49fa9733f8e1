//! `ws_bench`: `xGet` round trips per second over jsxapi's WebSocket (`wss://…/ws`, the real
//! jsxapi 6.0.0 client in node) against the same request over an SSH JSON session (OpenSSH
//! `ssh` → `sshd` → `xsh`, `xPreferences OutputMode JSON`), and a piped `xsh` JSON session as a
//! second anchor without SSH, with CPU per operation on both sides of each.
//!
//! ```text
//! cargo bench --bench ws_bench -- run [--n N] [--path "Status SystemUnit"]
//! ```
//!
//! Each transport does N sequential round trips (a request, then wait for its whole reply) after
//! a warm-up, on one connection. CPU per op: the serving side is the agent process for /ws; the
//! per-connection `sshd` processes plus `xsh` for SSH; `xsh` for the pipe. The client side is
//! node (jsxapi), the `ssh` client, or this program. The SSH leg needs root (test users, sshd) and
//! is skipped with the reason otherwise. Figures only: nothing here passes or fails a build.
//! Without arguments (as `cargo test --all-targets` runs it) it prints its usage and exits.

#![forbid(unsafe_code)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/ssh_support/mod.rs"]
mod ssh_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::procfs::cpu_secs;
use common::stats::summary;

const USAGE: &str =
    "usage: cargo bench --bench ws_bench -- run [--n N] [--path \"Status SystemUnit\"]";
const USER: &str = "wsbench";
const PASSWORD: &str = "Bench-pass-2026";

struct Opts {
    n: usize,
    path: Vec<String>,
}

/// One transport's figures.
struct Figures {
    label: String,
    n: usize,
    secs: f64,
    lat_us: Vec<f64>,
    server_cpu: f64,
    client_cpu: f64,
    reply_bytes: usize,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.n as f64 / self.secs
    }
    fn print(&self) {
        let s = summary(&self.lat_us);
        println!(
            "{:<34} {:>9.0} /s   p50 {:>7.1} µs  p99 {:>7.1} µs   CPU/op server {:>6.1} µs  client {:>6.1} µs   reply {} B",
            self.label,
            self.rate(),
            s.p50,
            s.p99,
            self.server_cpu * 1e6 / self.n as f64,
            self.client_cpu * 1e6 / self.n as f64,
            self.reply_bytes
        );
    }
}

fn main() {
    let mut opts = Opts {
        n: 2000,
        path: vec!["Status".into(), "SystemUnit".into()],
    };
    let mut run = false;
    let mut args = common::args().into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "run" => run = true,
            "--n" => {
                opts.n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| common::die("--n needs a number"))
            }
            "--path" => {
                opts.path = args
                    .next()
                    .unwrap_or_else(|| common::die("--path needs words"))
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            }
            "-h" | "--help" => return println!("{USAGE}"),
            // cargo passes --bench to harness = false programs
            "--bench" => {}
            other => common::die(&format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if !run {
        return println!("{USAGE}");
    }
    let line = format!("x{} {}", opts.path[0], opts.path[1..].join(" "));
    println!(
        "ws_bench: {} sequential round trips of `{line}` (xGet Path {:?}) per transport, {} cores\n",
        opts.n,
        opts.path,
        common::cores()
    );
    let node = jsxapi_node();
    let work = common::WorkDir::new("ws_bench");
    let root = work.path().join("root");
    let agent = WebAgent::start(&root);
    agent.add_account(USER, PASSWORD);
    let mut all = Vec::new();
    all.push(ws(&opts, &agent, &node));
    match ssh_support::skip_reason() {
        None => all.push(ssh(&opts, &line)),
        Some(why) => println!("SSH JSON session: skipped ({why})"),
    }
    all.push(piped(&opts, &root, &line));
    println!();
    for f in &all {
        f.print();
    }
    println!();
    let base = &all[0];
    for f in &all[1..] {
        println!(
            "ratio /ws vs {}: {:.2}x round trips/s, {:.2}x server CPU per op",
            f.label,
            base.rate() / f.rate(),
            (base.server_cpu / base.n as f64) / (f.server_cpu / f.n as f64)
        );
    }
    drop(agent);
}

/// The jsxapi package, installed as `tests/jsxapi.rs` does.
fn jsxapi_node() -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_xsh"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("jsxapi-node");
    if !dir.join("node_modules/jsxapi/package.json").exists() {
        let st = Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&dir)
            .args(["jsxapi@6.0.0", "--no-audit", "--no-fund", "--omit=optional"])
            .status();
        if !st.is_ok_and(|s| s.success()) {
            common::die("npm install jsxapi@6.0.0 failed (needs node and npm)");
        }
    }
    dir
}

/// An `xagent` on its own ROOT with the HTTPS listener on a free loopback port.
struct WebAgent {
    root: PathBuf,
    port: u16,
    child: Child,
}

impl WebAgent {
    fn start(root: &Path) -> WebAgent {
        let port = common::free_port();
        common::fixture::configure(root, &web_settings(port));
        let mut child = Command::new(common::xagent_bin())
            .arg("--root")
            .arg(root)
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| common::die(&format!("xagent: {e}")));
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed().as_secs() > 30 || child.try_wait().ok().flatten().is_some() {
                common::die("the agent's web listener did not come up");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        WebAgent {
            root: root.to_path_buf(),
            port,
            child,
        }
    }

    fn add_account(&self, name: &str, pw: &str) {
        let out = Command::new(common::xsh_bin())
            .arg("--root")
            .arg(&self.root)
            .arg("-c")
            .arg(format!(
                "xCommand AdminAccountAdd Name: \"{name}\" Password: \"{pw}\" Access: ReadWrite"
            ))
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !text.contains("status=OK") {
            common::die(&format!("AdminAccountAdd {name}: {text}"));
        }
    }
}

impl Drop for WebAgent {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// The listener settings of a web agent on `port` (free SIP and tunnel ports beside it).
fn web_settings(port: u16) -> String {
    format!(
        "xConfiguration SIP TLS Port: {}\nxConfiguration Tunnel Port: {}\nxConfiguration Administration HTTPS Port: {port}\nxConfiguration Administration HTTPS Mode: On\n",
        common::free_port(),
        common::free_port()
    )
}

fn ws(o: &Opts, agent: &WebAgent, node: &Path) -> Figures {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ws_bench/xget.js");
    let mut child = Command::new("node")
        .arg(script)
        .env("JSXAPI_NODE", node)
        .env("PORT", agent.port.to_string())
        .env("XUSER", USER)
        .env("XPASS", PASSWORD)
        .env("N", o.n.to_string())
        .env("XPATH", serde_json::to_string(&o.path).unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| common::die(&format!("node: {e}")));
    let out = BufReader::new(child.stdout.take().unwrap_or_else(|| common::die("stdout")));
    let apid = agent.child.id();
    let mut cpu0 = 0.0;
    let mut result = None;
    for l in out.lines().map_while(Result::ok) {
        if l == "START" {
            cpu0 = cpu_secs(apid);
        } else if let Some(j) = l.strip_prefix("RESULT ") {
            let cpu1 = cpu_secs(apid);
            result = serde_json::from_str::<serde_json::Value>(j)
                .ok()
                .map(|v| (v, cpu1 - cpu0));
        }
    }
    let _ = child.wait();
    let Some((v, server)) = result else {
        common::die("the jsxapi client printed no RESULT")
    };
    Figures {
        label: "/ws (jsxapi 6.0.0, wss)".into(),
        n: o.n,
        secs: v["total_s"].as_f64().unwrap_or(f64::NAN) / 1e3,
        lat_us: v["lat_us"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default(),
        server_cpu: server,
        client_cpu: v["cpu_us"].as_f64().unwrap_or(f64::NAN) / 1e6,
        reply_bytes: v["sample"].to_string().len(),
    }
}

/// Round trips over a line session: `one` sends a request and waits for its whole reply (one
/// JSON line), returning the reply's length; `start` runs after the warm-up, just before the
/// timed loop.
fn round_trips(
    o: &Opts,
    one: &mut dyn FnMut() -> usize,
    start: &mut dyn FnMut(),
) -> (f64, Vec<f64>, usize) {
    for _ in 0..200 {
        one();
    }
    start();
    let mut lat = Vec::with_capacity(o.n);
    let t0 = Instant::now();
    let mut bytes = 0;
    for _ in 0..o.n {
        let t = Instant::now();
        bytes = one();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    (t0.elapsed().as_secs_f64(), lat, bytes)
}

/// `pid` and its ancestors below the process whose parent is this program (the sshd listener,
/// which does no per-request work).
fn session_chain(pid: u32) -> Vec<u32> {
    let me = std::process::id();
    let mut chain = Vec::new();
    let mut p = pid;
    for _ in 0..8 {
        let ppid = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|t| {
                t.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1).map(str::to_string))
            })
            .and_then(|x| x.parse::<u32>().ok());
        let Some(ppid) = ppid else { break };
        if ppid == me {
            break;
        }
        chain.push(p);
        p = ppid;
    }
    chain
}

fn ssh(o: &Opts, line: &str) -> Figures {
    let server = ssh_support::SshServer::start();
    let mut s = server.session(ssh_support::ADMIN, ssh_support::Pty::None, None);
    s.send(b"xPreferences OutputMode JSON\n");
    let req = format!("{line}\n");
    // A first reply, so the session's xsh is up before its processes are looked for.
    s.send(req.as_bytes());
    let mut offset = s.wait_contains(0, b"}\n");
    let xsh = ssh_support::pids_running(&server.bin);
    let chain: Vec<u32> = xsh.iter().flat_map(|&p| session_chain(p as u32)).collect();
    let serving = |c: &[u32]| c.iter().map(|&p| cpu_secs(p)).sum::<f64>();
    let client = s.pid();
    let mut before = (0.0, 0.0);
    let (secs, lat, bytes) = round_trips(
        o,
        &mut || {
            s.send(req.as_bytes());
            let end = s.wait_contains(offset, b"}\n");
            let len = end - offset;
            offset = end;
            len
        },
        &mut || before = (serving(&chain), cpu_secs(client)),
    );
    let (srv1, cli1) = (serving(&chain), cpu_secs(client));
    drop(s);
    drop(server);
    Figures {
        label: "SSH JSON session (ssh→sshd→xsh)".into(),
        n: o.n,
        secs,
        lat_us: lat,
        server_cpu: srv1 - before.0,
        client_cpu: cli1 - before.1,
        reply_bytes: bytes,
    }
}

fn piped(o: &Opts, root: &Path, line: &str) -> Figures {
    let mut child = Command::new(common::xsh_bin())
        .arg("--root")
        .arg(root)
        .arg("--no-banner")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| common::die(&format!("xsh: {e}")));
    let mut stdin = child.stdin.take().unwrap_or_else(|| common::die("stdin"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| common::die("stdout")));
    let _ = stdin.write_all(b"xPreferences OutputMode JSON\n");
    let pid = child.id();
    let req = format!("{line}\n");
    let mut buf = String::new();
    let mut before = (0.0, 0.0);
    let (secs, lat, bytes) = round_trips(
        o,
        &mut || {
            let _ = stdin.write_all(req.as_bytes());
            let _ = stdin.flush();
            buf.clear();
            let _ = stdout.read_line(&mut buf);
            buf.len()
        },
        &mut || before = (cpu_secs(pid), common::procfs::thread_cpu()),
    );
    let server = cpu_secs(pid) - before.0;
    let client = common::procfs::thread_cpu() - before.1;
    drop(stdin);
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    let _ = child.wait();
    Figures {
        label: "piped xsh JSON session (no SSH)".into(),
        n: o.n,
        secs,
        lat_us: lat,
        server_cpu: server,
        client_cpu: client,
        reply_bytes: bytes,
    }
}
