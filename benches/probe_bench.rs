//! `probe_bench`: wall time of `xCommand Security Certificates Probe Present: All` (three full
//! handshakes, each followed by SIP `OPTIONS`) against a local `xagent` in EKU mode On, in
//! process (`xsh::probe::probe` plus its records) and end to end (`xsh -c`, process start
//! included). Goal: ≤ 50 ms per probe. Figures only: nothing here fails a build.
//!
//! ```text
//! cargo bench --bench probe_bench -- probe [--rounds N]
//! ```
//!
//! The prober presents a clientAuth client store (accepted), a serverAuth-only server store
//! (refused after Finished, alert 43) and no certificate (refused, alert 116): every outcome
//! the probe classifies, on 127.0.0.1 only, in a temp folder removed at the end.

#![forbid(unsafe_code)]

#[path = "common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

use common::agent::Agent;
use common::fixture::{install_certs, prepare_agent_root, AgentRoot};
use common::pki::{Ca, Eku};
use common::stats::{ms, summary, verdict};
use xsh::probe::{Present, Protocol, Spec, TlsVersion};

const USAGE: &str = "usage: cargo bench --bench probe_bench -- probe [--rounds N]";
const GOAL_MS: f64 = 50.0;

fn main() {
    let args = common::args();
    if !args.iter().any(|a| a == "probe" || a == "all") {
        println!("{USAGE}");
        return;
    }
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 10_000);
    let work = common::WorkDir::new("xsh-probe-bench-");
    let ca = Ca::new("probe bench CA");
    let partner = work.path().join("partner");
    let prober = work.path().join("prober");
    let p_server = ca.issue("partner", Eku::Both);
    let p_client = ca.issue("partner client", Eku::Both);
    prepare_agent_root(
        &partner,
        &AgentRoot {
            ca_pem: &ca.pem,
            server: &p_server,
            client: &p_client,
            zones: false,
        },
    );
    let agent = Agent::start(&partner);
    install_certs(
        &prober,
        &ca.pem,
        &ca.issue("prober server", Eku::ServerOnly),
        &ca.issue("prober client", Eku::Both),
    );
    let spec = Spec {
        address: "127.0.0.1".into(),
        port: agent.sip.port(),
        server_name: Some("localhost".into()),
        present: Present::All,
        protocol: Protocol::Sip,
        version: TlsVersion::Any,
    };
    let first = xsh::probe::probe(&prober, &spec);
    let outcomes: Vec<String> = first
        .attempts
        .iter()
        .map(|a| format!("{}: {}", a.identity.word(), a.outcome.text()))
        .collect();
    println!(
        "probe against xagent {} (mode On), Present: All, Protocol: SIP",
        agent.sip
    );
    for o in &outcomes {
        println!("  {o}");
    }
    println!("  verdict: {}", first.verdict);

    let mut inproc = Vec::with_capacity(rounds);
    let mut records = Vec::with_capacity(rounds);
    let mut hs = Vec::with_capacity(rounds);
    // CPU per probe, both ends: this process (the prober) and the agent it probes.
    let (cpu0, agent_cpu0) = (common::procfs::self_cpu(), agent.cpu_secs());
    for _ in 0..rounds {
        let t = Instant::now();
        let r = xsh::probe::probe(&prober, &spec);
        let handshakes = t.elapsed();
        let _ = xsh::probe::record::log_handshakes(&prober, &r);
        let _ = xsh::probe::record::keep(&prober, &r);
        inproc.push(ms(t.elapsed()));
        records.push(ms(t.elapsed().saturating_sub(handshakes)));
        hs.push(ms(handshakes));
    }
    let cpu_probe = (common::procfs::self_cpu() - cpu0) / rounds as f64;
    let cpu_agent = (agent.cpu_secs() - agent_cpu0) / rounds as f64;
    let s = summary(&inproc);
    let rec = summary(&records);
    let h = summary(&hs);
    println!(
        "  the three handshakes alone: p50 {:.1} ms  p90 {:.1} ms (per handshake p50 {:.1} ms)",
        h.p50,
        h.p90,
        h.p50 / 3.0
    );
    println!(
        "  of which the records (handshake log append, probes.json written atomically with fsync): p50 {:.1} ms  p90 {:.1} ms",
        rec.p50, rec.p90
    );
    println!(
        "in process (probe + records), {} probes: p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms; goal <= {GOAL_MS} ms: {}",
        s.n,
        s.p50,
        s.p90,
        s.p99,
        s.max,
        verdict(s.p50 <= GOAL_MS)
    );
    println!(
        "  CPU per probe: prober {:.2} ms, agent {:.2} ms ({:.2} ms per handshake, both ends)",
        cpu_probe * 1e3,
        cpu_agent * 1e3,
        (cpu_probe + cpu_agent) * 1e3 / 3.0
    );

    let cmd = format!(
        "xCommand Security Certificates Probe Address: 127.0.0.1 Port: {} ServerName: localhost",
        agent.sip.port()
    );
    let runs = rounds.clamp(1, 30);
    let mut e2e = Vec::with_capacity(runs);
    let child_cpu0 = common::procfs::children_cpu();
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(common::xsh_bin())
            .arg("--root")
            .arg(&prober)
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap_or_else(|e| common::die(&format!("xsh: {e}")));
        e2e.push(ms(t.elapsed()));
        if !out.status.success() {
            common::die(&format!(
                "xsh -c failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    let cpu_xsh = (common::procfs::children_cpu() - child_cpu0) / runs as f64;
    let s2 = summary(&e2e);
    println!(
        "end to end (xsh -c, process start included), {} runs: p50 {:.1} ms  p90 {:.1} ms  max {:.1} ms; ratio to in process {:.2}; CPU per run (xsh) {:.2} ms",
        s2.n,
        s2.p50,
        s2.p90,
        s2.max,
        s2.p50 / s.p50,
        cpu_xsh * 1e3
    );
    drop(agent);
}
