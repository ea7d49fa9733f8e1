//! `xsh-bench`: the measurements of the store and shell issue, printing figures and ratios.
//!
//! ```text
//! cargo build --release && cargo run --release --bin xsh-bench -- all
//! xsh-bench [all|p1|p2|parse|dump] [--runs N] [--baseline-sets N] [--xsh PATH]
//! ```
//!
//! * P1: `echo 'xstatus SystemUnit' | xsh --root R` as a whole process vs `/bin/true`, interleaved.
//! * P2: 10,000 different sets piped into one session, every `OK` read (so durable): group commit
//!   vs `--no-group-commit` (the baseline, run on fewer sets and extrapolated linearly).
//! * parse: `xsh::parse::parse_line` throughput over a realistic mix of lines.
//! * dump: `config_txt` + `config_xml` in-process on 1,000 fully configured zones.
//!
//! Figures only: nothing here passes or fails a build. The machine is shared, so medians and p90s
//! of interleaved runs are printed, never a single run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xsh::parse::{parse_line, Action};
use xsh::store::Config;

struct Opts {
    runs: usize,
    baseline_sets: usize,
    xsh: PathBuf,
}

fn main() {
    let mut what = Vec::new();
    let mut opts = Opts {
        runs: 0,
        baseline_sets: 500,
        xsh: default_xsh(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => opts.runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--baseline-sets" => {
                opts.baseline_sets = args.next().and_then(|v| v.parse().ok()).unwrap_or(500)
            }
            "--xsh" => opts.xsh = args.next().map(PathBuf::from).unwrap_or(opts.xsh),
            "-h" | "--help" => {
                println!("usage: xsh-bench [all|p1|p2|parse|dump]... [--runs N] [--baseline-sets N] [--xsh PATH]");
                return;
            }
            w => what.push(w.to_string()),
        }
    }
    if what.is_empty() || what.iter().any(|w| w == "all") {
        what = ["p1", "p2", "parse", "dump"].map(String::from).to_vec();
    }
    println!(
        "xsh-bench: {} cores, xsh = {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        opts.xsh.display()
    );
    for w in &what {
        match w.as_str() {
            "p1" => p1(&opts),
            "p2" => p2(&opts),
            "parse" => parse(&opts),
            "dump" => dump(&opts),
            o => eprintln!("xsh-bench: unknown benchmark '{o}'"),
        }
    }
}

/// The `xsh` beside this binary (`target/release/xsh` for `cargo run --release`).
fn default_xsh() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("xsh")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("xsh"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (median, p90) of durations.
fn stats(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.9))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets the goal"
    } else {
        "MISSES the goal"
    }
}

fn temp_root(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("xsh-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// Creates a root and its default certificate, so runs measure the steady state.
fn prepared_root(xsh: &Path, name: &str) -> PathBuf {
    let root = temp_root(name);
    let st = Command::new(xsh)
        .arg("--root")
        .arg(&root)
        .args(["-c", "xConfiguration SIP TLS Port"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run xsh (build it first: cargo build --release)");
    assert!(st.success(), "xsh failed preparing {}", root.display());
    root
}

/// Runs `cmd` with `input` on stdin and its output discarded; returns the wall time.
fn time_process(cmd: &mut Command, input: &[u8]) -> Duration {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(input);
    }
    let st = child.wait().expect("wait");
    let d = t.elapsed();
    assert!(st.success(), "{cmd:?} failed");
    d
}

fn p1(o: &Opts) {
    let runs = if o.runs > 0 { o.runs } else { 300 };
    let root = prepared_root(&o.xsh, "p1");
    let input = b"xstatus SystemUnit\n";
    // Warm the page cache for both.
    for _ in 0..5 {
        time_process(Command::new(&o.xsh).arg("--root").arg(&root), input);
        time_process(&mut Command::new("/bin/true"), input);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(time_process(
            Command::new(&o.xsh).arg("--root").arg(&root),
            input,
        ));
        b.push(time_process(&mut Command::new("/bin/true"), input));
    }
    let (am, a9) = stats(&mut a);
    let (bm, b9) = stats(&mut b);
    let ratio = am.as_secs_f64() / bm.as_secs_f64();
    let ratio90 = a9.as_secs_f64() / b9.as_secs_f64();
    println!("\nP1  echo 'xstatus SystemUnit' | xsh --root R   vs /bin/true ({runs} runs each, interleaved)");
    println!(
        "    xsh        median {:7.3} ms  p90 {:7.3} ms",
        ms(am),
        ms(a9)
    );
    println!(
        "    /bin/true  median {:7.3} ms  p90 {:7.3} ms",
        ms(bm),
        ms(b9)
    );
    println!(
        "    ratio      median {ratio:.2}x  p90 {ratio90:.2}x   (goal <= 3x: {})",
        verdict(ratio <= 3.0)
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// `n` sets that all change something: 7 leaves of zones 1..1000, then new values for the names,
/// addresses and subject names again.
fn p2_lines(n: usize) -> String {
    let mut s = String::with_capacity(n * 60);
    for i in 0..n {
        let z = i % 1000 + 1;
        let round = i / 1000;
        let line = match round % 7 {
            0 => format!("xConfiguration Zones Zone {z} Name: \"zone {z} r{round}\""),
            1 => format!(
                "xConfiguration Zones Zone {z} Peer Address: \"peer{z}-r{round}.example.com\""
            ),
            2 => format!(
                "xConfiguration Zones Zone {z} Peer Port: {}",
                10000 + z + round
            ),
            3 => format!(
                "xConfiguration Zones Zone {z} Peer TunnelPort: {}",
                20000 + z
            ),
            4 => format!("xConfiguration Zones Zone {z} Type: TraversalClient"),
            5 => format!("xConfiguration Zones Zone {z} TLS Verify Mode: Off"),
            _ => {
                format!("xConfiguration Zones Zone {z} TLS Verify Subject Name: \"s{z}-r{round}\"")
            }
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// Pipes `input` into one session and reads until `expect_ok` `OK` lines arrived; wall time from
/// spawn to the last `OK` (the process has then made everything durable).
fn p2_run(xsh: &Path, root: &Path, input: String, expect_ok: usize, group: bool) -> Duration {
    let mut cmd = Command::new(xsh);
    cmd.arg("--root").arg(root).arg("--no-banner");
    if !group {
        cmd.arg("--no-group-commit");
    }
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn xsh");
    let mut stdin = child.stdin.take().unwrap();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut oks = 0;
    while oks < expect_ok {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line == "OK\n" {
            oks += 1;
        } else {
            panic!("unexpected reply line {line:?}");
        }
    }
    let d = t.elapsed();
    let _ = child.wait();
    let _ = w.join();
    assert_eq!(oks, expect_ok, "not every set was acknowledged");
    d
}

fn p2(o: &Opts) {
    let n = 10_000;
    let runs = if o.runs > 0 { o.runs.min(15) } else { 7 };
    let base_n = o.baseline_sets.clamp(1, n);
    let (mut g, mut b) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let root = prepared_root(&o.xsh, &format!("p2g{i}"));
        g.push(p2_run(&o.xsh, &root, p2_lines(n), n, true));
        let _ = std::fs::remove_dir_all(&root);
        if i < 3 {
            let root = prepared_root(&o.xsh, &format!("p2b{i}"));
            b.push(p2_run(&o.xsh, &root, p2_lines(base_n), base_n, false));
            let _ = std::fs::remove_dir_all(&root);
        }
    }
    let (gm, g9) = stats(&mut g);
    let (bm, b9) = stats(&mut b);
    let scale = n as f64 / base_n as f64;
    let b_ext = bm.as_secs_f64() * scale;
    println!("\nP2  {n} different sets piped into one session, every OK read (durable)");
    println!(
        "    group commit          median {:8.1} ms  p90 {:8.1} ms  ({runs} runs)   (goal <= 200 ms: {})",
        ms(gm),
        ms(g9),
        verdict(gm.as_secs_f64() <= 0.2)
    );
    println!(
        "    --no-group-commit     median {:8.1} ms  p90 {:8.1} ms  for {base_n} sets ({} runs); {:.3} ms per set",
        ms(bm),
        ms(b9),
        b.len(),
        ms(bm) / base_n as f64
    );
    println!(
        "    baseline extrapolated to {n} sets (x{scale:.0}, linear: one transaction and fsyncs per set): {:.1} s",
        b_ext
    );
    println!(
        "    ratio baseline / group commit: {:.0}x   ({:.0} sets/s vs {:.0} sets/s)",
        b_ext / gm.as_secs_f64(),
        n as f64 / gm.as_secs_f64(),
        base_n as f64 / bm.as_secs_f64()
    );
}

/// A realistic mix: sets of every kind of value, reads, status, commands, tags, errors.
fn parse_mix() -> Vec<String> {
    let mut v = vec![
        "xConfiguration SIP TLS Port: 5062".to_string(),
        "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: Off".into(),
        "xconfiguration sip tls certificate revocation checking mode: on".into(),
        "xConfiguration SystemUnit Name: \"edge \\\"one\\\" \\\\ b\"".into(),
        "xConfiguration Zones Zone 17 Name: \"Traversal to London\" | resultId=\"r17\"".into(),
        "xConfiguration Zones Zone 999 Peer Address: \"10.1.2.3\"".into(),
        "xConfiguration Zones Zone 3 Type: TraversalClient".into(),
        "xConfiguration Zones Zone 3 TLS Verify Subject Name: \"sip.example.com\"".into(),
        "xConfiguration SIP TLS".into(),
        "xConfiguration Zones Zone 3".into(),
        "xStatus SystemUnit".into(),
        "xstatus Zones Zone 1 Status".into(),
        "xCommand SystemUnit Dump Folder: \"/tmp/x\"".into(),
        "xCommand Security Certificates Server Show".into(),
        "xConfiguration SIP TLS Port: 70000".into(),
        "xConfiguration SIP TLS Nope: 1".into(),
        "xConfiguration ?".into(),
        "xPreferences OutputMode JSON".into(),
        "echo off".into(),
        "".into(),
    ];
    // Pushes are mostly sets: weight them.
    for z in 1..=30 {
        v.push(format!(
            "xConfiguration Zones Zone {z} Peer Port: {}",
            5000 + z
        ));
    }
    v
}

fn parse(o: &Opts) {
    let mix = parse_mix();
    let mut ok = 0usize;
    let mut err = 0usize;
    for l in &mix {
        match parse_line(l) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    let rounds = if o.runs > 0 { o.runs } else { 7 };
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let mut lines = 0usize;
        while t.elapsed() < Duration::from_millis(300) {
            for l in &mix {
                std::hint::black_box(parse_line(std::hint::black_box(l)).is_ok());
            }
            lines += mix.len();
        }
        rates.push(lines as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let med = rates[rates.len() / 2];
    println!(
        "\nparse  xsh::parse::parse_line over a mix of {} lines ({ok} valid, {err} errors)",
        mix.len()
    );
    println!(
        "    median {:.0} lines/s ({:.2} us/line), min {:.0}, max {:.0} over {rounds} x 300 ms",
        med,
        1e6 / med,
        rates[0],
        rates[rates.len() - 1]
    );
    println!(
        "    10,000-line push: {:.1} ms of parsing",
        10_000.0 / med * 1e3
    );
}

/// A configuration with all 7 leaves of zones 1..1000 set, plus a few global leaves.
fn config_1000_zones() -> Config {
    let mut c = Config::default();
    let mut push = p2_lines(7000);
    push.push_str("xConfiguration SystemUnit Name: \"bench\"\nxConfiguration SIP TLS Port: 5062\n");
    for l in push.lines() {
        match parse_line(l).expect("bench line parses").action {
            Action::ConfigSet { key, value, .. } => {
                c.set(key, value);
            }
            a => panic!("not a set: {a:?}"),
        }
    }
    c
}

fn dump(o: &Opts) {
    let cfg = config_1000_zones();
    let runs = if o.runs > 0 { o.runs } else { 50 };
    let (mut txt, mut xml, mut both) = (Vec::new(), Vec::new(), Vec::new());
    let mut sizes = (0, 0);
    for _ in 0..3 {
        std::hint::black_box(xsh::dump::config_txt(&cfg));
        std::hint::black_box(xsh::dump::config_xml(&cfg));
    }
    for _ in 0..runs {
        let t = Instant::now();
        let a = xsh::dump::config_txt(&cfg);
        let ta = t.elapsed();
        let t2 = Instant::now();
        let b = xsh::dump::config_xml(&cfg);
        let tb = t2.elapsed();
        sizes = (a.len(), b.len());
        txt.push(ta);
        xml.push(tb);
        both.push(ta + tb);
    }
    let mut one = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let (a, b) = xsh::dump::config_txt_xml(&cfg);
        one.push(t.elapsed());
        assert_eq!(a.len() + b.len(), sizes.0 + sizes.1);
    }
    let (om, o9) = stats(&mut one);
    let (tm, t9) = stats(&mut txt);
    let (xm, x9) = stats(&mut xml);
    let (bm, b9) = stats(&mut both);
    println!(
        "\ndump  config_txt + config_xml, 1,000 zones fully configured ({} stored values; {} + {} bytes; {runs} runs)",
        cfg.values.len(),
        sizes.0,
        sizes.1
    );
    println!("    txt   median {:7.3} ms  p90 {:7.3} ms", ms(tm), ms(t9));
    println!("    xml   median {:7.3} ms  p90 {:7.3} ms", ms(xm), ms(x9));
    println!(
        "    both  median {:7.3} ms  p90 {:7.3} ms   (goal <= 10 ms: {}; {:.2}x of the budget)",
        ms(bm),
        ms(b9),
        verdict(bm.as_secs_f64() <= 0.010),
        bm.as_secs_f64() / 0.010
    );
    println!(
        "    both from one walk (config_txt_xml, what xCommand SystemUnit Dump writes)  median {:7.3} ms  p90 {:7.3} ms   ({:.2}x of the budget)",
        ms(om),
        ms(o9),
        om.as_secs_f64() / 0.010
    );
}
