//! `xFeedback`: a session's registrations and the watcher that delivers changes. The watcher
//! (started at the first registration, so plain sessions stay cheap) is the engine's
//! (`engine::changes`: `notify` on `ROOT/config/` and `ROOT/status/`, the diff against the last
//! values seen); this room filters the changes by the session's registrations and writes one
//! document per change per session — terminal `*c`/`*s` lines ending in `** end`, or one JSON/XML
//! document without a result tag — between replies, under the session's output lock.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::engine::changes::{self, filter, Changes};
use crate::engine::view::items_of;
use crate::parse::OutputMode;
use crate::render::{json, terminal, xml, DocKind, Item};
use crate::schema::schema;

use super::output;

/// What the watcher needs from the session: the registrations and the output mode.
#[derive(Debug, Default)]
pub struct Registrations {
    pub paths: Vec<String>,
    pub mode: Option<OutputMode>,
}

/// A running watcher; dropped with the session.
pub struct Feedback {
    _watch: changes::Watch,
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

/// Starts the watcher for `root`, delivering to the session's output.
pub fn start(root: &Path, regs: Arc<Mutex<Registrations>>) -> Option<Feedback> {
    let deliver = move |ch: Changes| {
        let (paths, mode) = match regs.lock() {
            Ok(r) => (r.paths.clone(), r.mode.unwrap_or(OutputMode::Terminal)),
            Err(_) => return,
        };
        let mut docs = Vec::new();
        let tree = &schema().config;
        let mine = filter(tree, "Configuration", &ch.config, &paths);
        if !mine.is_empty() {
            docs.push(render_doc(
                mode,
                DocKind::Configuration,
                &items_of(tree, &mine),
            ));
        }
        let tree = &schema().status;
        let mine = filter(tree, "Status", &ch.status, &paths);
        if !mine.is_empty() {
            docs.push(render_doc(mode, DocKind::Status, &items_of(tree, &mine)));
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
    Some(Feedback {
        _watch: changes::watch(root, deliver)?,
    })
}
