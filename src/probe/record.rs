//! What a probe leaves behind: one line per handshake in `ROOT/status/handshakes.log` (the
//! agent's JSON-lines log, `listener: "probe"`), and the last probe per address in
//! `ROOT/status/probes.json` (at most [`MAX_KEPT`] addresses, the oldest dropped; written
//! atomically), which `xStatus Security Certificates Probe` shows and the diagnostic bundle
//! carries.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Outcome, PeerTrust, Report, Requested};
use crate::certs::info::Presented;

/// `ROOT/status/probes.json`.
pub const PROBES_FILE: &str = "probes.json";
/// Addresses kept.
pub const MAX_KEPT: usize = 16;

/// The last probe of one address, as kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub address: String,
    pub port: u16,
    pub server_name: String,
    pub time: String,
    pub protocol: String,
    pub version: String,
    pub cipher: String,
    pub peer_subject: String,
    pub peer_serial: String,
    pub peer_verified: String,
    pub certificate_requested: String,
    /// Outcome per identity tried, by `Present` word (`Client`, `Server`, `None`).
    pub outcomes: Vec<(String, String)>,
    pub verdict: String,
}

impl Summary {
    fn target(&self) -> String {
        super::target(&self.address, self.port)
    }
}

/// The partner's trust, in one word or a short reason.
pub fn trust_text(t: &PeerTrust) -> String {
    match t {
        PeerTrust::Verified { name_checked: true } => "True (chain and name)".into(),
        PeerTrust::Verified {
            name_checked: false,
        } => "True (chain; no ServerName given, name not checked)".into(),
        PeerTrust::NotVerified(why) => format!("False: {why}"),
        PeerTrust::WrongName(why) => {
            format!("False (the chain verifies; the name does not): {why}")
        }
        PeerTrust::NoCaList => "False: this node trusts no CA".into(),
        PeerTrust::NotSeen => "Unknown: no certificate arrived".into(),
    }
}

/// Whether a certificate was requested, in one word.
pub fn requested_word(r: &Requested) -> &'static str {
    match r {
        Requested::Yes { .. } => "True",
        Requested::No => "False",
        Requested::Unknown => "Unknown",
    }
}

pub fn summary(r: &Report) -> Summary {
    let leaf = r.chain.first();
    Summary {
        address: r.spec.address.clone(),
        port: r.spec.port,
        server_name: r.spec.server_name.clone().unwrap_or_default(),
        time: r.time.clone(),
        protocol: r.spec.protocol.name().into(),
        version: r.version.clone().unwrap_or_default(),
        cipher: r.cipher.clone().unwrap_or_default(),
        peer_subject: leaf.map(|c| c.subject.clone()).unwrap_or_default(),
        peer_serial: leaf.map(|c| c.serial.clone()).unwrap_or_default(),
        peer_verified: trust_text(&r.trust),
        certificate_requested: requested_word(&r.requested).into(),
        outcomes: r
            .attempts
            .iter()
            .map(|a| (a.identity.word().to_string(), a.outcome.text()))
            .collect(),
        verdict: r.verdict.clone(),
    }
}

pub fn path(root: &Path) -> PathBuf {
    root.join("status").join(PROBES_FILE)
}

/// The probes kept, by address (empty when none, or the file is not a probe file).
pub fn read_all(root: &Path) -> Vec<Summary> {
    crate::bounded::read(&path(root), crate::bounded::FileKind::Probes)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Keeps `r` as the last probe of its address; the oldest address goes past [`MAX_KEPT`].
pub fn keep(root: &Path, r: &Report) -> std::io::Result<()> {
    keep_summary(root, summary(r))
}

fn keep_summary(root: &Path, s: Summary) -> std::io::Result<()> {
    let mut all = read_all(root);
    all.retain(|k| k.target() != s.target());
    all.push(s);
    // RFC 3339 UTC with fixed digits: text order is time order.
    all.sort_by(|a, b| b.time.cmp(&a.time));
    all.truncate(MAX_KEPT);
    all.sort_by_key(Summary::target);
    std::fs::create_dir_all(root.join("status"))?;
    let text = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
    crate::store::write_file_atomic(&path(root), &text, 0o644)
}

/// One handshake-log line of an attempt.
#[derive(Serialize)]
struct Line<'a> {
    decision: &'static str,
    listener: &'static str,
    identity: &'static str,
    peer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    presented_by_peer: String,
    sent_client_serial: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_after_finished: Option<bool>,
    version: &'a str,
    reason: String,
    time: &'a str,
}

/// Appends a line per attempt to `handshakes.log`, in one `write()` (O_APPEND: lines of the
/// agent, which appends to the same file, never interleave within a line).
pub fn log_handshakes(root: &Path, r: &Report) -> std::io::Result<()> {
    let peer_cert = r
        .chain
        .first()
        .map(|c| {
            Presented {
                serial: c.serial.clone(),
                subject: crate::peer_text::PeerText::new(&c.subject),
                issuer: crate::peer_text::PeerText::new(&c.issuer),
                ekus: c.ekus.clone(),
            }
            .describe()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for a in &r.attempts {
        let (alert, after) = match &a.outcome {
            Outcome::Refused { alert, when } => {
                (Some(u8::from(*alert)), Some(*when == super::When::After))
            }
            _ => (None, None),
        };
        let line = Line {
            decision: match &a.outcome {
                Outcome::Accepted(_) => "accepted",
                Outcome::Refused { .. } => "refused",
                Outcome::ClosedAfter => "closed",
                Outcome::Failed(_) => "failed",
                Outcome::NotTried(_) => "not tried",
            },
            listener: "probe",
            identity: a.identity.word(),
            peer: r.target(),
            server_name: r.spec.server_name.as_deref(),
            presented_by_peer: peer_cert.clone(),
            sent_client_serial: match (&a.offered, a.sent) {
                (Some(o), true) => &o.leaf.serial,
                _ => "",
            },
            alert,
            alert_after_finished: after,
            version: r.version.as_deref().unwrap_or(""),
            reason: a.outcome.text(),
            time: &r.time,
        };
        serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    std::fs::create_dir_all(root.join("status"))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("status").join("handshakes.log"))?;
    f.write_all(&out)
}

/// `(path words, value)` of `xStatus Security Certificates Probe [n] …`, one instance per
/// address kept, in address order.
pub fn status_values(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, s) in read_all(root).iter().take(MAX_KEPT).enumerate() {
        let base = format!("Security Certificates Probe {}", n + 1);
        let mut put = |leaf: &str, v: String| out.push((format!("{base} {leaf}"), v));
        put("Address", s.address.clone());
        put("Port", s.port.to_string());
        put("ServerName", s.server_name.clone());
        put("Time", s.time.clone());
        put("Protocol", s.protocol.clone());
        put("Version", s.version.clone());
        put("Cipher", s.cipher.clone());
        put("PeerSubject", s.peer_subject.clone());
        put("PeerSerial", s.peer_serial.clone());
        put("PeerVerified", s.peer_verified.clone());
        put("CertificateRequested", s.certificate_requested.clone());
        for (word, text) in &s.outcomes {
            let leaf = if word == "None" {
                "NoCertificate"
            } else {
                word
            };
            put(leaf, text.clone());
        }
        put("Verdict", s.verdict.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(addr: &str, time: &str) -> Summary {
        Summary {
            address: addr.into(),
            port: 5061,
            time: time.into(),
            ..Default::default()
        }
    }

    /// The kept set is bounded: past MAX_KEPT addresses the oldest goes, and a second probe of
    /// an address replaces its first.
    #[test]
    fn kept_probes_are_bounded_and_one_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("status")).unwrap();
        for i in 0..MAX_KEPT {
            let t = format!("2026-01-01T00:00:{i:02}.000Z");
            keep_summary(root, s(&format!("10.0.0.{i}"), &t)).unwrap();
        }
        assert_eq!(read_all(root).len(), MAX_KEPT);
        keep_summary(root, s("10.0.0.99", "2026-01-02T00:00:00.000Z")).unwrap();
        let kept = read_all(root);
        assert_eq!(kept.len(), MAX_KEPT);
        assert!(
            !kept.iter().any(|k| k.address == "10.0.0.0"),
            "oldest dropped"
        );
        assert!(kept.iter().any(|k| k.address == "10.0.0.99"));
        keep_summary(root, s("10.0.0.99", "2026-01-03T00:00:00.000Z")).unwrap();
        let again = read_all(root);
        assert_eq!(again.iter().filter(|k| k.address == "10.0.0.99").count(), 1);
        assert_eq!(again.len(), MAX_KEPT);
        std::fs::write(
            path(root),
            vec![b'x'; (crate::bounded::FileKind::Probes.limit().bytes + 1) as usize],
        )
        .unwrap();
        assert!(read_all(root).is_empty(), "an oversized file is not read");
    }
}
