//! Hiding secrets in a command line before it is kept anywhere (the shell's history file, an
//! error that quotes the value): the value of every parameter named `Password` or `Passphrase` (any case, any prefix
//! such as `NewPassword`) becomes `***`. Works on lines that do not parse too, since a line
//! with a typo is kept in the history all the same.

/// The text that stands for a hidden value.
pub const MASK: &str = "***";

/// Whether a parameter of this name carries a secret.
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with("password") || n.ends_with("passphrase")
}

fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, ':' | '"' | '?' | '|'))
}

/// `raw`, or [`MASK`] when it is the value of the secret parameter `name`: for messages that
/// quote a value.
pub fn shown_value<'a>(name: &str, raw: &'a str) -> &'a str {
    if is_secret(name) {
        MASK
    } else {
        raw
    }
}

/// `line` with the value of every secret parameter replaced by [`MASK`].
pub fn mask_secrets(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let end = quoted_end(&chars, i);
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        if !is_word_char(c) {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_word_char(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push_str(&word);
        // A key is a word followed (after optional blanks) by `:`.
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if !is_secret(&word) || chars.get(j) != Some(&':') {
            continue;
        }
        out.extend(&chars[i..=j]);
        j += 1;
        let mut k = j;
        while k < chars.len() && chars[k].is_whitespace() {
            k += 1;
        }
        out.extend(&chars[j..k]);
        let end = match chars.get(k) {
            Some('"') => quoted_end(&chars, k),
            Some(_) => {
                let mut e = k;
                while e < chars.len() && is_word_char(chars[e]) {
                    e += 1;
                }
                e
            }
            None => k,
        };
        if end > k {
            out.push_str(MASK);
        }
        i = end;
    }
    out
}

/// The index just past the closing quote of the quoted value opening at `start` (a backslash
/// escapes the next character), or the end of the line when it is not closed.
fn quoted_end(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_bare_and_quoted_values() {
        assert_eq!(
            mask_secrets(
                r#"xCommand AdminAccountAdd Name: bob Password: "s3cr\"et x" Access: ReadOnly"#
            ),
            "xCommand AdminAccountAdd Name: bob Password: *** Access: ReadOnly"
        );
        assert_eq!(
            mask_secrets("xcommand adminaccountadd name: bob password:hunter22 access: ReadWrite"),
            "xcommand adminaccountadd name: bob password:*** access: ReadWrite"
        );
        assert_eq!(
            mask_secrets("xCommand X Passphrase : abc | resultId=\"1\""),
            "xCommand X Passphrase : *** | resultId=\"1\""
        );
        assert_eq!(
            mask_secrets("xCommand X NewPassword: \"unterminated"),
            "xCommand X NewPassword: ***"
        );
    }

    #[test]
    fn leaves_other_lines_alone() {
        for l in [
            "xConfiguration SystemUnit Name: \"Password: x\"",
            "xCommand AdminAccountAdd Name: Password Access: ReadOnly",
            "xCommand AdminAccountAdd Password:",
            "xStatus",
        ] {
            assert_eq!(mask_secrets(l), l);
        }
    }
}
