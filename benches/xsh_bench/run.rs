//! Running one process the way a user does, timed from its spawn to its exit, with its CPU.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{die, procfs};

/// Wall time from spawn to exit, and the child's CPU (user + system) in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub wall: Duration,
    pub cpu: f64,
}

/// Runs `cmd` with `input` on stdin and its output discarded. Children run one at a time, so
/// the change in `RUSAGE_CHILDREN` across the wait is this child's CPU.
pub fn timed(cmd: &mut Command, input: &[u8]) -> Timed {
    let cpu0 = procfs::children_cpu();
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| die(&format!("spawn {cmd:?}: {e}")));
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(input);
    }
    let st = child.wait().unwrap_or_else(|e| die(&format!("wait: {e}")));
    let wall = t.elapsed();
    if !st.success() {
        die(&format!("{cmd:?} failed: {st}"));
    }
    Timed {
        wall,
        cpu: procfs::children_cpu() - cpu0,
    }
}

/// `xsh --root R [args]`.
pub fn xsh(xsh: &Path, root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(xsh);
    c.arg("--root").arg(root).args(args);
    c
}

/// A root with its one-time default files made, so runs measure the steady state.
pub fn prepared_root(xsh_bin: &Path, work: &Path, name: &str, lines: &str) -> PathBuf {
    let root = work.join(name);
    let _ = std::fs::remove_dir_all(&root);
    timed(
        &mut xsh(xsh_bin, &root, &["-c", "xConfiguration SIP TLS Port"]),
        b"",
    );
    if !lines.is_empty() {
        crate::common::fixture::configure(&root, lines);
    }
    root
}

/// Median wall (ms), p90 wall (ms) and mean CPU (ms) of some runs.
pub fn figures(v: &[Timed]) -> (f64, f64, f64) {
    let walls: Vec<f64> = v.iter().map(|t| t.wall.as_secs_f64() * 1e3).collect();
    let s = crate::common::stats::summary(&walls);
    let cpu = v.iter().map(|t| t.cpu).sum::<f64>() / v.len().max(1) as f64 * 1e3;
    (s.p50, s.p90, cpu)
}
