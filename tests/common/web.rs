//! A real `xagent` with the HTTPS plane on an ephemeral 127.0.0.1 port, on a temporary ROOT,
//! accounts made through the real `xsh` (`xCommand AdminAccountAdd`), and `curl` to talk to it.
//!
//! Use from a test crate: `#[path = "common/mod.rs"] mod common;` then `common::web::WebAgent`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (bound and released; the agent binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An agent serving a temporary root; stopped (SIGTERM, then waited for) when dropped.
pub struct WebAgent {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
    /// Every line the agent printed on stdout so far is also collected here.
    pub lines: mpsc::Receiver<String>,
}

/// What `curl` saw: the status code, the response headers (lower-case names), the body, and
/// curl's own stderr (`-v` output when asked for).
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub stderr: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl WebAgent {
    /// Starts an agent whose root was first given `setup` (xsh lines) besides its free ports.
    pub fn start_with(setup: &str) -> WebAgent {
        let dir = tempfile::tempdir().expect("a temporary root");
        let port = free_port();
        let lines = format!(
            "xConfiguration SIP TLS Port: {}\nxConfiguration Tunnel Port: {}\nxConfiguration Administration HTTPS Port: {port}\n{setup}\n",
            free_port(),
            free_port()
        );
        let out = super::xsh_piped(dir.path(), &lines);
        assert!(
            out.status.success(),
            "setting up the root failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_xagent"))
            .arg("--root")
            .arg(dir.path())
            .arg("--verbose")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("xagent starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut agent = WebAgent {
            dir,
            port,
            child,
            lines: rx,
        };
        agent.wait_line("xagent: ready");
        agent
    }

    pub fn start() -> WebAgent {
        WebAgent::start_with("")
    }

    /// Waits for a stdout line containing `needle` (a generous deadline: the machine is
    /// shared; nothing is timed).
    pub fn wait_line(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => seen.push(l),
                Err(_) => panic!("the agent never printed {needle:?}; it printed {seen:#?}"),
            }
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// `xsh` on the root with `input` piped.
    pub fn xsh(&self, input: &str) -> Output {
        super::xsh_piped(self.root(), input)
    }

    /// The stdout of `xsh` on the root, which must succeed.
    pub fn xsh_ok(&self, input: &str) -> String {
        let o = self.xsh(input);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "xsh failed on {input:?}:\n{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// Creates an account through `xCommand AdminAccountAdd` (`access`: ReadWrite, ReadOnly,
    /// AccountDisabled).
    pub fn add_account(&self, name: &str, password: &str, access: &str) {
        let out = self.xsh_ok(&format!(
            "xCommand AdminAccountAdd Name: \"{name}\" Password: \"{password}\" Access: {access}\n"
        ));
        assert!(out.contains("OK"), "AdminAccountAdd: {out}");
    }

    /// `curl -sk` with `args` against this agent (paths in `args` are used as given; use
    /// [`WebAgent::url`]).
    pub fn curl(&self, args: &[&str]) -> Reply {
        curl(args)
    }

    pub fn cert_file(&self, name: &str) -> PathBuf {
        self.root().join("certs").join(name)
    }
}

impl Drop for WebAgent {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// Runs `curl -sk` with `args`; headers and the status are read from its `-D` output (the
/// last response's, when redirects or several URLs are involved).
pub fn curl(args: &[&str]) -> Reply {
    let body = tempfile::NamedTempFile::new().expect("a body file");
    let out = Command::new("curl")
        .args(["-s", "-k", "-g", "--max-time", "60", "-D", "-", "-o"])
        .arg(body.path())
        .args(args)
        .output()
        .expect("curl runs");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = head
        .split("\r\n\r\n")
        .filter(|b| b.starts_with("HTTP/"))
        .last()
        .unwrap_or("")
        .to_string();
    let mut lines = last.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        code,
        headers,
        body: std::fs::read_to_string(body.path()).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
