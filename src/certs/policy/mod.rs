//! The certificate policy: the one rule that decides whether the EKU extensions of a chain
//! satisfy a role under an `ExtendedKeyUsage Checking Mode` (domain.md §2, §4), with a typed
//! reason. Every path asks it: the rustls verifier (per certificate, through webpki's hook),
//! Client/Server Upload and the `AlsoAsClient` warnings, the EKU readiness report, the outbound
//! zone hints and the status texts.
//!
//! * **No EKU extension = any purpose** (OpenSSL and webpki): such a certificate satisfies every
//!   role in every mode. This is decided here once.
//! * An empty extension, or one listing neither purpose the role accepts (codeSigning only,
//!   anyExtendedKeyUsage only — OpenSSL 3.0 refuses anyEKU-only too), fails.
//! * [`Role::InboundClient`]: mode On wants clientAuth, Off wants clientAuth or serverAuth,
//!   decided per certificate; [`Role::Tunnel`] always wants clientAuth; [`Role::Server`] wants
//!   serverAuth.
//! * The trust anchor's own EKU is never asked about: callers pass the leaf and the
//!   intermediates only.
//!
//! This room knows EKU values and rules only: no DER, no webpki, no rustls, no files.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// id-kp-serverAuth.
pub const OID_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
/// id-kp-clientAuth.
pub const OID_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
/// anyExtendedKeyUsage.
pub const OID_ANY_EKU: &str = "2.5.29.37.0";

/// One extended key usage purpose.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Eku {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
    OcspSigning,
    /// anyExtendedKeyUsage: not taken as either TLS purpose (OpenSSL 3.0 agrees).
    Any,
    /// Any other purpose, by dotted OID.
    Other(String),
}

impl Eku {
    const KNOWN: [(Eku, &'static str, &'static str); 7] = [
        (Eku::ServerAuth, OID_SERVER_AUTH, "serverAuth"),
        (Eku::ClientAuth, OID_CLIENT_AUTH, "clientAuth"),
        (Eku::CodeSigning, "1.3.6.1.5.5.7.3.3", "codeSigning"),
        (Eku::EmailProtection, "1.3.6.1.5.5.7.3.4", "emailProtection"),
        (Eku::TimeStamping, "1.3.6.1.5.5.7.3.8", "timeStamping"),
        (Eku::OcspSigning, "1.3.6.1.5.5.7.3.9", "OCSPSigning"),
        (Eku::Any, OID_ANY_EKU, "anyExtendedKeyUsage"),
    ];

    /// The purpose of a dotted OID.
    pub fn from_oid(oid: &str) -> Eku {
        Self::KNOWN
            .iter()
            .find(|(_, o, _)| *o == oid)
            .map_or_else(|| Eku::Other(oid.to_string()), |(e, _, _)| e.clone())
    }

    /// The purpose of a name as shown (`clientAuth`) or a dotted OID.
    pub fn from_name(name: &str) -> Eku {
        Self::KNOWN
            .iter()
            .find(|(_, _, n)| *n == name)
            .map_or_else(|| Eku::from_oid(name), |(e, _, _)| e.clone())
    }

    /// Dotted OID.
    pub fn oid(&self) -> &str {
        match self {
            Eku::Other(o) => o,
            known => Self::KNOWN
                .iter()
                .find(|(e, _, _)| e == known)
                .map_or("", |(_, o, _)| o),
        }
    }

    /// Name as shown: `serverAuth`, `clientAuth`, …, else the dotted OID.
    pub fn name(&self) -> &str {
        match self {
            Eku::Other(o) => o,
            known => Self::KNOWN
                .iter()
                .find(|(e, _, _)| e == known)
                .map_or("", |(_, _, n)| n),
        }
    }
}

impl fmt::Display for Eku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The EKU extension of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Ekus {
    /// No EKU extension: any purpose.
    #[default]
    Absent,
    /// The purposes listed (possibly none: an empty extension).
    Listed(Vec<Eku>),
}

impl Ekus {
    /// True when the extension lists `eku` (an absent extension lists nothing).
    pub fn lists(&self, eku: &Eku) -> bool {
        matches!(self, Ekus::Listed(v) if v.contains(eku))
    }

    /// The purposes listed; empty for an absent extension.
    pub fn listed(&self) -> &[Eku] {
        match self {
            Ekus::Absent => &[],
            Ekus::Listed(v) => v,
        }
    }

    /// Names joined by `sep`; `none` for an absent extension (log lines).
    pub fn names(&self, sep: &str) -> String {
        match self {
            Ekus::Absent => "none".into(),
            Ekus::Listed(v) => v.iter().map(Eku::name).collect::<Vec<_>>().join(sep),
        }
    }

    /// As shown to an admin: `serverAuth, clientAuth`, `none (no … any purpose)`, `empty …`.
    pub fn text(&self) -> String {
        match self {
            Ekus::Absent => "none (no extended key usage extension: any purpose)".into(),
            Ekus::Listed(v) if v.is_empty() => "empty extension (no purpose)".into(),
            Ekus::Listed(_) => self.names(", "),
        }
    }
}

/// `xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EkuMode {
    /// Every certificate with an EKU extension must list clientAuth.
    #[default]
    On,
    /// Each certificate with an EKU extension must list clientAuth or serverAuth.
    Off,
}

impl fmt::Display for EkuMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EkuMode::On => "On",
            EkuMode::Off => "Off",
        })
    }
}

impl FromStr for EkuMode {
    type Err = String;
    /// Case-insensitive `on` / `off` (the product accepted `ON`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" => Ok(EkuMode::On),
            "off" => Ok(EkuMode::Off),
            _ => Err(format!("'{s}' is not a valid value; expected On or Off")),
        }
    }
}

/// The role a certificate is presented in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A TLS client checked by an inbound SIP TLS listener: the [`EkuMode`] applies.
    #[default]
    InboundClient,
    /// A TLS client of the SSH tunnel between nodes (2222): always the On rule.
    Tunnel,
    /// A TLS server (this node's server store): serverAuth.
    Server,
}

impl Role {
    /// The mode actually applied for `configured`.
    pub fn effective_mode(self, configured: EkuMode) -> EkuMode {
        match self {
            Role::InboundClient | Role::Server => configured,
            Role::Tunnel => EkuMode::On,
        }
    }

    /// What each certificate's EKU extension must allow in this role under `mode`.
    pub fn need(self, mode: EkuMode) -> Need {
        match (self, mode) {
            (Role::InboundClient, EkuMode::On) => Need::ClientAuth(ClientAuthReason::ModeOn),
            (Role::InboundClient, EkuMode::Off) => Need::ClientOrServerAuth,
            (Role::Tunnel, _) => Need::ClientAuth(ClientAuthReason::Tunnel),
            (Role::Server, _) => Need::ServerAuth,
        }
    }
}

/// Why clientAuth was required (the tail of the rejection message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuthReason {
    /// The configured mode is On.
    ModeOn,
    /// The tunnel listener always requires it.
    Tunnel,
}

impl fmt::Display for ClientAuthReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuthReason::ModeOn => "ExtendedKeyUsage Checking Mode is On",
            ClientAuthReason::Tunnel => "SSH tunnel connections always require clientAuth",
        })
    }
}

/// What one certificate's EKU extension must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    ClientAuth(ClientAuthReason),
    ClientOrServerAuth,
    ServerAuth,
}

/// Why one certificate's EKU extension does not satisfy a [`Need`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lack {
    /// The extension is present and lists no purpose at all.
    EmptyExtension,
    /// The extension lists purposes, none of them the one needed.
    Missing(Need),
}

/// The one rule, for one certificate.
pub fn check_cert(need: Need, ekus: &Ekus) -> Result<(), Lack> {
    let list = match ekus {
        Ekus::Absent => return Ok(()),
        Ekus::Listed(v) if v.is_empty() => return Err(Lack::EmptyExtension),
        Ekus::Listed(v) => v,
    };
    let has = |e: Eku| list.contains(&e);
    let ok = match need {
        Need::ClientAuth(_) => has(Eku::ClientAuth),
        Need::ClientOrServerAuth => has(Eku::ClientAuth) || has(Eku::ServerAuth),
        Need::ServerAuth => has(Eku::ServerAuth),
    };
    if ok {
        Ok(())
    } else {
        Err(Lack::Missing(need))
    }
}

/// Which certificate of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    Leaf,
    /// The n-th intermediate, leaf side first (0-based).
    Intermediate(usize),
}

/// Why a chain does not satisfy a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub at: Position,
    pub lack: Lack,
    /// The purposes the refused certificate lists.
    pub present: Vec<Eku>,
}

/// Does a chain (leaf first, then the intermediates below the trust anchor) satisfy `role` under
/// `mode`? The first certificate that does not is named.
pub fn decide<'a>(
    role: Role,
    mode: EkuMode,
    chain: impl IntoIterator<Item = &'a Ekus>,
) -> Result<(), Refusal> {
    let need = role.need(mode);
    for (i, ekus) in chain.into_iter().enumerate() {
        if let Err(lack) = check_cert(need, ekus) {
            return Err(Refusal {
                at: if i == 0 {
                    Position::Leaf
                } else {
                    Position::Intermediate(i - 1)
                },
                lack,
                present: ekus.listed().to_vec(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[Eku]) -> Ekus {
        Ekus::Listed(v.to_vec())
    }

    #[test]
    fn no_extension_satisfies_every_role_in_every_mode() {
        for role in [Role::InboundClient, Role::Tunnel, Role::Server] {
            for mode in [EkuMode::On, EkuMode::Off] {
                assert_eq!(
                    decide(role, mode, [&Ekus::Absent]),
                    Ok(()),
                    "{role:?} {mode}"
                );
            }
        }
    }

    #[test]
    fn the_rule_per_role_and_mode() {
        let server = l(&[Eku::ServerAuth]);
        let client = l(&[Eku::ClientAuth]);
        let any = l(&[Eku::Any]);
        assert!(decide(Role::InboundClient, EkuMode::On, [&server]).is_err());
        assert!(decide(Role::InboundClient, EkuMode::Off, [&server]).is_ok());
        assert!(decide(Role::Tunnel, EkuMode::Off, [&server]).is_err());
        assert!(decide(Role::Server, EkuMode::On, [&client]).is_err());
        for mode in [EkuMode::On, EkuMode::Off] {
            let e = decide(Role::InboundClient, mode, [&any]).unwrap_err();
            assert_eq!(e.at, Position::Leaf);
            assert_eq!(e.present, vec![Eku::Any]);
            let e = decide(Role::InboundClient, mode, [&l(&[])]).unwrap_err();
            assert_eq!(e.lack, Lack::EmptyExtension);
        }
        let e = decide(
            Role::InboundClient,
            EkuMode::On,
            [&client, &Ekus::Absent, &server],
        )
        .unwrap_err();
        assert_eq!(e.at, Position::Intermediate(1));
    }

    #[test]
    fn names_and_oids_round_trip() {
        assert_eq!(Eku::from_oid(OID_CLIENT_AUTH), Eku::ClientAuth);
        assert_eq!(Eku::from_name("OCSPSigning").oid(), "1.3.6.1.5.5.7.3.9");
        assert_eq!(Eku::from_oid("1.2.3.4"), Eku::Other("1.2.3.4".into()));
        assert_eq!(Eku::Other("1.2.3.4".into()).name(), "1.2.3.4");
        assert_eq!(
            l(&[Eku::ServerAuth, Eku::ClientAuth]).names(","),
            "serverAuth,clientAuth"
        );
        assert_eq!(Ekus::Absent.names(","), "none");
        assert_eq!("ON".parse::<EkuMode>(), Ok(EkuMode::On));
    }
}
