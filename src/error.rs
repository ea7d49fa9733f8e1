//! Shell errors as data.
//!
//! Every failure a user can cause is a [`ShellError`]: a stable code, the column in the line, what
//! was found and what was expected. Renderers print it in their own format; nothing here knows
//! about output modes. Messages are precise and lower-case, like rustls'.

use std::fmt;

/// Stable error codes. The numbers are part of the interface: scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// E001: the line is longer than the limit.
    LineTooLong,
    /// E002: the line is not valid UTF-8.
    InvalidUtf8,
    /// E003: the line holds a NUL byte.
    NulByte,
    /// E004: the line holds another control character.
    ControlChar,
    /// E010: a quoted value has no closing quote.
    UnterminatedQuote,
    /// E011: the `| resultId="..."` suffix is malformed.
    BadResultId,
    /// E012: a token that does not belong where it stands.
    Unexpected,
    /// E020: the first word is not a command.
    UnknownVerb,
    /// E021: the first word is a prefix of several commands.
    AmbiguousVerb,
    /// E030: a path word matches nothing.
    UnknownPath,
    /// E031: a path word is a prefix of several nodes.
    AmbiguousPath,
    /// E032: a multi-instance node needs its instance number.
    MissingInstance,
    /// E033: the instance number is outside the node's range.
    InstanceOutOfRange,
    /// E034: a value was given to a node that is not a leaf.
    NotALeaf,
    /// E040: the value is outside the value space.
    IllegalValue,
    /// E041: `Key:` with no value.
    MissingValue,
    /// E042: the leaf is read-only.
    ReadOnly,
    /// E043: the leaf is deprecated and cannot be set.
    Deprecated,
    /// E050: the command has no such parameter.
    UnknownParam,
    /// E051: a required parameter is missing.
    MissingParam,
    /// E052: a parameter value is outside its value space.
    IllegalParam,
    /// E053: the command takes no body, or needs one.
    BodyMismatch,
    /// E060: a multi-line body ended without its `.` line.
    BodyUnterminated,
    /// E061: a `{N} ` length-prefixed body is malformed or short.
    BadLengthPrefix,
    /// E070: the user's role does not allow this.
    PermissionDenied,
    /// E080: the configuration store could not be read or written.
    Store,
    /// E090: a command ran and failed.
    CommandFailed,
    /// E100: the input holds no PEM certificate (or the PEM armour is broken).
    CertNotPem,
    /// E101: a PEM block is not a valid X.509 certificate.
    CertInvalid,
    /// E102: a file named by a parameter is over the size limit.
    CertTooLarge,
    /// E103: a file named by a parameter cannot be read.
    CertFileUnreadable,
    /// E110: no private key was given and none is pending.
    CertNoKey,
    /// E111: the private key cannot be loaded.
    CertBadKey,
    /// E112: the private key is passphrase-protected.
    CertEncryptedKey,
    /// E113: the private key does not belong to the certificate.
    CertKeyMismatch,
    /// E120: a client store certificate without clientAuth (the product's text).
    CertNoClientUsage,
    /// E121: a server store certificate without serverAuth.
    CertNoServerUsage,
    /// E122: an extended key usage extension that lists nothing.
    CertEmptyEku,
    /// E123: a CA certificate given as a node certificate.
    CertIsCa,
    /// E130: a certificate is past its notAfter.
    CertExpired,
    /// E131: a certificate is before its notBefore.
    CertNotYetValid,
    /// E132: a certificate is listed in an installed CRL.
    CertRevoked,
    /// E133: not trusted by the CA list (a CRL whose issuer is not in it).
    CertNotTrusted,
    /// E140: the trusted CA list or a certificate for it cannot be used.
    CaListInvalid,
    /// E141: a CRL cannot be parsed or is older than the installed one.
    CrlInvalid,
    /// E150: a CA, request or certificate selected by a parameter is not there.
    CertNotFound,
    /// E151: a parameter value or combination a certificate command cannot use.
    CertRequestInvalid,
    /// E160: the certificate folder could not be read or written, or generation failed.
    CertStore,
}

impl Code {
    /// The stable code string, e.g. `E040`.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            LineTooLong => "E001",
            InvalidUtf8 => "E002",
            NulByte => "E003",
            ControlChar => "E004",
            UnterminatedQuote => "E010",
            BadResultId => "E011",
            Unexpected => "E012",
            UnknownVerb => "E020",
            AmbiguousVerb => "E021",
            UnknownPath => "E030",
            AmbiguousPath => "E031",
            MissingInstance => "E032",
            InstanceOutOfRange => "E033",
            NotALeaf => "E034",
            IllegalValue => "E040",
            MissingValue => "E041",
            ReadOnly => "E042",
            Deprecated => "E043",
            UnknownParam => "E050",
            MissingParam => "E051",
            IllegalParam => "E052",
            BodyMismatch => "E053",
            BodyUnterminated => "E060",
            BadLengthPrefix => "E061",
            PermissionDenied => "E070",
            Store => "E080",
            CommandFailed => "E090",
            CertNotPem => "E100",
            CertInvalid => "E101",
            CertTooLarge => "E102",
            CertFileUnreadable => "E103",
            CertNoKey => "E110",
            CertBadKey => "E111",
            CertEncryptedKey => "E112",
            CertKeyMismatch => "E113",
            CertNoClientUsage => "E120",
            CertNoServerUsage => "E121",
            CertEmptyEku => "E122",
            CertIsCa => "E123",
            CertExpired => "E130",
            CertNotYetValid => "E131",
            CertRevoked => "E132",
            CertNotTrusted => "E133",
            CaListInvalid => "E140",
            CrlInvalid => "E141",
            CertNotFound => "E150",
            CertRequestInvalid => "E151",
            CertStore => "E160",
        }
    }

    /// The product's reason text where the product has one, else a short title.
    pub fn reason(self) -> &'static str {
        use Code::*;
        match self {
            UnknownPath | AmbiguousPath | MissingInstance | InstanceOutOfRange | NotALeaf => {
                "No match on address expression"
            }
            IllegalValue | MissingValue | IllegalParam => "Illegal value",
            UnknownVerb | AmbiguousVerb => "Command not recognized",
            UnknownParam | MissingParam | BodyMismatch => "Bad parameter",
            ReadOnly => "Read-only",
            Deprecated => "Deprecated",
            PermissionDenied => "Permission denied",
            Store => "Store failure",
            CommandFailed => "Command failed",
            CertNotPem => "Not a PEM certificate",
            CertInvalid => "Invalid certificate",
            CertTooLarge => "File too large",
            CertFileUnreadable => "Cannot read file",
            CertNoKey => "No private key",
            CertBadKey => "Invalid private key",
            CertEncryptedKey => "Private key is encrypted",
            CertKeyMismatch => "Key does not match certificate",
            CertNoClientUsage => NO_CLIENT_USAGE,
            CertNoServerUsage => "Invalid certificate: no server usage attribute",
            CertEmptyEku => "Invalid certificate: empty extended key usage",
            CertIsCa => "Certificate is a CA certificate",
            CertExpired => "Certificate expired",
            CertNotYetValid => "Certificate not yet valid",
            CertRevoked => "Certificate revoked",
            CertNotTrusted => "Not trusted by the CA list",
            CaListInvalid => "Invalid CA list",
            CrlInvalid => "Invalid CRL",
            CertNotFound => "No such certificate",
            CertRequestInvalid => "Invalid certificate request",
            CertStore => "Certificate store failure",
            LineTooLong | InvalidUtf8 | NulByte | ControlChar | UnterminatedQuote | BadResultId
            | Unexpected | BodyUnterminated | BadLengthPrefix => "Syntax error",
        }
    }
}

/// The product's refusal of a client-store upload without clientAuth (web UI text, verbatim).
pub const NO_CLIENT_USAGE: &str = "Invalid certificate: The file provided does not have a client usage attribute. Services requiring mutual TLS may not work.";

/// Which tree an error refers to, so renderers can place it (`*c`, `*s`, `*r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Configuration,
    Status,
    Command,
    Line,
}

/// One error a user caused, with where and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError {
    pub code: Code,
    /// 1-based character column in the line (0 when the line as a whole is at fault).
    pub column: usize,
    /// Precise lower-case description.
    pub message: String,
    /// What was expected there: a value space or the nearest valid words.
    pub expected: Option<String>,
    pub area: Area,
    /// Canonical path words that were understood before the error (for `XPath` and `*c` lines).
    pub path: Vec<String>,
    /// The way out, where there is one (another command, a parameter to add).
    pub hint: Option<String>,
}

impl ShellError {
    pub fn new(code: Code, column: usize, message: impl Into<String>) -> Self {
        ShellError {
            code,
            column,
            message: message.into(),
            expected: None,
            area: Area::Line,
            path: Vec::new(),
            hint: None,
        }
    }

    /// The column a reply shows: `None` for a command failure that no character of the line
    /// caused (a certificate that is expired, a file that does not parse), where "0" would read
    /// as a place.
    pub fn shown_column(&self) -> Option<usize> {
        (self.column > 0 || self.area != Area::Command).then_some(self.column)
    }

    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }

    pub fn expected(mut self, e: impl Into<String>) -> Self {
        self.expected = Some(e.into());
        self
    }

    pub fn area(mut self, a: Area) -> Self {
        self.area = a;
        self
    }

    pub fn path(mut self, p: Vec<String>) -> Self {
        self.path = p;
        self
    }

    /// `/Configuration/SIP/TLS/Foo` style address of the error.
    pub fn xpath(&self) -> String {
        let root = match self.area {
            Area::Configuration => "/Configuration",
            Area::Status => "/Status",
            Area::Command | Area::Line => "",
        };
        let mut s = root.to_string();
        for w in &self.path {
            s.push('/');
            s.push_str(w);
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }
}

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at column {}: {}",
            self.code.as_str(),
            self.column,
            self.message
        )?;
        if let Some(e) = &self.expected {
            write!(f, "; expected {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ShellError {}

/// The few words nearest to `word` among `candidates` (edit distance), for "did you mean".
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let w = word.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| {
            let cl = c.to_ascii_lowercase();
            let d = if cl.starts_with(&w) || w.starts_with(&cl) {
                0
            } else {
                levenshtein(&w, &cl)
            };
            (d, c)
        })
        .collect();
    scored.sort_by_key(|(d, _)| *d);
    let best = scored.first().map(|(d, _)| *d).unwrap_or(0);
    let limit = (w.chars().count() / 2).max(2);
    let close: Vec<String> = scored
        .iter()
        .filter(|(d, _)| *d <= limit && *d <= best + 1)
        .map(|(_, c)| c.to_string())
        .collect();
    if close.is_empty() {
        scored.into_iter().map(|(_, c)| c.to_string()).collect()
    } else {
        close
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_words() {
        assert_eq!(
            nearest("Prot", ["Port", "Mode", "Certificate"]),
            vec!["Port".to_string()]
        );
        assert_eq!(
            nearest("Cert", ["Port", "Certificate"]),
            vec!["Certificate".to_string()]
        );
    }
}
