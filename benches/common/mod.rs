//! Shared by the two bench programs (`xsh_bench`, `xagent_bench`): where the release binaries are,
//! a work folder, a test PKI of its own (so the benches do not depend on the library's test PKI),
//! the 1,000-zone / 1,000-CA fixtures, a running agent, and the process clocks (`/proc`,
//! `getrusage`) the figures come from. Each program uses a part of it, hence `dead_code` allowed.
//! It knows nothing of what is measured: the programs decide that.
#![allow(dead_code)]

pub mod agent;
pub mod fixture;
pub mod pki;
pub mod procfs;
pub mod stats;

use std::path::{Path, PathBuf};

/// The release `xsh` cargo built for this bench (`target/release/xsh`).
pub fn xsh_bin() -> PathBuf {
    existing(env!("CARGO_BIN_EXE_xsh"))
}

/// The release `xagent` cargo built for this bench.
pub fn xagent_bin() -> PathBuf {
    existing(env!("CARGO_BIN_EXE_xagent"))
}

fn existing(p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if !p.exists() {
        die(&format!(
            "{} not found: build it first (cargo build --release)",
            p.display()
        ));
    }
    p
}

pub fn die(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(2)
}

/// A folder under `$TMPDIR`, removed when dropped (also on a panic that unwinds).
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    pub fn new(prefix: &str) -> WorkDir {
        let p = std::env::temp_dir().join(format!("{prefix}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| die(&format!("{}: {e}", p.display())));
        WorkDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; nothing listens on it afterwards).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| die(&format!("no free port: {e}")))
}

/// The arguments a bench program was started with, without cargo's `--bench` (which `cargo bench`
/// appends) and without the program name.
pub fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect()
}

pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
