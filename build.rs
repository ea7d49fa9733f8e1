//! Generates typed configuration accessors from the one table, `xconf/schema.xconf`: a value-space
//! enum per `<A/B/...>` of a configuration leaf (into `schema::values`) and one method per node of
//! the configuration tree (into `store::typed`), so `cfg.sip().tls().port()` is a `u16` and a
//! misspelt path does not compile. The table's record grammar is grammar/valuespace.ebnf; this
//! reads only what the accessors need (path words, instance ranges, value space, default,
//! deprecation) and the schema room's own parser stays the judge of the table (its tests fail on
//! a bad line; here a line that does not fit stops the build with its number).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

const SCHEMA: &str = "xconf/schema.xconf";

#[derive(Debug, Clone)]
enum Space {
    Enum(Vec<String>),
    Int { min: i64, max: i64 },
    Str,
}

#[derive(Debug, Clone)]
struct LeafRec {
    space: Space,
    default: String,
    deprecated: Option<String>,
    help: String,
}

#[derive(Debug, Default)]
struct Node {
    name: String,
    instances: Option<(u32, u32)>,
    children: Vec<usize>,
    leaf: Option<LeafRec>,
    /// Names from the root down to this node.
    path: Vec<String>,
}

fn fail(line: usize, msg: &str) -> ! {
    panic!("{SCHEMA} line {line}: {msg}");
}

/// The text of a `"..."` attribute value after `key ` in `rest`, unescaped.
fn attr(rest: &str, key: &str, line: usize) -> Option<String> {
    let at = rest.find(&format!("{key} \""))? + key.len() + 2;
    let mut out = String::new();
    let mut it = rest[at..].chars();
    while let Some(c) = it.next() {
        match c {
            '"' => return Some(out),
            '\\' => match it.next() {
                Some(e @ ('"' | '\\')) => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => fail(line, "unterminated quote"),
            },
            c => out.push(c),
        }
    }
    fail(line, "unterminated quote")
}

fn space(vs: &str, line: usize) -> Space {
    if let Some((a, b)) = vs.split_once("..") {
        let p = |s: &str| {
            s.trim()
                .parse::<i64>()
                .unwrap_or_else(|_| fail(line, "bad range"))
        };
        return Space::Int {
            min: p(a),
            max: p(b),
        };
    }
    if vs.starts_with("S:") || vs == "S" {
        return Space::Str;
    }
    Space::Enum(vs.split('/').map(str::to_string).collect())
}

fn parse(src: &str) -> Vec<Node> {
    let mut nodes = vec![Node::default()]; // 0: the root of the configuration tree
    let mut in_config = false;
    for (i, raw) in src.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.starts_with('[') {
            in_config = t == "[configuration]";
            continue;
        }
        let Some(rec) = t.strip_prefix("config ").filter(|_| in_config) else {
            continue;
        };
        let (path, rest) = rec.split_once(':').unwrap_or_else(|| fail(line, "no ':'"));
        let rest = rest.trim_start();
        let close = rest
            .find('>')
            .unwrap_or_else(|| fail(line, "no value space"));
        let vs = space(&rest[1..close], line);
        let rest = &rest[close + 1..];
        let leaf = LeafRec {
            space: vs,
            default: attr(rest, "default", line).unwrap_or_default(),
            deprecated: attr(rest, "deprecated", line),
            help: attr(rest, "help", line).unwrap_or_default(),
        };
        let mut words = path.split_whitespace().peekable();
        let mut cur = 0;
        while let Some(w) = words.next() {
            let inst = match words.peek() {
                Some(r) if r.starts_with('[') => {
                    let r = words.next().unwrap_or_default();
                    let (a, b) = r
                        .trim_matches(|c| c == '[' || c == ']')
                        .split_once("..")
                        .unwrap_or_else(|| fail(line, "bad instance range"));
                    let p = |s: &str| s.parse::<u32>().unwrap_or_else(|_| fail(line, "bad range"));
                    Some((p(a), p(b)))
                }
                _ => None,
            };
            let found = nodes[cur]
                .children
                .iter()
                .copied()
                .find(|&c| nodes[c].name == w);
            cur = match found {
                Some(c) => c,
                None => {
                    let mut p = nodes[cur].path.clone();
                    p.push(w.to_string());
                    nodes.push(Node {
                        name: w.to_string(),
                        instances: inst,
                        children: Vec::new(),
                        leaf: None,
                        path: p,
                    });
                    let id = nodes.len() - 1;
                    nodes[cur].children.push(id);
                    id
                }
            };
        }
        nodes[cur].leaf = Some(leaf);
    }
    nodes
}

/// `ExtendedKeyUsage` -> `extended_key_usage`, `CSRFProtection` -> `csrf_protection`.
fn snake(name: &str) -> String {
    let c: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &ch) in c.iter().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            let prev = c[i - 1];
            let next_lower = c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

fn method(name: &str) -> String {
    let s = snake(name);
    match s.as_str() {
        "type" | "mod" | "match" | "loop" | "move" | "ref" | "self" | "static" | "use" => {
            format!("r#{s}")
        }
        _ => s,
    }
}

fn camel(names: &[String]) -> String {
    let mut out = String::new();
    for n in names {
        for part in snake(n).split('_') {
            let mut ch = part.chars();
            if let Some(f) = ch.next() {
                out.push(f.to_ascii_uppercase());
                out.push_str(ch.as_str());
            }
        }
    }
    out
}

fn enum_name(words: &[String]) -> String {
    words.concat()
}

fn int_type(min: i64, max: i64) -> &'static str {
    if min >= 0 && max <= i64::from(u16::MAX) {
        "u16"
    } else if min >= 0 && max <= i64::from(u32::MAX) {
        "u32"
    } else {
        "i64"
    }
}

fn doc(s: &str) -> String {
    s.replace('\n', " ")
}

fn gen_enums(nodes: &[Node]) -> String {
    let mut spaces: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in nodes {
        if let Some(LeafRec {
            space: Space::Enum(w),
            ..
        }) = &n.leaf
        {
            spaces.insert(enum_name(w), w.clone());
        }
    }
    let mut s = String::new();
    for (name, words) in &spaces {
        let _ = writeln!(
            s,
            "/// The value space `<{}>`.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub enum {name} {{",
            words.join("/")
        );
        for w in words {
            let _ = writeln!(s, "    {w},");
        }
        let _ = writeln!(s, "}}\n\nimpl {name} {{");
        let _ = writeln!(
            s,
            "    /// Every value, in the schema's order.\n    pub const ALL: [{name}; {}] = [{}];",
            words.len(),
            words
                .iter()
                .map(|w| format!("{name}::{w}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            s,
            "    /// The canonical spelling, as stored.\n    pub fn as_str(self) -> &'static str {{\n        match self {{"
        );
        for w in words {
            let _ = writeln!(s, "            {name}::{w} => \"{w}\",");
        }
        let _ = writeln!(s, "        }}\n    }}");
        let _ = writeln!(
            s,
            "    /// The value for its canonical spelling (stored values are canonical).\n    pub fn from_word(w: &str) -> Option<{name}> {{\n        match w {{"
        );
        for w in words {
            let _ = writeln!(s, "            \"{w}\" => Some({name}::{w}),");
        }
        let _ = writeln!(s, "            _ => None,\n        }}\n    }}\n}}\n");
        let _ = writeln!(
            s,
            "impl std::fmt::Display for {name} {{\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n        f.write_str(self.as_str())\n    }}\n}}\n"
        );
    }
    s
}

/// The accessor of one leaf (`idx` in the path table; `root`: its owner is `Config` itself) and
/// the line of the defaults test that calls it through `expr`.
fn leaf_method(ch: &Node, leaf: &LeafRec, idx: usize, root: bool, expr: &str) -> (String, String) {
    let m = method(&ch.name);
    let words = ch.path.join(" ");
    let help = doc(&leaf.help);
    let dep = leaf
        .deprecated
        .as_ref()
        .map(|d| format!("    #[deprecated = {:?}]\n", doc(d)))
        .unwrap_or_default();
    let inst = if root { "&[]" } else { "&self.inst" };
    let cfg = if root { "self" } else { "self.cfg" };
    let raw = format!("{cfg}.raw_at({idx}, {inst})");
    let (ty, body) = match &leaf.space {
        Space::Int { min, max } => (
            int_type(*min, *max).to_string(),
            format!(
                "{raw}.and_then(|v| v.parse().ok()).unwrap_or({})",
                leaf.default
            ),
        ),
        Space::Str => (
            "&'a str".to_string(),
            format!("{raw}.unwrap_or({:?})", leaf.default),
        ),
        Space::Enum(w) => {
            let e = enum_name(w);
            let body = format!(
                "{raw}.and_then({e}::from_word).unwrap_or({e}::{})",
                leaf.default
            );
            (e, body)
        }
    };
    let ty = if root { ty.replace("'a", "'_") } else { ty };
    let method = format!(
        "    /// `{words}`: {help} Default `{}`.\n{dep}    pub fn {m}(&self) -> {ty} {{\n        {body}\n    }}\n\n",
        leaf.default
    );
    let call = format!("{expr}.{m}()");
    let path = &ch.path;
    let test = if leaf.deprecated.is_some() {
        format!("        #[allow(deprecated)]\n        let v = {call}.to_string();\n        assert_eq!(v, default_of(&{path:?}), {words:?});\n")
    } else {
        format!("        assert_eq!({call}.to_string(), default_of(&{path:?}), {words:?});\n")
    };
    (method, test)
}

/// Accessor structs and methods, plus the table of node paths they index.
fn gen_access(nodes: &[Node]) -> String {
    let mut s = String::new();
    let mut tests = String::new();
    // `depth`: how many instance numbers the struct of node `id` carries.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        nodes: &[Node],
        id: usize,
        depth: usize,
        expr: &str,
        out: &mut String,
        tests: &mut String,
        table: &mut Vec<Vec<String>>,
    ) {
        let n = &nodes[id];
        let owner = if id == 0 {
            "Config".to_string()
        } else {
            camel(&n.path)
        };
        let mut methods = String::new();
        for &c in &n.children {
            let ch = &nodes[c];
            let m = method(&ch.name);
            let words = ch.path.join(" ");
            if let Some(leaf) = &ch.leaf {
                let (method, test) = leaf_method(ch, leaf, table.len(), id == 0, expr);
                table.push(ch.path.clone());
                methods.push_str(&method);
                tests.push_str(&test);
                continue;
            }
            let st = camel(&ch.path);
            let self_cfg = if id == 0 { "self" } else { "self.cfg" };
            match ch.instances {
                Some((lo, hi)) => {
                    let idx = table.len();
                    table.push(ch.path.clone());
                    let outer = if id == 0 { "[]" } else { "self.inst" };
                    let life = if id == 0 { "'_" } else { "'a" };
                    let snake_name = snake(&ch.name);
                    let _ = writeln!(
                        methods,
                        "    /// `{words} [{lo}..{hi}]` instance `n`.\n    pub fn {m}(&self, n: u32) -> {st}<{life}> {{\n        let outer: [u32; {depth}] = {outer};\n        let mut inst = [0u32; {d1}];\n        inst[..{depth}].copy_from_slice(&outer);\n        inst[{depth}] = n;\n        {st} {{ cfg: {self_cfg}, inst }}\n    }}\n\n    /// The configured instances of `{words}` (those with a stored value), in order.\n    pub fn {snake_name}_instances(&self) -> impl Iterator<Item = {st}<{life}>> + {life} {{\n        let cfg = {self_cfg};\n        let outer: [u32; {depth}] = {outer};\n        cfg.instances_at({idx}, &outer)\n            .into_iter()\n            .map(move |n| {{\n                let mut inst = [0u32; {d1}];\n                inst[..{depth}].copy_from_slice(&outer);\n                inst[{depth}] = n;\n                {st} {{ cfg, inst }}\n            }})\n    }}\n",
                        d1 = depth + 1
                    );
                    let _ = writeln!(
                        out,
                        "/// `{words}`: one instance.\n#[derive(Debug, Clone, Copy)]\npub struct {st}<'a> {{\n    cfg: &'a Config,\n    inst: [u32; {}],\n}}\n\nimpl {st}<'_> {{\n    /// The instance number.\n    pub fn id(&self) -> u32 {{\n        self.inst[{depth}]\n    }}\n}}\n",
                        depth + 1
                    );
                    walk(
                        nodes,
                        c,
                        depth + 1,
                        &format!("{expr}.{m}({lo})"),
                        out,
                        tests,
                        table,
                    );
                }
                None => {
                    let inst = if id == 0 {
                        "[]".to_string()
                    } else {
                        "self.inst".to_string()
                    };
                    let life = if id == 0 { "'_" } else { "'a" };
                    let _ = writeln!(
                        methods,
                        "    /// `{words}`.\n    pub fn {m}(&self) -> {st}<{life}> {{\n        {st} {{ cfg: {self_cfg}, inst: {inst} }}\n    }}\n"
                    );
                    let _ = writeln!(
                        out,
                        "/// `{words}`.\n#[derive(Debug, Clone, Copy)]\npub struct {st}<'a> {{\n    cfg: &'a Config,\n    inst: [u32; {depth}],\n}}\n"
                    );
                    walk(nodes, c, depth, &format!("{expr}.{m}()"), out, tests, table);
                }
            }
        }
        if id == 0 {
            let _ = writeln!(out, "impl Config {{\n{methods}}}\n");
        } else {
            let _ = writeln!(out, "impl<'a> {owner}<'a> {{\n{methods}}}\n");
        }
    }
    let mut table: Vec<Vec<String>> = Vec::new();
    walk(nodes, 0, 0, "cfg", &mut s, &mut tests, &mut table);
    let mut head = String::new();
    let _ = writeln!(
        head,
        "/// Path words of the nodes the accessors name, by the index they pass.\npub(super) const PATHS: [&[&str]; {}] = [",
        table.len()
    );
    for p in &table {
        let _ = writeln!(head, "    &{p:?},");
    }
    let _ = writeln!(head, "];\n");
    let _ = writeln!(
        s,
        "#[cfg(test)]\n/// Every accessor on an empty configuration says the schema's default.\npub(super) fn check_defaults(cfg: &Config, default_of: impl Fn(&[&str]) -> String) {{\n{tests}}}"
    );
    head + &s
}

fn main() {
    println!("cargo:rerun-if-changed={SCHEMA}");
    println!("cargo:rerun-if-changed=build.rs");
    let src =
        std::fs::read_to_string(SCHEMA).unwrap_or_else(|e| panic!("cannot read {SCHEMA}: {e}"));
    let nodes = parse(&src);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    std::fs::write(out.join("config_values.rs"), gen_enums(&nodes))
        .expect("cannot write config_values.rs");
    std::fs::write(out.join("config_access.rs"), gen_access(&nodes))
        .expect("cannot write config_access.rs");
}
