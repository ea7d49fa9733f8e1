//! Certificate signing requests: "generate a CSR" for either store. The key
//! stays on this node in `generated_csr/` (mode 0600) while the request is
//! "in progress"; the certificate the CA issues for it is then uploaded
//! without a key, and the pending request is cleared. CSRs request serverAuth
//! and clientAuth by default (the seed's advice: a private CA honours
//! clientAuth, a public CA strips it).

use std::fs;
use std::path::Path;

use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, UnixTime};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

pub use crate::certs::files::csr_key::{CsrDigest, CsrKeyType};
use crate::certs::files::ops::{OpError, StoreKind};
use crate::certs::files::store::{
    certs_dir, write_file_atomic, CERT_MODE, GENERATED_CSR_DIR, KEY_MODE,
};
use crate::certs::x509::error::CertError;
use crate::certs::x509::info::{parse_pem_key, spki_key_type, unix_rfc3339};

/// State text when no request is pending (the product's wording).
pub const NO_CSR: &str = "no certificate signing request in progress";
/// State text while a request is pending (the product's wording).
pub const CSR_IN_PROGRESS: &str = "certificate signing request in progress";

/// EKUs a CSR asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestedEku {
    /// serverAuth + clientAuth (default).
    #[default]
    Both,
    /// serverAuth only.
    ServerAuth,
    /// clientAuth only.
    ClientAuth,
}

impl RequestedEku {
    /// Parse `Both` / `ServerAuth` / `ClientAuth` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "both" => Some(Self::Both),
            "serverauth" => Some(Self::ServerAuth),
            "clientauth" => Some(Self::ClientAuth),
            _ => None,
        }
    }
}

/// A pending request as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCsr {
    /// Store the request is for.
    pub store: StoreKind,
    /// The CSR PEM.
    pub pem: String,
    /// Requested subject.
    pub subject: String,
    /// Requested SANs (`DNS:x`, `IP:y`).
    pub sans: Vec<String>,
    /// Requested EKU names.
    pub ekus: Vec<String>,
    /// When it was generated (file time), RFC 3339.
    pub created: String,
    /// Key file path.
    pub key_path: String,
    /// CSR file path (what to send to the CA).
    pub csr_path: String,
    /// `ECDSA P-256`, `RSA 4096`, ...
    pub key_type: String,
    /// Signature algorithm of the request, e.g. `ecdsa-with-SHA256`, `sha384WithRSAEncryption`.
    pub signature: String,
}

/// File name of the pending CSR of a store.
pub fn csr_file(store: StoreKind) -> &'static str {
    match store {
        StoreKind::Server => "server.csr",
        StoreKind::Client => "client.csr",
    }
}

/// File name of the pending key of a store.
pub fn key_file(store: StoreKind) -> &'static str {
    match store {
        StoreKind::Server => "server-privkey.pem",
        StoreKind::Client => "client-privkey.pem",
    }
}

fn csr_dir(root: &Path) -> std::path::PathBuf {
    certs_dir(root).join(GENERATED_CSR_DIR)
}

/// The subject fields a request may carry besides the common name (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectFields {
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    /// Two letters (ISO 3166).
    pub country: Option<String>,
    pub state: Option<String>,
    pub locality: Option<String>,
}

/// What to ask the CA for, and the key to make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrRequest {
    pub common_name: String,
    /// DNS names or IP addresses; the common name when empty.
    pub sans: Vec<String>,
    pub eku: RequestedEku,
    pub subject: SubjectFields,
    pub key: CsrKeyType,
    /// `None`: the key's default (SHA-256; SHA-384 for P-384).
    pub digest: Option<CsrDigest>,
}

fn subject(req: &CsrRequest, cn: &str) -> Result<DistinguishedName, OpError> {
    let mut dn = DistinguishedName::new();
    let f = &req.subject;
    if let Some(c) = f
        .country
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()) {
            return Err(OpError::Invalid(format!(
                "Country must be a two-letter country code (ISO 3166, e.g. DE), not '{c}'"
            )));
        }
        dn.push(DnType::CountryName, c.to_ascii_uppercase());
    }
    for (ty, v) in [
        (DnType::StateOrProvinceName, &f.state),
        (DnType::LocalityName, &f.locality),
        (DnType::OrganizationName, &f.organization),
        (DnType::OrganizationalUnitName, &f.organizational_unit),
    ] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            dn.push(ty, v);
        }
    }
    dn.push(DnType::CommonName, cn);
    Ok(dn)
}

/// Generate a key and a CSR for `store` and keep them as the pending request
/// (replacing an earlier one). The common name is added as a DNS name when no
/// SAN is given. Nothing is written when a field or the key/digest choice is
/// refused. Returns the new pending request and whether an earlier one was replaced.
pub fn generate(
    root: &Path,
    store: StoreKind,
    req: &CsrRequest,
) -> Result<(PendingCsr, bool), OpError> {
    let cn = req.common_name.trim();
    if cn.is_empty() {
        return Err(OpError::Invalid("CommonName must not be empty".into()));
    }
    let mut names: Vec<String> = req
        .sans
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        names.push(cn.to_string());
    }
    for n in &names {
        if n.parse::<std::net::IpAddr>().is_err() && !valid_dns_name(n) {
            return Err(OpError::Invalid(format!(
                "SubjectAltName '{n}' is neither a DNS name nor an IP address"
            )));
        }
    }
    let (alg, _) = req.key.algorithm(req.digest)?;
    let mut params = CertificateParams::new(names).map_err(CertError::from)?;
    params.distinguished_name = subject(req, cn)?;
    use ExtendedKeyUsagePurpose as P;
    params.extended_key_usages = match req.eku {
        RequestedEku::Both => vec![P::ServerAuth, P::ClientAuth],
        RequestedEku::ServerAuth => vec![P::ServerAuth],
        RequestedEku::ClientAuth => vec![P::ClientAuth],
    };
    let key = req.key.generate(alg)?;
    let csr = params.serialize_request(&key).map_err(CertError::from)?;
    let csr_pem = csr.pem().map_err(CertError::from)?;
    let dir = csr_dir(root);
    fs::create_dir_all(&dir).map_err(|e| CertError::io("create folder", &dir, e))?;
    let replaced = dir.join(csr_file(store)).exists();
    // Key first: a CSR on disk always has its key.
    write_file_atomic(
        &dir,
        key_file(store),
        key.serialize_pem().as_bytes(),
        KEY_MODE,
    )?;
    write_file_atomic(&dir, csr_file(store), csr_pem.as_bytes(), CERT_MODE)?;
    let pending = pending(root, store)?
        .ok_or_else(|| OpError::NotFound("the generated request disappeared".into()))?;
    Ok((pending, replaced))
}

/// The pending request of `store`, if any.
pub fn pending(root: &Path, store: StoreKind) -> Result<Option<PendingCsr>, OpError> {
    let dir = csr_dir(root);
    let p = dir.join(csr_file(store));
    let pem = match crate::bounded::read(&p, crate::bounded::FileKind::Certificate) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(CertError::from(e).into()),
    };
    let created = fs::metadata(&p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| unix_rfc3339(UnixTime::since_unix_epoch(d)))
        .unwrap_or_default();
    let der = rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| {
            OpError::Invalid(format!(
                "pending request {} is not a valid CSR: {e}",
                p.display()
            ))
        })?;
    let (_, req) = X509CertificationRequest::from_der(der.as_ref()).map_err(|e| {
        OpError::Invalid(format!(
            "pending request {} does not parse: {e}",
            p.display()
        ))
    })?;
    let mut sans = Vec::new();
    let mut ekus = Vec::new();
    if let Some(exts) = req.requested_extensions() {
        for ext in exts {
            match ext {
                ParsedExtension::SubjectAlternativeName(s) => {
                    for n in &s.general_names {
                        sans.push(match n {
                            GeneralName::DNSName(d) => format!("DNS:{d}"),
                            GeneralName::IPAddress(b) if b.len() == 4 => {
                                format!("IP:{}", std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                            }
                            GeneralName::IPAddress(b) if b.len() == 16 => {
                                let mut a = [0u8; 16];
                                a.copy_from_slice(b);
                                format!("IP:{}", std::net::Ipv6Addr::from(a))
                            }
                            other => format!("{other}"),
                        });
                    }
                }
                ParsedExtension::ExtendedKeyUsage(e) => {
                    if e.server_auth {
                        ekus.push("serverAuth".to_string());
                    }
                    if e.client_auth {
                        ekus.push("clientAuth".to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Some(PendingCsr {
        store,
        subject: req.certification_request_info.subject.to_string(),
        pem,
        sans,
        ekus,
        created,
        key_path: dir.join(key_file(store)).display().to_string(),
        csr_path: p.display().to_string(),
        key_type: spki_key_type(&req.certification_request_info.subject_pki),
        signature: signature_name(&req.signature_algorithm.algorithm.to_id_string()),
    }))
}

/// The pending key of `store`, if a request is in progress.
pub fn pending_key(
    root: &Path,
    store: StoreKind,
) -> Result<Option<PrivateKeyDer<'static>>, OpError> {
    let p = csr_dir(root).join(key_file(store));
    match crate::bounded::read(&p, crate::bounded::FileKind::Key) {
        Ok(b) => parse_pem_key(&b).map(Some).map_err(|e| OpError::Input {
            what: format!("pending key {}", p.display()),
            source: e,
        }),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(CertError::from(e).into()),
    }
}

/// Drop the pending request of `store` (after its certificate was uploaded, or on request).
/// Returns true when there was one.
pub fn clear(root: &Path, store: StoreKind) -> Result<bool, OpError> {
    let dir = csr_dir(root);
    let mut had = false;
    for name in [csr_file(store), key_file(store)] {
        let p = dir.join(name);
        match fs::remove_file(&p) {
            Ok(()) => had = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CertError::io("remove", p, e).into()),
        }
    }
    Ok(had)
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        other => other,
    }
    .to_string()
}

fn valid_dns_name(n: &str) -> bool {
    let n = n.strip_prefix("*.").unwrap_or(n);
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}
