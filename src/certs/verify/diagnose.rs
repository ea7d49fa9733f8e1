//! Turning rustls-webpki's path-validation error into a precise
//! [`EkuError`] that names the certificate at fault (the leaf, an
//! intermediate, the expired one, the untrusted issuer), for the EKU room.

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::certs::policy::{self, Ekus, Position, Refusal};
use crate::certs::verify::eku::{EkuError, EkuMode, Role};
use crate::certs::x509::info;

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
    #[allow(deprecated)]
    match err {
        W::RequiredEkuNotFoundContext(_) | W::RequiredEkuNotFound => {
            let leaf_ekus = info::ekus(leaf.as_ref()).unwrap_or_default();
            if let Err(r) = policy::decide(role, mode, [&leaf_ekus]) {
                return EkuError::from_refusal(r, leaf_subject);
            }
            match failing_intermediate(role, mode, leaf, intermediates) {
                Some((subject, refusal)) => EkuError::from_refusal(refusal, subject),
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
                .find(|c| matches!(info::ekus(c.as_ref()), Ok(Ekus::Listed(v)) if v.is_empty()))
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
        pred(&x).then(|| crate::peer_text::PeerText::new(&x.subject().to_string()).into_string())
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
    // A name from the peer's chain: sanitised here, where it enters (it ends up in refusal
    // reasons, the event log and the agent's terminal).
    Some(crate::peer_text::PeerText::new(&issuer.to_string()).into_string())
}

/// Walk from the leaf's issuer up through the supplied intermediates (by name)
/// and return the first one the policy refuses; else the first refused one at all.
fn failing_intermediate(
    role: Role,
    mode: EkuMode,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Option<(String, Refusal)> {
    use x509_parser::prelude::FromDer;
    let need = role.need(mode);
    let parsed: Vec<_> = intermediates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let (_, x) = x509_parser::certificate::X509Certificate::from_der(c.as_ref()).ok()?;
            let ekus = info::ekus_of(&x).unwrap_or_default();
            let refusal = policy::check_cert(need, &ekus).err().map(|lack| Refusal {
                at: Position::Intermediate(i),
                lack,
                present: ekus.listed().to_vec(),
            });
            Some((
                x.subject().as_raw().to_vec(),
                x.issuer().as_raw().to_vec(),
                crate::peer_text::PeerText::new(&x.subject().to_string()).into_string(),
                refusal,
            ))
        })
        .collect();
    let (_, leaf_x) = x509_parser::certificate::X509Certificate::from_der(leaf.as_ref()).ok()?;
    let mut want = leaf_x.issuer().as_raw().to_vec();
    for _ in 0..parsed.len() {
        let Some(next) = parsed.iter().find(|p| p.0 == want) else {
            break;
        };
        if let Some(r) = &next.3 {
            return Some((next.2.clone(), r.clone()));
        }
        want = next.1.clone();
    }
    parsed
        .iter()
        .find_map(|p| p.3.clone().map(|r| (p.2.clone(), r)))
}
