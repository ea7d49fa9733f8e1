//! XML output: shell replies wrapped in `<XmlDoc resultId="...">`, the dumps with the product's
//! namespace, and the XSD of the dumps, generated from the schema.

use std::collections::BTreeMap;

use super::{CommandResult, DocKind, Item};
use crate::error::ShellError;
use crate::peer_text::visible;
use crate::schema::{Tree, ValueSpace, PRODUCT, VERSION, XML_NS};

/// Escapes text and attribute values. Characters XML 1.0 forbids (C0 but for tab, newline and
/// carriage return; U+FFFE, U+FFFF), and the other controls a terminal would act on when the
/// document is printed, are written as visible `\x1b`-style text first ([`visible`]), so
/// the document is always well-formed.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    esc_into(s, &mut o);
    o
}

/// Appends `s` escaped to `o` (most values need no escaping: one copy then).
fn esc_into(s: &str, o: &mut String) {
    let s = visible(s, true);
    if !s
        .bytes()
        .any(|b| matches!(b, b'<' | b'>' | b'&' | b'"' | b'\''))
    {
        o.push_str(&s);
        return;
    }
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
}

fn items(list: &[Item], indent: usize, out: &mut String) {
    for it in list {
        for _ in 0..indent {
            out.push(' ');
        }
        match it {
            Item::Leaf {
                name,
                value,
                space_ref,
            } => {
                out.push('<');
                out.push_str(name);
                if let Some(r) = space_ref {
                    out.push_str(" valueSpaceRef=\"");
                    esc_into(r, out);
                    out.push('"');
                }
                out.push('>');
                esc_into(value, out);
                out.push_str("</");
                out.push_str(name);
                out.push_str(">\n");
            }
            Item::Node {
                name,
                item,
                children,
            } => {
                out.push('<');
                out.push_str(name);
                if let Some(n) = item {
                    out.push_str(" item=\"");
                    out.push_str(&n.to_string());
                    out.push('"');
                }
                out.push_str(">\n");
                items(children, indent + 2, out);
                for _ in 0..indent {
                    out.push(' ');
                }
                out.push_str("</");
                out.push_str(name);
                out.push_str(">\n");
            }
        }
    }
}

/// A dump document (`xconf_dump_*.xml`, `xstat_dump_*.xml`, `xGetXML`), with namespace.
pub fn document(kind: DocKind, list: &[Item]) -> String {
    let mut out = String::with_capacity(256 + super::size_hint(list));
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<{} xmlns=\"{XML_NS}\" product=\"{PRODUCT}\" version=\"{VERSION}\">\n",
        kind.root()
    ));
    items(list, 2, &mut out);
    out.push_str(&format!("</{}>\n", kind.root()));
    out
}

fn open_doc(result_id: Option<&str>, out: &mut String) {
    out.push_str(&format!(
        "<XmlDoc resultId=\"{}\">\n",
        esc(result_id.unwrap_or(""))
    ));
}

/// A shell reply holding a configuration or status subtree.
pub fn reply(kind: DocKind, list: &[Item], result_id: Option<&str>) -> String {
    let mut out = String::new();
    open_doc(result_id, &mut out);
    out.push_str(&format!("  <{}>\n", kind.root()));
    items(list, 4, &mut out);
    out.push_str(&format!("  </{}>\n", kind.root()));
    out.push_str("</XmlDoc>\n");
    out
}

/// A shell reply with no content (a successful set).
pub fn empty(result_id: Option<&str>) -> String {
    format!("<XmlDoc resultId=\"{}\"/>\n", esc(result_id.unwrap_or("")))
}

/// A command result.
pub fn result(r: &CommandResult, result_id: Option<&str>) -> String {
    let mut out = String::new();
    open_doc(result_id, &mut out);
    out.push_str("  <CommandResponse>\n");
    out.push_str(&format!(
        "    <{} status=\"{}\">\n",
        r.name,
        r.status.as_str()
    ));
    items(&r.fields, 6, &mut out);
    out.push_str(&format!("    </{}>\n", r.name));
    out.push_str("  </CommandResponse>\n</XmlDoc>\n");
    out
}

/// Help text lines.
pub fn help(lines: &[String], result_id: Option<&str>) -> String {
    let mut out = String::new();
    open_doc(result_id, &mut out);
    out.push_str("  <Help>\n");
    for l in lines {
        out.push_str(&format!("    <Line>{}</Line>\n", esc(l)));
    }
    out.push_str("  </Help>\n</XmlDoc>\n");
    out
}

/// An error reply.
pub fn error(e: &ShellError, result_id: Option<&str>, command_name: Option<&str>) -> String {
    let status = super::json::error_status(e);
    let name = command_name.unwrap_or("Result");
    let mut fields = vec![
        Item::leaf("Reason", e.code.reason()),
        Item::leaf("XPath", e.xpath()),
        Item::leaf("Code", e.code.as_str()),
    ];
    if let Some(c) = e.shown_column() {
        fields.push(Item::leaf("Column", c.to_string()));
    }
    fields.push(Item::leaf("Detail", e.message.clone()));
    if let Some(x) = &e.expected {
        fields.push(Item::leaf("Expected", x.clone()));
    }
    if let Some(h) = &e.hint {
        fields.push(Item::leaf("Hint", h.clone()));
    }
    let mut out = result(
        &CommandResult {
            name: name.into(),
            status,
            fields,
        },
        result_id,
    );
    out.push_str("ERROR\n");
    out
}

/// The XSD for a dump of `tree`, rooted at `kind`.
pub fn xsd(tree: &Tree, kind: DocKind) -> String {
    let mut types: BTreeMap<String, ValueSpace> = BTreeMap::new();
    let mut body = String::new();
    for &r in &tree.roots {
        xsd_node(
            tree,
            r,
            8,
            &mut types,
            &mut body,
            kind == DocKind::Configuration,
        );
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<!-- Generated from xconf/schema.xconf by xsh (print-xsd {}); do not edit. -->\n",
        if kind == DocKind::Configuration {
            "config"
        } else {
            "status"
        }
    ));
    out.push_str(&format!(
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" targetNamespace=\"{XML_NS}\" xmlns=\"{XML_NS}\" elementFormDefault=\"qualified\">\n"
    ));
    out.push_str(&format!(
        "  <xs:element name=\"{}\">\n    <xs:complexType>\n      <xs:sequence>\n",
        kind.root()
    ));
    out.push_str(&body);
    out.push_str("      </xs:sequence>\n      <xs:attribute name=\"product\" type=\"xs:string\"/>\n      <xs:attribute name=\"version\" type=\"xs:string\"/>\n    </xs:complexType>\n  </xs:element>\n");
    for (name, vs) in &types {
        out.push_str(&format!("  <xs:simpleType name=\"{name}\">\n"));
        match vs {
            ValueSpace::Enum(words) => {
                out.push_str("    <xs:restriction base=\"xs:string\">\n");
                for w in words {
                    out.push_str(&format!("      <xs:enumeration value=\"{}\"/>\n", esc(w)));
                }
            }
            ValueSpace::Int { min, max } => {
                out.push_str("    <xs:restriction base=\"xs:integer\">\n");
                out.push_str(&format!("      <xs:minInclusive value=\"{min}\"/>\n      <xs:maxInclusive value=\"{max}\"/>\n"));
            }
            ValueSpace::Str { min, max } => {
                out.push_str("    <xs:restriction base=\"xs:string\">\n");
                out.push_str(&format!("      <xs:minLength value=\"{min}\"/>\n      <xs:maxLength value=\"{max}\"/>\n"));
            }
            ValueSpace::AnyStr => out.push_str("    <xs:restriction base=\"xs:string\">\n"),
            ValueSpace::AnyInt => out.push_str("    <xs:restriction base=\"xs:integer\">\n"),
        }
        out.push_str("    </xs:restriction>\n  </xs:simpleType>\n");
    }
    out.push_str("</xs:schema>\n");
    out
}

fn xsd_node(
    tree: &Tree,
    id: usize,
    indent: usize,
    types: &mut BTreeMap<String, ValueSpace>,
    out: &mut String,
    refs: bool,
) {
    let n = &tree.nodes[id];
    let pad = " ".repeat(indent);
    if let Some(leaf) = &n.leaf {
        let t = leaf.space.type_name();
        types.insert(t.clone(), leaf.space.clone());
        if refs {
            out.push_str(&format!(
                "{pad}<xs:element name=\"{}\" minOccurs=\"0\">\n{pad}  <xs:complexType>\n{pad}    <xs:simpleContent>\n{pad}      <xs:extension base=\"{t}\">\n{pad}        <xs:attribute name=\"valueSpaceRef\" type=\"xs:string\"/>\n{pad}      </xs:extension>\n{pad}    </xs:simpleContent>\n{pad}  </xs:complexType>\n{pad}</xs:element>\n",
                n.name
            ));
        } else {
            out.push_str(&format!(
                "{pad}<xs:element name=\"{}\" type=\"{t}\" minOccurs=\"0\"/>\n",
                n.name
            ));
        }
        return;
    }
    let max = if n.instances.is_some() {
        "unbounded"
    } else {
        "1"
    };
    out.push_str(&format!(
        "{pad}<xs:element name=\"{}\" minOccurs=\"0\" maxOccurs=\"{max}\">\n{pad}  <xs:complexType>\n{pad}    <xs:sequence>\n",
        n.name
    ));
    for &c in &n.children {
        xsd_node(tree, c, indent + 6, types, out, refs);
    }
    out.push_str(&format!("{pad}    </xs:sequence>\n"));
    if let Some((lo, hi)) = n.instances {
        let t = format!("Item_{lo}_{hi}");
        types.insert(
            t.clone(),
            ValueSpace::Int {
                min: lo as i64,
                max: hi as i64,
            },
        );
        out.push_str(&format!(
            "{pad}    <xs:attribute name=\"item\" type=\"{t}\" use=\"required\"/>\n"
        ));
    }
    out.push_str(&format!("{pad}  </xs:complexType>\n{pad}</xs:element>\n"));
}
