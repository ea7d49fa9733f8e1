//! `xCommand` handlers of the engine layer, registered by command path in [`HANDLERS`] (the
//! certificate commands in [`certs::HANDLERS`]). Parameters arrive already checked against the
//! schema; handlers get a [`Call`] (the engine's store and root, who asks) and return a
//! [`CommandResult`] or a [`ShellError`]. Commands that write rendered documents (dumps, the
//! diagnostic bundle) are registered by their own rooms above the renderers.

// Input from a user, a file or a peer is never unwrapped here: it gets an error value.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod certs;

use crate::engine::{Call, CommandResult, Entry, Item, ResultStatus};
use crate::error::{Area, Code, ShellError};
use crate::parse::{parse_line, Action, Key, ParamValue};
use crate::schema::schema;
use crate::store::Config;

/// The commands answered here (with the certificate commands).
pub const HANDLERS: &[Entry] =
    &[Entry::new("Configuration Reset", configuration_reset).writing_config()];

/// The first value of parameter `name`.
pub fn param<'a>(params: &'a [ParamValue], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.as_str())
}

/// A successful result named after the command.
pub fn ok(name: &str, fields: Vec<Item>) -> CommandResult {
    CommandResult {
        name: name.to_string(),
        status: ResultStatus::Ok,
        fields,
    }
}

/// A command failure with a reason, as `(status=Error)`.
pub fn failed(path: &str, message: impl Into<String>) -> ShellError {
    ShellError::new(Code::CommandFailed, 0, message)
        .area(Area::Command)
        .path(path.split(' ').map(str::to_string).collect())
}

/// Refuses a write for a read-only caller, with an audit record of the attempt.
pub fn require_write(call: &Call, path: &str) -> Result<(), ShellError> {
    if call.ctx.read_only() {
        let _ = call.store.audit_refused(
            &call.ctx.who,
            &format!("xCommand {path}"),
            "",
            "read-only role",
        );
        return Err(ShellError::new(
            Code::PermissionDenied,
            0,
            format!(
                "user '{}' has a read-only role; xCommand {path} changes the system",
                call.ctx.who.user
            ),
        )
        .expected("membership of the admin group")
        .area(Area::Command)
        .path(path.split(' ').map(str::to_string).collect()));
    }
    Ok(())
}

/// The configuration a command sees: the batch's transaction, or what is stored.
pub fn current_config(call: &Call) -> Result<Config, ShellError> {
    match &call.tx {
        Some(c) => Ok((*c).clone()),
        None => call
            .store
            .load()
            .map_err(|e| failed(call.path, e.to_string())),
    }
}

/// `xCommand Configuration Reset Path: ...`: the leaf goes back to its default.
fn configuration_reset(call: Call) -> Result<CommandResult, ShellError> {
    let path = call.path;
    require_write(&call, path)?;
    let target = param(call.params, "Path").unwrap_or_default().to_string();
    let key = reset_key(path, &target)?;
    let reset = |cfg: &mut Config| {
        cfg.values.remove(&key);
    };
    match call.tx {
        Some(c) => reset(c),
        None => {
            call.store
                .transact(&call.ctx.who, reset)
                .map_err(|e| failed(path, e.to_string()))?;
        }
    }
    Ok(ok(call.name, vec![]))
}

/// The leaf `target` names (given as after `xConfiguration`).
fn reset_key(path: &str, target: &str) -> Result<Key, ShellError> {
    let not_a_leaf = || failed(path, format!("'{target}' is not a configuration leaf"));
    // Reuse the parser: the path must name a leaf.
    let probe = format!("xConfiguration {target}: x");
    match parse_line(&probe) {
        Ok(r) => match r.action {
            Action::ConfigSet { key, .. } => Ok(key),
            _ => Err(not_a_leaf()),
        },
        Err(e) if e.code == Code::IllegalValue => parse_key(target).ok_or_else(not_a_leaf),
        Err(e) => Err(ShellError {
            area: Area::Command,
            ..e
        }),
    }
}

fn parse_key(target: &str) -> Option<Key> {
    let tree = &schema().config;
    let leaf_default = |line: &str| match parse_line(line) {
        Ok(r) => match r.action {
            Action::ConfigSet { key, .. } => Some(key),
            _ => None,
        },
        Err(_) => None,
    };
    // Try the leaf's own default, which is always valid.
    let mut words: Vec<&str> = target.split_whitespace().collect();
    let last = words.pop()?;
    let probe = format!("xConfiguration {} {last}: \"\"", words.join(" "));
    if let Some(k) = leaf_default(&probe) {
        return Some(k);
    }
    crate::status::key_for(tree, target)
}
