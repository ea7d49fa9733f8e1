//! The configuration as values: what is stored (non-default values), defaults from the schema,
//! and the text form of `xconf.txt`, which reads like a dump and loads through the command parser.

use std::collections::BTreeMap;

use crate::parse::{parse_line, Action, Key};
use crate::schema::text::{quote_into, unquote_written};
use crate::schema::{schema, NodeId, Tree};

/// One problem found loading a hand-edited file: the line number, the text and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    pub line: usize,
    pub text: String,
    pub message: String,
    /// A warning loads the line (deprecated leaf); an error keeps it aside, verbatim.
    pub is_error: bool,
}

/// One applied change, for the audit log, feedback and `xHistory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: Key,
    pub old: String,
    pub new: String,
}

/// A configuration: the stored values and the generation they belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub values: BTreeMap<Key, String>,
    pub generation: u64,
    /// False when the file had no `# generation:` header (new, or written by hand or by
    /// configuration management): its generation is then unknown, not a crash's leftover.
    pub generation_known: bool,
    /// Lines that did not parse, kept verbatim so a rewrite never loses them.
    pub kept: Vec<String>,
    /// An operator's own `#` comments, kept (after our header) across rewrites.
    pub comments: Vec<String>,
    pub problems: Vec<LoadProblem>,
}

impl Config {
    /// The value of a leaf: stored, or the schema default.
    pub fn get(&self, key: &Key) -> &str {
        match self.values.get(key) {
            Some(v) => v,
            None => schema().config.nodes[key.leaf]
                .leaf
                .as_ref()
                .map(|l| l.default.as_str())
                .unwrap_or(""),
        }
    }

    /// Sets a validated value; a default value is not stored. Returns the change, if any.
    pub fn set(&mut self, key: Key, value: String) -> Option<Change> {
        let old = self.get(&key).to_string();
        if old == value && (self.values.contains_key(&key) || self.is_default(&key, &value)) {
            return None;
        }
        if self.is_default(&key, &value) {
            self.values.remove(&key);
        } else {
            self.values.insert(key.clone(), value.clone());
        }
        if old == value {
            return None;
        }
        Some(Change {
            key,
            old,
            new: value,
        })
    }

    fn is_default(&self, key: &Key, value: &str) -> bool {
        schema().config.nodes[key.leaf]
            .leaf
            .as_ref()
            .is_some_and(|l| l.default == value)
    }

    /// Instance numbers present under the instance node `node`, given the instance numbers of
    /// the instance nodes above it (`outer`).
    pub fn instances_of(&self, node: NodeId, outer: &[u32]) -> Vec<u32> {
        instances_in(&schema().config, self.values.keys(), node, outer)
    }

    /// The `xconf.txt` text: a header with the generation, then one line per stored value.
    pub fn to_text(&self) -> String {
        let tree = &schema().config;
        let mut out = String::with_capacity(64 + self.values.len() * 64);
        out.push_str("# xsh configuration: non-default values as xConfiguration lines; edits are checked on load.\n");
        out.push_str(&format!("# generation: {}\n", self.generation));
        for c in &self.comments {
            out.push_str(c);
            out.push('\n');
        }
        let mut entries: Vec<(&Key, &String)> = self.values.iter().collect();
        // Borrowing comparison: a key function cloning `inst` would allocate twice per compare.
        entries.sort_by(|(a, _), (b, _)| {
            a.inst.cmp(&b.inst).then(
                tree.nodes[a.leaf]
                    .leaf_index
                    .cmp(&tree.nodes[b.leaf].leaf_index),
            )
        });
        for (k, v) in entries {
            out.push_str("xConfiguration ");
            out.push_str(&k.words(tree));
            out.push_str(": ");
            quote_into(v, &mut out);
            out.push('\n');
        }
        for k in &self.kept {
            out.push_str(k);
            out.push('\n');
        }
        out
    }

    /// Loads `xconf.txt` bytes: as [`Config::from_text`], and a line that is not UTF-8 (a
    /// Latin-1 hand edit) is reported by number, since it is read with U+FFFD in its place.
    pub fn from_bytes(bytes: &[u8]) -> Config {
        let mut c = Config::from_text(&String::from_utf8_lossy(bytes));
        if std::str::from_utf8(bytes).is_err() {
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if std::str::from_utf8(line).is_err() {
                    c.problems.push(LoadProblem {
                        line: i + 1,
                        text: String::from_utf8_lossy(line).trim_end_matches('\r').to_string(),
                        message: "line is not valid UTF-8; its bad bytes read as U+FFFD and are written back that way".into(),
                        is_error: false,
                    });
                }
            }
            c.problems.sort_by_key(|p| p.line);
        }
        c
    }

    /// Loads `xconf.txt` text. Bad lines are reported with their line number and kept aside.
    pub fn from_text(text: &str) -> Config {
        let tree = &schema().config;
        let mut c = Config::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(rest) = t.strip_prefix('#') {
                if let Some(g) = rest.trim().strip_prefix("generation:") {
                    if let Ok(n) = g.trim().parse() {
                        c.generation = n;
                        c.generation_known = true;
                    }
                } else if !rest.starts_with(" xsh configuration:") {
                    c.comments.push(line.to_string());
                }
                continue;
            }
            if let Some((key, value)) = written_line(tree, t) {
                c.values.insert(key, value);
                continue;
            }
            let problem = |message: String, is_error| LoadProblem {
                line: i + 1,
                text: line.to_string(),
                message,
                is_error,
            };
            match parse_line(t) {
                Ok(req) => match req.action {
                    Action::ConfigSet { key, value, .. } => {
                        let node = &schema().config.nodes[key.leaf];
                        if let Some(d) = node.leaf.as_ref().and_then(|l| l.deprecated.as_ref()) {
                            let words = key.words(&schema().config);
                            c.problems
                                .push(problem(format!("{words} is deprecated: {d}"), false));
                        }
                        c.values.insert(key, value);
                    }
                    _ => {
                        c.problems
                            .push(problem("not an xConfiguration set line".into(), true));
                        c.kept.push(line.to_string());
                    }
                },
                Err(e) => {
                    c.problems.push(problem(e.to_string(), true));
                    c.kept.push(line.to_string());
                }
            }
        }
        c
    }
}

/// A line exactly as [`Config::to_text`] writes it (canonical words, the canonical value quoted),
/// read without the lexer: most of a large file is such lines. Anything else (a prefix, another
/// case, a bare value, a deprecated leaf, a value outside its space) is `None`, and the caller
/// takes it through the command parser, which reports what is wrong with it.
fn written_line(tree: &Tree, t: &str) -> Option<(Key, String)> {
    if t.len() > crate::parse::lex::MAX_LINE {
        return None;
    }
    let (path, val) = t.strip_prefix("xConfiguration ")?.split_once(": ")?;
    let raw = unquote_written(val.strip_prefix('"')?.strip_suffix('"')?)?;
    let mut parent = None;
    let mut inst = Vec::new();
    let mut words = path.split(' ');
    while let Some(w) = words.next() {
        let id = *tree
            .children_of(parent)
            .iter()
            .find(|&&id| tree.nodes[id].name == w)?;
        if let Some((lo, hi)) = tree.nodes[id].instances {
            let word = words.next()?;
            let n: u32 = word.parse().ok()?;
            if n < lo || n > hi || n.to_string() != word {
                return None;
            }
            inst.push(n);
        }
        parent = Some(id);
    }
    let leaf_id = parent?;
    let leaf = tree.nodes[leaf_id].leaf.as_ref()?;
    if leaf.deprecated.is_some() || leaf.read_only {
        return None;
    }
    let value = leaf.space.validate(&raw).ok()?;
    if value != raw {
        return None;
    }
    Some((
        Key {
            leaf: leaf_id,
            inst,
        },
        value,
    ))
}

/// Instance numbers present among `keys` under instance node `node` of `tree`, with the instance
/// numbers of the instance nodes above it given in `outer`.
pub fn instances_in<'a>(
    tree: &Tree,
    keys: impl Iterator<Item = &'a Key>,
    node: NodeId,
    outer: &[u32],
) -> Vec<u32> {
    let depth = outer.len();
    let mut out: Vec<u32> = Vec::new();
    for k in keys {
        if k.inst.len() <= depth || k.inst[..depth] != *outer {
            continue;
        }
        if is_under(tree, k.leaf, node) {
            let n = k.inst[depth];
            if out.last() != Some(&n) {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `id` is `node` or lies below it.
pub fn is_under(tree: &Tree, mut id: NodeId, node: NodeId) -> bool {
    loop {
        if id == node {
            return true;
        }
        match tree.nodes.get(id).and_then(|n| n.parent) {
            Some(p) => id = p,
            None => return false,
        }
    }
}
