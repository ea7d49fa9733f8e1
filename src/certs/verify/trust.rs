//! Does a chain lead to the trusted CA list, whatever its EKUs? Uploads and
//! status need this answer separately from the EKU policy (a serverAuth-only
//! server certificate is trusted and fine for its role).

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

use crate::certs::verify::diagnose::diagnose;
use crate::certs::verify::eku::{EkuError, EkuMode, Role, ALGORITHMS};
use crate::certs::x509::anchors::TrustAnchors;

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
