//! `xFeedback`: a session's registrations and the watcher that delivers changes. The watcher
//! (started at the first registration, so plain sessions stay cheap) follows `ROOT/config/` and
//! `ROOT/status/` with `notify`, diffs the new values against the last ones it saw, and writes one
//! document per change per session — terminal `*c`/`*s` lines ending in `** end`, or one JSON/XML
//! document without a result tag — between replies, under the session's output lock.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use notify::{RecursiveMode, Watcher};

use crate::engine::view::items_of;
use crate::parse::{Key, OutputMode};
use crate::render::{json, terminal, xml, DocKind, Item};
use crate::schema::{schema, Tree};
use crate::store::{Config, Store};

use super::output;

/// What the watcher needs from the session: the registrations and the output mode.
#[derive(Debug, Default)]
pub struct Registrations {
    pub paths: Vec<String>,
    pub mode: Option<OutputMode>,
}

/// A running watcher; dropped with the session.
pub struct Feedback {
    _watcher: notify::RecommendedWatcher,
}

fn render_doc(mode: OutputMode, kind: DocKind, items: &[Item]) -> String {
    match mode {
        OutputMode::Terminal => {
            let mut s = String::new();
            match kind {
                DocKind::Configuration => terminal::config(items, &mut s),
                DocKind::Status => terminal::status(items, &mut s),
            }
            s.push_str("** end\n");
            s
        }
        OutputMode::Xml => xml::reply(kind, items, None),
        OutputMode::Json => json::reply(kind, items, None),
    }
}

/// Values of `new` that differ from `old` (a removed key reports its default or disappears).
fn changed(
    tree: &Tree,
    old: &BTreeMap<Key, String>,
    new: &BTreeMap<Key, String>,
    config: bool,
) -> BTreeMap<Key, String> {
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

fn filter(
    tree: &Tree,
    root: &str,
    values: BTreeMap<Key, String>,
    regs: &[String],
) -> BTreeMap<Key, String> {
    values
        .into_iter()
        .filter(|(k, _)| {
            let p = format!("/{root}{}", k.slash_path(tree));
            regs.iter().any(|r| crate::parse::feedback::matches(r, &p))
        })
        .collect()
}

struct Seen {
    config: BTreeMap<Key, String>,
    status: BTreeMap<Key, String>,
}

fn status_values(root: &Path, cfg: &Config) -> BTreeMap<Key, String> {
    let mut v = crate::status::collect(root, cfg);
    // Uptime changes every second; it is not an event.
    if let Some(k) = crate::status::key_for(&schema().status, "SystemUnit Uptime") {
        v.remove(&k);
    }
    v
}

/// Starts the watcher for `root`, delivering to the session's output.
pub fn start(root: &Path, regs: Arc<Mutex<Registrations>>) -> Option<Feedback> {
    let store = Store::open(root).ok()?;
    let cfg = store.load().unwrap_or_default();
    let seen = Arc::new(Mutex::new(Seen {
        config: cfg.values.clone(),
        status: status_values(root, &cfg),
    }));
    let root_buf: PathBuf = root.to_path_buf();
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        let touches_config = ev.need_rescan() || ev.paths.iter().any(|p| p.ends_with("xconf.txt"));
        let touches_status = ev.need_rescan() || ev.paths.iter().any(|p| p.ends_with("agent.json"));
        if !(touches_config || touches_status) {
            return;
        }
        let (paths, mode) = match regs.lock() {
            Ok(r) => (r.paths.clone(), r.mode.unwrap_or(OutputMode::Terminal)),
            Err(_) => return,
        };
        let cfg = store.load().unwrap_or_default();
        let mut docs = Vec::new();
        if let Ok(mut s) = seen.lock() {
            let tree = &schema().config;
            let ch = changed(tree, &s.config, &cfg.values, true);
            s.config = cfg.values.clone();
            let ch = filter(tree, "Configuration", ch, &paths);
            if !ch.is_empty() {
                docs.push(render_doc(
                    mode,
                    DocKind::Configuration,
                    &items_of(tree, &ch),
                ));
            }
            if touches_status || touches_config {
                let st = status_values(&root_buf, &cfg);
                let tree = &schema().status;
                let ch = changed(tree, &s.status, &st, false);
                s.status = st;
                let ch = filter(tree, "Status", ch, &paths);
                if !ch.is_empty() {
                    docs.push(render_doc(mode, DocKind::Status, &items_of(tree, &ch)));
                }
            }
        }
        if docs.is_empty() {
            return;
        }
        let lock = output();
        let Ok(_g) = lock.lock() else { return };
        let mut out = std::io::stdout();
        for d in docs {
            let _ = out.write_all(d.as_bytes());
        }
        let _ = out.flush();
    };
    let mut w = notify::recommended_watcher(handler).ok()?;
    for dir in [root.join("config"), root.join("status")] {
        let _ = std::fs::create_dir_all(&dir);
        w.watch(&dir, RecursiveMode::NonRecursive).ok()?;
    }
    Some(Feedback { _watcher: w })
}
