//! P1: a status read as a whole process, against the cheapest processes that could answer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::agent::Agent;
use crate::common::fixture::{prepare_agent_root, AgentRoot, ZONES};
use crate::common::pki::{Ca, Eku};
use crate::common::{die, stats::verdict};
use crate::run::{figures, prepared_root, timed, xsh, Timed};
use crate::Opts;

const READ_LINE_RS: &str = "use std::io::{BufRead, Write};
fn main() {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}
";

/// Compiles the "reads a line and prints it" program with `rustc -O` (the floor of any Rust
/// program that answers one line: start-up, dynamic loading, one read, one write).
fn build_read_line(work: &Path) -> PathBuf {
    let src = work.join("read_line.rs");
    let bin = work.join("read_line");
    std::fs::write(&src, READ_LINE_RS).unwrap_or_else(|e| die(&e.to_string()));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let ok = Command::new(rustc)
        .args(["-O", "--edition", "2021", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        die("rustc -O read_line.rs failed");
    }
    bin
}

/// An agent on a root with 1,000 zones, once it has checked them all (agent.json full size).
fn agent_with_zones(work: &Path) -> (Agent, u64) {
    let ca = Ca::new("xsh bench p1 CA");
    let root = work.join("p1-zones");
    prepare_agent_root(
        &root,
        &AgentRoot {
            ca_pem: &ca.pem,
            server: &ca.issue("p1 server", Eku::Both),
            client: &ca.issue("p1 client", Eku::Both),
            zones: true,
        },
    );
    let agent = Agent::start(&root);
    let size = agent
        .wait_zones_reported(ZONES, Duration::from_secs(60))
        .unwrap_or_else(|| die("the agent did not report 1,000 zones within 60 s"));
    (agent, size)
}

/// One program of the round: `program [--root R]`, fed `input`.
struct Case {
    label: &'static str,
    program: PathBuf,
    root: Option<PathBuf>,
    input: &'static [u8],
    runs: Vec<Timed>,
}

impl Case {
    fn command(&self) -> Command {
        match &self.root {
            Some(r) => xsh(&self.program, r, &[]),
            None => Command::new(&self.program),
        }
    }
}

pub fn run(o: &Opts, work: &Path) {
    let runs = if o.runs > 0 { o.runs } else { 200 };
    let read_line = build_read_line(work);
    let zero = prepared_root(&o.xsh, work, "p1-zero", "");
    let (agent, json_size) = agent_with_zones(work);
    let status: &[u8] = b"xstatus SystemUnit\n";
    let leaf: &[u8] = b"xConfiguration SIP TLS Port\n";
    let case = |label, program: &Path, root: Option<&PathBuf>, input| Case {
        label,
        program: program.to_path_buf(),
        root: root.cloned(),
        input,
        runs: Vec::new(),
    };
    let mut cases = vec![
        case("/bin/true", Path::new("/bin/true"), None, status),
        case("read a line, print it (rustc -O)", &read_line, None, status),
        case(
            "xsh xstatus SystemUnit, 0 zones",
            &o.xsh,
            Some(&zero),
            status,
        ),
        case(
            "xsh xstatus SystemUnit, 1,000 zones",
            &o.xsh,
            Some(&agent.root),
            status,
        ),
        case("xsh one-leaf read, 0 zones", &o.xsh, Some(&zero), leaf),
        case(
            "xsh one-leaf read, 1,000 zones",
            &o.xsh,
            Some(&agent.root),
            leaf,
        ),
    ];
    for i in 0..runs + 5 {
        for c in &mut cases {
            let t = timed(&mut c.command(), c.input);
            if i >= 5 {
                c.runs.push(t); // the first 5 rounds warm the page cache
            }
        }
    }
    report(&cases, runs, json_size);
    drop(agent);
}

fn report(cases: &[Case], runs: usize, json_size: u64) {
    println!(
        "\nP1  echo LINE | PROGRAM, whole process, spawn to exit ({runs} runs each, interleaved; 1,000 zones = an agent running, agent.json {} KB)",
        json_size / 1000
    );
    let (t50, t90, _) = figures(&cases[0].runs);
    let (l50, _, _) = figures(&cases[1].runs);
    for (i, c) in cases.iter().enumerate() {
        let (m, p90, cpu) = figures(&c.runs);
        let goal = match i {
            2 => format!(" — goal ≤ 2.0× /bin/true: {}", verdict(m / t50 <= 2.0)),
            3 => format!(" — goal ≤ 3× /bin/true: {}", verdict(m / t50 <= 3.0)),
            _ => String::new(),
        };
        println!(
            "    {:<38} median {m:7.3} ms  p90 {p90:7.3} ms  cpu {cpu:6.3} ms/run   {:5.2}× /bin/true (p90 {:5.2}×)  {:5.2}× read-a-line{goal}",
            c.label,
            m / t50,
            p90 / t90,
            m / l50,
        );
    }
}
