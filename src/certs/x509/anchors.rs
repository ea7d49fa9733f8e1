//! The trusted CA list (`ca.pem`) as trust anchors: parsed once, kept as
//! webpki anchors for path building, as DER for a rustls `RootCertStore`, and
//! as distinguished names for the `certificate_authorities` hint.

use std::sync::OnceLock;

use rustls::{DistinguishedName, RootCertStore};
use rustls_pki_types::{CertificateDer, TrustAnchor};

use crate::certs::x509::error::CertError;
use crate::certs::x509::info;

/// A parsed trusted CA list. Cheap to share behind an `Arc`; immutable.
///
/// Each certificate is a trust anchor: its own EKU, validity and signature are
/// not checked (webpki's rule; OpenSSL differs, see `eku` module docs).
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    ders: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    subjects: Vec<DistinguishedName>,
    /// Display subjects, read on first use: an accepted handshake names its anchor without
    /// parsing it again, and a list of 1,000 CAs is not parsed twice at load.
    names: Vec<OnceLock<Option<String>>>,
}

impl TrustAnchors {
    /// Parse a PEM bundle (one or many `CERTIFICATE` blocks).
    pub fn from_pem(pem: &[u8]) -> Result<Self, CertError> {
        let ders = info::parse_pem_certs(pem).map_err(|e| match e {
            CertError::NoCertificates => CertError::EmptyTrustList,
            other => other,
        })?;
        Self::from_der(ders)
    }

    /// Build from DER certificates. Fails on an empty list or on the first
    /// certificate that cannot be a trust anchor (index counted from 1).
    pub fn from_der(ders: Vec<CertificateDer<'static>>) -> Result<Self, CertError> {
        if ders.is_empty() {
            return Err(CertError::EmptyTrustList);
        }
        let mut anchors = Vec::with_capacity(ders.len());
        let mut subjects = Vec::with_capacity(ders.len());
        for (i, der) in ders.iter().enumerate() {
            let anchor = webpki::anchor_from_trusted_cert(der)
                .map_err(|e| CertError::BadTrustAnchor {
                    index: i + 1,
                    detail: format!("{e:?}"),
                })?
                .to_owned();
            subjects.push(DistinguishedName::in_sequence(anchor.subject.as_ref()));
            anchors.push(anchor);
        }
        Ok(TrustAnchors {
            names: (0..ders.len()).map(|_| OnceLock::new()).collect(),
            ders,
            anchors,
            subjects,
        })
    }

    /// No trusted CAs at all (a root without `ca.pem`): every chain is refused as untrusted.
    pub fn empty() -> Self {
        TrustAnchors {
            ders: Vec::new(),
            anchors: Vec::new(),
            subjects: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Number of trusted CA certificates.
    pub fn len(&self) -> usize {
        self.ders.len()
    }

    /// True when there is no trusted CA (never true for a value built by
    /// [`TrustAnchors::from_pem`] / [`TrustAnchors::from_der`]).
    pub fn is_empty(&self) -> bool {
        self.ders.is_empty()
    }

    /// The CA certificates as DER, in file order.
    pub fn ders(&self) -> &[CertificateDer<'static>] {
        &self.ders
    }

    /// The webpki trust anchors, in file order.
    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// Subjects for the CertificateRequest `certificate_authorities` hint.
    pub fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    /// A rustls `RootCertStore` holding the same anchors (for outbound peers).
    pub fn root_store(&self) -> RootCertStore {
        RootCertStore {
            roots: self.anchors.clone(),
        }
    }

    /// Display subject ("CN=..., O=...") of the anchor at `index`.
    pub fn subject_name(&self, index: usize) -> Option<String> {
        let name = self.names.get(index)?;
        name.get_or_init(|| self.ders.get(index).and_then(|d| info::subject_name(d)))
            .clone()
    }

    /// Index of `anchor` in this list (by identity, else by subject and key).
    pub fn index_of(&self, anchor: &TrustAnchor<'_>) -> Option<usize> {
        self.anchors
            .iter()
            .position(|a| std::ptr::eq(a, anchor))
            .or_else(|| {
                self.anchors.iter().position(|a| {
                    a.subject.as_ref() == anchor.subject.as_ref()
                        && a.subject_public_key_info.as_ref()
                            == anchor.subject_public_key_info.as_ref()
                })
            })
    }
}
