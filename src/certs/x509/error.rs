//! Errors of the certificate room as data: one enum for reading, parsing,
//! generating and storing certificates and keys (the EKU policy has its own
//! [`crate::certs::eku::EkuError`]).

use std::fmt;
use std::path::PathBuf;

/// Why a certificate, key, trust list or certificate file could not be used.
///
/// Every message is lower-case and names the thing that failed, so it can go
/// straight into the event log or the shell's error line.
#[derive(Debug)]
#[non_exhaustive]
pub enum CertError {
    /// The input holds no `CERTIFICATE` PEM block at all.
    NoCertificates,
    /// The input holds no private key PEM block (PKCS#8, PKCS#1 or SEC1).
    NoPrivateKey,
    /// The PEM armour itself is broken (bad base64, missing end line, ...).
    Pem(String),
    /// A PEM block decoded, but its content is not a valid X.509 certificate.
    /// `index` counts from 1 in the order of the input.
    BadCertificate { index: usize, detail: String },
    /// The private key could not be loaded by the crypto provider.
    BadKey(String),
    /// The trusted CA list is empty.
    EmptyTrustList,
    /// A certificate of the trusted CA list cannot serve as a trust anchor.
    BadTrustAnchor { index: usize, detail: String },
    /// The private key does not belong to the certificate (after retries for a
    /// pair that was being replaced).
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// A file operation failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file was refused before it was read: not a regular file, too large, a planted link.
    Read(crate::bounded::ReadError),
    /// Generating a certificate or key failed.
    Generate(String),
    /// Building a rustls verifier failed.
    Verifier(String),
}

impl CertError {
    /// A stable, machine-readable code for the variant.
    pub fn code(&self) -> &'static str {
        match self {
            CertError::NoCertificates => "no-certificates",
            CertError::NoPrivateKey => "no-private-key",
            CertError::Pem(_) => "bad-pem",
            CertError::BadCertificate { .. } => "bad-certificate",
            CertError::BadKey(_) => "bad-key",
            CertError::EmptyTrustList => "empty-trust-list",
            CertError::BadTrustAnchor { .. } => "bad-trust-anchor",
            CertError::KeyMismatch { .. } => "key-mismatch",
            CertError::Io { .. } => "io",
            CertError::Read(_) => "unreadable-file",
            CertError::Generate(_) => "generate",
            CertError::Verifier(_) => "verifier",
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CertError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::NoCertificates => write!(f, "no certificate found in PEM input"),
            CertError::NoPrivateKey => write!(f, "no private key found in PEM input"),
            CertError::Pem(d) => write!(f, "PEM input is not valid: {d}"),
            CertError::BadCertificate { index, detail } => {
                write!(
                    f,
                    "certificate #{index} is not a valid X.509 certificate: {detail}"
                )
            }
            CertError::BadKey(d) => write!(f, "private key is not usable: {d}"),
            CertError::EmptyTrustList => write!(f, "trusted CA list contains no certificates"),
            CertError::BadTrustAnchor { index, detail } => {
                write!(
                    f,
                    "trusted CA certificate #{index} cannot be used as a trust anchor: {detail}"
                )
            }
            CertError::KeyMismatch { cert, key } => write!(
                f,
                "private key {} does not match certificate {}",
                key.display(),
                cert.display()
            ),
            CertError::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            CertError::Read(e) => write!(f, "{e}"),
            CertError::Generate(d) => write!(f, "certificate generation failed: {d}"),
            CertError::Verifier(d) => write!(f, "cannot build certificate verifier: {d}"),
        }
    }
}

impl std::error::Error for CertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CertError::Io { source, .. } => Some(source),
            CertError::Read(e) => Some(e),
            _ => None,
        }
    }
}

/// The text of a PEM armour error: the line or marker it names as text (control characters
/// escaped), never the byte array the library's own message prints.
pub fn pem_error_text(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    let text = |b: &[u8]| -> String {
        String::from_utf8_lossy(b)
            .chars()
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect()
    };
    match e {
        E::MissingSectionEnd { end_marker } => {
            format!(
                "missing section end line '-----END {}-----'",
                text(end_marker)
            )
        }
        E::IllegalSectionStart { line } => {
            format!("malformed section start line '{}'", text(line))
        }
        E::Base64Decode(d) => format!("bad base64 in a section: {}", d.to_lowercase()),
        E::Io(io) => format!("cannot read the input: {io}"),
        E::NoItemsFound => "no items found".into(),
        other => other.to_string().to_lowercase(),
    }
}

impl From<crate::bounded::ReadError> for CertError {
    /// An I/O failure stays [`CertError::Io`] (same words as before bounded reads existed).
    fn from(e: crate::bounded::ReadError) -> Self {
        match e {
            crate::bounded::ReadError::Io { path, op, source } => {
                CertError::Io { op, path, source }
            }
            e => CertError::Read(e),
        }
    }
}

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> Self {
        CertError::Generate(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use crate::certs::x509::info::{parse_pem_certs, parse_pem_key};

    /// The library prints the offending line as a byte array; ours is text.
    #[test]
    fn pem_errors_are_text() {
        let e = parse_pem_certs(b"-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap_err();
        let m = e.to_string();
        assert_eq!(
            m,
            "PEM input is not valid: missing section end line '-----END CERTIFICATE-----'"
        );
        let e = parse_pem_key(b"-----BEGIN PRIVATE KEY\x1b[31m\nAAAA\n").unwrap_err();
        let m = e.to_string();
        assert!(!m.contains("[45, 45"), "{m}");
        assert!(m.contains("'-----BEGIN PRIVATE KEY\\u{1b}[31m'"), "{m}");
        assert!(!m.contains('\u{1b}'), "{m}");
    }
}
