//! `cluster_bench`: three `xagent`s on a three-member etcd (loopback, each agent its own ROOT,
//! joined with `xCommand Cluster Join`), measuring (issue 12 item 9):
//!
//! * `propagation`: from the start of `xsh -c "xConfiguration … Mode: X"` on node 1 (the process
//!   start included) to the first handshake on node 3 that obeys X (a serverAuth-only client:
//!   accepted under Off, refused under On), p50/p99 over N flips. The client on node 3
//!   handshakes in a loop from the start of the change, as a running SIP client would. Goal
//!   p99 ≤ 50 ms; the product's own replication takes 1–2 minutes.
//! * `rss`: each agent's resident memory, idle, with its etcd client, watch and lease running.
//!   Goal ≤ 20 MiB.
//! * `reload`: the same flip with 1,000 zones in the cluster's configuration: wall time to the
//!   obeying handshake and the agent's CPU per reload.
//!
//! ```text
//! cargo bench --bench cluster_bench -- all [--flips N] [--reloads N]
//! cargo bench --bench cluster_bench -- propagation|rss|reload
//! ```
//! Figures only: nothing here fails a build. etcd runs with its defaults (fsync on).

#![forbid(unsafe_code)]

#[path = "../tests/agent_support/mod.rs"]
#[allow(unused_imports)]
mod agent_support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_support::common::etcd::EtcdCluster;
use agent_support::{Node, Pki, XSH};
use xsh::certs::pki::LeafEku;

const USAGE: &str = "usage: cargo bench --bench cluster_bench -- all|propagation|rss|reload [--flips N] [--reloads N]";
const MODE: &str = "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |w: &str| args.iter().any(|a| a == w || a == "all");
    let num = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
            .clamp(1, 100_000)
    };
    if !(has("propagation") || has("rss") || has("reload")) {
        println!("{USAGE}");
        return;
    }
    if has("propagation") || has("rss") {
        let b = Bench::start("/xsh/bench1", false);
        if has("propagation") {
            b.propagation(num("--flips", 200), "propagation");
        }
        if has("rss") {
            b.rss();
        }
    }
    if has("reload") {
        let b = Bench::start("/xsh/bench2", true);
        b.propagation(num("--reloads", 30), "reload (1,000 zones)");
    }
}

struct Bench {
    nodes: Vec<Node>,
    client: Arc<rustls::ClientConfig>,
    _pki: Pki,
    _etcd: EtcdCluster,
}

fn client(pki: &Pki) -> Arc<rustls::ClientConfig> {
    agent_support::sip::client_any_server(&pki.issue(true, "bench-client", LeafEku::ServerAuth))
}

/// One handshake + OPTIONS: true when node accepted the client.
fn accepted(cfg: &Arc<rustls::ClientConfig>, port: u16) -> bool {
    agent_support::sip::options_handshake(cfg, port).is_ok()
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_secs(pid: i32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn zone_lines() -> String {
    let mut s = String::new();
    for z in 1..=1000 {
        s.push_str(&format!(
            "xConfiguration Zones Zone {z} Name: \"zone {z}\"\nxConfiguration Zones Zone {z} Type: TraversalServer\n"
        ));
    }
    s
}

impl Bench {
    fn start(prefix: &str, zones: bool) -> Bench {
        let Some(etcd) = EtcdCluster::start(3) else {
            eprintln!("cluster_bench: etcd is not installed");
            std::process::exit(0);
        };
        let pki = Pki::new();
        let mut nodes: Vec<Node> = (1..=3).map(|i| Node::new(&format!("b{i}"))).collect();
        nodes[0].ca_add(&pki.ca1_root());
        if zones {
            let out = agent_support::xsh_run(nodes[0].root(), &zone_lines());
            assert!(out.ok, "zones: {}", out.stderr);
        }
        for n in &nodes {
            n.ok(&[&etcd.join_line(prefix, &n.name)]);
        }
        for n in &mut nodes {
            n.start();
        }
        for n in &nodes {
            n.wait_leaf("Cluster State", |s| s == "Synced");
        }
        Bench {
            client: client(&pki),
            nodes,
            _pki: pki,
            _etcd: etcd,
        }
    }

    fn propagation(&self, flips: usize, what: &str) {
        let (n1, n3) = (&self.nodes[0], &self.nodes[2]);
        let pid = n3.agent.as_ref().map(|a| a.guard.pid()).unwrap_or(0);
        let mut mode_off = accepted(&self.client, n3.sip_port);
        let (mut total, mut commit) = (Vec::new(), Vec::new());
        let cpu0 = cpu_secs(pid);
        let mut lost = 0;
        for _ in 0..flips {
            mode_off = !mode_off;
            let m = if mode_off { "Off" } else { "On" };
            let t0 = Instant::now();
            let mut xsh = Command::new(XSH)
                .arg("--root")
                .arg(n1.root())
                .args(["--no-banner", "-c", &format!("{MODE}: {m}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("xsh");
            // The SIP client on node 3 keeps handshaking from the start of the change, as a
            // running client would: the first obeying handshake ends the measurement, whether
            // or not node 1's xsh has exited yet.
            let mut t_commit = None;
            let limit = t0 + Duration::from_secs(30);
            while accepted(&self.client, n3.sip_port) != mode_off {
                if t_commit.is_none() && xsh.try_wait().ok().flatten().is_some() {
                    t_commit = Some(t0.elapsed());
                }
                if Instant::now() > limit {
                    lost += 1;
                    break;
                }
                // A breath between probes: on two cores a client that handshakes back to back
                // would take the CPU the change itself needs.
                std::thread::sleep(Duration::from_millis(1));
            }
            total.push(t0.elapsed().as_secs_f64() * 1000.0);
            let st = xsh.wait().expect("xsh");
            assert!(st.success(), "xsh flip failed");
            let t_commit = t_commit.unwrap_or_else(|| t0.elapsed());
            commit.push(t_commit.as_secs_f64() * 1000.0);
        }
        let cpu = cpu_secs(pid) - cpu0;
        total.sort_by(|a, b| a.total_cmp(b));
        commit.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{what}: {flips} flips node 1 xsh start -> first obeying handshake on node 3: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 50 ms: {}); node 1 xsh process start to exit (its commit comes first) p50 {:.1} ms, p99 {:.1} ms; ratio to the product's 60 s replication: 1/{:.0}; not obeyed within 30 s: {lost}",
            pct(&total, 0.5),
            pct(&total, 0.99),
            pct(&total, 1.0),
            if pct(&total, 0.99) <= 50.0 { "met" } else { "missed" },
            pct(&commit, 0.5),
            pct(&commit, 0.99),
            60_000.0 / pct(&total, 0.5),
        );
        println!(
            "{what}: node 3 agent CPU {:.2} ms per reload ({flips} reloads, watch + materialise + build + swap)",
            cpu * 1000.0 / flips as f64
        );
    }

    fn rss(&self) {
        std::thread::sleep(Duration::from_secs(3));
        for n in &self.nodes {
            let pid = n.agent.as_ref().map(|a| a.guard.pid()).unwrap_or(0);
            let kib = rss_kib(pid);
            println!(
                "rss: {} agent idle with etcd client, watch and lease: {:.1} MiB (goal <= 20 MiB: {})",
                n.name,
                kib as f64 / 1024.0,
                if kib <= 20 * 1024 { "met" } else { "missed" }
            );
        }
    }
}
