//! Text that came from a peer (a certificate's subject, issuer and names, a SIP answer line, an
//! error a TLS library built from what the peer sent), made harmless once where it enters.
//!
//! [`PeerText`] keeps valid UTF-8 as it is and shows every control character (C0, DEL, C1) and
//! every invisible character that reorders or breaks lines on a terminal (bidirectional
//! overrides and isolates, line and paragraph separators) as a visible escape: `\x1b`, `\x9b`,
//! `\u{202e}`; bytes that are not UTF-8 become `\xff`. So a peer cannot write an escape
//! sequence into an admin's terminal, a bell into a log, or a byte XML 1.0 forbids into a
//! document, whichever renderer prints the text later. The renderers still escape for their own
//! format ([`visible`] is the same rule for any string they print). This room knows no format,
//! no terminal and no peer: only characters.

use std::borrow::Cow;
use std::fmt;

/// A string from a peer, sanitised: holds no control or reordering character.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerText(String);

impl PeerText {
    /// Sanitises `raw`.
    pub fn new(raw: &str) -> PeerText {
        PeerText(visible(raw, false).into_owned())
    }

    /// Sanitises bytes that may not be UTF-8 (each invalid byte shown as `\xNN`).
    pub fn from_bytes(raw: &[u8]) -> PeerText {
        let mut out = String::with_capacity(raw.len());
        for chunk in raw.utf8_chunks() {
            out.push_str(&visible(chunk.valid(), false));
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        PeerText(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PeerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PeerText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for PeerText {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PeerText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for PeerText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Read back (a status or log file) through the same rule: a file written by someone else, or
/// by an older version, cannot smuggle a control character in either.
impl<'de> serde::Deserialize<'de> for PeerText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PeerText, D::Error> {
        let s = String::deserialize(d)?;
        Ok(PeerText::new(&s))
    }
}

/// Whether `c` is shown escaped: C0 and DEL, C1, and the characters that reorder or break a
/// terminal line without being seen. With `keep_newlines`, `\n` stays (multi-line values such
/// as PEM blocks).
pub fn needs_escape(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' => !keep_newlines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidirectional embeddings, overrides, isolates and marks; line/paragraph separators;
        // the byte order mark inside text.
        '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        '\u{feff}' | '\u{fffe}' | '\u{ffff}' => true,
        _ => false,
    }
}

/// `s` with every character of [`needs_escape`] written as an escape; borrowed when there is
/// none (the common case costs one scan).
pub fn visible(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, keep_newlines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c, keep_newlines) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_and_text_is_kept() {
        let raw = "CN=a\u{1b}[31mred\u{7}\u{0}\u{7f}\u{9b}2J <&\"'> caf\u{e9} \u{65e5}\u{672c} \u{202e}x\tz\n";
        let t = PeerText::new(raw);
        assert_eq!(
            t.as_str(),
            "CN=a\\x1b[31mred\\x07\\x00\\x7f\\x9b2J <&\"'> caf\u{e9} \u{65e5}\u{672c} \\u{202e}x\\x09z\\x0a"
        );
        assert!(!t.as_str().chars().any(|c| c.is_control()));
    }

    #[test]
    fn invalid_utf8_bytes_are_shown() {
        let t = PeerText::from_bytes(b"ok \xff\xfe caf\xc3\xa9 \x1b");
        assert_eq!(t.as_str(), "ok \\xff\\xfe caf\u{e9} \\x1b");
    }

    #[test]
    fn plain_text_is_borrowed_and_newlines_can_stay() {
        assert!(matches!(visible("CN=edge", false), Cow::Borrowed(_)));
        assert_eq!(visible("a\nb\u{1b}", true), "a\nb\\x1b");
    }

    #[test]
    fn reading_back_sanitises_again() {
        let t: PeerText = serde_json::from_str("\"a\\u001bb\"").unwrap();
        assert_eq!(t.as_str(), "a\\x1bb");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"a\\\\x1bb\"");
    }
}
