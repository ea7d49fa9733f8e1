//! Why an outbound check failed, as data, and the reason an admin reads: each stage keeps its
//! own variant, the peer's TLS alert is read for what it held against this node's client
//! certificate, and only the seed's EKU refusal is worded "Permission denied". Knows no socket.

use rustls::AlertDescription;

use crate::agent::generation::Generation;
use crate::certs::policy::{self, EkuMode, Ekus, Role};

/// What the policy says about the client store leaf, as seen by a peer that checks it: a leaf
/// without an EKU extension (any purpose) draws no hint, as the verifier accepts it.
fn eku_hint(ekus: &Ekus) -> &'static str {
    let on = policy::decide(Role::InboundClient, EkuMode::On, [ekus]);
    let off = policy::decide(Role::InboundClient, EkuMode::Off, [ekus]);
    match (on, off) {
        (Ok(()), _) => "",
        (Err(_), Ok(())) => "; the client store certificate is serverAuth-only (no clientAuth EKU): peers that check clientAuth reject it",
        (Err(_), Err(_)) => "; the client store certificate lists neither clientAuth nor serverAuth: every peer rejects it as a TLS client",
    }
}

/// Why a zone check failed, as data: each stage keeps its own variant (a name that does not
/// resolve, a connection not made, typed by `io::ErrorKind`, a stage that timed out, the TLS
/// layer's error with the peer's alert), so the reason is chosen by variant, never by the text of
/// an error.
#[derive(Debug, Clone)]
pub(super) enum Failure {
    /// The peer's name did not resolve; no connection was tried.
    Resolve { host: String, why: Unresolved },
    /// The TCP connection to `target` was not made.
    Connect {
        target: String,
        kind: std::io::ErrorKind,
    },
    /// A stage got no progress within [`super::IO_TIMEOUT`].
    TimedOut { stage: Stage, target: String },
    /// The TLS layer failed: the peer's alert, or our verdict on its certificate.
    Tls(rustls::Error),
    /// The peer closed the connection without an answer (and without a TLS alert).
    Closed,
    /// The peer reset or aborted the connection (it closed with our data unread).
    Reset,
    /// Anything else, already worded.
    Other(String),
}

/// Why a name did not resolve.
#[derive(Debug, Clone)]
pub(super) enum Unresolved {
    /// Under `.invalid`, which never resolves (RFC 6761 §6.4): refused without a lookup.
    Reserved,
    /// The resolver answered with an error.
    Lookup(String),
    /// The resolver answered with no address.
    NoAddress,
}

/// The stage of a check that timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Connect,
    Handshake,
    Answer,
}

impl Failure {
    /// An I/O error from tokio-rustls: the rustls error inside it when there is one.
    pub(super) fn io(e: &std::io::Error) -> Failure {
        match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(r) => Failure::Tls(r.clone()),
            None => match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Failure::Closed,
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => Failure::Reset,
                _ => Failure::Other(e.to_string()),
            },
        }
    }

    /// The refusal the seed reports as "Permission denied" (domain.md §3, Test case 2): the
    /// peer refused this node's client certificate for its extended key usage.
    pub(super) fn is_eku_refusal(&self) -> bool {
        matches!(
            self,
            Failure::Tls(rustls::Error::AlertReceived(
                AlertDescription::UnsupportedCertificate
            ))
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::io::ErrorKind as K;
        match self {
            Failure::Resolve { host, why } => match why {
                Unresolved::Reserved => write!(
                    f,
                    "name '{host}' does not resolve (.invalid is reserved and never resolves)"
                ),
                Unresolved::Lookup(e) => write!(f, "name '{host}' does not resolve: {e}"),
                Unresolved::NoAddress => write!(f, "name '{host}' resolves to no address"),
            },
            Failure::Connect { target, kind } => match kind {
                K::ConnectionRefused => write!(
                    f,
                    "connection refused by {target} (nothing listens on that port)"
                ),
                K::TimedOut => write!(f, "connect to {target}: timed out"),
                K::HostUnreachable => write!(f, "connect to {target}: host unreachable"),
                K::NetworkUnreachable => write!(f, "connect to {target}: network unreachable"),
                K::ConnectionReset => write!(f, "connect to {target}: connection reset"),
                K::AddrNotAvailable => {
                    write!(f, "connect to {target}: no local address to connect from")
                }
                K::PermissionDenied => write!(
                    f,
                    "connect to {target}: not allowed by this machine (a local firewall or policy)"
                ),
                other => write!(f, "connect to {target}: {other}"),
            },
            Failure::TimedOut { stage, target } => match stage {
                Stage::Connect => write!(f, "connect to {target}: timed out"),
                Stage::Handshake => write!(f, "TLS handshake with {target} timed out"),
                Stage::Answer => f.write_str("no answer from the peer"),
            },
            Failure::Tls(e) => write!(f, "{e}"),
            Failure::Closed => f.write_str("peer closed the connection"),
            Failure::Reset => f.write_str("peer reset the connection"),
            Failure::Other(s) => f.write_str(s),
        }
    }
}

/// What the peer's alert says it held against this node's client certificate; `None` for an
/// alert that is not about the certificate.
fn alert_meaning(a: AlertDescription) -> Option<&'static str> {
    use AlertDescription as A;
    // Our own listener sends unsupported_certificate for the EKU rule and unknown_ca for trust.
    Some(match a {
        A::UnsupportedCertificate => {
            "the peer refused its extended key usage (it requires clientAuth); "
        }
        A::UnknownCA => {
            "the peer does not trust its issuer (add this node's CA to the peer's trusted CA list); "
        }
        A::CertificateRevoked => "the peer says it is revoked; ",
        A::CertificateExpired => "the peer says it is expired or not yet valid; ",
        // Our listener's answer to a signature that does not verify under the anchor it found
        // by the issuer's name: two CAs with one name (two nodes' default certificates).
        A::DecryptError => {
            "its signature does not verify against the certificate the peer trusts under its issuer's name (two CAs with the same name, such as two nodes' default certificates); "
        }
        A::BadCertificate
        | A::CertificateUnknown
        | A::CertificateRequired
        | A::CertificateUnobtainable
        | A::BadCertificateStatusResponse
        | A::HandshakeFailure => "",
        _ => return None,
    })
}

pub(super) fn explain(err: &Failure, gen: &Generation) -> String {
    match err {
        Failure::Tls(rustls::Error::AlertReceived(a)) => match alert_meaning(*a) {
            Some(why) => format!(
                "peer rejected this node's client certificate (serial {}, EKUs {}): {why}{err}{}",
                gen.client_serial,
                gen.client_ekus.names(","),
                eku_hint(&gen.client_ekus)
            ),
            None => err.to_string(),
        },
        Failure::Tls(rustls::Error::InvalidCertificate(_)) => {
            format!("peer's server certificate is not trusted by this node's CA list: {err}")
        }
        _ => err.to_string(),
    }
}

/// A tunnel failure: "Permission denied" (the seed's wording) only when the peer refused this
/// node's client certificate for its extended key usage; any other failure says what it is.
pub(super) fn tunnel_reason(e: &Failure, gen: &Generation) -> String {
    if e.is_eku_refusal() {
        format!("Permission denied: {}", explain(e, gen))
    } else {
        explain(e, gen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The zone hint asks the policy: no EKU extension (any purpose) draws none, like the verifier.
    #[test]
    fn zone_hint_agrees_with_the_policy() {
        use crate::certs::Eku;
        assert_eq!(eku_hint(&Ekus::Absent), "");
        assert_eq!(eku_hint(&Ekus::Listed(vec![Eku::ClientAuth])), "");
        assert!(eku_hint(&Ekus::Listed(vec![Eku::ServerAuth])).contains("serverAuth-only"));
        assert!(eku_hint(&Ekus::Listed(vec![Eku::CodeSigning])).contains("neither"));
    }

    /// Zone failures are classified by the rustls error variant and the alert code.
    #[test]
    fn failures_are_classified_by_variant() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        );
        assert!(matches!(
            Failure::io(&e),
            Failure::Tls(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
        ));
        let plain = std::io::Error::other("unknownca alert certificate");
        assert!(matches!(Failure::io(&plain), Failure::Other(_)));
        assert!(alert_meaning(AlertDescription::UnsupportedCertificate)
            .unwrap()
            .contains("extended key usage"));
        assert_eq!(alert_meaning(AlertDescription::CloseNotify), None);
        assert!(alert_meaning(AlertDescription::DecryptError)
            .unwrap()
            .contains("signature does not verify"));
    }

    /// Connect failures are typed from `io::ErrorKind` and the stage, and only the peer's EKU
    /// refusal is the seed's "Permission denied".
    #[test]
    fn connect_failures_are_typed_not_permission_denied() {
        use std::io::ErrorKind as K;
        let refused = Failure::Connect {
            target: "127.0.0.1:9".into(),
            kind: K::ConnectionRefused,
        };
        assert_eq!(
            refused.to_string(),
            "connection refused by 127.0.0.1:9 (nothing listens on that port)"
        );
        let local = Failure::Connect {
            target: "127.0.0.1:9".into(),
            kind: K::PermissionDenied,
        };
        assert!(!local.to_string().contains("ermission denied"), "{local}");
        let eof = std::io::Error::from(K::UnexpectedEof);
        assert!(matches!(Failure::io(&eof), Failure::Closed));
        let reset = std::io::Error::from(K::ConnectionReset);
        assert!(matches!(Failure::io(&reset), Failure::Reset));
        for f in [refused, local, Failure::Closed] {
            assert!(!f.is_eku_refusal(), "{f}");
        }
        assert!(Failure::Tls(rustls::Error::AlertReceived(
            AlertDescription::UnsupportedCertificate
        ))
        .is_eku_refusal());
        assert!(
            !Failure::Tls(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
                .is_eku_refusal()
        );
    }
}
