//! The configuration store under `ROOT/config/`: `xconf.txt`, its lock and the audit log.
//!
//! Writers take an exclusive lock, re-read, apply, validate, write a temp file, fsync, rename and
//! fsync the folder; only then may the shell print `OK`. Readers never lock: a rename is atomic,
//! so they see the old file or the new one, never a mix. The audit record of a change is written
//! (and synced) before the rename, stamped with the generation it creates, so a crash between the
//! two leaves a record for a generation that never became current, which `xHistory` skips.
//!
//! A process parses `xconf.txt` at most once per distinct content: the snapshot is kept with the
//! bytes it came from and handed out shared ([`Store::snapshot`]); readers of leaves outside
//! instance nodes take [`Store::globals`], which skips the lines of 1,000 zones. Two side files
//! save work and are never the configuration: `.audit.tail` (the generation the last writer
//! claimed and where its audit records end, so the next writer reads only what follows) and
//! `.xconf.clean` (length and hash of bytes a clean commit wrote, so a checked read need not
//! re-check them); a stale or missing one only costs the work it would have saved. Every file
//! of the store (and of the rooms above that replace files) is written through [`atomic`]. Where
//! configuration lives is the [`Backend`] trait; [`Store`] is its implementation on these files.
//! This room knows no certificates, no terminal and no renderer.

pub mod atomic;
pub mod audit;
pub mod backend;
pub mod cluster;
pub mod config;
pub mod typed;
pub mod zone_paths;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use audit::{AuditRecord, CHANGE_ROLLED_BACK, ROLLED_BACK};
pub use backend::{transact_with, Backend};
pub use config::{Change, Config, LoadProblem};

use crate::schema::schema;

/// Who is making a change, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Who {
    pub user: String,
    /// Client address from `SSH_CONNECTION`, or `local`.
    pub from: String,
    /// Session id (the shell's pid).
    pub session: String,
}

impl Who {
    /// The current process's user, SSH client address and pid. The user is the name of the
    /// real uid (`getuid`), never `$USER`/`$LOGNAME`, which any caller can set; the
    /// environment only supplies the address (`SSH_CONNECTION`), which sshd sets.
    pub fn current() -> Who {
        let uid = nix::unistd::getuid();
        let user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| format!("uid{uid}"));
        let from = std::env::var("SSH_CONNECTION")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_string))
            // Only an address: anything else in the variable is not recorded.
            .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
            .unwrap_or_else(|| "local".into());
        Who {
            user,
            from,
            session: std::process::id().to_string(),
        }
    }
}

/// Failures of the store; each says which file and what happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O operation on a file of the store failed.
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    /// A compare-and-swap found another generation current than the one it was based on.
    Conflict { expected: u64, current: u64 },
    /// `xconf.txt` was refused before it was read (a link, not a regular file, too large).
    Read(crate::bounded::ReadError),
    /// The generation counter is at its end: a change would wrap it to 0. Nothing was written.
    GenerationExhausted { current: u64 },
    /// The ROOT is in a cluster and the cluster refused, did not answer or did not confirm.
    Cluster(cluster::ClusterError),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io { path, op, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            StoreError::Conflict { expected, current } => write!(
                f,
                "the configuration changed meanwhile (generation {current}, expected {expected})"
            ),
            StoreError::Read(e) => write!(f, "{e}"),
            StoreError::GenerationExhausted { current } => write!(
                f,
                "the configuration generation is at its end ({current}); a change would wrap it to 0, so nothing was written"
            ),
            StoreError::Cluster(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// The store of one ROOT.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// The bytes of `xconf.txt` this process last read or wrote, with the configuration they
    /// hold: a reader or writer that finds exactly these bytes skips parsing them again (a
    /// 10,000-line push commits several batches; each would re-parse the whole file, and one
    /// shell start reads the file for the role check, the idle limit and the request).
    /// Shared by the clones of a store.
    last: Arc<Mutex<Option<Cached>>>,
    /// The same for [`Store::globals`], when no full snapshot of those bytes is at hand; with
    /// whether its problems cover the whole file.
    globals: Arc<Mutex<Option<(Cached, bool)>>>,
    /// Refused attempts, rate-limited per user ([`audit::RefusedLimiter`]); shared by the
    /// clones, flushed when the last one goes.
    refused: Arc<Mutex<audit::RefusedLimiter>>,
    /// The cluster this ROOT is in (`ROOT/config/cluster.json`): then the files are its cache.
    cluster: Option<Arc<cluster::blocking::Peer>>,
}

/// File bytes and the configuration parsed from (or written as) them.
type Cached = (Vec<u8>, Arc<Config>);

/// Current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt).unwrap_or_default()
}

/// Side files of the store: hints that save work (`.audit.tail`, `.xconf.clean`), never the
/// configuration itself, so a watcher of `ROOT/config/` may ignore them.
pub const SIDE_FILES: [&str; 2] = [".audit.tail", ".xconf.clean"];

/// Writes a side file (a hint: not synced) through [`atomic::replace`].
fn write_side(p: &Path, text: &str) -> io::Result<()> {
    atomic::replace(p, text.as_bytes(), 0o644, atomic::Durability::Unsynced)
}

/// Whether `p` is a side file of the store or the temp file of one.
pub fn is_side_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| SIDE_FILES.iter().any(|s| n.starts_with(s)))
}

/// Length and hash of `xconf.txt` bytes, for `.xconf.clean`.
fn clean_stamp(bytes: &[u8]) -> String {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write(bytes);
    format!("{} {:016x}", bytes.len(), h.finish())
}

/// The generation in the header our writer puts first (`# generation: N` among the leading
/// comment lines); `None` when the leading comments do not hold one.
pub(crate) fn header_generation(bytes: &[u8]) -> Option<u64> {
    for line in bytes.split(|&b| b == b'\n') {
        let t = std::str::from_utf8(line).ok()?.trim();
        if t.is_empty() {
            continue;
        }
        let rest = t.strip_prefix('#')?;
        if let Some(g) = rest.trim().strip_prefix("generation:") {
            return g.trim().parse().ok();
        }
    }
    None
}

impl Store {
    /// Opens (and creates) `ROOT/config/`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let dir = root.join("config");
        fs::create_dir_all(&dir).map_err(io_err(&dir, "create"))?;
        let refused = Arc::new(Mutex::new(audit::RefusedLimiter::new(
            &dir.join("audit.log"),
        )));
        let cluster = match cluster::Bootstrap::load(root).map_err(StoreError::Cluster)? {
            Some(b) => Some(Arc::new(
                cluster::blocking::Peer::new(root, b).map_err(StoreError::Cluster)?,
            )),
            None => None,
        };
        Ok(Store {
            dir,
            last: Arc::default(),
            globals: Arc::default(),
            refused,
            cluster,
        })
    }

    /// The cluster this ROOT is in, if any.
    pub fn cluster(&self) -> Option<&cluster::blocking::Peer> {
        self.cluster.as_deref()
    }

    /// In a cluster that did not answer the last read: why. What this store serves is then
    /// its local cache, which may be stale.
    pub fn stale(&self) -> Option<String> {
        self.cluster.as_ref().and_then(|p| p.stale())
    }

    /// Refreshes the cache from the cluster when a read is due (no-op outside a cluster).
    /// Not inside an async runtime (the agent): its watch keeps the cache fresh, and a read
    /// there must not wait for etcd.
    fn refresh(&self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        if let Some(p) = &self.cluster {
            cluster::backend::refresh(self, p, false);
        }
    }

    /// Takes the lock when nobody holds it; `None` when somebody does (or it cannot be opened).
    fn try_lock(&self) -> Option<File> {
        let lock_path = self.lock_path();
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ok()?;
        lock.try_lock().ok()?;
        Some(lock)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("xconf.txt")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    fn tail_path(&self) -> PathBuf {
        self.dir.join(SIDE_FILES[0])
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(".xconf.lock")
    }

    fn read_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let p = self.config_path();
        match crate::bounded::read(&p, crate::bounded::FileKind::Config) {
            Ok(b) => Ok(b),
            Err(e) if e.is_missing() => Ok(Vec::new()),
            Err(crate::bounded::ReadError::Io { op, source, .. }) => Err(io_err(&p, op)(source)),
            Err(e) => Err(StoreError::Read(e)),
        }
    }

    /// The current configuration, shared: parsed only when the file holds other bytes than
    /// the last snapshot this process saw.
    pub fn snapshot(&self) -> Result<Arc<Config>, StoreError> {
        self.refresh();
        self.file_snapshot()
    }

    /// [`Store::snapshot`] of the files as they are (in a cluster: the cache, not refreshed).
    fn file_snapshot(&self) -> Result<Arc<Config>, StoreError> {
        let bytes = self.read_bytes()?;
        if let Ok(g) = self.last.lock() {
            if let Some((b, c)) = g.as_ref() {
                if *b == bytes {
                    return Ok(c.clone());
                }
            }
        }
        let cfg = Arc::new(Config::from_bytes(&bytes));
        if let Ok(mut g) = self.last.lock() {
            *g = Some((bytes, cfg.clone()));
        }
        Ok(cfg)
    }

    /// The values outside instance nodes (and the generation) of the current configuration:
    /// for readers of `SystemUnit`, `Shell` and the like, which must not pay for 1,000 zones.
    /// The full snapshot when this process already holds one of these bytes (a superset). Its
    /// problems may cover only the lines it read: see [`Store::checked_globals`].
    pub fn globals(&self) -> Result<Arc<Config>, StoreError> {
        self.globals_where(false)
    }

    /// As [`Store::globals`], with the problems and kept lines of the whole file (the banner's
    /// warnings), still without storing the instances.
    pub fn checked_globals(&self) -> Result<Arc<Config>, StoreError> {
        self.globals_where(true)
    }

    fn globals_where(&self, checked: bool) -> Result<Arc<Config>, StoreError> {
        self.refresh();
        let bytes = self.read_bytes()?;
        if let Ok(g) = self.last.lock() {
            if let Some((b, c)) = g.as_ref() {
                if *b == bytes {
                    return Ok(c.clone());
                }
            }
        }
        if let Ok(g) = self.globals.lock() {
            if let Some(((b, c), was_checked)) = g.as_ref() {
                if *b == bytes && (*was_checked || !checked) {
                    return Ok(c.clone());
                }
            }
        }
        // Bytes this store wrote clean need no check: every line is one it wrote and validated.
        let clean = self.is_clean(&bytes);
        let cfg = Arc::new(if checked && !clean {
            Config::checked_globals_from_bytes(&bytes)
        } else {
            Config::globals_from_bytes(&bytes)
        });
        if let Ok(mut g) = self.globals.lock() {
            *g = Some(((bytes, cfg.clone()), checked || clean));
        }
        Ok(cfg)
    }

    fn clean_path(&self) -> PathBuf {
        self.dir.join(SIDE_FILES[1])
    }

    /// Whether `bytes` are what this store last wrote from a configuration without problems:
    /// `.xconf.clean` holds their length and hash. Not synced; a stale or torn one only costs the
    /// check it would have saved.
    fn is_clean(&self, bytes: &[u8]) -> bool {
        fs::read_to_string(self.clean_path()).is_ok_and(|t| t.trim() == clean_stamp(bytes))
    }

    /// Records (or withdraws) the clean stamp for the bytes just written from `cfg`.
    fn stamp_clean(&self, bytes: &[u8], cfg: &Config) {
        let tree = &schema().config;
        let deprecated = cfg.values.keys().any(|k| {
            tree.nodes[k.leaf]
                .leaf
                .as_ref()
                .is_some_and(|l| l.deprecated.is_some())
        });
        let p = self.clean_path();
        if !cfg.kept.is_empty() || deprecated {
            let _ = fs::remove_file(&p);
            return;
        }
        let _ = write_side(&p, &clean_stamp(bytes));
    }

    /// Reads the current configuration without locking (a copy of [`Store::snapshot`]).
    pub fn load(&self) -> Result<Config, StoreError> {
        self.snapshot().map(Arc::unwrap_or_clone)
    }

    /// The current generation, from the header when it has one (no parse of the values).
    pub fn generation(&self) -> Result<u64, StoreError> {
        self.refresh();
        let bytes = self.read_bytes()?;
        match header_generation(&bytes) {
            Some(g) => Ok(g),
            None => self.file_snapshot().map(|c| c.generation),
        }
    }

    /// Takes the store's exclusive lock (held until the returned file is dropped). Writers of
    /// `xconf.txt` hold it; so does the one-time preparation of a root, so that parallel first
    /// starts do not interleave. Not re-entrant: never take it twice in one process.
    pub fn lock(&self) -> Result<File, StoreError> {
        let lock_path = self.lock_path();
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path, "open"))?;
        lock.lock().map_err(io_err(&lock_path, "lock"))?;
        Ok(lock)
    }

    /// Runs `f` on the configuration under the exclusive lock and makes its changes durable.
    /// Returns `f`'s result, the changes and the resulting generation. Under the lock nobody
    /// else can commit, so this is one pass of [`transact_with`] that never conflicts.
    pub fn transact<T>(
        &self,
        who: &Who,
        f: impl FnOnce(&mut Config) -> T,
    ) -> Result<(T, Vec<Change>, u64), StoreError> {
        if let Some(p) = &self.cluster {
            return cluster::backend::transact(self, p, who, f);
        }
        let lock = self.lock()?;
        let (bytes, mut cfg) = self.read_locked()?;
        let before = cfg.values.clone();
        let out = f(&mut cfg);
        let changes = diff(&before, &cfg);
        if changes.is_empty() {
            let generation = cfg.generation;
            // Nothing to write: what is cached is still what the file holds, unless `f`
            // changed something outside the values (it may not; keep it simple and re-read).
            if cfg.values == before {
                self.remember(bytes, cfg);
            }
            return Ok((out, changes, generation));
        }
        let generation = self.commit_locked(&mut cfg, audit_records(who, &changes))?;
        drop(lock);
        Ok((out, changes, generation))
    }

    /// Writes `cfg` as the next generation (the caller holds the lock): the audit records
    /// (stamped with that generation) first, then the file. Returns the generation.
    fn commit_locked(
        &self,
        cfg: &mut Config,
        mut recs: Vec<AuditRecord>,
    ) -> Result<u64, StoreError> {
        // A writer killed after its audit records but before its rename left records for a
        // generation that never became current: mark them rolled back and never reuse the number.
        // A file without its header (written by hand) continues after the audit log instead.
        let exhausted = |current| StoreError::GenerationExhausted { current };
        let mut next = cfg
            .generation
            .checked_add(1)
            .ok_or(exhausted(cfg.generation))?;
        if let Some(g) =
            audit::last_applied_generation(&self.audit_path(), &self.tail_path(), cfg.generation)
        {
            if g > cfg.generation {
                // Checked before the rollback record: a refused change writes nothing.
                next = g.checked_add(1).ok_or(exhausted(g))?;
                if cfg.generation_known {
                    self.append_rollback(g)?;
                }
            }
        }
        cfg.generation = next;
        cfg.generation_known = true;
        for r in &mut recs {
            r.generation = next;
        }
        let end = audit::append(&self.audit_path(), &recs)?;
        // Best effort: without it the next writer reads the log's tail instead.
        let _ = audit::write_tail(&self.tail_path(), next, end);
        let text = cfg.to_text();
        self.write_atomic(&text)?;
        self.stamp_clean(text.as_bytes(), cfg);
        self.remember(text.into_bytes(), std::mem::take(cfg));
        Ok(next)
    }

    fn append_rollback(&self, generation: u64) -> Result<(), StoreError> {
        let rec = AuditRecord {
            time: now_rfc3339(),
            generation,
            user: String::new(),
            from: String::new(),
            session: String::new(),
            path: String::new(),
            old: String::new(),
            new: String::new(),
            result: ROLLED_BACK.into(),
            change: String::new(),
        };
        audit::append(&self.audit_path(), &[rec]).map(drop)
    }

    /// Reads `xconf.txt` (the caller holds the lock): the cached configuration when the file
    /// holds exactly the bytes it came from, else a fresh parse.
    fn read_locked(&self) -> Result<(Vec<u8>, Config), StoreError> {
        let bytes = self.read_bytes()?;
        let cached = self.last.lock().ok().and_then(|mut g| g.take());
        if let Some((b, c)) = cached {
            if b == bytes {
                return Ok((bytes, Arc::unwrap_or_clone(c)));
            }
        }
        let cfg = Config::from_bytes(&bytes);
        Ok((bytes, cfg))
    }

    /// Caches a configuration with the bytes it was read from or written as. Only a clean one:
    /// problems carry line numbers of the file they were found in.
    fn remember(&self, bytes: Vec<u8>, cfg: Config) {
        if cfg.problems.is_empty() && cfg.kept.is_empty() {
            if let Ok(mut g) = self.last.lock() {
                *g = Some((bytes, Arc::new(cfg)));
            }
        }
    }

    /// Rewrites zone leaves written with this project's first paths to Expressway's (see
    /// [`zone_paths`]) once, under the lock, with one audit record. `None` when there was nothing
    /// to do, so an ordinary start reads the file and stops.
    pub fn migrate_zone_paths(&self, who: &Who) -> Result<Option<usize>, StoreError> {
        // In a cluster the file is a cache: the shared text is migrated where it is written.
        if self.cluster.is_some() {
            return Ok(None);
        }
        let probe = self.read_bytes()?;
        if zone_paths::rewrite(&String::from_utf8_lossy(&probe)).is_none() {
            return Ok(None);
        }
        let _guard = self.lock()?;
        let bytes = self.read_bytes()?;
        let Some((text, n)) = zone_paths::rewrite(&String::from_utf8_lossy(&bytes)) else {
            return Ok(None);
        };
        self.write_atomic(&text)?;
        self.audit_note(
            who,
            "Zones Zone Migration",
            "Zones Zone N Peer Address/Port/TunnelPort, TLS Verify Mode/Subject Name",
            &format!("{n} lines moved to Zones Zone N Neighbor|TraversalClient Peer 1 Address, SIP Port, SIP TLS Verify Mode/Subject Name, Tunnel Port"),
            "applied",
        )?;
        Ok(Some(n))
    }

    /// Records an attempt that was refused (for example a read-only user's set), rate-limited
    /// per user: see [`audit::RefusedLimiter`].
    pub fn audit_refused(
        &self,
        who: &Who,
        path: &str,
        value: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let rec = self.note_record(who, path, "", value, &format!("refused: {why}"));
        match self.refused.lock() {
            Ok(mut l) => l.refused(rec),
            Err(_) => audit::append(&self.audit_path(), &[rec]).map(drop),
        }
    }

    /// Records an event that is not a configuration change (a store migration, a certificate
    /// upload), with its own path words and result.
    pub fn audit_note(
        &self,
        who: &Who,
        path: &str,
        old: &str,
        new: &str,
        result: &str,
    ) -> Result<(), StoreError> {
        let rec = self.note_record(who, path, old, new, result);
        if let Some(p) = &self.cluster {
            // The cluster's log when it answers; this peer's own log when it does not.
            if cluster::backend::append_audit(p, std::slice::from_ref(&rec)).is_ok() {
                return Ok(());
            }
        }
        audit::append(&self.audit_path(), &[rec]).map(drop)
    }

    /// A record of an event that is not a configuration change, stamped now.
    fn note_record(
        &self,
        who: &Who,
        path: &str,
        old: &str,
        new: &str,
        result: &str,
    ) -> AuditRecord {
        AuditRecord {
            time: now_rfc3339(),
            generation: self.generation().unwrap_or(0),
            user: who.user.clone(),
            from: who.from.clone(),
            session: who.session.clone(),
            path: path.to_string(),
            old: old.to_string(),
            new: new.to_string(),
            result: result.to_string(),
            change: String::new(),
        }
    }

    #[cfg(test)]
    fn append_audit(
        &self,
        who: &Who,
        generation: u64,
        changes: &[Change],
        result: &str,
    ) -> Result<(), StoreError> {
        let mut recs = audit_records(who, changes);
        for r in &mut recs {
            r.generation = generation;
            r.result = result.to_string();
        }
        audit::append(&self.audit_path(), &recs).map(drop)
    }

    /// Writes `xconf.txt` through a temp file, fsync, rename and a folder fsync.
    fn write_atomic(&self, text: &str) -> Result<(), StoreError> {
        let dest = self.config_path();
        write_file_atomic(&dest, text.as_bytes(), 0o644).map_err(io_err(&dest, "write"))
    }

    /// The audit records of changes that reached the current file, newest last.
    pub fn history(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        if let Some(p) = &self.cluster {
            if let Ok(h) = cluster::backend::history(p, limit) {
                return Ok(h);
            }
        }
        audit::history(&self.audit_path(), self.generation()?, limit)
    }
}

/// Audit records of `changes` by `who`, not yet stamped with a generation.
fn audit_records(who: &Who, changes: &[Change]) -> Vec<AuditRecord> {
    let time = now_rfc3339();
    let tree = &schema().config;
    changes
        .iter()
        .map(|c| AuditRecord {
            time: time.clone(),
            generation: 0,
            user: who.user.clone(),
            from: who.from.clone(),
            session: who.session.clone(),
            path: c.key.words(tree),
            old: c.old.clone(),
            new: c.new.clone(),
            result: "applied".into(),
            change: String::new(),
        })
        .collect()
}

/// Writes a file atomically through [`atomic::replace`]: an exclusive, unpredictably named temp
/// file in the same folder (created with `mode`), fsync, rename, fsync of the folder.
pub fn write_file_atomic(dest: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    atomic::replace(dest, bytes, mode, atomic::Durability::Synced)
}

/// The changes from `before` to `after`: changed and added keys in key order, then removed
/// ones. One merge of the two sorted maps: no look-ups and no copies of unchanged values.
fn diff(
    before: &std::collections::BTreeMap<crate::parse::Key, String>,
    after: &Config,
) -> Vec<Change> {
    use std::cmp::Ordering;
    let tree = &schema().config;
    let default_of = |k: &crate::parse::Key| {
        tree.nodes[k.leaf]
            .leaf
            .as_ref()
            .map(|l| l.default.as_str())
            .unwrap_or_default()
    };
    let change = |k: &crate::parse::Key, old: &str, new: &str| Change {
        key: k.clone(),
        old: old.to_string(),
        new: new.to_string(),
    };
    let mut out = Vec::new();
    let mut removed = Vec::new();
    let mut old_it = before.iter().peekable();
    for (k, v) in &after.values {
        while let Some((ok, ov)) = old_it.next_if(|(ok, _)| *ok < k) {
            if default_of(ok) != ov {
                removed.push(change(ok, ov, default_of(ok)));
            }
        }
        match old_it.peek().map(|(ok, _)| (*ok).cmp(k)) {
            Some(Ordering::Equal) => {
                let (_, ov) = old_it.next().unwrap_or((k, v));
                if ov != v {
                    out.push(change(k, ov, v));
                }
            }
            _ => {
                if default_of(k) != v {
                    out.push(change(k, default_of(k), v));
                }
            }
        }
    }
    for (ok, ov) in old_it {
        if default_of(ok) != ov {
            removed.push(change(ok, ov, default_of(ok)));
        }
    }
    out.extend(removed);
    out
}

#[cfg(test)]
mod tests;
