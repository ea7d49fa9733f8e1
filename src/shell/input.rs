//! Reading requests from a byte stream: bounded lines (`\n` or `\r\n`), multi-line bodies ending
//! in a `.` line, `{N} ` length-prefixed requests, and knowing which lines are already buffered
//! (the group-commit batch). No line can make the shell allocate more than the limits.

use std::io::{self, BufRead};

use super::Incoming;
use crate::error::{Code, ShellError};
use crate::parse::lex::{check_bytes, MAX_LINE};
use crate::parse::{parse_line, Action, Request};
use crate::schema::{schema, BodyKind};

/// Largest multi-line or length-prefixed body, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// One raw line, or a line that was too long (its bytes were discarded up to the newline).
#[derive(Debug, PartialEq, Eq)]
pub enum RawLine {
    Line(Vec<u8>),
    TooLong(usize),
}

/// A request reader over any buffered byte stream.
pub struct Source<R: BufRead> {
    r: R,
    /// Unix seconds of the last line read, for the idle timeout (body lines count as input).
    activity: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl<R: BufRead> Source<R> {
    pub fn new(r: R) -> Self {
        Source { r, activity: None }
    }

    /// Records the time of every line read into `clock`.
    pub fn track_activity(&mut self, clock: std::sync::Arc<std::sync::atomic::AtomicU64>) {
        self.activity = Some(clock);
    }

    /// Whether a complete line is already buffered (so reading it will not block).
    pub fn has_buffered_line(&self) -> bool
    where
        R: Buffered,
    {
        self.r.buffered().contains(&b'\n')
    }

    /// Reads one line without its `\n` / `\r\n`, bounded by [`MAX_LINE`]. `None` at EOF.
    pub fn raw_line(&mut self) -> io::Result<Option<RawLine>> {
        let mut line = Vec::new();
        let mut total = 0usize;
        let mut saw_any = false;
        loop {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                if !saw_any {
                    return Ok(None);
                }
                break;
            }
            saw_any = true;
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            total += chunk.len();
            if total <= MAX_LINE + 1 {
                line.extend_from_slice(chunk);
            }
            let used = done.unwrap_or(buf.len());
            self.r.consume(used);
            if done.is_some() {
                break;
            }
        }
        if let Some(clock) = &self.activity {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            clock.store(now, std::sync::atomic::Ordering::Relaxed);
        }
        if line.last() == Some(&b'\r') {
            line.pop();
            total = total.saturating_sub(1);
        }
        // Bracketed-paste markers are never asked for; a terminal that sends them anyway (at
        // the ends of a paste) must not turn the pasted lines into errors.
        for marker in [&b"\x1b[200~"[..], b"\x1b[201~"] {
            while let Some(at) = line.windows(marker.len()).position(|w| w == marker) {
                line.drain(at..at + marker.len());
                total = total.saturating_sub(marker.len());
            }
        }
        if total > MAX_LINE {
            return Ok(Some(RawLine::TooLong(total)));
        }
        Ok(Some(RawLine::Line(line)))
    }

    /// Reads exactly `n` bytes (a length-prefixed request).
    fn exact(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        let mut v = vec![0u8; n];
        match self.r.read_exact(&mut v) {
            Ok(()) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the next request with its body. `None` at EOF.
    pub fn next_request(&mut self) -> io::Result<Option<Incoming>> {
        let raw = match self.raw_line()? {
            None => return Ok(None),
            Some(RawLine::TooLong(n)) => {
                return Ok(Some(failed(
                    ShellError::new(
                        Code::LineTooLong,
                        MAX_LINE + 1,
                        format!("line is {n} bytes long"),
                    )
                    .expected(format!("at most {MAX_LINE} bytes")),
                )))
            }
            Some(RawLine::Line(l)) => l,
        };
        if let Some(n) = length_prefix(&raw) {
            return self.length_prefixed(n).map(Some);
        }
        let text = match check_bytes(&raw) {
            Ok(t) => t.to_string(),
            Err(e) => return Ok(Some(failed(editing_key(&raw).unwrap_or(e)))),
        };
        let mut inc = parse_text_line(&text);
        if needs_body(&inc) {
            match self.body()? {
                Ok(b) => inc.body = Some(b),
                Err(e) => {
                    inc = Incoming {
                        result_id: tag_of(&inc),
                        parsed: Err(e),
                        body: None,
                    }
                }
            }
        }
        Ok(Some(inc))
    }

    fn length_prefixed(&mut self, n: usize) -> io::Result<Incoming> {
        if n > MAX_BODY + MAX_LINE {
            // Refuse at once and read nothing more for it: discarding N bytes would let one
            // garbage line swallow the rest of the session; what follows is read as lines.
            return Ok(failed(
                ShellError::new(
                    Code::BadLengthPrefix,
                    1,
                    format!("length prefix {{{n}}} exceeds the limit"),
                )
                .expected(format!("at most {} bytes", MAX_BODY + MAX_LINE)),
            ));
        }
        let Some(bytes) = self.exact(n)? else {
            return Ok(failed(
                ShellError::new(
                    Code::BadLengthPrefix,
                    1,
                    format!("stream ended before the {n} bytes announced by {{{n}}}"),
                )
                .expected(format!("{n} bytes: <command line>\\n<body>\\n")),
            ));
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                return Ok(failed(
                    ShellError::new(
                        Code::InvalidUtf8,
                        e.valid_up_to() + 1,
                        "invalid utf-8 in length-prefixed request",
                    )
                    .expected("utf-8 text"),
                ))
            }
        };
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        let first = first.trim_end_matches('\r');
        if let Err(e) = check_bytes(first.as_bytes()) {
            return Ok(failed(e));
        }
        let mut inc = parse_text_line(first);
        let body = rest
            .strip_suffix('\n')
            .unwrap_or(rest)
            .replace("\r\n", "\n");
        if inc.parsed.is_ok() && (!body.is_empty() || needs_body(&inc)) {
            inc.body = Some(body);
        }
        Ok(inc)
    }

    /// After a refused body line: discards the rest of the body up to its `.` line, so no body
    /// line is ever read as a request of its own.
    fn skip_body(&mut self) -> io::Result<()> {
        while let Some(l) = self.raw_line()? {
            if matches!(&l, RawLine::Line(b) if b == b".") {
                break;
            }
        }
        Ok(())
    }

    /// Body lines up to a line holding only `.`.
    fn body(&mut self) -> io::Result<Result<String, ShellError>> {
        let mut body = String::new();
        loop {
            match self.raw_line()? {
                None => {
                    return Ok(Err(ShellError::new(
                        Code::BodyUnterminated,
                        1,
                        "input ended inside a multi-line body",
                    )
                    .expected("a line holding only '.' after the body")))
                }
                Some(RawLine::TooLong(n)) => {
                    self.skip_body()?;
                    return Ok(Err(ShellError::new(
                        Code::LineTooLong,
                        MAX_LINE + 1,
                        format!("body line is {n} bytes long"),
                    )
                    .expected(format!("at most {MAX_LINE} bytes per line"))));
                }
                Some(RawLine::Line(l)) => {
                    if l == b"." {
                        return Ok(Ok(body));
                    }
                    let t = match check_bytes(&l) {
                        Ok(t) => t,
                        Err(e) => {
                            self.skip_body()?;
                            return Ok(Err(e));
                        }
                    };
                    if body.len() + t.len() > MAX_BODY {
                        self.skip_body()?;
                        return Ok(Err(ShellError::new(
                            Code::BadLengthPrefix,
                            1,
                            "body is too large",
                        )
                        .expected(format!("at most {MAX_BODY} bytes"))));
                    }
                    body.push_str(t);
                    body.push('\n');
                }
            }
        }
    }
}

/// The error for a line holding the escape sequence of an arrow or editing key (`ESC [ A`,
/// `ESC O D`, ...): a terminal in line mode sends them into the line, where they mean nothing.
pub fn editing_key(raw: &[u8]) -> Option<ShellError> {
    let at = raw
        .windows(2)
        .position(|w| w[0] == 0x1b && matches!(w[1], b'[' | b'O'))?;
    let col = String::from_utf8_lossy(&raw[..at]).chars().count() + 1;
    Some(
        ShellError::new(
            Code::ControlChar,
            col,
            "arrow and editing keys do not work in line mode",
        )
        .expected("the line typed again without them (Tab, arrows and history need the full editor: TERM=xterm)"),
    )
}

/// Access to a reader's unread buffer.
pub trait Buffered {
    fn buffered(&self) -> &[u8];
}

impl<T> Buffered for io::BufReader<T> {
    fn buffered(&self) -> &[u8] {
        self.buffer()
    }
}

impl Buffered for &[u8] {
    fn buffered(&self) -> &[u8] {
        self
    }
}

fn failed(e: ShellError) -> Incoming {
    Incoming {
        parsed: Err(e),
        body: None,
        result_id: None,
    }
}

fn tag_of(inc: &Incoming) -> Option<String> {
    inc.parsed.as_ref().ok().and_then(|r| r.result_id.clone())
}

/// `{N}` or `{N} ` alone on a line.
fn length_prefix(raw: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(raw).ok()?.trim_end();
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    inner.parse().ok()
}

/// Parses a text line: `#` comments are empty requests, a dump's `*c ` prefix is accepted so a
/// txt dump pipes straight back in.
pub fn parse_text_line(text: &str) -> Incoming {
    let t = text.trim_start();
    if t.starts_with('#') {
        return Incoming {
            parsed: Ok(Request {
                action: Action::Empty,
                result_id: None,
            }),
            body: None,
            result_id: None,
        };
    }
    let t = t.strip_prefix("*c ").unwrap_or(text);
    match parse_line(t) {
        Ok(r) => Incoming {
            parsed: Ok(r),
            body: None,
            result_id: None,
        },
        Err(e) => {
            // Keep the tag of a failed line when it can be found, so the error carries it.
            let tag = crate::parse::lex::lex(t).ok().and_then(|l| l.result_id);
            Incoming {
                parsed: Err(e),
                body: None,
                result_id: tag,
            }
        }
    }
}

/// Whether the request is followed by a multi-line body: always for commands that require one;
/// for optional bodies, when no `...File` parameter names a file instead.
pub fn needs_body(inc: &Incoming) -> bool {
    let Ok(req) = &inc.parsed else { return false };
    let Action::Command { node, params } = &req.action else {
        return false;
    };
    match schema().commands.nodes[*node]
        .command
        .as_ref()
        .map(|c| c.body)
    {
        Some(BodyKind::Required) => true,
        Some(BodyKind::Optional) => !params.iter().any(|p| p.name.ends_with("File")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Incoming> {
        let mut s = Source::new(io::BufReader::new(input));
        let mut v = Vec::new();
        while let Some(i) = s.next_request().unwrap() {
            v.push(i);
        }
        v
    }

    #[test]
    fn crlf_and_bodies() {
        let v = all(b"xstatus SystemUnit\r\nxcommand Security Certificates CA Add\r\n-----BEGIN X-----\r\n.\r\nbye\r\n");
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].body.as_deref(), Some("-----BEGIN X-----\n"));
    }

    #[test]
    fn length_prefixed_body_keeps_dot_lines() {
        let req = "xcommand Security Certificates CA Add\nA\n.\nB\n";
        let input = format!("{{{}}} \n{}xstatus SystemUnit\n", req.len(), req);
        let v = all(input.as_bytes());
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].body.as_deref(), Some("A\n.\nB"));
        assert!(v[1].parsed.is_ok());
    }

    #[test]
    fn unterminated_body_and_long_lines() {
        let v = all(b"xcommand Security Certificates CA Add\nabc\n");
        assert_eq!(
            v[0].parsed.as_ref().unwrap_err().code,
            Code::BodyUnterminated
        );
        let mut long = vec![b'x'; MAX_LINE + 10];
        long.extend_from_slice(b"\nxstatus SystemUnit\n");
        let v = all(&long);
        assert_eq!(v[0].parsed.as_ref().unwrap_err().code, Code::LineTooLong);
        assert!(v[1].parsed.is_ok());
    }

    #[test]
    fn a_refused_body_is_skipped_to_its_dot_line() {
        let next = b"xconfiguration SIP TLS Port: 5099
.
xstatus SystemUnit
";
        let mut long = b"xcommand Security Certificates CA Add
"
        .to_vec();
        long.extend(vec![b'A'; MAX_LINE + 10]);
        long.push(b'\n');
        let mut large = b"xcommand Security Certificates CA Add
"
        .to_vec();
        for _ in 0..(MAX_BODY / 64 + 2) {
            large.extend([b'A'; 63]);
            large.push(b'\n');
        }
        for (mut input, code) in [
            (
                b"xcommand Security Certificates CA Add
MIIB
"
                .to_vec(),
                Code::ControlChar,
            ),
            (long, Code::LineTooLong),
            (large, Code::BadLengthPrefix),
        ] {
            input.extend_from_slice(next);
            let v = all(&input);
            assert_eq!(v.len(), 2, "{code:?}: body lines were read as requests");
            assert_eq!(v[0].parsed.as_ref().unwrap_err().code, code);
            assert!(matches!(
                v[1].parsed.as_ref().unwrap().action,
                Action::StatusGet(_)
            ));
        }
    }
}
