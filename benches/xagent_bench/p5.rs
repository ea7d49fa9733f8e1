//! P5: the agent's VmRSS idle (0 zones, and 1,000 zones once all are checked), and per idle TLS
//! connection: N connections opened and held (each completed a handshake and one `OPTIONS`),
//! read 0.5 s after the last opened, well inside the agent's 30 s SIP idle timeout.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::{exchange, Tls, SIP};
use crate::common::agent::Agent;
use crate::common::fixture::ZONES;
use crate::common::stats::verdict;
use crate::setup::{agent_root, Pki, Scale};
use crate::Opts;

fn mib(k: u64) -> f64 {
    k as f64 / 1024.0
}

/// An agent after one handshake and 1 s of rest (and, with zones, once it has checked them all).
fn idle_agent(work: &Path, pki: &Pki, scale: Scale) -> (Agent, u64) {
    let agent = Agent::start(&agent_root(
        work,
        &format!("p5-{}", scale.name()),
        pki,
        scale,
    ));
    if scale == Scale::Zones
        && agent
            .wait_zones_reported(ZONES, Duration::from_secs(60))
            .is_none()
    {
        println!("  (the agent did not report {ZONES} zones within 60 s)");
    }
    let _ = exchange(agent.sip, &pki.client_both, SIP);
    std::thread::sleep(Duration::from_secs(1));
    let idle = agent.rss_kib().0;
    (agent, idle)
}

/// Opens up to `n` connections within 20 s; returns them and the failures.
fn hold(agent: &Agent, pki: &Pki, n: usize) -> (Vec<Tls>, usize) {
    let mut held = Vec::with_capacity(n);
    let mut failed = 0usize;
    let start = Instant::now();
    while held.len() < n && start.elapsed() < Duration::from_secs(20) && failed <= 100 {
        match exchange(agent.sip, &pki.client_both, SIP) {
            Ok((tls, _)) => held.push(tls),
            Err(_) => failed += 1,
        }
    }
    (held, failed)
}

/// An `OPTIONS` on the first and the last connection: are they still served?
fn alive(held: &mut [Tls]) -> usize {
    let last = held.len().saturating_sub(1);
    let mut n = 0;
    for i in [0, last] {
        if let Some(t) = held.get_mut(i) {
            let mut b = [0u8; 11];
            if t.write_all(SIP.req).is_ok() && t.read_exact(&mut b).is_ok() && b == *SIP.ok {
                n += 1;
            }
        }
    }
    n
}

pub fn run(work: &Path, pki: &Pki, opts: &Opts) {
    println!(
        "\n== P5 agent memory (VmRSS), idle and with {} idle TLS connections ==",
        opts.conns
    );
    let (small, small_idle) = idle_agent(work, pki, Scale::Small);
    drop(small);
    let (agent, idle) = idle_agent(work, pki, Scale::Zones);
    println!(
        "  idle: 0 zones {:.1} MiB; 1,000 zones {:.1} MiB — goal ≤ 16 MiB: {}",
        mib(small_idle),
        mib(idle),
        verdict(mib(idle) <= 16.0)
    );
    let start = Instant::now();
    let (mut held, failed) = hold(&agent, pki, opts.conns);
    let opened = start.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let (busy, hwm) = agent.rss_kib();
    let up = alive(&mut held);
    let n = held.len();
    drop(held);
    let per = busy.saturating_sub(idle) as f64 / n.max(1) as f64;
    println!(
        "  with {n} idle TLS connections (1,000 zones; opened in {:.1} s, {failed} failed, {up}/2 probed alive): {:.1} MiB (peak {:.1} MiB), {per:.1} KiB per connection — goal ≤ 16 KiB: {}",
        opened.as_secs_f64(),
        mib(busy),
        mib(hwm),
        verdict(per <= 16.0 && n >= opts.conns)
    );
    std::thread::sleep(Duration::from_secs(1));
    println!("  after closing them: {:.1} MiB", mib(agent.rss_kib().0));
}
