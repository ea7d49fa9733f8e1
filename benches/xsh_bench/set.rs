//! One `xsh -c` set, with 1,000 zones configured against the same set at 0 zones.

use std::path::Path;

use crate::common::fixture::zone_lines;
use crate::common::{free_port, stats::verdict};
use crate::run::{figures, prepared_root, timed, xsh, Timed};
use crate::Opts;

pub fn run(o: &Opts, work: &Path) {
    let runs = if o.runs > 0 { o.runs.min(300) } else { 60 };
    let zero = prepared_root(&o.xsh, work, "set-zero", "");
    let many = prepared_root(&o.xsh, work, "set-zones", &zone_lines(free_port()));
    let (mut a, mut b): (Vec<Timed>, Vec<Timed>) = (Vec::new(), Vec::new());
    for i in 0..runs + 3 {
        // A new value every time, so every run is a durable change (lock, write, fsyncs, audit).
        let cmd = format!("xConfiguration SystemUnit Name: \"bench {i}\"");
        let ta = timed(&mut xsh(&o.xsh, &zero, &["-c", &cmd]), b"");
        let tb = timed(&mut xsh(&o.xsh, &many, &["-c", &cmd]), b"");
        if i >= 3 {
            a.push(ta);
            b.push(tb);
        }
    }
    let (a50, a90, acpu) = figures(&a);
    let (b50, b90, bcpu) = figures(&b);
    println!(
        "\nset  xsh --root R -c 'xConfiguration SystemUnit Name: \"bench N\"', spawn to exit ({runs} runs each, interleaved, no agent)"
    );
    println!("    0 zones       median {a50:7.3} ms  p90 {a90:7.3} ms  cpu {acpu:6.3} ms/set");
    println!("    1,000 zones   median {b50:7.3} ms  p90 {b90:7.3} ms  cpu {bcpu:6.3} ms/set");
    println!(
        "    ratio 1,000 / 0 zones: median {:.2}×  p90 {:.2}×  cpu {:.2}× — goal ≤ 1.5×: {}",
        b50 / a50,
        b90 / a90,
        bcpu / acpu,
        verdict(b50 / a50 <= 1.5)
    );
}
