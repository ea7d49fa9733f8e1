//! Terminal sessions in a real PTY: paste, `?`/`??`, the history file, what `help` says about
//! the keys, and arrow keys in line mode.
//!
//! Pasting into a terminal session is typing: xsh runs in a real PTY (a tmux pane) with
//! `TERM=xterm`, `putty`, `screen` (the full editor) and `vt100` (clean line mode), and a paste
//! (`tmux paste-buffer`, each `\n` sent as `\r` as terminals do; with and without `-p`, and with
//! bracketed-paste markers sent although nobody asked for them) must run every line in order, read
//! a body to its `.`, drop nothing and add nothing: under the full editor the bytes the session
//! writes are exactly those it writes when the same lines are typed one by one.
//!
//! Needs tmux (a failure under `CI=true` when it is missing, see `tests/common`); no root, no
//! sshd: the pane runs xsh directly.

mod ssh_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh_support::{find, Tmux, DEADLINE, XSH};

/// A CA certificate for the pasted body (valid until 2046, so the reply never changes).
const PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBhjCCASugAwIBAgIUMVFGzxDNx8MJpwwMhCR5n/Je6yswCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNUGFzdGUgVGVzdCBDQTAeFw0yNjEyMDExMTE1MTRaFw00NjEx
MjYxMTE1MTRaMBgxFjAUBgNVBAMMDVBhc3RlIFRlc3QgQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQjDetNWVmTG5GdOm8oNA0/3ENpix6C8FavOF5v/8N/hNQa
xXa135oSZLXhKs+BABfCtwRT/T59q3IRhzzeq9xzo1MwUTAdBgNVHQ4EFgQUwVsY
kLmf2/YmT6lbokNxgZDlcT0wHwYDVR0jBBgwFoAUwVsYkLmf2/YmT6lbokNxgZDl
cT0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAr+I+Xedt8MrC
YhozT/LWHM3LPfk+BJmSXI9UrcIU8GwCIQDSgloAkqAEcj3/YSRbtZFu1xoyiWk1
7GNcWJN0VT2P2A==
-----END CERTIFICATE-----
";

const BANNER_END: &[u8] = b"*r Login successful\r\n\r\nOK\r\n";

fn push() -> String {
    "xConfiguration SIP TLS Port: 5071\n\
     xConfiguration SystemUnit Name: \"edge-1\"\n\
     xConfiguration Shell IdleTimeout: 600\n"
        .to_string()
}

fn pem_paste() -> String {
    format!(
        "xCommand Security Certificates CA Add\n{PEM}.\nxConfiguration SystemUnit Description: \"after the PEM\"\n"
    )
}

/// How many requests a paste holds (each ends in one terminator line).
fn requests(paste: &str) -> usize {
    if paste.contains("BEGIN") {
        2
    } else {
        paste.lines().count()
    }
}

/// One xsh in a tmux pane, its output logged byte for byte from its first byte on.
struct Pane {
    tm: Tmux,
    log: PathBuf,
    root: PathBuf,
}

impl Pane {
    fn start(dir: &Path, name: &str, term: &str) -> Pane {
        let root = dir.join(format!("root-{name}"));
        let log = dir.join(format!("{name}.log"));
        let go = dir.join(format!("{name}.go"));
        // The pane waits for `go`, so the log is in place before xsh writes its banner.
        let script = format!(
            "while [ ! -e '{go}' ]; do sleep 0.02; done; exec env TERM={term} '{XSH}' --root '{root}'",
            go = go.display(),
            root = root.display()
        );
        let argv = ["sh".to_string(), "-c".to_string(), script];
        let tm = Tmux::start(dir, name, 160, 100, &argv);
        tm.log_output(&log);
        std::fs::write(&go, b"").expect("go");
        let p = Pane { tm, log, root };
        p.wait_bytes("banner", |b| find(b, BANNER_END).is_some());
        p
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.log).unwrap_or_default()
    }

    fn wait_bytes(&self, what: &str, mut f: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
        let start = Instant::now();
        loop {
            let b = self.bytes();
            if f(&b) {
                return b;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "gave up waiting for {what}; output: {:?}",
                String::from_utf8_lossy(&b)
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// What followed the banner.
    fn after_banner(&self) -> Vec<u8> {
        let b = self.bytes();
        let at = find(&b, BANNER_END).expect("banner") + BANNER_END.len();
        b[at..].to_vec()
    }

    /// Waits until `n` replies ended (terminator lines after the banner).
    fn wait_replies(&self, n: usize) -> Vec<u8> {
        self.wait_bytes(&format!("{n} replies"), |b| {
            find(b, BANNER_END).is_some_and(|at| terminators(&b[at + BANNER_END.len()..]) >= n)
        });
        self.after_banner()
    }

    fn config(&self, path: &str) -> String {
        let out = std::process::Command::new(XSH)
            .arg("--root")
            .arg(&self.root)
            .arg("-c")
            .arg(format!("xConfiguration {path}"))
            .output()
            .expect("xsh -c");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn terminators(b: &[u8]) -> usize {
    String::from_utf8_lossy(b)
        .split("\r\n")
        // In line mode the kernel echoes an unasked end-of-paste marker (as `^[[201~`) when it
        // arrives, in front of the reply that is being written.
        .map(|l| l.trim_start_matches("^[[201~"))
        .filter(|l| matches!(*l, "OK" | "ERROR"))
        .count()
}

/// Types `text` line by line, each line sent with Enter once the previous reply has ended.
fn type_lines(p: &Pane, text: &str) {
    let mut done = 0;
    let mut in_body = false;
    for line in text.lines() {
        p.tm.type_text(line);
        p.tm.keys(&["Enter"]);
        if line.starts_with("xCommand Security Certificates CA Add") {
            in_body = true;
            continue;
        }
        if in_body {
            in_body = line != ".";
            if in_body {
                continue;
            }
        }
        done += 1;
        p.wait_replies(done);
    }
}

/// How the paste reaches the pane.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// `paste-buffer`: raw bytes (xsh never asks for bracketed paste).
    Plain,
    /// `paste-buffer -p`: brackets only if the program asked; xsh does not.
    AskedBrackets,
    /// `ESC[200~ … ESC[201~` sent although not asked for (a terminal that always brackets).
    ForcedBrackets,
}

fn paste(p: &Pane, text: &str, way: Way) {
    match way {
        Way::Plain => p.tm.paste(text, false),
        Way::AskedBrackets => p.tm.paste(text, true),
        Way::ForcedBrackets => {
            let mut b = b"\x1b[200~".to_vec();
            b.extend(text.replace('\n', "\r").bytes());
            b.extend_from_slice(b"\x1b[201~");
            p.tm.bytes(&b);
        }
    }
}

fn screen_after_banner(p: &Pane) -> String {
    let s = p.tm.screen();
    let at = s
        .find("*r Login successful\n\nOK\n")
        .map(|i| i + "*r Login successful\n\nOK\n".len())
        .unwrap_or(0);
    s[at..].trim_end().to_string()
}

fn tmux_or_skip() -> bool {
    ssh_support::common::require_tool("tmux", "-V", "tmux")
}

/// Under the full editor a paste writes exactly the bytes typing writes, whatever the terminal
/// type and however the paste arrives; the effect is in the store.
#[test]
fn paste_in_the_full_editor_is_typing() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (what, text) in [("push", push()), ("pem", pem_paste())] {
        let mut screens = Vec::new();
        for term in ["xterm", "putty", "screen"] {
            let typed = Pane::start(dir.path(), &format!("{what}-{term}-typed"), term);
            type_lines(&typed, &text);
            let want = typed.wait_replies(requests(&text));
            for way in [Way::Plain, Way::AskedBrackets, Way::ForcedBrackets] {
                let name = format!("{what}-{term}-{way:?}");
                let p = Pane::start(dir.path(), &name, term);
                paste(&p, &text, way);
                let got = p.wait_replies(requests(&text));
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "{name}: the paste wrote other bytes than typing"
                );
                assert!(
                    !String::from_utf8_lossy(&got).contains("ERROR"),
                    "{name}: {}",
                    String::from_utf8_lossy(&got)
                );
                if what == "push" {
                    assert!(p.config("SystemUnit Name").contains("\"edge-1\""), "{name}");
                    assert!(p.config("Shell IdleTimeout").contains("\"600\""), "{name}");
                } else {
                    assert!(
                        p.config("SystemUnit Description")
                            .contains("\"after the PEM\""),
                        "{name}"
                    );
                }
                screens.push((name, screen_after_banner(&p)));
            }
        }
        let (_, first) = &screens[0];
        for (name, s) in &screens {
            assert_eq!(s, first, "{name}: the screen differs");
        }
        insta::assert_snapshot!(format!("paste_full_editor_{what}"), first);
    }
}

/// Clean line mode (`TERM=vt100`): the kernel echoes the paste as it arrives, and every line
/// still runs in order, the body read to its `.`, with no escape byte written; unasked
/// bracketed-paste markers are dropped from the lines.
#[test]
fn paste_in_line_mode_runs_every_line_in_order() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (what, text) in [("push", push()), ("pem", pem_paste())] {
        for way in [Way::Plain, Way::AskedBrackets, Way::ForcedBrackets] {
            let name = format!("{what}-vt100-{way:?}");
            let p = Pane::start(dir.path(), &name, "vt100");
            paste(&p, &text, way);
            let got = p.wait_replies(requests(&text));
            let shown = String::from_utf8_lossy(&got).into_owned();
            assert!(!got.contains(&0x1b), "{name}: escape byte in {shown:?}");
            assert!(!shown.contains("ERROR"), "{name}: {shown}");
            if what == "push" {
                assert!(p.config("SystemUnit Name").contains("\"edge-1\""), "{name}");
                assert!(p.config("Shell IdleTimeout").contains("\"600\""), "{name}");
            } else {
                assert!(shown.contains("Subject: \"CN=Paste Test CA\""), "{shown}");
                assert!(
                    p.config("SystemUnit Description")
                        .contains("\"after the PEM\""),
                    "{name}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `?` and `??` typed at a terminal

const TICKETS_HELP: &str = "*h xConfiguration SIP TLS SessionTickets Mode: <On/Off>";
const TICKETS_DETAILS: &str = "*h     default \"Off\": On: each TLS 1.3 handshake";

/// In the full editor `?` shows help for the words before the cursor and gives the line back as
/// it was (cursor included); a second `?` right after shows the details (`??`); any other key
/// in between makes the next `?` a first one again.
#[test]
fn question_marks_in_the_full_editor() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for term in ["xterm", "putty", "screen"] {
        let p = Pane::start(dir.path(), &format!("qm-{term}"), term);
        p.tm.type_text("xConfiguration SIP TLS SessionTickets ");
        p.tm.type_text("?");
        p.tm.wait_count(TICKETS_HELP, 1);
        p.tm.type_text("?");
        p.tm.wait_count(TICKETS_DETAILS, 1);
        // The line is still there: finish it and run it.
        p.tm.type_text("Mode");
        p.tm.keys(&["Enter"]);
        p.wait_replies(3);
        let s =
            p.tm.wait_count("*c xConfiguration SIP TLS SessionTickets Mode: \"Off\"", 1);
        assert_eq!(s.matches(TICKETS_DETAILS).count(), 1, "{term}:\n{s}");
        insta::assert_snapshot!("question_marks_full_editor", screen_after_banner(&p));

        // `?` with the cursor inside the line: help for the words before it, the line kept.
        p.tm.type_text("xConfiguration SIP TLS Port");
        p.tm.keys(&["Left", "Left", "Left", "Left"]);
        p.tm.type_text("?");
        p.tm.wait_count("*h xConfiguration SIP TLS HandshakeTimeout: <1..300>", 1);
        // A key in between: the next `?` is a first one (help, not details).
        p.tm.keys(&["Right"]);
        p.tm.keys(&["Left"]);
        p.tm.type_text("?");
        p.tm.wait_count("*h xConfiguration SIP TLS HandshakeTimeout: <1..300>", 2);
        p.tm.keys(&["Enter"]);
        let s =
            p.tm.wait_count("*c xConfiguration SIP TLS Port: \"5061\"", 1);
        assert_eq!(
            s.matches("default \"10\": Seconds a TLS client").count(),
            0,
            "{term}: details shown for a first `?`:\n{s}"
        );
        assert!(!s.contains("ERROR"), "{term}:\n{s}");
    }
}

/// In clean line mode (`TERM=vt100`) `?` and `??` end a line: help, then the details.
#[test]
fn question_marks_in_line_mode() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Pane::start(dir.path(), "qm-vt100", "vt100");
    p.tm.type_text("xConfiguration SIP TLS SessionTickets ?");
    p.tm.keys(&["Enter"]);
    p.wait_replies(1);
    p.tm.type_text("xConfiguration SIP TLS SessionTickets ??");
    p.tm.keys(&["Enter"]);
    let got = p.wait_replies(2);
    let shown = String::from_utf8_lossy(&got);
    assert_eq!(shown.matches(TICKETS_HELP).count(), 2, "{shown}");
    assert_eq!(shown.matches(TICKETS_DETAILS).count(), 1, "{shown}");
    assert!(!got.contains(&0x1b), "{shown:?}");
}

// ---------------------------------------------------------------------------------------------
// history and line mode

/// Every line is in `ROOT/history/<uid>/history.txt` as soon as it ran, and stays there when the
/// terminal goes away without a goodbye (the pane is killed: the session gets a hangup).
#[test]
fn history_is_appended_after_every_command() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Pane::start(dir.path(), "hist", "xterm");
    let lines = ["xstatus SystemUnit Product", "xConfiguration SIP TLS Port"];
    let read = |root: &Path| -> String {
        let hist = root.join("history");
        std::fs::read_dir(&hist)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        std::fs::read_to_string(e.path().join("history.txt")).unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    for (i, l) in lines.iter().enumerate() {
        p.tm.type_text(l);
        p.tm.keys(&["Enter"]);
        p.wait_replies(i + 1);
        let h = read(&p.root);
        assert!(
            lines[..=i].iter().all(|l| h.contains(l)),
            "after line {}: {h:?}",
            i + 1
        );
    }
    let root = p.root.clone();
    drop(p);
    let h = read(&root);
    assert!(lines.iter().all(|l| h.contains(l)), "{h:?}");
}

/// `help` names the keys the terminal has: the full editor's, or line mode's (no Tab); an arrow
/// key typed in line mode gets a plain-words error, never a Rust escape.
#[test]
fn help_names_the_keys_and_line_mode_explains_arrow_keys() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Pane::start(dir.path(), "keys-xterm", "xterm");
    p.tm.type_text("help");
    p.tm.keys(&["Enter"]);
    let s = p.tm.wait_count("*h Keys: Tab completes", 1);
    assert!(!s.contains("Line mode"), "{s}");

    let p = Pane::start(dir.path(), "keys-vt100", "vt100");
    p.tm.type_text("help");
    p.tm.keys(&["Enter"]);
    let got = p.wait_replies(1);
    let shown = String::from_utf8_lossy(&got).into_owned();
    assert!(shown.contains("*h Line mode (TERM=vt100): "), "{shown}");
    assert!(!shown.contains("Tab completes"), "{shown}");
    p.tm.type_text("xstatus SystemUnit");
    p.tm.keys(&["Up"]);
    p.tm.keys(&["Enter"]);
    let got = p.wait_replies(2);
    let shown = String::from_utf8_lossy(&got).into_owned();
    assert!(
        shown.contains("arrow and editing keys do not work in line mode"),
        "{shown}"
    );
    assert!(!shown.contains("\\u{"), "{shown}");
    assert_eq!(
        shown
            .lines()
            .filter(|l| l.contains("arrow and editing keys"))
            .count(),
        1,
        "{shown}"
    );
}
