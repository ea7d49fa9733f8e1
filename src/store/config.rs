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
        use std::fmt::Write as _;
        let tree = &schema().config;
        let mut out = String::with_capacity(128 + self.values.len() * 64);
        out.push_str("# xsh configuration: non-default values as xConfiguration lines; edits are checked on load.\n");
        let _ = writeln!(out, "# generation: {}", self.generation);
        for c in &self.comments {
            out.push_str(c);
            out.push('\n');
        }
        let mut entries: Vec<(&Key, &String)> = self.values.iter().collect();
        // Borrowing comparison: a key function cloning `inst` would allocate twice per compare.
        // Keys are unique, so an unstable sort gives the one order.
        entries.sort_unstable_by(|(a, _), (b, _)| {
            a.inst.cmp(&b.inst).then(
                tree.nodes[a.leaf]
                    .leaf_index
                    .cmp(&tree.nodes[b.leaf].leaf_index),
            )
        });
        let mut chain = Vec::new();
        for (k, v) in entries {
            out.push_str("xConfiguration ");
            write_words(tree, k, &mut chain, &mut out);
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
        Config::from_bytes_where(bytes, Lines::All)
    }

    /// Loads only the values outside instance nodes (and the header): what a reader that needs
    /// `SystemUnit`, `Shell` or the generation wants, without paying for 1,000 zones. Lines the
    /// store wrote under an instance node are skipped by their prefix, unread; any other line is
    /// read in full and its value kept only when it names no instance. Its problems are those of
    /// the lines read. Not a configuration to write back: it lacks the instances.
    pub fn globals_from_bytes(bytes: &[u8]) -> Config {
        Config::from_bytes_where(bytes, Lines::Globals)
    }

    /// As [`Config::globals_from_bytes`], with the problems and kept lines of the whole file
    /// (for the banner's warnings): the skipped lines are checked in place, not stored.
    pub fn checked_globals_from_bytes(bytes: &[u8]) -> Config {
        Config::from_bytes_where(bytes, Lines::CheckedGlobals)
    }

    fn from_bytes_where(bytes: &[u8], which: Lines) -> Config {
        let text = String::from_utf8_lossy(bytes);
        let mut c = Config::from_text_where(&text, which);
        if matches!(text, std::borrow::Cow::Owned(_)) {
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
        Config::from_text_where(text, Lines::All)
    }

    fn from_text_where(text: &str, which: Lines) -> Config {
        let tree = &schema().config;
        let skip = match which {
            Lines::All => Vec::new(),
            Lines::Globals | Lines::CheckedGlobals => instance_prefixes(tree),
        };
        let mut c = Config::default();
        // Collected in file order and built at once: a later line for the same key wins, as
        // with inserts one by one, and a bulk build is several times cheaper.
        let mut values: Vec<(Key, String)> = Vec::new();
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
            // A written line under an instance node is checked (so problems stay complete)
            // but not stored: no key, no value, no allocation.
            if skip.iter().any(|p| {
                t.strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with(|ch: char| ch.is_ascii_digit()))
            }) && (which == Lines::Globals || resolve_written(tree, t).is_some())
            {
                continue;
            }
            if let Some(kv) = written_line(tree, t) {
                values.push(kv);
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
                        if which != Lines::All && !key.inst.is_empty() {
                            continue;
                        }
                        let node = &tree.nodes[key.leaf];
                        if let Some(d) = node.leaf.as_ref().and_then(|l| l.deprecated.as_ref()) {
                            let words = key.words(tree);
                            c.problems
                                .push(problem(format!("{words} is deprecated: {d}"), false));
                        }
                        values.push((key, value));
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
        c.values = sorted_by_key(tree, values).into_iter().collect();
        c
    }
}

/// `values` (in file order) in key order, a later value for a key after an earlier one: the
/// store writes zone by zone, the map orders leaf by leaf, so the lines are dealt into one pile
/// per leaf (each already in instance order) instead of sorted. Piles out of order are sorted
/// stably, so a later line for the same key still wins in the map's build.
fn sorted_by_key(tree: &Tree, values: Vec<(Key, String)>) -> Vec<(Key, String)> {
    if values.windows(2).all(|w| w[0].0 <= w[1].0) {
        return values;
    }
    let mut piles: Vec<Vec<(Key, String)>> = Vec::new();
    piles.resize_with(tree.nodes.len(), Vec::new);
    let total = values.len();
    for kv in values {
        let leaf = kv.0.leaf;
        if let Some(p) = piles.get_mut(leaf) {
            p.push(kv);
        }
    }
    let mut out = Vec::with_capacity(total);
    for mut p in piles {
        if !p.windows(2).all(|w| w[0].0.inst <= w[1].0.inst) {
            p.sort_by(|a, b| a.0.cmp(&b.0));
        }
        out.extend(p);
    }
    out
}

/// Which lines a load reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    All,
    Globals,
    CheckedGlobals,
}

/// `xConfiguration Zones Zone `: how the store starts a line under each outermost instance node.
fn instance_prefixes(tree: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (id, n) in tree.nodes.iter().enumerate() {
        if n.instances.is_none() {
            continue;
        }
        let chain = tree.ancestry(id);
        // An instance node inside another is covered by the outer one's prefix.
        if chain[..chain.len() - 1]
            .iter()
            .any(|&a| tree.nodes[a].instances.is_some())
        {
            continue;
        }
        let mut p = String::from("xConfiguration");
        for a in chain {
            p.push(' ');
            p.push_str(&tree.nodes[a].name);
        }
        p.push(' ');
        out.push(p);
    }
    out
}

/// Appends the canonical words of `key` (`Zones Zone 3 Name`) to `out`; `chain` is scratch.
fn write_words(tree: &Tree, key: &Key, chain: &mut Vec<NodeId>, out: &mut String) {
    use std::fmt::Write as _;
    chain.clear();
    let mut cur = Some(key.leaf);
    while let Some(id) = cur {
        chain.push(id);
        cur = tree.nodes[id].parent;
    }
    let mut inst = key.inst.iter();
    for (i, &id) in chain.iter().rev().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&tree.nodes[id].name);
        if tree.nodes[id].instances.is_some() {
            if let Some(n) = inst.next() {
                let _ = write!(out, " {n}");
            }
        }
    }
}

/// A line exactly as [`Config::to_text`] writes it (canonical words, the canonical value quoted),
/// read without the lexer: most of a large file is such lines. Anything else (a prefix, another
/// case, a bare value, a deprecated leaf, a value outside its space) is `None`, and the caller
/// takes it through the command parser, which reports what is wrong with it.
fn written_line(tree: &Tree, t: &str) -> Option<(Key, String)> {
    let (leaf, inst, raw) = resolve_written(tree, t)?;
    Some((
        Key {
            leaf,
            inst: inst.as_slice().to_vec(),
        },
        raw.into_owned(),
    ))
}

/// Instance numbers on the way to a leaf, without a heap allocation.
#[derive(Default)]
struct InstBuf {
    n: [u32; 4],
    len: usize,
}

impl InstBuf {
    fn push(&mut self, v: u32) -> Option<()> {
        *self.n.get_mut(self.len)? = v;
        self.len += 1;
        Some(())
    }

    fn as_slice(&self) -> &[u32] {
        &self.n[..self.len]
    }
}

/// The leaf, instance numbers and value of a written line (see [`written_line`]).
fn resolve_written<'t>(
    tree: &Tree,
    t: &'t str,
) -> Option<(NodeId, InstBuf, std::borrow::Cow<'t, str>)> {
    if t.len() > crate::parse::lex::MAX_LINE {
        return None;
    }
    let rest = t.strip_prefix("xConfiguration ")?;
    let colon = rest.bytes().position(|b| b == b':')?;
    let (path, val) = (&rest[..colon], rest[colon + 1..].strip_prefix(' ')?);
    let raw = unquote_written(val.strip_prefix('"')?.strip_suffix('"')?)?;
    let mut parent = None;
    let mut inst = InstBuf::default();
    // Byte-wise: the words are short, and a searcher per word costs more than the compare.
    let mut words = path.as_bytes().split(|&b| b == b' ');
    while let Some(w) = words.next() {
        let id = *tree
            .children_of(parent)
            .iter()
            .find(|&&id| tree.nodes[id].name.as_bytes() == w)?;
        if let Some((lo, hi)) = tree.nodes[id].instances {
            let word = words.next()?;
            if word.first() == Some(&b'0') || !word.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n: u32 = std::str::from_utf8(word).ok()?.parse().ok()?;
            if n < lo || n > hi {
                return None;
            }
            inst.push(n)?;
        }
        parent = Some(id);
    }
    let leaf_id = parent?;
    let leaf = tree.nodes[leaf_id].leaf.as_ref()?;
    if leaf.deprecated.is_some() || leaf.read_only || !leaf.space.is_canonical(&raw) {
        return None;
    }
    Some((leaf_id, inst, raw))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set(c: &mut Config, line: &str) {
        match parse_line(line).unwrap().action {
            Action::ConfigSet { key, value, .. } => {
                c.set(key, value);
            }
            a => panic!("{a:?}"),
        }
    }

    /// Every line `to_text` writes reads back through the fast path as the parser reads it.
    #[test]
    fn written_lines_read_as_the_parser_reads_them() {
        let mut c = Config::default();
        for line in [
            "xConfiguration SystemUnit Name: \"a \\\"q\\\" b\\\\c  d\"",
            "xConfiguration SystemUnit Description: \"C:\\\\temp: x\"",
            "xConfiguration SIP TLS Port: 5070",
            "xConfiguration SIP TLS Certificate Revocation Fallback Mode: deny",
            "xConfiguration Shell IdleTimeout: 0086400",
            "xConfiguration Zones Zone 1000 Name: \"caf\u{e9} \u{20ac}\"",
            "xConfiguration Zones Zone 7 Type: traversalclient",
            "xConfiguration Zones Zone 7 Neighbor Peer 1 Address: \"::1\"",
        ] {
            set(&mut c, line);
        }
        let text = c.to_text();
        let tree = &schema().config;
        let mut fast = 0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Action::ConfigSet { key, value, .. } = parse_line(line).unwrap().action else {
                panic!("{line}");
            };
            assert_eq!(written_line(tree, line), Some((key, value)), "{line}");
            fast += 1;
        }
        assert_eq!(fast, 8);
        assert_eq!(Config::from_text(&text).values, c.values);
    }

    /// Lines a person may write that the fast path must leave to the parser.
    #[test]
    fn other_lines_fall_back_to_the_parser() {
        let tree = &schema().config;
        for line in [
            "xconfiguration SIP TLS Port: \"5062\"",
            "xConfiguration sip TLS Port: \"5062\"",
            "xConfiguration SIP TLS Port: 5062",
            "xConfiguration SIP TLS Port: \"05062\"",
            "xConfiguration SIP TLS Port: \"99999\"",
            "xConfiguration SIP TLS Mode: \"on\"",
            "xConfiguration Zones Zone 01 Name: \"x\"",
            "xConfiguration Zones Zone 1001 Name: \"x\"",
            "xConfiguration Zones Zone 1 Name: \"x\" | resultId=\"r\"",
            "xConfiguration Zones Zone 1 Name: \"a\"b\"",
            "xConfiguration Zones Zone 1 Name: \"C:\\temp\"",
            "xConfiguration XCP TLS Certificate CVS EnableServerEkuUpload: \"On\"",
            "xConfiguration SIP TLS Port:  \"5062\"",
        ] {
            assert_eq!(written_line(tree, line), None, "{line}");
        }
    }

    #[test]
    fn globals_hold_the_values_outside_instances() {
        let mut c = Config::default();
        for line in [
            "xConfiguration SystemUnit Name: edge",
            "xConfiguration Zones Zone 3 Name: \"z\"",
            "xConfiguration Shell AdminGroup: ops",
        ] {
            set(&mut c, line);
        }
        c.generation = 9;
        let mut text = c.to_text();
        // Hand edits: an abbreviated global line, an abbreviated instance line, a bad one.
        text.push_str("xconf sip tls port: 5099\nxconf zones zone 4 name: y\n");
        text.push_str("xConfiguration Zones Zone 5 Nme: \"y\"\n");
        let g = Config::checked_globals_from_bytes(text.as_bytes());
        let quick = Config::globals_from_bytes(text.as_bytes());
        assert_eq!(quick.values, g.values);
        assert!(quick.problems.is_empty());
        let full = Config::from_bytes(text.as_bytes());
        let outside: BTreeMap<Key, String> = full
            .values
            .iter()
            .filter(|(k, _)| k.inst.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(g.values, outside);
        assert_eq!((g.generation, g.values.len(), full.values.len()), (9, 3, 5));
        assert_eq!(g.shell().admin_group(), "ops");
        assert_eq!(
            (g.problems.clone(), g.kept.clone()),
            (full.problems, full.kept)
        );
        assert_eq!(g.problems.len(), 1);
    }
}
