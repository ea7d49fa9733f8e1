//! `xsh_bench`: the shell and configuration store measurements, printing figures and ratios.
//!
//! ```text
//! cargo bench --bench xsh_bench -- all
//! cargo bench --bench xsh_bench -- [p1|set|p2|parse|dump]... [--runs N] [--baseline-sets N] [--xsh PATH]
//! ```
//!
//! * p1: `echo 'xstatus SystemUnit' | xsh --root R` as a whole process, at 0 zones and with 1,000
//!   zones configured and an agent running (so `status/agent.json` is full size), against
//!   `/bin/true` and a Rust program that reads a line and prints it (compiled here with `rustc -O`),
//!   all interleaved.
//! * set: one `xsh -c` set, 1,000 zones configured vs 0 zones, interleaved.
//! * p2: 10,000 and 100,000 different sets piped into one session, every `OK` read (so durable),
//!   and the `--no-group-commit` baseline on a few sets.
//! * parse: `xsh::parse::parse_line` throughput; dump: `config_txt` + `config_xml` in-process.
//!
//! Every time runs from the start of the user's action (the process spawn) to its end; CPU per
//! operation is printed beside it. Figures only: nothing here passes or fails a build. Without a
//! benchmark named (as `cargo test --all-targets` runs it) it prints its usage and exits.

#![forbid(unsafe_code)]

#[path = "../common/mod.rs"]
mod common;
mod inproc;
mod p1;
mod p2;
mod run;
mod set;

use std::path::PathBuf;

const USAGE: &str = "usage: cargo bench --bench xsh_bench -- [all|p1|set|p2|parse|dump]... [--runs N] [--baseline-sets N] [--xsh PATH]";

pub struct Opts {
    pub runs: usize,
    pub baseline_sets: usize,
    pub xsh: PathBuf,
}

fn main() {
    let mut what = Vec::new();
    let mut opts = Opts {
        runs: 0,
        baseline_sets: 500,
        xsh: PathBuf::new(),
    };
    let mut args = common::args().into_iter();
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| common::die(&format!("{name} needs a number")))
        };
        match a.as_str() {
            "--runs" => opts.runs = num("--runs"),
            "--baseline-sets" => opts.baseline_sets = num("--baseline-sets").max(1),
            "--xsh" => opts.xsh = args.next().map(PathBuf::from).unwrap_or_default(),
            "-h" | "--help" => return println!("{USAGE}"),
            "all" | "p1" | "set" | "p2" | "parse" | "dump" => what.push(a),
            o => common::die(&format!("unknown argument '{o}'\n{USAGE}")),
        }
    }
    if what.is_empty() {
        // `cargo test --all-targets` runs bench targets without arguments: nothing heavy.
        return println!("{USAGE}\n(no benchmark named: nothing run)");
    }
    if what.iter().any(|w| w == "all") {
        what = ["p1", "set", "p2", "parse", "dump"]
            .map(String::from)
            .to_vec();
    }
    if opts.xsh.as_os_str().is_empty() {
        opts.xsh = common::xsh_bin();
    }
    println!(
        "xsh_bench: {} cores, xsh = {}",
        common::cores(),
        opts.xsh.display()
    );
    let work = common::WorkDir::new("xsh-bench");
    for w in &what {
        match w.as_str() {
            "p1" => p1::run(&opts, work.path()),
            "set" => set::run(&opts, work.path()),
            "p2" => p2::run(&opts, work.path()),
            "parse" => inproc::parse(&opts),
            _ => inproc::dump(&opts),
        }
    }
}
