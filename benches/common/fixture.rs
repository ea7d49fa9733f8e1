//! Roots the benches run on: certificate files written the way an upload writes them (temp file,
//! fsync, rename; key before certificate), and configurations pushed through the real `xsh`
//! (so `xconf.txt` is what the store writes): the agent's ports, and 1,000 zones whose peers are a
//! closed port on 127.0.0.1 (each zone check is refused at once; no traffic leaves the host).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::pki::Leaf;
use super::{die, free_port, xsh_bin};

pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "privkey.pem";
pub const CLIENT_CERT: &str = "client.pem";
pub const CLIENT_KEY: &str = "clientprivkey.pem";
pub const CA_LIST: &str = "ca.pem";
pub const MODE_KEY: &str = "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode";
pub const ZONES: usize = 1000;

pub fn write_file_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) {
    let tmp = dir.join(format!(".{name}.bench-tmp"));
    let res = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, dir.join(name)));
    if let Err(e) = res {
        die(&format!("writing {}: {e}", dir.join(name).display()));
    }
}

/// A certificate and its key, key first (as the product's upload does).
pub fn write_pair(dir: &Path, cert: &str, key: &str, leaf: &Leaf) {
    write_file_atomic(dir, key, leaf.key_pem.as_bytes(), 0o600);
    write_file_atomic(dir, cert, leaf.cert_pem.as_bytes(), 0o644);
}

/// `ROOT/certs/`: server and client stores and the trusted CA list.
pub fn install_certs(root: &Path, ca_pem: &str, server: &Leaf, client: &Leaf) {
    let certs = root.join("certs");
    std::fs::create_dir_all(&certs).unwrap_or_else(|e| die(&e.to_string()));
    write_pair(&certs, SERVER_CERT, SERVER_KEY, server);
    write_pair(&certs, CLIENT_CERT, CLIENT_KEY, client);
    write_file_atomic(&certs, CA_LIST, ca_pem.as_bytes(), 0o644);
}

/// All 7 leaves of zones 1..=1000: outbound Neighbor peers at `127.0.0.1:peer_port`.
pub fn zone_lines(peer_port: u16) -> String {
    let mut s = String::with_capacity(ZONES * 7 * 64);
    for z in 1..=ZONES {
        let p = format!("xConfiguration Zones Zone {z}");
        s.push_str(&format!("{p} Name: \"bench zone {z}\"\n"));
        s.push_str(&format!("{p} Type: Neighbor\n"));
        s.push_str(&format!("{p} Neighbor Peer 1 Address: \"127.0.0.1\"\n"));
        s.push_str(&format!("{p} Neighbor SIP Port: {peer_port}\n"));
        s.push_str(&format!("{p} Neighbor Tunnel Port: {peer_port}\n"));
        s.push_str(&format!("{p} Neighbor SIP TLS Verify Mode: On\n"));
        s.push_str(&format!(
            "{p} Neighbor SIP TLS Verify Subject Name: \"peer{z}.bench\"\n"
        ));
    }
    s
}

/// Pipes `lines` into one `xsh --root R` session; every reply must be `OK`.
pub fn configure(root: &Path, lines: &str) {
    let mut child = Command::new(xsh_bin())
        .arg("--root")
        .arg(root)
        .arg("--no-banner")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| die(&format!("xsh: {e}")));
    let mut stdin = child.stdin.take().unwrap_or_else(|| die("no stdin"));
    let input = lines.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = BufReader::new(child.stdout.take().unwrap_or_else(|| die("no stdout")));
    let bad: Vec<String> = out
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.trim() != "OK" && !l.trim().is_empty())
        .take(3)
        .collect();
    let _ = writer.join();
    let st = child.wait();
    if !bad.is_empty() || !st.is_ok_and(|s| s.success()) {
        die(&format!("configuring {}: {bad:?}", root.display()));
    }
}

/// What a root for an agent holds.
pub struct AgentRoot<'a> {
    pub ca_pem: &'a str,
    pub server: &'a Leaf,
    pub client: &'a Leaf,
    /// Configure the 1,000 zones.
    pub zones: bool,
}

/// Certificates, free listener ports, EKU mode On, and the zones if asked for.
pub fn prepare_agent_root(root: &Path, r: &AgentRoot<'_>) {
    install_certs(root, r.ca_pem, r.server, r.client);
    let mut lines = format!(
        "xConfiguration SIP TLS Port: {}\nxConfiguration Tunnel Port: {}\n{MODE_KEY}: On\n",
        free_port(),
        free_port()
    );
    if r.zones {
        lines.push_str(&zone_lines(free_port()));
    }
    configure(root, &lines);
}
