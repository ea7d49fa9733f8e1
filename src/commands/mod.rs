//! `xCommand` handlers, dispatched by the command's canonical path. Parameters arrive already
//! checked against the schema; handlers return a [`CommandResult`] or a [`ShellError`].

pub mod certs;

use std::path::PathBuf;

use crate::error::{Area, Code, ShellError};
use crate::parse::{parse_line, Action, ParamValue};
use crate::render::{CommandResult, Item, ResultStatus};
use crate::schema::{schema, NodeId};
use crate::shell::Session;
use crate::store::Config;

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

/// Refuses a write for a read-only session, with an audit record of the attempt.
pub fn require_write(session: &Session, path: &str) -> Result<(), ShellError> {
    if session.read_only {
        let _ = session.store.audit_refused(
            &session.who,
            &format!("xCommand {path}"),
            "",
            "read-only role",
        );
        return Err(ShellError::new(
            Code::PermissionDenied,
            0,
            format!(
                "user '{}' has a read-only role; xCommand {path} changes the system",
                session.who.user
            ),
        )
        .expected("membership of the admin group")
        .area(Area::Command)
        .path(path.split(' ').map(str::to_string).collect()));
    }
    Ok(())
}

/// Whether the command at `node` changes the configuration (inside a batch transaction its
/// success holds only once that transaction is durable).
pub fn writes_config(node: NodeId) -> bool {
    let tree = &schema().commands;
    let words: Vec<&str> = tree
        .ancestry(node)
        .iter()
        .map(|&n| tree.nodes[n].name.as_str())
        .collect();
    words == ["Configuration", "Reset"]
}

/// The configuration a command sees: the batch's transaction, or what is stored.
fn current_config(
    session: &Session,
    tx: Option<&mut Config>,
    path: &str,
) -> Result<Config, ShellError> {
    match tx {
        Some(c) => Ok(c.clone()),
        None => session
            .store
            .load()
            .map_err(|e| failed(path, e.to_string())),
    }
}

/// Runs the command at `node`.
pub fn run(
    session: &mut Session,
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
    let name = crate::render::command_result_name(tree, node);
    match path.as_str() {
        "SystemUnit Dump" => {
            let folder = PathBuf::from(param(params, "Folder").unwrap_or("."));
            let cfg = current_config(session, tx, &path)?;
            let host = crate::status::host_name(&cfg);
            let files = crate::dump::write_all(
                &session.root,
                &cfg,
                &folder,
                &host,
                &crate::dump::file_timestamp(),
            )
            .map_err(|e| {
                failed(
                    &path,
                    format!("cannot write dumps into {}: {e}", folder.display()),
                )
            })?;
            Ok(ok(
                &name,
                files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        Item::instance(
                            "File",
                            i as u32 + 1,
                            vec![Item::leaf("Path", f.display().to_string())],
                        )
                    })
                    .collect(),
            ))
        }
        "Configuration Reset" => {
            require_write(session, &path)?;
            let target = param(params, "Path").unwrap_or_default().to_string();
            // Reuse the parser: the path must name a leaf, given as after xConfiguration.
            let probe = format!("xConfiguration {target}: x");
            let key = match parse_line(&probe) {
                Ok(r) => match r.action {
                    Action::ConfigSet { key, .. } => key,
                    _ => {
                        return Err(failed(
                            &path,
                            format!("'{target}' is not a configuration leaf"),
                        ))
                    }
                },
                Err(e) if e.code == Code::IllegalValue => match parse_key(&target) {
                    Some(k) => k,
                    None => {
                        return Err(failed(
                            &path,
                            format!("'{target}' is not a configuration leaf"),
                        ))
                    }
                },
                Err(e) => {
                    return Err(ShellError {
                        area: Area::Command,
                        ..e
                    })
                }
            };
            let reset = |cfg: &mut Config| {
                cfg.values.remove(&key);
            };
            match tx {
                Some(c) => reset(c),
                None => {
                    session
                        .store
                        .transact(&session.who.clone(), reset)
                        .map_err(|e| failed(&path, e.to_string()))?;
                }
            }
            Ok(ok(&name, vec![]))
        }
        p if p.starts_with("Security Certificates") => {
            certs::run(session, &path, &name, params, body)
        }
        "DiagnosticLogging Collect" => {
            let folder = PathBuf::from(
                param(params, "Folder")
                    .map(str::to_string)
                    .unwrap_or_else(|| session.root.join("diagnostics").display().to_string()),
            );
            let cfg = current_config(session, tx, &path)?;
            let host = crate::status::host_name(&cfg);
            let (file, names) = crate::diag::collect(
                &session.root,
                &cfg,
                &folder,
                &host,
                &crate::dump::file_timestamp(),
            )
            .map_err(|e| {
                failed(
                    &path,
                    format!("cannot write the bundle into {}: {e}", folder.display()),
                )
            })?;
            let mut fields = vec![Item::leaf("Bundle", file.display().to_string())];
            fields.extend(
                names.into_iter().enumerate().map(|(i, n)| {
                    Item::instance("File", i as u32 + 1, vec![Item::leaf("Name", n)])
                }),
            );
            Ok(ok(&name, fields))
        }
        _ => Err(failed(&path, format!("xCommand {path} has no handler"))),
    }
}

fn parse_key(target: &str) -> Option<crate::parse::Key> {
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
    let k = crate::status::key_for(tree, target)?;
    Some(k)
}
