//! Turning rustls-webpki's path-validation error into a precise
//! [`EkuError`] that names the certificate at fault (the leaf, an
//! intermediate, the expired one, the untrusted issuer), for the EKU room.

use rustls_pki_types::{CertificateDer, UnixTime};

use super::eku::{eku_allows, ClientAuthReason, EkuError, EkuMode, Role};
use super::info;

/// Turn webpki's error into a precise [`EkuError`], naming the certificate.
pub(crate) fn diagnose(
    err: webpki::Error,
    role: Role,
    mode: EkuMode,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> EkuError {
    use webpki::Error as W;
    let all = || std::iter::once(leaf).chain(intermediates.iter());
    let leaf_subject = info::subject_name(leaf.as_ref()).unwrap_or_default();
    let reason = match role {
        Role::Tunnel => ClientAuthReason::Tunnel,
        Role::InboundClient => ClientAuthReason::ModeOn,
    };
    #[allow(deprecated)]
    match err {
        W::RequiredEkuNotFoundContext(_) | W::RequiredEkuNotFound => {
            let leaf_ekus = info::eku_oids(leaf.as_ref()).ok().flatten();
            if !eku_allows(mode, leaf_ekus.as_deref()) {
                let present = leaf_ekus.unwrap_or_default();
                return match mode {
                    EkuMode::On => EkuError::LeafLacksClientAuth {
                        subject: leaf_subject,
                        present,
                        reason,
                    },
                    EkuMode::Off => EkuError::LeafLacksPurpose {
                        subject: leaf_subject,
                        present,
                    },
                };
            }
            match failing_intermediate(mode, leaf, intermediates) {
                Some((subject, present)) => match mode {
                    EkuMode::On => EkuError::IntermediateLacksClientAuth {
                        subject,
                        present,
                        reason,
                    },
                    EkuMode::Off => EkuError::IntermediateLacksPurpose { subject, present },
                },
                None => EkuError::Rejected {
                    detail: "required extended key usage not found".into(),
                },
            }
        }
        W::CertRevoked => EkuError::Revoked {
            subject: leaf_subject,
        },
        W::UnknownRevocationStatus => EkuError::RevocationUnknown {
            subject: leaf_subject,
        },
        W::EmptyEkuExtension => EkuError::EmptyEku {
            subject: all()
                .find(|c| matches!(info::eku_oids(c.as_ref()), Ok(Some(v)) if v.is_empty()))
                .and_then(|c| info::subject_name(c.as_ref()))
                .unwrap_or(leaf_subject),
        },
        W::CertExpired { not_after, .. } => EkuError::Expired {
            subject: find_by_time(all(), |c| {
                c.validity().not_after.timestamp() == unix_i64(not_after)
            }),
            not_after: info::unix_rfc3339(not_after),
            now: info::unix_rfc3339(now),
        },
        W::CertNotValidYet { not_before, .. } => EkuError::NotYetValid {
            subject: find_by_time(all(), |c| {
                c.validity().not_before.timestamp() == unix_i64(not_before)
            }),
            not_before: info::unix_rfc3339(not_before),
            now: info::unix_rfc3339(now),
        },
        W::UnknownIssuer => EkuError::UntrustedIssuer {
            issuer: top_issuer(leaf, intermediates).unwrap_or_default(),
        },
        W::InvalidSignatureForPublicKey
        | W::SignatureAlgorithmMismatch
        | W::UnsupportedSignatureAlgorithm
        | W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKey
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => EkuError::BadSignature {
            detail: lower(&format!("{err:?}")),
        },
        W::CaUsedAsEndEntity => EkuError::CaAsLeaf {
            subject: leaf_subject,
        },
        W::EndEntityUsedAsCa => EkuError::NotACa,
        W::BadDer | W::BadDerTime | W::TrailingData(_) | W::MalformedExtensions => {
            EkuError::BadEncoding {
                detail: lower(&format!("{err:?}")),
            }
        }
        other => EkuError::Rejected {
            detail: lower(&format!("{other:?}")),
        },
    }
}

pub(crate) fn lower(s: &str) -> String {
    // "InvalidSignatureForPublicKey" -> "invalid signature for public key"
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 && !out.ends_with([' ', '(', '{']) {
                out.push(' ');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn unix_i64(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn find_by_time<'a>(
    mut certs: impl Iterator<Item = &'a CertificateDer<'a>>,
    pred: impl Fn(&x509_parser::certificate::X509Certificate<'_>) -> bool,
) -> Option<String> {
    use x509_parser::prelude::FromDer;
    certs.find_map(|c| {
        let (_, x) = x509_parser::certificate::X509Certificate::from_der(c.as_ref()).ok()?;
        pred(&x).then(|| x.subject().to_string())
    })
}

/// The issuer name at the top of the chain the peer sent: follow the leaf's
/// issuer through the supplied intermediates (by name) as far as they go.
fn top_issuer(leaf: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Option<String> {
    use x509_parser::certificate::X509Certificate;
    use x509_parser::prelude::FromDer;
    let (_, leaf_x) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let parsed: Vec<_> = intermediates
        .iter()
        .filter_map(|c| X509Certificate::from_der(c.as_ref()).ok().map(|(_, x)| x))
        .collect();
    let mut issuer = leaf_x.issuer().clone();
    for _ in 0..parsed.len() {
        match parsed
            .iter()
            .find(|x| x.subject().as_raw() == issuer.as_raw() && x.subject() != x.issuer())
        {
            Some(next) => issuer = next.issuer().clone(),
            None => break,
        }
    }
    Some(issuer.to_string())
}

/// Walk from the leaf's issuer up through the supplied intermediates (by name)
/// and return the first one failing the rule; else the first failing one at all.
fn failing_intermediate(
    mode: EkuMode,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Option<(String, Vec<String>)> {
    use x509_parser::prelude::FromDer;
    let parsed: Vec<_> = intermediates
        .iter()
        .filter_map(|c| {
            let (_, x) = x509_parser::certificate::X509Certificate::from_der(c.as_ref()).ok()?;
            Some((
                x.subject().as_raw().to_vec(),
                x.issuer().as_raw().to_vec(),
                x.subject().to_string(),
                info::eku_oids(c.as_ref()).ok().flatten(),
            ))
        })
        .collect();
    let fails = |e: &Option<Vec<String>>| !eku_allows(mode, e.as_deref());
    let (_, leaf_x) = x509_parser::certificate::X509Certificate::from_der(leaf.as_ref()).ok()?;
    let mut want = leaf_x.issuer().as_raw().to_vec();
    for _ in 0..parsed.len() {
        let Some(next) = parsed.iter().find(|p| p.0 == want) else {
            break;
        };
        if fails(&next.3) {
            return Some((next.2.clone(), next.3.clone().unwrap_or_default()));
        }
        want = next.1.clone();
    }
    parsed
        .iter()
        .find(|p| fails(&p.3))
        .map(|p| (p.2.clone(), p.3.clone().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lower_case_detail() {
        assert_eq!(
            super::lower("InvalidSignatureForPublicKey"),
            "invalid signature for public key"
        );
    }
}
