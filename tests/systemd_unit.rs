//! The shipped systemd unit and the agent's side of the sd_notify protocol.
//!
//! * `systemd-analyze verify` on `systemd/xagent.service` (copied to a temp dir with `ExecStart`
//!   pointed at the built `xagent`, because verify insists that the binary exists). Verify does
//!   not resolve `User=`, so a machine without the `xsh` user verifies the same as a server.
//! * `systemd-analyze security --offline=true` on the same copy: the exposure score is printed and
//!   must stay in systemd's "OK" band (≤ 3.9, i.e. not MEDIUM/EXPOSED/UNSAFE).
//! * A real `xagent` with `NOTIFY_SOCKET` pointing at a datagram socket of ours: READY=1, then
//!   SIGHUP → RELOADING=1 (+MONOTONIC_USEC) → READY=1, then SIGTERM → STOPPING=1 and exit 0.
//!
//! Every wait is bounded; nothing asserts on timing.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/xagent.service");

fn systemd_analyze() -> Option<PathBuf> {
    common::require_tool("systemd-analyze", "--version", "systemd")
        .then(|| PathBuf::from("systemd-analyze"))
}

/// The unit with `ExecStart` pointing at the built binary, in its own folder.
fn unit_copy(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(UNIT).expect("read systemd/xagent.service");
    assert!(
        text.contains("ExecStart=/usr/local/bin/xagent --root /var/lib/xsh\n"),
        "the shipped unit must start /usr/local/bin/xagent --root /var/lib/xsh"
    );
    let rewritten = text.replace(
        "ExecStart=/usr/local/bin/xagent ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_xagent")),
    );
    let p = dir.join("xagent.service");
    std::fs::write(&p, rewritten).unwrap();
    p
}

fn directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn unit_has_the_required_directives() {
    let text = std::fs::read_to_string(UNIT).unwrap();
    let d = directives(&text);
    let has = |k: &str, v: &str| d.iter().any(|(a, b)| a == k && b == v);
    for (k, v) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
        ("User", "xsh"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/xsh"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert!(has(k, v), "systemd/xagent.service lacks {k}={v}");
    }
}

#[test]
fn systemd_analyze_verify_is_clean() {
    let Some(sa) = systemd_analyze() else { return };
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_copy(dir.path());
    let out = Command::new(&sa)
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Lines about the host, not the unit (no systemd as PID 1 in a container) are not findings.
    let findings: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| l.contains("xagent.service"))
        .collect();
    eprintln!(
        "systemd-analyze verify: exit {:?}\n{stdout}{stderr}",
        out.status.code()
    );
    assert!(
        out.status.success() && findings.is_empty(),
        "systemd-analyze verify reported problems with the unit:\n{stdout}{stderr}"
    );
}

#[test]
fn systemd_analyze_security_exposure_is_ok() {
    let Some(sa) = systemd_analyze() else { return };
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_copy(dir.path());
    let out = Command::new(&sa)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(line) = text.lines().find(|l| l.contains("Overall exposure level")) else {
        // systemd < 250 has no --offline; the score then needs a loaded unit.
        common::cannot_run(&format!(
            "this systemd-analyze cannot score a unit file offline:\n{text}"
        ));
        return;
    };
    eprintln!("systemd-analyze security: {line}");
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score from {line:?}"));
    assert!(
        score <= 3.9,
        "exposure {score} is above systemd's OK band: {line}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Receives datagrams until one contains `want`; returns everything received on the way.
fn recv_until(sock: &UnixDatagram, want: &str, deadline: Duration) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        sock.set_read_timeout(Some(Duration::from_millis(250)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = msg.lines().any(|l| l == want);
            got.push(msg);
            if done {
                return got;
            }
        }
    }
    panic!("no {want:?} from the agent; received {got:?}");
}

#[test]
fn agent_speaks_sd_notify_ready_reloading_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let sip = free_port();
    let tunnel = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_xsh"))
        .arg("--root")
        .arg(&root)
        .arg("-c")
        .arg(format!(
            "xConfiguration SIP TLS Port: {sip}\nxConfiguration Tunnel Port: {tunnel}"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "xsh: {out:?}");

    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xagent"))
        .arg("--root")
        .arg(&root)
        .arg("--verbose")
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    // Drain stdout so the agent never blocks on a full pipe.
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });

    let guard = scopeguard(pid);
    let first = recv_until(&sock, "READY=1", Duration::from_secs(60));
    assert!(
        first.iter().all(|m| !m.contains("STOPPING")),
        "unexpected before READY: {first:?}"
    );

    kill(pid, Signal::SIGHUP).unwrap();
    let reload = recv_until(&sock, "READY=1", Duration::from_secs(60));
    let rel = reload
        .iter()
        .position(|m| m.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("SIGHUP sent no RELOADING=1 before READY=1: {reload:?}"));
    let usec = reload[rel]
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {:?}", reload[rel]));
    let usec: u64 = usec.parse().expect("MONOTONIC_USEC is a number");
    assert!(usec > 0);

    kill(pid, Signal::SIGTERM).unwrap();
    recv_until(&sock, "STOPPING=1", Duration::from_secs(60));
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "xagent did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::mem::forget(guard);
    assert!(status.success(), "xagent exited with {status:?}");
    let out = lines.join().unwrap();
    assert!(out.iter().any(|l| l == "xagent: ready"), "stdout: {out:?}");
}

/// Kills the agent if the test panics before it stopped it.
struct KillOnDrop(Pid);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
    }
}
fn scopeguard(pid: Pid) -> KillOnDrop {
    KillOnDrop(pid)
}
