//! `generation::build` in-process, on roots with 1,000 zones and with 1,000 CAs (and the small
//! root for reference): wall and CPU time per build.

use std::path::Path;
use std::time::Instant;

use crate::common::procfs;
use crate::common::stats::{summary, verdict};
use crate::setup::{agent_root, Pki, Scale};

/// The one call into the library: adapt here when `build`'s signature changes.
fn build_once(root: &Path) -> Result<usize, String> {
    xsh::agent::generation::build(root, 1, None)
        .map(|g| g.zones.len())
        .map_err(|e| e.to_string())
}

pub fn run(work: &Path, pki: &Pki, runs: usize) {
    println!("\n== generation::build in-process ({runs} builds each, interleaved) ==");
    let scales = [Scale::Small, Scale::Zones, Scale::Cas];
    let roots: Vec<_> = scales
        .iter()
        .map(|s| agent_root(work, &format!("gen-{}", s.name()), pki, *s))
        .collect();
    let mut wall = vec![Vec::new(); scales.len()];
    let mut cpu = vec![0.0; scales.len()];
    let mut zones = vec![0; scales.len()];
    for i in 0..runs + 3 {
        for (k, root) in roots.iter().enumerate() {
            let (c0, t0) = (procfs::thread_cpu(), Instant::now());
            zones[k] = build_once(root).unwrap_or_else(|e| crate::common::die(&e));
            let (t, c) = (t0.elapsed(), procfs::thread_cpu() - c0);
            if i >= 3 {
                wall[k].push(t.as_secs_f64() * 1e3);
                cpu[k] += c;
            }
        }
    }
    for (k, s) in scales.iter().enumerate() {
        let x = summary(&wall[k]);
        let goal = if *s == Scale::Small {
            String::new()
        } else {
            format!(" — goal ≤ 3 ms: {}", verdict(x.p50 <= 3.0))
        };
        println!(
            "  {:<24} median {:7.2} ms  p90 {:7.2} ms  cpu {:7.2} ms/build  ({} outbound zones){goal}",
            s.label(),
            x.p50,
            x.p90,
            cpu[k] / runs as f64 * 1e3,
            zones[k]
        );
    }
}
