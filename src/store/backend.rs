//! Where configuration lives, as a small trait: load a snapshot, commit with compare-and-swap on
//! the generation, watch for a generation past a given one, append audit records. [`Store`] (the
//! files under `ROOT/config/`) is the one implementation now; a cluster backend (etcd: the
//! snapshot under one key, its revision as the generation, a transaction comparing it, a watch
//! from a revision) can sit beside it without the layers above noticing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{audit_records, diff, AuditRecord, Change, Config, Store, StoreError, Who};

/// The interface to where configuration lives.
pub trait Backend: Send + Sync {
    /// The current configuration (its `generation` says which), shared and read-only.
    fn snapshot(&self) -> Result<Arc<Config>, StoreError>;

    /// Makes `next` current if the current generation is still `expected`, else
    /// [`StoreError::Conflict`] and nothing is written. `audit` (the records of the change, any
    /// generation) is stamped with the new generation and stored before the change becomes
    /// visible. Sets `next.generation` and returns it.
    fn compare_and_swap(
        &self,
        expected: u64,
        next: &mut Config,
        audit: Vec<AuditRecord>,
    ) -> Result<u64, StoreError>;

    /// Waits until a generation past `from` is current, at most `timeout`; returns the current
    /// generation (equal to `from` when the time ran out first).
    fn watch(&self, from: u64, timeout: Duration) -> Result<u64, StoreError>;

    /// Appends records that are not a configuration change (a refusal, a certificate note).
    fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError>;
}

/// Runs `f` on a copy of the current snapshot and commits the result with compare-and-swap,
/// running `f` again on the newer snapshot after a conflict (so `f` must be repeatable). The
/// changes are diffed against the snapshot; nothing is written when there are none.
pub fn transact_with<B: Backend + ?Sized, T>(
    backend: &B,
    who: &Who,
    mut f: impl FnMut(&mut Config) -> T,
) -> Result<(T, Vec<Change>, u64), StoreError> {
    loop {
        let snap = backend.snapshot()?;
        let mut cfg = Config::clone(&snap);
        let out = f(&mut cfg);
        let changes = diff(&snap.values, &cfg);
        if changes.is_empty() {
            return Ok((out, changes, snap.generation));
        }
        match backend.compare_and_swap(snap.generation, &mut cfg, audit_records(who, &changes)) {
            Ok(generation) => return Ok((out, changes, generation)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
}

impl Backend for Store {
    fn snapshot(&self) -> Result<Arc<Config>, StoreError> {
        if let Some(p) = &self.cluster {
            return super::cluster::backend::snapshot(self, p);
        }
        Store::snapshot(self)
    }

    fn compare_and_swap(
        &self,
        expected: u64,
        next: &mut Config,
        audit: Vec<AuditRecord>,
    ) -> Result<u64, StoreError> {
        if let Some(p) = &self.cluster {
            return super::cluster::backend::compare_and_swap(self, p, expected, next, audit);
        }
        let _lock = self.lock()?;
        let current = self.generation()?;
        if current != expected {
            return Err(StoreError::Conflict { expected, current });
        }
        next.generation = current;
        let generation = self.commit_locked(next, audit)?;
        *next = Store::snapshot(self).map(Arc::unwrap_or_clone)?;
        Ok(generation)
    }

    /// Polls the header every 20 ms (a few bytes read; the agent itself uses inotify on the
    /// folder and hashes contents, since it also watches the certificate files).
    fn watch(&self, from: u64, timeout: Duration) -> Result<u64, StoreError> {
        if let Some(p) = &self.cluster {
            return super::cluster::backend::watch(self, p, from, timeout);
        }
        let until = Instant::now() + timeout;
        loop {
            let g = self.generation()?;
            if g > from || Instant::now() >= until {
                return Ok(g);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        if let Some(p) = &self.cluster {
            return super::cluster::backend::append_audit(p, records);
        }
        super::audit::append(&self.audit_path(), records).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_line, Action};

    fn set(c: &mut Config, line: &str) {
        match parse_line(line).unwrap().action {
            Action::ConfigSet { key, value, .. } => {
                c.set(key, value);
            }
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn compare_and_swap_refuses_a_stale_generation() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let who = Who::default();
        let b: &dyn Backend = &s;
        let (_, ch, g) =
            transact_with(b, &who, |c| set(c, "xConfiguration SIP TLS Port: 5062")).unwrap();
        assert_eq!((ch.len(), g), (1, 1));
        let mut next = Config::clone(&b.snapshot().unwrap());
        set(&mut next, "xConfiguration SIP TLS Port: 5070");
        match b.compare_and_swap(0, &mut next, Vec::new()) {
            Err(StoreError::Conflict { expected, current }) => {
                assert_eq!((expected, current), (0, 1));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.compare_and_swap(1, &mut next, Vec::new()).unwrap(), 2);
        assert_eq!(b.watch(1, Duration::from_millis(1)).unwrap(), 2);
        assert_eq!(b.watch(2, Duration::from_millis(30)).unwrap(), 2);
        let h = s.history(10).unwrap();
        assert_eq!(h.len(), 1, "{h:?}");
    }
}
