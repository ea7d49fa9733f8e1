//! The EKU policy for inbound mutual TLS (domain.md §2, §4) as a pure
//! function: chain, signatures, validity and trust are checked by
//! rustls-webpki, and a custom `ExtendedKeyUsageValidator` applies the
//! "ExtendedKeyUsage Checking Mode" to every certificate below the anchor.
//!
//! * **On**: every certificate between the leaf and the trust anchor (the leaf
//!   and each intermediate) that has an EKU extension must list clientAuth.
//! * **Off**: each such certificate must list clientAuth **or** serverAuth,
//!   decided per certificate.
//! * Both: an empty EKU extension, or one listing neither purpose
//!   (codeSigning only, anyExtendedKeyUsage only) fails; a certificate without
//!   an EKU extension passes.
//! * The trust anchor's own EKU is not checked (webpki's rule). OpenSSL checks
//!   the EKU of trusted certificates too and wants a self-signed root, so when
//!   `ca.pem` holds an intermediate the two can disagree: we accept a chain
//!   ending at a serverAuth-only intermediate listed in `ca.pem` in mode On,
//!   `openssl verify -purpose sslclient` does not.
//! * [`Role::Tunnel`] (SSH tunnel, port 2222) always applies the On rule.

use std::fmt;
use std::sync::LazyLock;

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use webpki::{
    EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage,
    RequiredEkuNotFoundContext,
};

use crate::certs::policy::{self as policy, Eku, Ekus, Lack, Need, Position, Refusal};
pub use crate::certs::policy::{ClientAuthReason, EkuMode, Role};
use crate::certs::verify::diagnose;
use crate::certs::x509::anchors::TrustAnchors;
use crate::certs::x509::info;

/// Signature algorithms of the ring provider, used for chain signatures.
pub(crate) static ALGORITHMS: LazyLock<WebPkiSupportedAlgorithms> =
    LazyLock::new(|| rustls::crypto::ring::default_provider().signature_verification_algorithms);

/// What was verified, for logs and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// Subject of the client (leaf) certificate.
    pub subject: String,
    /// The leaf's EKU extension.
    pub leaf_ekus: Ekus,
    /// Subjects of the intermediates used, leaf side first.
    pub intermediates: Vec<String>,
    /// Subject of the trust anchor the chain ends at.
    pub anchor: String,
    /// The listener role.
    pub role: Role,
    /// The mode applied (Tunnel always On).
    pub mode: EkuMode,
}

/// Installed CRLs and the fallback for certificates no CRL covers, as one generation uses them.
#[derive(Debug, Default)]
pub struct Revocation {
    pub crls: Vec<webpki::CertRevocationList<'static>>,
    /// `Revocation Fallback Mode: Deny`.
    pub deny_unknown: bool,
}

impl Revocation {
    /// Parses DER CRLs (as `crl::read_all` returns them).
    pub fn from_ders(
        ders: &[rustls_pki_types::CertificateRevocationListDer<'_>],
        deny_unknown: bool,
    ) -> Result<Revocation, String> {
        let mut crls = Vec::with_capacity(ders.len());
        for (i, d) in ders.iter().enumerate() {
            let owned = webpki::OwnedCertRevocationList::from_der(d.as_ref())
                .map_err(|e| format!("CRL #{} cannot be used: {e:?}", i + 1))?;
            crls.push(webpki::CertRevocationList::from(owned));
        }
        Ok(Revocation { crls, deny_unknown })
    }
}

/// Why a client certificate chain was rejected. Messages are lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EkuError {
    /// The trusted CA list is empty.
    NoTrustAnchors,
    /// A certificate is not valid DER.
    BadEncoding { detail: String },
    /// The leaf has an EKU extension without clientAuth (mode On / tunnel).
    LeafLacksClientAuth {
        subject: String,
        present: Vec<Eku>,
        reason: ClientAuthReason,
    },
    /// The leaf's EKU lists neither clientAuth nor serverAuth (mode Off).
    LeafLacksPurpose { subject: String, present: Vec<Eku> },
    /// An intermediate has an EKU extension without clientAuth (mode On / tunnel).
    IntermediateLacksClientAuth {
        subject: String,
        present: Vec<Eku>,
        reason: ClientAuthReason,
    },
    /// An intermediate's EKU lists neither clientAuth nor serverAuth (mode Off).
    IntermediateLacksPurpose { subject: String, present: Vec<Eku> },
    /// A certificate has an EKU extension with no purposes at all.
    EmptyEku { subject: String },
    /// A certificate of the chain is past notAfter.
    Expired {
        subject: Option<String>,
        not_after: String,
        now: String,
    },
    /// A certificate of the chain is before notBefore.
    NotYetValid {
        subject: Option<String>,
        not_before: String,
        now: String,
    },
    /// No path to a certificate of the trusted CA list.
    UntrustedIssuer { issuer: String },
    /// A signature in the chain does not verify or uses an unsupported algorithm.
    BadSignature { detail: String },
    /// The client certificate is a CA certificate.
    CaAsLeaf { subject: String },
    /// An issuing certificate is not a CA.
    NotACa,
    /// A certificate of the chain is listed in an installed CRL of its issuer.
    Revoked { subject: String },
    /// Revocation checking is On, no installed CRL covers the issuer, and the fallback is Deny.
    RevocationUnknown { subject: String },
    /// Any other path-validation failure (webpki's reason).
    Rejected { detail: String },
}

impl EkuError {
    /// A stable, machine-readable code for the variant.
    pub fn code(&self) -> &'static str {
        match self {
            EkuError::NoTrustAnchors => "no-trust-anchors",
            EkuError::BadEncoding { .. } => "bad-encoding",
            EkuError::LeafLacksClientAuth { .. } => "leaf-lacks-client-auth",
            EkuError::LeafLacksPurpose { .. } => "leaf-lacks-purpose",
            EkuError::IntermediateLacksClientAuth { .. } => "intermediate-lacks-client-auth",
            EkuError::IntermediateLacksPurpose { .. } => "intermediate-lacks-purpose",
            EkuError::EmptyEku { .. } => "empty-eku",
            EkuError::Expired { .. } => "expired",
            EkuError::NotYetValid { .. } => "not-yet-valid",
            EkuError::UntrustedIssuer { .. } => "untrusted-issuer",
            EkuError::BadSignature { .. } => "bad-signature",
            EkuError::CaAsLeaf { .. } => "ca-as-leaf",
            EkuError::NotACa => "issuer-not-ca",
            EkuError::Revoked { .. } => "revoked",
            EkuError::RevocationUnknown { .. } => "revocation-unknown",
            EkuError::Rejected { .. } => "rejected",
        }
    }

    /// The policy's refusal as a rejection naming the certificate `subject`.
    pub fn from_refusal(r: Refusal, subject: String) -> EkuError {
        let present = r.present;
        match (r.at, r.lack) {
            (_, Lack::EmptyExtension) => EkuError::EmptyEku { subject },
            (Position::Leaf, Lack::Missing(Need::ClientAuth(reason))) => {
                EkuError::LeafLacksClientAuth {
                    subject,
                    present,
                    reason,
                }
            }
            (Position::Intermediate(_), Lack::Missing(Need::ClientAuth(reason))) => {
                EkuError::IntermediateLacksClientAuth {
                    subject,
                    present,
                    reason,
                }
            }
            (Position::Leaf, Lack::Missing(_)) => EkuError::LeafLacksPurpose { subject, present },
            (Position::Intermediate(_), Lack::Missing(_)) => {
                EkuError::IntermediateLacksPurpose { subject, present }
            }
        }
    }

    /// True for the EKU-policy variants (the chain itself was fine).
    pub fn is_eku_policy(&self) -> bool {
        matches!(
            self,
            EkuError::LeafLacksClientAuth { .. }
                | EkuError::LeafLacksPurpose { .. }
                | EkuError::IntermediateLacksClientAuth { .. }
                | EkuError::IntermediateLacksPurpose { .. }
                | EkuError::EmptyEku { .. }
        )
    }
}

fn names(present: &[Eku]) -> String {
    if present.is_empty() {
        return "none".into();
    }
    present.iter().map(Eku::name).collect::<Vec<_>>().join(", ")
}

fn subject_opt(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!(" '{s}'")).unwrap_or_default()
}

impl fmt::Display for EkuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EkuError::NoTrustAnchors => write!(f, "trusted CA list is empty"),
            EkuError::BadEncoding { detail } => write!(f, "certificate is not valid DER: {detail}"),
            EkuError::LeafLacksClientAuth { subject, present, reason } => write!(
                f,
                "client certificate '{subject}' lacks clientAuth EKU (has {}); {reason}",
                names(present)
            ),
            EkuError::LeafLacksPurpose { subject, present } => write!(
                f,
                "client certificate '{subject}' lists neither clientAuth nor serverAuth EKU (has {})",
                names(present)
            ),
            EkuError::IntermediateLacksClientAuth { subject, present, reason } => write!(
                f,
                "intermediate certificate '{subject}' lacks clientAuth EKU (has {}); {reason}",
                names(present)
            ),
            EkuError::IntermediateLacksPurpose { subject, present } => write!(
                f,
                "intermediate certificate '{subject}' lists neither clientAuth nor serverAuth EKU (has {})",
                names(present)
            ),
            EkuError::EmptyEku { subject } => {
                write!(f, "certificate '{subject}' has an empty extended key usage extension")
            }
            EkuError::Expired { subject, not_after, now } => write!(
                f,
                "certificate{} expired at {not_after} (now {now})",
                subject_opt(subject)
            ),
            EkuError::NotYetValid { subject, not_before, now } => write!(
                f,
                "certificate{} not yet valid: valid from {not_before} (now {now})",
                subject_opt(subject)
            ),
            EkuError::UntrustedIssuer { issuer } => write!(
                f,
                "chain does not lead to a trusted CA (issuer '{issuer}' is not in the trusted CA list)"
            ),
            EkuError::BadSignature { detail } => write!(f, "bad signature in chain: {detail}"),
            EkuError::CaAsLeaf { subject } => {
                write!(f, "client certificate '{subject}' is a CA certificate")
            }
            EkuError::NotACa => write!(f, "an issuing certificate in the chain is not a CA"),
            EkuError::Revoked { subject } => {
                write!(f, "certificate '{subject}' is revoked by an installed CRL")
            }
            EkuError::RevocationUnknown { subject } => write!(
                f,
                "revocation status of '{subject}' is unknown (no installed CRL of its issuer) and Revocation Fallback Mode is Deny"
            ),
            EkuError::Rejected { detail } => write!(f, "certificate chain rejected: {detail}"),
        }
    }
}

impl std::error::Error for EkuError {}

/// The webpki hook: called for the leaf and for every intermediate candidate
/// (never for the trust anchor), and asks the policy's one rule. An absent
/// extension arrives as an empty iterator; an empty extension is rejected by
/// webpki before this is called.
#[derive(Debug, Clone, Copy)]
struct ModeValidator {
    need: Need,
}

impl ExtendedKeyUsageValidator for ModeValidator {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut listed = Vec::new();
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            let oid = id.to_decoded_oid();
            listed.push(Eku::from_oid(&dotted(&oid)));
            present.push(oid);
        }
        let ekus = if listed.is_empty() {
            Ekus::Absent
        } else {
            Ekus::Listed(listed)
        };
        match policy::check_cert(self.need, &ekus) {
            Ok(()) => Ok(()),
            Err(_) => Err(webpki::Error::RequiredEkuNotFoundContext(
                RequiredEkuNotFoundContext {
                    required: KeyUsage::client_auth(),
                    present,
                },
            )),
        }
    }
}

/// Dotted text of a decoded OID (`[1, 3, 6, ...]`).
fn dotted(arcs: &[usize]) -> String {
    arcs.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Check an inbound client certificate chain with the configured mode
/// ([`Role::InboundClient`]).
pub fn check_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    mode: EkuMode,
    now: UnixTime,
) -> Result<ChainInfo, EkuError> {
    check_chain_for(
        Role::InboundClient,
        end_entity,
        intermediates,
        anchors,
        mode,
        now,
    )
}

/// Check a client certificate chain for a listener `role`.
pub fn check_chain_for(
    role: Role,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    mode: EkuMode,
    now: UnixTime,
) -> Result<ChainInfo, EkuError> {
    check_chain_with(role, end_entity, intermediates, anchors, mode, now, None)
}

/// [`check_chain_for`] with revocation checking against installed CRLs (`Revocation Checking
/// Mode: On`): every certificate of the chain below the anchor is looked up in the CRL of its
/// issuer; one with no CRL of its issuer is allowed or refused by the fallback.
pub fn check_chain_with(
    role: Role,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    mode: EkuMode,
    now: UnixTime,
    revocation: Option<&Revocation>,
) -> Result<ChainInfo, EkuError> {
    let presented = info::Presented::parse(end_entity.as_ref()).ok();
    check_presented(
        role,
        end_entity,
        presented.as_ref(),
        intermediates,
        anchors,
        mode,
        now,
        revocation,
    )
}

/// [`check_chain_with`] for a leaf whose fields were already read (`presented`, `None` when it
/// does not parse), so a handshake reads the presented certificate once.
#[allow(clippy::too_many_arguments)]
pub fn check_presented(
    role: Role,
    end_entity: &CertificateDer<'_>,
    presented: Option<&info::Presented>,
    intermediates: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    mode: EkuMode,
    now: UnixTime,
    revocation: Option<&Revocation>,
) -> Result<ChainInfo, EkuError> {
    if anchors.is_empty() {
        return Err(EkuError::NoTrustAnchors);
    }
    let leaf_subject = || presented.map(|p| p.subject.to_string()).unwrap_or_default();
    let effective = role.effective_mode(mode);
    let ee = EndEntityCert::try_from(end_entity).map_err(|e| EkuError::BadEncoding {
        detail: format!("client certificate: {e:?}"),
    })?;
    let validator = ModeValidator {
        need: role.need(mode),
    };
    let crl_refs: Vec<&webpki::CertRevocationList<'static>> = revocation
        .map(|r| r.crls.iter().collect())
        .unwrap_or_default();
    let options = match revocation {
        None => None,
        Some(r) => match webpki::RevocationOptionsBuilder::new(&crl_refs) {
            Ok(b) => Some(
                b.with_depth(webpki::RevocationCheckDepth::Chain)
                    .with_status_policy(if r.deny_unknown {
                        webpki::UnknownStatusPolicy::Deny
                    } else {
                        webpki::UnknownStatusPolicy::Allow
                    })
                    .build(),
            ),
            // No CRL installed at all: every status is unknown, so the fallback decides alone.
            Err(_) if r.deny_unknown => {
                return Err(EkuError::RevocationUnknown {
                    subject: leaf_subject(),
                })
            }
            Err(_) => None,
        },
    };
    let result = ee.verify_for_usage(
        ALGORITHMS.all,
        anchors.anchors(),
        intermediates,
        now,
        validator,
        options,
        None,
    );
    match result {
        Ok(path) => {
            let inters = path
                .intermediate_certificates()
                .map(|c| info::subject_name(c.der().as_ref()).unwrap_or_default())
                .collect();
            let anchor = anchors
                .index_of(path.anchor())
                .and_then(|i| anchors.subject_name(i))
                .unwrap_or_default();
            Ok(ChainInfo {
                subject: leaf_subject(),
                leaf_ekus: presented.map(|p| p.ekus.clone()).unwrap_or_default(),
                intermediates: inters,
                anchor,
                role,
                mode: effective,
            })
        }
        Err(e) => Err(diagnose::diagnose(
            e,
            role,
            effective,
            end_entity,
            intermediates,
            now,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::info::parse_pem_certs;
    use crate::certs::pki::{InterEku, LeafEku, LeafSpec, TestCa, Validity};

    fn run(ca: &TestCa, eku: LeafEku, role: Role, mode: EkuMode) -> Result<ChainInfo, EkuError> {
        let leaf = ca.issue(&LeafSpec::new("client.example", eku)).unwrap();
        let anchors = TrustAnchors::from_pem(ca.root_pem().as_bytes()).unwrap();
        let chain = parse_pem_certs(leaf.chain_pem.as_bytes()).unwrap();
        check_chain_for(
            role,
            &chain[0],
            &chain[1..],
            &anchors,
            mode,
            UnixTime::now(),
        )
    }

    #[test]
    fn mode_parses_case_insensitively() {
        assert_eq!("ON".parse::<EkuMode>().unwrap(), EkuMode::On);
        assert_eq!("off".parse::<EkuMode>().unwrap(), EkuMode::Off);
        assert!("maybe".parse::<EkuMode>().is_err());
        assert_eq!(EkuMode::default(), EkuMode::On);
    }

    #[test]
    fn server_only_leaf_on_off_tunnel() {
        let ca = TestCa::private_ca1().unwrap();
        let e = run(&ca, LeafEku::ServerAuth, Role::InboundClient, EkuMode::On).unwrap_err();
        assert_eq!(e.code(), "leaf-lacks-client-auth");
        let msg = e.to_string();
        assert!(
            msg.contains("lacks clientAuth EKU (has serverAuth)"),
            "{msg}"
        );
        assert!(
            msg.ends_with("ExtendedKeyUsage Checking Mode is On"),
            "{msg}"
        );
        let ok = run(&ca, LeafEku::ServerAuth, Role::InboundClient, EkuMode::Off).unwrap();
        assert_eq!(ok.mode, EkuMode::Off);
        assert!(ok.anchor.contains("CA1"), "{}", ok.anchor);
        let e = run(&ca, LeafEku::ServerAuth, Role::Tunnel, EkuMode::Off).unwrap_err();
        assert!(e.to_string().contains("SSH tunnel"), "{e}");
    }

    #[test]
    fn intermediate_is_named() {
        let ca = TestCa::public_ca2().unwrap();
        let e = run(&ca, LeafEku::Both, Role::InboundClient, EkuMode::On).unwrap_err();
        assert_eq!(e.code(), "intermediate-lacks-client-auth", "{e}");
        assert!(
            e.to_string().contains("intermediate certificate 'CN="),
            "{e}"
        );
        let ok = run(&ca, LeafEku::ClientAuth, Role::InboundClient, EkuMode::Off).unwrap();
        assert_eq!(ok.intermediates.len(), 1);
    }

    #[test]
    fn neither_purpose_fails_in_off() {
        let ca = TestCa::with_intermediate("Inter", InterEku::Both).unwrap();
        for eku in [LeafEku::CodeSigningOnly, LeafEku::AnyOnly] {
            let e = run(&ca, eku, Role::InboundClient, EkuMode::Off).unwrap_err();
            assert_eq!(e.code(), "leaf-lacks-purpose", "{e}");
        }
        assert!(run(&ca, LeafEku::None, Role::InboundClient, EkuMode::On).is_ok());
    }

    #[test]
    fn expired_and_untrusted() {
        let ca = TestCa::private_ca1().unwrap();
        let mut spec = LeafSpec::new("old.example", LeafEku::Both);
        spec.validity = Validity::Expired;
        let leaf = ca.issue(&spec).unwrap();
        let anchors = TrustAnchors::from_pem(ca.root_pem().as_bytes()).unwrap();
        let chain = parse_pem_certs(leaf.chain_pem.as_bytes()).unwrap();
        let e = check_chain(&chain[0], &[], &anchors, EkuMode::Off, UnixTime::now()).unwrap_err();
        assert_eq!(e.code(), "expired");
        assert!(
            e.to_string()
                .starts_with("certificate 'CN=old.example' expired at "),
            "{e}"
        );
        let other = TestCa::new_root("some other CA").unwrap();
        let other_anchors = TrustAnchors::from_pem(other.root_pem().as_bytes()).unwrap();
        let good = ca.issue(&LeafSpec::new("x", LeafEku::Both)).unwrap();
        let chain = parse_pem_certs(good.chain_pem.as_bytes()).unwrap();
        let e =
            check_chain(&chain[0], &[], &other_anchors, EkuMode::On, UnixTime::now()).unwrap_err();
        assert_eq!(e.code(), "untrusted-issuer", "{e}");
        assert!(e
            .to_string()
            .starts_with("chain does not lead to a trusted CA"));
    }
}
