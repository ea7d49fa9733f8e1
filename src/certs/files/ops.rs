//! Shared vocabulary of the certificate operations behind
//! `xCommand Security Certificates ...`: which store, the operation error (as
//! data, lower-case precise messages — except the product's own client-usage
//! text, kept verbatim), the folder lock that serialises writers, and reading
//! a store's current certificate.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::certs::files::store::{self, certs_dir};
use crate::certs::x509::error::CertError;
use crate::certs::x509::info::{decode, parse_pem_certs, CertInfo};

/// The product's refusal of a client-store upload without clientAuth (web UI text, verbatim; the
/// error room holds it because it is also that failure's `Reason`).
pub use crate::error::NO_CLIENT_USAGE;

/// Days before expiry from which uploads and the readiness report warn.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// One of the two certificate stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// `server.pem` + `privkey.pem`: presented when this node is the TLS server.
    Server,
    /// `client.pem` + `clientprivkey.pem`: presented when this node is the TLS client.
    Client,
}

impl StoreKind {
    /// `Server` / `Client`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Server => "Server",
            StoreKind::Client => "Client",
        }
    }

    /// Lower-case word for messages.
    pub fn word(self) -> &'static str {
        match self {
            StoreKind::Server => "server",
            StoreKind::Client => "client",
        }
    }

    /// Certificate file name.
    pub fn cert_file(self) -> &'static str {
        match self {
            StoreKind::Server => store::SERVER_CERT,
            StoreKind::Client => store::CLIENT_CERT,
        }
    }

    /// Key file name.
    pub fn key_file(self) -> &'static str {
        match self {
            StoreKind::Server => store::SERVER_KEY,
            StoreKind::Client => store::CLIENT_KEY,
        }
    }

    /// Parse `Server` / `Client` (case-insensitive).
    pub fn parse(s: &str) -> Option<StoreKind> {
        match s.to_ascii_lowercase().as_str() {
            "server" => Some(StoreKind::Server),
            "client" => Some(StoreKind::Client),
            _ => None,
        }
    }
}

/// Why a certificate operation was refused or failed. Nothing was changed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpError {
    /// A file named by a parameter could not be read.
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Input that is not usable, with what it was (`certificate`, `private key`, `CA list`).
    Input { what: String, source: CertError },
    /// The private key is passphrase-protected.
    EncryptedKey,
    /// No key given and no pending CSR key for this store.
    NoKey { store: StoreKind },
    /// The key does not belong to the certificate.
    KeyMismatch { subject: String, pending: bool },
    /// The leaf is a CA certificate.
    CaAsLeaf { subject: String },
    /// Client store upload without clientAuth (the product's message).
    NoClientUsage,
    /// Server store upload whose EKU lacks serverAuth.
    NoServerUsage {
        subject: String,
        present: Vec<String>,
    },
    /// An EKU extension listing nothing.
    EmptyEku { subject: String },
    /// A certificate of the upload is past notAfter.
    Expired {
        subject: String,
        not_after: String,
        now: String,
    },
    /// A certificate of the upload is before notBefore.
    NotYetValid {
        subject: String,
        not_before: String,
        now: String,
    },
    /// The certificate is listed in an installed CRL of its issuer.
    Revoked {
        subject: String,
        serial: String,
        crl: String,
    },
    /// A CRL could not be used.
    Crl(String),
    /// A CRL whose issuer is not in the trusted CA list, or whose signature that CA does not verify.
    CrlNotTrusted(String),
    /// A file named by a parameter is larger than any certificate file can be.
    TooLarge {
        path: PathBuf,
        limit: u64,
        what: &'static str,
    },
    /// A selection (CA fingerprint/subject, pending CSR) found nothing.
    NotFound(String),
    /// A parameter combination or value that cannot work.
    Invalid(String),
    /// Writing or reading the certificate folder failed.
    Store(CertError),
    /// The cluster (etcd) refused a shared file's write or did not answer: nothing changed.
    Cluster(String),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::ReadFile { path, source } => {
                write!(f, "cannot read file {}: {source}", path.display())
            }
            OpError::Input { what, source } => write!(f, "{what}: {source}"),
            OpError::EncryptedKey => write!(
                f,
                "private key is encrypted; upload it without a passphrase (openssl pkey -in key.pem -out plain.pem)"
            ),
            OpError::NoKey { store } => write!(
                f,
                "no private key: give KeyFile, include the key in the PEM text, or upload the certificate issued for the pending request of the {} store (xCommand Security Certificates CSR Generate Store: {})",
                store.word(),
                store.name()
            ),
            OpError::KeyMismatch { subject, pending: false } => write!(
                f,
                "private key does not match certificate '{subject}'"
            ),
            OpError::KeyMismatch { subject, pending: true } => write!(
                f,
                "certificate '{subject}' does not match the key of the certificate signing request in progress, and no private key was given"
            ),
            OpError::CaAsLeaf { subject } => write!(
                f,
                "certificate '{subject}' is a CA certificate; add it to the trusted CA list with xCommand Security Certificates CA Add"
            ),
            OpError::NoClientUsage => f.write_str(NO_CLIENT_USAGE),
            OpError::NoServerUsage { subject, present } => write!(
                f,
                "certificate '{subject}' has no server usage attribute (extended key usage lists {}, not serverAuth): it cannot identify this node as a TLS server",
                if present.is_empty() { "nothing".to_string() } else { present.join(", ") }
            ),
            OpError::EmptyEku { subject } => write!(
                f,
                "certificate '{subject}' has an empty extended key usage extension; every TLS peer rejects it"
            ),
            OpError::Expired { subject, not_after, now } => write!(
                f,
                "certificate '{subject}' expired at {not_after} (now {now})"
            ),
            OpError::NotYetValid { subject, not_before, now } => write!(
                f,
                "certificate '{subject}' is not valid yet: valid from {not_before} (now {now})"
            ),
            OpError::Revoked { subject, serial, crl } => write!(
                f,
                "certificate '{subject}' (serial {serial}) is revoked by the installed CRL {crl}"
            ),
            OpError::TooLarge { path, limit, what } => write!(
                f,
                "file {} is larger than {limit} bytes ({}), the limit for a {what}",
                path.display(),
                crate::bounded::human(*limit)
            ),
            OpError::Crl(m) | OpError::CrlNotTrusted(m) | OpError::NotFound(m) | OpError::Invalid(m) | OpError::Cluster(m) => f.write_str(m),
            OpError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OpError {}

impl From<CertError> for OpError {
    fn from(e: CertError) -> Self {
        OpError::Store(e)
    }
}

/// An exclusive lock on `ROOT/certs/.lock`, held while an operation reads,
/// checks and rewrites the folder (two admins uploading at once).
pub struct FolderLock {
    _file: File,
}

/// Take the certificate folder lock (creating the folder if needed).
pub fn lock(root: &Path) -> Result<FolderLock, OpError> {
    let dir = certs_dir(root);
    std::fs::create_dir_all(&dir).map_err(|e| CertError::io("create folder", &dir, e))?;
    let p = dir.join(".lock");
    // The lock file may have been made by another user (the first start, as whoever ran it):
    // `flock` needs no write access, so a read-only open locks as well.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => File::open(&p),
            _ => Err(e),
        })
        .map_err(|e| CertError::io("open", &p, e))?;
    file.lock().map_err(|e| CertError::io("lock", &p, e))?;
    Ok(FolderLock { _file: file })
}

/// Read a file named by a parameter: a regular file (a link is followed and its target
/// checked) of at most the limit of its kind ([`crate::bounded::LIMITS`]), so `/dev/zero` or a
/// FIFO is refused at once instead of hanging the session.
pub fn read_param_file(path: &str, kind: crate::bounded::FileKind) -> Result<Vec<u8>, OpError> {
    use crate::bounded::ReadError;
    crate::bounded::read(std::path::Path::new(path), kind).map_err(|e| match e {
        ReadError::TooLarge { path, kind, .. } => OpError::TooLarge {
            path,
            limit: kind.limit().bytes,
            what: kind.limit().what,
        },
        ReadError::Io { path, source, .. } => OpError::ReadFile { path, source },
        e => OpError::ReadFile {
            path: e.path().to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.reason()),
        },
    })
}

/// The certificate chain of a store as it is on disk, `Ok(None)` when the file is missing.
pub fn read_store_chain(
    root: &Path,
    store: StoreKind,
) -> Result<Option<Vec<CertificateDer<'static>>>, OpError> {
    let p = certs_dir(root).join(store.cert_file());
    match crate::bounded::read(&p, crate::bounded::FileKind::Certificate) {
        Ok(b) => parse_pem_certs(&b).map(Some).map_err(|e| OpError::Input {
            what: format!("{} store certificate {}", store.word(), p.display()),
            source: e,
        }),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(OpError::Store(e.into())),
    }
}

/// The decoded leaf of a store, `Ok(None)` when the store is empty.
pub fn store_leaf(root: &Path, store: StoreKind) -> Result<Option<CertInfo>, OpError> {
    match read_store_chain(root, store)? {
        Some(chain) => Ok(Some(decode(&chain[0], UnixTime::now())?)),
        None => Ok(None),
    }
}

/// One-line description for the audit log: `subject=..; serial=..; sha256=..`.
pub fn audit_line(info: Option<&CertInfo>) -> String {
    match info {
        Some(i) => format!(
            "subject={}; serial={}; sha256={}",
            i.subject, i.serial, i.sha256_fingerprint
        ),
        None => "none".into(),
    }
}

/// EKU names as shown: `serverAuth, clientAuth`, `none (no extension)`, `empty extension`.
pub fn eku_text(info: &CertInfo) -> String {
    info.ekus.text()
}

/// Normalise a fingerprint for comparison: hex digits only, upper-case.
pub fn normalise_fingerprint(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}
