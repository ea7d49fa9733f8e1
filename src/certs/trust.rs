//! Does a chain lead to the trusted CA list, whatever its EKUs? Uploads and
//! status need this answer separately from the EKU policy (a serverAuth-only
//! server certificate is trusted and fine for its role).

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

use super::anchors::TrustAnchors;
use super::diagnose::diagnose;
use super::eku::{EkuError, EkuMode, Role, ALGORITHMS};

/// Accepts any EKU set (webpki still rejects an empty EKU extension).
#[derive(Debug, Clone, Copy)]
struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

/// Verify chain, signatures, validity and trust (not the EKU purposes).
/// Returns the subject of the trust anchor the chain ends at. A leaf that is
/// itself in the trusted list is trusted.
pub fn verify_trust(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    now: UnixTime,
) -> Result<String, EkuError> {
    if anchors.is_empty() {
        return Err(EkuError::NoTrustAnchors);
    }
    if let Some(i) = anchors
        .ders()
        .iter()
        .position(|d| d.as_ref() == leaf.as_ref())
    {
        return Ok(anchors.subject_name(i).unwrap_or_default());
    }
    let ee = EndEntityCert::try_from(leaf).map_err(|e| EkuError::BadEncoding {
        detail: format!("certificate: {e:?}"),
    })?;
    match ee.verify_for_usage(
        ALGORITHMS.all,
        anchors.anchors(),
        intermediates,
        now,
        AnyEku,
        None,
        None,
    ) {
        Ok(path) => Ok(anchors
            .index_of(path.anchor())
            .and_then(|i| anchors.subject_name(i))
            .unwrap_or_default()),
        Err(e) => Err(diagnose(
            e,
            Role::InboundClient,
            EkuMode::Off,
            leaf,
            intermediates,
            now,
        )),
    }
}

/// Load `ROOT/certs/ca.pem` as anchors; `Ok(None)` when it is missing or holds no certificate.
pub fn load_ca_list(root: &std::path::Path) -> Result<Option<TrustAnchors>, super::CertError> {
    let p = super::store::certs_dir(root).join(super::store::CA_LIST);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(super::CertError::io("read", p, e)),
    };
    match TrustAnchors::from_pem(&bytes) {
        Ok(a) => Ok(Some(a)),
        Err(super::CertError::EmptyTrustList) => Ok(None),
        Err(e) => Err(e),
    }
}
