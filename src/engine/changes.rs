//! What changed: the values of configuration and status diffed against the last ones seen, and
//! the one watcher (`notify` on `ROOT/config/` and `ROOT/status/`) that finds out when to look.
//!
//! Every front end that delivers feedback (the shell's `xFeedback`, jsxapi's `xFeedback/Event`)
//! takes its changes from here, so a change made through any front end (an SSH session, a web
//! form, another agent writing status) reaches every subscriber, once. Filtering by a
//! subscriber's registrations and rendering stay with the front end; this room knows neither.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};

use crate::parse::Key;
use crate::schema::{schema, Tree};
use crate::store::{Config, Store};

/// Values by key, as the store and the status tree hold them.
pub type Values = BTreeMap<Key, String>;

/// The values that changed since the last look, in each tree. Empty maps: nothing changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub config: Values,
    pub status: Values,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.config.is_empty() && self.status.is_empty()
    }
}

/// Values of `new` that differ from `old`. In the configuration a removed key went back to its
/// default, so it reports the default; a status value that disappeared reports nothing.
pub fn changed(tree: &Tree, old: &Values, new: &Values, config: bool) -> Values {
    let mut out = BTreeMap::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    if config {
        for k in old.keys() {
            if !new.contains_key(k) {
                let d = tree.nodes[k.leaf]
                    .leaf
                    .as_ref()
                    .map(|l| l.default.clone())
                    .unwrap_or_default();
                out.insert(k.clone(), d);
            }
        }
    }
    out
}

/// The entries of `values` (in `tree`, whose document root is `root`: `Configuration` or
/// `Status`) that fall under one of the canonical feedback paths `regs`.
pub fn filter(tree: &Tree, root: &str, values: &Values, regs: &[String]) -> Values {
    values
        .iter()
        .filter(|(k, _)| {
            let p = format!("/{root}{}", k.slash_path(tree));
            regs.iter().any(|r| crate::parse::feedback::matches(r, &p))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The status values feedback follows: uptime changes every second and is not an event.
pub fn status_values(root: &Path, cfg: &Config) -> Values {
    let mut v = crate::status::collect(root, cfg);
    if let Some(k) = crate::status::key_for(&schema().status, "SystemUnit Uptime") {
        v.remove(&k);
    }
    v
}

/// The last values seen of one ROOT, and the diff against what is there now.
pub struct Tracker {
    root: PathBuf,
    store: Store,
    config: Values,
    status: Values,
}

impl Tracker {
    /// Starts from what `root` holds now (a change before this is not reported).
    pub fn open(root: &Path) -> Option<Tracker> {
        let store = Store::open(root).ok()?;
        let cfg = store.load().unwrap_or_default();
        Some(Tracker {
            root: root.to_path_buf(),
            status: status_values(root, &cfg),
            config: cfg.values.clone(),
            store,
        })
    }

    /// What changed since the last look; the values seen move on to what is there now.
    pub fn look(&mut self) -> Changes {
        let cfg = self.store.load().unwrap_or_default();
        let config = changed(&schema().config, &self.config, &cfg.values, true);
        self.config = cfg.values.clone();
        let st = status_values(&self.root, &cfg);
        let status = changed(&schema().status, &self.status, &st, false);
        self.status = st;
        Changes { config, status }
    }
}

/// A running watcher; it stops when dropped.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
}

/// Whether a file event can change what a [`Tracker`] sees: the configuration file or the
/// agent's status snapshot (or a lost event queue, which may hide either).
fn relevant(ev: &notify::Event) -> bool {
    ev.need_rescan()
        || ev
            .paths
            .iter()
            .any(|p| p.ends_with("xconf.txt") || p.ends_with("agent.json"))
}

/// Watches `root` and calls `deliver` with each non-empty set of changes, from the watcher's
/// thread, one call at a time. `None` when the folders cannot be watched.
pub fn watch(root: &Path, mut deliver: impl FnMut(Changes) + Send + 'static) -> Option<Watch> {
    let mut tracker = Tracker::open(root)?;
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if !relevant(&ev) {
            return;
        }
        let ch = tracker.look();
        if !ch.is_empty() {
            deliver(ch);
        }
    };
    let mut w = notify::recommended_watcher(handler).ok()?;
    for dir in [root.join("config"), root.join("status")] {
        let _ = std::fs::create_dir_all(&dir);
        w.watch(&dir, RecursiveMode::NonRecursive).ok()?;
    }
    Some(Watch { _watcher: w })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(words: &str) -> Key {
        crate::status::key_for(&schema().config, words).unwrap_or_else(|| panic!("{words}"))
    }

    #[test]
    fn diff_reports_new_values_and_defaults_of_removed_keys() {
        let tree = &schema().config;
        let port = key("SIP TLS Port");
        let mode = key("SIP TLS Mode");
        let old: Values = [(port.clone(), "5062".into()), (mode.clone(), "Off".into())].into();
        let new: Values = [(mode.clone(), "Off".into())].into();
        let ch = changed(tree, &old, &new, true);
        assert_eq!(ch, [(port.clone(), "5061".to_string())].into());
        assert!(changed(tree, &new, &new, true).is_empty());
        // Status: a vanished value is no event.
        assert!(changed(tree, &old, &new, false).is_empty());
        let regs = ["/Configuration/SIP/TLS/Port".to_string()];
        assert_eq!(filter(tree, "Configuration", &old, &regs).len(), 1);
        let regs = ["/Configuration/Zones".to_string()];
        assert!(filter(tree, "Configuration", &old, &regs).is_empty());
    }
}
