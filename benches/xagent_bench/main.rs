//! `xagent_bench`: the agent's measurements side by side with nginx, printing figures and ratios.
//!
//! ```text
//! cargo bench --bench xagent_bench -- all
//! cargo bench --bench xagent_bench -- [p3|p4|p5|build ...] [--flips N] [--seconds S] [--threads N]
//!                                     [--conns N] [--rounds N] [--builds N] [--no-nginx] [--nginx PATH]
//! ```
//!
//! * p3 (`p3.rs`): from the start of a change (the spawn of `xsh -c`, the start of a certificate
//!   write; for nginx the rewrite + `nginx -s reload`) to the first handshake that obeys it, at
//!   0 zones and at 1,000 zones / 1,000 CAs.
//! * p4 (`p4.rs`, `floor.rs`): mutual-TLS handshakes/s and server CPU per handshake, ours and
//!   nginx interleaved, against the ring crypto floor of the same run; then ours under 10 mode
//!   flips/s and 10 certificate re-uploads/s.
//! * p5 (`p5.rs`): VmRSS idle at 0 and 1,000 zones, and per idle TLS connection.
//! * build (`generation.rs`): `xsh::agent::generation::build` in-process at 1,000 zones and at
//!   1,000 CAs.
//!
//! Everything runs on 127.0.0.1 in a temp folder removed at the end; every loop is bounded in
//! count and time. Figures only: nothing here passes or fails a build. Without a benchmark named
//! (as `cargo test --all-targets` runs it) it prints its usage and exits.

#![forbid(unsafe_code)]

mod client;
#[path = "../common/mod.rs"]
mod common;
mod floor;
mod generation;
mod nginx;
mod p3;
mod p4;
mod p5;
mod setup;

use std::path::PathBuf;

const USAGE: &str = "usage: cargo bench --bench xagent_bench -- [all|p3|p4|p5|build ...] [--flips N] [--seconds S] [--threads N] [--conns N] [--rounds N] [--builds N] [--no-nginx] [--nginx PATH]";

pub struct Opts {
    pub flips: usize,
    pub seconds: u64,
    pub threads: usize,
    pub conns: usize,
    pub rounds: usize,
    pub builds: usize,
    pub nginx: Option<PathBuf>,
}

/// The benchmarks named on the command line, and the options.
fn parse_args() -> (Vec<String>, Opts) {
    let mut what: Vec<String> = Vec::new();
    let mut opts = Opts {
        flips: 200,
        seconds: 5,
        threads: 8,
        conns: 1000,
        rounds: 3,
        builds: 30,
        nginx: Some(PathBuf::from("nginx")),
    };
    let mut args = common::args().into_iter();
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| common::die(&format!("{name} needs a number")))
        };
        match a.as_str() {
            "all" | "p3" | "p4" | "p5" | "build" => what.push(a),
            "--flips" => opts.flips = num("--flips").max(2) as usize,
            "--seconds" => opts.seconds = num("--seconds").clamp(1, 120),
            "--threads" => opts.threads = num("--threads").clamp(1, 256) as usize,
            "--conns" => opts.conns = num("--conns").clamp(1, 10_000) as usize,
            "--rounds" => opts.rounds = num("--rounds").clamp(1, 20) as usize,
            "--builds" => opts.builds = num("--builds").clamp(1, 10_000) as usize,
            "--no-nginx" => opts.nginx = None,
            "--nginx" => opts.nginx = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => common::die(&format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    if what.iter().any(|w| w == "all") {
        what = ["build", "p3", "p4", "p5"].map(String::from).to_vec();
    }
    (what, opts)
}

fn main() {
    let (what, mut opts) = parse_args();
    if what.is_empty() {
        // `cargo test --all-targets` runs bench targets without arguments: nothing heavy.
        return println!("{USAGE}\n(no benchmark named: nothing run)");
    }
    raise_nofile(opts.conns as u64 * 2 + 4096);
    if let Some(n) = &opts.nginx {
        match nginx::version(n) {
            Some(v) => println!("nginx: {v}"),
            None => {
                println!("nginx: not found (apt-get install -y nginx-light); the nginx columns are skipped");
                opts.nginx = None;
            }
        }
    }
    let work = common::WorkDir::new("xagent-bench");
    let pki = setup::Pki::new();
    println!(
        "machine: {} cores; bench pid {}; work dir {}",
        common::cores(),
        std::process::id(),
        work.path().display()
    );
    for w in &what {
        match w.as_str() {
            "build" => generation::run(work.path(), &pki, opts.builds),
            "p3" => p3::run(work.path(), &pki, &opts),
            "p4" => p4::run(work.path(), &pki, &opts),
            _ => p5::run(work.path(), &pki, &opts),
        }
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
