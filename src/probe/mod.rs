//! The partner probe: "if this node connects to that partner as a TLS client, which certificate
//! goes out, does the partner ask for one, which CAs does it name, and does it accept ours?"
//! Answered before a zone fails, with the same outbound client configuration as the zones
//! ([`crate::certs::verify::client`]), the same trusted CA list, every stage bounded in time.
//!
//! For each identity tried (client store, server store, none) one full handshake, then the first
//! read after Finished, where a TLS 1.3 server's refusal of a client certificate arrives
//! ([`conn`]). The partner's chain is verified against the CA list and recorded, never used to
//! abort, so the rest is still learned. The verdict ([`verdict`]) is computed from typed
//! outcomes and the one certificate policy ([`crate::certs::policy::decide`]). Each probe is
//! recorded ([`record`]): a line per handshake in `handshakes.log`, the last probe per address in
//! `ROOT/status/probes.json`.
//!
//! Must not know: the engine, commands, renderers or front ends (the command and its reply
//! live in `commands::certs::probe`); the agent (it shares the client config through the
//! certificate room, not through the agent).

pub mod conn;
pub mod record;
mod run;
pub mod verdict;

use std::time::Duration;

use rustls::AlertDescription;

use crate::certs::policy::Refusal;
use crate::certs::CertInfo;

pub use run::probe;

/// Which identities to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Present {
    Client,
    Server,
    None,
    All,
}

impl Present {
    /// The identities, in the order they are tried.
    pub fn identities(self) -> &'static [Identity] {
        match self {
            Present::Client => &[Identity::ClientStore],
            Present::Server => &[Identity::ServerStore],
            Present::None => &[Identity::NoCertificate],
            Present::All => &[
                Identity::ClientStore,
                Identity::ServerStore,
                Identity::NoCertificate,
            ],
        }
    }
}

/// What follows the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `OPTIONS`, and the status line of the answer.
    Sip,
    /// A short bounded read.
    Tls,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Sip => "SIP",
            Protocol::Tls => "TLS",
        }
    }
}

/// TLS versions offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Any,
    V12,
    V13,
}

impl TlsVersion {
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Any => "Any",
            TlsVersion::V12 => "1.2",
            TlsVersion::V13 => "1.3",
        }
    }

    /// For the client config: empty is the safe defaults (1.3 and 1.2), as the zones offer.
    pub fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static V12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static V13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersion::Any => &[],
            TlsVersion::V12 => &V12,
            TlsVersion::V13 => &V13,
        }
    }
}

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub address: String,
    pub port: u16,
    /// SNI and the name checked against the partner's certificate.
    pub server_name: Option<String>,
    pub present: Present,
    pub protocol: Protocol,
    pub version: TlsVersion,
}

/// An identity this node can present as a TLS client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Identity {
    ClientStore,
    ServerStore,
    NoCertificate,
}

impl Identity {
    /// The store's word (`Client`, `Server`, `None`), as the `Present` parameter spells it.
    pub fn word(self) -> &'static str {
        match self {
            Identity::ClientStore => "Client",
            Identity::ServerStore => "Server",
            Identity::NoCertificate => "None",
        }
    }

    /// Without the article: `client store certificate`.
    pub fn noun(self) -> &'static str {
        match self {
            Identity::ClientStore => "client store certificate",
            Identity::ServerStore => "server store certificate",
            Identity::NoCertificate => "no certificate",
        }
    }

    /// In a sentence.
    pub fn text(self) -> &'static str {
        match self {
            Identity::ClientStore => "the client store certificate",
            Identity::ServerStore => "the server store certificate",
            Identity::NoCertificate => "no certificate",
        }
    }
}

/// The stage of a handshake attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Handshake,
    /// After Finished: the first read (or the SIP answer).
    Answer,
}

/// Whether a refusal came during the handshake or on the first read after Finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    During,
    After,
}

impl When {
    pub fn text(self) -> &'static str {
        match self {
            When::During => "during the handshake",
            When::After => "after Finished (on the first read)",
        }
    }
}

/// What showed that the partner accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The status line answering `OPTIONS`.
    SipAnswer(String),
    /// Application data arrived (bytes).
    Data(usize),
    /// No refusal within the wait after Finished.
    Silent(Duration),
}

/// Why an attempt did not get an answer, as data (chosen by variant, never by error text).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Unresolved(String),
    Connect(std::io::ErrorKind),
    TimedOut(Stage),
    /// The peer closed without an alert.
    Closed(Stage),
    Reset(Stage),
    Io(Stage, std::io::ErrorKind),
    /// rustls refused (our side), or an alert outside a refusal.
    Tls(rustls::Error),
    LongLine(usize),
    /// The identity could not be loaded from its store.
    Store(String),
    BadName(String),
}

impl Stage {
    fn text(self) -> &'static str {
        match self {
            Stage::Connect => "connecting",
            Stage::Handshake => "during the handshake",
            Stage::Answer => "after the handshake",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unresolved(h) => write!(f, "name '{h}' does not resolve"),
            Failure::Connect(std::io::ErrorKind::ConnectionRefused) => {
                f.write_str("connection refused (nothing listens on that port)")
            }
            Failure::Connect(k) => write!(f, "connect failed: {k}"),
            Failure::TimedOut(Stage::Connect) => write!(
                f,
                "connect timed out ({} s)",
                conn::CONNECT_TIMEOUT.as_secs()
            ),
            Failure::TimedOut(Stage::Handshake) => write!(
                f,
                "the partner did not complete the handshake within {} s",
                conn::HANDSHAKE_TIMEOUT.as_secs()
            ),
            Failure::TimedOut(Stage::Answer) => write!(
                f,
                "no answer within {} s after the handshake",
                conn::ANSWER_TIMEOUT.as_secs()
            ),
            Failure::Closed(s) => write!(
                f,
                "the partner closed the connection {} without an alert",
                s.text()
            ),
            Failure::Reset(s) => write!(f, "the partner reset the connection {}", s.text()),
            Failure::Io(s, k) => write!(f, "{k} {}", s.text()),
            Failure::Tls(e) => write!(f, "{e}"),
            Failure::LongLine(n) => write!(f, "the partner's answer line is longer than {n} bytes"),
            Failure::Store(e) => write!(f, "cannot load the store: {e}"),
            Failure::BadName(n) => write!(f, "'{n}' is not a valid server name"),
        }
    }
}

/// The outcome of one identity.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted(Evidence),
    /// The partner's alert.
    Refused {
        alert: AlertDescription,
        when: When,
    },
    /// The partner closed after Finished without an alert (a silent refusal, perhaps).
    ClosedAfter,
    Failed(Failure),
    /// Not tried: an earlier attempt never reached the certificate question.
    NotTried(String),
}

impl Outcome {
    /// One word, for status and logs.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Accepted(_) => "Accepted",
            Outcome::Refused { .. } => "Refused",
            Outcome::ClosedAfter => "Closed",
            Outcome::Failed(_) => "Failed",
            Outcome::NotTried(_) => "NotTried",
        }
    }

    /// One line: the word and what it rests on.
    pub fn text(&self) -> String {
        match self {
            Outcome::Accepted(Evidence::SipAnswer(l)) => format!("accepted: SIP answer {l}"),
            Outcome::Accepted(Evidence::Data(n)) => format!("accepted: {n} bytes of data"),
            Outcome::Accepted(Evidence::Silent(d)) => {
                format!(
                    "accepted: no alert within {} ms after Finished",
                    d.as_millis()
                )
            }
            Outcome::Refused { alert, when } => {
                format!("refused: alert {} {}", alert_text(*alert), when.text())
            }
            Outcome::ClosedAfter => {
                "closed: the partner closed after Finished without an alert".into()
            }
            Outcome::Failed(f) => format!("failed: {f}"),
            Outcome::NotTried(why) => format!("not tried: {why}"),
        }
    }
}

/// An alert as the RFC names it, with its number: `unsupported_certificate (43)`.
pub fn alert_text(a: AlertDescription) -> String {
    format!("{} ({})", alert_name(a), u8::from(a))
}

/// The RFC 8446 / 5246 name of an alert.
pub fn alert_name(a: AlertDescription) -> String {
    use AlertDescription as A;
    let s = match a {
        A::CloseNotify => "close_notify",
        A::UnexpectedMessage => "unexpected_message",
        A::BadRecordMac => "bad_record_mac",
        A::HandshakeFailure => "handshake_failure",
        A::BadCertificate => "bad_certificate",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateRevoked => "certificate_revoked",
        A::CertificateExpired => "certificate_expired",
        A::CertificateUnknown => "certificate_unknown",
        A::IllegalParameter => "illegal_parameter",
        A::UnknownCA => "unknown_ca",
        A::AccessDenied => "access_denied",
        A::DecodeError => "decode_error",
        A::DecryptError => "decrypt_error",
        A::ProtocolVersion => "protocol_version",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error",
        A::InappropriateFallback => "inappropriate_fallback",
        A::UserCanceled => "user_canceled",
        A::MissingExtension => "missing_extension",
        A::UnsupportedExtension => "unsupported_extension",
        A::UnrecognisedName => "unrecognized_name",
        A::BadCertificateStatusResponse => "bad_certificate_status_response",
        A::UnknownPSKIdentity => "unknown_psk_identity",
        A::CertificateRequired => "certificate_required",
        A::NoApplicationProtocol => "no_application_protocol",
        other => return format!("{other:?}"),
    };
    s.to_string()
}

/// The certificate an identity offers, judged by the policy as a TLS client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub leaf: CertInfo,
    /// Issuer of each certificate of the chain, leaf first.
    pub issuers: Vec<String>,
    /// [`crate::certs::policy::decide`] as a client, mode On (clientAuth) and Off.
    pub policy_on: Result<(), Refusal>,
    pub policy_off: Result<(), Refusal>,
}

/// One identity tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub identity: Identity,
    pub offered: Option<Offered>,
    /// The certificate went out (the partner asked for one and we had it).
    pub sent: bool,
    pub outcome: Outcome,
    pub sip_status: Option<String>,
    /// The handshake got as far as the ServerHello.
    pub reached: bool,
}

/// Whether the partner's chain verifies against this node's CA list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerTrust {
    /// `name_checked`: the ServerName was checked too.
    Verified {
        name_checked: bool,
    },
    NotVerified(String),
    /// The chain verifies but the certificate does not hold the ServerName given.
    WrongName(String),
    /// This node trusts no CA (no `ca.pem`).
    NoCaList,
    /// No certificate arrived.
    NotSeen,
}

/// Whether the partner asked for a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    Yes {
        /// Decoded CA names, as the stores show subjects.
        ca_names: Vec<String>,
        schemes: Vec<String>,
    },
    No,
    /// No handshake got far enough to know.
    Unknown,
}

/// A finished probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub spec: Spec,
    pub time: String,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub chain: Vec<CertInfo>,
    pub trust: PeerTrust,
    /// The partner's chain as a TLS server, by the policy (serverAuth).
    pub server_policy: Option<Result<(), Refusal>>,
    pub requested: Requested,
    pub attempts: Vec<Attempt>,
    pub verdict: String,
}

impl Report {
    /// `address:port`.
    pub fn target(&self) -> String {
        target(&self.spec.address, self.spec.port)
    }

    pub fn attempt(&self, id: Identity) -> Option<&Attempt> {
        self.attempts.iter().find(|a| a.identity == id)
    }
}

/// `address:port` (`[v6]:port`).
pub fn target(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}
