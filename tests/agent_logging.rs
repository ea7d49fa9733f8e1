//! `xConfiguration Logging Level` (issue 10 item 11) with the real agent: at Info a debug-level
//! event (the per-zone check line) is absent from the agent's stderr; after `xsh -c` sets Debug,
//! the running agent applies it on reload and the same event appears (in stderr and in the event
//! log); back at Info it stops. Nothing here asserts on timing: output is polled to a deadline.

mod agent_support;

use std::process::Command;

use agent_support::*;

const CHECKED: &str = "zone: zone 1 checked";

/// `xsh --root R -c LINE`, insisting that it succeeded.
fn xsh_c(node: &Node, line: &str) {
    let o = Command::new(XSH)
        .arg("--root")
        .arg(node.root())
        .args(["--no-banner", "-c", line])
        .env_remove("XSH_ROOT")
        .env_remove("SSH_ORIGINAL_COMMAND")
        .output()
        .expect("run xsh -c");
    assert!(
        o.status.success(),
        "xsh -c {line:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Waits until the agent's stderr holds `what` (`n` times or more).
fn wait_stderr(node: &mut Node, what: &str, n: usize) -> String {
    let a = node.agent();
    let stderr = a.stderr.clone();
    wait_for(&format!("agent stderr shows {what:?} x{n}"), || {
        let t = stderr.text();
        if t.matches(what).count() >= n {
            Ok(t)
        } else {
            Err(t)
        }
    })
}

#[test]
fn logging_level_is_applied_on_reload() {
    let mut node = Node::new("logging");
    // A zone to a closed loopback port: checked every second, each check a debug-level event.
    let closed = free_port();
    node.zone_to(1, "Neighbor", closed, closed, false);
    node.start();
    // Two checks have run (the zone was Failed, then re-checked: LastCheck moved).
    let first = node.wait_zone(1, "checked", |z| z.status == "Failed");
    node.wait_zone(1, "checked again", |z| z.last_check != first.last_check);
    // A reload after those checks: its Info line comes after any debug line of theirs.
    xsh_c(&node, "xConfiguration Agent StatusInterval: 2");
    let t = wait_stderr(&mut node, "reload: applied generation 2", 1);
    assert!(
        !t.contains(CHECKED),
        "a debug event was logged at Info:\n{t}"
    );
    assert!(
        !node.events().contains("zone 1 checked"),
        "{}",
        node.events()
    );

    xsh_c(&node, "xConfiguration Logging Level: Debug");
    let t = wait_stderr(&mut node, CHECKED, 1);
    assert!(
        t.contains("agent: logging level debug (was info)"),
        "the level change is not an event:\n{t}"
    );
    assert!(t.contains("DEBUG"), "debug lines carry their level:\n{t}");
    wait_for("the event log holds the debug line", || {
        let ev = node.events();
        if ev.contains("zone 1 checked") && ev.contains("Level=\"DEBUG\"") {
            Ok(())
        } else {
            Err(ev)
        }
    });

    // Back to Info: once a check has run after the switch (one that raced it is done), the
    // count of check lines stays where it is through two more checks.
    xsh_c(&node, "xConfiguration Logging Level: Info");
    wait_stderr(&mut node, "reload: applied generation 4", 1);
    let mut seen = node.zone(1).last_check;
    let mut next_check = |node: &Node| {
        let z = node.wait_zone(1, "checked again", |z| z.last_check != seen);
        seen = z.last_check;
    };
    next_check(&node);
    let before = node
        .agent
        .as_ref()
        .unwrap()
        .stderr
        .text()
        .matches(CHECKED)
        .count();
    next_check(&node);
    next_check(&node);
    xsh_c(&node, "xConfiguration Agent StatusInterval: 1");
    let t = wait_stderr(&mut node, "reload: applied generation 5", 1);
    assert_eq!(
        t.matches(CHECKED).count(),
        before,
        "debug events kept coming at Info:\n{t}"
    );
}
