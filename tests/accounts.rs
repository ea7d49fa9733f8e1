//! Local administrator accounts through the real `xsh` (issue 11 item 2): the product's
//! `xCommand AdminAccountAdd` / `AdminAccountDelete`, this build's `AdminAccountModify` /
//! `AdminAccountList` and `xStatus Administrator Account`; `config/accounts` is 0600 and holds
//! only argon2id hashes; a password never reaches the audit log, `xHistory`, the history file or
//! any output; a read-only Unix role cannot add; bad values get the shell's error codes; the
//! quick start creates `admin` with a one-time password on a terminal only.

#[path = "common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use xsh::accounts::{Accounts, Lockout, LoginError};

const XSH: &str = env!("CARGO_BIN_EXE_xsh");
const SECRET: &str = "Zq7-very-secret-pw";

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir`, as text (lossy), with its path.
fn all_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(all_files(&p));
        } else if t.is_file() {
            let bytes = std::fs::read(&p).unwrap_or_default();
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

#[test]
fn add_list_delete_and_the_file() {
    let d = tempfile::tempdir().unwrap();
    let o = common::xsh_piped(
        d.path(),
        &format!(
            "xCommand AdminAccountAdd Name: \"alice\" Password: \"{SECRET}\" Access: ReadWrite\n\
             xCommand AdminAccountAdd Name: bob Password: {SECRET}x Access: ReadOnly APIAccess: No\n\
             xCommand AdminAccountList\n\
             xStatus Administrator Account 2\n"
        ),
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("AdminAccountId: \"2\""), "{out}");
    for want in [
        "Account 1: /",
        "Name: \"alice\"",
        "Access: \"ReadWrite\"",
        "Name: \"bob\"",
        "Access: \"ReadOnly\"",
        "APIAccess: \"No\"",
        "LockedOut: \"False\"",
        "*s Administrator: /",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let file = d.path().join("config/accounts");
    assert_eq!(mode(&file), 0o600);
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.contains("$argon2id$"), "{stored}");
    assert!(!stored.contains(SECRET), "{stored}");

    // The passwords work (as the web front end will check them), and only those.
    let a = Accounts::open(d.path()).unwrap();
    let rule = Lockout::default();
    assert_eq!(
        a.verify("alice", SECRET, "127.0.0.1", &rule).unwrap().name,
        "alice"
    );
    assert!(matches!(
        a.verify("alice", "not-the-password", "127.0.0.1", &rule),
        Err(LoginError::Wrong)
    ));

    // Delete by number and by name; the list is empty after.
    let o = common::xsh_piped(
        d.path(),
        "xCommand AdminAccountDelete AdminAccountId: 1\n\
         xCommand AdminAccountDelete Name: BOB\n\
         xCommand AdminAccountList\n",
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("Name: \"alice\"") && out.contains("Name: \"bob\""),
        "{out}"
    );
    assert!(!out.contains("Account 1"), "{out}");
    assert!(a.list().unwrap().is_empty());
    // A looser mode set by hand is narrowed at the next read.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = common::xsh_piped(d.path(), "xCommand AdminAccountList\n");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mode(&file), 0o600);
}

#[test]
fn the_password_is_never_kept_or_shown() {
    let d = tempfile::tempdir().unwrap();
    let o = common::xsh_piped(
        d.path(),
        &format!(
            "xCommand AdminAccountAdd Name: carol Password: \"{SECRET}\" Access: ReadOnly\n\
             xCommand AdminAccountModify Name: carol Password: \"{SECRET}2\"\n\
             xCommand AdminAccountAdd Name: dave Password: short7 Access: ReadOnly\n\
             xHistory\n"
        ),
    );
    let out = text(&o);
    // The too-short password is an error, quoted as ***.
    assert!(out.contains("E052") && out.contains("'***'"), "{out}");
    assert!(!out.contains(SECRET) && !out.contains("short7"), "{out}");
    // xHistory shows the changes, passwords as ***.
    assert!(out.contains("Password: *** (via shell)"), "{out}");
    let audit = std::fs::read_to_string(d.path().join("config/audit.log")).unwrap();
    assert!(audit.contains("xCommand AdminAccountAdd"), "{audit}");
    assert!(audit.contains("xCommand AdminAccountModify"), "{audit}");
    for (path, body) in all_files(d.path()) {
        assert!(!body.contains(SECRET), "{path} holds the password");
        assert!(!body.contains("short7"), "{path} holds the password");
    }
}

/// The line editor's history file, written by an interactive session (a terminal from
/// `script`), keeps `Password: ***`.
#[test]
fn the_history_file_masks_passwords() {
    if !common::require_tool("script", "--version", "bsdutils") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let o = Command::new(XSH)
        .arg("--root")
        .arg(&root)
        .args(["-c", "xStatus SystemUnit Name"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let input = format!(
        "xCommand AdminAccountAdd Name: erin Password: \"{SECRET}\" Access: ReadWrite\nbye\n"
    );
    let cmd = format!("{XSH} --root {} --no-banner", root.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    let uid = nix::unistd::getuid().as_raw();
    let hist = root.join(format!("history/{uid}/history.txt"));
    let h = std::fs::read_to_string(&hist).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        h.contains("xCommand AdminAccountAdd Name: erin Password: *** Access: ReadWrite"),
        "{h}\n{out}"
    );
    assert!(!h.contains(SECRET), "{h}");
    assert_eq!(
        Accounts::open(&root).unwrap().list().unwrap().len(),
        1,
        "{out}"
    );
}

#[test]
fn bad_values_get_the_shells_codes() {
    let d = tempfile::tempdir().unwrap();
    for (line, code) in [
        (
            "xCommand AdminAccountAdd Name: x Password: long-enough Access: Everything",
            "E052",
        ),
        (
            "xCommand AdminAccountAdd Name: x Password: long-enough",
            "E051",
        ),
        ("xCommand AdminAccountDelete AdminAccountId: 16", "E052"),
    ] {
        let o = common::xsh_piped(d.path(), &format!("{line}\n"));
        let out = text(&o);
        assert!(!o.status.success(), "{line}: {out}");
        assert!(out.contains("ERROR"), "{line}: {out}");
        assert!(out.contains(code), "{line}: want {code}: {out}");
    }
    // Errors of the accounts themselves: a command failure with a reason.
    let o = common::xsh_piped(
        d.path(),
        "xCommand AdminAccountAdd Name: \"has space\" Password: long-enough Access: ReadOnly\n\
         xCommand AdminAccountDelete Name: nobody\n\
         xCommand AdminAccountDelete\n\
         xCommand AdminAccountModify Name: nobody\n",
    );
    let out = text(&o);
    for want in [
        "may hold only letters, digits",
        "no account is named 'nobody'",
        "give the account by AdminAccountId or by Name",
        "nothing to change",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert_eq!(out.matches("status=Error").count(), 4, "{out}");
    let o = common::xsh_piped(
        d.path(),
        "xCommand AdminAccountAdd Name: twice Password: long-enough Access: ReadOnly\n\
         xCommand AdminAccountAdd Name: TWICE Password: long-enough Access: ReadOnly\n",
    );
    assert!(
        text(&o).contains("an account named 'twice' exists"),
        "{}",
        text(&o)
    );
}

#[test]
fn lockout_is_listed_and_unlocked() {
    let d = tempfile::tempdir().unwrap();
    let o = common::xsh_piped(
        d.path(),
        &format!(
            "xConfiguration Administration Lockout Attempts: 2\n\
             xCommand AdminAccountAdd Name: fay Password: \"{SECRET}\" Access: ReadWrite\n"
        ),
    );
    assert!(o.status.success(), "{}", text(&o));
    let cfg = xsh::store::Store::open(d.path()).unwrap().load().unwrap();
    let rule = xsh::accounts::lockout_from(&cfg);
    assert_eq!(rule.attempts, 2);
    let a = Accounts::open(d.path()).unwrap();
    for _ in 0..2 {
        let _ = a.verify("fay", "wrong-wrong", "192.0.2.1", &rule);
    }
    assert!(matches!(
        a.verify("fay", SECRET, "192.0.2.2", &rule),
        Err(LoginError::LockedOut { .. })
    ));
    // Another process (the shell) sees the lockout in the file, and ends it.
    let o = common::xsh_piped(
        d.path(),
        "xStatus Administrator Account 1 LockedOut\n\
         xCommand AdminAccountModify Name: fay Unlock: True\n\
         xStatus Administrator Account 1 LockedOut\n",
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let first = out
        .find("LockedOut: \"True\"")
        .unwrap_or_else(|| panic!("{out}"));
    let after = out[first..].find("LockedOut: \"False\"");
    assert!(after.is_some(), "{out}");
    // A fresh handle: the file no longer holds the lockout.
    let b = Accounts::open(d.path()).unwrap();
    assert!(b.verify("fay", SECRET, "192.0.2.3", &rule).is_ok());
}

#[test]
fn a_read_only_role_cannot_add() {
    if !common::require_root("runs xsh as the user nobody, outside the admin group") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = d.path().join("root");
    let o = common::xsh_piped(
        &root,
        &format!("xCommand AdminAccountAdd Name: gus Password: \"{SECRET}\" Access: ReadWrite\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(root.join("config/accounts")).unwrap();
    let mut child = Command::new("setpriv")
        .args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "--",
        ])
        .arg(XSH)
        .arg("--root")
        .arg(&root)
        .arg("--no-banner")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(
                b"xCommand AdminAccountAdd Name: mallory Password: long-enough Access: ReadWrite\n\
                  xCommand AdminAccountDelete Name: gus\n",
            )
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert_eq!(out.matches("read-only role").count(), 2, "{out}");
    assert_eq!(
        std::fs::read(root.join("config/accounts")).unwrap(),
        before,
        "nothing changed"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A root whose agent listens on free ports (the quick start starts one).
fn quick_root(d: &Path) -> std::path::PathBuf {
    let root = d.join("xsh-root");
    let o = Command::new(XSH)
        .arg("--root")
        .arg(&root)
        .arg("-c")
        .arg(format!(
            "xConfiguration SIP TLS Port: {}\nxConfiguration Tunnel Port: {}",
            free_port(),
            free_port()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    root
}

#[test]
fn quickstart_piped_prints_no_password() {
    let d = tempfile::tempdir().unwrap();
    let root = quick_root(d.path());
    let o = Command::new(XSH)
        .arg("--quickstart")
        .arg(&root)
        .args(["-c", "xCommand AdminAccountList"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("create one with: xCommand AdminAccountAdd"),
        "{out}"
    );
    assert!(!out.contains("one-time password"), "{out}");
    assert!(Accounts::open(&root).unwrap().list().unwrap().is_empty());
}

#[test]
fn quickstart_on_a_terminal_prints_the_admin_password_once() {
    if !common::require_tool("script", "--version", "bsdutils") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = quick_root(d.path());
    let run = || {
        let cmd = format!(
            "{XSH} --quickstart {} -c 'xCommand AdminAccountList'",
            root.display()
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .output()
            .unwrap();
        text(&o)
    };
    let first = run();
    let at = first
        .find("one-time password ")
        .unwrap_or_else(|| panic!("{first}"));
    let pw: String = first[at + "one-time password ".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    assert!(pw.len() >= 16, "{pw:?}: {first}");
    let a = Accounts::open(&root).unwrap();
    let acc = a
        .verify("admin", &pw, "127.0.0.1", &Lockout::default())
        .unwrap();
    assert_eq!(acc.access, xsh::accounts::Access::ReadWrite);
    // Printed once: the next start has an account and says nothing of a password.
    let second = run();
    assert!(
        !second.contains(&pw) && !second.contains("one-time"),
        "{second}"
    );
    // Kept nowhere in the root.
    for (path, body) in all_files(&root) {
        assert!(!body.contains(&pw), "{path} holds the one-time password");
    }
}
