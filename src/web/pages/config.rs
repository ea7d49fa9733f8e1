//! Configuration pages generated from the schema (`crate::schema::schema()`): one page per
//! configuration node, a form field per leaf chosen by its value space, so a leaf added to
//! `xconf/schema.xconf` appears here with no code. A page's changes are `xConfiguration` sets
//! applied through the engine in one transaction: all of them or none.

use maud::{html, Markup};

use super::layout::{self, csrf, Outcome, View};
use super::req;
use crate::engine::{Context, Engine, Item};
use crate::error::{Area, Code, ShellError};
use crate::parse::Key;
use crate::schema::{schema, Lookup, NodeId, Tree, ValueSpace};
use crate::store::Config;

/// Where a configuration URL points: a node and the instance numbers on the way, or an
/// instance node without its number (the list of instances).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub node: Option<NodeId>,
    pub inst: Vec<u32>,
    /// The last node is an instance node and no number followed it.
    pub list: bool,
}

/// The EKU checking mode's node, the page the seed's admins go to.
pub const EKU_PATH: &str = "SIP/TLS/Certificate/ExtendedKeyUsage/Checking";

/// Resolves `a/b/3/c` (node names, an instance number after an instance node).
pub fn resolve(path: &str) -> Result<At, ShellError> {
    let tree = &schema().config;
    let mut at = At {
        node: None,
        inst: Vec::new(),
        list: false,
    };
    let mut segs = path.split('/').filter(|s| !s.is_empty()).peekable();
    while let Some(w) = segs.next() {
        let id = match tree.lookup(at.node, w) {
            Lookup::Found(id) if tree.nodes[id].name.eq_ignore_ascii_case(w) => id,
            _ => {
                return Err(ShellError::new(
                    Code::UnknownPath,
                    0,
                    format!("no configuration node '{w}' here"),
                )
                .expected(tree.child_names(at.node).join(", "))
                .area(Area::Configuration))
            }
        };
        at.node = Some(id);
        at.list = false;
        if let Some((lo, hi)) = tree.nodes[id].instances {
            match segs.peek().map(|s| s.parse::<u32>()) {
                Some(Ok(n)) if (lo..=hi).contains(&n) => {
                    at.inst.push(n);
                    segs.next();
                }
                Some(Ok(n)) => {
                    return Err(ShellError::new(
                        Code::InstanceOutOfRange,
                        0,
                        format!("{} {n} is outside {lo}..{hi}", tree.nodes[id].name),
                    )
                    .area(Area::Configuration))
                }
                _ => at.list = true,
            }
        }
    }
    Ok(at)
}

/// The URL of a node with instance numbers.
pub fn url(tree: &Tree, node: NodeId, inst: &[u32]) -> String {
    let mut s = String::from("/configuration");
    let mut it = inst.iter();
    for id in tree.ancestry(node) {
        s.push('/');
        s.push_str(&tree.nodes[id].name);
        if tree.nodes[id].instances.is_some() {
            if let Some(n) = it.next() {
                s.push('/');
                s.push_str(&n.to_string());
            }
        }
    }
    s
}

/// The leaves a node's page holds: in its subtree, not below another instance node.
fn page_leaves(tree: &Tree, node: Option<NodeId>) -> Vec<NodeId> {
    let mut out = Vec::new();
    fn walk(tree: &Tree, id: NodeId, out: &mut Vec<NodeId>) {
        if tree.nodes[id].leaf.is_some() {
            out.push(id);
        }
        for &c in &tree.nodes[id].children {
            if tree.nodes[c].instances.is_none() {
                walk(tree, c, out);
            }
        }
    }
    if let Some(n) = node {
        walk(tree, n, &mut out);
    }
    out
}

/// The words of `leaf` below `node` (what its label says).
fn relative_words(tree: &Tree, node: Option<NodeId>, leaf: NodeId) -> String {
    let anc = tree.ancestry(leaf);
    let skip = node
        .and_then(|n| anc.iter().position(|&a| a == n))
        .map_or(0, |p| p + 1);
    let words: Vec<&str> = anc[skip..]
        .iter()
        .map(|&a| tree.nodes[a].name.as_str())
        .collect();
    if words.is_empty() {
        tree.nodes[leaf].name.clone()
    } else {
        words.join(" ")
    }
}

/// The configuration index: every top-level node.
pub fn index(v: &View<'_>, cfg: &Config) -> Markup {
    let tree = &schema().config;
    let body = html! {
        p { "Every setting of " code { "xConfiguration" } ", one page per node, generated from the schema." }
        (children_list(tree, None, &[], cfg))
    };
    layout::page(v, "Configuration", body)
}

fn children_list(tree: &Tree, node: Option<NodeId>, inst: &[u32], cfg: &Config) -> Markup {
    let kids: Vec<NodeId> = tree
        .children_of(node)
        .iter()
        .copied()
        .filter(|&c| tree.nodes[c].leaf.is_none())
        .collect();
    let _ = cfg;
    html! {
        @if !kids.is_empty() {
            ul class="nodes" {
                @for c in kids {
                    li { a href=(url(tree, c, inst)) { (tree.nodes[c].name) } }
                }
            }
        }
    }
}

/// The page of one node: its leaves as a form (read-write) or a table (read-only).
pub fn node_page(
    v: &View<'_>,
    cfg: &Config,
    at: &At,
    action: &str,
    title: Option<&str>,
    intro: Option<Markup>,
    out: Option<Outcome>,
) -> Markup {
    let tree = &schema().config;
    let Some(node) = at.node else {
        return index(v, cfg);
    };
    let heading = title.map_or_else(|| heading(tree, node, &at.inst), str::to_string);
    if at.list {
        return instance_list(v, cfg, node, &at.inst, &heading);
    }
    let leaves = page_leaves(tree, Some(node));
    let body = html! {
        (crumbs(tree, node, &at.inst))
        @if let Some(i) = intro { (i) }
        @if let Some(o) = &out { (layout::outcome(o)) }
        @if leaves.is_empty() {
            p { "No settings directly on this node; see below." }
        } @else if v.read_only {
            (layout::read_only_note())
            table class="kv" { tbody {
                @for l in &leaves {
                    @let key = Key { leaf: *l, inst: at.inst.clone() };
                    tr { th scope="row" { (relative_words(tree, Some(node), *l)) } td { (cfg.get(&key)) } }
                }
            } }
        } @else {
            form method="post" action=(action) class="stack settings" {
                (csrf(v))
                @for l in &leaves {
                    (leaf_field(tree, node, *l, cfg.get(&Key { leaf: *l, inst: at.inst.clone() })))
                }
                div { button type="submit" { "Save" } }
            }
        }
        @let subs: Vec<NodeId> = tree.nodes[node].children.iter().copied().filter(|&c| tree.nodes[c].instances.is_some()).collect();
        @if !subs.is_empty() {
            h2 { "Instances" }
            ul class="nodes" {
                @for c in subs { li { a href=(url(tree, c, &at.inst)) { (tree.nodes[c].name) } } }
            }
        }
    };
    layout::page(v, &heading, body)
}

fn heading(tree: &Tree, node: NodeId, inst: &[u32]) -> String {
    let mut it = inst.iter();
    let mut words = Vec::new();
    for id in tree.ancestry(node) {
        words.push(tree.nodes[id].name.clone());
        if tree.nodes[id].instances.is_some() {
            if let Some(n) = it.next() {
                words.push(n.to_string());
            }
        }
    }
    words.join(" ")
}

fn crumbs(tree: &Tree, node: NodeId, inst: &[u32]) -> Markup {
    // (label, url) of each node on the way; an instance node's label carries its number.
    let mut steps = Vec::new();
    let mut used = 0;
    for id in tree.ancestry(node) {
        let mut label = tree.nodes[id].name.clone();
        if tree.nodes[id].instances.is_some() && used < inst.len() {
            used += 1;
            label.push_str(&format!(" {}", inst[used - 1]));
        }
        steps.push((id, label, url(tree, id, &inst[..used])));
    }
    html! {
        nav aria-label="Breadcrumb" class="crumbs" {
            a href="/configuration" { "Configuration" }
            @for (id, label, href) in &steps {
                " / "
                @if *id == node { span aria-current="page" { (label) } }
                @else { a href=(href) { (label) } }
            }
        }
    }
}

fn leaf_field(tree: &Tree, node: NodeId, leaf: NodeId, value: &str) -> Markup {
    let Some(spec) = tree.nodes[leaf].leaf.as_ref() else {
        return html! {};
    };
    let id = format!("leaf-{leaf}");
    let help = format!("{id}-help");
    let name = format!("n{leaf}");
    let locked = spec.read_only || spec.deprecated.is_some();
    html! {
        div class="field" {
            label for=(id) { (relative_words(tree, Some(node), leaf)) }
            @match &spec.space {
                ValueSpace::Enum(words) => {
                    select id=(id) name=(name) aria-describedby=(help) disabled[locked] {
                        @for w in words {
                            option value=(w) selected[w == value] { (w) }
                        }
                    }
                }
                ValueSpace::Int { min, max } => {
                    input id=(id) type="number" name=(name) min=(min) max=(max) value=(value) aria-describedby=(help) disabled[locked];
                }
                ValueSpace::Str { max, .. } => {
                    input id=(id) type="text" name=(name) maxlength=(max) value=(value) aria-describedby=(help) disabled[locked];
                }
                ValueSpace::AnyStr | ValueSpace::AnyInt => {
                    input id=(id) type="text" name=(name) value=(value) aria-describedby=(help) disabled[locked];
                }
            }
            p id=(help) class="help" {
                (spec.space.to_string()) " default " code { "\"" (spec.default) "\"" } ". " (spec.help)
                @if let Some(d) = &spec.deprecated { " " strong { "Deprecated: " } (d) }
                @if spec.read_only { " " strong { "Read-only." } }
            }
        }
    }
}

fn instance_list(v: &View<'_>, cfg: &Config, node: NodeId, outer: &[u32], heading: &str) -> Markup {
    let tree = &schema().config;
    let (lo, hi) = tree.nodes[node].instances.unwrap_or((1, 1));
    let present = cfg.instances_of(node, outer);
    let here = url(tree, node, outer);
    let body = html! {
        (crumbs(tree, node, outer))
        @if present.is_empty() { p { "No instance has a value other than its defaults." } } @else {
            p { "Instances with settings:" }
            ul class="nodes" {
                @for n in &present {
                    li { a href=(url(tree, node, &[outer, &[*n]].concat())) { (tree.nodes[node].name) " " (n) } }
                }
            }
        }
        form method="get" action=(here) class="filters" {
            div class="field" {
                label for="inst-n" { (tree.nodes[node].name) " number (" (lo) ".." (hi) ")" }
                input id="inst-n" type="number" name="n" min=(lo) max=(hi) required;
            }
            div { button type="submit" { "Open" } }
        }
    };
    layout::page(v, heading, body)
}

/// The sets a submitted form asks for: every field whose value differs from the stored one.
pub fn changes(
    cfg: &Config,
    at: &At,
    form: &[(String, String)],
) -> Result<Vec<crate::engine::Request>, ShellError> {
    let tree = &schema().config;
    let allowed = page_leaves(tree, at.node);
    let mut out = Vec::new();
    for (name, value) in form {
        let Some(id) = name
            .strip_prefix('n')
            .and_then(|n| n.parse::<NodeId>().ok())
        else {
            continue;
        };
        if !allowed.contains(&id) {
            return Err(ShellError::new(
                Code::UnknownPath,
                0,
                format!("field {name} is not a setting of this page"),
            )
            .area(Area::Configuration));
        }
        let key = Key {
            leaf: id,
            inst: at.inst.clone(),
        };
        if cfg.get(&key) != value {
            out.push(req::config_set(&key, value)?);
        }
    }
    Ok(out)
}

/// Applies `reqs` in one transaction for `ctx`: every set, or (on the first refusal) none.
pub fn apply(
    engine: &Engine,
    ctx: &Context,
    reqs: Vec<crate::engine::Request>,
) -> Result<Vec<Item>, ShellError> {
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    let tree = &schema().config;
    let (res, changes, generation) = engine
        .transact(ctx, |cfg| {
            let before = cfg.clone();
            for r in reqs {
                if let Err(e) = engine.execute_in(ctx, r, Some(cfg)) {
                    *cfg = before;
                    return Err(e);
                }
            }
            Ok(())
        })
        .map_err(|e| ShellError::new(Code::Store, 0, e.to_string()).area(Area::Configuration))?;
    res?;
    let mut f: Vec<Item> = changes
        .iter()
        .map(|c| Item::leaf(c.key.words(tree), format!("{} -> {}", c.old, c.new)))
        .collect();
    f.push(Item::leaf("Generation", generation.to_string()));
    Ok(f)
}
