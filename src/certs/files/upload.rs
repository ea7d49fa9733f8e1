//! Uploading a certificate + key into the server or the client store, with
//! every check before anything is written: PEM parses, key matches, the leaf
//! is not a CA, validity (refuse expired / not yet valid, warn within 30
//! days), revocation by installed CRLs, the store's EKU rule (client store:
//! the product's clientAuth refusal; server store: serverAuth), and the chain
//! to the trusted CA list (a clear warning when untrusted). "Upload server
//! certificate file as client certificate" (`also_as_client`) copies the same
//! pair into the client store even when it is serverAuth-only.

use std::path::Path;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::certs::files::calist::load_ca_list;
use crate::certs::files::crl;
use crate::certs::files::csr;
use crate::certs::files::journal::{self, Audit, FileChange, Note};
use crate::certs::files::ops::{self, OpError, StoreKind, EXPIRY_WARNING_DAYS};
use crate::certs::files::store::{certs_dir, pair_changes, GENERATED_CSR_DIR};
use crate::certs::policy::{self, EkuMode, Lack, Role};
use crate::certs::verify::trust::verify_trust;
use crate::certs::x509::error::CertError;
use crate::certs::x509::info::{
    decode, key_matches_cert, parse_pem_certs, parse_pem_key, CertInfo,
};
use crate::certs::x509::pemenc;
use crate::store::{Store, Who};

/// Where the key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// A separate key file/text.
    Given,
    /// The same PEM text as the certificate.
    WithCertificate,
    /// The key of the pending CSR of the store.
    PendingRequest,
}

impl KeySource {
    /// How it is shown.
    pub fn text(self) -> &'static str {
        match self {
            KeySource::Given => "key file",
            KeySource::WithCertificate => "with the certificate",
            KeySource::PendingRequest => "certificate signing request in progress",
        }
    }
}

/// What to upload.
#[derive(Debug, Clone)]
pub struct UploadInput {
    /// The target store.
    pub store: StoreKind,
    /// PEM text with the certificate chain (leaf first), possibly also the key.
    pub cert_pem: Vec<u8>,
    /// PEM text of the key, when given separately.
    pub key_pem: Option<Vec<u8>>,
    /// Server store only: copy the pair into the client store too.
    pub also_as_client: bool,
}

/// Whether the chain leads to the trusted CA list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Trusted, ending at this anchor subject.
    Trusted(String),
    /// Not trusted, with the reason.
    Untrusted(String),
}

impl Trust {
    /// True when trusted.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Trust::Trusted(_))
    }
}

/// A checked upload, ready to be written. `Debug` leaves the private key out.
#[derive(Clone)]
pub struct Checked {
    /// The request.
    pub store: StoreKind,
    /// Also copied into the client store.
    pub also_as_client: bool,
    /// Decoded leaf.
    pub info: CertInfo,
    /// Number of certificates in the chain.
    pub chain_len: usize,
    /// Trust result.
    pub trust: Trust,
    /// Key origin.
    pub key_source: KeySource,
    /// Warnings to show (the upload still goes ahead).
    pub warnings: Vec<String>,
    /// The uploaded key equals the pending CSR key of the store.
    pub completes_request: bool,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("store", &self.store)
            .field("also_as_client", &self.also_as_client)
            .field("info", &self.info)
            .field("chain_len", &self.chain_len)
            .field("trust", &self.trust)
            .field("key_source", &self.key_source)
            .field("warnings", &self.warnings)
            .field("completes_request", &self.completes_request)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What [`commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Previous certificate of the target store (audit line).
    pub old: String,
    /// Previous certificate of the client store when `also_as_client` (audit line).
    pub old_client: Option<String>,
    /// The pending CSR of the store was cleared.
    pub cleared_request: bool,
}

fn input_err(what: &str) -> impl Fn(CertError) -> OpError + '_ {
    move |source| OpError::Input {
        what: what.to_string(),
        source,
    }
}

fn is_encrypted(pem: &[u8]) -> bool {
    let s = String::from_utf8_lossy(pem);
    s.contains("ENCRYPTED PRIVATE KEY") || s.contains("Proc-Type: 4,ENCRYPTED")
}

fn pick_key(
    root: &Path,
    input: &UploadInput,
) -> Result<(PrivateKeyDer<'static>, KeySource), OpError> {
    if let Some(k) = &input.key_pem {
        if is_encrypted(k) {
            return Err(OpError::EncryptedKey);
        }
        return Ok((
            parse_pem_key(k).map_err(input_err("private key"))?,
            KeySource::Given,
        ));
    }
    match parse_pem_key(&input.cert_pem) {
        Ok(k) => Ok((k, KeySource::WithCertificate)),
        Err(CertError::NoPrivateKey) => {
            if is_encrypted(&input.cert_pem) {
                return Err(OpError::EncryptedKey);
            }
            match csr::pending_key(root, input.store)? {
                Some(k) => Ok((k, KeySource::PendingRequest)),
                None => Err(OpError::NoKey { store: input.store }),
            }
        }
        Err(e) => Err(input_err("private key")(e)),
    }
}

/// Run every check; nothing is written.
pub fn check(root: &Path, input: &UploadInput, now: UnixTime) -> Result<Checked, OpError> {
    if input.also_as_client && input.store == StoreKind::Client {
        return Err(OpError::Invalid(
            "AlsoAsClient applies to the server store upload only".into(),
        ));
    }
    let chain = parse_pem_certs(&input.cert_pem).map_err(input_err("certificate"))?;
    let (key, key_source) = pick_key(root, input)?;
    let leaf = &chain[0];
    let info = decode(leaf, now)?;
    if info.is_ca {
        return Err(OpError::CaAsLeaf {
            subject: info.subject.clone(),
        });
    }
    let matches = key_matches_cert(leaf, &key).map_err(input_err("private key"))?;
    if !matches {
        return Err(OpError::KeyMismatch {
            subject: info.subject.clone(),
            pending: key_source == KeySource::PendingRequest,
        });
    }
    check_validity(&chain, now)?;
    crl::check_not_revoked(root, &chain)?;
    let mut warnings = Vec::new();
    let role = match input.store {
        StoreKind::Client => Role::InboundClient,
        StoreKind::Server => Role::Server,
    };
    // The client store is held to what a peer checking On accepts (the product's "client usage
    // attribute"); the policy decides it, so a certificate without an EKU extension (any purpose)
    // goes in, as the verifier would accept it.
    if let Err(r) = policy::decide(role, EkuMode::On, [&info.ekus]) {
        return Err(match (r.lack, input.store) {
            (Lack::EmptyExtension, _) => OpError::EmptyEku {
                subject: info.subject.clone(),
            },
            (_, StoreKind::Client) => OpError::NoClientUsage,
            (_, StoreKind::Server) => OpError::NoServerUsage {
                subject: info.subject.clone(),
                present: r.present.iter().map(|e| e.name().to_string()).collect(),
            },
        });
    }
    let client_bound = input.store == StoreKind::Client || input.also_as_client;
    if client_bound {
        warnings.extend(client_warnings(
            &info,
            &chain[1..],
            input.also_as_client,
            now,
        )?);
    }
    if input.store == StoreKind::Server && !input.also_as_client {
        let server = ops::store_leaf(root, StoreKind::Server).ok().flatten();
        let client = ops::store_leaf(root, StoreKind::Client).ok().flatten();
        if let (Some(s), Some(c)) = (server, client) {
            if s.sha256_fingerprint == c.sha256_fingerprint {
                warnings.push(format!(
                    "the client store keeps the previous certificate '{}' (it was the same as the server store); add AlsoAsClient: True to copy this one there too",
                    c.subject
                ));
            }
        }
    }
    if info.days_left < EXPIRY_WARNING_DAYS {
        warnings.push(format!(
            "certificate expires in {} day{} (at {})",
            info.days_left,
            if info.days_left == 1 { "" } else { "s" },
            info.not_after
        ));
    }
    let trust = match load_ca_list(root)? {
        None => Trust::Untrusted("the trusted CA list is empty".into()),
        Some(anchors) => match verify_trust(leaf, &chain[1..], &anchors, now) {
            Ok(anchor) => Trust::Trusted(anchor),
            Err(e) => Trust::Untrusted(e.to_string()),
        },
    };
    if let Trust::Untrusted(why) = &trust {
        warnings.push(format!(
            "certificate is not trusted: {why}; peers that verify this node against the same CA list will reject it (add the issuing CA with xCommand Security Certificates CA Add)"
        ));
    }
    let completes_request = match csr::pending_key(root, input.store) {
        Ok(Some(k)) => key_matches_cert(leaf, &k).unwrap_or(false),
        _ => false,
    };
    Ok(Checked {
        store: input.store,
        also_as_client: input.also_as_client,
        chain_len: chain.len(),
        trust,
        key_source,
        warnings,
        completes_request,
        cert_pem: pemenc::certs(&chain),
        key_pem: pemenc::key(&key),
        info,
    })
}

/// What a peer checking clientAuth (mode On, the tunnel) will hold against this chain.
fn client_warnings(
    leaf: &CertInfo,
    inters: &[CertificateDer<'_>],
    also_as_client: bool,
    now: UnixTime,
) -> Result<Vec<String>, OpError> {
    let mut warnings = Vec::new();
    if also_as_client && policy::decide(Role::InboundClient, EkuMode::On, [&leaf.ekus]).is_err() {
        warnings.push(format!(
            "the client store now holds a certificate without clientAuth ({}): peers with EKU checking On will reject this node as a TLS client, and tunnels (port 2222) will fail",
            ops::eku_text(leaf)
        ));
    }
    for inter in inters {
        let i = decode(inter, now)?;
        if policy::decide(Role::InboundClient, EkuMode::On, [&i.ekus]).is_err() {
            let listed = i.ekus.listed();
            warnings.push(format!(
                "intermediate '{}' lists {} but not clientAuth: peers with EKU checking On reject this chain unless they list that intermediate itself as a trust anchor (xsh/webpki then skip its EKU; OpenSSL still checks it)",
                i.subject,
                if listed.is_empty() { "nothing".to_string() } else { i.ekus.names(", ") }
            ));
        }
    }
    Ok(warnings)
}

fn check_validity(chain: &[CertificateDer<'_>], now: UnixTime) -> Result<(), OpError> {
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let now_text = crate::certs::x509::info::unix_rfc3339(now);
    for c in chain {
        let i = decode(c, now)?;
        let (nb, na) = validity_secs(c).unwrap_or((i64::MIN, i64::MAX));
        if na < now_secs {
            return Err(OpError::Expired {
                subject: i.subject,
                not_after: i.not_after,
                now: now_text,
            });
        }
        if nb > now_secs {
            return Err(OpError::NotYetValid {
                subject: i.subject,
                not_before: i.not_before,
                now: now_text,
            });
        }
    }
    Ok(())
}

fn validity_secs(c: &CertificateDer<'_>) -> Option<(i64, i64)> {
    use x509_parser::prelude::FromDer;
    let (_, x) = x509_parser::certificate::X509Certificate::from_der(c.as_ref()).ok()?;
    Some((
        x.validity().not_before.timestamp(),
        x.validity().not_after.timestamp(),
    ))
}

/// Where and as whom an upload is audited: the command's path words.
pub struct AuditAs<'a> {
    pub store: &'a Store,
    pub who: &'a Who,
    pub path: &'a str,
}

/// Write a checked upload as one change ([`journal`]): the pair into its store
/// (and into the client store with `also_as_client`) and the removal of the
/// pending CSR it completes, with its audit records written before any file.
/// The caller holds the folder lock.
pub fn commit(root: &Path, c: &Checked, audit: Option<AuditAs<'_>>) -> Result<Committed, OpError> {
    let dir = certs_dir(root);
    let leaf_line = |s| ops::audit_line(ops::store_leaf(root, s).ok().flatten().as_ref());
    let old = leaf_line(c.store);
    let (cert, key) = (c.cert_pem.as_bytes(), c.key_pem.as_bytes());
    let mut changes = pair_changes(c.store.cert_file(), c.store.key_file(), cert, key);
    let new = ops::audit_line(Some(&c.info));
    let mut notes = vec![Note {
        path: audit
            .as_ref()
            .map_or_else(String::new, |a| a.path.to_string()),
        old: old.clone(),
        new: new.clone(),
        result: if c.also_as_client {
            "applied (also as client)"
        } else {
            "applied"
        }
        .into(),
    }];
    let mut old_client = None;
    if c.also_as_client {
        let o = leaf_line(StoreKind::Client);
        changes.extend(pair_changes(
            StoreKind::Client.cert_file(),
            StoreKind::Client.key_file(),
            cert,
            key,
        ));
        notes.push(Note {
            path: "Security Certificates Client Upload".into(),
            old: o.clone(),
            new,
            result: "applied (copy of the server upload, AlsoAsClient)".into(),
        });
        old_client = Some(o);
    }
    let mut cleared_request = false;
    if c.completes_request {
        for name in [csr::csr_file(c.store), csr::key_file(c.store)] {
            let name = format!("{GENERATED_CSR_DIR}/{name}");
            if dir.join(&name).exists() {
                cleared_request = true;
                changes.push(FileChange::remove(&name));
            }
        }
    }
    let audit = audit.map(|a| Audit {
        store: a.store,
        who: a.who,
        notes,
    });
    journal::change(&dir, changes, audit)?;
    Ok(Committed {
        old,
        old_client,
        cleared_request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::pki::{LeafEku, LeafSpec, TestCa};

    #[test]
    fn debug_of_a_checked_upload_never_shows_the_key() {
        let root = tempfile::tempdir().unwrap();
        let ca = TestCa::private_ca1().unwrap();
        let leaf = ca
            .issue(&LeafSpec::new("c.example", LeafEku::Both))
            .unwrap();
        let input = UploadInput {
            store: StoreKind::Client,
            cert_pem: leaf.chain_pem.clone().into_bytes(),
            key_pem: Some(leaf.key_pem.clone().into_bytes()),
            also_as_client: false,
        };
        let c = check(root.path(), &input, UnixTime::now()).unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    /// No EKU extension = any purpose (the policy): the client store takes it, and copying it
    /// there with AlsoAsClient draws no clientAuth warning; a serverAuth-only one still does.
    #[test]
    fn certificate_without_eku_goes_into_the_client_store_without_warning() {
        let root = tempfile::tempdir().unwrap();
        let ca = TestCa::private_ca1().unwrap();
        let leaf = ca
            .issue(&LeafSpec::new("any.example", LeafEku::None))
            .unwrap();
        let input = |store, also_as_client, l: &crate::certs::pki::IssuedLeaf| UploadInput {
            store,
            cert_pem: l.chain_pem.clone().into_bytes(),
            key_pem: Some(l.key_pem.clone().into_bytes()),
            also_as_client,
        };
        let c = check(
            root.path(),
            &input(StoreKind::Client, false, &leaf),
            UnixTime::now(),
        );
        assert!(c.is_ok(), "{c:?}");
        let c = check(
            root.path(),
            &input(StoreKind::Server, true, &leaf),
            UnixTime::now(),
        )
        .unwrap();
        assert!(
            !c.warnings.iter().any(|w| w.contains("clientAuth")),
            "{:?}",
            c.warnings
        );
        let server_only = ca
            .issue(&LeafSpec::new("srv.example", LeafEku::ServerAuth))
            .unwrap();
        let c = check(
            root.path(),
            &input(StoreKind::Server, true, &server_only),
            UnixTime::now(),
        )
        .unwrap();
        assert!(
            c.warnings.iter().any(|w| w.contains("without clientAuth")),
            "{:?}",
            c.warnings
        );
        assert!(matches!(
            check(
                root.path(),
                &input(StoreKind::Client, false, &server_only),
                UnixTime::now()
            ),
            Err(OpError::NoClientUsage)
        ));
    }
}
