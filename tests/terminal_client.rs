//! A scripted terminal client behaving byte for byte like the SSH automation libraries for network
//! devices of xapi.md "What clients in the field actually do", over a real sshd: a PTY with
//! `TERM=vt100`, `\r\n` sent the instant the channel opens, the banner required at once, then per
//! command `<cmd>\r\n`, a wait for the exact echo, a read up to the first bare `OK` / `ERROR` /
//! `Command not recognized.` line, no escape byte tolerated anywhere, and `exit\r\n` to leave.

mod ssh_support;

use std::time::Instant;

use ssh_support::{find, Pty, SshSession, ADMIN};

const ESC: u8 = 0x1b;

struct Client {
    s: SshSession,
    pos: usize,
    /// An echo of an empty line still due. The kernel echoes input when its line discipline
    /// takes it from the PTY's buffer, which a worker does, possibly in pieces: the `\n` of a
    /// command's `\r\n` (and the `\r\n` sent before the banner) may be echoed after the shell
    /// answered, so the next command's output starts with that `\r\n`. The clients find their
    /// echo by searching for it.
    pending_echo: bool,
}

/// Lines as such clients see them: split on `\n`, a trailing `\r` removed.
fn split_lines(b: &[u8]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = b[start..].iter().position(|&x| x == b'\n') {
        let line = String::from_utf8_lossy(&b[start..start + i])
            .trim_end_matches('\r')
            .to_string();
        start += i + 1;
        out.push((start, line));
    }
    out
}

fn is_terminator(l: &str) -> bool {
    l == "OK" || l == "ERROR" || l == "Command not recognized."
}

impl Client {
    /// One command: write it, wait for its exact echo, read to the first terminator line.
    /// Returns the reply lines (without the echo) and the terminator.
    fn command(&mut self, cmd: &str) -> (Vec<String>, String) {
        self.s.send(format!("{cmd}\r\n").as_bytes());
        let from = self.pos;
        let echo_end = self.s.wait_contains(from, cmd.as_bytes());
        let (end, lines) = self.s.wait_for(&format!("terminator of {cmd:?}"), |b| {
            let mut lines = Vec::new();
            for (end, l) in split_lines(&b[echo_end..]) {
                if is_terminator(&l) {
                    lines.push(l);
                    return Some((echo_end + end, lines));
                }
                lines.push(l);
            }
            None
        });
        let out = self.s.output();
        let seen = &out[from..end];
        assert!(
            !seen.contains(&ESC),
            "escape byte in the echo or reply of {cmd:?}: {:?}",
            String::from_utf8_lossy(seen)
        );
        let from = if std::mem::take(&mut self.pending_echo) && out[from..].starts_with(b"\r\n") {
            from + 2
        } else {
            from
        };
        // The echo is exactly the typed text (the kernel's echo in clean line mode).
        assert_eq!(
            &out[from..echo_end],
            cmd.as_bytes(),
            "echo of {cmd:?}: {:?}",
            String::from_utf8_lossy(&out[from..end])
        );
        self.pos = end;
        let mut lines = lines;
        let term = lines.pop().expect("terminator");
        // The first line holds the rest of the echoed line: nothing.
        assert_eq!(
            lines.first().map(String::as_str),
            Some(""),
            "{cmd:?}: {lines:?}"
        );
        lines.remove(0);
        // The kernel echoes the `\n` of `\r\n` as a second, empty line (ICRNL made the `\r`
        // the end of the command line); the shell prints nothing for it.
        if lines.first().is_some_and(String::is_empty) {
            lines.remove(0);
        } else {
            self.pending_echo = true;
        }
        assert!(
            lines.iter().all(|l| !l.is_empty()),
            "{cmd:?}: blank lines in the reply: {lines:?}"
        );
        (lines, term)
    }
}

#[test]
fn terminal_client_vt100_exact_echo_terminators_no_escapes() {
    let srv = sshd_or_skip!();
    let started = Instant::now();
    let mut s = srv.session(ADMIN, Pty::Term("vt100"), None);
    // The instant the channel opens: an empty line, before any banner.
    s.send(b"\r\n");
    let banner_end = s.wait_contains(0, b"*r Login successful\r\n\r\nOK\r\n");
    println!(
        "banner complete after {:?} (connect included)",
        started.elapsed()
    );
    let out = s.output();
    assert!(
        !out.contains(&ESC),
        "escape byte before or in the banner: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(find(&out, b"Welcome to ").is_some());
    let mut c = Client {
        s,
        pos: banner_end,
        pending_echo: true,
    };

    let (lines, term) = c.command("xstatus SystemUnit");
    assert_eq!(term, "OK");
    assert_eq!(
        lines.first().map(String::as_str),
        Some("*s SystemUnit: /"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("*s/end"),
        "OK comes after the block"
    );
    assert!(
        lines.iter().any(|l| l == "    Product: \"xsh\""),
        "{lines:?}"
    );

    let (lines, term) = c.command("xConfiguration SIP TLS Port: 5099");
    assert_eq!((lines.as_slice(), term.as_str()), (&[][..], "OK"));

    let (lines, term) = c.command("xConfiguration SIP TLS Port");
    assert_eq!(term, "OK");
    assert_eq!(lines, ["*c xConfiguration SIP TLS Port: \"5099\""]);

    let (lines, term) = c.command("xConfiguration SIP TLS Port: 0");
    assert_eq!(term, "ERROR");
    assert!(
        lines.iter().any(|l| l.contains("Illegal value")),
        "{lines:?}"
    );

    let (_, term) = c.command("frobnicate now");
    assert_eq!(term, "Command not recognized.");

    let (lines, term) = c.command("xCommand Security Certificates CA List");
    assert_eq!(term, "OK");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("*r/end"),
        "{lines:?}"
    );

    let (lines, term) = c.command("xConfiguration SIP TLS ?");
    assert_eq!(term, "OK");
    assert!(lines.iter().all(|l| l.starts_with("*h ")), "{lines:?}");

    let (lines, term) = c.command("xstatus SystemUnit Product | resultId=\"t1\"");
    assert_eq!(term, "OK");
    assert_eq!(
        lines.first().map(String::as_str),
        Some("** resultId: \"t1\""),
        "{lines:?}"
    );

    // Leave; nothing was printed after any terminator but the next echo (no prompt).
    c.s.send(b"exit\r\n");
    let st = c.s.wait_exit();
    assert_eq!(st.code(), Some(1), "two requests failed");
    let out = c.s.output();
    let tail = String::from_utf8_lossy(&out[c.pos..]).into_owned();
    assert!(tail.starts_with("exit\r\n"), "{tail:?}");
    assert!(!tail.contains("OK") && !out.contains(&ESC), "{tail:?}");
}
