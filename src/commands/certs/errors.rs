//! The one place where a certificate failure becomes a shell error: each [`OpError`] (and the
//! [`CertError`] inside it) gets its stable [`Code`] — whose `Reason` is the specific one — and,
//! where there is a way out, a hint naming it. Decided by variant, never by message text. The
//! column is the parameter's when a file it names cannot be read; otherwise no character of the
//! line is at fault, and the reply leaves the column out ([`ShellError::shown_column`]).

use crate::certs::ops::{OpError, StoreKind};
use crate::certs::x509::error::CertError;
use crate::error::{Area, Code, ShellError};
use crate::parse::ParamValue;

/// The shell error for `e`, raised by the command at `path` with `params`.
pub(super) fn shell_error(path: &str, params: &[ParamValue], e: &OpError) -> ShellError {
    let (code, hint) = classify(e);
    let mut err = ShellError::new(code, column(e, params), e.to_string())
        .area(Area::Command)
        .path(path.split(' ').map(str::to_string).collect());
    if let Some(h) = hint {
        err = err.hint(h);
    }
    err
}

/// The column of the parameter that named the file `e` could not read; 0 (unknown) otherwise.
fn column(e: &OpError, params: &[ParamValue]) -> usize {
    let file = match e {
        OpError::ReadFile { path, .. } | OpError::TooLarge { path, .. } => path,
        _ => return 0,
    };
    params
        .iter()
        .find(|p| !p.value.is_empty() && std::path::Path::new(&p.value) == file)
        .map_or(0, |p| p.col)
}

/// What a handler can fail with: an operation error, a certificate error, or a failure in words
/// (a state of the folder, not a refused input).
pub(super) trait Failure {
    fn into_shell(self, path: &str, params: &[ParamValue]) -> ShellError;
}

impl Failure for OpError {
    fn into_shell(self, path: &str, params: &[ParamValue]) -> ShellError {
        shell_error(path, params, &self)
    }
}

impl Failure for CertError {
    fn into_shell(self, path: &str, params: &[ParamValue]) -> ShellError {
        shell_error(path, params, &OpError::Store(self))
    }
}

/// A missing file or store in words: nothing to act on.
pub(super) struct Missing(pub String);

impl Failure for Missing {
    fn into_shell(self, path: &str, _params: &[ParamValue]) -> ShellError {
        ShellError::new(Code::CertNotFound, 0, self.0)
            .area(Area::Command)
            .path(path.split(' ').map(str::to_string).collect())
    }
}

fn classify(e: &OpError) -> (Code, Option<String>) {
    match e {
        OpError::ReadFile { .. } => (Code::CertFileUnreadable, None),
        OpError::TooLarge { .. } => (Code::CertTooLarge, None),
        OpError::Input { source, .. } | OpError::Store(source) => (cert_code(source), None),
        OpError::EncryptedKey => (
            Code::CertEncryptedKey,
            Some("openssl pkey -in key.pem -out plain.pem, then upload plain.pem".into()),
        ),
        OpError::NoKey { store } => (
            Code::CertNoKey,
            Some(format!(
                "give KeyFile, or start with xCommand Security Certificates CSR Generate Store: {}",
                store.name()
            )),
        ),
        OpError::KeyMismatch { .. } => (Code::CertKeyMismatch, None),
        OpError::CaAsLeaf { .. } => (
            Code::CertIsCa,
            Some("xCommand Security Certificates CA Add".into()),
        ),
        OpError::NoClientUsage => (
            Code::CertNoClientUsage,
            Some(format!(
                "a certificate whose extended key usage lists clientAuth; or present the server certificate as the client too: xCommand Security Certificates {} Upload CertificateFile: <server.pem> AlsoAsClient: True",
                StoreKind::Server.name()
            )),
        ),
        OpError::NoServerUsage { .. } => (
            Code::CertNoServerUsage,
            Some("a certificate whose extended key usage lists serverAuth (or has no extended key usage extension)".into()),
        ),
        OpError::EmptyEku { .. } => (Code::CertEmptyEku, None),
        OpError::Expired { .. } => (Code::CertExpired, None),
        OpError::NotYetValid { .. } => (Code::CertNotYetValid, None),
        OpError::Revoked { .. } => (Code::CertRevoked, None),
        OpError::Crl(_) => (Code::CrlInvalid, None),
        OpError::CrlNotTrusted(_) => (
            Code::CertNotTrusted,
            Some("add the CRL issuer's CA with xCommand Security Certificates CA Add".into()),
        ),
        OpError::NotFound(_) => (Code::CertNotFound, None),
        OpError::Invalid(_) => (Code::CertRequestInvalid, None),
        OpError::Cluster(_) => (Code::Store, None),
    }
}

fn cert_code(e: &CertError) -> Code {
    match e {
        CertError::NoCertificates | CertError::Pem(_) => Code::CertNotPem,
        CertError::BadCertificate { .. } => Code::CertInvalid,
        CertError::NoPrivateKey => Code::CertNoKey,
        CertError::BadKey(_) => Code::CertBadKey,
        CertError::KeyMismatch { .. } => Code::CertKeyMismatch,
        CertError::EmptyTrustList | CertError::BadTrustAnchor { .. } => Code::CaListInvalid,
        _ => Code::CertStore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_own_code() {
        let s = || "CN=x".to_string();
        let all = [
            OpError::NoClientUsage,
            OpError::Expired {
                subject: s(),
                not_after: s(),
                now: s(),
            },
            OpError::NotYetValid {
                subject: s(),
                not_before: s(),
                now: s(),
            },
            OpError::KeyMismatch {
                subject: s(),
                pending: false,
            },
            OpError::CaAsLeaf { subject: s() },
            OpError::EncryptedKey,
            OpError::NoKey {
                store: StoreKind::Client,
            },
            OpError::Input {
                what: s(),
                source: CertError::NoCertificates,
            },
            OpError::CrlNotTrusted(s()),
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(|e| classify(e).0).collect();
        assert_eq!(codes.len(), all.len());
        assert!(!codes.contains(&Code::CommandFailed));
    }

    /// A file that cannot be read points at the parameter naming it; a refused certificate
    /// points nowhere (the reply leaves the column out).
    #[test]
    fn the_column_is_the_file_parameter_or_left_out() {
        let params = [
            ParamValue {
                name: "CertificateFile".into(),
                index: None,
                value: "/nope/c.pem".into(),
                col: 52,
            },
            ParamValue {
                name: "KeyFile".into(),
                index: None,
                value: "/nope/k.pem".into(),
                col: 75,
            },
        ];
        let unreadable = OpError::ReadFile {
            path: "/nope/k.pem".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let e = shell_error("Security Certificates Server Upload", &params, &unreadable);
        assert_eq!(e.shown_column(), Some(75));
        let e = shell_error(
            "Security Certificates Server Upload",
            &params,
            &OpError::EncryptedKey,
        );
        assert_eq!(e.shown_column(), None);
    }
}
