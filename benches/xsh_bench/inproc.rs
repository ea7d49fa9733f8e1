//! In-process figures: the parser's throughput and the dump renderers on 1,000 zones.

use std::time::{Duration, Instant};

use xsh::parse::{parse_line, Action};
use xsh::store::Config;

use crate::common::stats::{ms, summary};
use crate::p2::p2_lines;
use crate::Opts;

fn stats(v: &mut [Duration]) -> (Duration, Duration) {
    let s = summary(&v.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>());
    (
        Duration::from_secs_f64(s.p50),
        Duration::from_secs_f64(s.p90),
    )
}

fn verdict(ok: bool) -> &'static str {
    crate::common::stats::verdict(ok)
}

/// A realistic mix: sets of every kind of value, reads, status, commands, tags, errors.
fn parse_mix() -> Vec<String> {
    let mut v = vec![
        "xConfiguration SIP TLS Port: 5062".to_string(),
        "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: Off".into(),
        "xconfiguration sip tls certificate revocation checking mode: on".into(),
        "xConfiguration SystemUnit Name: \"edge \\\"one\\\" \\\\ b\"".into(),
        "xConfiguration Zones Zone 17 Name: \"Traversal to London\" | resultId=\"r17\"".into(),
        "xConfiguration Zones Zone 999 Neighbor Peer 1 Address: \"10.1.2.3\"".into(),
        "xConfiguration Zones Zone 3 Type: TraversalClient".into(),
        "xConfiguration Zones Zone 3 Neighbor SIP TLS Verify Subject Name: \"sip.example.com\""
            .into(),
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
            "xConfiguration Zones Zone {z} Neighbor SIP Port: {}",
            5000 + z
        ));
    }
    v
}

pub fn parse(o: &Opts) {
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

pub fn dump(o: &Opts) {
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
