//! What the certificate crash and fault tests share: running `xsh` and `xagent` on a ROOT,
//! reading the stores the way the project does and the way the files are, the audit log.
//!
//! Included by path (`#[path = "crash_support/mod.rs"] mod crash_support;`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use xsh::certs::info::{key_matches_cert, parse_pem_certs, parse_pem_key};
use xsh::certs::store::load_pair;

pub const XSH: &str = env!("CARGO_BIN_EXE_xsh");
pub const XAGENT: &str = env!("CARGO_BIN_EXE_xagent");

pub fn say(line: &str) {
    // Straight to the stream: the counts must show in the test output.
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn xsh(root: &Path, cmd: &str) -> std::process::Output {
    Command::new(XSH)
        .arg("--root")
        .arg(root)
        .arg("--no-banner")
        .arg("-c")
        .arg(cmd)
        .env_remove("XSH_ROOT")
        .stdin(Stdio::null())
        .output()
        .expect("xsh runs")
}

pub fn xsh_ok(root: &Path, cmd: &str) {
    let o = xsh(root, cmd);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && !out.contains("ERROR"),
        "{cmd}: {out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn copy_tree(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status();
    assert!(st.is_ok_and(|s| s.success()), "cp -a {}", from.display());
}

/// Which pair a store holds, by the leaf's DER.
pub fn leaf_der(pem: &[u8]) -> Option<Vec<u8>> {
    parse_pem_certs(pem).ok().map(|c| c[0].as_ref().to_vec())
}

/// The leaf of each store as the project's reader sees it (through a committed intent), after
/// checking that its key matches; `None` for a store that does not exist yet.
pub fn stores_through_reader(root: &Path, ctx: &str) -> [Option<Vec<u8>>; 2] {
    let certs = root.join("certs");
    let mut out = [None, None];
    for (i, (c, k)) in [
        ("server.pem", "privkey.pem"),
        ("client.pem", "clientprivkey.pem"),
    ]
    .iter()
    .enumerate()
    {
        // A certificate on disk must load with its key; a store not made yet may be missing.
        match load_pair(&certs, c, k) {
            Ok((chain, _)) => out[i] = Some(chain[0].as_ref().to_vec()),
            Err(e) => assert!(!certs.join(c).exists(), "{ctx}: {c} does not load: {e}"),
        }
    }
    out
}

/// The leaf of each store as the files on disk hold it, checking the key file's public key is
/// the certificate's.
pub fn stores_on_disk(root: &Path, ctx: &str) -> [Vec<u8>; 2] {
    let certs = root.join("certs");
    let mut out: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (i, (c, k)) in [
        ("server.pem", "privkey.pem"),
        ("client.pem", "clientprivkey.pem"),
    ]
    .iter()
    .enumerate()
    {
        let cert = std::fs::read(certs.join(c)).unwrap_or_else(|e| panic!("{ctx}: {c}: {e}"));
        let key = std::fs::read(certs.join(k)).unwrap_or_else(|e| panic!("{ctx}: {k}: {e}"));
        let chain = parse_pem_certs(&cert).unwrap_or_else(|e| panic!("{ctx}: {c}: {e}"));
        let key = parse_pem_key(&key).unwrap_or_else(|e| panic!("{ctx}: {k}: {e}"));
        assert!(
            key_matches_cert(&chain[0], &key).unwrap(),
            "{ctx}: the public key of {k} is not the one of {c}"
        );
        out[i] = chain[0].as_ref().to_vec();
    }
    out
}

pub fn audit(root: &Path) -> Vec<Value> {
    std::fs::read_to_string(root.join("config/audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `xagent --check` on `root`: exit status and output.
pub fn check(root: &Path) -> (bool, String) {
    let o = Command::new(XAGENT)
        .arg("--root")
        .arg(root)
        .arg("--check")
        .output()
        .expect("xagent runs");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Starts the agent, waits for `xagent: ready` (or its exit), stops it.
pub fn agent_starts(root: &Path) -> Result<(), String> {
    let mut child = Command::new(XAGENT)
        .arg("--root")
        .arg(root)
        .arg("--verbose")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let out = child.stdout.take().expect("piped");
    let mut seen = String::new();
    let mut ready = false;
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("xagent: ready") {
            ready = true;
            break;
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    if ready {
        Ok(())
    } else {
        Err(seen)
    }
}
