//! The engine's requests, one function each: reads of configuration and status, a set, the
//! change history, `xGetXML`, and a command through its registered handler.

use super::registry::Call;
use super::reply::{command_result_name, Answer, CommandResult, DocKind, Item, ResultStatus};
use super::{view, Context, Engine};
use crate::error::{Area, Code, ShellError};
use crate::parse::{Addr, Key, ParamValue};
use crate::schema::{schema, NodeId};
use crate::store::Config;

fn store_error(e: impl std::fmt::Display) -> ShellError {
    ShellError::new(Code::Store, 0, e.to_string())
}

/// The configuration a read sees: the batch's transaction, or what the store holds.
enum Seen<'a> {
    Tx(&'a Config),
    Stored(std::sync::Arc<Config>),
}

impl std::ops::Deref for Seen<'_> {
    type Target = Config;
    fn deref(&self) -> &Config {
        match self {
            Seen::Tx(c) => c,
            Seen::Stored(c) => c,
        }
    }
}

fn seen<'a>(
    tx: Option<&'a mut Config>,
    stored: impl FnOnce() -> Result<std::sync::Arc<Config>, ShellError>,
) -> Result<Seen<'a>, ShellError> {
    Ok(match tx {
        Some(c) => Seen::Tx(c),
        None => Seen::Stored(stored()?),
    })
}

pub(super) fn config_get(
    engine: &Engine,
    addr: &Addr,
    tx: Option<&mut Config>,
) -> Result<Answer, ShellError> {
    let cfg = seen(tx, || engine.store.snapshot().map_err(store_error))?;
    let cfg: &Config = &cfg;
    let mut notes = view::deprecation_notes(addr);
    // In a cluster that did not answer: these values are this peer's cache, maybe stale.
    if let Some(why) = engine.store.stale() {
        notes.push(format!(
            "stale: this peer's cached configuration (generation {}); {why}",
            cfg.generation
        ));
    }
    Ok(Answer::Document {
        kind: DocKind::Configuration,
        items: view::config_read_items(cfg, addr),
        notes,
    })
}

pub(super) fn status_get(
    engine: &Engine,
    addr: &Addr,
    tx: Option<&mut Config>,
) -> Result<Answer, ShellError> {
    let cfg = seen(tx, || Ok(engine.store.globals().unwrap_or_default()))?;
    let cfg: &Config = &cfg;
    let items = view::status_items(&engine.root, cfg, addr);
    if items.is_empty() && !addr.steps.is_empty() {
        let words = addr.words(&schema().status);
        return Err(ShellError::new(
            Code::UnknownPath,
            0,
            "no status is available at this address yet",
        )
        .expected("a path with values; try xStatus ?")
        .area(Area::Status)
        .path(words));
    }
    Ok(Answer::Document {
        kind: DocKind::Status,
        items,
        notes: Vec::new(),
    })
}

/// The checks a set passes before it touches the store: a leaf, a role that may write (a refusal
/// is audited), a leaf that is not read-only.
fn check_set(
    engine: &Engine,
    ctx: &Context,
    key: &Key,
    value: &str,
    col: usize,
) -> Result<(), ShellError> {
    let tree = &schema().config;
    let words = key.words(tree);
    let path = || words.split(' ').map(str::to_string).collect::<Vec<_>>();
    let Some(leaf) = tree.nodes[key.leaf].leaf.as_ref() else {
        return Err(ShellError::new(Code::NotALeaf, col, "not a leaf")
            .area(Area::Configuration)
            .path(path()));
    };
    if ctx.read_only() {
        let _ = engine
            .store
            .audit_refused(&ctx.who, &words, value, "read-only role");
        return Err(ShellError::new(
            Code::PermissionDenied,
            col,
            format!(
                "user '{}' has a read-only role; {} was not changed",
                ctx.who.user, words
            ),
        )
        .expected("membership of the admin group to change configuration")
        .area(Area::Configuration)
        .path(path()));
    }
    if leaf.read_only {
        return Err(
            ShellError::new(Code::ReadOnly, col, format!("{words} is read-only"))
                .area(Area::Configuration)
                .path(path()),
        );
    }
    Ok(())
}

/// Applies a set to `cfg`: a deprecated leaf keeps its value.
fn apply_set(cfg: &mut Config, key: &Key, value: &str, col: usize) -> Result<(), ShellError> {
    let tree = &schema().config;
    if let Some(d) = tree.nodes[key.leaf]
        .leaf
        .as_ref()
        .and_then(|l| l.deprecated.as_ref())
    {
        if cfg.get(key) != value {
            let words = key.words(tree);
            let path = words.split(' ').map(str::to_string).collect();
            return Err(ShellError::new(
                Code::Deprecated,
                col,
                format!("{words} is deprecated and cannot be set: {d}"),
            )
            .expected("xCommand Security Certificates Server Upload ... AlsoAsClient: True")
            .area(Area::Configuration)
            .path(path));
        }
    }
    cfg.set(key.clone(), value.to_string());
    Ok(())
}

pub(super) fn config_set(
    engine: &Engine,
    ctx: &Context,
    key: Key,
    value: String,
    col: usize,
    tx: Option<&mut Config>,
) -> Result<Answer, ShellError> {
    check_set(engine, ctx, &key, &value, col)?;
    match tx {
        Some(cfg) => apply_set(cfg, &key, &value, col)?,
        None => {
            let (res, _, _) = engine
                .transact(ctx, |cfg| apply_set(cfg, &key, &value, col))
                .map_err(|e| {
                    let words = key.words(&schema().config);
                    ShellError::new(Code::Store, col, e.to_string())
                        .area(Area::Configuration)
                        .path(words.split(' ').map(str::to_string).collect())
                })?;
            res?;
        }
    }
    Ok(Answer::Done)
}

pub(super) fn history(engine: &Engine, n: Option<usize>) -> Result<Answer, ShellError> {
    let recs = engine.store.history(n.unwrap_or(20)).map_err(store_error)?;
    let fields = recs
        .iter()
        .zip(1u32..)
        .map(|(r, i)| {
            Item::instance(
                "Change",
                i,
                vec![
                    Item::leaf("Time", r.time.clone()),
                    Item::leaf("Generation", r.generation.to_string()),
                    Item::leaf("User", r.user.clone()),
                    Item::leaf("From", r.from.clone()),
                    Item::leaf("Session", r.session.clone()),
                    Item::leaf("Path", r.path.clone()),
                    Item::leaf("Old", r.old.clone()),
                    Item::leaf("New", r.new.clone()),
                    Item::leaf("Result", r.result.clone()),
                ],
            )
        })
        .collect();
    Ok(Answer::Result(CommandResult {
        name: "HistoryResult".into(),
        status: ResultStatus::Ok,
        fields,
    }))
}

pub(super) fn get_xml(
    engine: &Engine,
    path: &str,
    tx: Option<&mut Config>,
) -> Result<Answer, ShellError> {
    let cfg = seen(tx, || Ok(engine.store.snapshot().unwrap_or_default()))?;
    let cfg: &Config = &cfg;
    view::get_xml(&engine.root, cfg, path).map(Answer::Xml)
}

/// Runs the handler registered for the command at `node`.
pub(super) fn command(
    engine: &Engine,
    ctx: &Context,
    node: NodeId,
    params: &[ParamValue],
    body: Option<String>,
    tx: Option<&mut Config>,
) -> Result<CommandResult, ShellError> {
    let tree = &schema().commands;
    let words: Vec<&str> = tree
        .ancestry(node)
        .iter()
        .map(|&n| tree.nodes[n].name.as_str())
        .collect();
    let path = words.join(" ");
    let name = command_result_name(tree, node);
    let Some(entry) = engine.handlers.get(node) else {
        // The registry test holds every command of the schema to a handler; this is the
        // answer if a schema is loaded that the build does not know.
        return Err(ShellError::new(
            Code::CommandFailed,
            0,
            format!("xCommand {path} has no handler"),
        )
        .area(Area::Command)
        .path(words.iter().map(|w| (*w).to_string()).collect()));
    };
    if entry.admin_only && ctx.read_only() {
        let _ =
            engine
                .store
                .audit_refused(&ctx.who, &format!("xCommand {path}"), "", "read-only role");
        return Err(ShellError::new(
            Code::PermissionDenied,
            0,
            format!(
                "user '{}' has a read-only role; xCommand {path} is for the admin role",
                ctx.who.user
            ),
        )
        .expected("membership of the admin group")
        .area(Area::Command)
        .path(words.iter().map(|w| (*w).to_string()).collect()));
    }
    (entry.run)(Call {
        root: &engine.root,
        store: &engine.store,
        ctx,
        node,
        path: &path,
        name: &name,
        params,
        body,
        tx,
    })
}
