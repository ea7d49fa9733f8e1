//! The cluster part of the EKU readiness report: every peer of `ROOT/status/cluster.json` (as
//! this node's agent last judged it) with its own client certificate's verdict and its server
//! certificate's serial. Each peer keeps its own certificates, so each is judged from the record
//! it publishes; nothing here reads another peer's files. Outside a cluster it adds nothing.

use rustls_pki_types::UnixTime;

use crate::certs::readiness::peer_client;
use crate::engine::Item;
use crate::status::PeerRecord;

/// The `Peer [n]` items (and a `Cluster` note) for the report; empty outside a cluster.
pub fn fields(root: &std::path::Path, now: UnixTime) -> Vec<Item> {
    let Ok(Some(_)) = crate::store::cluster::Bootstrap::load(root) else {
        return Vec::new();
    };
    let Some(view) = crate::status::read_cluster_view(root) else {
        return vec![Item::leaf(
            "Cluster",
            "this node is in a cluster, but its agent has not written the cluster view yet (ROOT/status/cluster.json): start xagent to see every peer",
        )];
    };
    let mut f = vec![Item::leaf(
        "Cluster",
        format!(
            "{} peer(s) as this node's agent last saw them (cluster generation {}, state {}); each peer presents its own certificates",
            view.peers.len(),
            view.generation,
            if view.state.is_empty() { "Connecting" } else { &view.state }
        ),
    )];
    for (n, p) in view.peers.iter().enumerate() {
        f.push(Item::instance(
            "Peer",
            n as u32 + 1,
            peer(p, view.generation, now),
        ));
    }
    f
}

fn peer(p: &PeerRecord, generation: u64, now: UnixTime) -> Vec<Item> {
    let status = match p.status.as_str() {
        "Lagging" => format!(
            "Lagging (applies generation {}, the cluster's is {generation})",
            p.applied_generation
        ),
        s => s.to_string(),
    };
    let mut f = vec![
        Item::leaf("Name", p.name.clone()),
        Item::leaf("Address", p.address.clone()),
        Item::leaf("AppliedGeneration", p.applied_generation.to_string()),
        Item::leaf("Status", status),
        Item::leaf("ServerSerial", p.server_serial.clone()),
        Item::leaf("ClientSerial", p.client_serial.clone()),
    ];
    match &p.client_ekus {
        Some(ekus) => {
            let c = peer_client(ekus, &p.client_not_after, now);
            f.push(Item::leaf("ClientEku", ekus.text()));
            f.push(Item::leaf(
                "ClientAuth",
                if c.client_auth { "Yes" } else { "No" },
            ));
            f.push(Item::leaf(
                "ClientDaysLeft",
                c.days_left.map(|d| d.to_string()).unwrap_or_default(),
            ));
            f.push(Item::leaf("ClientResult", c.verdict.text()));
            f.push(Item::leaf("ClientExplanation", c.explanation));
        }
        None => {
            let why = if p.status == "Unreachable" {
                "the peer's record went away (its lease expired): its certificates are not known"
            } else {
                "the peer's record does not describe its client certificate (no client certificate, or an agent that does not publish it)"
            };
            f.push(Item::leaf("ClientResult", "Unknown"));
            f.push(Item::leaf("ClientExplanation", why));
        }
    }
    f
}
