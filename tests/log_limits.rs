//! Logs with limits (issue 9 item 5): thousands of bare connections (TCP connect, close: a
//! refused handshake each) against a running agent. With every refusal logged, the event and
//! handshake logs rotate at `Logging Rotation Size` and never pass it, keeping `Logging Rotation
//! Count` old files; with the default `Logging Refused Limit` only that many are logged one by one
//! and one summary line counts the rest, while the status counters count every one. The bundle
//! still collects (it reads only the logs' tails).
//!
//! Nothing here asserts on timing: conditions are polled up to a generous deadline.

mod agent_support;

use std::net::TcpStream;
use std::path::Path;

use agent_support::*;
use nix::sys::signal::Signal;

/// `n` bare connections: connect, close at once (the handshake fails with an EOF).
fn bare_connections(port: u16, n: usize) {
    for _ in 0..n {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
        }
    }
}

fn rejected(n: &Node) -> u64 {
    n.status_leaf("SIP TLS Listener Rejected")
        .parse()
        .unwrap_or(0)
}

/// Waits until the agent counted `at_least` rejections, then stops it (SIGTERM: the logs and the
/// last summary are written).
fn count_then_stop(n: &mut Node, at_least: u64) -> u64 {
    let got = wait_for("the agent counts every refusal", || {
        let r = rejected(n);
        if r >= at_least {
            Ok(r)
        } else {
            Err(format!("{r} rejected"))
        }
    });
    let a = n.agent();
    a.guard.signal(Signal::SIGTERM);
    assert!(a.guard.wait_exit("agent stops").success());
    got
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn logs_rotate_at_their_size_and_keep_their_count() {
    let mut n = Node::new("rotate");
    n.ok(&[
        "xConfiguration Logging Rotation Size: 64",
        "xConfiguration Logging Rotation Count: 2",
        "xConfiguration Logging Refused Limit: 100000",
    ]);
    n.start();
    let total = 4000;
    bare_connections(n.sip_port, total);
    let counted = count_then_stop(&mut n, total as u64);
    let status = n.root().join("status");
    let cap = 64 * 1024;
    let mut report = Vec::new();
    for log in ["events.log", "handshakes.log"] {
        for suffix in ["", ".1", ".2"] {
            let p = status.join(format!("{log}{suffix}"));
            assert!(p.exists(), "{} exists", p.display());
            let s = size(&p);
            report.push(format!("{log}{suffix}={s}"));
            assert!(
                s <= cap,
                "{} holds {s} bytes, over the {cap} cap",
                p.display()
            );
        }
        assert!(
            !status.join(format!("{log}.3")).exists(),
            "{log}.3: more than Count files kept"
        );
    }
    println!("{counted} refused handshakes; sizes: {}", report.join(" "));
    // The bundle reads tails only, and still collects.
    let dir = n.root().join("bundle");
    n.ok(&[&format!(
        "xCommand DiagnosticLogging Collect Folder: \"{}\"",
        dir.display()
    )]);
}

#[test]
fn refusals_past_the_limit_become_one_summary_line() {
    let mut n = Node::new("ratelimit");
    n.ok(&[
        "xConfiguration Logging Refused Limit: 20",
        "xConfiguration Logging Refused Interval: 3600",
    ]);
    n.start();
    let total = 3000;
    bare_connections(n.sip_port, total);
    let counted = count_then_stop(&mut n, total as u64);
    let events = n.events();
    let one_by_one = events
        .lines()
        .filter(|l| l.contains("TLS handshake from") && l.contains("rejected"))
        .count();
    assert_eq!(one_by_one, 20, "refusals logged one by one:\n{events}");
    let summary = events
        .lines()
        .find(|l| l.contains("more refused handshakes"))
        .unwrap_or_else(|| panic!("no summary line:\n{events}"));
    let not_logged: u64 = summary
        .split("Detail=\"")
        .nth(1)
        .and_then(|d| d.split_whitespace().next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("summary without a count: {summary}"));
    assert_eq!(not_logged + 20, counted, "{summary}");
    let records = n
        .handshakes()
        .iter()
        .filter(|r| r["decision"] == "rejected")
        .count();
    assert_eq!(records, 20, "handshake records of refusals");
    println!(
        "{counted} refused handshakes: 20 logged, {not_logged} summed up; events.log {} bytes, handshakes.log {} bytes",
        size(&n.root().join("status/events.log")),
        size(&n.root().join("status/handshakes.log"))
    );
}
