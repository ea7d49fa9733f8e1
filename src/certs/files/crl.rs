//! Certificate revocation lists: `client-ca.crl` (CRLs of the CAs that issue
//! peers' and this node's certificates) and `policy-services.crl`. A CRL is
//! accepted only when its issuer is in the trusted CA list and its signature
//! verifies; a newer CRL of the same issuer replaces the older one. Uploads
//! refuse a certificate listed in an installed CRL of its issuer.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::certs::files::calist::load_ca_list;
use crate::certs::files::ops::OpError;
use crate::certs::files::store::{
    certs_dir, write_file_atomic, CERT_MODE, CLIENT_CA_CRL, POLICY_SERVICES_CRL,
};
use crate::certs::x509::error::CertError;
use crate::certs::x509::info::unix_rfc3339;
use crate::certs::x509::pemenc;

/// The CRL files, in listing order.
pub const CRL_FILES: [&str; 2] = [CLIENT_CA_CRL, POLICY_SERVICES_CRL];

/// One installed CRL, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// File it is in.
    pub file: String,
    /// Issuer subject.
    pub issuer: String,
    /// thisUpdate, RFC 3339.
    pub this_update: String,
    /// nextUpdate, RFC 3339 (empty when absent).
    pub next_update: String,
    /// Number of revoked certificates.
    pub revoked: usize,
    /// nextUpdate is in the past.
    pub stale: bool,
}

/// What [`add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The CRLs added, decoded.
    pub added: Vec<CrlInfo>,
    /// How many older CRLs of the same issuers were replaced.
    pub replaced: usize,
    /// Warnings (stale CRLs).
    pub warnings: Vec<String>,
}

fn parse_all(pem: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let mut out = Vec::new();
    for item in CertificateRevocationListDer::pem_slice_iter(pem) {
        out.push(item.map_err(|e| format!("CRL PEM input is not valid: {e}"))?);
    }
    Ok(out)
}

fn read_file(
    root: &Path,
    name: &str,
) -> Result<Vec<CertificateRevocationListDer<'static>>, OpError> {
    let p = certs_dir(root).join(name);
    match crate::bounded::read(&p, crate::bounded::FileKind::Crl) {
        Ok(b) => parse_all(&b).map_err(|e| OpError::Crl(format!("{}: {e}", p.display()))),
        Err(e) if e.is_missing() => Ok(Vec::new()),
        Err(e) => Err(CertError::from(e).into()),
    }
}

fn describe(file: &str, crl: &CertificateRevocationList<'_>, now: UnixTime) -> CrlInfo {
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let next = crl.next_update();
    CrlInfo {
        file: file.to_string(),
        issuer: crl.issuer().to_string(),
        this_update: ts(crl.last_update().timestamp()),
        next_update: next.map(|t| ts(t.timestamp())).unwrap_or_default(),
        revoked: crl.iter_revoked_certificates().count(),
        stale: next.is_some_and(|t| t.timestamp() < now_secs),
    }
}

fn ts(secs: i64) -> String {
    unix_rfc3339(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(secs).unwrap_or(0),
    )))
}

/// Add the CRLs of `pem` to `file` (one of [`CRL_FILES`]).
pub fn add(root: &Path, file: &str, pem: &[u8], now: UnixTime) -> Result<Added, OpError> {
    if !CRL_FILES.contains(&file) {
        return Err(OpError::Invalid(format!(
            "'{file}' is not a CRL file of this node"
        )));
    }
    let new = parse_all(pem).map_err(OpError::Crl)?;
    if new.is_empty() {
        return Err(OpError::Crl("no X509 CRL found in PEM input".into()));
    }
    let anchors = load_ca_list(root)?.ok_or_else(|| {
        OpError::CrlNotTrusted("the trusted CA list is empty: add the CRL issuer's CA first".into())
    })?;
    let mut installed = read_file(root, file)?;
    let mut out = Added {
        added: Vec::new(),
        replaced: 0,
        warnings: Vec::new(),
    };
    for (n, der) in new.into_iter().enumerate() {
        let (_, crl) = CertificateRevocationList::from_der(der.as_ref())
            .map_err(|e| OpError::Crl(format!("CRL #{} does not parse: {e}", n + 1)))?;
        let issuer_raw = crl.issuer().as_raw().to_vec();
        let ca = anchors.ders().iter().find_map(|d| {
            let (_, x) = X509Certificate::from_der(d.as_ref()).ok()?;
            (x.subject().as_raw() == issuer_raw.as_slice()).then_some(x)
        });
        let Some(ca) = ca else {
            return Err(OpError::CrlNotTrusted(format!(
                "CRL issuer '{}' is not in the trusted CA list; add that CA first",
                crl.issuer()
            )));
        };
        crl.verify_signature(ca.public_key()).map_err(|e| {
            OpError::CrlNotTrusted(format!(
                "signature of the CRL of '{}' does not verify with that CA's key: {}",
                crl.issuer(),
                e.to_string().to_lowercase()
            ))
        })?;
        let info = describe(file, &crl, now);
        if info.stale {
            out.warnings.push(format!(
                "CRL of '{}' is stale: next update was due at {}",
                info.issuer, info.next_update
            ));
        }
        let this = crl.last_update().timestamp();
        let mut keep = Vec::new();
        for old in installed.drain(..) {
            let same = CertificateRevocationList::from_der(old.as_ref())
                .ok()
                .filter(|(_, o)| o.issuer().as_raw() == issuer_raw.as_slice())
                .map(|(_, o)| o.last_update().timestamp());
            match same {
                Some(t) if t > this => {
                    return Err(OpError::Crl(format!(
                        "CRL of '{}' is older than the installed one (this update {} before {})",
                        info.issuer,
                        info.this_update,
                        ts(t)
                    )))
                }
                Some(_) => out.replaced += 1,
                None => keep.push(old),
            }
        }
        installed = keep;
        installed.push(der.clone());
        out.added.push(info);
    }
    let text: String = installed
        .iter()
        .map(|d| pemenc::block("X509 CRL", d.as_ref()))
        .collect();
    crate::certs::files::calist::shared(
        root,
        file,
        text.as_bytes(),
        &format!("{file}: {} CRL(s)", installed.len()),
    )?;
    write_file_atomic(&certs_dir(root), file, text.as_bytes(), CERT_MODE)?;
    Ok(out)
}

/// Every installed CRL, in file order.
pub fn list(root: &Path, now: UnixTime) -> Result<Vec<CrlInfo>, OpError> {
    let mut out = Vec::new();
    for file in CRL_FILES {
        for (n, der) in read_file(root, file)?.iter().enumerate() {
            let (_, crl) = CertificateRevocationList::from_der(der.as_ref())
                .map_err(|e| OpError::Crl(format!("{file}: CRL #{} does not parse: {e}", n + 1)))?;
            out.push(describe(file, &crl, now));
        }
    }
    Ok(out)
}

/// Every installed CRL (both files), for the handshake's revocation check.
pub fn read_all(root: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, OpError> {
    let mut out = Vec::new();
    for file in CRL_FILES {
        out.extend(read_file(root, file)?);
    }
    Ok(out)
}

/// Refuse a chain whose leaf is listed by an installed CRL of its issuer.
pub fn check_not_revoked(root: &Path, chain: &[CertificateDer<'_>]) -> Result<(), OpError> {
    let Some(leaf) = chain.first() else {
        return Ok(());
    };
    let Ok((_, x)) = X509Certificate::from_der(leaf.as_ref()) else {
        return Ok(());
    };
    for file in CRL_FILES {
        for der in read_file(root, file).unwrap_or_default() {
            let Ok((_, crl)) = CertificateRevocationList::from_der(der.as_ref()) else {
                continue;
            };
            if crl.issuer().as_raw() != x.issuer().as_raw() {
                continue;
            }
            if crl
                .iter_revoked_certificates()
                .any(|r| r.raw_serial() == x.raw_serial())
            {
                return Err(OpError::Revoked {
                    subject: x.subject().to_string(),
                    serial: x.raw_serial_as_string().to_uppercase(),
                    crl: file.to_string(),
                });
            }
        }
    }
    Ok(())
}
