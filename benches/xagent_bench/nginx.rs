//! nginx as the anchor: `nginx -p DIR -c DIR/nginx.conf` (daemon, 2 workers, TLS 1.3 only,
//! `ssl_verify_client on` with the same `ca.pem`, session cache and tickets off, `return 200`),
//! on 127.0.0.1 in the bench's work folder; never touches `/etc/nginx`. Stopped on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{exchange, HTTP};
use crate::common::fixture::{write_file_atomic, write_pair, CA_LIST, SERVER_CERT, SERVER_KEY};
use crate::common::{free_port, pki::Leaf, procfs};
use crate::setup::Pki;

pub struct Nginx {
    bin: PathBuf,
    pub dir: PathBuf,
    pub addr: SocketAddr,
}

fn config(d: &str, port: u16) -> String {
    let user = if nix::unistd::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    format!(
        "{user}worker_processes 2;
worker_rlimit_nofile 16384;
error_log {d}/logs/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name localhost;
    ssl_certificate {d}/{SERVER_CERT};
    ssl_certificate_key {d}/{SERVER_KEY};
    ssl_client_certificate {d}/{CA_LIST};
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / {{ return 200 \"ok\\n\"; }}
  }}
}}
"
    )
}

/// `nginx -v`, or None when it is not installed.
pub fn version(bin: &Path) -> Option<String> {
    let o = Command::new(bin).arg("-v").output().ok()?;
    o.status.success().then(|| {
        String::from_utf8_lossy(&o.stderr)
            .trim()
            .replace("nginx version: ", "")
    })
}

impl Nginx {
    pub fn start(bin: &Path, work: &Path, pki: &Pki) -> Option<Nginx> {
        let dir = work.join("nginx");
        std::fs::create_dir_all(dir.join("logs")).ok()?;
        write_pair(&dir, SERVER_CERT, SERVER_KEY, &pki.servers[0]);
        write_file_atomic(&dir, CA_LIST, pki.ca_pem.as_bytes(), 0o644);
        let port = free_port();
        std::fs::write(
            dir.join("nginx.conf"),
            config(&dir.display().to_string(), port),
        )
        .ok()?;
        let n = Nginx {
            bin: bin.to_path_buf(),
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let st = n.command().output().ok()?;
        if !st.status.success() {
            println!(
                "nginx failed to start: {}",
                String::from_utf8_lossy(&st.stderr).trim()
            );
            return None;
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if exchange(n.addr, &pki.client_both, HTTP).is_ok() {
                return Some(n);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("nginx did not answer within 10 s");
        None
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("-p")
            .arg(&self.dir)
            .arg("-e")
            .arg(self.dir.join("logs/error.log"))
            .arg("-c")
            .arg(self.dir.join("nginx.conf"));
        c
    }

    /// nginx's own certificate change: the pair rewritten, then `nginx -s reload` (waited for).
    pub fn change_cert(&self, leaf: &Leaf) -> bool {
        write_pair(&self.dir, SERVER_CERT, SERVER_KEY, leaf);
        self.signal("reload")
    }

    fn signal(&self, s: &str) -> bool {
        self.command()
            .args(["-s", s])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("nginx.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// The master and its workers.
    pub fn pids(&self) -> Vec<u32> {
        let Some(master) = self.master_pid() else {
            return Vec::new();
        };
        let mut v = vec![master];
        v.extend(procfs::children_of(master));
        v
    }

    /// CPU seconds of the master and the workers alive now.
    pub fn cpu_secs(&self) -> f64 {
        self.pids().into_iter().map(procfs::cpu_secs).sum()
    }

    /// VmRSS of the master and its workers, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.pids().into_iter().map(|p| procfs::rss_kib(p).0).sum()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.master_pid();
        self.signal("stop");
        if let Some(pid) = pid {
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end && Path::new(&format!("/proc/{pid}")).exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
