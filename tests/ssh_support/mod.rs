//! A real OpenSSH `sshd` for the tests: throwaway host and client keys, its own `sshd_config` in a
//! temp folder (the shipped `contrib/sshd_config.d/xsh.conf`, verbatim but for two paths), an
//! ephemeral port on 127.0.0.1, test users `xshadm` (group `xsh-admin`) and `xshro` (group
//! `xsh-readonly`), a temp ROOT both can use, and SSH clients with or without a PTY.
//!
//! Needs root (users, sshd); without root or without `/usr/sbin/sshd` a test prints SKIPPED and
//! returns, and fails under `CI=true` (see `tests/common`). Every process started here is stopped
//! when its guard drops, also on panic: clients are killed, the sshd listener and all its
//! descendants (per-connection sshd, the user's shell, xsh) are killed by pid. The users and
//! groups the tests create are removed when the last server of the last test process using them
//! goes (see [`Accounts`]). Nothing here asserts on timing: waits have generous deadlines.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
pub mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const XSH: &str = env!("CARGO_BIN_EXE_xsh");
pub const SSHD: &str = "/usr/sbin/sshd";
pub const ADMIN: &str = "xshadm";
pub const READONLY: &str = "xshro";
pub const ADMIN_GROUP: &str = "xsh-admin";
pub const READONLY_GROUP: &str = "xsh-readonly";
/// How long anything may take before a test gives up (a deadline, not a timing assertion).
pub const DEADLINE: Duration = Duration::from_secs(30);

const SNIPPET: &str = include_str!("../../contrib/sshd_config.d/xsh.conf");

/// Why the SSH tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::getuid().is_root() {
        return Some("needs root (test users, sshd)".into());
    }
    for tool in [
        SSHD,
        "/usr/bin/ssh",
        "/usr/bin/ssh-keygen",
        "/usr/sbin/useradd",
    ] {
        if !Path::new(tool).exists() {
            return Some(format!(
                "{tool} is missing (apt-get install openssh-server openssh-client)"
            ));
        }
    }
    None
}

/// Starts an sshd, or says why it cannot and returns from the test (a failure under CI).
#[macro_export]
macro_rules! sshd_or_skip {
    () => {
        match ssh_support::skip_reason() {
            Some(why) => {
                ssh_support::common::cannot_run(&why);
                return;
            }
            None => ssh_support::SshServer::start(),
        }
    };
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `getent DB NAME` finds the account.
pub fn exists(db: &str, name: &str) -> bool {
    Command::new("getent")
        .args([db, name])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `useradd`/`groupadd` may find /etc/passwd locked by someone else: retry for a while.
fn create(what: &str, name: &str, db: &str, cmd: &mut dyn FnMut() -> Command) {
    let start = Instant::now();
    loop {
        if exists(db, name) {
            return;
        }
        match run(&mut cmd()) {
            Ok(_) => return,
            Err(e) if start.elapsed() > DEADLINE => panic!("cannot create {what} {name}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The test accounts (groups `xsh-admin`, `xsh-readonly`, users `xshadm`, `xshro`), shared by
/// every server of every test process on the machine.
///
/// A process holds them while any of its [`SshServer`]s lives ([`Accounts::acquire`] returns a
/// lease; the last lease dropped, also when a test panics, releases them). Across processes a
/// shared `flock` on `in-use` says "in use", and `mutate` serializes creating and removing: the
/// last process to release (its exclusive try-lock on `in-use` succeeds) removes what the tests
/// created. Only accounts the tests created are removed: they are listed in `created` (in
/// /var/tmp, which outlives a reboot, so a killed run's leftovers go with the next run);
/// accounts that existed before are left alone.
pub struct Accounts;

const ACCOUNTS_DIR: &str = "/var/tmp/xsh-test-accounts";

struct Held {
    leases: usize,
    in_use: Option<nix::fcntl::Flock<std::fs::File>>,
}

static HELD: Mutex<Held> = Mutex::new(Held {
    leases: 0,
    in_use: None,
});

/// A hold on the test accounts; dropping the last one of the process releases them.
pub struct AccountsLease(());

impl Drop for AccountsLease {
    fn drop(&mut self) {
        Accounts::release();
    }
}

fn lock_file(name: &str, arg: nix::fcntl::FlockArg) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let _ = std::fs::create_dir_all(ACCOUNTS_DIR);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(ACCOUNTS_DIR).join(name))
        .unwrap_or_else(|e| panic!("open {ACCOUNTS_DIR}/{name}: {e}"));
    nix::fcntl::Flock::lock(f, arg).ok()
}

fn created_list() -> PathBuf {
    Path::new(ACCOUNTS_DIR).join("created")
}

/// `(kind, name)` lines of the accounts the tests created.
pub fn read_created() -> Vec<(String, String)> {
    std::fs::read_to_string(created_list())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

fn record_created(kind: &str, name: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(created_list())
        .expect("open the created-accounts list");
    writeln!(f, "{kind} {name}").expect("record a created account");
    f.sync_all().expect("sync the created-accounts list");
}

impl Accounts {
    /// Makes sure the accounts exist and holds them until the lease drops.
    pub fn acquire() -> AccountsLease {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        if held.leases == 0 {
            let _mutate = lock_file("mutate", nix::fcntl::FlockArg::LockExclusive)
                .expect("lock the test accounts");
            ensure_users();
            held.in_use = Some(
                lock_file("in-use", nix::fcntl::FlockArg::LockShared)
                    .expect("share the test accounts"),
            );
        }
        held.leases += 1;
        AccountsLease(())
    }

    fn release() {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        held.leases = held.leases.saturating_sub(1);
        if held.leases > 0 {
            return;
        }
        let Some(_mutate) = lock_file("mutate", nix::fcntl::FlockArg::LockExclusive) else {
            return;
        };
        drop(held.in_use.take());
        // Another test process still holds them: it removes them when it is done.
        let Some(_alone) = lock_file("in-use", nix::fcntl::FlockArg::LockExclusiveNonblock) else {
            return;
        };
        remove_created();
    }
}

/// Whether another process holds the test accounts (its shared lock on `in-use`).
pub fn accounts_held_elsewhere() -> bool {
    let _mutate = lock_file("mutate", nix::fcntl::FlockArg::LockExclusive);
    lock_file("in-use", nix::fcntl::FlockArg::LockExclusiveNonblock).is_none()
}

/// Removes the recorded accounts (users first: their groups cannot go while they exist).
fn remove_created() {
    let created = read_created();
    let mut left = Vec::new();
    for kind in ["user", "group"] {
        for (k, name) in created.iter().filter(|(k, _)| k == kind) {
            let db = if k == "user" { "passwd" } else { "group" };
            let start = Instant::now();
            while exists(db, name) {
                // -f: a session process killed a moment ago may not have exited yet.
                let mut c = if k == "user" {
                    let mut c = Command::new("userdel");
                    c.args(["-f", "-r", name.as_str()]);
                    c
                } else {
                    let mut c = Command::new("groupdel");
                    c.arg(name.as_str());
                    c
                };
                if let Err(e) = run(&mut c) {
                    if start.elapsed() > DEADLINE {
                        eprintln!("cannot remove test {k} {name}: {e}");
                        left.push((k.clone(), name.clone()));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
    let text: String = left.iter().map(|(k, n)| format!("{k} {n}\n")).collect();
    std::fs::write(created_list(), text).expect("rewrite the created-accounts list");
}

/// Creates the groups and users the tests log in as (recording what it created); existing ones
/// are left alone. Called under the `mutate` lock.
fn ensure_users() {
    for g in [ADMIN_GROUP, READONLY_GROUP] {
        if exists("group", g) {
            continue;
        }
        record_created("group", g);
        create("group", g, "group", &mut || {
            let mut c = Command::new("groupadd");
            c.arg(g);
            c
        });
    }
    for (u, g) in [(ADMIN, ADMIN_GROUP), (READONLY, READONLY_GROUP)] {
        if exists("passwd", u) {
            continue;
        }
        record_created("user", u);
        create("user", u, "passwd", &mut || {
            // A home folder, or sshd prints "Could not chdir to home directory" into the PTY.
            let mut c = Command::new("useradd");
            c.args([
                "-m",
                "-s",
                "/bin/bash",
                "-c",
                "xsh test account",
                "-G",
                g,
                u,
            ]);
            c
        });
        // useradd leaves the account locked ("!"), and sshd without PAM refuses locked accounts
        // even for public keys; "*" is unlocked with no usable password.
        run(Command::new("usermod").args(["-p", "*", u])).expect("unlock test user");
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, p.display()));
}

/// Pids whose parent is `pid`, from /proc.
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

fn descendants(pid: i32) -> Vec<i32> {
    let mut all = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children_of(p) {
            if !all.contains(&c) {
                all.push(c);
                todo.push(c);
            }
        }
    }
    all
}

/// Pids of running processes whose executable is `bin` (the xsh copy of one server).
pub fn pids_running(bin: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{p}/exe")).ok().as_deref() == Some(bin) {
            // A zombie has no exe link, so what is found here is alive.
            out.push(p);
        }
    }
    out
}

fn kill_pid(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A running sshd with everything it needs. Dropping it stops the listener and every process
/// of its sessions.
pub struct SshServer {
    sshd: Option<Child>,
    /// Dropped after `stop` (fields drop after `Drop::drop`), when no session process is left.
    _accounts: AccountsLease,
    pub port: u16,
    /// The temp ROOT the sessions use (`XSH_ROOT`).
    pub root: PathBuf,
    /// The copy of `xsh` that ForceCommand runs (mode 0755 in a traversable folder).
    pub bin: PathBuf,
    pub key: PathBuf,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl SshServer {
    /// Starts sshd with the shipped snippet; panics (with sshd's log) when it does not come up.
    pub fn start() -> SshServer {
        // Held by a local first, so a start that panics releases the accounts too.
        let accounts = Accounts::acquire();
        let dir = tempfile::Builder::new()
            .prefix("xsh-sshd-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_path_buf();
        // The users must reach the binary, the ROOT and their authorized keys.
        chmod(&d, 0o755);
        let bin = d.join("xsh");
        std::fs::copy(XSH, &bin).expect("copy xsh");
        chmod(&bin, 0o755);
        for k in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", k, "-f"])
                .arg(d.join(k)))
            .expect("ssh-keygen");
        }
        let ak = d.join("authorized_keys");
        std::fs::create_dir(&ak).expect("mkdir authorized_keys");
        chmod(&ak, 0o755);
        let pubkey = std::fs::read(d.join("client_key.pub")).expect("client_key.pub");
        for u in [ADMIN, READONLY] {
            let f = ak.join(u);
            std::fs::write(&f, &pubkey).expect("authorized key");
            chmod(&f, 0o644);
        }
        let root = d.join("root");
        prepare_root(&bin, &root);
        // sshd's privilege separation folder (Debian creates it in the service unit).
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = d.join("sshd.log");
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let cfg = d.join("sshd_config");
            std::fs::write(&cfg, sshd_config(&d, port, &bin, &root)).expect("sshd_config");
            let logf = std::fs::File::create(&log).expect("sshd log");
            let child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(logf.try_clone().expect("log fd"))
                .stderr(logf)
                .spawn()
                .expect("spawn sshd");
            let mut child = child;
            match wait_ready(&mut child, port, &log) {
                Ok(()) => {
                    return SshServer {
                        sshd: Some(child),
                        _accounts: accounts,
                        port,
                        root,
                        bin,
                        key: d.join("client_key"),
                        log,
                        dir,
                    }
                }
                Err(e) => {
                    last_err = e;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("sshd did not start: {last_err}");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        let Some(mut c) = self.sshd.take() else {
            return;
        };
        let pid = c.id() as i32;
        // Per-connection sshd processes, the users' shells and xsh: collected before the
        // listener goes (they would be re-parented), killed by pid.
        let sessions = descendants(pid);
        let _ = c.kill();
        let _ = c.wait();
        for p in sessions {
            kill_pid(p);
        }
        for p in pids_running(&self.bin) {
            kill_pid(p);
        }
    }

    /// The ssh client command for `user`, without a destination command.
    pub fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg("/dev/null")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-i")
            .arg(&self.key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=20",
                "-e",
                "none",
            ])
            .env_remove("SSH_AUTH_SOCK");
        c
    }

    /// The argv of `ssh -tt user@127.0.0.1` (for a tmux pane).
    pub fn pty_argv(&self, user: &str) -> Vec<String> {
        let c = self.ssh();
        let mut v = vec![c.get_program().to_string_lossy().into_owned()];
        v.extend(c.get_args().map(|a| a.to_string_lossy().into_owned()));
        v.push("-tt".into());
        v.push(format!("{user}@127.0.0.1"));
        v
    }

    /// `ssh user@127.0.0.1 [remote]` fed `input` on stdin; waits for the exit (deadline).
    pub fn exec(&self, user: &str, remote: Option<&str>, input: &[u8]) -> Finished {
        let mut s = self.session(user, Pty::None, remote);
        s.send(input);
        s.close_stdin();
        let status = s.wait_exit();
        Finished {
            status,
            stdout: s.output(),
            stderr: s.errors(),
        }
    }

    /// Opens a session: `Pty::None` (a channel without a PTY, as `ssh host < file`) or
    /// `Pty::Term(t)` (`ssh -tt` with `TERM=t`).
    pub fn session(&self, user: &str, pty: Pty, remote: Option<&str>) -> SshSession {
        let mut c = self.ssh();
        match pty {
            Pty::None => {
                c.arg("-T");
            }
            Pty::Term(t) => {
                c.arg("-tt").env("TERM", t);
            }
        }
        c.arg(format!("{user}@127.0.0.1"));
        if let Some(r) = remote {
            c.arg(r);
        }
        SshSession::spawn(c, &format!("ssh {user}"))
    }

    /// The audit records of the ROOT.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.root.join("config/audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `xConfiguration` as the store holds it, read locally as root.
    pub fn local(&self, commands: &str) -> String {
        let out = Command::new(&self.bin)
            .arg("--root")
            .arg(&self.root)
            .arg("-c")
            .arg(commands)
            .output()
            .expect("run xsh locally");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (deadline) until no xsh of this server runs any more.
    pub fn wait_sessions_gone(&self) {
        let start = Instant::now();
        while !pids_running(&self.bin).is_empty() {
            assert!(
                start.elapsed() < DEADLINE,
                "xsh sessions still running: {:?}",
                pids_running(&self.bin)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PTY or not, and the terminal type the client announces.
#[derive(Debug, Clone, Copy)]
pub enum Pty<'a> {
    None,
    Term(&'a str),
}

/// What a finished client left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

fn wait_ready(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let start = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("sshd exited ({st}): {}", log_text()));
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4];
            if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                return Ok(());
            }
        }
        if start.elapsed() > DEADLINE {
            return Err(format!("no SSH banner on port {port}: {}", log_text()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn sshd_config(d: &Path, port: u16, bin: &Path, root: &Path) -> String {
    let snippet = SNIPPET
        .replace("/usr/local/bin/xsh", &bin.display().to_string())
        .replace("/var/lib/xsh", &root.display().to_string());
    assert!(
        snippet.contains(&bin.display().to_string()),
        "snippet has no ForceCommand path"
    );
    format!(
        "# written by tests/ssh_support\n\
         Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {d}/host_key\n\
         PidFile {d}/sshd.pid\n\
         UsePAM no\n\
         StrictModes no\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         AuthorizedKeysFile {d}/authorized_keys/%u\n\
         AllowUsers {ADMIN} {READONLY}\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         MaxStartups 50\n\
         MaxSessions 50\n\
         LogLevel VERBOSE\n\
         {snippet}",
        d = d.display()
    )
}

/// A ROOT as contrib/README.md describes it: prepared once (certificates, folders), group
/// `xsh-admin` with setgid folders 2775, the lock 0664 and the audit log 0666 (read-only users
/// append their refused attempts), keys 0600 owned by the agent's user (root here), a history
/// folder every user can keep a file in.
fn prepare_root(bin: &Path, root: &Path) {
    run(Command::new(bin)
        .arg("--root")
        .arg(root)
        .args(["--dump-config", "txt"]))
    .expect("prepare ROOT");
    for sub in ["config", "status", "certs", "history"] {
        std::fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    run(Command::new("chgrp").arg("-R").arg(ADMIN_GROUP).arg(root)).expect("chgrp");
    for entry in walk(root) {
        if entry.is_dir() {
            chmod(&entry, 0o2775);
        }
    }
    chmod(&root.join("history"), 0o1777);
    let audit = root.join("config/audit.log");
    let lock = root.join("config/.xconf.lock");
    for f in [&audit, &lock] {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)
            .expect("create store file");
    }
    run(Command::new("chgrp")
        .arg(ADMIN_GROUP)
        .arg(&audit)
        .arg(&lock))
    .expect("chgrp");
    chmod(&audit, 0o666);
    chmod(&lock, 0o664);
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}

/// What one reader thread collected: the bytes, when each chunk arrived, and whether the stream
/// ended.
#[derive(Default)]
pub struct Collected {
    pub bytes: Vec<u8>,
    /// (arrival, length of `bytes` after the chunk)
    pub chunks: Vec<(Instant, usize)>,
    pub eof: bool,
}

type Shared = Arc<(Mutex<Collected>, Condvar)>;

fn reader(mut r: impl Read + Send + 'static) -> Shared {
    let shared: Shared = Arc::new((Mutex::new(Collected::default()), Condvar::new()));
    let s = shared.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = r.read(&mut buf).unwrap_or(0);
            let now = Instant::now();
            let (m, cv) = &*s;
            let mut c = m.lock().unwrap_or_else(|p| p.into_inner());
            if n == 0 {
                c.eof = true;
                cv.notify_all();
                return;
            }
            c.bytes.extend_from_slice(&buf[..n]);
            let len = c.bytes.len();
            c.chunks.push((now, len));
            cv.notify_all();
        }
    });
    shared
}

/// One ssh client process with its stdout and stderr collected by threads; killed when dropped.
pub struct SshSession {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: Shared,
    err: Shared,
    pub label: String,
    pub started: Instant,
}

impl SshSession {
    pub fn spawn(mut cmd: Command, label: &str) -> SshSession {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {label}: {e}"));
        let stdin = child.stdin.take();
        let out = reader(child.stdout.take().expect("stdout"));
        let err = reader(child.stderr.take().expect("stderr"));
        SshSession {
            child: Some(child),
            stdin,
            out,
            err,
            label: label.to_string(),
            started,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Writes bytes to the client's stdin (ignores a closed pipe: the test then sees the end).
    pub fn send(&mut self, bytes: &[u8]) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(bytes);
            let _ = s.flush();
        }
    }

    /// Hands the client's stdin to the caller (for a writer thread).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn output(&self) -> Vec<u8> {
        self.out
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bytes
            .clone()
    }

    pub fn errors(&self) -> Vec<u8> {
        self.err
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bytes
            .clone()
    }

    /// When the byte at `offset` of stdout arrived.
    pub fn arrival(&self, offset: usize) -> Option<Instant> {
        let c = self.out.0.lock().unwrap_or_else(|p| p.into_inner());
        c.chunks
            .iter()
            .find(|(_, end)| *end > offset)
            .map(|(t, _)| *t)
    }

    /// Waits until `f` finds what it looks for in stdout (deadline; panics with the output).
    pub fn wait_for<T>(&self, what: &str, f: impl FnMut(&[u8]) -> Option<T>) -> T {
        self.wait_for_within(what, DEADLINE, f)
            .unwrap_or_else(|out| {
                panic!(
                    "{}: gave up waiting for {what}; stdout so far: {:?}; stderr: {:?}",
                    self.label,
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&self.errors())
                )
            })
    }

    /// Like [`wait_for`], but returns the output instead of panicking when time runs out.
    pub fn wait_for_within<T>(
        &self,
        _what: &str,
        limit: Duration,
        mut f: impl FnMut(&[u8]) -> Option<T>,
    ) -> Result<T, Vec<u8>> {
        let (m, cv) = &*self.out;
        let start = Instant::now();
        let mut c = m.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = f(&c.bytes) {
                return Ok(v);
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() || c.eof {
                if let Some(v) = f(&c.bytes) {
                    return Ok(v);
                }
                return Err(c.bytes.clone());
            }
            c = cv
                .wait_timeout(c, left.min(Duration::from_millis(200)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until stdout contains `needle` at or after `from`; returns the offset after it.
    pub fn wait_contains(&self, from: usize, needle: &[u8]) -> usize {
        self.wait_for(&format!("{:?}", String::from_utf8_lossy(needle)), |b| {
            find(&b[from.min(b.len())..], needle).map(|i| from + i + needle.len())
        })
    }

    /// Waits for the exit (deadline), then for stdout and stderr to end.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        let child = self.child.as_mut().expect("child");
        let st = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            if start.elapsed() > DEADLINE {
                let out = String::from_utf8_lossy(&self.output()).into_owned();
                panic!("{} did not exit; stdout: {out:?}", self.label);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for s in [&self.out, &self.err] {
            let (m, cv) = &**s;
            let mut c = m.lock().unwrap_or_else(|p| p.into_inner());
            while !c.eof && start.elapsed() < DEADLINE {
                c = cv
                    .wait_timeout(c, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        st
    }

    /// Kills the client (a dropped connection).
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SshSession {
    fn drop(&mut self) {
        self.stdin = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Complete documents at the start of `b`, each with the offset just after it; panics on bytes
/// that can never become JSON (an `OK` line, a prompt, an escape code).
pub fn json_docs(b: &[u8]) -> (Vec<serde_json::Value>, Vec<usize>) {
    let mut it = serde_json::Deserializer::from_slice(b).into_iter::<serde_json::Value>();
    let mut docs = Vec::new();
    let mut ends = Vec::new();
    loop {
        match it.next() {
            Some(Ok(v)) => {
                docs.push(v);
                ends.push(it.byte_offset());
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(e)) => panic!(
                "not JSON at byte {}: {e}; stream: {:?}",
                it.byte_offset(),
                String::from_utf8_lossy(b)
            ),
            None => break,
        }
    }
    (docs, ends)
}

/// Lines of a no-PTY reply stream (split on `\n` only, as the clients do).
pub fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .split('\n')
        .map(str::to_string)
        .collect()
}

/// A tmux server of its own (`tmux -S <socket>`) running one pane; killed when dropped.
pub struct Tmux {
    sock: PathBuf,
}

impl Tmux {
    /// Starts `argv` in a detached pane of `width`x`height`. The pane's TERM is tmux's default
    /// (`screen`), a terminal type people use, so xsh picks its full editor.
    pub fn start(dir: &Path, name: &str, width: u16, height: u16, argv: &[String]) -> Tmux {
        let sock = dir.join(format!("tmux-{name}.sock"));
        let t = Tmux { sock };
        let mut c = t.cmd();
        c.args(["-f", "/dev/null", "new-session", "-d", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg("--")
            .args(argv)
            .env("TERM", "xterm");
        run(&mut c).expect("tmux new-session");
        // Keep the pane (and what it shows) when ssh exits.
        let _ = run(t.cmd().args(["set-option", "-g", "remain-on-exit", "on"]));
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.sock);
        c
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        run(self.cmd().args(["send-keys", "-l", "--", text])).expect("tmux send-keys -l");
    }

    /// Sends key names (`Enter`, `Tab`, `Up`, `C-c`).
    pub fn keys(&self, keys: &[&str]) {
        run(self.cmd().arg("send-keys").args(keys)).expect("tmux send-keys");
    }

    /// Sends raw bytes (for example 0x7f, 0x08).
    pub fn bytes(&self, b: &[u8]) {
        let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
        run(self.cmd().args(["send-keys", "-H"]).args(&hex)).expect("tmux send-keys -H");
    }

    /// Pastes `text` as a terminal does (`tmux paste-buffer`: each `\n` sent as `\r`), wrapped
    /// in bracketed-paste markers with `bracketed` when the program asked for them (`-p`).
    pub fn paste(&self, text: &str, bracketed: bool) {
        run(self
            .cmd()
            .args(["set-buffer", "-b", "xsh-paste", "--", text]))
        .expect("tmux set-buffer");
        let mut c = self.cmd();
        c.args(["paste-buffer", "-d", "-b", "xsh-paste"]);
        if bracketed {
            c.arg("-p");
        }
        run(&mut c).expect("tmux paste-buffer");
    }

    /// Copies every byte the pane's program writes from now on into `file` (`pipe-pane`).
    pub fn log_output(&self, file: &Path) {
        run(self
            .cmd()
            .args(["pipe-pane", "-o"])
            .arg(format!("cat > '{}'", file.display())))
        .expect("tmux pipe-pane");
    }

    /// The pane's whole text, wrapped lines joined.
    pub fn screen(&self) -> String {
        run(self.cmd().args(["capture-pane", "-p", "-J", "-S", "-"])).unwrap_or_default()
    }

    /// Waits until the screen satisfies `f` (deadline; panics with the screen).
    pub fn wait_screen(&self, what: &str, mut f: impl FnMut(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if f(&s) {
                return s;
            }
            if start.elapsed() > DEADLINE {
                panic!("tmux: gave up waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `needle` occurs at least `n` times on the screen.
    pub fn wait_count(&self, needle: &str, n: usize) -> String {
        self.wait_screen(&format!("{n} x {needle:?}"), |s| {
            s.matches(needle).count() >= n
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}
