//! The lexer: one input line into tokens with columns (grammar/xapi.ebnf, `line`).
//!
//! It knows the shapes of the language (words, quoted values, `:`, `?`, `??`, the
//! `| resultId="..."` suffix) and nothing of the schema.

use crate::error::{Code, ShellError};

/// The longest line accepted, in bytes. Longer lines are refused whole (E001).
pub const MAX_LINE: usize = 16 * 1024;

/// A token's kind and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A bare word: a verb, path word, instance number, key or bare value.
    Word(String),
    /// A `"..."` value with escapes resolved.
    Quoted(String),
    /// `:` between a key and its value.
    Colon,
    /// `?`: usage help for the words so far.
    Help,
    /// `??`: everything under the words so far, with value spaces.
    HelpAll,
}

/// A token and the 1-based character column where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub col: usize,
    /// True when the token touches the previous one (`Zone?`, `Mode:`).
    pub glued: bool,
}

impl Token {
    /// The text of a word or quoted value.
    pub fn text(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(s) | Tok::Quoted(s) => Some(s),
            _ => None,
        }
    }
}

/// A lexed line: tokens and the optional result tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub result_id: Option<String>,
}

/// The quoted-string rule lives with the schema, whose table is written with it too.
pub use crate::schema::text::quoted;

fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, ':' | '"' | '?' | '|'))
}

/// A control character as a person reads it: `U+001B (ESC)`, never a Rust escape.
fn control_name(c: char) -> String {
    const C0: [&str; 32] = [
        "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
        "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB",
        "ESC", "FS", "GS", "RS", "US",
    ];
    let n = u32::from(c);
    match C0.get(n as usize) {
        Some(name) => format!("U+{n:04X} ({name})"),
        None if n == 0x7f => "U+007F (DEL)".to_string(),
        None => format!("U+{n:04X}"),
    }
}

/// Checks raw bytes before lexing: length, UTF-8, NUL and control characters.
pub fn check_bytes(raw: &[u8]) -> Result<&str, ShellError> {
    if raw.len() > MAX_LINE {
        return Err(ShellError::new(
            Code::LineTooLong,
            MAX_LINE + 1,
            format!("line is {} bytes long", raw.len()),
        )
        .expected(format!("at most {MAX_LINE} bytes")));
    }
    let s = match std::str::from_utf8(raw) {
        Ok(s) => s,
        Err(e) => {
            let good = &raw[..e.valid_up_to()];
            let col = String::from_utf8_lossy(good).chars().count() + 1;
            return Err(
                ShellError::new(Code::InvalidUtf8, col, "invalid utf-8 byte sequence")
                    .expected("utf-8 text"),
            );
        }
    };
    for (n, c) in s.chars().enumerate() {
        if c == '\0' {
            return Err(ShellError::new(Code::NulByte, n + 1, "nul byte in line")
                .expected("printable text"));
        }
        if c.is_control() && c != '\t' {
            return Err(ShellError::new(
                Code::ControlChar,
                n + 1,
                format!("control character {} in line", control_name(c)),
            )
            .expected("printable text"));
        }
    }
    Ok(s)
}

/// Splits a line into tokens.
pub fn lex(line: &str) -> Result<Lexed, ShellError> {
    let mut out = Lexed::default();
    let col_of = |byte: usize| line[..byte].chars().count() + 1;
    let mut i = 0usize; // byte offset
    let mut after_colon = false;
    let mut prev_end: Option<usize> = None;
    while i < line.len() {
        let rest = &line[i..];
        let c = match rest.chars().next() {
            Some(c) => c,
            None => break,
        };
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let col = col_of(i);
        let glued = prev_end == Some(i);
        if c == '|' {
            out.result_id = Some(result_id(&rest[1..], col)?);
            return Ok(out);
        }
        if c == '"' {
            match quoted(rest) {
                Ok((r, s)) => {
                    let used = rest.len() - r.len();
                    out.tokens.push(Token {
                        tok: Tok::Quoted(s),
                        col,
                        glued,
                    });
                    i += used;
                    prev_end = Some(i);
                    after_colon = false;
                    continue;
                }
                Err(_) => {
                    return Err(ShellError::new(
                        Code::UnterminatedQuote,
                        col,
                        "quoted value has no closing quote",
                    )
                    .expected("a closing '\"' (write \\\" for a quote inside the value)"));
                }
            }
        }
        if c == ':' && !after_colon {
            out.tokens.push(Token {
                tok: Tok::Colon,
                col,
                glued,
            });
            i += 1;
            prev_end = Some(i);
            after_colon = true;
            continue;
        }
        if c == '?' {
            let double = rest.starts_with("??");
            let n = if double { 2 } else { 1 };
            let next = rest[n..].chars().next();
            if !after_colon
                || next.is_none()
                || next.is_some_and(char::is_whitespace)
                || next == Some('|')
            {
                out.tokens.push(Token {
                    tok: if double { Tok::HelpAll } else { Tok::Help },
                    col,
                    glued,
                });
                i += n;
                prev_end = Some(i);
                continue;
            }
        }
        // A bare token. After ':' it is a value and may hold ':' or '?' (an IPv6 address, a time).
        let len: usize = if after_colon {
            rest.find(|ch: char| ch.is_whitespace() || ch == '|' || ch == '"')
                .unwrap_or(rest.len())
        } else {
            rest.find(|ch: char| !is_word_char(ch))
                .unwrap_or(rest.len())
        };
        let len = len.max(c.len_utf8());
        out.tokens.push(Token {
            tok: Tok::Word(rest[..len].to_string()),
            col,
            glued,
        });
        i += len;
        prev_end = Some(i);
        after_colon = false;
    }
    Ok(out)
}

/// Parses what follows `|`: `resultId="tag"` (case-insensitive key, quoted or bare tag).
fn result_id(s: &str, col: usize) -> Result<String, ShellError> {
    let bad = || {
        ShellError::new(Code::BadResultId, col, "malformed result tag after '|'")
            .expected("| resultId=\"<tag>\"")
    };
    let t = s.trim_start();
    if !crate::schema::starts_with_ci(t, "resultid") {
        return Err(bad());
    }
    let t = t[8..].trim_start();
    let t = t.strip_prefix('=').ok_or_else(bad)?.trim_start();
    let (rest, tag) = if t.starts_with('"') {
        let (r, q): (&str, String) = quoted(t).map_err(|_| bad())?;
        (r, q)
    } else {
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let tag = &t[..end];
        if tag.is_empty() {
            return Err(bad());
        }
        (&t[end..], tag.to_string())
    };
    if !rest.trim().is_empty() {
        return Err(bad());
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(l: &Lexed) -> Vec<String> {
        l.tokens
            .iter()
            .map(|t| match &t.tok {
                Tok::Word(w) => w.clone(),
                Tok::Quoted(q) => format!("{q:?}"),
                Tok::Colon => ":".into(),
                Tok::Help => "?".into(),
                Tok::HelpAll => "??".into(),
            })
            .collect()
    }

    #[test]
    fn lexes_set_with_colon_glued() {
        let l = lex("xconfiguration SIP TLS Mode: ON").unwrap();
        assert_eq!(
            words(&l),
            ["xconfiguration", "SIP", "TLS", "Mode", ":", "ON"]
        );
        assert!(l.tokens[4].glued);
    }

    #[test]
    fn quoted_escapes_and_literal_question_mark() {
        let l = lex(r#"xconf SystemUnit Name: "a \"b\" ?\\c""#).unwrap();
        assert_eq!(l.tokens[4].tok, Tok::Quoted(r#"a "b" ?\c"#.into()));
    }

    #[test]
    fn other_backslashes_are_literal() {
        let l = lex(r#"xconf SystemUnit Description: "C:\temp\x""#).unwrap();
        assert_eq!(l.tokens[4].tok, Tok::Quoted(r"C:\temp\x".into()));
    }

    #[test]
    fn result_id_suffix() {
        let l = lex(r#"xstatus SystemUnit | resultId="r1""#).unwrap();
        assert_eq!(l.result_id.as_deref(), Some("r1"));
        assert!(lex("xstatus | foo").is_err());
        // Not a char boundary at byte 8: an error, not a panic.
        assert!(lex("| echo \u{10000}").is_err());
    }

    #[test]
    fn unterminated_quote_column() {
        let e = lex(r#"xconf SystemUnit Name: "abc"#).unwrap_err();
        assert_eq!((e.code, e.column), (Code::UnterminatedQuote, 24));
    }

    #[test]
    fn ipv6_bare_value() {
        let l = lex("xconf Agent Listen Address: ::1").unwrap();
        assert_eq!(l.tokens.last().unwrap().tok, Tok::Word("::1".into()));
    }

    #[test]
    fn check_bytes_errors() {
        assert_eq!(check_bytes(b"ab\xffc").unwrap_err().column, 3);
        assert_eq!(check_bytes(b"a\0").unwrap_err().code, Code::NulByte);
        assert_eq!(
            check_bytes(&vec![b'a'; MAX_LINE + 1]).unwrap_err().code,
            Code::LineTooLong
        );
    }
}
