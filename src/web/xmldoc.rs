//! `putxml` bodies: a `<Configuration>` or `<Command>` document read with serde_xml_rs into an
//! ordered tree (elements, attributes, text), with size and depth limits and no DOCTYPE, then
//! turned into engine requests through [`crate::engine::structured`] (never through a typed line,
//! so a value can hold quotes, colons or newlines and stay one value).
//!
//! serde_xml_rs has no `deserialize_any`, so the tree comes from a hand-written map visitor:
//! child element names are keys, attributes arrive as `@name` (only through
//! `deserialize_struct`), text as `#text`. The root's own
//! name is not visible to it, so the body is wrapped in one more element first.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::engine::structured::{self, Step};
use crate::engine::Request;
use crate::error::{Area, Code, ShellError};

/// The largest `putxml` body, and the deepest nesting and most elements it may hold.
pub const MAX_DOC: usize = 256 * 1024;
pub const MAX_DEPTH: usize = 32;
pub const MAX_LEAVES: usize = 2000;

/// One element: its attributes, its text, its children in document order (repeated names
/// kept, as `<Zone item="1">`, `<Zone item="2">` need).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Node {
    pub attrs: Vec<(String, String)>,
    pub text: Option<String>,
    pub children: Vec<(String, Node)>,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an XML element")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut n = Node::default();
                while let Some(k) = m.next_key::<String>()? {
                    if let Some(a) = k.strip_prefix('@') {
                        n.attrs.push((a.to_owned(), m.next_value::<String>()?));
                    } else if k == "#text" || k == "$value" {
                        n.text = Some(m.next_value::<String>()?);
                    } else {
                        n.children.push((k, m.next_value::<Node>()?));
                    }
                }
                Ok(n)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Node, E> {
                Ok(Node {
                    text: Some(s.into()),
                    ..Node::default()
                })
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Node, E> {
                Ok(Node {
                    text: Some(s),
                    ..Node::default()
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::default())
            }
        }
        // `deserialize_map` drops the element's attributes in serde-xml-rs 0.8; a struct with
        // no declared fields keeps them (as `@name` keys) and still names every child.
        d.deserialize_struct("Node", &[], V)
    }
}

/// What a `putxml` document asks for.
#[derive(Debug)]
pub enum Doc {
    /// Leaves to set, in document order, all in one transaction.
    Configuration(Vec<Request>),
    /// One command.
    Command(Request),
}

fn bad(msg: impl Into<String>) -> ShellError {
    ShellError::new(Code::Unexpected, 0, msg)
        .expected("<Configuration>…</Configuration> or <Command>…</Command>")
        .area(Area::Line)
}

/// Reads a `putxml` body into requests. Refuses a DOCTYPE or entity declaration (no entity
/// expansion, ever), a body over [`MAX_DOC`], nesting past [`MAX_DEPTH`], and anything but one
/// `Configuration` or `Command` root.
pub fn parse(body: &str) -> Result<Doc, ShellError> {
    if body.len() > MAX_DOC {
        return Err(bad(format!(
            "the document is {} bytes; at most {MAX_DOC} are accepted",
            body.len()
        )));
    }
    let upper = body.to_ascii_uppercase();
    if upper.contains("<!DOCTYPE") || upper.contains("<!ENTITY") {
        return Err(bad(
            "the document has a DOCTYPE or entity declaration, which is refused",
        ));
    }
    let mut rest = body.trim_start_matches('\u{feff}').trim_start();
    if rest.starts_with("<?xml") {
        rest = rest
            .find("?>")
            .map(|i| &rest[i + 2..])
            .ok_or_else(|| bad("the XML declaration has no closing ?>"))?;
    }
    check_depth(rest)?;
    let wrapped = format!("<putxml>{rest}</putxml>");
    let doc: Node = serde_xml_rs::from_str(&wrapped)
        .map_err(|e| bad(format!("the document is not well-formed XML: {e}")))?;
    match doc.children.as_slice() {
        [(name, node)] if name.eq_ignore_ascii_case("Configuration") => {
            let mut out = Vec::new();
            config_leaves(node, &mut Vec::new(), &mut out)?;
            if out.is_empty() {
                return Err(bad("the <Configuration> document sets no leaf"));
            }
            Ok(Doc::Configuration(out))
        }
        [(name, node)] if name.eq_ignore_ascii_case("Command") => command(node).map(Doc::Command),
        [] => Err(bad("the document is empty")),
        [(name, _)] => Err(bad(format!("the document's root is <{name}>"))),
        _ => Err(bad("the document has more than one root element")),
    }
}

/// Nesting depth counted on the raw text before the parser builds anything.
fn check_depth(text: &str) -> Result<(), ShellError> {
    let (mut depth, mut max) = (0usize, 0usize);
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c != b'<' {
            continue;
        }
        match b.get(i + 1) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(b'?' | b'!') => {}
            _ => {
                let end = text[i..].find('>').map_or(text.len(), |e| i + e);
                if !text[..end].ends_with('/') {
                    depth += 1;
                    max = max.max(depth);
                }
            }
        }
    }
    if max > MAX_DEPTH {
        return Err(bad(format!(
            "the document nests {max} elements deep; at most {MAX_DEPTH} are accepted"
        )));
    }
    Ok(())
}

/// The path steps of `name` with its `item="N"` attribute.
fn push_steps(name: &str, node: &Node, path: &mut Vec<Step>) -> Result<usize, ShellError> {
    path.push(Step::Word(name.to_string()));
    if let Some(item) = node.attr("item") {
        let n = item.trim().parse::<u32>().map_err(|_| {
            bad(format!(
                "<{name} item=\"{item}\">: item is not an instance number"
            ))
            .expected("item=\"N\" with N a number")
        })?;
        path.push(Step::Index(n));
        return Ok(2);
    }
    Ok(1)
}

fn config_leaves(
    node: &Node,
    path: &mut Vec<Step>,
    out: &mut Vec<Request>,
) -> Result<(), ShellError> {
    for (name, child) in &node.children {
        let pushed = push_steps(name, child, path)?;
        if child.children.is_empty() {
            if out.len() >= MAX_LEAVES {
                return Err(bad(format!(
                    "the document sets more than {MAX_LEAVES} leaves"
                )));
            }
            let value = child.text.clone().unwrap_or_default();
            out.push(structured::config_set(path, &value)?);
        } else {
            config_leaves(child, path, out)?;
        }
        path.truncate(path.len() - pushed);
    }
    Ok(())
}

/// The element marked `command="True"` below `<Command>`, its children the parameters (a
/// repeated child is a parameter with several values; a child `<body>` is the multi-line body).
fn command(root: &Node) -> Result<Request, ShellError> {
    let mut path = Vec::new();
    let mut node = root;
    loop {
        let [(name, child)] = node.children.as_slice() else {
            return Err(bad(
                "a <Command> document names one command: one element per level down to the one with command=\"True\"",
            ));
        };
        path.push(Step::Word(name.clone()));
        let marked = child
            .attr("command")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        // An element whose children are all leaves (or that has none) is the command too:
        // clients that omit command="True" still say what they mean.
        let all_leaves = child.children.iter().all(|(_, c)| c.children.is_empty());
        if marked || all_leaves {
            let mut params: Vec<(String, Vec<String>)> = Vec::new();
            let mut body = None;
            for (p, v) in &child.children {
                let text = v.text.clone().unwrap_or_default();
                if p == "body" {
                    body = Some(text);
                } else if let Some(e) = params.iter_mut().find(|(n, _)| n == p) {
                    e.1.push(text);
                } else {
                    params.push((p.clone(), vec![text]));
                }
            }
            return structured::command(&path, &params, body);
        }
        if path.len() > MAX_DEPTH {
            return Err(bad("the command path is too deep"));
        }
        node = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(s: &str) -> Node {
        serde_xml_rs::from_str(&format!("<putxml>{s}</putxml>")).unwrap()
    }

    #[test]
    fn visitor_keeps_order_repeats_attributes_and_empty_elements() {
        let t = tree(
            "<Configuration xmlns=\"http://www.tandberg.no/XML/CUIL/1.0\">\n  <Zones>\n    <Zone item=\"1\"><Name>a</Name></Zone>\n    <Zone item=\"2\"><Name>b</Name></Zone>\n  </Zones>\n  <Success/>\n</Configuration>",
        );
        let (root, cfg) = &t.children[0];
        assert_eq!(root, "Configuration");
        let zones = &cfg.children[0].1;
        assert_eq!(zones.children.len(), 2);
        assert_eq!(zones.children[1].1.attr("item"), Some("2"));
        assert_eq!(zones.children[1].1.children[0].1.text.as_deref(), Some("b"));
        assert_eq!(cfg.children[1].0, "Success");
        assert!(cfg.children[1].1.children.is_empty());
    }

    #[test]
    fn configuration_becomes_sets_in_order() {
        let d = parse(
            "<?xml version=\"1.0\"?>\n<Configuration><SIP><TLS><Port>5062</Port></TLS></SIP><Zones><Zone item=\"3\"><Name>x \"y\" Port: 1</Name></Zone></Zones></Configuration>",
        )
        .unwrap();
        let Doc::Configuration(reqs) = d else {
            panic!()
        };
        assert_eq!(reqs.len(), 2);
        let line = |l: &str| crate::parse::parse_line(l).unwrap().action;
        assert_eq!(reqs[0].action, line("xConfiguration SIP TLS Port: 5062"));
        assert_eq!(
            reqs[1].action,
            line("xConfiguration Zones Zone 3 Name: \"x \\\"y\\\" Port: 1\""),
            "a value with quotes and a colon stays one value"
        );
    }

    #[test]
    fn refusals_carry_the_shells_codes() {
        assert!(parse("<!DOCTYPE x [<!ENTITY a \"b\">]><Configuration/>").is_err());
        assert!(parse("<Configuration><SIP>").is_err());
        assert!(parse("<Other/>").is_err());
        let e = parse("<Configuration><SIP><TLS><Port>x</Port></TLS></SIP></Configuration>")
            .unwrap_err();
        assert_eq!(e.code, Code::IllegalValue);
        let e = parse("<Configuration><Nope>1</Nope></Configuration>").unwrap_err();
        assert_eq!(e.code, Code::UnknownPath);
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert!(parse(&format!("<Configuration>{deep}</Configuration>"))
            .unwrap_err()
            .message
            .contains("deep"));
    }
}
