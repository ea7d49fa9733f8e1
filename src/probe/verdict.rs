//! The probe's verdict: one sentence in the seed's terms (domain.md §3: Test case 1/2,
//! Condition 2.1/3/4), computed from typed outcomes (alerts by variant, where they arrived) and
//! the one certificate policy's judgement of what each identity offered. Never from the text of
//! an error.

use rustls::AlertDescription as A;

use super::{alert_text, Attempt, Identity, Offered, Outcome, PeerTrust, Report, Requested};
use crate::certs::policy::{Eku, Refusal};

/// What the policy says of an offered chain as a TLS client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientPolicy {
    /// Passes clientAuth checking (mode On, so Off too).
    ClientAuth,
    /// Passes only where clientAuth is not enforced: serverAuth-only (mode Off).
    ServerAuthOnly,
    /// Fails both modes.
    Neither,
}

impl ClientPolicy {
    pub fn of(o: &Offered) -> ClientPolicy {
        match (&o.policy_on, &o.policy_off) {
            (Ok(()), _) => ClientPolicy::ClientAuth,
            (Err(_), Ok(())) => ClientPolicy::ServerAuthOnly,
            (Err(_), Err(_)) => ClientPolicy::Neither,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            ClientPolicy::ClientAuth => "clientAuth: accepted by peers that check clientAuth",
            ClientPolicy::ServerAuthOnly => {
                "serverAuth-only: accepted only by peers that do not check clientAuth"
            }
            ClientPolicy::Neither => "neither clientAuth nor serverAuth: refused by every peer",
        }
    }

    /// As an adjective: `serverAuth-only`.
    fn adjective(self) -> &'static str {
        match self {
            ClientPolicy::ClientAuth => "clientAuth",
            ClientPolicy::ServerAuthOnly => "serverAuth-only",
            ClientPolicy::Neither => "non-TLS (neither clientAuth nor serverAuth)",
        }
    }
}

/// Whether an offered chain's issuer is among the CA names the partner listed (`None`: it
/// listed none, or did not ask).
pub fn issuer_named(o: &Offered, r: &Requested) -> Option<bool> {
    match r {
        Requested::Yes { ca_names, .. } if !ca_names.is_empty() => {
            Some(o.issuers.iter().any(|i| ca_names.contains(i)))
        }
        _ => None,
    }
}

/// The one-sentence verdict of `r`.
pub fn verdict(r: &Report) -> String {
    let Some(first) = r.attempts.iter().find(|a| a.reached) else {
        let why = r
            .attempts
            .iter()
            .map(|a| a.outcome.text())
            .next()
            .unwrap_or_default();
        return format!(
            "the partner could not be probed ({why}): nothing is known about its certificates, and a zone to it fails the same way"
        );
    };
    let mut s = String::new();
    if let Some(t) = trust_clause(r) {
        s.push_str(&t);
        s.push_str("; ");
    }
    s.push_str(&client_clause(r, first));
    s
}

/// The partner's own certificate, when something is wrong with it.
fn trust_clause(r: &Report) -> Option<String> {
    let eku = match &r.server_policy {
        Some(Err(Refusal { present, .. })) => Some(format!(
            "the partner's certificate does not allow serverAuth (it lists {})",
            names(present)
        )),
        _ => None,
    };
    let trust = match &r.trust {
        PeerTrust::NotVerified(why) => Some(format!(
            "this node does not trust the partner's certificate ({why}): a zone with TLS Verify Mode On fails until its CA is in the trusted CA list (Condition 3)"
        )),
        PeerTrust::WrongName(why) => Some(format!(
            "the partner's certificate is not valid for {} ({why}): a zone with TLS Verify Mode On and that Subject Name fails; use a name the certificate holds",
            r.spec.server_name.as_deref().unwrap_or("the name given")
        )),
        PeerTrust::NoCaList => Some(
            "this node trusts no CA, so the partner's certificate cannot be verified (add its CA to the trusted CA list)".to_string(),
        ),
        PeerTrust::Verified { .. } | PeerTrust::NotSeen => None,
    };
    match (eku, trust) {
        (None, None) => None,
        (Some(a), None) | (None, Some(a)) => Some(a),
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
    }
}

fn names(e: &[Eku]) -> String {
    if e.is_empty() {
        "no purpose".into()
    } else {
        e.iter().map(Eku::name).collect::<Vec<_>>().join(", ")
    }
}

/// How the other identities fared, as a tail: `and accepted none`.
fn others(r: &Report, main: Identity) -> String {
    let mut parts = Vec::new();
    for a in r.attempts.iter().filter(|a| a.identity != main) {
        let verb = match &a.outcome {
            Outcome::Accepted(_) => "accepted".to_string(),
            Outcome::Refused { alert, .. } => format!("refused (alert {})", u8::from(*alert)),
            Outcome::ClosedAfter => "closed on".to_string(),
            Outcome::Failed(_) | Outcome::NotTried(_) => continue,
        };
        let what = match a.identity {
            Identity::ClientStore => "the client store certificate",
            Identity::ServerStore => "the server store certificate",
            Identity::NoCertificate => "none",
        };
        parts.push(format!("{verb} {what}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" and {}", parts.join(", "))
    }
}

/// The main clause: what the partner did with the first identity that reached it.
fn client_clause(r: &Report, main: &Attempt) -> String {
    if r.requested == Requested::No && matches!(main.outcome, Outcome::Accepted(_)) {
        return "the partner requests no client certificate: it accepts any TLS client, so whether it checks clientAuth cannot be learned here, and a zone to it does not depend on the client store".into();
    }
    let what = main.identity.text();
    let policy = main.offered.as_ref().map(ClientPolicy::of);
    let adj = policy.map_or("", |p| p.adjective());
    let tail = others(r, main.identity);
    let named = main
        .offered
        .as_ref()
        .and_then(|o| issuer_named(o, &r.requested));
    let not_named = if named == Some(false) {
        " (its issuer is not among the CA names the partner lists)"
    } else {
        ""
    };
    match &main.outcome {
        Outcome::Accepted(_) if main.identity == Identity::NoCertificate => format!(
            "the partner asks for a client certificate but does not require one: it accepted a TLS client presenting none{tail}"
        ),
        Outcome::Accepted(_) => match policy {
            Some(ClientPolicy::ServerAuthOnly) => format!(
                "the partner does not enforce clientAuth: it accepted the serverAuth-only {}{tail}; zones to it work, but the SSH tunnel, which always requires clientAuth, fails with \"Permission denied\" (Test case 2)",
                main.identity.noun()
            ),
            _ => format!(
                "the partner accepts {what} ({adj}){tail}; zones and the tunnel to it work (Condition 2.1)"
            ),
        },
        Outcome::Refused { alert, when } => {
            let how = format!("alert {} {}", alert_text(*alert), when.text());
            match (alert, policy) {
                (A::UnsupportedCertificate, _)
                | (A::BadCertificate | A::CertificateUnknown, Some(ClientPolicy::ServerAuthOnly)) => format!(
                    "the partner enforces clientAuth: it refused the {adj} {} ({how}){tail}; present a certificate with clientAuth from a CA it names (Condition 2.1)",
                    main.identity.noun()
                ),
                (A::UnknownCA, _) => format!(
                    "the partner does not trust the issuer of {what} ({how}){not_named}{tail}; present a certificate from a CA it names, or add this node's CA to the partner's trusted CA list (Condition 3)"
                ),
                (A::CertificateRequired | A::HandshakeFailure, _)
                    if main.identity == Identity::NoCertificate || !main.sent =>
                {
                    format!(
                        "the partner requires a client certificate and none went out ({how}){tail}; upload a certificate with clientAuth to the client store (Condition 2.1)"
                    )
                }
                _ => format!("the partner refused {what} ({how}){not_named}{tail}"),
            }
        }
        Outcome::ClosedAfter => format!(
            "the partner closed the connection after Finished without an alert when presented {what}{not_named}{tail}: a silent refusal, so its log holds the reason"
        ),
        Outcome::Failed(f) => format!("the probe with {what} failed: {f}{tail}"),
        Outcome::NotTried(why) => format!("{what} was not tried: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::policy::{decide, EkuMode, Ekus, Role};
    use crate::probe::{Evidence, Failure, Present, Protocol, Spec, Stage, TlsVersion, When};

    fn offered(ekus: &[Eku]) -> Offered {
        let e = Ekus::Listed(ekus.to_vec());
        let leaf = crate::certs::CertInfo {
            subject: "CN=me".into(),
            issuer: "CN=CA".into(),
            serial: "01".into(),
            not_before: String::new(),
            not_after: String::new(),
            days_left: 1,
            sans: vec![],
            key_type: String::new(),
            ekus: e.clone(),
            sha256_fingerprint: String::new(),
            is_self_signed: false,
            is_ca: false,
        };
        Offered {
            leaf,
            issuers: vec!["CN=CA".into()],
            policy_on: decide(Role::InboundClient, EkuMode::On, [&e]),
            policy_off: decide(Role::InboundClient, EkuMode::Off, [&e]),
        }
    }

    fn report(client: Offered, outcome: Outcome, requested: Requested) -> Report {
        let mut r = Report {
            spec: Spec {
                address: "127.0.0.1".into(),
                port: 5061,
                server_name: None,
                present: Present::Client,
                protocol: Protocol::Sip,
                version: TlsVersion::Any,
            },
            time: String::new(),
            version: Some("TLSv1.3".into()),
            cipher: None,
            chain: vec![],
            trust: PeerTrust::Verified {
                name_checked: false,
            },
            server_policy: Some(Ok(())),
            requested,
            attempts: vec![Attempt {
                identity: Identity::ClientStore,
                offered: Some(client),
                sent: true,
                outcome,
                sip_status: None,
                reached: true,
            }],
            verdict: String::new(),
        };
        r.verdict = verdict(&r);
        r
    }

    fn asked(names: &[&str]) -> Requested {
        Requested::Yes {
            ca_names: names.iter().map(|s| s.to_string()).collect(),
            schemes: vec![],
        }
    }

    /// Each cause gets its sentence, chosen by alert variant and the policy's judgement.
    #[test]
    fn verdicts_name_the_cause() {
        let server_only = || offered(&[Eku::ServerAuth]);
        let refused = |a| Outcome::Refused {
            alert: a,
            when: When::After,
        };
        let r = report(
            server_only(),
            refused(A::UnsupportedCertificate),
            asked(&["CN=CA"]),
        );
        assert!(r.verdict.starts_with("the partner enforces clientAuth: it refused the serverAuth-only client store certificate (alert unsupported_certificate (43) after Finished"), "{}", r.verdict);
        assert!(r.verdict.contains("Condition 2.1"));
        // A generic refusal of a serverAuth-only chain is the EKU too; of a clientAuth one not.
        let r = report(server_only(), refused(A::BadCertificate), asked(&[]));
        assert!(
            r.verdict.starts_with("the partner enforces clientAuth"),
            "{}",
            r.verdict
        );
        let r = report(
            offered(&[Eku::ClientAuth]),
            refused(A::BadCertificate),
            asked(&[]),
        );
        assert!(
            r.verdict
                .starts_with("the partner refused the client store"),
            "{}",
            r.verdict
        );
        let r = report(
            server_only(),
            Outcome::Accepted(Evidence::SipAnswer("SIP/2.0 200 OK".into())),
            asked(&[]),
        );
        assert!(r.verdict.contains("Test case 2"), "{}", r.verdict);
        let r = report(
            offered(&[Eku::ClientAuth]),
            refused(A::UnknownCA),
            asked(&["CN=Other"]),
        );
        assert!(
            r.verdict
                .contains("(its issuer is not among the CA names the partner lists)"),
            "{}",
            r.verdict
        );
        assert!(r.verdict.contains("Condition 3"));
        let r = report(
            server_only(),
            Outcome::Accepted(Evidence::Data(1)),
            Requested::No,
        );
        assert!(
            r.verdict
                .starts_with("the partner requests no client certificate"),
            "{}",
            r.verdict
        );
        let mut r = report(
            server_only(),
            Outcome::Failed(Failure::TimedOut(Stage::Handshake)),
            Requested::Unknown,
        );
        r.attempts[0].reached = false;
        assert!(
            verdict(&r).starts_with("the partner could not be probed"),
            "{}",
            verdict(&r)
        );
    }
}
