//! What a read shows: the configuration and status documents for an address (built from the
//! schema and the values), deprecation notes, and `xGetXML`. Shared by replies, dumps and
//! the diagnostic bundle.

use std::path::Path;

use crate::error::{Area, Code, ShellError};
use crate::render::{self, xml, DocKind, Item};
use crate::schema::schema;
use crate::store::Config;

/// Items of the configuration at `addr`: every leaf with its value or default; instances that
/// hold a stored value, plus an instance named in `addr`.
pub fn config_items(cfg: &Config, addr: &crate::parse::Addr, refs: bool) -> Vec<Item> {
    let keys =
        || -> Box<dyn Iterator<Item = &crate::parse::Key> + '_> { Box::new(cfg.values.keys()) };
    let get = |k: &crate::parse::Key| Some(cfg.get(k).to_string());
    render::build(&schema().config, &keys, &get, addr, refs)
}

/// Items of the status at `addr`.
pub fn status_items(root: &Path, cfg: &Config, addr: &crate::parse::Addr) -> Vec<Item> {
    let values = crate::status::collect_at(root, cfg, addr.steps.first().map(|s| s.node));
    let keys = || -> Box<dyn Iterator<Item = &crate::parse::Key> + '_> { Box::new(values.keys()) };
    let get = |k: &crate::parse::Key| values.get(k).cloned();
    render::build(&schema().status, &keys, &get, addr, false)
}

/// A `*w` line for deprecated leaves at or under `addr`.
pub(super) fn deprecation_note(addr: &crate::parse::Addr) -> Option<String> {
    let tree = &schema().config;
    let node = addr.node()?;
    let mut leaves = Vec::new();
    tree.leaves_under(node, &mut leaves);
    let mut s = String::new();
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
            s.push_str(&format!(
                "*w xConfiguration {} is deprecated: {d}\n",
                words.join(" ")
            ));
        }
    }
    (!s.is_empty()).then_some(s)
}

/// `xGetXML /Configuration/SIP` or `/Status/SystemUnit`: the XML document of that subtree.
pub fn get_xml(root: &Path, cfg: &Config, path: &str) -> Result<String, ShellError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        let mut s = xml::document(
            DocKind::Configuration,
            &config_items(cfg, &Default::default(), true),
        );
        s.push_str(&xml::document(
            DocKind::Status,
            &status_items(root, cfg, &Default::default()),
        ));
        return Ok(s);
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
    let mut addr = crate::parse::Addr::default();
    for seg in normalized.split('/').skip(2) {
        let (name, inst) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<u32>().ok()),
            None => (seg, None),
        };
        if let crate::schema::Lookup::Found(id) = tree.lookup(addr.node(), name) {
            addr.steps.push(crate::parse::Step {
                node: id,
                instance: inst,
            });
        }
    }
    Ok(if is_config {
        xml::document(DocKind::Configuration, &config_items(cfg, &addr, true))
    } else {
        xml::document(DocKind::Status, &status_items(root, cfg, &addr))
    })
}
