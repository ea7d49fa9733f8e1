//! A real `xagent` with its HTTPS listener on a temp ROOT the real `xsh` configures (free
//! loopback ports for SIP, tunnel and HTTPS; the accounts made with `xCommand AdminAccountAdd`).
//! Stopped (SIGTERM, then killed) when dropped, also during a panic.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the agent may take to say it listens (a deadline, not a timing assertion).
const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct WebAgent {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl WebAgent {
    pub fn start() -> Option<WebAgent> {
        let dir = tempfile::Builder::new()
            .prefix("xsh-jsxapi-")
            .tempdir()
            .expect("tempdir");
        let mut last = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let lines = format!(
                "xConfiguration SIP TLS Port: {}\nxConfiguration Tunnel Port: {}\nxConfiguration Administration HTTPS Port: {port}\nxConfiguration Administration HTTPS Mode: On\n",
                free_port(),
                free_port()
            );
            let o = super::common::xsh_piped(dir.path(), &lines);
            assert!(
                o.status.success(),
                "xsh: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let mut child = Command::new(env!("CARGO_BIN_EXE_xagent"))
                .arg("--root")
                .arg(dir.path())
                .arg("--verbose")
                .env_remove("XSH_ROOT")
                .env_remove("NOTIFY_SOCKET")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("xagent starts");
            let stdout = child.stdout.take().expect("stdout is piped");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
            });
            let want = format!("https listening on 127.0.0.1:{port}");
            let mut seen = Vec::new();
            let up = loop {
                match rx.recv_timeout(START_DEADLINE) {
                    Ok(l) if l.contains(&want) => break true,
                    Ok(l) => seen.push(l),
                    Err(_) => break false,
                }
            };
            if up {
                // Keep reading so the agent never blocks on a full pipe.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return Some(WebAgent { child, port, dir });
            }
            last = seen.join("\n");
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("xagent did not listen on its HTTPS port; it printed:\n{last}");
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `line` through the real `xsh`; its standard output.
    pub fn xsh(&self, line: &str) -> String {
        let o = super::common::xsh_piped(self.root(), &format!("{line}\n"));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// An account made with the product's command, through `xsh`.
    pub fn add_account(&self, name: &str, pw: &str, access: &str) {
        let out = self.xsh(&format!(
            "xCommand AdminAccountAdd Name: \"{name}\" Password: \"{pw}\" Access: {access}"
        ));
        assert!(out.contains("OK"), "AdminAccountAdd {name}: {out}");
    }
}

impl Drop for WebAgent {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..50 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
