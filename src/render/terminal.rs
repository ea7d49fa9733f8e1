//! Terminal output, server dialect: `*c` lines, nested `*s` blocks, `*r` results, `*h` help, and
//! the terminator as the last line. Values of whole lines (PEM) in results and status print in
//! the multi-line form ([`is_block`]); XML and JSON keep them one string, escaped by the format.
//! Every value and message is written through [`visible`]: a control character that reached a
//! reply (a peer's certificate name, an error text) shows as `\x1b`, never as itself.

use super::{CommandResult, Item};
use crate::error::{Area, Code, ShellError};
use crate::peer_text::visible;

/// A quoted value for the terminal: control characters escaped, then the quoting rule.
fn quote(v: &str) -> String {
    super::quote(&visible(v, false))
}

/// `*c xConfiguration <path>: "<value>"` for every leaf under `items`.
pub fn config(items: &[Item], out: &mut String) {
    let mut prefix = String::from("*c xConfiguration");
    for it in items {
        config_item(it, &mut prefix, out);
    }
}

fn config_item(it: &Item, prefix: &mut String, out: &mut String) {
    match it {
        Item::Leaf { name, value, .. } => {
            out.push_str(prefix);
            out.push(' ');
            out.push_str(name);
            out.push_str(": ");
            super::quote_into(&visible(value, false), out);
            out.push('\n');
        }
        Item::Node {
            name,
            item,
            children,
        } => {
            let len = prefix.len();
            prefix.push(' ');
            prefix.push_str(name);
            if let Some(n) = item {
                prefix.push(' ');
                prefix.push_str(&n.to_string());
            }
            for c in children {
                config_item(c, prefix, out);
            }
            prefix.truncate(len);
        }
    }
}

/// Nested status blocks: one `*s <Top>: /` ... `*s/end` per top-level node.
pub fn status(items: &[Item], out: &mut String) {
    for it in items {
        match it {
            Item::Leaf { name, value, .. } => {
                out.push_str(&format!("*s {name}: {}\n*s/end\n", quote(value)));
            }
            Item::Node {
                name,
                item,
                children,
            } => {
                match item {
                    Some(n) => out.push_str(&format!("*s {name} {n}: /\n")),
                    None => out.push_str(&format!("*s {name}: /\n")),
                }
                for c in children {
                    nested(c, 4, out);
                }
                out.push_str("*s/end\n");
            }
        }
    }
}

fn nested(it: &Item, indent: usize, out: &mut String) {
    for _ in 0..indent {
        out.push(' ');
    }
    match it {
        Item::Leaf { name, value, .. } if is_block(value) => {
            out.push_str(name);
            out.push_str(":\n");
            out.push_str(&visible(value, true));
            out.push_str(".\n");
        }
        Item::Leaf { name, value, .. } => {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&quote(value));
            out.push('\n');
        }
        Item::Node {
            name,
            item,
            children,
        } => {
            out.push_str(name);
            if let Some(n) = item {
                out.push(' ');
                out.push_str(&n.to_string());
            }
            out.push_str(": /\n");
            for c in children {
                nested(c, indent + 2, out);
            }
        }
    }
}

/// A value printed in the multi-line form, the way a multi-line body is entered (xapi.md): the
/// key line ends at `:`, the lines follow verbatim from column 1 (a PEM block copies as it is),
/// then a line holding only `.`. Only for text of whole lines that form can carry unchanged (no
/// `\r`, no line that is itself `.`); anything else stays one quoted value.
fn is_block(v: &str) -> bool {
    v.len() > 1
        && v.ends_with('\n')
        && !v.contains('\r')
        && v.lines().all(|l| l != "." && !l.is_empty())
}

/// `*r <Name> (status=...):` block.
pub fn result(r: &CommandResult, out: &mut String) {
    out.push_str(&format!("*r {} (status={}):\n", r.name, r.status.as_str()));
    for f in &r.fields {
        nested(f, 4, out);
    }
    out.push_str("*r/end\n");
}

/// The tag line of a tagged reply.
pub fn result_id(id: Option<&str>, out: &mut String) {
    if let Some(id) = id {
        out.push_str(&format!("** resultId: {}\n", quote(id)));
    }
}

/// An error: the product-compatible line, a precise `*e` line, then the terminator.
pub fn error(e: &ShellError, result_id_tag: Option<&str>, command_name: Option<&str>) -> String {
    let mut out = String::new();
    result_id(result_id_tag, &mut out);
    let detail = {
        let mut d = format!(
            "*e {} column {}: {}",
            e.code.as_str(),
            e.column,
            visible(&e.message, false)
        );
        if let Some(x) = &e.expected {
            d.push_str("; expected ");
            d.push_str(&visible(x, false));
        }
        d.push('\n');
        d
    };
    match e.area {
        Area::Configuration | Area::Status => {
            let (mark, verb) = if e.area == Area::Configuration {
                ("*c", "xConfiguration")
            } else {
                ("*s", "xStatus")
            };
            let mut path = e.path.join(" ");
            if !path.is_empty() {
                path.insert(0, ' ');
            }
            out.push_str(&format!(
                "{mark} {verb}{path}: error: {}\n",
                quote(e.code.reason())
            ));
            out.push_str(&detail);
            out.push_str("ERROR\n");
        }
        Area::Command => {
            let status = match e.code {
                Code::UnknownParam
                | Code::MissingParam
                | Code::IllegalParam
                | Code::MissingValue
                | Code::BodyMismatch => "ParameterError",
                _ => "Error",
            };
            let name = command_name.unwrap_or("Result");
            out.push_str(&format!("*r {name} (status={status}):\n"));
            out.push_str(&format!("    Reason: {}\n", quote(e.code.reason())));
            out.push_str(&format!("    XPath: {}\n", quote(&e.xpath())));
            out.push_str(&format!("    Code: {}\n", quote(e.code.as_str())));
            if let Some(c) = e.shown_column() {
                out.push_str(&format!("    Column: \"{c}\"\n"));
            }
            out.push_str(&format!("    Detail: {}\n", quote(&e.message)));
            if let Some(x) = &e.expected {
                out.push_str(&format!("    Expected: {}\n", quote(x)));
            }
            if let Some(h) = &e.hint {
                out.push_str(&format!("    Hint: {}\n", quote(h)));
            }
            out.push_str("*r/end\n");
            out.push_str("ERROR\n");
        }
        Area::Line => {
            out.push_str(&format!("*e error: {}\n", quote(e.code.reason())));
            out.push_str(&detail);
            if matches!(e.code, Code::UnknownVerb | Code::AmbiguousVerb) {
                out.push_str("Command not recognized.\n");
            } else {
                out.push_str("ERROR\n");
            }
        }
    }
    out
}
