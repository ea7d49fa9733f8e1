//! Who is asking, and files between users (issue 9 items 6 and 7): the audit user comes from the
//! real uid, never `$USER`; `SSH_CONNECTION` only gives an address; a command that is not UTF-8
//! is an error with a non-zero exit; the root's folders get their modes whatever the umask; and,
//! with real Unix users (root only; a failure under `CI=true` otherwise): read-only users cannot
//! dump or collect, their refused attempts are rate-limited and do not make admin writes read
//! the audit log, a planted history link does not redirect an admin's session, and an agent
//! running as its own user reads the key an admin uploaded while a read-only user cannot.

#[path = "common/mod.rs"]
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const XSH: &str = env!("CARGO_BIN_EXE_xsh");
const XAGENT: &str = env!("CARGO_BIN_EXE_xagent");

fn audit(root: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(root.join("config/audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn the_environment_names_no_user_and_only_an_address() {
    let d = tempfile::tempdir().unwrap();
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .map(|u| u.name)
        .unwrap();
    for (conn, from, port) in [
        ("192.0.2.7 5555 127.0.0.1 22", "192.0.2.7", 5071),
        ("\u{1b}[2J 1 2 3", "local", 5072),
    ] {
        let o = Command::new(XSH)
            .arg("--root")
            .arg(d.path())
            .args(["-c", &format!("xConfiguration SIP TLS Port: {port}")])
            .env("USER", "someoneelse")
            .env("LOGNAME", "someoneelse")
            .env("SSH_CONNECTION", conn)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let last = audit(d.path()).pop().expect("an audit record");
        assert_eq!(last["user"], me.as_str(), "{last}");
        assert_eq!(last["from"], from, "{last}");
    }
}

#[test]
fn a_command_that_is_not_utf8_is_an_error() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"xStatus SystemUnit \xff\xfe");
    let by_flag = Command::new(XSH)
        .arg("--root")
        .arg(d.path())
        .arg("-c")
        .arg(bad)
        .output()
        .unwrap();
    let by_ssh = Command::new(XSH)
        .arg("--root")
        .arg(d.path())
        .arg("--no-banner")
        .env("SSH_ORIGINAL_COMMAND", bad)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    for (what, o) in [("-c", by_flag), ("SSH_ORIGINAL_COMMAND", by_ssh)] {
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
        assert!(
            out.contains("E002") && out.contains("ERROR"),
            "{what}: {}",
            text(&o)
        );
    }
}

/// Runs `xsh ARGS` under `sh -c 'umask U; exec ...'`.
fn xsh_with_umask(umask: &str, root: &Path, cmd: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask}; exec \"$0\" --root \"$1\" -c \"$2\""
        ))
        .arg(XSH)
        .arg(root)
        .arg(cmd)
        .output()
        .unwrap()
}

#[test]
fn the_roots_folders_get_their_modes_whatever_the_umask() {
    for umask in ["000", "077"] {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let o = xsh_with_umask(umask, &root, "xStatus SystemUnit Product");
        assert!(o.status.success(), "umask {umask}: {}", text(&o));
        for (rel, want) in xsh::root::FOLDER_MODES.iter().chain(xsh::root::FILE_MODES) {
            assert_eq!(mode(&root.join(rel)), *want, "umask {umask}: {rel}");
        }
        // The key files are the folder group's to read, nobody else's, whatever the umask.
        for key in ["certs/privkey.pem", "certs/clientprivkey.pem"] {
            assert_eq!(mode(&root.join(key)), 0o640, "umask {umask}: {key}");
        }
        assert_eq!(mode(&root.join("certs/server.pem")), 0o644, "umask {umask}");
    }
}

/// Test accounts, removed when dropped (also on panic).
struct Accounts {
    group: &'static str,
    users: Vec<&'static str>,
}

const GROUP: &str = "xshid-adm";
const ADMIN: &str = "xshidadm";
const READONLY: &str = "xshidro";
const AGENT: &str = "xshidagt";

impl Accounts {
    fn create() -> Accounts {
        let a = Accounts {
            group: GROUP,
            users: vec![],
        };
        let _ = Command::new("groupadd").arg(GROUP).status();
        let mut a = a;
        for (u, groups) in [(ADMIN, Some(GROUP)), (READONLY, None), (AGENT, Some(GROUP))] {
            let _ = Command::new("userdel").arg(u).output();
            let mut c = Command::new("useradd");
            c.args(["-M", "-s", "/bin/sh"]);
            if let Some(g) = groups {
                c.args(["-G", g]);
            }
            let st = c.arg(u).status().unwrap();
            assert!(st.success(), "useradd {u}");
            a.users.push(u);
        }
        a
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).output();
        }
        let _ = Command::new("groupdel").arg(self.group).output();
    }
}

/// `cmd` as `user` (real uid, gid and the user's groups), with an environment that lies.
fn as_user(user: &str, umask: &str, cmd: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", user, "--regid", user, "--init-groups", "--"])
        .args(["sh", "-c", &format!("umask {umask}; exec \"$@\""), "sh"])
        .args(cmd)
        .env("USER", "root")
        .env("LOGNAME", "root")
        .env_remove("XSH_ROOT")
        .env_remove("SSH_ORIGINAL_COMMAND");
    c
}

fn xsh_as(user: &str, root: &Path, input: &str) -> Output {
    use std::io::Write;
    let mut child = as_user(
        user,
        "022",
        &[XSH, "--root", &root.display().to_string(), "--no-banner"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let o = child.wait_with_output().unwrap();
    let _ = w.join();
    o
}

/// Bytes read from `audit.log` by one run of `cmd`, from strace's record of every read.
fn audit_bytes_read(cmd: &mut Command) -> u64 {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let mut st = Command::new("strace");
    st.args(["-f", "-y", "-e", "trace=read,pread64", "-o"])
        .arg(trace.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => st.env(k, v),
            None => st.env_remove(k),
        };
    }
    let o = st.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read_to_string(trace.path())
        .unwrap()
        .lines()
        .filter(|l| l.contains("audit.log>"))
        .filter_map(|l| l.rsplit("= ").next()?.trim().parse::<u64>().ok())
        .sum()
}

struct Shared {
    _dir: tempfile::TempDir,
    root: PathBuf,
    files: PathBuf,
}

/// A root prepared by root, then handed to the admins' group as contrib/README.md says.
fn shared_root() -> Shared {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("root");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::set_permissions(&files, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new(XSH)
        .arg("--root")
        .arg(&root)
        .args([
            "-c",
            &format!("xConfiguration Shell AdminGroup: \"{GROUP}\""),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let st = Command::new("chgrp")
        .args(["-R", GROUP])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    Shared {
        _dir: dir,
        root,
        files,
    }
}

#[test]
fn users_between_them() {
    if !common::require_root("creates Unix users and runs xsh as them")
        || !common::require_tool("setpriv", "--version", "util-linux")
        || !common::require_tool("strace", "-V", "strace")
        || !common::require_tool("script", "--version", "util-linux")
    {
        return;
    }
    let _accounts = Accounts::create();
    let s = shared_root();
    let root = &s.root;

    // The admin's write is audited under the admin's name, whatever $USER says.
    let o = xsh_as(ADMIN, root, "xConfiguration SIP TLS Port: 5072\n");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(audit(root).last().unwrap()["user"], ADMIN);

    // Read-only: no dump, no bundle, and an audit record each.
    let o = xsh_as(
        READONLY,
        root,
        &format!(
            "xCommand SystemUnit Dump Folder: \"{0}\"\nxCommand DiagnosticLogging Collect Folder: \"{0}\"\n",
            std::env::temp_dir().join("xshid-ro-out").display()
        ),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(out.matches("E070").count(), 2, "{out}");
    assert!(!std::env::temp_dir().join("xshid-ro-out").exists());
    let refused: Vec<_> = audit(root)
        .into_iter()
        .filter(|r| r["user"] == READONLY)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");

    // A flood of refused sets: a burst, then one counted record when the session ends.
    let flood = "xConfiguration SIP TLS Port: 5073\n".repeat(5_000);
    let o = xsh_as(READONLY, root, &flood);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ro: Vec<_> = audit(root)
        .into_iter()
        .filter(|r| r["user"] == READONLY)
        .collect();
    assert!(ro.len() <= 12, "{} records for one flood", ro.len());
    let counted = ro.last().unwrap()["result"].as_str().unwrap().to_string();
    assert!(counted.contains("attempts counted"), "{counted}");

    // Admin writes read a bounded part of the audit log, however long it is: 20 MB of old
    // records before the admin's last write, then the read-only flood after it.
    let old = format!(
        "{}\n",
        serde_json::json!({"time":"2026-01-01T00:00:00.000Z","generation":0,"user":"old",
            "from":"local","session":"1","path":"SIP TLS Port","old":"","new":"1",
            "result":"refused: read-only role"})
    );
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("config/audit.log"))
        .unwrap();
    std::io::Write::write_all(
        &mut log,
        old.repeat(20 * 1024 * 1024 / old.len()).as_bytes(),
    )
    .unwrap();
    drop(log);
    let o = xsh_as(ADMIN, root, "xConfiguration SIP TLS Port: 5074\n");
    assert!(o.status.success(), "{}", text(&o));
    let _ = xsh_as(READONLY, root, &flood);
    let size = std::fs::metadata(root.join("config/audit.log"))
        .unwrap()
        .len();
    let read = audit_bytes_read(&mut as_user(
        ADMIN,
        "022",
        &[
            XSH,
            "--root",
            &root.display().to_string(),
            "-c",
            "xConfiguration SIP TLS Port: 5075",
        ],
    ));
    println!("an admin write after a flood read {read} bytes of a {size}-byte audit.log");
    assert!(size > 20_000_000);
    assert!(
        read < 1024 * 1024,
        "an admin write read {read} bytes of audit.log"
    );

    history_between_users(root);
    keys_between_users(root, &s.files);
}

/// A read-only user plants the admin's history folder as a link into `config/`: the admin's
/// session runs without history and writes nothing there; without the link, the history is the
/// admin's own, 0700/0600.
fn history_between_users(root: &Path) {
    let adm = nix::unistd::User::from_name(ADMIN).unwrap().unwrap();
    let planted = root.join("history").join(adm.uid.to_string());
    let o = as_user(
        READONLY,
        "022",
        &[
            "ln",
            "-s",
            &root.join("config").display().to_string(),
            &planted.display().to_string(),
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let session = |input: &str| {
        let mut c = as_user(
            ADMIN,
            "022",
            &[
                "script",
                "-qec",
                &format!("{XSH} --root {} --editor full --no-banner", root.display()),
                "/dev/null",
            ],
        );
        c.env("TERM", "xterm");
        use std::io::Write;
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = session("xStatus SystemUnit Product\nbye\n");
    let all = text(&o);
    assert!(all.contains("no history for this session"), "{all}");
    assert!(!root.join("config/history.txt").exists(), "{all}");
    std::fs::remove_file(&planted).unwrap();
    let o = session("xStatus SystemUnit Product\nbye\n");
    let hist = planted.join("history.txt");
    let lines = std::fs::read_to_string(&hist).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert!(lines.contains("xStatus SystemUnit Product"), "{lines}");
    assert_eq!(mode(&planted), 0o700);
    assert_eq!(mode(&hist), 0o600);
    assert_eq!(std::fs::metadata(&hist).unwrap().uid(), adm.uid.as_raw());
}

/// An admin (umask 077) uploads a server certificate and key; the agent's user, in the admins'
/// group, loads them; a read-only user cannot read the key.
fn keys_between_users(root: &Path, files: &Path) {
    use xsh::certs::pki::{LeafEku, LeafSpec, TestCa};
    let ca = TestCa::private_ca1().unwrap();
    let leaf = ca
        .issue(&LeafSpec::new("agent-reads-me", LeafEku::Both))
        .unwrap();
    let write = |name: &str, text: &str| {
        let p = files.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    };
    let chain = write("chain.pem", &leaf.chain_pem);
    let key = write("key.pem", &leaf.key_pem);
    let ca_file = write("ca.pem", &leaf.root_pem);
    let cmd = format!(
        "xCommand Security Certificates CA Add File: \"{}\"\nxCommand Security Certificates Server Upload CertificateFile: \"{}\" KeyFile: \"{}\" AlsoAsClient: True\n",
        ca_file.display(),
        chain.display(),
        key.display()
    );
    use std::io::Write;
    let mut child = as_user(
        ADMIN,
        "077",
        &[XSH, "--root", &root.display().to_string(), "--no-banner"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cmd.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let privkey = root.join("certs/privkey.pem");
    let meta = std::fs::metadata(&privkey).unwrap();
    let group = nix::unistd::Group::from_name(GROUP).unwrap().unwrap();
    assert_eq!(
        meta.gid(),
        group.gid.as_raw(),
        "the key keeps the folder's group"
    );
    assert_eq!(mode(&privkey), 0o640);
    let o = as_user(
        AGENT,
        "022",
        &[XAGENT, "--root", &root.display().to_string(), "--check"],
    )
    .output()
    .unwrap();
    assert!(
        o.status.success(),
        "the agent's user cannot load the store: {}",
        text(&o)
    );
    let o = as_user(READONLY, "022", &["cat", &privkey.display().to_string()])
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a read-only user read the key: {}",
        text(&o)
    );
}
