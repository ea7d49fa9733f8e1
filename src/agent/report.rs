//! What the agent tells the world: per-listener counters, zone states, the event log
//! (`ROOT/status/events.log`, the product's line shape), the handshake log
//! (`ROOT/status/handshakes.log`: which certificate went out and came in, and the decision), and
//! the status snapshot `ROOT/status/agent.json` that `xsh` renders. Counters are atomics; the
//! handshake path never waits on a lock here except to record a rejection. Both logs are
//! buffered: the handshake path only appends to memory, and [`Report::flush`] (the agent's
//! 100 ms tick) and [`Report::retire`] (shutdown) write them, one `write()` per log. Both logs
//! rotate at `Logging Rotation Size`, and refused handshakes past `Logging Refused Limit` per
//! interval are counted into one summary line instead of a line each ([`super::logfile`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::logfile::{self, LogLimits, RefusedWindow};
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

/// State of one zone the agent reports: the zone's summary and each checked peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneState {
    pub name: String,
    /// The zone's `Type`, as the schema spells it.
    pub kind: String,
    pub status: String,
    pub reason: String,
    /// By Peer index (1..6).
    pub peers: BTreeMap<u8, PeerState>,
}

/// State of one outbound peer of a zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerState {
    /// `address:port`.
    pub address: String,
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
    /// Lines of `events.log` not yet written.
    events_out: Mutex<Vec<u8>>,
    /// Lines of `handshakes.log` not yet written.
    handshakes: Mutex<Vec<u8>>,
    /// Rotation and refusal limits of the generation in force.
    limits: Mutex<LogLimits>,
    refused: Mutex<RefusedWindow>,
}

/// Past this many pending bytes a log is written at once, so a burst cannot grow memory.
const PENDING_LIMIT: usize = 256 * 1024;

impl Report {
    pub fn new(root: &Path) -> Report {
        let dir = root.join("status");
        let _ = std::fs::create_dir_all(&dir);
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
            events_out: Mutex::new(Vec::new()),
            handshakes: Mutex::new(Vec::new()),
            limits: Mutex::new(LogLimits::default()),
            refused: Mutex::new(RefusedWindow::default()),
        }
    }

    /// Applies the generation's log limits.
    pub fn set_limits(&self, l: LogLimits) {
        if let Ok(mut g) = self.limits.lock() {
            *g = l;
        }
    }

    fn limits(&self) -> LogLimits {
        self.limits.lock().map(|g| *g).unwrap_or_default()
    }

    /// Counts a refused handshake (`what`: peer and reason); true when it may be logged line by
    /// line, false when only the interval's summary will mention it.
    pub fn refused_admit(&self, what: &str) -> bool {
        let limits = self.limits();
        self.refused
            .lock()
            .map(|mut w| w.admit(&limits, what))
            .unwrap_or(true)
    }

    /// Writes the summary line of refusals not logged one by one, when the interval is over
    /// (or now, with `force`).
    fn refused_summary(&self, force: bool) {
        let limits = self.limits();
        let line = self
            .refused
            .lock()
            .ok()
            .and_then(|mut w| w.summary(&limits, force));
        if let Some(l) = line {
            self.event_line("agent", "WARN", &l);
        }
    }

    pub fn mark(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Appends to the event log: `<time>\t<module>: Detail="..." Level="..."`, written at once
    /// (with any lines still pending before it, so the order holds).
    pub fn event(&self, module: &str, level: &str, detail: &str) {
        self.event_line(module, level, detail);
        self.write_events();
    }

    /// [`Report::event`] from the handshake path: the line goes out with the next flush.
    pub fn handshake_event(&self, module: &str, level: &str, detail: &str) {
        if self.event_line(module, level, detail) >= PENDING_LIMIT {
            self.write_events();
        }
    }

    /// Queues one event line; returns the pending size.
    fn event_line(&self, module: &str, level: &str, detail: &str) -> usize {
        // Details carry peer text (names, reasons): whatever a caller forgot, no control
        // character reaches the log or the agent's terminal.
        let detail = &*crate::peer_text::visible(detail, false);
        // Detail lines only when `Logging Level` asks for them (the diagnostic log's filter).
        let detail_wanted = match level {
            "DEBUG" => tracing::enabled!(tracing::Level::DEBUG),
            "TRACE" => tracing::enabled!(tracing::Level::TRACE),
            _ => true,
        };
        if !detail_wanted {
            return 0;
        }
        let line = format!(
            "{}\t{module}: Detail={} Level=\"{level}\"",
            now_rfc3339(),
            crate::render::quote(detail)
        );
        match level {
            "ERROR" => tracing::error!("{module}: {detail}"),
            "WARN" => tracing::warn!("{module}: {detail}"),
            "DEBUG" => tracing::debug!("{module}: {detail}"),
            "TRACE" => tracing::trace!("{module}: {detail}"),
            _ => tracing::info!("{module}: {detail}"),
        }
        let pending = match self.events_out.lock() {
            Ok(mut out) => {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
                out.len()
            }
            Err(_) => 0,
        };
        if let Ok(mut e) = self.events.lock() {
            e.push_back(line);
            while e.len() > 200 {
                e.pop_front();
            }
        }
        pending
    }

    /// Writes the pending event lines in one `write()`. The file is opened per write (not kept
    /// open) so a removed or rotated `events.log` is created again, as before.
    fn write_events(&self) {
        let bytes = match self.events_out.lock() {
            Ok(mut out) if !out.is_empty() => std::mem::take(&mut *out),
            _ => return,
        };
        let path = self.root.join("status").join("events.log");
        let _ = logfile::append(&path, &bytes, &self.limits());
    }

    /// Writes the pending handshake records.
    fn write_handshakes(&self) {
        let bytes = match self.handshakes.lock() {
            Ok(mut out) if !out.is_empty() => std::mem::take(&mut *out),
            _ => return,
        };
        let path = self.root.join("status").join("handshakes.log");
        let _ = logfile::append(&path, &bytes, &self.limits());
    }

    /// One line of the handshake log (JSON), written with the next flush.
    pub fn handshake(&self, record: &impl serde::Serialize) {
        let full = match self.handshakes.lock() {
            Ok(mut g) => {
                if serde_json::to_writer(&mut *g, record).is_ok() {
                    g.push(b'\n');
                }
                g.len() >= PENDING_LIMIT
            }
            Err(_) => false,
        };
        if full {
            self.write_handshakes();
        }
    }

    /// Writes what the event and handshake logs hold: a `write()` each, when they hold anything.
    pub fn flush_logs(&self) {
        self.refused_summary(false);
        self.write_events();
        self.write_handshakes();
    }

    /// Writes `agent.json` if anything changed since the last write.
    /// Also writes the pending log lines first, so a status that shows a handshake's effect
    /// never runs ahead of its log line.
    pub fn flush(&self) {
        self.flush_logs();
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
                v.insert(format!("{p} Type"), z.kind.clone());
                v.insert(format!("{p} Status"), z.status.clone());
                v.insert(format!("{p} Reason"), z.reason.clone());
                for (m, pr) in &z.peers {
                    let q = format!("{p} Peer {m}");
                    v.insert(format!("{q} Address"), pr.address.clone());
                    v.insert(format!("{q} Status"), pr.status.clone());
                    v.insert(format!("{q} Reason"), pr.reason.clone());
                    v.insert(format!("{q} PresentedSerial"), pr.presented_serial.clone());
                    v.insert(format!("{q} PeerSerial"), pr.peer_serial.clone());
                    v.insert(format!("{q} LastCheck"), pr.last_check.clone());
                    v.insert(format!("{q} Tunnel Status"), pr.tunnel_status.clone());
                    v.insert(format!("{q} Tunnel Reason"), pr.tunnel_reason.clone());
                }
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

    /// Removes the snapshot at shutdown so `xsh` says plainly that no agent runs; the logs are
    /// written out first (SIGTERM loses no line).
    pub fn retire(&self) {
        self.refused_summary(true);
        self.flush_logs();
        let _ = std::fs::remove_file(crate::status::snapshot_path(&self.root));
    }
}

/// Whatever path ends the agent, lines still pending are written.
impl Drop for Report {
    fn drop(&mut self) {
        self.flush_logs();
    }
}
