//! xsh behind a real OpenSSH sshd (the shipped `contrib/sshd_config.d/xsh.conf`): PTY sessions
//! driven through tmux and through the client's stdin, sessions without a PTY (`ssh host < file`),
//! exec (`ssh host 'xstatus ...'`), feedback between two sessions, the two roles, and the limits
//! (garbage input, a dropped connection mid-push, the idle timeout).
//!
//! Runs as root (CI does); otherwise each test prints SKIP. No timing assertions except a generous
//! bound on feedback latency, which is measured and printed.

mod ssh_support;

use std::time::{Duration, Instant};

use ssh_support::{find, Pty, SshSession, Tmux, ADMIN, DEADLINE, READONLY};

const ESC: u8 = 0x1b;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Terminators of a no-PTY stream: lines that are exactly `OK`, `ERROR` or (for an unknown
/// top-level word, grammar/README.md E020) `Command not recognized.`.
fn terminators(out: &[u8]) -> Vec<String> {
    ssh_support::lines(out)
        .into_iter()
        .filter(|l| is_terminator(l))
        .collect()
}

fn is_terminator(l: &str) -> bool {
    l == "OK" || l == "ERROR" || l == "Command not recognized."
}

// ---------------------------------------------------------------------------------------------
// exec and no-PTY sessions

#[test]
fn exec_runs_one_command_with_exit_status() {
    let srv = sshd_or_skip!();
    let ok = srv.exec(ADMIN, Some("xstatus SystemUnit"), b"");
    let out = ok.text();
    assert!(ok.status.success(), "exit {:?}: {out}", ok.status);
    assert!(
        out.starts_with("*s SystemUnit: /\n"),
        "no banner for exec: {out:?}"
    );
    assert!(out.ends_with("*s/end\nOK\n"), "{out:?}");
    assert!(!out.contains('\r') && !ok.stdout.contains(&ESC), "{out:?}");

    let bad = srv.exec(ADMIN, Some("xstatus NoSuchThing"), b"");
    assert_eq!(bad.status.code(), Some(1), "{}", bad.text());
    assert!(bad.text().ends_with("ERROR\n"), "{:?}", bad.text());

    // A set through exec is applied and reported like in a session.
    let set = srv.exec(
        ADMIN,
        Some("xConfiguration SystemUnit Description: \"set over exec\""),
        b"",
    );
    assert!(set.status.success(), "{}", set.text());
    assert_eq!(set.text(), "OK\n");
    assert!(srv
        .local("xconfiguration SystemUnit Description")
        .contains("\"set over exec\""));
}

#[test]
fn exec_of_tsh_or_xsh_is_an_ordinary_session() {
    let srv = sshd_or_skip!();
    for word in ["tsh", "xsh", "/usr/bin/tsh"] {
        let f = srv.exec(ADMIN, Some(word), b"xstatus SystemUnit Product\nbye\n");
        let out = f.text();
        assert!(f.status.success(), "{word}: {out}");
        assert!(out.starts_with("Welcome to "), "{word}: {out:?}");
        assert!(
            out.contains("*r Login successful\n\nOK\n"),
            "{word}: {out:?}"
        );
        assert!(out.ends_with("*s/end\nOK\n"), "{word}: {out:?}");
    }
}

#[test]
fn no_pty_script_gets_plain_replies_and_exit_status() {
    let srv = sshd_or_skip!();
    let script = "xstatus SystemUnit Product\n\
                  xConfiguration SIP TLS Port: 5071\n\
                  xConfiguration SIP TLS Port\n\
                  \n\
                  # a comment\n\
                  xConfiguration SIP TLS Port: 99999\n\
                  xStatus ?\n\
                  nonsense words\n\
                  xCommand Security Certificates CA List\n";
    let f = srv.exec(ADMIN, None, script.as_bytes());
    let out = f.text();
    assert_eq!(
        f.status.code(),
        Some(1),
        "a failed request makes the exit status 1: {out}"
    );
    assert!(!f.stdout.contains(&ESC), "escape codes: {out:?}");
    assert!(!f.stdout.contains(&b'\r'), "\\r without a PTY: {out:?}");
    assert!(!out.contains("xsh>"), "prompt: {out:?}");
    assert!(out.starts_with("Welcome to "), "{out:?}");
    assert!(out.ends_with("\n"), "{out:?}");
    // The banner's OK, then one terminator per request (blank line and comment print nothing).
    let t = terminators(&f.stdout);
    assert_eq!(
        t,
        [
            "OK",
            "OK",
            "OK",
            "OK",
            "ERROR",
            "OK",
            "Command not recognized.",
            "OK"
        ],
        "{out}"
    );
    // Each reply ends with its terminator: nothing follows the last one.
    assert!(out.ends_with("OK\n"), "{out:?}");
    assert!(
        out.contains("*c xConfiguration SIP TLS Port: \"5071\"\nOK\n"),
        "{out}"
    );

    let clean = srv.exec(
        ADMIN,
        None,
        b"xstatus SystemUnit Product\nxConfiguration SIP TLS Port\n",
    );
    assert!(clean.status.success(), "{}", clean.text());
    assert_eq!(terminators(&clean.stdout), ["OK", "OK", "OK"]);
}

// ---------------------------------------------------------------------------------------------
// PTY sessions

/// The full editor as a person meets it: PuTTY-like typing in a tmux pane (TERM=screen).
#[test]
fn pty_editor_in_tmux_completion_help_history_interrupt_backspace() {
    let srv = sshd_or_skip!();
    let tm = Tmux::start(srv.dir.path(), "editor", 160, 60, &srv.pty_argv(ADMIN));
    let s = tm.wait_screen("banner", |s| s.contains("*r Login successful"));
    assert!(s.contains("Welcome to "), "{s}");
    // No prompt by default: the screen ends with the banner's OK and an empty line.
    let s = tm.wait_screen("banner OK", |s| s.trim_end().ends_with("OK"));
    assert!(!s.contains("xsh>"), "{s}");

    // Tab completes a path word.
    tm.type_text("xstatus SystemUnit Prod");
    tm.keys(&["Tab"]);
    tm.wait_screen("completion", |s| s.contains("xstatus SystemUnit Product "));
    tm.keys(&["Enter"]);
    tm.wait_count("Product: \"xsh\"", 1);

    // Up brings the last line back.
    tm.keys(&["Up"]);
    tm.wait_count("xstatus SystemUnit Product", 2);
    tm.keys(&["Enter"]);
    tm.wait_count("Product: \"xsh\"", 2);

    // `?` shows help for the words so far and gives the line back for more typing.
    tm.type_text("xConfiguration SIP TLS ?");
    tm.wait_screen("help", |s| {
        s.contains("*h xConfiguration SIP TLS Port: <1..65534>")
    });
    tm.type_text("Port");
    tm.keys(&["Enter"]);
    tm.wait_screen("Port value", |s| {
        s.contains("*c xConfiguration SIP TLS Port: \"5061\"")
    });

    // Ctrl-C throws the line away.
    tm.type_text("xstatus Bogus");
    tm.keys(&["C-c"]);
    tm.type_text("xstatus SystemUnit Name");
    tm.keys(&["Enter"]);
    tm.wait_screen("Name", |s| s.contains("    Name: \""));

    // Backspace as PuTTY sends it (DEL) and as ^H.
    tm.type_text("xstatus SystemUnit Uptimezz");
    tm.bytes(&[0x7f, 0x7f]);
    tm.keys(&["Enter"]);
    tm.wait_screen("Uptime", |s| s.contains("    Uptime: \""));
    tm.type_text("xstatus SystemUnit Rootq");
    tm.bytes(&[0x08]);
    tm.keys(&["Enter"]);
    let s = tm.wait_screen("Root", |s| s.contains("    Root: \""));
    assert!(!s.contains("ERROR"), "an edit went wrong:\n{s}");
    // The interrupted line stays on the screen (as in bash) but never ran: no error anywhere.
    assert!(
        !s.contains("No match"),
        "Ctrl-C did not clear the line:\n{s}"
    );
    tm.type_text("bye");
    tm.keys(&["Enter"]);
}

/// A window narrower than a long help line: the help text arrives whole (wrapped by the
/// terminal) and the line given back can still be edited and sent.
#[test]
fn pty_editor_narrow_window() {
    let srv = sshd_or_skip!();
    let tm = Tmux::start(srv.dir.path(), "narrow", 40, 60, &srv.pty_argv(ADMIN));
    tm.wait_screen("banner", |s| s.contains("*r Login successful"));
    tm.type_text("xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode ?");
    // The help line (79 characters) is wider than the window; the terminal wraps it and it
    // arrives whole (capture-pane -J joins the wrapped rows).
    let help = "*h xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: <On/Off>";
    tm.wait_screen("help", |s| s.contains(help));
    tm.type_text("X");
    tm.bytes(&[0x7f]);
    tm.keys(&["Enter"]);
    let s = tm.wait_screen("value", |s| {
        s.contains("*c xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: \"On\"")
    });
    assert!(!s.contains("ERROR"), "{s}");
}

/// Every line the shell writes reaches a PTY client as `\r\n` (the terminal driver's doing),
/// never `\r\r\n`; input may end in `\r` (PuTTY) or `\r\n` (netmiko).
#[test]
fn pty_line_endings_both_modes() {
    let srv = sshd_or_skip!();
    for (term, enter) in [("xterm", "\r"), ("vt100", "\r\n"), ("vt100", "\r")] {
        let mut s = srv.session(ADMIN, Pty::Term(term), None);
        let at = s.wait_contains(0, b"*r Login successful\r\n\r\nOK\r\n");
        s.send(format!("xstatus SystemUnit Product{enter}").as_bytes());
        let end = s.wait_contains(at, b"*s/end\r\nOK\r\n");
        s.send(format!("xConfiguration SIP TLS Port: 70000{enter}").as_bytes());
        let end2 = s.wait_contains(end, b"ERROR\r\n");
        let out = s.output();
        let shown = text(&out);
        assert!(
            find(&out, b"\r\r\n").is_none(),
            "{term}: \\r\\r\\n in {shown:?}"
        );
        for (i, &b) in out.iter().enumerate() {
            if b == b'\n' {
                assert!(
                    i > 0 && out[i - 1] == b'\r',
                    "{term}: bare \\n at {i}: {shown:?}"
                );
            }
        }
        assert!(
            find(
                &out[at..end],
                b"*s SystemUnit: /\r\n    Product: \"xsh\"\r\n*s/end\r\nOK\r\n"
            )
            .is_some(),
            "{term}: {shown:?}"
        );
        if term == "vt100" {
            // Clean line mode: nothing but the kernel's echo and the reply.
            assert!(!out.contains(&ESC), "{term}: escape codes {shown:?}");
            // The echo, then (for `\r\n`: the kernel echoes the `\n` as a second, empty line,
            // which prints nothing else) the reply.
            let blank = if enter == "\r\n" { "\r\n" } else { "" };
            let want = format!("xConfiguration SIP TLS Port: 70000\r\n{blank}*c xConfiguration SIP TLS Port: error: \"Illegal value\"");
            assert!(
                text(&out[end..end2]).starts_with(&want),
                "{term}: {:?}",
                text(&out[end..end2])
            );
        }
        s.send(format!("exit{enter}").as_bytes());
        let st = s.wait_exit();
        assert!(
            !st.success(),
            "{term}: one request failed, so the exit status is 1"
        );
    }
}
