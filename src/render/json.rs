//! JSON output in the shapes existing automation libraries parse: every leaf `{"Value":"..."}`,
//! instances as arrays of objects with `"id"`, one document per reply on one line, 7-bit ASCII
//! (every non-ASCII character escaped as `\uXXXX`, since clients decode each SSH packet alone).

use super::{CommandResult, DocKind, Item, ResultStatus};
use crate::error::{Area, Code, ShellError};

/// A JSON string literal, ASCII only.
pub fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) >= 0x7f => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn value_obj(v: &str, out: &mut String) {
    out.push_str("{\"Value\":");
    string(v, out);
    out.push('}');
}

/// Writes the members of an object from a list of items (no braces).
fn members(list: &[Item], out: &mut String) {
    let mut i = 0;
    let mut first = true;
    while i < list.len() {
        if !first {
            out.push(',');
        }
        first = false;
        match &list[i] {
            Item::Leaf { name, value, .. } => {
                string(name, out);
                out.push(':');
                value_obj(value, out);
                i += 1;
            }
            Item::Node {
                name,
                item: None,
                children,
            } => {
                string(name, out);
                out.push_str(":{");
                members(children, out);
                out.push('}');
                i += 1;
            }
            Item::Node {
                name,
                item: Some(_),
                ..
            } => {
                // Consecutive instances of one node become one array.
                string(name, out);
                out.push_str(":[");
                let mut firsti = true;
                while let Some(Item::Node {
                    name: n2,
                    item: Some(id),
                    children,
                }) = list.get(i)
                {
                    if n2 != name {
                        break;
                    }
                    if !firsti {
                        out.push(',');
                    }
                    firsti = false;
                    out.push_str("{\"id\":");
                    string(&id.to_string(), out);
                    if !children.is_empty() {
                        out.push(',');
                        members(children, out);
                    }
                    out.push('}');
                    i += 1;
                }
                out.push(']');
            }
        }
    }
}

fn close(result_id: Option<&str>, out: &mut String) {
    if let Some(id) = result_id {
        out.push_str(",\"ResultId\":");
        string(id, out);
    }
    out.push_str("}\n");
}

/// `{"Configuration":{...},"ResultId":"..."}`.
pub fn reply(kind: DocKind, list: &[Item], result_id: Option<&str>) -> String {
    let mut out = String::from("{");
    string(kind.root(), &mut out);
    out.push_str(":{");
    members(list, &mut out);
    out.push('}');
    close(result_id, &mut out);
    out
}

/// A successful reply without content: `{"ResultId":"r2"}` (or `{}` untagged).
pub fn empty(result_id: Option<&str>) -> String {
    match result_id {
        Some(id) => {
            let mut out = String::from("{\"ResultId\":");
            string(id, &mut out);
            out.push_str("}\n");
            out
        }
        None => "{}\n".into(),
    }
}

/// `{"CommandResponse":{"<Name>":{"status":"OK",...}}}`.
pub fn result(r: &CommandResult, result_id: Option<&str>) -> String {
    let mut out = String::from("{\"CommandResponse\":{");
    string(&r.name, &mut out);
    out.push_str(":{\"status\":");
    string(r.status.as_str(), &mut out);
    if !r.fields.is_empty() {
        out.push(',');
        members(&r.fields, &mut out);
    }
    out.push_str("}}");
    close(result_id, &mut out);
    out
}

/// Help lines as `{"Help":{"Line":[{"id":"1","Value":"..."}]}}`.
pub fn help(lines: &[String], result_id: Option<&str>) -> String {
    let items: Vec<Item> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| Item::instance("Line", i as u32 + 1, vec![Item::leaf("Text", l.clone())]))
        .collect();
    let mut out = String::from("{\"Help\":{");
    members(&items, &mut out);
    out.push('}');
    close(result_id, &mut out);
    out
}

/// The product's status word for an error.
pub fn error_status(e: &ShellError) -> ResultStatus {
    match e.code {
        Code::UnknownParam | Code::MissingParam | Code::IllegalParam | Code::BodyMismatch => {
            ResultStatus::ParameterError
        }
        Code::MissingValue if e.area == Area::Command => ResultStatus::ParameterError,
        _ => ResultStatus::Error,
    }
}

/// An error as one JSON document. An illegal configuration value sits at the requested path with
/// `"error":"True"`; everything else is a `CommandResponse` with `status`, `Reason` and `XPath`.
pub fn error(e: &ShellError, result_id: Option<&str>, command_name: Option<&str>) -> String {
    let extra = |out: &mut String| {
        out.push_str(",\"Code\":");
        value_obj(e.code.as_str(), out);
        if let Some(c) = e.shown_column() {
            out.push_str(",\"Column\":");
            value_obj(&c.to_string(), out);
        }
        out.push_str(",\"Detail\":");
        value_obj(&e.message, out);
        if let Some(x) = &e.expected {
            out.push_str(",\"Expected\":");
            value_obj(x, out);
        }
        if let Some(h) = &e.hint {
            out.push_str(",\"Hint\":");
            value_obj(h, out);
        }
    };
    let mut out = String::from("{");
    if e.area == Area::Configuration
        && matches!(
            e.code,
            Code::IllegalValue
                | Code::MissingValue
                | Code::ReadOnly
                | Code::Deprecated
                | Code::PermissionDenied
        )
    {
        string("Configuration", &mut out);
        out.push(':');
        for w in &e.path {
            if w.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            out.push('{');
            string(w, &mut out);
            out.push(':');
        }
        out.push_str("{\"error\":\"True\",\"Value\":");
        string(e.code.reason(), &mut out);
        extra(&mut out);
        out.push('}');
        for w in &e.path {
            if !w.chars().all(|c| c.is_ascii_digit()) {
                out.push('}');
            }
        }
    } else {
        out.push_str("\"CommandResponse\":{");
        string(command_name.unwrap_or("Result"), &mut out);
        out.push_str(":{\"status\":");
        string(error_status(e).as_str(), &mut out);
        out.push_str(",\"Reason\":");
        value_obj(e.code.reason(), &mut out);
        out.push_str(",\"XPath\":");
        value_obj(&e.xpath(), &mut out);
        extra(&mut out);
        out.push_str("}}");
    }
    close(result_id, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_only() {
        let mut s = String::new();
        string("é😀\"", &mut s);
        assert_eq!(s, "\"\\u00e9\\ud83d\\ude00\\\"\"");
    }

    #[test]
    fn instances_become_arrays() {
        let items = vec![Item::node(
            "Zones",
            vec![
                Item::instance("Zone", 1, vec![Item::leaf("Name", "a")]),
                Item::instance("Zone", 2, vec![Item::leaf("Name", "b")]),
            ],
        )];
        assert_eq!(
            reply(DocKind::Configuration, &items, Some("r1")),
            "{\"Configuration\":{\"Zones\":{\"Zone\":[{\"id\":\"1\",\"Name\":{\"Value\":\"a\"}},{\"id\":\"2\",\"Name\":{\"Value\":\"b\"}}]}},\"ResultId\":\"r1\"}\n"
        );
    }
}
