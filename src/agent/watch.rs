//! File watching: the parent folders `ROOT/config/` and `ROOT/certs/` (never the files, which are
//! replaced by rename), every path of every event, and `need_rescan` treated as "reload all".
//! Events only wake the reload loop; whether anything changed is decided by content hashes.

use std::path::Path;

use notify::{Event, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

/// Starts watching; the returned watcher must be kept alive.
pub fn start(root: &Path, tx: UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    let handler = move |res: notify::Result<Event>| match res {
        Ok(ev) => {
            // Our own status writes land elsewhere; the lock file is touched by every writer but
            // the content hash makes such wake-ups cheap no-ops.
            let relevant = ev.need_rescan() || ev.paths.iter().any(|p| !p.ends_with(".xconf.lock"));
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
