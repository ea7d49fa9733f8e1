//! What the agent tells the world: per-listener counters, zone states, the event log
//! (`ROOT/status/events.log`, the product's line shape), the handshake log
//! (`ROOT/status/handshakes.log`: which certificate went out and came in, and the decision), and
//! the status snapshot `ROOT/status/agent.json` that `xsh` renders. Counters are atomics; the
//! handshake path never waits on a lock here except to record a rejection.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::status::AgentSnapshot;
use crate::store::now_rfc3339;

/// Why a handshake was rejected, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    Eku,
    Chain,
    Timeout,
    Other,
}

/// Counters and last events of one listener.
#[derive(Default)]
pub struct ListenerStats {
    pub accepted: AtomicU64,
    pub rejected_eku: AtomicU64,
    pub rejected_chain: AtomicU64,
    pub rejected_timeout: AtomicU64,
    pub rejected_other: AtomicU64,
    pub last_accepted: Mutex<String>,
    pub last_rejection: Mutex<String>,
    pub address: Mutex<String>,
    pub state: Mutex<String>,
}

impl ListenerStats {
    pub fn reject(&self, kind: RejectKind, text: String) {
        let c = match kind {
            RejectKind::Eku => &self.rejected_eku,
            RejectKind::Chain => &self.rejected_chain,
            RejectKind::Timeout => &self.rejected_timeout,
            RejectKind::Other => &self.rejected_other,
        };
        c.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.last_rejection.lock() {
            *l = text;
        }
    }

    fn publish(&self, prefix: &str, v: &mut BTreeMap<String, String>) {
        let g = |m: &Mutex<String>| m.lock().map(|s| s.clone()).unwrap_or_default();
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rejected = n(&self.rejected_eku)
            + n(&self.rejected_chain)
            + n(&self.rejected_timeout)
            + n(&self.rejected_other);
        let state = g(&self.state);
        v.insert(
            format!("{prefix} Status"),
            if state.is_empty() {
                "Off".into()
            } else {
                state
            },
        );
        v.insert(format!("{prefix} Address"), g(&self.address));
        v.insert(format!("{prefix} Accepted"), n(&self.accepted).to_string());
        v.insert(format!("{prefix} Rejected"), rejected.to_string());
        v.insert(
            format!("{prefix} RejectedEku"),
            n(&self.rejected_eku).to_string(),
        );
        v.insert(
            format!("{prefix} RejectedChain"),
            n(&self.rejected_chain).to_string(),
        );
        v.insert(
            format!("{prefix} RejectedTimeout"),
            n(&self.rejected_timeout).to_string(),
        );
        v.insert(
            format!("{prefix} RejectedOther"),
            n(&self.rejected_other).to_string(),
        );
        v.insert(format!("{prefix} LastAccepted"), g(&self.last_accepted));
        v.insert(format!("{prefix} LastRejection"), g(&self.last_rejection));
    }
}

/// State of one outbound zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneState {
    pub name: String,
    pub peer: String,
    pub status: String,
    pub reason: String,
    pub presented_serial: String,
    pub peer_serial: String,
    pub last_check: String,
    pub tunnel_status: String,
    pub tunnel_reason: String,
}

/// Everything published, shared by the agent's tasks.
pub struct Report {
    root: PathBuf,
    pub sip: ListenerStats,
    pub tunnel: ListenerStats,
    pub zones: Mutex<BTreeMap<u32, ZoneState>>,
    pub agent: Mutex<AgentSnapshot>,
    pub extra: Mutex<BTreeMap<String, String>>,
    dirty: AtomicBool,
    events: Mutex<VecDeque<String>>,
    handshakes: Mutex<Option<std::fs::File>>,
}

impl Report {
    pub fn new(root: &Path) -> Report {
        let dir = root.join("status");
        let _ = std::fs::create_dir_all(&dir);
        let hs = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("handshakes.log"))
            .ok();
        Report {
            root: root.to_path_buf(),
            sip: ListenerStats::default(),
            tunnel: ListenerStats::default(),
            zones: Mutex::new(BTreeMap::new()),
            agent: Mutex::new(AgentSnapshot {
                pid: std::process::id(),
                ..Default::default()
            }),
            extra: Mutex::new(BTreeMap::new()),
            dirty: AtomicBool::new(true),
            events: Mutex::new(VecDeque::new()),
            handshakes: Mutex::new(hs),
        }
    }

    pub fn mark(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Appends to the event log: `<time>\t<module>: Detail="..." Level="..."`.
    pub fn event(&self, module: &str, level: &str, detail: &str) {
        let line = format!(
            "{}\t{module}: Detail={} Level=\"{level}\"",
            now_rfc3339(),
            crate::render::quote(detail)
        );
        match level {
            "ERROR" => tracing::error!("{module}: {detail}"),
            "WARN" => tracing::warn!("{module}: {detail}"),
            _ => tracing::info!("{module}: {detail}"),
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("status").join("events.log"))
        {
            let _ = writeln!(f, "{line}");
        }
        if let Ok(mut e) = self.events.lock() {
            e.push_back(line);
            while e.len() > 200 {
                e.pop_front();
            }
        }
    }

    /// One line of the handshake log (JSON).
    pub fn handshake(&self, record: &serde_json::Value) {
        if let Ok(mut g) = self.handshakes.lock() {
            if let Some(f) = g.as_mut() {
                let _ = writeln!(f, "{record}");
            }
        }
    }

    /// Writes `agent.json` if anything changed since the last write.
    pub fn flush(&self) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut snap = match self.agent.lock() {
            Ok(a) => a.clone(),
            Err(_) => return,
        };
        let mut v = BTreeMap::new();
        self.sip.publish("SIP TLS Listener", &mut v);
        self.tunnel.publish("Tunnel Listener", &mut v);
        if let Ok(zones) = self.zones.lock() {
            for (id, z) in zones.iter() {
                let p = format!("Zones Zone {id}");
                v.insert(format!("{p} Name"), z.name.clone());
                v.insert(format!("{p} Peer"), z.peer.clone());
                v.insert(format!("{p} Status"), z.status.clone());
                v.insert(format!("{p} Reason"), z.reason.clone());
                v.insert(format!("{p} PresentedSerial"), z.presented_serial.clone());
                v.insert(format!("{p} PeerSerial"), z.peer_serial.clone());
                v.insert(format!("{p} LastCheck"), z.last_check.clone());
                v.insert(format!("{p} Tunnel Status"), z.tunnel_status.clone());
                v.insert(format!("{p} Tunnel Reason"), z.tunnel_reason.clone());
            }
        }
        if let Ok(x) = self.extra.lock() {
            v.extend(x.iter().map(|(a, b)| (a.clone(), b.clone())));
        }
        snap.values = v;
        if let Ok(text) = serde_json::to_string_pretty(&snap) {
            let _ = crate::store::write_file_atomic(
                &crate::status::snapshot_path(&self.root),
                text.as_bytes(),
                0o644,
            );
        }
    }

    /// Removes the snapshot at shutdown so `xsh` says plainly that no agent runs.
    pub fn retire(&self) {
        let _ = std::fs::remove_file(crate::status::snapshot_path(&self.root));
    }
}
