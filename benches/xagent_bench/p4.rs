//! P4: mutual-TLS handshakes/s and the server's CPU per handshake (utime + stime from
//! `/proc/PID/stat` over the run), ours and nginx interleaved, against the crypto floor measured
//! in the same run; then ours under 10 mode flips/s and 10 certificate re-uploads/s, where every
//! handshake should pass. The load generator's own CPU is printed beside.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{group_of, load, Load, Proto, HTTP, SIP};
use crate::common::agent::Agent;
use crate::common::fixture::{write_pair, MODE_KEY, SERVER_CERT, SERVER_KEY};
use crate::common::procfs;
use crate::common::stats::{pct, verdict};
use crate::floor::{self, Floor};
use crate::nginx::Nginx;
use crate::setup::{agent_root, Pki, Scale, LEAVES};
use crate::Opts;

/// One load run with the CPU it cost: (load, server µs per handshake, generator µs per handshake).
fn measured(
    server_cpu: &dyn Fn() -> f64,
    addr: SocketAddr,
    pki: &Pki,
    p: Proto,
    opts: &Opts,
) -> (Load, f64, f64) {
    let (s0, g0) = (server_cpu(), procfs::self_cpu());
    let l = load(
        addr,
        &pki.client_both,
        p,
        opts.threads,
        Duration::from_secs(opts.seconds),
    );
    let per = |c: f64| c / l.ok.max(1) as f64 * 1e6;
    let (s, g) = (per(server_cpu() - s0), per(procfs::self_cpu() - g0));
    (l, s, g)
}

fn line(who: &str, round: usize, r: &(Load, f64, f64), f: &Floor) {
    println!(
        "  round {round}: {who:<5} {:>7.0} handshakes/s ({} ok, {} failed)  server cpu {:6.1} µs/handshake = {:.2}× floor  load generator {:6.1} µs/handshake",
        r.0.rate(),
        r.0.ok,
        r.0.failed,
        r.1,
        r.1 / f.total_us(),
        r.2
    );
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

pub fn run(work: &Path, pki: &Pki, opts: &Opts) {
    println!(
        "\n== P4 mutual-TLS handshakes/s and server CPU per handshake (ECDSA P-256, TLS 1.3, no resumption; {} client threads, {} s per run, interleaved ×{}) ==",
        opts.threads, opts.seconds, opts.rounds
    );
    let f = floor::measure(pki);
    let agent = Agent::start(&agent_root(work, "p4", pki, Scale::Small));
    let nginx = opts.nginx.as_ref().and_then(|b| Nginx::start(b, work, pki));
    println!(
        "  crypto floor (ring, this run): ECDHE X25519 {:.1} µs + ECDSA P-256 sign {:.1} µs + 2 × verify {:.1} µs = {:.1} µs per handshake",
        f.kx_us, f.sign_us, f.verify_us, f.total_us()
    );
    println!(
        "  negotiated group: ours {}, nginx {}",
        group_of(agent.sip, &pki.client_both, SIP),
        nginx
            .as_ref()
            .map(|n| group_of(n.addr, &pki.client_both, HTTP))
            .unwrap_or_else(|| "-".into())
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=opts.rounds {
        let r = measured(&|| agent.cpu_secs(), agent.sip, pki, SIP, opts);
        line("ours", round, &r, &f);
        ours.push(r);
        if let Some(n) = &nginx {
            let r = measured(&|| n.cpu_secs(), n.addr, pki, HTTP, opts);
            line("nginx", round, &r, &f);
            theirs.push(r);
        }
    }
    summarize(&ours, &theirs, &f);
    if let Some(n) = &nginx {
        println!(
            "  RSS after the load: agent {} KiB, nginx (master + workers) {} KiB",
            agent.rss_kib().0,
            n.rss_kib()
        );
    }
    drop(nginx);
    under_reloads(
        &agent,
        pki,
        opts,
        mean(&ours.iter().map(|r| r.0.rate()).collect::<Vec<_>>()),
        &f,
    );
}

fn summarize(ours: &[(Load, f64, f64)], theirs: &[(Load, f64, f64)], f: &Floor) {
    let rate = |v: &[(Load, f64, f64)]| mean(&v.iter().map(|r| r.0.rate()).collect::<Vec<_>>());
    let cpu = |v: &[(Load, f64, f64)]| mean(&v.iter().map(|r| r.1).collect::<Vec<_>>());
    let gen = |v: &[(Load, f64, f64)]| mean(&v.iter().map(|r| r.2).collect::<Vec<_>>());
    let oc = cpu(ours);
    println!(
        "  ours: {:.0} handshakes/s, server cpu {oc:.1} µs/handshake = {:.2}× the floor — goal ≤ 1.4×: {}; load generator {:.1} µs/handshake",
        rate(ours),
        oc / f.total_us(),
        verdict(oc / f.total_us() <= 1.4),
        gen(ours)
    );
    if theirs.is_empty() {
        return println!("  nginx: not measured");
    }
    let nc = cpu(theirs);
    let mut per: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| a.0.rate() / b.0.rate())
        .collect();
    per.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  nginx: {:.0} handshakes/s, server cpu {nc:.1} µs/handshake = {:.2}× the floor; load generator {:.1} µs/handshake",
        rate(theirs),
        nc / f.total_us(),
        gen(theirs)
    );
    println!(
        "  ours/nginx: rate {:.2}× (per round, median {:.2}×), server cpu per handshake {:.2}×",
        rate(ours) / rate(theirs),
        pct(&per, 50.0),
        oc / nc
    );
}

/// A thread that, 10 times a second, flips the mode through `xsh -c` and re-uploads the server
/// pair (cycling the leaves); returns the number of ticks when `stop` is set.
fn flipper(
    root: std::path::PathBuf,
    pki: &Pki,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let leaves = pki.servers.clone();
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
            let ok = std::process::Command::new(crate::common::xsh_bin())
                .arg("--root")
                .arg(&root)
                .arg("-c")
                .arg(format!("{MODE_KEY}: {mode}"))
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                crate::common::die("xsh -c failed under load");
            }
            write_pair(
                &certs,
                SERVER_CERT,
                SERVER_KEY,
                &leaves[(ticks as usize + 1) % LEAVES],
            );
            ticks += 1;
        }
        ticks
    })
}

fn under_reloads(agent: &Agent, pki: &Pki, opts: &Opts, steady: f64, f: &Floor) {
    let _ = agent.drain();
    let stop = Arc::new(AtomicBool::new(false));
    let h = flipper(agent.root.clone(), pki, stop.clone());
    let r = measured(&|| agent.cpu_secs(), agent.sip, pki, SIP, opts);
    stop.store(true, Ordering::Relaxed);
    let ticks = h.join().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(200));
    let lines = agent.drain();
    let count = |p: &str| lines.iter().filter(|(_, l)| l.starts_with(p)).count();
    let l = &r.0;
    println!(
        "  under reloads: ours {:.0} handshakes/s ({} ok, {} FAILED), server cpu {:.1} µs/handshake ({:.2}× floor, rebuilds included) while {ticks} mode flips + {ticks} certificate re-uploads ({:.1}/s each) → {} generations applied, {} kept the previous one",
        l.rate(),
        l.ok,
        l.failed,
        r.1,
        r.1 / f.total_us(),
        ticks as f64 / l.secs,
        count("xagent: applied generation"),
        count("xagent: kept generation")
    );
    for (e, n) in l.errors.iter().take(5) {
        println!("    failure ({n}×): {e}");
    }
    println!(
        "  goal 0 failed handshakes under 10 reloads/s: {}; throughput under reloads / steady: {:.2}×",
        verdict(l.failed == 0),
        l.rate() / steady
    );
}
