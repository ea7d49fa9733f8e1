//! 10,000 different sets piped into one `xsh` session, spawn to the last `OK`: on the file
//! backend, and on a ROOT joined to a real 3-member etcd cluster on loopback (the sets commit
//! as etcd transactions: an `OK` means a quorum has it). Prints medians, the ratio, the CPU of
//! xsh and of the etcd members.
//!
//! `cargo bench --bench cluster_store_bench -- run [RUNS]` (without `run`: this usage).

#[path = "common/procfs.rs"]
#[allow(dead_code)]
mod procfs;
#[path = "../tests/common/mod.rs"]
mod tcommon;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use tcommon::etcd::EtcdCluster;

const N: usize = 10_000;

/// `n` sets that each change something: the leaves of zones 1..1000 in turn.
fn lines(n: usize, salt: &str) -> String {
    let mut s = String::with_capacity(n * 64);
    for i in 0..n {
        let z = i % 1000 + 1;
        let round = i / 1000;
        let p = format!("xConfiguration Zones Zone {z}");
        let line = match round % 5 {
            0 => format!("{p} Name: \"zone {z} r{round}{salt}\""),
            1 => format!("{p} Neighbor Peer 1 Address: \"peer{z}-r{round}{salt}.example.com\""),
            2 => format!("{p} Neighbor SIP Port: {}", 10000 + z + round),
            3 => format!("{p} Neighbor Tunnel Port: {}", 20000 + z + round),
            _ => format!("{p} Neighbor SIP TLS Verify Subject Name: \"s{z}-r{round}{salt}\""),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// Pipes the sets and reads every `OK`: (wall seconds, xsh CPU seconds).
fn push(root: &Path, input: String) -> (f64, f64) {
    let cpu0 = procfs::children_cpu();
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xsh"))
        .arg("--root")
        .arg(root)
        .arg("--no-banner")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("xsh starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let mut oks = 0;
    while oks < N {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        assert_eq!(line, "OK\n", "unexpected reply");
        oks += 1;
    }
    let wall = t.elapsed().as_secs_f64();
    let _ = child.wait();
    let _ = w.join();
    assert_eq!(oks, N, "{oks} of {N} sets acknowledged");
    (wall, procfs::children_cpu() - cpu0)
}

fn xsh(root: &Path, input: &str) -> String {
    let out = tcommon::xsh_piped(root, input);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("run") {
        println!("usage: cargo bench --bench cluster_store_bench -- run [RUNS]");
        println!(
            "  10,000 piped sets committed through a 3-member etcd on loopback vs the file backend"
        );
        return;
    }
    let runs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let Some(c) = EtcdCluster::start(3) else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let (mut file_w, mut file_cpu, mut etcd_w, mut etcd_cpu, mut member_cpu) =
        (Vec::new(), 0.0, Vec::new(), 0.0, 0.0);
    for i in 0..runs {
        let f = work.path().join(format!("file-{i}"));
        xsh(&f, "xConfiguration Shell IdleTimeout: 0\n");
        let (w, cpu) = push(&f, lines(N, ""));
        file_w.push(w);
        file_cpu += cpu;

        let e = work.path().join(format!("etcd-{i}"));
        xsh(&e, "xConfiguration Shell IdleTimeout: 0\n");
        let j = xsh(
            &e,
            &format!(
                "xCommand Cluster Join Endpoints: \"{}\" Prefix: \"/bench/r{i}\" PeerName: \"p{i}\"\n",
                c.endpoints_arg()
            ),
        );
        assert!(j.contains("status=OK"), "{j}");
        let m0: f64 = c.pids().iter().map(|&p| procfs::cpu_secs(p)).sum();
        let (w, cpu) = push(&e, lines(N, "-e"));
        let m1: f64 = c.pids().iter().map(|&p| procfs::cpu_secs(p)).sum();
        etcd_w.push(w);
        etcd_cpu += cpu;
        member_cpu += m1 - m0;
        let shared = c
            .get(&format!("/bench/r{i}/config"))
            .expect("config in etcd");
        assert!(shared.contains("r9-e\""), "the last round is in etcd");
    }
    let (fw, ew) = (median(&mut file_w), median(&mut etcd_w));
    let r = runs as f64;
    println!("\n10,000 different sets piped into one xsh session, spawn to the last OK; {runs} runs, median");
    println!(
        "    file backend   {:8.1} ms   xsh cpu {:6.1} ms",
        fw * 1e3,
        file_cpu / r * 1e3
    );
    println!(
        "    etcd (3 members, fsync) {:8.1} ms   xsh cpu {:6.1} ms   etcd members cpu {:6.1} ms — goal ≤ 500 ms: {}",
        ew * 1e3,
        etcd_cpu / r * 1e3,
        member_cpu / r * 1e3,
        if ew <= 0.5 { "met" } else { "MISSED" }
    );
    println!("    etcd / file: {:.2}×", ew / fw);
}
