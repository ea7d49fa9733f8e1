//! The EKU readiness report: for this node's two stores, its trusted CA list
//! and its EKU checking mode, what will happen in each TLS role — inbound
//! mutual TLS (this node is the TLS server and checks peers), outbound mutual
//! TLS (this node is the TLS client and presents its client store) and the
//! tunnel (port 2222), which always requires clientAuth. Each finding names
//! the row of the seed's scenario matrix (domain.md §3) it corresponds to.

use std::path::Path;

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::certs::files::calist;
use crate::certs::files::calist::load_ca_list;
use crate::certs::files::ops::{
    eku_text, read_store_chain, OpError, StoreKind, EXPIRY_WARNING_DAYS,
};
use crate::certs::policy::{self, Eku, EkuMode, Ekus, Position, Refusal, Role};
use crate::certs::verify::trust::verify_trust;
use crate::certs::x509::info::{decode, CertInfo};

/// Outcome of one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Works with every peer that trusts the issuer.
    Ready,
    /// Works with some peers only.
    Limited,
    /// Will fail.
    Fails,
}

impl Verdict {
    /// How it is shown.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Ready => "Ready",
            Verdict::Limited => "Limited",
            Verdict::Fails => "Fails",
        }
    }
}

/// One role's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleReport {
    /// Role name.
    pub role: String,
    /// Which store's certificate this node presents in the role.
    pub presents: String,
    /// Outcome.
    pub verdict: Verdict,
    /// Why, in sentences.
    pub explanation: String,
    /// The seed matrix rows (domain.md §3) this finding corresponds to.
    pub seed: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// EKU checking mode applied to inbound peers.
    pub mode: EkuMode,
    /// One sentence for the admin.
    pub summary: String,
    /// Per role.
    pub roles: Vec<RoleReport>,
}

/// A store's certificate, decoded, with its chain and trust.
#[derive(Debug, Clone)]
struct StoreView {
    leaf: CertInfo,
    inters: Vec<CertInfo>,
    trust: Result<String, String>,
}

impl StoreView {
    fn label(&self, store: StoreKind) -> String {
        format!(
            "{} store: '{}' ({})",
            store.word(),
            self.leaf.subject,
            eku_text(&self.leaf)
        )
    }
    fn has(&self, eku: &Eku) -> bool {
        self.leaf.ekus.lists(eku)
    }
    /// Leaf alone satisfies a peer checking with `mode` (the policy decides).
    fn leaf_passes(&self, mode: EkuMode) -> bool {
        leaf_passes(&self.leaf.ekus, mode)
    }
    /// First intermediate the policy refuses under mode On.
    fn inter_failing_on(&self) -> Option<&CertInfo> {
        let chain = std::iter::once(&self.leaf.ekus).chain(self.inters.iter().map(|i| &i.ekus));
        match policy::decide(Role::InboundClient, EkuMode::On, chain) {
            Err(Refusal {
                at: Position::Intermediate(n),
                ..
            }) => self.inters.get(n),
            _ => None,
        }
    }
    /// A public CA's chain: an intermediate that is serverAuth-only.
    fn public_like(&self) -> bool {
        self.inters
            .iter()
            .any(|i| i.ekus.lists(&Eku::ServerAuth) && !i.ekus.lists(&Eku::ClientAuth))
    }
    fn origin(&self) -> String {
        if self.leaf.is_self_signed {
            "self-signed".into()
        } else if self.public_like() {
            "issued by a public CA".into()
        } else {
            format!("issued by '{}'", self.leaf.issuer)
        }
    }
    fn trust_sentence(&self) -> String {
        match &self.trust {
            Ok(anchor) => format!(
                "Peers must trust '{anchor}' (Condition 3: TLS fails at a peer that does not trust the issuing CA)."
            ),
            Err(why) => format!(
                "This node's own CA list does not lead to it ({why}); peers must trust its issuer '{}' (Condition 3: TLS fails at a peer that does not).",
                self.leaf.issuer
            ),
        }
    }
}

fn view(
    chain: Option<Vec<CertificateDer<'static>>>,
    anchors: Option<&crate::certs::x509::anchors::TrustAnchors>,
    now: UnixTime,
) -> Result<Option<StoreView>, OpError> {
    let Some(chain) = chain else { return Ok(None) };
    let leaf = decode(&chain[0], now)?;
    let inters = chain[1..]
        .iter()
        .map(|c| decode(c, now))
        .collect::<Result<Vec<_>, _>>()?;
    let trust = match anchors {
        None => Err("the trusted CA list is empty".to_string()),
        Some(a) => verify_trust(&chain[0], &chain[1..], a, now).map_err(|e| e.to_string()),
    };
    Ok(Some(StoreView {
        leaf,
        inters,
        trust,
    }))
}

/// Build the report for `root` with the configured inbound `mode` and whether
/// the tunnel listener runs.
pub fn report(
    root: &Path,
    mode: EkuMode,
    tunnel_on: bool,
    now: UnixTime,
) -> Result<Report, OpError> {
    let anchors = load_ca_list(root)?;
    let server = view(
        read_store_chain(root, StoreKind::Server)?,
        anchors.as_ref(),
        now,
    )?;
    let client = view(
        read_store_chain(root, StoreKind::Client)?,
        anchors.as_ref(),
        now,
    )?;
    let ca_inters: Vec<String> = calist::list(root, now)?
        .into_iter()
        .filter(|c| !c.is_self_signed)
        .map(|c| c.subject)
        .collect();
    let same = matches!((&server, &client), (Some(s), Some(c)) if s.leaf.sha256_fingerprint == c.leaf.sha256_fingerprint);
    let mut roles = vec![
        inbound(server.as_ref(), anchors.is_some(), &ca_inters, mode),
        outbound(client.as_ref(), same),
        tunnel(client.as_ref(), tunnel_on),
    ];
    for r in &mut roles {
        r.explanation = r.explanation.trim().to_string();
    }
    let summary = summary(client.as_ref(), server.as_ref(), anchors.is_some(), mode);
    Ok(Report {
        mode,
        summary,
        roles,
    })
}

fn expiry(v: &StoreView, store: StoreKind) -> Option<(Verdict, String)> {
    if v.leaf.days_left < 0 {
        return Some((
            Verdict::Fails,
            format!(
                "The {} certificate expired at {}: every peer rejects it. ",
                store.word(),
                v.leaf.not_after
            ),
        ));
    }
    if v.leaf.days_left < EXPIRY_WARNING_DAYS {
        return Some((
            Verdict::Limited,
            format!(
                "The {} certificate expires in {} days ({}). ",
                store.word(),
                v.leaf.days_left,
                v.leaf.not_after
            ),
        ));
    }
    None
}

fn inbound(
    server: Option<&StoreView>,
    have_cas: bool,
    ca_inters: &[String],
    mode: EkuMode,
) -> RoleReport {
    let mut verdict = Verdict::Ready;
    let mut text = String::new();
    let mut seed = Vec::new();
    let presents = match server {
        None => {
            verdict = Verdict::Fails;
            text.push_str("There is no server certificate: the listener cannot start (reset to the default server certificate or upload one). ");
            "server store: empty".to_string()
        }
        Some(s) => {
            if policy::decide(Role::Server, mode, [&s.leaf.ekus]).is_err() {
                verdict = Verdict::Fails;
                let listed = s.leaf.ekus.listed();
                text.push_str(&format!(
                    "The server certificate lists {} but not serverAuth: peers reject this node as a TLS server. ",
                    if listed.is_empty() { "nothing".to_string() } else { s.leaf.ekus.names(", ") }
                ));
            } else if s.has(&Eku::ServerAuth) && !s.has(&Eku::ClientAuth) {
                text.push_str(&format!(
                    "The server certificate is serverAuth-only ({}): that is all the TLS server role needs (Condition 2.1). ",
                    s.origin()
                ));
                seed.push("Condition 2.1");
            }
            if let Some((v, t)) = expiry(s, StoreKind::Server) {
                verdict = worst(verdict, v);
                text.push_str(&t);
            }
            text.push_str(&s.trust_sentence());
            text.push(' ');
            s.label(StoreKind::Server)
        }
    };
    if !have_cas {
        verdict = Verdict::Fails;
        text.push_str("The trusted CA list is empty: no peer's client certificate can be verified, so every inbound mutual TLS handshake fails. ");
    }
    match mode {
        EkuMode::On => {
            verdict = worst(verdict, Verdict::Limited);
            text.push_str("EKU checking Mode is On: a peer's client certificate (leaf and intermediates) must list clientAuth; a peer presenting a serverAuth-only certificate from a public CA is rejected (Test case 1: traversal zone Failed). Set Mode Off to accept such peers (Test case 2), or give them a private-CA certificate with clientAuth (Condition 2.1). ");
            seed.push("Test case 1");
            seed.push("Condition 2.1");
        }
        EkuMode::Off => {
            text.push_str("EKU checking Mode is Off: peers whose certificates list clientAuth or serverAuth are accepted, so serverAuth-only public certificates work (Test case 2: traversal zone Active); the chain is still verified against the trusted CA list, and the tunnel still requires clientAuth. ");
            seed.push("Test case 2");
        }
    }
    if !ca_inters.is_empty() {
        text.push_str(&format!(
            "The trusted CA list holds {} certificate(s) that are not self-signed (e.g. '{}'): as trust anchors their own EKU is not checked here (webpki's rule), while openssl verify -purpose sslclient checks them and wants a self-signed root, so OpenSSL-based peers can decide differently. ",
            ca_inters.len(),
            ca_inters[0]
        ));
    }
    seed.dedup();
    RoleReport {
        role: "Inbound mutual TLS (this node is the TLS server; peers are checked with the EKU checking mode)".into(),
        presents,
        verdict,
        explanation: text,
        seed: seed.join(", "),
    }
}

fn outbound(client: Option<&StoreView>, same: bool) -> RoleReport {
    let role = "Outbound mutual TLS (this node is the TLS client: traversal client and neighbour zones, cloud services)".to_string();
    let Some(c) = client else {
        return RoleReport {
            role,
            presents: "client store: empty".into(),
            verdict: Verdict::Fails,
            explanation: "There is no client certificate: peers that request one reject this node."
                .into(),
            seed: String::new(),
        };
    };
    let mut text = String::new();
    let mut seed = Vec::new();
    let mut verdict;
    if !c.leaf_passes(EkuMode::Off) {
        verdict = Verdict::Fails;
        text.push_str(&format!(
            "The client certificate lists neither clientAuth nor serverAuth ({}): every peer rejects this node as a TLS client, whatever its EKU checking mode. ",
            eku_text(&c.leaf)
        ));
    } else if !c.leaf_passes(EkuMode::On) {
        verdict = Verdict::Limited;
        text.push_str(&format!(
            "The client certificate is serverAuth-only ({}): peers with EKU checking On will reject this node as a TLS client (Test case 1: traversal zone Failed); peers with checking Off accept it (Test case 2: traversal zone Active). ",
            c.origin()
        ));
        seed.extend(["Test case 1", "Test case 2"]);
        if same {
            text.push_str("The client store holds the same certificate as the server store (the upgrade copy, or an upload with AlsoAsClient): this works with a peer that checks Off, but a remote that checks clientAuth fails unless it turns checking Off (Condition 4). Upload a private-CA certificate with clientAuth into the client store to fix it (Condition 2.1). ");
            seed.push("Condition 4");
        } else {
            text.push_str("Upload a certificate with clientAuth from a private CA into the client store (Condition 2.1). ");
        }
    } else if let Some(i) = c.inter_failing_on() {
        verdict = Verdict::Limited;
        text.push_str(&format!(
            "The client certificate lists clientAuth, but intermediate '{}' lists {} without clientAuth: peers with EKU checking On reject the chain (as openssl verify -purpose sslclient does), unless they list that intermediate itself as a trust anchor — xsh/webpki then skip its EKU, OpenSSL does not. Peers with checking Off accept it. ",
            i.subject,
            eku_text(i)
        ));
        seed.extend(["Test case 1", "Test case 2"]);
    } else {
        verdict = Verdict::Ready;
        text.push_str(&format!(
            "The client certificate allows clientAuth ({}, {}): peers accept this node as a TLS client in either EKU checking mode (Condition 2.1). ",
            eku_text(&c.leaf),
            c.origin()
        ));
        seed.extend(["Condition 2.1", "Condition 3"]);
    }
    if let Some((v, t)) = expiry(c, StoreKind::Client) {
        verdict = worst(verdict, v);
        text.push_str(&t);
    }
    text.push_str(&c.trust_sentence());
    RoleReport {
        role,
        presents: c.label(StoreKind::Client),
        verdict,
        explanation: text,
        seed: seed.join(", "),
    }
}

fn tunnel(client: Option<&StoreView>, tunnel_on: bool) -> RoleReport {
    let role = "Tunnel (port 2222; always requires clientAuth, whatever the EKU checking mode)"
        .to_string();
    let mut text = String::new();
    let (verdict, presents, seed) = match client {
        None => (
            Verdict::Fails,
            "client store: empty".to_string(),
            String::new(),
        ),
        Some(c) => {
            let ok_leaf = c.leaf_passes(EkuMode::On);
            let inter = c.inter_failing_on();
            if ok_leaf && inter.is_none() && c.leaf.days_left >= 0 {
                text.push_str("Outbound tunnels will be accepted: the client certificate chain satisfies the clientAuth rule (Condition 2.1: tunnel Active). ");
                (
                    Verdict::Ready,
                    c.label(StoreKind::Client),
                    "Condition 2.1".to_string(),
                )
            } else {
                let why = if c.leaf.days_left < 0 {
                    "the client certificate has expired".to_string()
                } else if !ok_leaf {
                    format!(
                        "the client certificate lacks clientAuth ({})",
                        eku_text(&c.leaf)
                    )
                } else {
                    format!(
                        "intermediate '{}' lacks clientAuth ({})",
                        inter.map(|i| i.subject.as_str()).unwrap_or_default(),
                        inter.map(eku_text).unwrap_or_default()
                    )
                };
                text.push_str(&format!(
                    "Tunnels will fail: {why}, and the tunnel always requires clientAuth, even at a peer whose EKU checking Mode is Off (Test case 1: Failed; Test case 2: Failed, \"Permission denied\"). "
                ));
                (
                    Verdict::Fails,
                    c.label(StoreKind::Client),
                    "Test case 1, Test case 2".to_string(),
                )
            }
        }
    };
    if tunnel_on {
        text.push_str(
            "Inbound tunnels accept only peers whose client certificate chain lists clientAuth.",
        );
    } else {
        text.push_str("The inbound tunnel listener is Off (Tunnel Mode).");
    }
    RoleReport {
        role,
        presents,
        verdict,
        explanation: text,
        seed,
    }
}

fn summary(
    client: Option<&StoreView>,
    server: Option<&StoreView>,
    have_cas: bool,
    mode: EkuMode,
) -> String {
    let Some(c) = client else {
        return "no client certificate: outbound mutual TLS and tunnels will fail".into();
    };
    let mut s = if !c.leaf_passes(EkuMode::Off) {
        "client certificate lists neither clientAuth nor serverAuth: every peer will reject this node as a TLS client; tunnels will fail".to_string()
    } else if !c.leaf_passes(EkuMode::On) {
        format!(
            "client certificate is serverAuth-only ({}): peers with EKU checking On will reject this node as a TLS client; tunnels will fail",
            c.origin()
        )
    } else if let Some(i) = c.inter_failing_on() {
        format!(
            "client certificate chain has intermediate '{}' without clientAuth: peers with EKU checking On will reject this node as a TLS client; tunnels will fail",
            i.subject
        )
    } else if c.leaf.ekus == Ekus::Absent {
        "client certificate has no EKU extension (any purpose, clientAuth included): outbound mutual TLS and tunnels work with peers that trust its issuer".to_string()
    } else {
        "client certificate lists clientAuth: outbound mutual TLS and tunnels work with peers that trust its issuer".to_string()
    };
    if c.leaf.days_left < 0 {
        s = "client certificate has expired: outbound mutual TLS and tunnels will fail".into();
    }
    if server.is_none_or(|v| v.leaf.days_left < 0) {
        s.push_str("; the server certificate is missing or expired");
    }
    if !have_cas {
        s.push_str("; the trusted CA list is empty, so inbound mutual TLS will fail");
    } else if mode == EkuMode::On {
        s.push_str("; inbound peers must present clientAuth (EKU checking Mode On)");
    } else {
        s.push_str("; inbound peers with serverAuth-only certificates are accepted (EKU checking Mode Off)");
    }
    s
}

/// A client leaf with `ekus` satisfies a peer checking with `mode` (the policy decides).
fn leaf_passes(ekus: &Ekus, mode: EkuMode) -> bool {
    policy::decide(Role::InboundClient, mode, [ekus]).is_ok()
}

/// One cluster peer's client certificate, judged from what its published record carries (the
/// leaf's EKU extension and notAfter; the record holds no chain, so intermediates are not seen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerClient {
    /// The leaf satisfies the clientAuth rule (EKU checking On, and every tunnel).
    pub client_auth: bool,
    /// Whole days until notAfter; `None` when the record does not give it.
    pub days_left: Option<i64>,
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub explanation: String,
}

/// Judges a peer's client leaf as the outbound role of [`report`] does.
pub fn peer_client(ekus: &Ekus, not_after: &str, now: UnixTime) -> PeerClient {
    let days_left =
        time::OffsetDateTime::parse(not_after, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| (t.unix_timestamp() - now.as_secs() as i64).div_euclid(86_400));
    let client_auth = leaf_passes(ekus, EkuMode::On);
    let (mut verdict, mut text) = if !leaf_passes(ekus, EkuMode::Off) {
        (
            Verdict::Fails,
            format!("its client certificate lists neither clientAuth nor serverAuth ({}): every partner rejects it as a TLS client", ekus.text()),
        )
    } else if !client_auth {
        (
            Verdict::Limited,
            format!("its client certificate is serverAuth-only ({}): not ready for the clientAuth sunset; partners with EKU checking On and every tunnel reject it (Test case 1), partners with checking Off accept it (Test case 2)", ekus.text()),
        )
    } else {
        (
            Verdict::Ready,
            format!("its client certificate allows clientAuth ({}): partners accept it as a TLS client in either EKU checking mode (Condition 2.1)", ekus.text()),
        )
    };
    match days_left {
        Some(d) if d < 0 => {
            verdict = Verdict::Fails;
            text.push_str(&format!("; it expired at {not_after}"));
        }
        Some(d) if d < EXPIRY_WARNING_DAYS => {
            verdict = worst(verdict, Verdict::Limited);
            text.push_str(&format!("; it expires in {d} days ({not_after})"));
        }
        _ => {}
    }
    PeerClient {
        client_auth,
        days_left,
        verdict,
        explanation: text,
    }
}

fn worst(a: Verdict, b: Verdict) -> Verdict {
    use Verdict::*;
    match (a, b) {
        (Fails, _) | (_, Fails) => Fails,
        (Limited, _) | (_, Limited) => Limited,
        _ => Ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::pki::{LeafEku, LeafSpec, TestCa};
    use crate::certs::store::{certs_dir, CA_LIST, CLIENT_CERT, SERVER_CERT};

    fn node_with_client(eku: LeafEku) -> (tempfile::TempDir, Report) {
        let root = tempfile::tempdir().unwrap();
        let dir = certs_dir(root.path());
        std::fs::create_dir_all(&dir).unwrap();
        let ca = TestCa::private_ca1().unwrap();
        let server = ca.issue(&LeafSpec::new("srv", LeafEku::Both)).unwrap();
        let client = ca.issue(&LeafSpec::new("cli", eku)).unwrap();
        std::fs::write(dir.join(CA_LIST), ca.root_pem()).unwrap();
        std::fs::write(dir.join(SERVER_CERT), &server.chain_pem).unwrap();
        std::fs::write(dir.join(CLIENT_CERT), &client.chain_pem).unwrap();
        let r = report(root.path(), EkuMode::On, true, UnixTime::now()).unwrap();
        (root, r)
    }

    /// No EKU extension = any purpose: outbound and tunnel are Ready, and nothing claims the
    /// certificate "lists" clientAuth.
    #[test]
    fn client_certificate_without_eku_is_ready_everywhere() {
        let (_root, r) = node_with_client(LeafEku::None);
        assert_eq!(r.roles[1].verdict, Verdict::Ready, "{:?}", r.roles[1]);
        assert_eq!(r.roles[2].verdict, Verdict::Ready, "{:?}", r.roles[2]);
        assert!(
            r.roles[1].explanation.contains("any purpose"),
            "{:?}",
            r.roles[1]
        );
        assert!(
            r.summary
                .starts_with("client certificate has no EKU extension"),
            "{}",
            r.summary
        );
        let (_root, r) = node_with_client(LeafEku::ServerAuth);
        assert_eq!(r.roles[1].verdict, Verdict::Limited, "{:?}", r.roles[1]);
        assert_eq!(r.roles[2].verdict, Verdict::Fails, "{:?}", r.roles[2]);
    }

    /// A peer's client leaf as its record describes it: serverAuth-only is not ready, clientAuth
    /// is, an absent extension is, and the days left come from notAfter.
    #[test]
    fn peer_client_leaves_are_judged_like_the_outbound_role() {
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
        let later = "2027-01-15T08:00:00Z"; // 1_800_000_000 is 2027-01-15T08:00:00Z
        let far = "2030-01-01T00:00:00Z";
        let sa = Ekus::Listed(vec![Eku::ServerAuth]);
        let ca = Ekus::Listed(vec![Eku::ServerAuth, Eku::ClientAuth]);
        let p = peer_client(&sa, far, now);
        assert_eq!(
            (p.verdict, p.client_auth),
            (Verdict::Limited, false),
            "{p:?}"
        );
        assert!(p.explanation.contains("serverAuth-only"), "{p:?}");
        let p = peer_client(&ca, far, now);
        assert_eq!((p.verdict, p.client_auth), (Verdict::Ready, true), "{p:?}");
        assert_eq!(peer_client(&Ekus::Absent, far, now).verdict, Verdict::Ready);
        assert_eq!(
            peer_client(&Ekus::Listed(vec![]), far, now).verdict,
            Verdict::Fails
        );
        let soon = peer_client(&ca, later, now);
        assert_eq!(soon.days_left, Some(0), "{soon:?}");
        assert_eq!(soon.verdict, Verdict::Limited, "{soon:?}");
        let gone = peer_client(&ca, "2020-01-01T00:00:00Z", now);
        assert_eq!(gone.verdict, Verdict::Fails, "{gone:?}");
        assert_eq!(peer_client(&ca, "", now).days_left, None);
    }
}
