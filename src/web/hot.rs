//! `getxml` answers kept while what they were built from stands still, so a client polling
//! `/Status/SystemUnit` is not answered by reading and rendering the same bytes again.
//!
//! A document is kept per location string, with the [`Inputs`] it was built from:
//!
//! * a `/Configuration/…` document is a function of `config/xconf.txt` alone, stamped by its
//!   `stat` (device, inode, size, mtime and ctime in nanoseconds). The store writes the file
//!   by rename (a new inode), and since Linux 6.13 the timestamps are fine-grained once
//!   observed (multigrain), so any write after the stamp was taken changes it;
//! * a `/Status/SystemUnit…` document also holds `Uptime` (whole seconds of the boot clock, what
//!   `/proc/uptime` reads) and the host name when `SystemUnit Name` is empty: its inputs add the
//!   boot clock's second and the host name. An answer kept is thus at most as old as the second
//!   it names, which is what a fresh collection would say at that instant;
//! * every other status root (agent, certificates, cluster, …) reads files this room does not
//!   stamp: never kept.
//!
//! A document is stored only when its inputs were the same before and after it was built, so
//! a write or a second tick during the build never pins a stale answer. Errors are never kept.
//! Nothing here knows HTTP or the engine: the caller builds the document.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

/// Most locations kept at once (a client naming ever new locations empties the cache rather
/// than growing it), and the largest document kept.
const MAX_DOCS: usize = 64;
const MAX_DOC_BYTES: usize = 256 * 1024;

/// Which inputs a location's document is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/Configuration/…`: the configuration file.
    Configuration,
    /// `/Status/SystemUnit…`: the configuration, the boot clock's second, the host name.
    SystemUnit,
}

/// A file as `stat` sees it; `None` in [`Inputs`] when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    Some(FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime_ns: ns(m.mtime(), m.mtime_nsec()),
        ctime_ns: ns(m.ctime(), m.ctime_nsec()),
    })
}

/// What a kept document was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    config: Option<FileStamp>,
    /// Whole seconds of `CLOCK_BOOTTIME` (the clock `/proc/uptime` reads), SystemUnit only.
    second: Option<u64>,
    /// The host name, SystemUnit only.
    host: Option<OsString>,
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    inputs: Inputs,
    body: Bytes,
}

/// The kept documents of one ROOT. Clones share them.
#[derive(Debug, Clone)]
pub struct DocCache {
    config: Arc<PathBuf>,
    docs: Arc<Mutex<HashMap<String, Entry>>>,
}

fn boot_second() -> Option<u64> {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .ok()
        .and_then(|t| u64::try_from(t.tv_sec()).ok())
}

impl DocCache {
    /// A cache for documents built from the configuration file at `config`.
    pub fn new(config: PathBuf) -> DocCache {
        DocCache {
            config: Arc::new(config),
            docs: Arc::default(),
        }
    }

    /// The inputs of a `kind` document, now.
    pub fn inputs(&self, kind: Kind) -> Inputs {
        let config = stamp(&self.config);
        match kind {
            Kind::Configuration => Inputs {
                config,
                second: None,
                host: None,
            },
            Kind::SystemUnit => Inputs {
                config,
                second: boot_second(),
                host: nix::unistd::gethostname().ok(),
            },
        }
    }

    /// The document kept for `location`, if its inputs are still those it was built from.
    pub fn get(&self, location: &str) -> Option<Bytes> {
        let kind = self.lock().get(location)?.kind;
        // Taken outside the lock: a `stat` while other requests wait on the map buys nothing.
        let now = self.inputs(kind);
        let docs = self.lock();
        let e = docs.get(location)?;
        (e.kind == kind && e.inputs == now).then(|| e.body.clone())
    }

    /// Builds the `kind` document of `location` with `build` (`None`: an error, not kept) and
    /// keeps it when the inputs did not move while it was built.
    pub fn build(
        &self,
        location: &str,
        kind: Kind,
        build: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        let before = self.inputs(kind);
        let body = build()?;
        let after = self.inputs(kind);
        if before == after && body.len() <= MAX_DOC_BYTES {
            let mut docs = self.lock();
            if docs.len() >= MAX_DOCS && !docs.contains_key(location) {
                docs.clear();
            }
            docs.insert(
                location.to_string(),
                Entry {
                    kind,
                    inputs: after,
                    body: body.clone(),
                },
            );
        }
        Some(body)
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, PathBuf, DocCache) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("xconf.txt");
        std::fs::write(&p, "# generation: 1\n").unwrap();
        let c = DocCache::new(p.clone());
        (d, p, c)
    }

    fn body(s: &str) -> Option<Bytes> {
        Some(Bytes::from(s.to_string()))
    }

    #[test]
    fn kept_until_the_file_changes_in_place_or_by_rename() {
        let (d, p, c) = cache();
        assert_eq!(c.get("/Configuration"), None);
        assert_eq!(
            c.build("/Configuration", Kind::Configuration, || body("a")),
            body("a")
        );
        assert_eq!(c.get("/Configuration"), body("a"));
        assert_eq!(c.get("/configuration"), None, "kept per location string");
        // The same length written in place: the stamp moves all the same.
        std::fs::write(&p, "# generation: 2\n").unwrap();
        assert_eq!(c.get("/Configuration"), None);
        c.build("/Configuration", Kind::Configuration, || body("b"));
        assert_eq!(c.get("/Configuration"), body("b"));
        // Replaced by rename, as the store writes it.
        let tmp = d.path().join("xconf.tmp");
        std::fs::write(&tmp, "# generation: 3\n").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert_eq!(c.get("/Configuration"), None);
        // Removed, then back.
        c.build("/Configuration", Kind::Configuration, || body("c"));
        std::fs::remove_file(&p).unwrap();
        assert_eq!(c.get("/Configuration"), None);
        c.build("/Configuration", Kind::Configuration, || body("none"));
        assert_eq!(c.get("/Configuration"), body("none"));
        std::fs::write(&p, "").unwrap();
        assert_eq!(c.get("/Configuration"), None);
    }

    #[test]
    fn a_change_during_the_build_and_an_error_are_not_kept() {
        let (_d, p, c) = cache();
        let got = c.build("/Configuration", Kind::Configuration, || {
            std::fs::write(&p, "# generation: 2\nxConfiguration SystemUnit Name: x\n").unwrap();
            body("built from the old file")
        });
        assert_eq!(got, body("built from the old file"), "answered, not kept");
        assert_eq!(c.get("/Configuration"), None);
        assert!(c.is_empty());
        assert_eq!(
            c.build("/Configuration", Kind::Configuration, || None),
            None
        );
        assert!(c.is_empty());
    }

    #[test]
    fn system_unit_inputs_hold_the_second_and_the_host() {
        let (_d, _p, c) = cache();
        let i = c.inputs(Kind::SystemUnit);
        assert!(i.second.is_some() && i.host.is_some());
        assert_eq!(i.config, c.inputs(Kind::Configuration).config);
        assert!(c.inputs(Kind::Configuration).second.is_none());
        // The boot clock is the one /proc/uptime reads: never ahead of it.
        let proc_s = std::fs::read_to_string("/proc/uptime").unwrap();
        let proc_s = proc_s
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap() as u64;
        assert!(i.second.unwrap() <= proc_s);
    }

    #[test]
    fn bounded() {
        let (_d, _p, c) = cache();
        for n in 0..MAX_DOCS + 5 {
            c.build(&format!("/Configuration/{n}"), Kind::Configuration, || {
                body("x")
            });
            assert!(c.len() <= MAX_DOCS);
        }
        let big = "x".repeat(MAX_DOC_BYTES + 1);
        c.build("/Configuration/big", Kind::Configuration, || body(&big));
        assert_eq!(c.get("/Configuration/big"), None);
    }
}
