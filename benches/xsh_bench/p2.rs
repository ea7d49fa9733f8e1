//! P2: many different sets piped into one session, every `OK` read (so every set is durable).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::stats::{summary, verdict};
use crate::common::{die, procfs};
use crate::run::prepared_root;
use crate::Opts;

/// `n` sets that each change something: the 7 leaves of zones 1..1000 in turn, with values that
/// depend on the round, so a later round sets new values again.
pub fn p2_lines(n: usize) -> String {
    let mut s = String::with_capacity(n * 64);
    for i in 0..n {
        let z = i % 1000 + 1;
        let round = i / 1000;
        let p = format!("xConfiguration Zones Zone {z}");
        let on = if round.is_multiple_of(2) { "Off" } else { "On" };
        let ty = if round.is_multiple_of(2) {
            "TraversalClient"
        } else {
            "Neighbor"
        };
        let line = match round % 7 {
            0 => format!("{p} Name: \"zone {z} r{round}\""),
            1 => format!("{p} Neighbor Peer 1 Address: \"peer{z}-r{round}.example.com\""),
            2 => format!("{p} Neighbor SIP Port: {}", 10000 + z + round),
            3 => format!("{p} Neighbor Tunnel Port: {}", 20000 + z + round),
            4 => format!("{p} Type: {ty}"),
            5 => format!("{p} Neighbor SIP TLS Verify Mode: {on}"),
            _ => format!("{p} Neighbor SIP TLS Verify Subject Name: \"s{z}-r{round}\""),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// Pipes `n` sets into one session and reads until every `OK` arrived: (wall time from spawn to
/// the last `OK`, the session's CPU in seconds).
fn push(xsh: &Path, root: &Path, n: usize, group: bool) -> (Duration, f64) {
    let mut cmd = Command::new(xsh);
    cmd.arg("--root").arg(root).arg("--no-banner");
    if !group {
        cmd.arg("--no-group-commit");
    }
    let input = p2_lines(n);
    let cpu0 = procfs::children_cpu();
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| die(&format!("spawn xsh: {e}")));
    let mut stdin = child.stdin.take().unwrap_or_else(|| die("no stdin"));
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = BufReader::new(child.stdout.take().unwrap_or_else(|| die("no stdout")));
    let mut line = String::new();
    let mut oks = 0;
    while oks < n {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line != "OK\n" {
            die(&format!("unexpected reply line {line:?}"));
        }
        oks += 1;
    }
    let d = t.elapsed();
    let _ = child.wait();
    let _ = w.join();
    if oks != n {
        die(&format!("{oks} of {n} sets acknowledged"));
    }
    (d, procfs::children_cpu() - cpu0)
}

pub fn run(o: &Opts, work: &Path) {
    let runs = if o.runs > 0 { o.runs.min(10) } else { 3 };
    let (mut small, mut large) = (Vec::new(), Vec::new());
    let (mut cs, mut cl) = (0.0, 0.0);
    for i in 0..runs {
        for (n, v, c) in [
            (10_000, &mut small, &mut cs),
            (100_000, &mut large, &mut cl),
        ] {
            let root = prepared_root(&o.xsh, work, &format!("p2-{n}-{i}"), "");
            let (d, cpu) = push(&o.xsh, &root, n, true);
            v.push(d.as_secs_f64());
            *c += cpu;
            let _ = std::fs::remove_dir_all(&root);
        }
    }
    let root = prepared_root(&o.xsh, work, "p2-base", "");
    let (bd, bcpu) = push(&o.xsh, &root, o.baseline_sets, false);
    let _ = std::fs::remove_dir_all(&root);
    let (s, l) = (summary(&small), summary(&large));
    println!("\nP2  N different sets piped into one session, spawn to the last OK (durable); {runs} runs each, interleaved");
    for (n, x, cpu, goal) in [(10_000, s, cs, 0.2), (100_000, l, cl, 1.5)] {
        println!(
            "    {n:>7} sets  median {:8.1} ms  max {:8.1} ms  cpu {:6.2} µs/set  ({:.0} sets/s) — goal ≤ {goal} s: {}",
            x.p50 * 1e3,
            x.max * 1e3,
            cpu / runs as f64 / n as f64 * 1e6,
            n as f64 / x.p50,
            verdict(x.p50 <= goal)
        );
    }
    let ratio = l.p50 / s.p50;
    println!(
        "    100,000 / 10,000 sets: {ratio:.2}× the time for 10× the sets — goal ≤ 11×: {}",
        verdict(ratio <= 11.0)
    );
    println!(
        "    baseline --no-group-commit, {} sets: {:.1} ms ({:.3} ms/set, cpu {:.1} µs/set; one transaction and 3 fsyncs per set)",
        o.baseline_sets,
        bd.as_secs_f64() * 1e3,
        bd.as_secs_f64() * 1e3 / o.baseline_sets as f64,
        bcpu / o.baseline_sets as f64 * 1e6
    );
}
