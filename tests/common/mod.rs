//! What a test needs from the machine (a tool, root), said once for every test binary: outside CI
//! a test that cannot run prints a visible `SKIPPED: reason` on stderr and returns; under
//! `CI=true` it fails, so no check passes in CI by not running.
//!
//! Included by path (`#[path = "common/mod.rs"] mod common;`) from the test crates and the
//! support modules that need it.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

pub mod etcd;

/// `CI=true` (or `1`), as CI systems and `.ci/run` set it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A test that cannot run here: under CI a failure (panics with `reason`), otherwise a visible
/// skip. Call it and return.
pub fn cannot_run(reason: &str) {
    if in_ci() {
        panic!("CI=true and this test cannot run: {reason}");
    }
    // Straight to the stream, not `eprintln!`: the test harness swallows what a passing test
    // prints, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// `true` when `tool` runs (`tool ARG` starts, whatever it answers); otherwise [`cannot_run`]
/// naming the Debian package, and `false`.
pub fn require_tool(tool: &str, probe_arg: &str, package: &str) -> bool {
    let runs = Command::new(tool)
        .arg(probe_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !runs {
        cannot_run(&format!(
            "`{tool}` is not installed (apt-get install {package})"
        ));
    }
    runs
}

/// `true` when running as root; otherwise [`cannot_run`] with `why`, and `false`.
pub fn require_root(why: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        cannot_run(&format!("needs root ({why})"));
    }
    root
}

/// Runs `xsh --root ROOT --no-banner` with `input` on its standard input, as a script would.
pub fn xsh_piped(root: &std::path::Path, input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xsh"))
        .arg("--root")
        .arg(root)
        .arg("--no-banner")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xsh starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("xsh reads its input");
    child.wait_with_output().expect("xsh ends")
}
pub mod web;

/// `tidy -q -e` of `html` (written to `dir/name.html`): the problems it reports, empty when the
/// page is valid HTML5.
pub fn tidy(dir: &std::path::Path, name: &str, html: &str) -> Vec<String> {
    let f = dir.join(format!("{name}.html"));
    std::fs::write(&f, html).unwrap();
    let out = Command::new("tidy")
        .args(["-q", "-e", "-utf8", "--show-warnings", "yes"])
        .arg(&f)
        .output()
        .expect("tidy runs");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        // tidy 5.6's attribute table predates ARIA 1.1's aria-current (valid HTML5 + ARIA).
        .filter(|l| !l.contains("proprietary attribute \"aria-current\""))
        .map(str::to_string)
        .collect()
}
