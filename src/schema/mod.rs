//! The data model, loaded from the one table in `xconf/schema.xconf`.
//!
//! Everything that knows what a leaf is (the parser, validation, `?` help, Tab completion,
//! defaults, the renderers, the XSD and the dumps) asks this room. The table is embedded in the
//! binary and parsed once at start with the quoting rule of `text`, which the command parser shares, so a new
//! leaf is one line in `xconf/` and nothing else. This room knows no disk and no terminal.

use std::fmt;
use std::sync::OnceLock;

mod table;
pub mod text;
pub mod values;

pub use table::value_space;

/// The schema source, embedded so the binaries never depend on where they were installed.
pub const SCHEMA_SOURCE: &str = include_str!("../../xconf/schema.xconf");

/// Product identity shown in banners, XML attributes and `xStatus SystemUnit`.
pub const PRODUCT: &str = "xsh";
/// Software version in the product's spelling.
pub const VERSION: &str = "X15.5";
/// XML namespace of the server product's XML documents.
pub const XML_NS: &str = "http://www.tandberg.no/XML/CUIL/1.0";

/// What values a leaf or parameter accepts, in the product's notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSpace {
    /// `<On/Off>`: one of these words, case-insensitive, stored in the canonical spelling.
    Enum(Vec<String>),
    /// `<1..65534>`: an integer in the inclusive range.
    Int { min: i64, max: i64 },
    /// `<S: 0, 255>`: a string with a length (in characters) in the inclusive range.
    Str { min: usize, max: usize },
    /// `<S>`: any string (status only).
    AnyStr,
    /// `<Integer>`: any integer (status only).
    AnyInt,
}

impl ValueSpace {
    /// Checks `raw` and returns the canonical stored form; the error carries no detail because
    /// the caller reports the value space itself.
    #[allow(clippy::result_unit_err)]
    pub fn validate(&self, raw: &str) -> Result<String, ()> {
        match self {
            ValueSpace::Enum(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(raw))
                .cloned()
                .ok_or(()),
            ValueSpace::Int { min, max } => {
                let t = raw.trim();
                // Leading '+' and zeros are accepted as a person would type them; stored canonical.
                let n: i64 = t.parse().map_err(|_| ())?;
                if n < *min || n > *max {
                    return Err(());
                }
                Ok(n.to_string())
            }
            ValueSpace::Str { min, max } => {
                let n = raw.chars().count();
                if n < *min || n > *max || raw.chars().any(|c| c.is_control()) {
                    return Err(());
                }
                Ok(raw.to_string())
            }
            ValueSpace::AnyStr => Ok(raw.to_string()),
            ValueSpace::AnyInt => raw
                .trim()
                .parse::<i64>()
                .map(|n| n.to_string())
                .map_err(|_| ()),
        }
    }

    /// Whether `raw` is a valid value in its canonical stored form (what [`ValueSpace::validate`]
    /// returns unchanged), checked without allocating: the store reads its own lines this way.
    pub fn is_canonical(&self, raw: &str) -> bool {
        let canonical_int = |raw: &str| {
            let digits = raw.strip_prefix('-').unwrap_or(raw);
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'))
                && raw != "-0"
        };
        match self {
            ValueSpace::Enum(words) => words.iter().any(|w| w == raw),
            ValueSpace::Int { min, max } => {
                canonical_int(raw) && raw.parse::<i64>().is_ok_and(|n| n >= *min && n <= *max)
            }
            ValueSpace::Str { min, max } => {
                let n = raw.chars().count();
                n >= *min && n <= *max && !raw.chars().any(|c| c.is_control())
            }
            ValueSpace::AnyStr => true,
            ValueSpace::AnyInt => canonical_int(raw) && raw.parse::<i64>().is_ok(),
        }
    }

    /// Enumerated words, for Tab completion of values.
    pub fn words(&self) -> &[String] {
        match self {
            ValueSpace::Enum(w) => w,
            _ => &[],
        }
    }

    /// A name usable as an XSD type name and `valueSpaceRef`.
    pub fn type_name(&self) -> String {
        match self {
            ValueSpace::Enum(w) => format!("Enum_{}", w.join("_")),
            ValueSpace::Int { min, max } => format!("Int_{min}_{max}").replace('-', "m"),
            ValueSpace::Str { min, max } => format!("Str_{min}_{max}"),
            ValueSpace::AnyStr => "Str".into(),
            ValueSpace::AnyInt => "Integer".into(),
        }
    }
}

impl fmt::Display for ValueSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSpace::Enum(w) => write!(f, "<{}>", w.join("/")),
            ValueSpace::Int { min, max } => write!(f, "<{min}..{max}>"),
            ValueSpace::Str { min, max } => write!(f, "<S: {min}, {max}>"),
            ValueSpace::AnyStr => f.write_str("<S>"),
            ValueSpace::AnyInt => f.write_str("<Integer>"),
        }
    }
}

/// A configuration or status leaf.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub space: ValueSpace,
    pub default: String,
    pub read_only: bool,
    /// Peer-local (a `local` record of the table): in a cluster this leaf stays in the peer's
    /// own file and is never shared (a system name, a listener's address or port).
    pub local: bool,
    pub deprecated: Option<String>,
    pub help: String,
}

/// A command parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub space: ValueSpace,
    pub required: bool,
    pub default: Option<String>,
    pub help: String,
}

/// Whether a command takes a multi-line body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Optional,
    Required,
}

/// A command at a node of the command tree.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub params: Vec<Param>,
    pub body: BodyKind,
    pub help: String,
}

impl CommandSpec {
    /// Finds a parameter by name, case-insensitively, accepting a unique prefix.
    pub fn param(&self, name: &str) -> Option<&Param> {
        if let Some(p) = self
            .params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            return Some(p);
        }
        let mut hits = self.params.iter().filter(|p| starts_with_ci(&p.name, name));
        match (hits.next(), hits.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        }
    }
}

/// Node index in a [`Tree`].
pub type NodeId = usize;

/// One node of a tree: a container, an instance node (`Zone [1..1000]`), a leaf or a command.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub parent: Option<NodeId>,
    pub instances: Option<(u32, u32)>,
    pub children: Vec<NodeId>,
    pub leaf: Option<Leaf>,
    pub command: Option<CommandSpec>,
    /// Depth-first order of leaves, so stored keys sort in dump order.
    pub leaf_index: usize,
}

/// A tree of nodes (configuration, status or commands).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub roots: Vec<NodeId>,
}

/// The three trees of the model.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub config: Tree,
    pub status: Tree,
    pub commands: Tree,
}

/// Where the schema source itself is wrong (a bug in `xconf/`, caught by the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xconf/schema.xconf line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SchemaError {}

/// Case-insensitive ASCII prefix test.
pub fn starts_with_ci(word: &str, prefix: &str) -> bool {
    word.len() >= prefix.len()
        && word.is_char_boundary(prefix.len())
        && word[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Outcome of looking up one typed word among a node's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(NodeId),
    Ambiguous(Vec<String>),
    NotFound,
}

impl Tree {
    /// The nodes a word may name: the roots, or the children of `parent`.
    pub fn children_of(&self, parent: Option<NodeId>) -> &[NodeId] {
        match parent {
            None => &self.roots,
            Some(p) => &self.nodes[p].children,
        }
    }

    /// Exact (case-insensitive) match wins; otherwise a unique prefix.
    pub fn lookup(&self, parent: Option<NodeId>, word: &str) -> Lookup {
        let kids = self.children_of(parent);
        if let Some(&id) = kids
            .iter()
            .find(|&&id| self.nodes[id].name.eq_ignore_ascii_case(word))
        {
            return Lookup::Found(id);
        }
        let hits: Vec<NodeId> = kids
            .iter()
            .copied()
            .filter(|&id| starts_with_ci(&self.nodes[id].name, word))
            .collect();
        match hits.len() {
            0 => Lookup::NotFound,
            1 => Lookup::Found(hits[0]),
            _ => Lookup::Ambiguous(hits.iter().map(|&id| self.nodes[id].name.clone()).collect()),
        }
    }

    /// Names of the children of `parent`, in schema order.
    pub fn child_names(&self, parent: Option<NodeId>) -> Vec<String> {
        self.children_of(parent)
            .iter()
            .map(|&id| self.nodes[id].name.clone())
            .collect()
    }

    /// The path of node names from a root down to `id`.
    pub fn ancestry(&self, id: NodeId) -> Vec<NodeId> {
        let mut v = vec![id];
        let mut cur = id;
        while let Some(p) = self.nodes[cur].parent {
            v.push(p);
            cur = p;
        }
        v.reverse();
        v
    }

    /// All leaves at or under `id`, depth first.
    pub fn leaves_under(&self, id: NodeId, out: &mut Vec<NodeId>) {
        if self.nodes[id].leaf.is_some() || self.nodes[id].command.is_some() {
            out.push(id);
        }
        for &c in &self.nodes[id].children {
            self.leaves_under(c, out);
        }
    }

    /// The node the exact path words name (instance ranges ignored), for `local` records.
    pub(super) fn find_exact(&self, words: &[(String, Option<(u32, u32)>)]) -> Option<NodeId> {
        let mut parent: Option<NodeId> = None;
        for (name, _) in words {
            let id = self
                .children_of(parent)
                .iter()
                .copied()
                .find(|&id| self.nodes[id].name == *name)?;
            parent = Some(id);
        }
        parent
    }

    /// The nearest instance node at or above `id`.
    pub fn instance_ancestors(&self, id: NodeId) -> Vec<NodeId> {
        self.ancestry(id)
            .into_iter()
            .filter(|&n| self.nodes[n].instances.is_some())
            .collect()
    }

    fn insert(
        &mut self,
        words: &[(String, Option<(u32, u32)>)],
        line: usize,
    ) -> Result<NodeId, SchemaError> {
        let mut parent: Option<NodeId> = None;
        for (name, inst) in words {
            let existing = self
                .children_of(parent)
                .iter()
                .copied()
                .find(|&id| self.nodes[id].name == *name);
            let id = match existing {
                Some(id) => {
                    if self.nodes[id].instances != *inst {
                        return Err(SchemaError {
                            line,
                            message: format!(
                                "'{name}' is declared with two different instance ranges"
                            ),
                        });
                    }
                    id
                }
                None => {
                    let id = self.nodes.len();
                    self.nodes.push(Node {
                        name: name.clone(),
                        parent,
                        instances: *inst,
                        children: Vec::new(),
                        leaf: None,
                        command: None,
                        leaf_index: 0,
                    });
                    match parent {
                        None => self.roots.push(id),
                        Some(p) => self.nodes[p].children.push(id),
                    }
                    id
                }
            };
            parent = Some(id);
        }
        parent.ok_or_else(|| SchemaError {
            line,
            message: "empty path".into(),
        })
    }

    fn number_leaves(&mut self) {
        let mut order = Vec::new();
        for &r in &self.roots.clone() {
            self.leaves_under(r, &mut order);
        }
        for (i, id) in order.into_iter().enumerate() {
            self.nodes[id].leaf_index = i;
        }
    }
}

/// The process-wide schema, parsed once from the embedded table.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| match Schema::parse(SCHEMA_SOURCE) {
        Ok(s) => s,
        // The table is compiled in and covered by tests; a broken one is a build defect.
        Err(e) => panic!("{e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_parses() {
        let s = Schema::parse(SCHEMA_SOURCE).unwrap();
        let sip = match s.config.lookup(None, "sip") {
            Lookup::Found(id) => id,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.config.nodes[sip].name, "SIP");
        assert!(!s.status.roots.is_empty());
        assert!(!s.commands.roots.is_empty());
    }

    #[test]
    fn value_spaces() {
        assert_eq!(
            value_space("<On/Off>").unwrap().1,
            ValueSpace::Enum(vec!["On".into(), "Off".into()])
        );
        assert_eq!(
            value_space("<1..65534>").unwrap().1,
            ValueSpace::Int { min: 1, max: 65534 }
        );
        assert_eq!(
            value_space("<S: 0, 255>").unwrap().1,
            ValueSpace::Str { min: 0, max: 255 }
        );
        let on_off = ValueSpace::Enum(vec!["On".into(), "Off".into()]);
        assert_eq!(on_off.validate("ON"), Ok("On".to_string()));
        assert!(on_off.validate("maybe").is_err());
        let port = ValueSpace::Int { min: 1, max: 65534 };
        assert_eq!(port.validate("0050"), Ok("50".into()));
        for (space, raw) in [
            (&port, "0050"),
            (&port, "50"),
            (&port, "+5"),
            (&port, "65535"),
            (&port, " 7"),
            (&port, "-0"),
            (&on_off, "ON"),
            (&on_off, "Off"),
            (&ValueSpace::Int { min: -5, max: 5 }, "-3"),
            (&ValueSpace::Int { min: -5, max: 5 }, "-03"),
            (&ValueSpace::Str { min: 0, max: 3 }, "a\tb"),
            (&ValueSpace::Str { min: 0, max: 3 }, "abcd"),
            (&ValueSpace::Str { min: 0, max: 3 }, "ab\u{7f}"),
        ] {
            let same = space.validate(raw).is_ok_and(|v| v == raw);
            assert_eq!(space.is_canonical(raw), same, "{space} {raw:?}");
        }
        assert!(port.validate("65535").is_err());
    }

    #[test]
    fn prefixes_and_ambiguity() {
        let s = schema();
        let sip = match s.config.lookup(None, "SIP") {
            Lookup::Found(id) => id,
            other => panic!("{other:?}"),
        };
        let tls = match s.config.lookup(Some(sip), "tl") {
            Lookup::Found(id) => id,
            other => panic!("{other:?}"),
        };
        assert!(matches!(s.config.lookup(Some(tls), "H"), Lookup::Found(_)));
        assert!(matches!(s.config.lookup(None, "S"), Lookup::Ambiguous(_)));
    }

    #[test]
    fn defaults_are_inside_their_value_space() {
        let bad = "[configuration]\nconfig A B: <1..5> default \"9\" help \"x\"\n";
        assert_eq!(Schema::parse(bad).unwrap_err().line, 2);
    }
}
