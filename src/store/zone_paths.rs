//! The one-time rewrite of zone leaves from this project's first paths (`Zones Zone N Peer
//! Address`, `Peer Port`, `Peer TunnelPort`, `TLS Verify Mode`, `TLS Verify Subject Name`) to
//! Expressway's per-type sub-trees (`Zones Zone N Neighbor Peer 1 Address`, `… Neighbor SIP Port`,
//! `… Neighbor SIP TLS Verify Mode`, …). Text in, text out: it knows no disk and no schema beyond
//! these words, so the store can run it under its lock before anything parses the file.
//!
//! The sub-tree is chosen by the zone's `Type` line anywhere in the file (default Neighbor, as the
//! schema's default). A TraversalServer zone's old leaves go under Neighbor, so nothing is lost:
//! they described an outbound peer, which the TraversalServer sub-tree (it listens: `SIP Port`
//! from 1024, no `Peer`, no `Tunnel Port`) cannot hold. Values are copied byte for byte.

/// Old leaf words (lower case) and the words that replace them under the type's sub-tree.
const OLD_LEAVES: [(&[&str], &str); 5] = [
    (&["peer", "address"], "Peer 1 Address"),
    (&["peer", "port"], "SIP Port"),
    (&["peer", "tunnelport"], "Tunnel Port"),
    (&["tls", "verify", "mode"], "SIP TLS Verify Mode"),
    (
        &["tls", "verify", "subject", "name"],
        "SIP TLS Verify Subject Name",
    ),
];

/// A line's zone number and the words after `Zones Zone N`, lower case, with its value text.
fn zone_line(line: &str) -> Option<(u32, Vec<String>, &str)> {
    let (path, value) = line.split_once(':')?;
    let mut words: Vec<String> = path
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if matches!(
        words.first().map(String::as_str),
        Some("xconfiguration" | "xconf")
    ) {
        words.remove(0);
    }
    if words.len() < 3 || words[0] != "zones" || words[1] != "zone" {
        return None;
    }
    let n: u32 = words[2].parse().ok()?;
    Some((n, words[3..].to_vec(), value))
}

/// The rewritten text and how many lines changed, or `None` when no line has an old path.
pub fn rewrite(text: &str) -> Option<(String, usize)> {
    let mut types = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some((n, rest, value)) = zone_line(line) {
            if rest == ["type"] {
                let v = value.trim().trim_matches('"').to_ascii_lowercase();
                let sub = if v == "traversalclient" {
                    "TraversalClient"
                } else {
                    "Neighbor"
                };
                types.insert(n, sub);
            }
        }
    }
    let mut changed = 0;
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let new = zone_line(body).and_then(|(n, rest, value)| {
            let (_, to) = OLD_LEAVES.iter().find(|(old, _)| rest == *old)?;
            let sub = types.get(&n).copied().unwrap_or("Neighbor");
            Some(format!("xConfiguration Zones Zone {n} {sub} {to}:{value}"))
        });
        match new {
            Some(l) => {
                changed += 1;
                out.push_str(&l);
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(line),
        }
    }
    (changed > 0).then_some((out, changed))
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn old_leaves_move_under_the_zone_type_and_a_second_pass_changes_nothing() {
        let old = "xConfiguration Zones Zone 1 Peer Address: \"a.example\"\n\
                   xConfiguration Zones Zone 1 Peer Port: 6000\n\
                   xconf zones zone 2 tls verify subject name: \"b\"\n\
                   xConfiguration Zones Zone 2 Type: TraversalClient\n\
                   xConfiguration Zones Zone 2 Peer TunnelPort: 2300\n\
                   xConfiguration Zones Zone 3 TLS Verify Mode: Off\n\
                   xConfiguration SIP TLS Port: 5061\n";
        let (new, n) = rewrite(old).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            new,
            "xConfiguration Zones Zone 1 Neighbor Peer 1 Address: \"a.example\"\n\
             xConfiguration Zones Zone 1 Neighbor SIP Port: 6000\n\
             xConfiguration Zones Zone 2 TraversalClient SIP TLS Verify Subject Name: \"b\"\n\
             xConfiguration Zones Zone 2 Type: TraversalClient\n\
             xConfiguration Zones Zone 2 TraversalClient Tunnel Port: 2300\n\
             xConfiguration Zones Zone 3 Neighbor SIP TLS Verify Mode: Off\n\
             xConfiguration SIP TLS Port: 5061\n"
        );
        assert_eq!(rewrite(&new), None);
    }
}
