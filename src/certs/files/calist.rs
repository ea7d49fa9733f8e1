//! The trusted CA list `ca.pem`, shared by both stores: add (deduplicated by
//! fingerprint), remove by SHA-256 fingerprint or subject, list. Every
//! certificate of the list is a trust anchor whose own EKU is not checked;
//! adding an intermediate (not self-signed) says how that differs from OpenSSL.

use std::path::Path;

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::certs::files::ops::{normalise_fingerprint, OpError};
use crate::certs::files::store::{certs_dir, write_file_atomic, CA_LIST, CERT_MODE};
use crate::certs::x509::anchors::TrustAnchors;
use crate::certs::x509::error::CertError;
use crate::certs::x509::info::{decode, parse_pem_certs, CertInfo};
use crate::certs::x509::pemenc;

/// What [`add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// Newly added CAs.
    pub added: Vec<CertInfo>,
    /// Already present (same fingerprint), skipped.
    pub skipped: Vec<CertInfo>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Size of the list afterwards.
    pub total: usize,
}

/// Text warning about an intermediate used as a trust anchor.
pub fn intermediate_anchor_note(subject: &str) -> String {
    format!(
        "'{subject}' is not self-signed: as a trust anchor its own EKU is not checked (xsh and webpki), whereas openssl verify checks the EKU of trusted certificates and wants a self-signed root, so OpenSSL-based peers may decide differently"
    )
}

/// The current list as DER, in file order (empty when missing).
pub fn read(root: &Path) -> Result<Vec<CertificateDer<'static>>, OpError> {
    let p = certs_dir(root).join(CA_LIST);
    match crate::bounded::read(&p, crate::bounded::FileKind::CaList) {
        Ok(b) => match parse_pem_certs(&b) {
            Ok(v) => Ok(v),
            Err(CertError::NoCertificates) => Ok(Vec::new()),
            Err(e) => Err(OpError::Input {
                what: format!("trusted CA list {}", p.display()),
                source: e,
            }),
        },
        Err(e) if e.is_missing() => Ok(Vec::new()),
        Err(e) => Err(CertError::from(e).into()),
    }
}

fn write(root: &Path, ders: &[CertificateDer<'_>]) -> Result<(), OpError> {
    let text = pemenc::certs(ders);
    shared(
        root,
        CA_LIST,
        text.as_bytes(),
        &format!("trusted CA list: {} certificate(s)", ders.len()),
    )?;
    write_file_atomic(&certs_dir(root), CA_LIST, text.as_bytes(), CERT_MODE)?;
    Ok(())
}

/// In a cluster, `file` is shared: the cluster gets the new bytes (one transaction with its
/// audit record) before the local file, which is then its cache. Nothing outside a cluster.
pub(crate) fn shared(root: &Path, file: &str, bytes: &[u8], what: &str) -> Result<(), OpError> {
    crate::store::cluster::shared::put_file(root, file, bytes, what)
        .map(drop)
        .map_err(|e| OpError::Cluster(e.to_string()))
}

/// Add every certificate of `pem`.
pub fn add(root: &Path, pem: &[u8], now: UnixTime) -> Result<Added, OpError> {
    let new = parse_pem_certs(pem).map_err(|e| OpError::Input {
        what: "CA certificate".into(),
        source: e,
    })?;
    // Each must be usable as a trust anchor.
    TrustAnchors::from_der(new.clone()).map_err(|e| OpError::Input {
        what: "CA certificate".into(),
        source: e,
    })?;
    let mut list = read(root)?;
    let mut have: Vec<String> = list
        .iter()
        .filter_map(|d| decode(d, now).ok().map(|i| i.sha256_fingerprint))
        .collect();
    let mut out = Added {
        added: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
        total: 0,
    };
    for der in new {
        let info = decode(&der, now)?;
        if have.contains(&info.sha256_fingerprint) {
            out.skipped.push(info);
            continue;
        }
        if !info.is_ca {
            out.warnings.push(format!(
                "'{}' is not a CA certificate (basicConstraints cA is not set); it is trusted as an anchor for itself only",
                info.subject
            ));
        } else if !info.is_self_signed {
            out.warnings.push(intermediate_anchor_note(&info.subject));
        }
        if info.days_left < 0 {
            out.warnings
                .push(format!("'{}' expired at {}", info.subject, info.not_after));
        }
        have.push(info.sha256_fingerprint.clone());
        list.push(der);
        out.added.push(info);
    }
    if !out.added.is_empty() {
        write(root, &list)?;
    }
    out.total = list.len();
    Ok(out)
}

/// Remove by fingerprint (any case, colons optional) and/or subject (as shown
/// by the list, case-insensitive). Returns the removed CAs and the new size.
pub fn remove(
    root: &Path,
    fingerprint: Option<&str>,
    subject: Option<&str>,
    now: UnixTime,
) -> Result<(Vec<CertInfo>, usize), OpError> {
    let fp = fingerprint
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(normalise_fingerprint);
    let subj = subject.map(str::trim).filter(|s| !s.is_empty());
    if fp.is_none() && subj.is_none() {
        return Err(OpError::Invalid(
            "give Fingerprint or Subject of the CA to remove".into(),
        ));
    }
    if let Some(f) = &fp {
        if f.len() != 64 {
            return Err(OpError::Invalid(format!(
                "Fingerprint must be a SHA-256 fingerprint (64 hex digits), got {} hex digits",
                f.len()
            )));
        }
    }
    let list = read(root)?;
    let mut keep = Vec::new();
    let mut removed = Vec::new();
    for der in list {
        let info = decode(&der, now)?;
        let hit = fp
            .as_ref()
            .is_none_or(|f| normalise_fingerprint(&info.sha256_fingerprint) == *f)
            && subj.is_none_or(|s| info.subject.eq_ignore_ascii_case(s));
        if hit {
            removed.push(info);
        } else {
            keep.push(der);
        }
    }
    if removed.is_empty() {
        let what = match (fingerprint, subj) {
            (Some(f), Some(s)) if fp.is_some() => {
                format!("fingerprint {} and subject '{s}'", f.trim())
            }
            (Some(f), _) if fp.is_some() => format!("fingerprint {}", f.trim()),
            (_, Some(s)) => format!("subject '{s}'"),
            _ => "that selection".into(),
        };
        return Err(OpError::NotFound(format!(
            "no certificate in the trusted CA list has {what}"
        )));
    }
    write(root, &keep)?;
    Ok((removed, keep.len()))
}

/// Every CA, decoded, in file order.
pub fn list(root: &Path, now: UnixTime) -> Result<Vec<CertInfo>, OpError> {
    read(root)?
        .iter()
        .map(|d| decode(d, now).map_err(OpError::from))
        .collect()
}

/// Replace the CA with fingerprint `old_fp` by `new` (used when the default
/// server certificate, which a new node trusts, is reset). Returns false and
/// changes nothing when `old_fp` is not in the list.
pub fn replace(
    root: &Path,
    old_fp: &str,
    new: CertificateDer<'static>,
    now: UnixTime,
) -> Result<bool, OpError> {
    match replaced(root, old_fp, new, now)? {
        Some(text) => {
            shared(
                root,
                CA_LIST,
                text.as_bytes(),
                "trusted CA list: one CA replaced",
            )?;
            write_file_atomic(&certs_dir(root), CA_LIST, text.as_bytes(), CERT_MODE)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The text `ca.pem` gets when the CA with fingerprint `old_fp` is replaced by
/// `new`, written by nobody (the caller makes it part of a larger change);
/// `None` when `old_fp` is not in the list.
pub fn replaced(
    root: &Path,
    old_fp: &str,
    new: CertificateDer<'static>,
    now: UnixTime,
) -> Result<Option<String>, OpError> {
    let want = normalise_fingerprint(old_fp);
    let mut list = read(root)?;
    let Some(pos) = list.iter().position(|d| {
        decode(d, now).is_ok_and(|i| normalise_fingerprint(&i.sha256_fingerprint) == want)
    }) else {
        return Ok(None);
    };
    list[pos] = new;
    Ok(Some(pemenc::certs(&list)))
}

/// Load `ROOT/certs/ca.pem` as anchors; `Ok(None)` when it is missing or holds no certificate.
pub fn load_ca_list(
    root: &std::path::Path,
) -> Result<Option<TrustAnchors>, crate::certs::x509::error::CertError> {
    let p = crate::certs::files::store::certs_dir(root).join(crate::certs::files::store::CA_LIST);
    let bytes = match crate::bounded::read(&p, crate::bounded::FileKind::CaList) {
        Ok(b) => b,
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match TrustAnchors::from_pem(&bytes) {
        Ok(a) => Ok(Some(a)),
        Err(crate::certs::x509::error::CertError::EmptyTrustList) => Ok(None),
        Err(e) => Err(e),
    }
}
