//! The quoting rules of the text forms, shared by everything above: the schema table, the
//! command lexer, `xconf.txt` and the renderers all quote and unquote the same way, so the rule
//! lives here, in the lowest room. It knows no tokens, no disk and no terminal.

use nom::character::complete::char;
use nom::{IResult, Parser};

/// A quoted string with `\"` and `\\` escapes; any other backslash is kept literally
/// (`"C:\temp"` is `C:\temp`). A missing closing quote is a failure (`cut`), not a backtrack.
pub fn quoted(i: &str) -> IResult<&str, String> {
    let (body, _) = char('"').parse(i)?;
    let mut out = String::new();
    let mut it = body.char_indices().peekable();
    while let Some((k, c)) = it.next() {
        match c {
            '"' => return Ok((&body[k + 1..], out)),
            '\\' => match it.peek() {
                Some(&(_, e @ ('"' | '\\'))) => {
                    out.push(e);
                    it.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Err(nom::Err::Failure(nom::error::Error::new(
        &i[i.len()..],
        nom::error::ErrorKind::Char,
    )))
}

/// `v` quoted as [`quote_into`] does.
pub fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    quote_into(v, &mut s);
    s
}

/// Appends `v` quoted the way the product prints it: `"..."` with `\"` and `\\` escaped.
pub fn quote_into(v: &str, s: &mut String) {
    s.push('"');
    if !v.bytes().any(|b| matches!(b, b'"' | b'\\' | b'\n' | b'\r')) {
        s.push_str(v);
        s.push('"');
        return;
    }
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c => s.push(c),
        }
    }
    s.push('"');
}

/// The inside of a value exactly as [`quote_into`] writes it (`inner` without the outer
/// quotes), unescaped; `None` for anything [`quote_into`] would not have written (a bare `"`,
/// a lone backslash), so a caller can fall back to the full lexer for such text.
pub fn unquote_written(inner: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !inner.bytes().any(|b| matches!(b, b'"' | b'\\')) {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        match c {
            '"' => return None,
            '\\' => match it.next() {
                Some(e @ ('"' | '\\')) => out.push(e),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(std::borrow::Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_values_unquote_to_themselves() {
        for v in [
            "",
            "plain",
            "a \"q\" b\\c  d",
            "caf\u{e9} \u{20ac}",
            "\\\\\"",
        ] {
            let mut s = String::new();
            quote_into(v, &mut s);
            let inner = &s[1..s.len() - 1];
            assert_eq!(unquote_written(inner).as_deref(), Some(v));
            assert_eq!(quoted(&s).unwrap(), ("", v.to_string()));
        }
        assert_eq!(unquote_written("a\"b"), None);
        assert_eq!(unquote_written("a\\"), None);
        assert_eq!(unquote_written("C:\\temp"), None);
    }
}
