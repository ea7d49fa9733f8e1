//! `xCommand` handlers of the engine layer, registered by command path in [`HANDLERS`] (the
//! certificate commands in [`certs::HANDLERS`]). Parameters arrive already checked against the
//! schema; handlers get a [`Call`] (the engine's store and root, who asks) and return a
//! [`CommandResult`] or a [`ShellError`]. Commands that write rendered documents (dumps, the
//! diagnostic bundle) are registered by their own rooms above the renderers.

// Input from a user, a file or a peer is never unwrapped here: it gets an error value.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod accounts;
pub mod certs;
pub mod cluster;
pub mod cluster_force;
pub mod zones;

use crate::engine::{Call, CommandResult, Entry, Item, ResultStatus};
use crate::error::{Area, Code, ShellError};
use crate::parse::{parse_line, Action, Addr, Key, ParamValue, Request};
use crate::schema::schema;
use crate::store::Config;

/// The commands answered here (with the certificate commands).
pub const HANDLERS: &[Entry] = &[
    Entry::new(
        "Cluster ForceConfigUpdate",
        cluster_force::force_config_update,
    ),
    Entry::new("Configuration Reset", configuration_reset).writing_config(),
    Entry::new("ZoneAdd", zones::zone_add).writing_config(),
    Entry::new("ZoneDelete", zones::zone_delete).writing_config(),
    Entry::new("Cluster Join", cluster::cluster_join).admin_only(),
    Entry::new("Cluster Leave", cluster::cluster_leave).admin_only(),
];

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

/// `xCommand Configuration Reset Path: ...`: the leaf, or every leaf of the instance (or of a
/// part of one: `Zones Zone 3`, `Zones Zone 3 Neighbor`), goes back to its default.
fn configuration_reset(call: Call) -> Result<CommandResult, ShellError> {
    let path = call.path;
    require_write(&call, path)?;
    let given = call.params.iter().find(|p| p.name == "Path");
    let target = given.map(|p| p.value.clone()).unwrap_or_default();
    let col = given.map(|p| p.col).unwrap_or(0);
    let addr = reset_addr(path, &target, col)?;
    let reset = |cfg: &mut Config| {
        cfg.values.retain(|k, _| !addr_holds(&addr, k));
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

/// The address `target` names (as written after `xConfiguration`): a leaf, or a node inside a
/// numbered instance. A parse error points into the user's line: `col` is where `target` starts.
fn reset_addr(path: &str, target: &str, col: usize) -> Result<Addr, ShellError> {
    const VERB: &str = "xConfiguration ";
    let tree = &schema().config;
    let probe = format!("{VERB}{target}");
    let addr = match parse_line(&probe) {
        Ok(Request {
            action: Action::ConfigGet(addr),
            ..
        }) => addr,
        Ok(_) => return Err(not_resettable(path, target, col)),
        Err(e) => {
            // The probe's column, moved from after `xConfiguration ` to where the value starts.
            let column = col + e.column.saturating_sub(VERB.len() + 1);
            return Err(ShellError {
                area: Area::Command,
                column,
                ..e
            });
        }
    };
    let leaf = addr.node().is_some_and(|n| tree.nodes[n].leaf.is_some());
    let in_instance = addr.steps.iter().any(|s| s.instance.is_some());
    if addr.steps.is_empty() || !(leaf || in_instance) {
        return Err(not_resettable(path, target, col));
    }
    Ok(addr)
}

/// `col`: where the path starts in the user's line.
fn not_resettable(path: &str, target: &str, col: usize) -> ShellError {
    ShellError {
        column: col,
        ..failed(
            path,
            format!("'{target}' is neither a configuration leaf nor an instance"),
        )
        .expected("a leaf (SIP TLS Port) or an instance (Zones Zone 3)")
    }
}

/// Whether the stored value `k` lies at or under `addr`.
fn addr_holds(addr: &Addr, k: &Key) -> bool {
    let tree = &schema().config;
    let chain = tree.ancestry(k.leaf);
    addr.steps.iter().all(|s| {
        let Some(at) = chain.iter().position(|&n| n == s.node) else {
            return false;
        };
        match s.instance {
            None => true,
            Some(n) => {
                // The instance of `k` at this node: its place among the instance nodes above.
                let nth = chain[..=at]
                    .iter()
                    .filter(|&&id| tree.nodes[id].instances.is_some())
                    .count();
                k.inst.get(nth.wrapping_sub(1)) == Some(&n)
            }
        }
    })
}
