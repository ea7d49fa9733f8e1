//! Feedback paths: `/Configuration/SIP/TLS`, `/Status/Zones/Zone[1]`, as automation clients send them.
//!
//! Paths are checked against the schema and returned in canonical spelling, so matching a change
//! against a registration is a plain segment comparison.

use crate::schema::{schema, Lookup, Tree};

/// Checks a feedback path and returns its canonical spelling.
pub fn normalize(raw: &str) -> Result<String, String> {
    let s = schema();
    let mut segs = raw.trim_matches('/').split('/').filter(|x| !x.is_empty());
    let root = segs
        .next()
        .ok_or_else(|| "empty feedback path".to_string())?;
    let (tree, top): (&Tree, &str) =
        if "configuration".starts_with(&root.to_ascii_lowercase()) && root.len() >= 4 {
            (&s.config, "Configuration")
        } else if "status".starts_with(&root.to_ascii_lowercase()) && root.len() >= 4 {
            (&s.status, "Status")
        } else if root.eq_ignore_ascii_case("event") || root.eq_ignore_ascii_case("command") {
            return Err(format!(
                "feedback on /{root} is not supported; use /Configuration or /Status"
            ));
        } else {
            return Err(format!("'{root}' is not Configuration or Status"));
        };
    let mut out = format!("/{top}");
    let mut parent = None;
    for seg in segs {
        let (name, idx) = match seg.split_once('[') {
            Some((n, rest)) => {
                let num = rest.strip_suffix(']').and_then(|x| x.parse::<u32>().ok());
                match num {
                    Some(k) => (n, Some(k)),
                    None => return Err(format!("bad instance in '{seg}'")),
                }
            }
            None => (seg, None),
        };
        let id = match tree.lookup(parent, name) {
            Lookup::Found(id) => id,
            _ => return Err(format!("no match for '{name}' in {out}")),
        };
        let node = &tree.nodes[id];
        out.push('/');
        out.push_str(&node.name);
        if let Some(k) = idx {
            match node.instances {
                Some((lo, hi)) if k >= lo && k <= hi => out.push_str(&format!("[{k}]")),
                Some((lo, hi)) => {
                    return Err(format!("{}[{k}] is outside [{lo}..{hi}]", node.name))
                }
                None => return Err(format!("{} has no instances", node.name)),
            }
        }
        parent = Some(id);
    }
    Ok(out)
}

/// Whether a change at `changed` (canonical, e.g. `/Configuration/Zones/Zone[3]/Name`) falls under
/// the registration `reg` (canonical; an instance node without `[n]` covers every instance).
pub fn matches(reg: &str, changed: &str) -> bool {
    let mut c = changed.split('/');
    for r in reg.split('/') {
        let Some(cs) = c.next() else { return false };
        if r == cs {
            continue;
        }
        if !r.contains('[') && cs.split('[').next() == Some(r) {
            continue;
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_matches() {
        assert_eq!(
            normalize("/configuration/sip/tls").unwrap(),
            "/Configuration/SIP/TLS"
        );
        assert_eq!(
            normalize("/Status/Zones/Zone[1]").unwrap(),
            "/Status/Zones/Zone[1]"
        );
        assert!(normalize("/Configuration/Nope").is_err());
        assert!(matches(
            "/Configuration/SIP/TLS",
            "/Configuration/SIP/TLS/Port"
        ));
        assert!(!matches(
            "/Configuration/SIP/TLS",
            "/Configuration/SIP/TLSX"
        ));
        assert!(matches(
            "/Status/Zones/Zone",
            "/Status/Zones/Zone[4]/Status"
        ));
        assert!(!matches(
            "/Status/Zones/Zone[1]",
            "/Status/Zones/Zone[4]/Status"
        ));
    }
}
