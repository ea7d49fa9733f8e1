//! Status values: what `xStatus` shows, gathered from this process, the agent's snapshot file
//! under `ROOT/status/` and the certificate stores. The agent writes the snapshot; the shell only
//! reads it (files are the interface), and says plainly when no agent runs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::parse::Key;
use crate::schema::{schema, Lookup, NodeId, Tree, PRODUCT, VERSION};
use crate::store::Config;

/// The agent's published state, `ROOT/status/agent.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgentSnapshot {
    pub pid: u32,
    pub generation: u64,
    pub last_reload_time: String,
    pub last_reload_result: String,
    /// Extra status leaves by canonical path words (e.g. `SIP TLS Listener Accepted`, or
    /// `Zones Zone 1 Status`), so the agent can publish any status leaf of the schema.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// Path of the agent snapshot.
pub fn snapshot_path(root: &Path) -> std::path::PathBuf {
    root.join("status").join("agent.json")
}

/// Reads the snapshot if an agent that wrote it is still alive.
pub fn live_agent(root: &Path) -> Option<AgentSnapshot> {
    let text =
        crate::bounded::read(&snapshot_path(root), crate::bounded::FileKind::Snapshot).ok()?;
    let snap: AgentSnapshot = serde_json::from_slice(&text).ok()?;
    let pid = i32::try_from(snap.pid).ok()?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
    Some(snap)
}

/// Finds the key for canonical path words with instance numbers (`Zones Zone 3 Status`).
pub fn key_for(tree: &Tree, words: &str) -> Option<Key> {
    let mut parent = None;
    let mut inst = Vec::new();
    let mut it = words.split_whitespace().peekable();
    while let Some(w) = it.next() {
        let id = match tree.lookup(parent, w) {
            Lookup::Found(id) => id,
            _ => return None,
        };
        if tree.nodes[id].instances.is_some() {
            inst.push(it.next()?.parse().ok()?);
        }
        parent = Some(id);
    }
    let leaf = parent?;
    tree.nodes[leaf].leaf.as_ref()?;
    Some(Key { leaf, inst })
}

/// Host name: `SystemUnit Name` when set, else the system's.
pub fn host_name(cfg: &Config) -> String {
    let name = cfg.system_unit().name();
    if !name.is_empty() {
        return name.to_string();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Collects every status value this shell can know now.
pub fn collect(root: &Path, cfg: &Config) -> BTreeMap<Key, String> {
    collect_at(root, cfg, None)
}

/// Collects the status values under the status root node `only` (all with `None`): a read of
/// `SystemUnit` opens neither the agent's snapshot (large with 1,000 zones) nor the certificate
/// stores, which hold nothing under it.
pub fn collect_at(root: &Path, cfg: &Config, only: Option<NodeId>) -> BTreeMap<Key, String> {
    let tree = &schema().status;
    let only = only.map(|id| tree.nodes[id].name.as_str());
    let wants = |name: &str| only.is_none_or(|o| o == name);
    let mut m = BTreeMap::new();
    let mut put = |words: &str, v: String| {
        if let Some(k) = key_for(tree, words) {
            m.insert(k, v);
        }
    };
    put("SystemUnit Product", PRODUCT.into());
    put("SystemUnit Software Version", VERSION.into());
    put("SystemUnit Name", host_name(cfg));
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .map(|f| (f as u64).to_string())
        .unwrap_or_else(|| "0".into());
    put("SystemUnit Uptime", uptime);
    put("SystemUnit Root", root.display().to_string());
    put(
        "SystemUnit Configuration Generation",
        cfg.generation.to_string(),
    );
    // The agent publishes leaves of any root but these two, which are this process's and the
    // certificate stores'.
    let agent_publishes = only.is_none_or(|o| o != "SystemUnit" && o != "Security");
    let agent = agent_publishes.then(|| live_agent(root)).flatten();
    if wants("Cluster") {
        for (w, v) in cluster_values(root, agent.is_some()) {
            put(&w, v);
        }
    }
    match agent {
        Some(a) => {
            put("Agent Running", "True".into());
            put("Agent Pid", a.pid.to_string());
            put("Agent Generation", a.generation.to_string());
            put("Agent LastReload Time", a.last_reload_time.clone());
            put("Agent LastReload Result", a.last_reload_result.clone());
            for (w, v) in &a.values {
                put(w, v.clone());
            }
        }
        None if agent_publishes => {
            put("Agent Running", "False".into());
            put(
                "Agent LastReload Result",
                "no agent is running on this root (start it with: xagent --root ROOT)".into(),
            );
        }
        None => {}
    }
    if wants("Security") {
        for (w, v) in crate::certs_status::collect(root) {
            put(&w, v);
        }
        for (w, v) in crate::probe::record::status_values(root) {
            put(&w, v);
        }
    }
    if wants("Administrator") {
        for (w, v) in crate::accounts::status_values(root) {
            put(&w, v);
        }
    }
    m
}

/// One peer as the agent last saw it under `{prefix}/peers/<name>` (the JSON every agent
/// publishes under its lease), with the state this node judges it in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerRecord {
    pub name: String,
    /// The SIP TLS listener's bound address (empty when it is not listening).
    pub address: String,
    /// The cluster configuration generation the peer's agent runs.
    pub applied_generation: u64,
    pub last_reload: String,
    /// Listener states, `SIP Active, Tunnel Off`.
    pub listeners: String,
    /// The peer serves its local cache because it lost etcd.
    pub stale: bool,
    /// Active, Lagging (behind the cluster's generation), Stale, Unreachable (its lease
    /// expired or was revoked); set by the node that writes `cluster.json`, not by the peer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Serial of the server store certificate the peer's generation in force presents (empty
    /// in a record from an agent that did not publish it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_serial: String,
    /// Serial of the client store certificate of that generation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_serial: String,
    /// The client store leaf's EKU extension; `None` when the record does not say (an older
    /// agent, or no client certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ekus: Option<crate::certs::Ekus>,
    /// The client store leaf's notAfter, RFC 3339 (days left are counted by the reader).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_not_after: String,
}

/// What the agent knows of its cluster, `ROOT/status/cluster.json` (written by the agent only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterView {
    pub pid: u32,
    pub prefix: String,
    pub peer: String,
    /// Connecting, Synced or Stale.
    pub state: String,
    /// Why the state is not Synced (the etcd error), empty when synced.
    pub reason: String,
    /// The cluster's configuration generation as last read from etcd.
    pub generation: u64,
    /// The etcd revision of the last snapshot applied.
    pub revision: i64,
    /// The cluster generation this node's agent runs.
    pub applied_generation: u64,
    pub last_sync: String,
    pub peers: Vec<PeerRecord>,
}

/// Path of the agent's cluster view.
pub fn cluster_view_path(root: &Path) -> std::path::PathBuf {
    root.join("status").join("cluster.json")
}

/// The cluster view, whoever wrote it (a stopped agent's too: its `pid` tells).
pub fn read_cluster_view(root: &Path) -> Option<ClusterView> {
    let text =
        crate::bounded::read(&cluster_view_path(root), crate::bounded::FileKind::Snapshot).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The `Cluster` status leaves: `Disabled` on a single node; else the agent's view, marked
/// stale when no agent runs to keep it current.
fn cluster_values(root: &Path, agent_alive: bool) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let boot = match crate::store::cluster::Bootstrap::load(root) {
        Ok(Some(b)) => b,
        Ok(None) => {
            v.push(("Cluster State".into(), "Disabled".into()));
            return v;
        }
        Err(e) => {
            v.push(("Cluster State".into(), "Stale".into()));
            v.push((
                "Cluster Reason".into(),
                format!("cannot read the bootstrap file: {e}"),
            ));
            return v;
        }
    };
    let view = read_cluster_view(root).unwrap_or_default();
    let name = boot
        .prefix
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    v.push(("Cluster Name".into(), name.to_string()));
    v.push(("Cluster Prefix".into(), boot.prefix.clone()));
    v.push(("Cluster LocalPeer".into(), boot.peer.clone()));
    v.push(("Cluster Transport".into(), boot.transport().into()));
    let (state, reason) = if !agent_alive {
        (
            "Stale".to_string(),
            "no agent is running on this root; the values are as it last saw them".to_string(),
        )
    } else if view.state.is_empty() {
        ("Connecting".into(), String::new())
    } else {
        (view.state.clone(), view.reason.clone())
    };
    v.push(("Cluster State".into(), state));
    v.push(("Cluster Reason".into(), reason));
    v.push(("Cluster Generation".into(), view.generation.to_string()));
    v.push((
        "Cluster AppliedGeneration".into(),
        view.applied_generation.to_string(),
    ));
    v.push(("Cluster LastSync".into(), view.last_sync.clone()));
    for (i, p) in view.peers.iter().take(6).enumerate() {
        let w = format!("Cluster Peer {}", i + 1);
        v.push((format!("{w} Name"), p.name.clone()));
        v.push((format!("{w} Address"), p.address.clone()));
        v.push((
            format!("{w} AppliedGeneration"),
            p.applied_generation.to_string(),
        ));
        v.push((format!("{w} LastReload"), p.last_reload.clone()));
        v.push((format!("{w} Listeners"), p.listeners.clone()));
        v.push((format!("{w} Status"), p.status.clone()));
    }
    v
}
