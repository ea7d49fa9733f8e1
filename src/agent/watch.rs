//! File watching: the parent folders `ROOT/config/` and `ROOT/certs/` (never the files, which are
//! replaced by rename), every path of every event, and `need_rescan` treated as "reload all".
//! Events only wake the reload loop; whether anything changed is decided by content hashes.

use std::path::Path;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

/// Starts watching; the returned watcher must be kept alive.
pub fn start(root: &Path, tx: UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    let handler = move |res: notify::Result<Event>| match res {
        Ok(ev) => {
            // Our own status writes land elsewhere; the lock file is touched by every writer but
            // the content hash makes such wake-ups cheap no-ops.
            // Opens and reads are not changes: the reload itself opens every watched file (content
            // hash, build), so counting them would wake the loop again and again.
            let read_only = matches!(
                ev.kind,
                EventKind::Access(
                    AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
                )
            );
            // The store's side files are hints written around each commit, not configuration.
            let relevant = ev.need_rescan()
                || (!read_only
                    && ev
                        .paths
                        .iter()
                        .any(|p| !p.ends_with(".xconf.lock") && !crate::store::is_side_file(p)));
            if relevant {
                let _ = tx.send(());
            }
        }
        Err(_) => {
            let _ = tx.send(());
        }
    };
    let mut w = notify::recommended_watcher(handler).ok()?;
    for dir in [root.join("config"), root.join("certs")] {
        let _ = std::fs::create_dir_all(&dir);
        if w.watch(&dir, RecursiveMode::NonRecursive).is_err() {
            return None;
        }
    }
    Some(w)
}
