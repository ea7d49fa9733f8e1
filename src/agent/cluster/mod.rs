//! The agent in a cluster: when `ROOT/config/cluster.json` names one, a task in the agent's
//! runtime reads a snapshot from etcd, writes it into the local files (the cache every start
//! and every build reads), asks the main loop to rebuild at once (the same `build()` as
//! start-up; inotify would also see the files, later), and watches the cluster prefix from the
//! snapshot's revision + 1. A burst of writes is coalesced: a watch response that only puts the
//! configuration key is applied from the newest value it carries (no read on the way from a
//! commit to the next handshake); one that touches the certificate keys reads the whole
//! snapshot, which is the newest state, so events at or below the revision already applied
//! are skipped. After a compaction, a lost
//! watch or lease, or `xCommand Cluster ForceConfigUpdate`, it re-lists and resyncs, and the
//! event log names the cause. When etcd is unreachable the agent keeps serving its last good
//! generation, marks itself stale and retries with backoff.
//!
//! It also publishes this peer's record under a lease and keeps `ROOT/status/cluster.json`
//! (every peer, judged against the cluster's generation) for `xStatus Cluster`.
//! This room knows etcd's client and the cluster store's snapshot; it knows no terminal, and it
//! never writes the configuration except through the store's `materialise`.

pub mod peers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{EventType, GetOptions, PutOptions, WatchOptions};
use tokio::sync::{mpsc, oneshot, watch as twatch};

use super::Shared;
use crate::status::{ClusterView, PeerRecord};
use crate::store::cluster::{materialise, Bootstrap, ClusterClient, ClusterSnapshot};
use peers::Peers;

/// Every unary etcd call is bounded (the client itself is lazy and would wait on a dead member).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The peer record's lease: a stopped or cut-off agent's record goes away after this long.
const LEASE_TTL: i64 = 10;
const KEEPALIVE_EVERY: Duration = Duration::from_secs(3);
/// How often the own record and the force request file are looked at.
const LOCAL_EVERY: Duration = Duration::from_millis(200);
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A request to the main loop: rebuild from the files now; `done` when the reload finished.
pub struct ReloadRequest {
    pub done: oneshot::Sender<()>,
}

/// The running cluster task.
pub struct Handle {
    stop: twatch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops the task; it revokes its lease (peers see this one go at once), bounded in time.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

/// Starts the cluster task for `boot`.
pub fn start(shared: Arc<Shared>, boot: Bootstrap, reload: mpsc::Sender<ReloadRequest>) -> Handle {
    let (stop, stop_rx) = twatch::channel(false);
    let peers_prefix = format!("{}/peers/", boot.prefix);
    let view = ClusterView {
        pid: std::process::id(),
        prefix: boot.prefix.clone(),
        peer: boot.peer.clone(),
        state: "Connecting".into(),
        ..ClusterView::default()
    };
    let t = Task {
        shared,
        boot,
        reload,
        stop: stop_rx,
        client: None,
        view,
        peers: Peers::default(),
        peers_prefix,
        stale_since: None,
        published: None,
        lease: None,
    };
    Handle {
        stop,
        task: tokio::spawn(t.run()),
    }
}

/// What one watch response changed of what this node runs.
enum Change {
    None,
    /// Only the config key was put: its newest value is in the event.
    Config(etcd_client::KeyValue),
    /// A certificate key, or a deleted config key: read the whole snapshot.
    Other,
}

impl Change {
    fn config(self, kv: &etcd_client::KeyValue) -> Change {
        match self {
            Change::Other => Change::Other,
            _ => Change::Config(kv.clone()),
        }
    }
}

/// Why a watch ended.
enum Cause {
    Compacted { compacted: i64, wanted: i64 },
    Lost(String),
    Canceled(String),
    Forced(String),
    Stop,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Compacted { compacted, wanted } => write!(
                f,
                "the watch was canceled by a compaction (revision {wanted} is gone, compacted up to {compacted})"
            ),
            Cause::Lost(e) => write!(f, "the watch was lost ({e})"),
            Cause::Canceled(r) => write!(f, "etcd canceled the watch ({r})"),
            Cause::Forced(who) => write!(f, "xCommand Cluster ForceConfigUpdate ({who})"),
            Cause::Stop => f.write_str("the agent is stopping"),
        }
    }
}

struct Task {
    shared: Arc<Shared>,
    boot: Bootstrap,
    reload: mpsc::Sender<ReloadRequest>,
    stop: twatch::Receiver<bool>,
    client: Option<ClusterClient>,
    view: ClusterView,
    peers: Peers,
    peers_prefix: String,
    stale_since: Option<Instant>,
    /// The record last put under the lease.
    published: Option<PeerRecord>,
    lease: Option<i64>,
}

/// An etcd error in one line: the gRPC message and its root cause, not the whole debug chain.
fn brief(e: &etcd_client::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    let head = match e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_string(),
        e => e.to_string(),
    };
    let tail = root.to_string();
    if tail == head || std::ptr::addr_eq(root, e as &dyn std::error::Error) {
        head
    } else {
        format!("{head}: {tail}")
    }
}

/// An etcd client call, bounded in time, its error in one line.
async fn call<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    bounded(what, async { f.await.map_err(|e| brief(&e)) }).await
}

async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer within {} s",
            CALL_TIMEOUT.as_secs()
        )),
    }
}

impl Task {
    async fn run(mut self) {
        let cached = crate::store::cluster::local::read_meta(&self.shared.root).generation;
        self.view.applied_generation = self.shared.current.load().config_generation;
        self.write_view().await;
        let mut cause: Option<Cause> = None;
        let mut backoff = BACKOFF_FIRST;
        loop {
            if *self.stop.borrow() {
                break;
            }
            match self.resync().await {
                Ok(()) => {
                    backoff = BACKOFF_FIRST;
                    self.synced(cause.take(), cached);
                    self.write_view().await;
                }
                Err(e) => {
                    self.went_stale(&e).await;
                    match self.wait_retry(backoff).await {
                        Some(Cause::Stop) => break,
                        Some(c) => cause = Some(c),
                        None => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
            let c = self.watch().await;
            if matches!(c, Cause::Stop) {
                break;
            }
            // A forced resync was already named when the request was taken.
            if !matches!(c, Cause::Forced(_)) {
                self.shared.report.event(
                    "cluster",
                    "WARNING",
                    &format!("{c}; re-listing the cluster to resync"),
                );
            }
            cause = Some(c);
        }
        if let (Some(id), Some(cc)) = (self.lease, &self.client) {
            let mut c = cc.client();
            let _ = tokio::time::timeout(Duration::from_millis(500), c.lease_revoke(id)).await;
        }
    }

    /// The event line of a successful (re)sync.
    fn synced(&mut self, cause: Option<Cause>, cached: u64) {
        let (g, r) = (self.view.generation, self.view.revision);
        let msg = match (self.stale_since.take(), cause) {
            (Some(t), _) => format!(
                "etcd is reachable again after {} s; resynced to cluster generation {g} (revision {r})",
                t.elapsed().as_secs()
            ),
            (None, Some(c)) => format!("resynced after {c}: cluster generation {g} (revision {r})"),
            (None, None) => format!(
                "joined cluster {} as peer {}: cluster generation {g} (revision {r}); the local cache had generation {cached}",
                self.boot.prefix, self.boot.peer
            ),
        };
        self.shared.report.event("cluster", "INFO", &msg);
    }

    /// Marks the node stale (once per outage, with an event line) and keeps what it serves.
    async fn went_stale(&mut self, e: &str) {
        if self.stale_since.is_none() {
            self.stale_since = Some(Instant::now());
            let n = self.shared.current.load().number;
            self.shared.report.event(
                "cluster",
                "WARNING",
                &format!(
                    "etcd is unreachable ({e}); serving generation {n} (cluster generation {}) from the local cache, retrying with backoff",
                    self.view.applied_generation
                ),
            );
        }
        self.view.state = "Stale".into();
        self.view.reason = e.to_string();
        self.lease = None;
        self.published = None;
        self.write_view().await;
    }

    /// Sleeps `d`, or less when asked to stop or to resync now.
    async fn wait_retry(&mut self, d: Duration) -> Option<Cause> {
        let until = tokio::time::Instant::now() + d;
        loop {
            if let Some(who) = self.take_force_request().await {
                return Some(Cause::Forced(who));
            }
            let step = until.saturating_duration_since(tokio::time::Instant::now());
            if step.is_zero() {
                return None;
            }
            tokio::select! {
                _ = self.stop.changed() => return Some(Cause::Stop),
                _ = tokio::time::sleep(step.min(LOCAL_EVERY)) => {}
            }
        }
    }

    /// Reads the whole snapshot and the peer records, and applies the snapshot.
    async fn resync(&mut self) -> Result<(), String> {
        if self.client.is_none() {
            let c = bounded("connect", ClusterClient::connect(&self.boot)).await?;
            self.client = Some(c);
        }
        self.load_and_apply().await?;
        let Some(cc) = &self.client else {
            return Err("no client".into());
        };
        let mut c = cc.client();
        let r = call(
            "list peers",
            c.get(
                self.peers_prefix.as_bytes(),
                Some(GetOptions::new().with_prefix()),
            ),
        )
        .await?;
        self.peers = Peers::default();
        for kv in r.kvs() {
            if let Some(name) = kv
                .key_str()
                .ok()
                .and_then(|k| k.strip_prefix(&self.peers_prefix))
            {
                self.peers.put(name, kv.value());
            }
        }
        self.view.state = "Synced".into();
        self.view.reason.clear();
        Ok(())
    }

    /// One consistent read, written into the local files, rebuilt and swapped by the main loop.
    async fn load_and_apply(&mut self) -> Result<(), String> {
        let Some(cc) = &self.client else {
            return Err("no client".into());
        };
        let snap = bounded("read the snapshot", cc.load()).await?;
        self.apply(snap).await
    }

    async fn apply(&mut self, snap: ClusterSnapshot) -> Result<(), String> {
        let (generation, revision) = (snap.generation, snap.revision);
        let root = self.shared.root.clone();
        tokio::task::spawn_blocking(move || materialise(&root, &snap))
            .await
            .map_err(|e| format!("materialise task: {e}"))?
            .map_err(|e| format!("cannot write the local cache: {e}"))?;
        // Whoever wrote the files (this task, or a local xsh refreshing the same cache first),
        // a generation not built from them is rebuilt now, not at the next inotify wake-up.
        // Applied when what is in force was built from the files as they are: a refused build
        // (a bad local certificate) keeps the older generation and shows as lagging.
        if !self.files_in_force().await {
            let (done, wait) = oneshot::channel();
            if self.reload.send(ReloadRequest { done }).await.is_ok() {
                let _ = wait.await;
            }
        }
        if self.files_in_force().await {
            self.view.applied_generation = generation;
        }
        self.view.generation = generation;
        self.view.revision = revision;
        self.view.last_sync = crate::store::now_rfc3339();
        Ok(())
    }

    /// Whether the generation in force was built from the files as they are now.
    async fn files_in_force(&self) -> bool {
        let root = self.shared.root.clone();
        let now = tokio::task::spawn_blocking(move || super::generation::content_hash(&root))
            .await
            .unwrap_or(0);
        now == self.shared.current.load().hash
    }

    /// The force request of `xCommand Cluster ForceConfigUpdate`, taken away; its author.
    async fn take_force_request(&self) -> Option<String> {
        let path = crate::commands::cluster_force::request_path(&self.shared.root);
        let text = std::fs::read_to_string(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        let who = text.split_whitespace().next().unwrap_or("").to_string();
        self.shared.report.event(
            "cluster",
            "INFO",
            &format!(
                "xCommand Cluster ForceConfigUpdate requested by {}: re-listing the cluster",
                if who.is_empty() { "unknown" } else { &who }
            ),
        );
        Some(if who.is_empty() {
            "requested".into()
        } else {
            format!("requested by {who}")
        })
    }

    /// The view as `xsh` reads it, with every peer judged.
    async fn write_view(&mut self) {
        let own = self.own_record();
        self.view.peers = self.peers.judged(&own, self.view.generation);
        peers::write_view(&self.shared, self.view.clone()).await;
    }

    fn own_record(&self) -> PeerRecord {
        peers::own_record(
            &self.shared,
            &self.boot.peer,
            self.view.applied_generation,
            self.view.state == "Stale",
        )
    }

    /// Puts this peer's record under the lease when it changed.
    async fn publish(&mut self) -> Result<(), String> {
        let (Some(id), Some(cc)) = (self.lease, &self.client) else {
            return Ok(());
        };
        let rec = self.own_record();
        if self.published.as_ref() == Some(&rec) {
            return Ok(());
        }
        let json = serde_json::to_string(&rec).map_err(|e| e.to_string())?;
        let mut c = cc.client();
        let key = format!("{}{}", self.peers_prefix, self.boot.peer);
        call(
            "publish the peer record",
            c.put(key, json, Some(PutOptions::new().with_lease(id))),
        )
        .await?;
        self.published = Some(rec);
        self.write_view().await;
        Ok(())
    }

    /// Watches until something ends the watch; applies every configuration change on the way.
    async fn watch(&mut self) -> Cause {
        let Some(cc) = self.client.clone() else {
            return Cause::Lost("no client".into());
        };
        let mut c = cc.client();
        let wanted = self.view.revision + 1;
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(wanted)
            .with_progress_notify();
        let prefix = cc.watch_prefix();
        let mut ws = match call(
            "start the watch",
            c.watch(prefix.as_bytes(), Some(opts.clone())),
        )
        .await
        {
            Ok(w) => w,
            Err(e) => return Cause::Lost(e),
        };
        if !self.peers_prefix.starts_with(&prefix) {
            if let Err(e) = ws.watch(self.peers_prefix.as_bytes(), Some(opts)).await {
                return Cause::Lost(format!("watch the peer records: {e}"));
            }
        }
        let lease = match call("grant the lease", c.lease_grant(LEASE_TTL, None)).await {
            Ok(l) => l.id(),
            Err(e) => return Cause::Lost(e),
        };
        self.lease = Some(lease);
        self.published = None;
        let (mut keeper, mut acks) =
            match call("keep the lease alive", c.lease_keep_alive(lease)).await {
                Ok(k) => k,
                Err(e) => return Cause::Lost(e),
            };
        if let Err(e) = self.publish().await {
            return Cause::Lost(e);
        }
        // Only the configuration and the certificate keys change what a node runs (the audit,
        // the writers' lock and the migration marker do not).
        let (config_key, certs_prefix) = (cc.config_key(), cc.key("certs/"));
        let mut keepalive = tokio::time::interval(KEEPALIVE_EVERY);
        let mut local = tokio::time::interval(LOCAL_EVERY);
        loop {
            tokio::select! {
                _ = self.stop.changed() => return Cause::Stop,
                m = ws.message() => {
                    let r = match m {
                        Err(e) => return Cause::Lost(format!("the watch stream failed: {}", brief(&e))),
                        Ok(None) => return Cause::Lost("the watch stream ended".into()),
                        Ok(Some(r)) => r,
                    };
                    if r.canceled() {
                        if r.compact_revision() > 0 {
                            return Cause::Compacted { compacted: r.compact_revision(), wanted };
                        }
                        return Cause::Canceled(r.cancel_reason().to_string());
                    }
                    let (mut change, mut peers_changed) = (Change::None, false);
                    for ev in r.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let Ok(key) = kv.key_str() else { continue };
                        if let Some(name) = key.strip_prefix(&self.peers_prefix) {
                            match ev.event_type() {
                                EventType::Put => self.peers.put(name, kv.value()),
                                EventType::Delete => self.peers.delete(name),
                            }
                            peers_changed = true;
                        } else if kv.mod_revision() > self.view.revision {
                            if key == config_key && ev.event_type() == EventType::Put {
                                change = change.config(kv);
                            } else if key == config_key || key.starts_with(&certs_prefix) {
                                change = Change::Other;
                            }
                        }
                    }
                    let dirty = !matches!(change, Change::None);
                    if dirty {
                        let applied = match change {
                            Change::Config(kv) => match ClusterSnapshot::of_config_event(
                                &config_key,
                                kv.value(),
                                kv.mod_revision(),
                            ) {
                                Ok(snap) => self.apply(snap).await,
                                Err(e) => Err(e.to_string()),
                            },
                            _ => self.load_and_apply().await,
                        };
                        if let Err(e) = applied {
                            return Cause::Lost(e);
                        }
                        if let Err(e) = self.publish().await {
                            return Cause::Lost(e);
                        }
                    }
                    if dirty || peers_changed {
                        self.write_view().await;
                    }
                }
                _ = keepalive.tick() => {
                    if let Err(e) = call("keep the lease alive", keeper.keep_alive()).await {
                        return Cause::Lost(e);
                    }
                    match call("keep the lease alive", acks.message()).await {
                        Ok(Some(a)) if a.ttl() > 0 => {}
                        Ok(_) => return Cause::Lost("the peer record's lease expired".into()),
                        Err(e) => return Cause::Lost(e),
                    }
                }
                _ = local.tick() => {
                    if let Some(who) = self.take_force_request().await {
                        return Cause::Forced(who);
                    }
                    if let Err(e) = self.publish().await {
                        return Cause::Lost(e);
                    }
                }
            }
        }
    }
}
