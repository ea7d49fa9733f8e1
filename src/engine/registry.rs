//! Command handlers, registered against the schema's command nodes.
//!
//! Each room that answers commands exports a table of [`Entry`]s (command path, handler); the
//! crate root joins the tables into one [`Registry`] resolved against `xconf/schema.xconf`, so a
//! command without a handler, or a handler naming no command, is found by a test
//! (`Registry::unhandled`, `Registry::unknown`) instead of at run time.

use std::path::Path;

use super::reply::CommandResult;
use super::Context;
use crate::error::ShellError;
use crate::parse::ParamValue;
use crate::schema::{schema, NodeId, Tree};
use crate::store::{Config, Store};

/// One call of a command handler: what the engine knows, who asks, and the checked parameters.
pub struct Call<'a> {
    /// The certificate (and status) root.
    pub root: &'a Path,
    /// Where the configuration lives.
    pub store: &'a Store,
    /// Who is asking.
    pub ctx: &'a Context,
    /// The command's node in the schema's command tree.
    pub node: NodeId,
    /// The command's words: `Security Certificates Server Upload`.
    pub path: &'a str,
    /// Its result name: `SecurityCertificatesServerUploadResult`.
    pub name: &'a str,
    /// Parameters, already checked against the schema.
    pub params: &'a [ParamValue],
    /// The multi-line body (pasted PEM), if the command takes one.
    pub body: Option<String>,
    /// The batch's transaction: reads and writes of the configuration go there when present.
    pub tx: Option<&'a mut Config>,
}

/// A command handler.
pub type Handler = fn(Call<'_>) -> Result<CommandResult, ShellError>;

/// A handler registered for the command at `path` (its words, as in the schema).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub path: &'static str,
    pub run: Handler,
    /// The command changes the configuration (so, in a batch, it succeeds only once the batch's
    /// transaction is durable).
    pub writes_config: bool,
    /// Only a read-write role may run it, although it changes no configuration: it writes
    /// files where the caller says (a dump, a bundle) holding what the caller may not see.
    pub admin_only: bool,
}

impl Entry {
    pub const fn new(path: &'static str, run: Handler) -> Entry {
        Entry {
            path,
            run,
            writes_config: false,
            admin_only: false,
        }
    }

    /// The same entry, refused (and audited) for a read-only role.
    pub const fn admin_only(self) -> Entry {
        Entry {
            admin_only: true,
            ..self
        }
    }

    /// The same entry, marked as changing the configuration.
    pub const fn writing_config(self) -> Entry {
        Entry {
            writes_config: true,
            ..self
        }
    }
}

/// Handlers by command node.
#[derive(Debug)]
pub struct Registry {
    by_node: Vec<Option<Entry>>,
    unknown: Vec<&'static str>,
    duplicate: Vec<&'static str>,
}

impl Registry {
    /// Resolves the entries of `tables` against the process schema.
    pub fn new(tables: &[&[Entry]]) -> Registry {
        let tree = &schema().commands;
        let mut r = Registry {
            by_node: vec![None; tree.nodes.len()],
            unknown: Vec::new(),
            duplicate: Vec::new(),
        };
        for e in tables.iter().flat_map(|t| t.iter()) {
            match resolve(tree, e.path) {
                None => r.unknown.push(e.path),
                Some(n) if r.by_node[n].is_some() => r.duplicate.push(e.path),
                Some(n) => r.by_node[n] = Some(*e),
            }
        }
        r
    }

    /// The handler of the command at `node`.
    pub fn get(&self, node: NodeId) -> Option<&Entry> {
        self.by_node.get(node).and_then(Option::as_ref)
    }

    /// Commands of the schema that have no handler, as their words.
    pub fn unhandled(&self) -> Vec<String> {
        let tree = &schema().commands;
        (0..tree.nodes.len())
            .filter(|&n| tree.nodes[n].command.is_some() && self.get(n).is_none())
            .map(|n| words(tree, n))
            .collect()
    }

    /// Entries whose path names no command of the schema.
    pub fn unknown(&self) -> &[&'static str] {
        &self.unknown
    }

    /// Entries registered for a command that already had one (the first one wins).
    pub fn duplicate(&self) -> &[&'static str] {
        &self.duplicate
    }
}

fn words(tree: &Tree, node: NodeId) -> String {
    tree.ancestry(node)
        .iter()
        .map(|&n| tree.nodes[n].name.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command node named exactly by `path`'s words.
fn resolve(tree: &Tree, path: &str) -> Option<NodeId> {
    let mut at: Option<NodeId> = None;
    for w in path.split(' ') {
        let next = tree
            .children_of(at)
            .iter()
            .copied()
            .find(|&c| tree.nodes[c].name == w)?;
        at = Some(next);
    }
    at.filter(|&n| tree.nodes[n].command.is_some())
}
