//! The peers of a cluster as this agent sees them: its own record (published under a lease at
//! `{prefix}/peers/<name>`), the others' records from the watch, and the judgement of each
//! (Active, Lagging, Stale, Unreachable) written to `ROOT/status/cluster.json` for `xsh`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::status::{ClusterView, PeerRecord};

use super::super::Shared;

/// This agent's own record, from what it runs now.
pub fn own_record(shared: &Shared, peer: &str, applied: u64, stale: bool) -> PeerRecord {
    let g = |m: &std::sync::Mutex<String>| m.lock().map(|s| s.clone()).unwrap_or_default();
    let state = |s: String| if s.is_empty() { "Off".to_string() } else { s };
    let sip = state(g(&shared.report.sip.state));
    let tunnel = state(g(&shared.report.tunnel.state));
    let address = if sip == "Active" {
        g(&shared.report.sip.address)
    } else {
        String::new()
    };
    let last_reload = shared
        .report
        .agent
        .lock()
        .map(|a| a.last_reload_time.clone())
        .unwrap_or_default();
    // The certificates of the generation in force, not the files (which may be newer and bad).
    let gen = shared.current.load();
    let has_client = !gen.client_serial.is_empty();
    PeerRecord {
        name: peer.to_string(),
        address,
        applied_generation: applied,
        last_reload,
        listeners: format!("SIP {sip}, Tunnel {tunnel}"),
        stale,
        status: String::new(),
        server_serial: gen.server_serial.clone(),
        client_serial: gen.client_serial.clone(),
        client_ekus: has_client.then(|| gen.client_ekus.clone()),
        client_not_after: gen.client_not_after.clone(),
    }
}

/// Records by peer name; `None`: the record went away (lease expired or revoked).
#[derive(Default)]
pub struct Peers {
    pub by_name: BTreeMap<String, Option<PeerRecord>>,
}

impl Peers {
    /// A put under `{prefix}/peers/`; a record that is not JSON is shown as such, not dropped.
    pub fn put(&mut self, name: &str, value: &[u8]) {
        let rec = serde_json::from_slice::<PeerRecord>(value).unwrap_or_else(|e| PeerRecord {
            name: name.to_string(),
            listeners: format!("unreadable record: {e}"),
            ..PeerRecord::default()
        });
        self.by_name.insert(name.to_string(), Some(rec));
    }

    pub fn delete(&mut self, name: &str) {
        self.by_name.insert(name.to_string(), None);
    }

    /// Every peer judged against the cluster's generation. This node's own entry comes from
    /// `own` (what it runs now), never from its possibly older record in etcd.
    pub fn judged(&self, own: &PeerRecord, generation: u64) -> Vec<PeerRecord> {
        let mut all: BTreeMap<&str, PeerRecord> = BTreeMap::new();
        for (name, rec) in &self.by_name {
            let r = match rec {
                Some(r) => {
                    let mut r = r.clone();
                    r.status = status_of(&r, generation).into();
                    r
                }
                None => PeerRecord {
                    name: name.clone(),
                    status: "Unreachable".into(),
                    ..PeerRecord::default()
                },
            };
            all.insert(name, r);
        }
        let mut me = own.clone();
        me.status = status_of(&me, generation).into();
        all.insert(&own.name, me);
        all.into_values().collect()
    }
}

fn status_of(r: &PeerRecord, generation: u64) -> &'static str {
    if r.stale {
        "Stale"
    } else if r.applied_generation < generation {
        "Lagging"
    } else {
        "Active"
    }
}

/// Writes the view for `xsh` (off the runtime's workers: the write fsyncs).
pub async fn write_view(shared: &Arc<Shared>, view: ClusterView) {
    let path = crate::status::cluster_view_path(&shared.root);
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(text) = serde_json::to_string_pretty(&view) {
            let _ = crate::store::write_file_atomic(&path, text.as_bytes(), 0o644);
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, applied: u64, stale: bool) -> PeerRecord {
        PeerRecord {
            name: name.into(),
            applied_generation: applied,
            stale,
            ..PeerRecord::default()
        }
    }

    #[test]
    fn peers_are_judged_against_the_cluster_generation() {
        let mut p = Peers::default();
        p.put(
            "b",
            serde_json::to_string(&rec("b", 7, false))
                .unwrap()
                .as_bytes(),
        );
        p.put(
            "c",
            serde_json::to_string(&rec("c", 9, true))
                .unwrap()
                .as_bytes(),
        );
        p.put("d", b"not json");
        p.put("e", b"{}");
        p.delete("e");
        // Our own old record in etcd is overridden by what we run now.
        p.put(
            "a",
            serde_json::to_string(&rec("a", 1, false))
                .unwrap()
                .as_bytes(),
        );
        let v = p.judged(&rec("a", 9, false), 9);
        let s: Vec<(&str, &str)> = v
            .iter()
            .map(|r| (r.name.as_str(), r.status.as_str()))
            .collect();
        assert_eq!(
            s,
            [
                ("a", "Active"),
                ("b", "Lagging"),
                ("c", "Stale"),
                ("d", "Lagging"),
                ("e", "Unreachable")
            ]
        );
        assert!(v[3].listeners.starts_with("unreadable record"));
    }

    /// A record from an agent that published no certificate fields still parses, and the new
    /// fields round-trip.
    #[test]
    fn older_records_parse_and_new_fields_round_trip() {
        let old = r#"{"name":"b","address":"127.0.0.1:5061","applied_generation":3,"last_reload":"","listeners":"SIP Active, Tunnel Off","stale":false}"#;
        let r: PeerRecord = serde_json::from_str(old).unwrap();
        assert_eq!((r.name.as_str(), r.client_ekus.as_ref()), ("b", None));
        let mut n = rec("c", 4, false);
        n.server_serial = "01:02".into();
        n.client_serial = "03:04".into();
        n.client_ekus = Some(crate::certs::Ekus::Listed(vec![
            crate::certs::Eku::ServerAuth,
        ]));
        n.client_not_after = "2030-01-01T00:00:00Z".into();
        let back: PeerRecord = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
    }
}
