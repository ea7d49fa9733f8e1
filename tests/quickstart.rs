//! The README's first command: `xsh --quickstart [DIR]` creates a root with the default
//! configuration and certificate, runs the agent's loopback listeners for the length of the
//! session, and stops them when the session ends. A fresh root says nothing of upgrades, the
//! default root is `./xsh-root` (ignored by git), and a person at a terminal is pointed at `help`
//! while automation reads the banner it always read.

mod ssh_support;

use ssh_support::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const HINT: &str = "Type help for the commands and keys";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn quickstart_runs_the_agent_for_the_session() {
    let exe = env!("CARGO_BIN_EXE_xsh");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("xsh-root");
    // Free ports instead of 5061/2222, so the test never collides with anything on the machine.
    let (sip, tunnel) = (free_port(), free_port());
    let st = Command::new(exe)
        .arg("--root")
        .arg(&root)
        .arg("-c")
        .arg(format!(
            "xConfiguration SIP TLS Port: {sip}\nxConfiguration Tunnel Port: {tunnel}"
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = Command::new(exe)
        .arg("--quickstart")
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"xstatus SIP TLS Listener Status\nxstatus Agent Running\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Status: \"Active\""), "{stdout}\n{stderr}");
    assert!(stdout.contains("Running: \"True\""), "{stdout}\n{stderr}");
    assert!(stderr.contains("agent stopped"), "{stderr}");
    for f in [
        "server.pem",
        "privkey.pem",
        "client.pem",
        "clientprivkey.pem",
        "ca.pem",
    ] {
        assert!(root.join("certs").join(f).exists(), "{f} missing");
    }
    // The agent is gone with the session.
    let after = Command::new(exe)
        .arg("--root")
        .arg(&root)
        .arg("-c")
        .arg("xstatus Agent Running")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&after.stdout).contains("Running: \"False\""));
}

/// `Logging Level` reaches the quick start's agent (issue 10 item 11): at Debug, the per-zone
/// check line (a debug-level event) appears in its log, `ROOT/status/xagent.out`. Polled to a
/// deadline, no timing asserted.
#[test]
fn logging_level_applies_to_the_quickstart_agent() {
    let exe = env!("CARGO_BIN_EXE_xsh");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("xsh-root");
    let (sip, tunnel, closed) = (free_port(), free_port(), free_port());
    let st = Command::new(exe)
        .arg("--root")
        .arg(&root)
        .arg("-c")
        .arg(format!(
            "xConfiguration SIP TLS Port: {sip}\nxConfiguration Tunnel Port: {tunnel}\n\
             xConfiguration Agent StatusInterval: 1\nxConfiguration Logging Level: Debug\n\
             xConfiguration Zones Zone 1 Neighbor Peer 1 Address: \"127.0.0.1\"\n\
             xConfiguration Zones Zone 1 Neighbor SIP Port: {closed}"
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = Command::new(exe)
        .arg("--quickstart")
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = root.join("status").join("xagent.out");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("zone: zone 1 checked") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("zone: zone 1 checked") && text.contains("DEBUG"),
        "the quick start's agent logs at the configured Debug level:\n{text}"
    );
}

/// A piped session (as automation runs it) on `root`.
fn piped(root: &Path, input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xsh"))
        .arg("--root")
        .arg(root)
        .env_remove("XSH_ROOT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn fresh_root_announces_no_upgrade_but_a_single_store_root_does() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fresh");
    let o = piped(&root, "xstatus SystemUnit Product\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("created the default self-signed certificate"),
        "{err}"
    );
    assert!(
        !err.contains("upgraded"),
        "a fresh root announced an upgrade: {err}"
    );
    let audit = std::fs::read_to_string(root.join("config/audit.log")).unwrap_or_default();
    assert!(!audit.contains("Migration"), "{audit}");
    for f in ["server.pem", "client.pem", "ca.pem"] {
        assert!(root.join("certs").join(f).exists(), "{f}");
    }
    // A root of the single-store layout: the upgrade is real and said once.
    let old = dir.path().join("old");
    std::fs::create_dir_all(old.join("certs")).unwrap();
    for f in ["server.pem", "privkey.pem"] {
        std::fs::copy(root.join("certs").join(f), old.join("certs").join(f)).unwrap();
    }
    let o = piped(&old, "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("upgraded to two certificate stores"), "{err}");
    assert!(!err.contains("created the default"), "{err}");
}

/// Piped, the banner is byte for byte what scripts always read: no hint line.
#[test]
fn automation_sees_no_hint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let o = piped(&root, "");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("Welcome to "), "{out}");
    assert!(out.ends_with("*r Login successful\n\nOK\n"), "{out}");
    assert!(!out.contains(HINT), "{out}");
    assert_eq!(out.lines().count(), 5, "{out}");
}

/// At a terminal (a tmux pane), the banner has one more line: where help is.
#[test]
fn a_person_at_a_terminal_is_pointed_at_help() {
    if !common::require_tool("tmux", "-V", "tmux") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let argv: Vec<String> = vec![
        env!("CARGO_BIN_EXE_xsh").into(),
        "--root".into(),
        root.display().to_string(),
    ];
    let tm = ssh_support::Tmux::start(dir.path(), "hint", 160, 40, &argv);
    let s = tm.wait_screen("banner", |s| s.trim_end().ends_with("OK"));
    let hint = s
        .lines()
        .position(|l| l.starts_with(HINT))
        .unwrap_or_else(|| panic!("no hint line:\n{s}"));
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[hint - 1].starts_with("xsh X15.5"), "{s}");
    assert_eq!(lines[hint + 1], "*r Login successful", "{s}");
    tm.type_text("help");
    tm.keys(&["Enter"]);
    tm.wait_screen("help", |s| s.matches("OK").count() >= 2);
    tm.type_text("bye");
    tm.keys(&["Enter"]);
}

/// `xsh --quickstart` without DIR uses ./xsh-root (absolute in what it prints), and git
/// ignores that folder in a checkout.
#[test]
fn default_quickstart_root_is_dot_xsh_root_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    // --dump-config returns before the agent starts, so no listener is opened here.
    let o = Command::new(env!("CARGO_BIN_EXE_xsh"))
        .args(["--quickstart", "--dump-config", "txt"])
        .current_dir(dir.path())
        .env_remove("XSH_ROOT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.path().join("xsh-root/certs/privkey.pem").exists());
    if !common::require_tool("git", "--version", "git") {
        return;
    }
    let repo = env!("CARGO_MANIFEST_DIR");
    for f in ["xsh-root/certs/privkey.pem", "xsh-root/config/xconf.txt"] {
        let o = Command::new("git")
            .args(["check-ignore", "-q", "--no-index", f])
            .current_dir(repo)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            ".gitignore does not cover {f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
