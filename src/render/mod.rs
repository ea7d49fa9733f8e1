//! Renderers: configuration, status, command results, help and errors in the three output modes.
//!
//! Everything is first built into a small document tree ([`Item`]) from the schema and the values,
//! then written by the terminal, XML or JSON writer. The writers know formats, not the schema, and
//! nothing here touches disk. Output uses `\n` only (a PTY's driver adds `\r`).

pub mod json;
pub mod terminal;
pub mod xml;

use crate::error::{Area, Code, ShellError};
use crate::parse::{Addr, Key, OutputMode};
use crate::schema::{NodeId, Tree};
use crate::store::config::instances_in;

/// A node of an output document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Leaf {
        name: String,
        value: String,
        space_ref: Option<String>,
    },
    Node {
        name: String,
        item: Option<u32>,
        children: Vec<Item>,
    },
}

impl Item {
    pub fn leaf(name: impl Into<String>, value: impl Into<String>) -> Item {
        Item::Leaf {
            name: name.into(),
            value: value.into(),
            space_ref: None,
        }
    }

    pub fn node(name: impl Into<String>, children: Vec<Item>) -> Item {
        Item::Node {
            name: name.into(),
            item: None,
            children,
        }
    }

    pub fn instance(name: impl Into<String>, n: u32, children: Vec<Item>) -> Item {
        Item::Node {
            name: name.into(),
            item: Some(n),
            children,
        }
    }
}

/// Which document: `Configuration`, `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Configuration,
    Status,
}

impl DocKind {
    pub fn root(self) -> &'static str {
        match self {
            DocKind::Configuration => "Configuration",
            DocKind::Status => "Status",
        }
    }
}

/// Status of a command result, as the product spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultStatus {
    Ok,
    Error,
    ParameterError,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Ok => "OK",
            ResultStatus::Error => "Error",
            ResultStatus::ParameterError => "ParameterError",
        }
    }
}

/// A command's result: `<Name>Result (status=...)` with fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub name: String,
    pub status: ResultStatus,
    pub fields: Vec<Item>,
}

/// Quotes a value the way the product prints it: `"..."` with `\"` and `\\` escaped.
pub fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    quote_into(v, &mut s);
    s
}

/// Appends `v` quoted (as [`quote`]) to `s`; the rule is the schema room's.
pub use crate::schema::text::quote_into;

/// A rough size in bytes of `items` written out, to reserve output buffers once (a dump of
/// 1,000 zones is half a megabyte; growing a string to that copies it many times).
pub fn size_hint(items: &[Item]) -> usize {
    items
        .iter()
        .map(|it| match it {
            Item::Leaf { name, value, .. } => 2 * name.len() + value.len() + 48,
            Item::Node { name, children, .. } => 2 * name.len() + 32 + size_hint(children),
        })
        .sum()
}

/// Builds the document for `addr` in `tree`.
///
/// `get` returns the value of a leaf (None: not present). `defaults` says whether absent
/// instances named explicitly in `addr` are shown (configuration) or not (status).
pub fn build<'a>(
    tree: &Tree,
    keys: &dyn Fn() -> Box<dyn Iterator<Item = &'a Key> + 'a>,
    get: &dyn Fn(&Key) -> Option<String>,
    addr: &Addr,
    with_space_refs: bool,
) -> Vec<Item> {
    let ctx = Ctx {
        tree,
        keys,
        get,
        with_space_refs,
        type_names: Default::default(),
    };
    let roots: Vec<NodeId> = match addr.steps.first() {
        Some(s) => vec![s.node],
        None => tree.roots.clone(),
    };
    let mut out = Vec::new();
    for r in roots {
        ctx.node(r, addr, 0, &mut Vec::new(), &mut out);
    }
    out
}

struct Ctx<'t, 'a> {
    tree: &'t Tree,
    keys: &'t dyn Fn() -> Box<dyn Iterator<Item = &'a Key> + 'a>,
    get: &'t dyn Fn(&Key) -> Option<String>,
    with_space_refs: bool,
    /// `valueSpaceRef` names by leaf node, computed once per document (1,000 zones repeat them).
    type_names: std::cell::RefCell<std::collections::HashMap<NodeId, String>>,
}

impl Ctx<'_, '_> {
    /// Emits node `id` (at depth `depth` of `addr`) into `out`.
    fn node(
        &self,
        id: NodeId,
        addr: &Addr,
        depth: usize,
        inst: &mut Vec<u32>,
        out: &mut Vec<Item>,
    ) {
        let n = &self.tree.nodes[id];
        let step = addr.steps.get(depth).filter(|s| s.node == id);
        if let Some(leaf) = &n.leaf {
            let key = Key {
                leaf: id,
                inst: inst.clone(),
            };
            if let Some(v) = (self.get)(&key) {
                let space_ref = self.with_space_refs.then(|| {
                    self.type_names
                        .borrow_mut()
                        .entry(id)
                        .or_insert_with(|| leaf.space.type_name())
                        .clone()
                });
                out.push(Item::Leaf {
                    name: n.name.clone(),
                    value: v,
                    space_ref,
                });
            }
            return;
        }
        let children_for = |ctx: &Self, inst: &mut Vec<u32>| {
            let mut kids = Vec::with_capacity(n.children.len());
            let next = if step.is_some() {
                addr.steps.get(depth + 1)
            } else {
                None
            };
            for &c in &n.children {
                if let Some(ns) = next {
                    if ns.node != c {
                        continue;
                    }
                }
                let sub_depth = if next.is_some() {
                    depth + 1
                } else {
                    usize::MAX
                };
                ctx.node(c, addr, sub_depth, inst, &mut kids);
            }
            kids
        };
        if n.instances.is_some() {
            let list = match step.and_then(|s| s.instance) {
                Some(k) => vec![k],
                None => instances_in(self.tree, (self.keys)(), id, inst),
            };
            for k in list {
                inst.push(k);
                let kids = children_for(self, inst);
                inst.pop();
                if !kids.is_empty() {
                    out.push(Item::instance(n.name.clone(), k, kids));
                }
            }
        } else {
            let kids = children_for(self, inst);
            if !kids.is_empty() {
                out.push(Item::node(n.name.clone(), kids));
            }
        }
    }
}

/// Renders an error in the given mode, with the result tag.
pub fn error(
    mode: OutputMode,
    e: &ShellError,
    result_id: Option<&str>,
    command_name: Option<&str>,
) -> String {
    // A parameter error is found while parsing, before the command is known to the session; its
    // path names the command, so the reply still carries `<Name>Result` (xapi.md).
    let fallback = match e.code {
        Code::UnknownParam | Code::MissingParam | Code::IllegalParam | Code::MissingValue
            if command_name.is_none() && e.area == Area::Command && !e.path.is_empty() =>
        {
            Some(format!("{}Result", e.path.concat()))
        }
        _ => None,
    };
    let command_name = command_name.or(fallback.as_deref());
    match mode {
        OutputMode::Terminal => terminal::error(e, result_id, command_name),
        OutputMode::Xml => xml::error(e, result_id, command_name),
        OutputMode::Json => json::error(e, result_id, command_name),
    }
}

/// The `<Name>Result` name of a command node: its path words joined.
pub fn command_result_name(tree: &Tree, node: NodeId) -> String {
    let mut s: String = tree
        .ancestry(node)
        .iter()
        .map(|&n| tree.nodes[n].name.as_str())
        .collect();
    s.push_str("Result");
    s
}
