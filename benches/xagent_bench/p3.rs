//! P3: from the start of a change to the first handshake that obeys it. Ours: the spawn of
//! `xsh -c '… ExtendedKeyUsage Checking Mode: Off|On'`, probing (while `xsh` still runs) with a
//! serverAuth-only client certificate, accepted under Off and refused under On; and a server
//! certificate change (pair rewritten → first handshake presenting the new leaf). nginx: from the
//! start of its own change (pair rewritten + `nginx -s reload`) to the first handshake presenting
//! the new leaf. Eight distinct leaves are cycled, so a handshake landing on a worker from two
//! reloads back cannot pass for the new one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{exchange, HTTP, SIP};
use crate::common::agent::Agent;
use crate::common::fixture::{write_pair, MODE_KEY, SERVER_CERT, SERVER_KEY};
use crate::common::stats::{summary, verdict, Summary};
use crate::common::{die, procfs, xsh_bin};
use crate::nginx::Nginx;
use crate::setup::{agent_root, Pki, Scale, LEAVES};
use crate::Opts;

/// Give up on one change after this long (counted as a timeout, never waited out silently).
const LIMIT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Lat {
    ms: Vec<f64>,
    timeouts: usize,
    /// CPU seconds of the server over all changes (probe handshakes included).
    server_cpu: f64,
    /// CPU seconds of the change commands (xsh, nginx -s reload) over all changes.
    change_cpu: f64,
}

impl Lat {
    /// Polls `obeys` until it returns true (recording the latency from `t0`) or LIMIT.
    fn push_first(&mut self, t0: Instant, mut obeys: impl FnMut() -> bool) {
        while t0.elapsed() < LIMIT {
            if obeys() {
                self.ms.push(t0.elapsed().as_secs_f64() * 1e3);
                return;
            }
        }
        self.timeouts += 1;
    }

    fn s(&self) -> Summary {
        summary(&self.ms)
    }

    fn print(&self, label: &str) {
        let s = self.s();
        let n = (self.ms.len() + self.timeouts).max(1) as f64;
        let server = if self.server_cpu.is_nan() {
            "n/a".to_string()
        } else {
            format!("{:.2} ms", self.server_cpu / n * 1e3)
        };
        let command = if self.change_cpu.is_nan() {
            "n/a (written by the bench)".to_string()
        } else {
            format!("{:.2} ms", self.change_cpu / n * 1e3)
        };
        println!(
            "  {label:<46} n={:<4} p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  timeouts {}  cpu/change: server {server}, command {command}",
            s.n,
            s.p50,
            s.p99,
            s.max,
            self.timeouts,
        );
    }
}

/// Mode flips through `xsh -c`, timed from its spawn; returns the latencies, the spawn → exit
/// times of `xsh`, and the most common refusal under On.
fn mode_flips(agent: &Agent, pki: &Pki, flips: usize) -> (Lat, Vec<f64>, String) {
    let mut lat = Lat::default();
    let mut xsh_ms = Vec::new();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let (cpu0, ccpu0) = (agent.cpu_secs(), procfs::children_cpu());
    for i in 0..flips {
        let off = i.is_multiple_of(2);
        let t0 = Instant::now();
        let mut child = Command::new(xsh_bin())
            .arg("--root")
            .arg(&agent.root)
            .arg("-c")
            .arg(format!("{MODE_KEY}: {}", if off { "Off" } else { "On" }))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| die(&format!("xsh: {e}")));
        let waiter = std::thread::spawn(move || (child.wait(), t0.elapsed()));
        lat.push_first(t0, || match exchange(agent.sip, &pki.client_srv, SIP) {
            Ok(_) => off,
            Err(e) => {
                if !off {
                    *reasons.entry(e).or_insert(0) += 1;
                }
                !off
            }
        });
        match waiter.join() {
            Ok((Ok(st), took)) if st.success() => xsh_ms.push(took.as_secs_f64() * 1e3),
            _ => die("xsh -c failed during the mode flips"),
        }
        let _ = agent.drain();
    }
    lat.server_cpu = agent.cpu_secs() - cpu0;
    lat.change_cpu = procfs::children_cpu() - ccpu0;
    let reason = reasons
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(r, n)| format!("{r} ({n}×)"))
        .unwrap_or_default();
    (lat, xsh_ms, reason)
}

/// Server certificate changes: the pair rewritten (timed from the start of the write).
fn cert_changes(agent: &Agent, pki: &Pki, flips: usize) -> Lat {
    let mut lat = Lat::default();
    let certs = agent.root.join("certs");
    let cpu0 = agent.cpu_secs();
    for i in 0..flips {
        let leaf = &pki.servers[(i + 1) % LEAVES];
        let t0 = Instant::now();
        write_pair(&certs, SERVER_CERT, SERVER_KEY, leaf);
        lat.push_first(t0, || {
            exchange(agent.sip, &pki.client_both, SIP).is_ok_and(|(_, c)| c == leaf.cert_der)
        });
        let _ = agent.drain();
    }
    lat.server_cpu = agent.cpu_secs() - cpu0;
    lat.change_cpu = f64::NAN;
    lat
}

/// nginx's changes, timed from the start of the rewrite; also the `-s reload` times.
fn nginx_changes(n: &Nginx, pki: &Pki, flips: usize) -> (Lat, Vec<f64>) {
    let mut lat = Lat::default();
    let mut reload_ms = Vec::new();
    let ccpu0 = procfs::children_cpu();
    for i in 0..flips {
        let leaf = &pki.servers[(i + 1) % LEAVES];
        let t0 = Instant::now();
        if !n.change_cert(leaf) {
            println!("  nginx -s reload failed");
            break;
        }
        reload_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        lat.push_first(t0, || {
            exchange(n.addr, &pki.client_both, HTTP).is_ok_and(|(_, c)| c == leaf.cert_der)
        });
    }
    // Each reload replaces the workers and the old ones take their CPU figures with them.
    lat.server_cpu = f64::NAN;
    lat.change_cpu = procfs::children_cpu() - ccpu0;
    (lat, reload_ms)
}

fn ours(work: &Path, pki: &Pki, opts: &Opts, scale: Scale) -> Lat {
    let root = agent_root(work, &format!("p3-{}", scale.name()), pki, scale);
    let agent = Agent::start(&root);
    let (mode, xsh_ms, reason) = mode_flips(&agent, pki, opts.flips);
    let cert = cert_changes(&agent, pki, opts.flips);
    let x = summary(&xsh_ms);
    println!("  ours, {}:", scale.label());
    mode.print("mode change, xsh spawn → obeying handshake");
    println!(
        "    (xsh -c itself, spawn → exit: p50 {:.2} ms, p99 {:.2} ms; refusal under On: {reason})",
        x.p50, x.p99
    );
    cert.print("cert change, write start → new cert served");
    mode
}

pub fn run(work: &Path, pki: &Pki, opts: &Opts) {
    println!(
        "\n== P3 change → first obeying handshake, from the start of the change ({} changes each) ==",
        opts.flips
    );
    let small = ours(work, pki, opts, Scale::Small);
    let large = ours(work, pki, opts, Scale::Large);
    let (s, l) = (small.s(), large.s());
    let ok = |lat: &Lat, goal: f64| verdict(lat.s().p99 <= goal && lat.timeouts == 0);
    println!(
        "  goal p99 ≤ 15 ms at 0 zones: {} ({:.2} ms); ≤ 25 ms at 1,000 zones / 1,000 CAs: {} ({:.2} ms)",
        ok(&small, 15.0),
        s.p99,
        ok(&large, 25.0),
        l.p99
    );
    let Some(n) = opts.nginx.as_ref().and_then(|b| Nginx::start(b, work, pki)) else {
        return println!("  nginx: not measured");
    };
    let (ng, reload_ms) = nginx_changes(&n, pki, opts.flips);
    drop(n);
    let r = summary(&reload_ms);
    ng.print("nginx, rewrite + -s reload → new cert served");
    println!(
        "    (nginx -s reload itself: p50 {:.2} ms, p99 {:.2} ms; {LEAVES} leaves cycled)",
        r.p50, r.p99
    );
    let n99 = ng.s().p99;
    println!(
        "  ratio ours/nginx p99: 0 zones {:.3}×, 1,000 zones / 1,000 CAs {:.3}× — goal ≤ 0.1×: {} / {}",
        s.p99 / n99,
        l.p99 / n99,
        verdict(s.p99 / n99 <= 0.1),
        verdict(l.p99 / n99 <= 0.1)
    );
}
