//! The README's first command: `xsh --quickstart [DIR]` creates a root with the default
//! configuration and certificate, runs the agent's loopback listeners for the length of the
//! session, and stops them when the session ends.

use std::io::Write;
use std::process::{Command, Stdio};

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
