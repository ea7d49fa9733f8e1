//! `xCommand Security Certificates Probe`: reads the parameters, runs the partner probe
//! ([`crate::probe`]), records it (handshake log, `xStatus Security Certificates Probe`), and
//! turns the report into a command result that every renderer prints. The probe itself, its
//! verdict and its records live in `crate::probe`; this file only maps to and from the command.

use crate::commands::{failed, ok, param};
use crate::engine::{Call, CommandResult, Item};
use crate::error::ShellError;
use crate::probe::verdict::{issuer_named, ClientPolicy};
use crate::probe::{
    self, record, Attempt, Outcome, PeerTrust, Present, Protocol, Report, Requested, Spec,
    TlsVersion,
};

/// The handler.
pub fn run(call: Call) -> Result<CommandResult, ShellError> {
    let spec = spec(&call)?;
    let report = probe::probe(call.root, &spec);
    // A probe that cannot be recorded still answers; what failed is said in the reply.
    let mut notes = Vec::new();
    if let Err(e) = record::log_handshakes(call.root, &report) {
        notes.push(format!("not written to the handshake log: {e}"));
    }
    if let Err(e) = record::keep(call.root, &report) {
        notes.push(format!("not kept for xStatus: {e}"));
    }
    let mut f = fields(&report);
    f.extend(notes.into_iter().map(|n| Item::leaf("Warning", n)));
    Ok(ok(call.name, f))
}

fn spec(call: &Call) -> Result<Spec, ShellError> {
    let p = |k| param(call.params, k).filter(|v| !v.is_empty());
    let is = |k, v: &str| p(k).is_some_and(|x| x.eq_ignore_ascii_case(v));
    let address = p("Address")
        .ok_or_else(|| {
            failed(
                call.path,
                "Address is required: the partner's host name or IP address",
            )
        })?
        .to_string();
    let port = match p("Port") {
        None => 5061,
        Some(v) => v.parse().map_err(|_| {
            failed(
                call.path,
                format!("Port: expected a number 1..65535, got '{v}'"),
            )
        })?,
    };
    let present = if is("Present", "Client") {
        Present::Client
    } else if is("Present", "Server") {
        Present::Server
    } else if is("Present", "None") {
        Present::None
    } else {
        Present::All
    };
    Ok(Spec {
        address,
        port,
        server_name: p("ServerName").map(str::to_string),
        present,
        protocol: if is("Protocol", "TLS") {
            Protocol::Tls
        } else {
            Protocol::Sip
        },
        version: if is("TLSVersion", "1.2") {
            TlsVersion::V12
        } else if is("TLSVersion", "1.3") {
            TlsVersion::V13
        } else {
            TlsVersion::Any
        },
    })
}

fn yes(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The reply: what was asked, what was negotiated, the partner's chain, its request, each
/// identity's outcome, and the verdict last.
pub fn fields(r: &Report) -> Vec<Item> {
    let mut f = vec![
        Item::leaf("Address", r.spec.address.clone()),
        Item::leaf("Port", r.spec.port.to_string()),
    ];
    if let Some(n) = &r.spec.server_name {
        f.push(Item::leaf("ServerName", n.clone()));
    }
    f.push(Item::leaf("Protocol", r.spec.protocol.name()));
    f.push(Item::leaf("TLSVersion", r.spec.version.name()));
    f.push(Item::node(
        "Negotiated",
        vec![
            Item::leaf("Version", r.version.clone().unwrap_or_default()),
            Item::leaf("Cipher", r.cipher.clone().unwrap_or_default()),
        ],
    ));
    f.push(peer(r));
    f.push(request(r));
    for (a, n) in r.attempts.iter().zip(1u32..) {
        f.push(Item::instance("Identity", n, identity(r, a)));
    }
    f.push(Item::leaf("Verdict", r.verdict.clone()));
    f
}

fn peer(r: &Report) -> Item {
    let mut p = vec![Item::leaf("Verified", record::trust_text(&r.trust))];
    if let PeerTrust::Verified { name_checked } = r.trust {
        p.push(Item::leaf("NameChecked", yes(name_checked)));
    }
    if let Some(pol) = &r.server_policy {
        let text = match pol {
            Ok(()) => "allows serverAuth".to_string(),
            Err(refusal) => format!(
                "does not allow serverAuth ({:?} lists {})",
                refusal.at,
                refusal
                    .present
                    .iter()
                    .map(|e| e.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        p.push(Item::leaf("ServerAuthPolicy", text));
    }
    for (c, n) in r.chain.iter().zip(1u32..) {
        p.push(Item::instance(
            "Certificate",
            n,
            vec![
                Item::leaf("Subject", c.subject.clone()),
                Item::leaf("Issuer", c.issuer.clone()),
                Item::leaf("SerialNumber", c.serial.clone()),
                Item::leaf("NotBefore", c.not_before.clone()),
                Item::leaf("NotAfter", c.not_after.clone()),
                Item::leaf("ExtendedKeyUsage", c.ekus.text()),
            ],
        ));
    }
    Item::node("Peer", p)
}

fn request(r: &Report) -> Item {
    let mut q = vec![Item::leaf(
        "Requested",
        record::requested_word(&r.requested),
    )];
    if let Requested::Yes { ca_names, schemes } = &r.requested {
        for (name, n) in ca_names.iter().zip(1u32..) {
            q.push(Item::instance(
                "CAName",
                n,
                vec![Item::leaf("Subject", name.clone())],
            ));
        }
        if ca_names.is_empty() {
            q.push(Item::leaf("CANames", "none listed"));
        }
        q.push(Item::leaf("SignatureSchemes", schemes.join(", ")));
    }
    Item::node("CertificateRequest", q)
}

fn identity(r: &Report, a: &Attempt) -> Vec<Item> {
    let mut i = vec![Item::leaf("Present", a.identity.word())];
    if let Some(o) = &a.offered {
        i.push(Item::leaf("SerialNumber", o.leaf.serial.clone()));
        i.push(Item::leaf("Subject", o.leaf.subject.clone()));
        i.push(Item::leaf("ExtendedKeyUsage", o.leaf.ekus.text()));
        i.push(Item::leaf("ClientPolicy", ClientPolicy::of(o).text()));
        if let Some(named) = issuer_named(o, &r.requested) {
            i.push(Item::leaf("IssuerNamed", yes(named)));
        }
    }
    i.push(Item::leaf("Sent", yes(a.sent)));
    i.push(Item::leaf("Outcome", a.outcome.word()));
    if let Outcome::Refused { alert, when } = &a.outcome {
        i.push(Item::leaf("Alert", probe::alert_text(*alert)));
        i.push(Item::leaf("When", when.text()));
    }
    i.push(Item::leaf("Detail", a.outcome.text()));
    if let Some(s) = &a.sip_status {
        i.push(Item::leaf("SipStatus", s.clone()));
    }
    i
}
