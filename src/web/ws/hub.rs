//! One change watcher per agent process (per ROOT), shared by every WebSocket session: the
//! engine's watcher (`engine::changes`) feeding a tokio broadcast channel. A session subscribes
//! at its first `xFeedback/Subscribe`; each change reaches each session once, whichever front end
//! made it (an SSH session's set, a web form, the agent's status).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

use crate::engine::changes::{self, Changes, Watch};

/// Changes queued per session before the slowest one starts missing some (it is told nothing
/// more than a lagged receiver is; a burst this long is a configuration restore, not a stream).
const QUEUE: usize = 256;

pub struct Hub {
    tx: broadcast::Sender<Arc<Changes>>,
    _watch: Mutex<Watch>,
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Changes>> {
        self.tx.subscribe()
    }
}

/// The hub of `root`, started on first use. Blocking (it reads the configuration and status it
/// starts from): call it in `spawn_blocking`. `None` when the folders cannot be watched.
pub fn hub(root: &Path) -> Option<Arc<Hub>> {
    static HUBS: OnceLock<Mutex<HashMap<PathBuf, Arc<Hub>>>> = OnceLock::new();
    let mut hubs = HUBS.get_or_init(Default::default).lock().ok()?;
    if let Some(h) = hubs.get(root) {
        return Some(h.clone());
    }
    let (tx, _) = broadcast::channel(QUEUE);
    let sender = tx.clone();
    let watch = changes::watch(root, move |ch| {
        // No receiver yet (every session gone) is fine: the change is simply not wanted.
        let _ = sender.send(Arc::new(ch));
    })?;
    let h = Arc::new(Hub {
        tx,
        _watch: Mutex::new(watch),
    });
    hubs.insert(root.to_path_buf(), h.clone());
    Some(h)
}
