//! What a read shows: the configuration and status documents for an address (built from the
//! schema and the values), the deprecation notes of a read, and the documents of `xGetXML`.
//! Shared by replies, feedback, dumps and the diagnostic bundle; no output format is known here.

use std::path::Path;

use super::reply::{DocKind, Item};
use crate::error::{Area, Code, ShellError};
use crate::parse::{Addr, Key, Step};
use crate::schema::{schema, Lookup, NodeId, Tree};
use crate::store::config::instances_in;
use crate::store::Config;

/// Items of the configuration at `addr`: every leaf with its value or default; instances that
/// hold a stored value, plus an instance named in `addr`. `refs` adds each leaf's
/// `valueSpaceRef` (the XML documents carry it).
pub fn config_items(cfg: &Config, addr: &Addr, refs: bool) -> Vec<Item> {
    let keys = || -> Box<dyn Iterator<Item = &Key> + '_> { Box::new(cfg.values.keys()) };
    let get = |k: &Key| Some(cfg.get(k).to_string());
    build(&schema().config, &keys, &get, addr, refs)
}

/// What `xConfiguration ...` shows: [`config_items`], but a sub-tree named after a value of its
/// instance's `Type` leaf (`Zones Zone 1 Neighbor`) only under the type it names, as the product
/// shows a zone; a sub-tree named in `addr` is always shown. Dumps keep every stored value.
pub fn config_read_items(cfg: &Config, addr: &Addr) -> Vec<Item> {
    let keys = || -> Box<dyn Iterator<Item = &Key> + '_> { Box::new(cfg.values.keys()) };
    let get = |k: &Key| Some(cfg.get(k).to_string());
    let mut ctx = Ctx::new(&schema().config, &keys, &get, true);
    ctx.by_type = true;
    ctx.emit(addr)
}

/// Items of the status at `addr`.
pub fn status_items(root: &Path, cfg: &Config, addr: &Addr) -> Vec<Item> {
    let values = crate::status::collect_at(root, cfg, addr.steps.first().map(|s| s.node));
    let keys = || -> Box<dyn Iterator<Item = &Key> + '_> { Box::new(values.keys()) };
    let get = |k: &Key| values.get(k).cloned();
    build(&schema().status, &keys, &get, addr, false)
}

/// Items of `values` (a change set, for feedback) in `tree`.
pub fn items_of(tree: &Tree, values: &std::collections::BTreeMap<Key, String>) -> Vec<Item> {
    let keys = || -> Box<dyn Iterator<Item = &Key> + '_> { Box::new(values.keys()) };
    let get = |k: &Key| values.get(k).cloned();
    build(tree, &keys, &get, &Addr::default(), false)
}

/// One note per deprecated leaf at or under `addr`.
pub fn deprecation_notes(addr: &Addr) -> Vec<String> {
    let tree = &schema().config;
    let Some(node) = addr.node() else {
        return Vec::new();
    };
    let mut leaves = Vec::new();
    tree.leaves_under(node, &mut leaves);
    let mut out = Vec::new();
    for l in leaves {
        if let Some(d) = tree.nodes[l]
            .leaf
            .as_ref()
            .and_then(|x| x.deprecated.as_ref())
        {
            let words: Vec<&str> = tree
                .ancestry(l)
                .iter()
                .map(|&n| tree.nodes[n].name.as_str())
                .collect();
            out.push(format!(
                "xConfiguration {} is deprecated: {d}",
                words.join(" ")
            ));
        }
    }
    out
}

/// `xGetXML /Configuration/SIP` or `/Status/SystemUnit`: the documents of that subtree (both
/// whole documents for `/`).
pub fn get_xml(
    root: &Path,
    cfg: &Config,
    path: &str,
) -> Result<Vec<(DocKind, Vec<Item>)>, ShellError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(vec![
            (
                DocKind::Configuration,
                config_items(cfg, &Addr::default(), true),
            ),
            (DocKind::Status, status_items(root, cfg, &Addr::default())),
        ]);
    }
    let normalized = crate::parse::feedback::normalize(path).map_err(|m| {
        ShellError::new(Code::UnknownPath, 0, m)
            .expected("/Configuration/... or /Status/...")
            .area(Area::Line)
    })?;
    let is_config = normalized.starts_with("/Configuration");
    let tree = if is_config {
        &schema().config
    } else {
        &schema().status
    };
    let mut addr = Addr::default();
    for seg in normalized.split('/').skip(2) {
        let (name, inst) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<u32>().ok()),
            None => (seg, None),
        };
        if let Lookup::Found(id) = tree.lookup(addr.node(), name) {
            addr.steps.push(Step {
                node: id,
                instance: inst,
            });
        }
    }
    Ok(vec![if is_config {
        (DocKind::Configuration, config_items(cfg, &addr, true))
    } else {
        (DocKind::Status, status_items(root, cfg, &addr))
    }])
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
    Ctx::new(tree, keys, get, with_space_refs).emit(addr)
}

struct Ctx<'t, 'a> {
    tree: &'t Tree,
    keys: &'t dyn Fn() -> Box<dyn Iterator<Item = &'a Key> + 'a>,
    get: &'t dyn Fn(&Key) -> Option<String>,
    with_space_refs: bool,
    /// `valueSpaceRef` names by leaf node, computed once per document (1,000 zones repeat them).
    type_names: std::cell::RefCell<std::collections::HashMap<NodeId, String>>,
    /// Whether a sub-tree named after a value of a sibling `Type` leaf shows only under that type.
    by_type: bool,
}

impl<'t, 'a> Ctx<'t, 'a> {
    fn new(
        tree: &'t Tree,
        keys: &'t dyn Fn() -> Box<dyn Iterator<Item = &'a Key> + 'a>,
        get: &'t dyn Fn(&Key) -> Option<String>,
        with_space_refs: bool,
    ) -> Self {
        Ctx {
            tree,
            keys,
            get,
            with_space_refs,
            type_names: Default::default(),
            by_type: false,
        }
    }

    /// The document for `addr`.
    fn emit(&self, addr: &Addr) -> Vec<Item> {
        let roots: Vec<NodeId> = match addr.steps.first() {
            Some(s) => vec![s.node],
            None => self.tree.roots.clone(),
        };
        let mut out = Vec::new();
        for r in roots {
            self.node(r, addr, 0, &mut Vec::new(), &mut out);
        }
        out
    }

    /// Whether child `c` of `parent` is a type's sub-tree whose type is not the instance's:
    /// `parent` has a leaf `Type` whose value space names `c`, and its value (at `inst`) is
    /// another word.
    fn hidden_by_type(&self, parent: NodeId, c: NodeId, inst: &[u32]) -> bool {
        let n = &self.tree.nodes[c];
        if n.leaf.is_some() {
            return false;
        }
        let Some(ty) = self.tree.nodes[parent].children.iter().copied().find(|&k| {
            self.tree.nodes[k].name == "Type"
                && self.tree.nodes[k]
                    .leaf
                    .as_ref()
                    .is_some_and(|l| l.space.words().contains(&n.name))
        }) else {
            return false;
        };
        let key = Key {
            leaf: ty,
            inst: inst.to_vec(),
        };
        (self.get)(&key).is_some_and(|v| v != n.name)
    }

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
                } else if ctx.by_type && ctx.hidden_by_type(id, c, inst) {
                    continue;
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
