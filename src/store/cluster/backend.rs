//! The store's operations when its ROOT is in a cluster: a transaction under the cluster's
//! writer lock committed as one etcd transaction (shared leaves and their audit records; the
//! peer-local ones stay in the local file), the [`crate::store::Backend`] operations (an
//! optimistic compare-and-swap: a lost race is a `Conflict`, and `transact_with` re-reads and
//! re-runs), the cache refresh behind every read, and notes in the cluster's audit log.
//!
//! `OK` only after etcd answered the transaction as succeeded (a quorum has it). Unreachable
//! or unconfirmed: an error, and nothing is written locally.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::blocking::Peer;
use super::commit::{audit_puts, Outcome, Write};
use super::{local, ClusterError, ClusterSnapshot};
use crate::store::{audit_records, diff, AuditRecord, Change, Config, Store, StoreError, Who};

fn cluster_err(peer: &Peer, e: ClusterError) -> StoreError {
    if matches!(
        e,
        ClusterError::Unreachable(_) | ClusterError::Unconfirmed(_)
    ) {
        peer.mark(Some(&e));
    }
    StoreError::Cluster(e)
}

/// Refreshes the local cache from the cluster when a read is due (see [`Peer::load_if_due`]);
/// skipped while a writer of this ROOT holds the lock (it refreshes the cache itself).
pub(in crate::store) fn refresh(store: &Store, peer: &Peer, force: bool) {
    let snap = if force {
        Some(peer.load())
    } else {
        peer.load_if_due()
    };
    let Some(Ok(snap)) = snap else { return };
    let meta = local::read_meta(peer.root());
    if snap.config_revision == meta.config_revision && snap.certs_revision == meta.certs_revision {
        return;
    }
    if let Some(_lock) = store.try_lock() {
        let _ = local::materialise_locked(peer.root(), &snap);
    }
}

/// Writes the committed configuration as the local cache and records what it holds.
fn cache_commit(
    store: &Store,
    peer: &Peer,
    cfg: &mut Config,
    snap: &ClusterSnapshot,
    config_revision: i64,
) -> Result<(), StoreError> {
    let text = cfg.to_text();
    store.write_atomic(&text)?;
    local::write_meta(
        peer.root(),
        &local::CacheMeta {
            revision: config_revision.max(snap.revision),
            config_revision,
            certs_revision: snap.certs_revision,
            generation: cfg.generation,
        },
    )
    .map_err(StoreError::Cluster)?;
    store.remember(text.into_bytes(), std::mem::take(cfg));
    Ok(())
}

/// Commits `cfg` (based on `snap`) to the cluster: its shared text with generation
/// `snap.generation + 1` and the audit records of `shared` changes, in one transaction.
fn commit_shared(
    peer: &Peer,
    snap: &ClusterSnapshot,
    cfg: &mut Config,
    mut recs: Vec<AuditRecord>,
) -> Result<Result<i64, i64>, StoreError> {
    let generation = snap
        .generation
        .checked_add(1)
        .ok_or(StoreError::GenerationExhausted {
            current: snap.generation,
        })?;
    cfg.generation = generation;
    cfg.generation_known = true;
    for r in &mut recs {
        r.generation = generation;
    }
    let text = local::shared_text(cfg);
    let expected = snap.config_revision;
    let out = peer.run(|c| async move {
        let w = Write {
            key: c.config_key(),
            expected,
            value: text.into_bytes(),
            extra: audit_puts(&c, generation, &recs),
        };
        c.write(&w).await
    });
    match out {
        Ok(Outcome::Committed { revision }) => {
            peer.mark(None);
            Ok(Ok(revision))
        }
        Ok(Outcome::Conflict { current }) => Ok(Err(current)),
        Err(e) => Err(cluster_err(peer, e)),
    }
}

/// [`Store::transact`] in a cluster: the local lock, then the cluster's writer lock, a fresh
/// read, `f`, and one etcd transaction for the shared changes; peer-local changes go to the
/// local file (and the local audit log) only.
pub(in crate::store) fn transact<T>(
    store: &Store,
    peer: &Peer,
    who: &Who,
    f: impl FnOnce(&mut Config) -> T,
) -> Result<(T, Vec<Change>, u64), StoreError> {
    if let Some(why) = peer.recently_down() {
        return Err(StoreError::Cluster(ClusterError::Unreachable(why)));
    }
    let _local = store.lock()?;
    let held = peer
        .run(|c| async move { c.lock().await })
        .map_err(|e| cluster_err(peer, e))?;
    let res = transact_held(store, peer, who, f);
    let _ = peer.run(|c| async move {
        c.unlock(held).await;
        Ok(())
    });
    res
}

fn transact_held<T>(
    store: &Store,
    peer: &Peer,
    who: &Who,
    f: impl FnOnce(&mut Config) -> T,
) -> Result<(T, Vec<Change>, u64), StoreError> {
    let snap = peer.load().map_err(|e| cluster_err(peer, e))?;
    local::materialise_locked(peer.root(), &snap).map_err(StoreError::Cluster)?;
    let (_, before) = store.read_locked()?;
    let mut cfg = before.clone();
    let out = f(&mut cfg);
    let changes = diff(&before.values, &cfg);
    if changes.is_empty() {
        return Ok((out, changes, before.generation));
    }
    let (mine, shared): (Vec<Change>, Vec<Change>) = changes
        .iter()
        .cloned()
        .partition(|c| local::is_local(&c.key));
    let mut config_revision = snap.config_revision;
    cfg.generation = snap.generation;
    if !shared.is_empty() {
        match commit_shared(peer, &snap, &mut cfg, audit_records(who, &shared))? {
            Ok(rev) => config_revision = rev,
            Err(current) => {
                // Only a writer that ignores the lock (or outlived its lease) gets here.
                return Err(StoreError::Conflict {
                    expected: u64::try_from(snap.config_revision).unwrap_or(0),
                    current: u64::try_from(current).unwrap_or(0),
                });
            }
        }
    }
    if !mine.is_empty() {
        let mut recs = audit_records(who, &mine);
        for r in &mut recs {
            r.generation = cfg.generation;
            r.path = format!("{} (peer-local)", r.path);
        }
        crate::store::audit::append(&store.audit_path(), &recs)?;
    }
    let generation = cfg.generation;
    cache_commit(store, peer, &mut cfg, &snap, config_revision)?;
    Ok((out, changes, generation))
}

/// [`crate::store::Backend::snapshot`]: a fresh read of the cluster into the cache, then the cache.
pub(in crate::store) fn snapshot(store: &Store, peer: &Peer) -> Result<Arc<Config>, StoreError> {
    refresh(store, peer, true);
    store.file_snapshot()
}

/// [`crate::store::Backend::compare_and_swap`]: optimistic, no lock. The generation must still
/// be `expected` in the cluster, and the config key's revision what this read saw, or nothing
/// is written and the answer is `Conflict`.
pub(in crate::store) fn compare_and_swap(
    store: &Store,
    peer: &Peer,
    expected: u64,
    next: &mut Config,
    audit: Vec<AuditRecord>,
) -> Result<u64, StoreError> {
    let _local = store.lock()?;
    let snap = peer.load().map_err(|e| cluster_err(peer, e))?;
    if snap.generation != expected {
        return Err(StoreError::Conflict {
            expected,
            current: snap.generation,
        });
    }
    let (shared, mine): (Vec<AuditRecord>, Vec<AuditRecord>) =
        audit.into_iter().partition(|r| !path_is_local(&r.path));
    match commit_shared(peer, &snap, next, shared)? {
        Ok(rev) => {
            if !mine.is_empty() {
                crate::store::audit::append(&store.audit_path(), &mine)?;
            }
            let generation = next.generation;
            cache_commit(store, peer, next, &snap, rev)?;
            *next = Store::file_snapshot(store).map(Arc::unwrap_or_clone)?;
            Ok(generation)
        }
        Err(_) => {
            let now = peer.load().map_err(|e| cluster_err(peer, e))?;
            Err(StoreError::Conflict {
                expected,
                current: now.generation,
            })
        }
    }
}

/// Whether an audit record's path names a peer-local leaf (a path of words, as recorded).
fn path_is_local(path: &str) -> bool {
    crate::parse::parse_line(&format!("xConfiguration {path}: x"))
        .ok()
        .and_then(|r| match r.action {
            crate::parse::Action::ConfigSet { key, .. } => Some(local::is_local(&key)),
            _ => None,
        })
        .unwrap_or(false)
}

/// [`crate::store::Backend::watch`]: polls the cluster every 20 ms.
pub(in crate::store) fn watch(
    store: &Store,
    peer: &Peer,
    from: u64,
    timeout: Duration,
) -> Result<u64, StoreError> {
    let until = Instant::now() + timeout;
    loop {
        let g = peer
            .load()
            .map(|s| s.generation)
            .map_err(|e| cluster_err(peer, e))?;
        if g > from || Instant::now() >= until {
            refresh(store, peer, false);
            return Ok(g);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Notes (not configuration changes) go to the cluster's audit log.
pub(in crate::store) fn append_audit(
    peer: &Peer,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    let recs = records.to_vec();
    peer.run(|c| async move {
        for r in &recs {
            c.note(r.generation, r).await?;
        }
        Ok(())
    })
    .map_err(|e| cluster_err(peer, e))
}

/// The cluster's newest audit records.
pub(in crate::store) fn history(peer: &Peer, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
    peer.run(|c| async move { c.audit(limit).await })
        .map_err(|e| cluster_err(peer, e))
}
