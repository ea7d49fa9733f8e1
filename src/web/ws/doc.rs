//! The JSON jsxapi reads: documents already "collapsed" (a leaf is its value, not
//! `{"Value": …}`), instances as arrays of objects carrying `"id"`, and the value at a path dug
//! out of a document the way jsxapi's own `digObj` does.

use serde_json::{Map, Value};

use crate::engine::{CommandResult, DocKind, Item};
use crate::parse::Addr;
use crate::schema::Tree;

/// The members of an object made of `items`; instances of one node gather into one array.
pub fn members(items: &[Item]) -> Map<String, Value> {
    let mut out = Map::new();
    for it in items {
        match it {
            Item::Leaf { name, value, .. } => {
                out.insert(name.clone(), Value::String(value.clone()));
            }
            Item::Node {
                name,
                item: None,
                children,
            } => {
                out.insert(name.clone(), Value::Object(members(children)));
            }
            Item::Node {
                name,
                item: Some(n),
                children,
            } => {
                let mut o = Map::new();
                o.insert("id".into(), Value::String(n.to_string()));
                o.extend(members(children));
                match out.get_mut(name) {
                    Some(Value::Array(a)) => a.push(Value::Object(o)),
                    _ => {
                        out.insert(name.clone(), Value::Array(vec![Value::Object(o)]));
                    }
                }
            }
        }
    }
    out
}

/// `{"Configuration": {…}}` or `{"Status": {…}}`.
pub fn document(kind: DocKind, items: &[Item]) -> Value {
    let mut m = Map::new();
    m.insert(kind.root().into(), Value::Object(members(items)));
    Value::Object(m)
}

/// The value at `addr` (canonical names, from the resolved request) inside `doc`'s root object;
/// `Null` when the document holds nothing there (no zone configured yet).
pub fn dig(doc: &Value, root: &str, tree: &Tree, addr: &Addr) -> Value {
    let mut v = match doc.get(root) {
        Some(v) => v,
        None => return Value::Null,
    };
    for s in &addr.steps {
        let Some(next) = v.get(tree.nodes[s.node].name.as_str()) else {
            return Value::Null;
        };
        v = next;
        if let Some(n) = s.instance {
            let id = n.to_string();
            let found = v.as_array().and_then(|a| {
                a.iter()
                    .find(|e| e.get("id").and_then(Value::as_str) == Some(id.as_str()))
            });
            match found {
                Some(e) => v = e,
                None => return Value::Null,
            }
        }
    }
    v.clone()
}

/// A command's result as jsxapi's `createCommandResponse` leaves it: `{"status":"OK", …}`.
pub fn command_result(r: &CommandResult) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), Value::String(r.status.as_str().into()));
    m.extend(members(&r.fields));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_collapse_and_instances_become_arrays_with_ids() {
        let items = vec![Item::node(
            "Zones",
            vec![
                Item::instance("Zone", 1, vec![Item::leaf("Name", "a")]),
                Item::instance("Zone", 2, vec![Item::leaf("Name", "b")]),
            ],
        )];
        let doc = document(DocKind::Configuration, &items);
        assert_eq!(
            doc,
            serde_json::json!({"Configuration":{"Zones":{"Zone":[{"id":"1","Name":"a"},{"id":"2","Name":"b"}]}}})
        );
        let tree = &crate::schema::schema().config;
        let Ok(req) = crate::engine::structured::config_get(&[
            "Zones".into(),
            "Zone".into(),
            2.into(),
            "Name".into(),
        ]) else {
            panic!("path")
        };
        let crate::parse::Action::ConfigGet(addr) = req.action else {
            panic!("get")
        };
        assert_eq!(dig(&doc, "Configuration", tree, &addr), Value::from("b"));
    }
}
