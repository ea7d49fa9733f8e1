//! A running `xagent --root R --verbose` on a prepared root: its SIP address, its pid (for CPU and
//! RSS), and the lines it prints, each with the time it was read. Stopped with SIGTERM on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use super::{die, procfs, xagent_bin};

pub struct Agent {
    pub root: PathBuf,
    child: Child,
    pub sip: SocketAddr,
    pub pid: u32,
    /// Lines printed after `ready`, with the time they were read.
    pub lines: Receiver<(Instant, String)>,
}

impl Agent {
    pub fn start(root: &Path) -> Agent {
        let mut child = Command::new(xagent_bin())
            .arg("--root")
            .arg(root)
            .arg("--verbose")
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| die(&format!("xagent: {e}")));
        let pid = child.id();
        let out = child.stdout.take().unwrap_or_else(|| die("no stdout"));
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let sip = wait_ready(&rx);
        Agent {
            root: root.to_path_buf(),
            child,
            sip,
            pid,
            lines: rx,
        }
    }

    pub fn drain(&self) -> Vec<(Instant, String)> {
        self.lines.try_iter().collect()
    }

    pub fn rss_kib(&self) -> (u64, u64) {
        procfs::rss_kib(self.pid)
    }

    pub fn cpu_secs(&self) -> f64 {
        procfs::cpu_secs(self.pid)
    }

    /// Waits (bounded) until `status/agent.json` shows zone `n` checked; returns its size.
    pub fn wait_zones_reported(&self, n: usize, limit: Duration) -> Option<u64> {
        let path = self.root.join("status").join("agent.json");
        let needle = format!("\"Zones Zone {n} Status\"");
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(t) = std::fs::read_to_string(&path) {
                if t.contains(&needle) {
                    return Some(t.len() as u64);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

/// Reads the agent's start-up lines until `xagent: ready`; returns the SIP listener address.
fn wait_ready(rx: &Receiver<(Instant, String)>) -> SocketAddr {
    let end = Instant::now() + Duration::from_secs(30);
    let mut sip = None;
    loop {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok((_, l)) => {
                if let Some(a) = l.strip_prefix("xagent: sip listening on ") {
                    sip = a.trim().parse().ok();
                }
                if l == "xagent: ready" {
                    break;
                }
            }
            Err(_) => die("xagent did not become ready within 30 s"),
        }
    }
    sip.unwrap_or_else(|| die("xagent printed no SIP listener address"))
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
