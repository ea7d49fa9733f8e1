//! `Shell IdleTimeout` counts every line as input, body lines included: an admin pasting or typing
//! a long certificate body slowly is not cut off, and a silent session still ends.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn body_lines_keep_the_session_alive_and_silence_ends_it() {
    let exe = env!("CARGO_BIN_EXE_xsh");
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(exe)
        .arg("--root")
        .arg(dir.path())
        .args(["-c", "xConfiguration Shell IdleTimeout: 3"])
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = Command::new(exe)
        .arg("--root")
        .arg(dir.path())
        .arg("--no-banner")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A body that takes longer than the timeout to arrive, one line every half second.
    stdin
        .write_all(b"xCommand Security Certificates CA Add\n")
        .unwrap();
    for _ in 0..9 {
        std::thread::sleep(Duration::from_millis(500));
        stdin.write_all(b"not a certificate\n").unwrap();
    }
    stdin.write_all(b".\nxStatus SystemUnit Product\n").unwrap();
    // Then silence: the watchdog ends the session, keeping stdin open.
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    assert!(
        out.contains("CAAddResult") || out.contains("Result (status="),
        "{out}"
    );
    assert!(
        out.contains("Product: \"xsh\""),
        "the session ended during the body:\n{out}"
    );
    assert!(out.contains("without input (Shell IdleTimeout)"), "{out}");
    assert!(status.success(), "{out}");
}
