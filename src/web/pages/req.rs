//! Requests the pages send to the engine, built from structured parts (command words and
//! parameter values, a configuration key and its value), never from a command line re-parsed,
//! so a value holding quotes or newlines stays one value.
//!
//! Until `engine::structured` lands this room checks parameters and values against the schema
//! itself (the same value spaces the parser uses).

use crate::engine::Request;
use crate::error::{Area, Code, ShellError};
use crate::parse::{Action, Key, ParamValue};
use crate::schema::{schema, Lookup, NodeId, Tree};

fn node_of(tree: &Tree, words: &[&str], area: Area) -> Result<NodeId, ShellError> {
    let mut at = None;
    for w in words {
        match tree.lookup(at, w) {
            Lookup::Found(id) => at = Some(id),
            _ => {
                return Err(
                    ShellError::new(Code::UnknownPath, 0, format!("no node '{w}'"))
                        .area(area)
                        .path(words.iter().map(|w| (*w).to_string()).collect()),
                )
            }
        }
    }
    at.ok_or_else(|| ShellError::new(Code::UnknownPath, 0, "empty path").area(area))
}

/// `xCommand <words>` with `params` (empty values are left out, as an empty form field means
/// "not given") and an optional body.
pub fn command(
    words: &str,
    params: &[(&str, String)],
    body: Option<String>,
) -> Result<Request, ShellError> {
    let tree = &schema().commands;
    let ws: Vec<&str> = words.split(' ').collect();
    let node = node_of(tree, &ws, Area::Command)?;
    let Some(spec) = tree.nodes[node].command.as_ref() else {
        return Err(ShellError::new(Code::UnknownPath, 0, "incomplete command").area(Area::Command));
    };
    let mut out = Vec::new();
    for (name, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        let Some(p) = spec.param(name) else {
            return Err(ShellError::new(
                Code::UnknownParam,
                0,
                format!("xCommand {words} has no parameter '{name}'"),
            )
            .area(Area::Command));
        };
        let v = p.space.validate(value).map_err(|()| {
            ShellError::new(Code::IllegalParam, 0, format!("illegal value for {name}"))
                .expected(p.space.to_string())
                .area(Area::Command)
        })?;
        out.push(ParamValue {
            name: p.name.clone(),
            index: None,
            value: v,
            col: 0,
        });
    }
    for p in spec.params.iter().filter(|p| p.required) {
        if !out.iter().any(|v| v.name == p.name) {
            return Err(ShellError::new(
                Code::MissingParam,
                0,
                format!("missing required parameter {}", p.name),
            )
            .expected(p.space.to_string())
            .area(Area::Command));
        }
    }
    Ok(Request {
        action: Action::Command { node, params: out },
        body,
    })
}

/// `xConfiguration <key>: <value>`, the value checked against the leaf's value space.
pub fn config_set(key: &Key, value: &str) -> Result<Request, ShellError> {
    let tree = &schema().config;
    let words = key.words(tree);
    let path = || words.split(' ').map(str::to_string).collect::<Vec<_>>();
    let Some(leaf) = tree.nodes[key.leaf].leaf.as_ref() else {
        return Err(ShellError::new(Code::NotALeaf, 0, "not a leaf")
            .area(Area::Configuration)
            .path(path()));
    };
    let v = leaf.space.validate(value).map_err(|()| {
        ShellError::new(Code::IllegalValue, 0, format!("illegal value for {words}"))
            .expected(leaf.space.to_string())
            .area(Area::Configuration)
            .path(path())
    })?;
    Ok(Request {
        action: Action::ConfigSet {
            key: key.clone(),
            value: v,
            col: 0,
        },
        body: None,
    })
}

/// `xStatus <words>` (every instance of an instance node on the way).
pub fn status_get(words: &str) -> Result<Request, ShellError> {
    let tree = &schema().status;
    let mut steps = Vec::new();
    let mut at = None;
    for w in words.split(' ') {
        let id = node_of_child(tree, at, w, Area::Status)?;
        steps.push(crate::parse::Step {
            node: id,
            instance: None,
        });
        at = Some(id);
    }
    Ok(Request {
        action: Action::StatusGet(crate::parse::Addr { steps }),
        body: None,
    })
}

fn node_of_child(
    tree: &Tree,
    at: Option<NodeId>,
    w: &str,
    area: Area,
) -> Result<NodeId, ShellError> {
    match tree.lookup(at, w) {
        Lookup::Found(id) => Ok(id),
        _ => Err(ShellError::new(Code::UnknownPath, 0, format!("no node '{w}'")).area(area)),
    }
}
