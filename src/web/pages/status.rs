//! Status: the listeners with their counters and last rejection, the zones with their status
//! and reason, and the recent handshake log filtered by peer and decision. Read from the same
//! status tree `xStatus` shows (and the log file the agent appends to); nothing here writes.

use maud::{html, Markup};

use super::certs::instances;
use super::layout::{self, field, View};
use super::run::{self, descend};
use crate::engine::{Context, Engine, Item};

const LISTENER_COUNTERS: &[&str] = &[
    "Accepted",
    "Rejected",
    "RejectedEku",
    "RejectedChain",
    "RejectedTimeout",
    "RejectedOther",
];

pub async fn overview(engine: &Engine, ctx: &Context, v: &View<'_>) -> Markup {
    let sip = run::status(engine, ctx, "SIP TLS Listener").await;
    let tunnel = run::status(engine, ctx, "Tunnel Listener").await;
    let agent = run::status(engine, ctx, "Agent").await;
    let zones = run::status(engine, ctx, "Zones").await;
    let cluster = run::status(engine, ctx, "Cluster").await;
    let cluster = descend(&cluster, &["Cluster"]);
    let sip = descend(&sip, &["SIP", "TLS", "Listener"]);
    let tunnel = descend(&tunnel, &["Tunnel", "Listener"]);
    let agent = descend(&agent, &["Agent"]);
    let zones = descend(&zones, &["Zones"]);
    let body = html! {
        section aria-labelledby="agent" {
            h2 id="agent" { "Agent" }
            @if agent.is_empty() { p { "No agent status yet." } } @else { (layout::items(agent)) }
        }
        section aria-labelledby="listeners" {
            h2 id="listeners" { "Listeners" }
            table class="list" {
                thead { tr {
                    th scope="col" { "Listener" } th scope="col" { "Status" } th scope="col" { "Address" }
                    th scope="col" { "EKU mode" }
                    @for c in LISTENER_COUNTERS { th scope="col" { (c) } }
                } }
                tbody {
                    (listener_row("SIP TLS", sip))
                    (listener_row("Tunnel", tunnel))
                }
            }
            @for (name, l) in [("SIP TLS", sip), ("Tunnel", tunnel)] {
                div class="last" {
                    h3 { (name) " listener" }
                    table class="kv" { tbody {
                        tr { th scope="row" { "Last accepted" } td { (or_none(field(l, "LastAccepted"))) } }
                        tr { th scope="row" { "Last rejection" } td class="rejection" { (or_none(field(l, "LastRejection"))) } }
                        tr { th scope="row" { "Presents (server store serial)" } td { (field(l, "ServerSerial").unwrap_or("")) } }
                    } }
                }
            }
        }
        section aria-labelledby="zones" {
            h2 id="zones" { "Zones" }
            @let zs = instances(zones, "Zone");
            @if zs.is_empty() { p { "No zones are configured." } } @else {
                table class="list" {
                    thead { tr {
                        th scope="col" { "Zone" } th scope="col" { "Name" } th scope="col" { "Type" }
                        th scope="col" { "Status" } th scope="col" { "Reason" }
                    } }
                    tbody {
                        @for (n, z) in &zs {
                            @let st = field(z, "Status").unwrap_or("");
                            tr {
                                td { (n) }
                                td { (field(z, "Name").unwrap_or("")) }
                                td { (field(z, "Type").unwrap_or("")) }
                                td { @if !st.is_empty() { span class={ "state " (st.to_ascii_lowercase()) } { (st) } } }
                                td { (field(z, "Reason").unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        (cluster_peers(cluster))
    };
    layout::page(v, "Status", body)
}

/// The style of a cluster or peer state: lagging and stale peers are flagged as warnings.
fn peer_class(state: &str) -> &'static str {
    match state {
        "Active" | "Synced" => "active",
        "Lagging" | "Stale" | "Connecting" => "warning",
        _ => "failed",
    }
}

/// Every peer of the cluster as `xStatus Cluster Peer` shows it; nothing on a single node (whose
/// `Cluster State` is `Disabled`).
fn cluster_peers(cluster: &[Item]) -> Markup {
    let state = field(cluster, "State").unwrap_or("");
    if state.is_empty() || state == "Disabled" {
        return html! {};
    }
    let peers = instances(cluster, "Peer");
    html! {
        section aria-labelledby="cluster-peers" {
            h2 id="cluster-peers" { "Cluster peers" }
            table class="kv" { tbody {
                tr { th scope="row" { "Cluster" } td { (field(cluster, "Name").unwrap_or("")) } }
                tr { th scope="row" { "This peer" } td { (field(cluster, "LocalPeer").unwrap_or("")) } }
                tr { th scope="row" { "State" } td { span class={ "state " (peer_class(state)) } { (state) } } }
                tr { th scope="row" { "Reason" } td { (or_none(field(cluster, "Reason"))) } }
                tr { th scope="row" { "Cluster generation" } td { (field(cluster, "Generation").unwrap_or("")) } }
            } }
            @if peers.is_empty() { p { "No peer has been seen yet." } } @else {
                table class="list" {
                    thead { tr {
                        th scope="col" { "Peer" } th scope="col" { "Name" } th scope="col" { "Address" }
                        th scope="col" { "Applied generation" } th scope="col" { "Status" }
                        th scope="col" { "Listeners" } th scope="col" { "Last reload" }
                    } }
                    tbody {
                        @for (n, p) in &peers {
                            @let st = field(p, "Status").unwrap_or("");
                            tr {
                                td { (n) }
                                th scope="row" { (field(p, "Name").unwrap_or("")) }
                                td { (field(p, "Address").unwrap_or("")) }
                                td class="num" { (field(p, "AppliedGeneration").unwrap_or("")) }
                                td { @if !st.is_empty() { span class={ "state " (peer_class(st)) } { (st) } } }
                                td { (field(p, "Listeners").unwrap_or("")) }
                                td { (field(p, "LastReload").unwrap_or("")) }
                            }
                        }
                    }
                }
                p { "Each peer's own client certificate verdict is in the "
                    a href="/maintenance/security/readiness" { "EKU readiness report" } "." }
            }
        }
    }
}

fn or_none(v: Option<&str>) -> &str {
    v.filter(|s| !s.is_empty()).unwrap_or("none")
}

fn listener_row(name: &str, l: &[Item]) -> Markup {
    let st = field(l, "Status").unwrap_or("unknown");
    html! {
        tr {
            th scope="row" { (name) }
            td { span class={ "state " (st.to_ascii_lowercase()) } { (st) } }
            td { (field(l, "Address").unwrap_or("")) }
            td { (field(l, "Mode").unwrap_or("")) }
            @for c in LISTENER_COUNTERS { td class="num" { (field(l, c).unwrap_or("0")) } }
        }
    }
}

/// One line of `status/handshakes.log`, the fields a page shows.
struct Handshake {
    time: String,
    listener: String,
    peer: String,
    decision: String,
    mode: String,
    presented: String,
    sent: String,
    reason: String,
}

impl Handshake {
    fn parse(line: &str) -> Option<Handshake> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let sent = match v.get("sent_server_serial") {
            Some(_) => s("sent_server_serial"),
            None => s("sent_client_serial"),
        };
        Some(Handshake {
            time: s("time"),
            listener: s("listener"),
            peer: match v.get("peer") {
                Some(serde_json::Value::String(p)) => p.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            },
            decision: s("decision"),
            mode: s("mode"),
            presented: s("presented_by_peer"),
            sent,
            reason: s("reason"),
        })
    }
}

/// How many lines of the log a page shows at most (the newest).
const SHOWN: usize = 200;

pub fn handshakes(root: &std::path::Path, v: &View<'_>, peer: &str, decision: &str) -> Markup {
    let path = root.join("status").join("handshakes.log");
    let read = crate::bounded::read_tail(&path, crate::bounded::FileKind::Log, 1024 * 1024);
    let (lines, problem) = match read {
        Ok(b) => (String::from_utf8_lossy(&b).into_owned(), None),
        Err(e) if e.is_missing() => (String::new(), None),
        Err(e) => (String::new(), Some(e.to_string())),
    };
    let rows: Vec<Handshake> = lines
        .lines()
        .rev()
        .filter_map(Handshake::parse)
        .filter(|h| peer.is_empty() || h.peer.contains(peer))
        .filter(|h| decision.is_empty() || h.decision.eq_ignore_ascii_case(decision))
        .take(SHOWN)
        .collect();
    let body = html! {
        form method="get" action="/status/handshakes" class="filters" {
            div class="field" {
                label for="f-peer" { "Peer contains" }
                input id="f-peer" type="text" name="peer" value=(peer);
            }
            div class="field" {
                label for="f-decision" { "Decision" }
                select id="f-decision" name="decision" {
                    @for (val, text) in [("", "Any"), ("accepted", "Accepted"), ("rejected", "Rejected"), ("refused", "Refused (probes)")] {
                        @if val == decision { option value=(val) selected { (text) } }
                        @else { option value=(val) { (text) } }
                    }
                }
            }
            div { button type="submit" { "Filter" } }
        }
        @if let Some(p) = &problem { div class="banner error" role="alert" { p { (p) } } }
        p { "Newest first; at most " (SHOWN) " lines." }
        @if rows.is_empty() { p class="empty" { "No handshakes match." } } @else {
            table class="list log" {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Listener" } th scope="col" { "Peer" }
                    th scope="col" { "Decision" } th scope="col" { "Mode" } th scope="col" { "Presented by peer" }
                    th scope="col" { "Sent serial" } th scope="col" { "Reason" }
                } }
                tbody {
                    @for h in &rows {
                        tr {
                            td { (h.time) } td { (h.listener) } td { (h.peer) }
                            td { @if !h.decision.is_empty() { span class={ "state " (h.decision) } { (h.decision) } } }
                            td { (h.mode) } td { (h.presented) } td { (h.sent) } td { (h.reason) }
                        }
                    }
                }
            }
        }
    };
    layout::page(v, "Handshake log", body)
}
