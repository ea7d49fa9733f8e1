//! `?` and `??` help and Tab completion, both read straight from the schema.

use crate::parse::lex::{lex, Tok};
use crate::parse::{Addr, Which, VERBS};
use crate::schema::{schema, starts_with_ci, Lookup, NodeId, Tree};

/// Help lines (without the `*h ` mark) for a help request.
pub fn lines(which: Which, addr: &Addr, all: bool, prefix: Option<&str>) -> Vec<String> {
    let s = schema();
    match which {
        Which::Verbs => match prefix {
            Some(verb) => verb_lines(verb, all),
            None => verbs(all),
        },
        Which::Configuration => tree_lines(&s.config, "xConfiguration", addr, all, prefix, true),
        Which::Status => tree_lines(&s.status, "xStatus", addr, all, prefix, false),
        Which::Command => command_lines(&s.commands, addr, all, prefix),
    }
}

/// `help` or a bare `?`: every verb, one line each.
fn verbs(all: bool) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "xConfiguration [<path>] [<leaf>: <value>]   read or set configuration".into(),
        "xStatus [<path>]                             read status".into(),
        "xCommand <path> [<key>: <value>]...          run a command".into(),
        "xPreferences OutputMode <Terminal/XML/JSON>  choose the output format".into(),
        "xFeedback register|deregister <path> | deregisterall | list".into(),
        "xHistory [<count>]                           recent configuration changes".into(),
        "xGetXML <path>                               XML of a subtree, e.g. /Configuration/SIP"
            .into(),
        "echo <on/off>, bye, exit, help".into(),
        "Append ? for usage or ?? for details at any point.".into(),
    ];
    if all {
        v.push(
            "Verbs may be shortened to a unique prefix (xconf, xstat, xcom); so may path words."
                .into(),
        );
        v.push(
            "Tag a request with | resultId=\"<tag>\"; bodies end with a line holding only '.'."
                .into(),
        );
    }
    v
}

/// `help <verb>` or `<verb> ?` for a verb without a tree of its own; `all` adds the details.
fn verb_lines(verb: &str, all: bool) -> Vec<String> {
    let (usage, details): (&[&str], &[&str]) = match verb {
        "xPreferences" => (
            &["xPreferences OutputMode <Terminal/XML/JSON>"],
            &["    Terminal: the *c/*s/*r lines; XML: documents as xGetXML prints them; JSON: one document per reply."],
        ),
        "xFeedback" => (
            &[
                "xFeedback register <path>",
                "xFeedback deregister <path>",
                "xFeedback deregisterall",
                "xFeedback list",
            ],
            &["    A path like /Configuration/SIP/TLS or /Status/Zones/Zone[1]; changes under a registered path are printed as they happen."],
        ),
        "xHistory" => (
            &["xHistory [<count>]"],
            &["    The last <count> configuration changes (default 20) from the audit log: time, generation, user, origin, path, old and new value, result."],
        ),
        "xGetXML" => (
            &["xGetXML <path>"],
            &["    The XML of a subtree, e.g. /Configuration/SIP or /Status/Zones; valid against xconf/*.xsd."],
        ),
        "echo" => (
            &["echo <on/off>"],
            &["    Whether the shell echoes the lines it reads."],
        ),
        "bye" | "exit" | "quit" => (
            &["bye (or exit, quit)"],
            &["    Ends the session."],
        ),
        _ => return verbs(all),
    };
    let mut v: Vec<String> = usage.iter().map(|l| (*l).to_string()).collect();
    if all {
        v.extend(details.iter().map(|l| (*l).to_string()));
    }
    v
}

/// A bare `<verb> ?` at the top of a tree: the top-level nodes, one a line, as the product lists
/// them (a leaf with its value space); the path and `?` go one level deeper, `??` lists every leaf
/// with its details.
fn top_nodes(tree: &Tree, verb: &str) -> Vec<String> {
    tree.children_of(None)
        .iter()
        .map(|&c| {
            let n = &tree.nodes[c];
            let mut line = format!("{verb} {}", n.name);
            if let Some((lo, hi)) = n.instances {
                line.push_str(&format!(" [{lo}..{hi}]"));
            }
            if let Some(leaf) = &n.leaf {
                line.push_str(&format!(": {}", leaf.space));
            }
            line
        })
        .collect()
}

fn addr_prefix(tree: &Tree, verb: &str, addr: &Addr) -> String {
    let mut p = verb.to_string();
    for st in &addr.steps {
        let n = &tree.nodes[st.node];
        p.push(' ');
        p.push_str(&n.name);
        match (st.instance, n.instances) {
            (Some(k), _) => p.push_str(&format!(" {k}")),
            (None, Some((lo, hi))) => p.push_str(&format!(" [{lo}..{hi}]")),
            _ => {}
        }
    }
    p
}

fn tree_lines(
    tree: &Tree,
    verb: &str,
    addr: &Addr,
    all: bool,
    prefix: Option<&str>,
    config: bool,
) -> Vec<String> {
    if !all && prefix.is_none() && addr.steps.is_empty() {
        return top_nodes(tree, verb);
    }
    let mut out = Vec::new();
    let base = addr_prefix(tree, verb, addr);
    let starts: Vec<NodeId> = match addr.node() {
        Some(n) if addr.steps.last().is_some_and(|s| s.node == n) && prefix.is_none() => vec![n],
        parent => tree
            .children_of(parent)
            .iter()
            .copied()
            .filter(|&c| prefix.is_none_or(|p| starts_with_ci(&tree.nodes[c].name, p)))
            .collect(),
    };
    let at_node = prefix.is_none() && addr.node().is_some();
    for st in starts {
        let mut leaves = Vec::new();
        tree.leaves_under(st, &mut leaves);
        for l in leaves {
            // Path from `st` (or from below the addressed node) to the leaf.
            let chain = tree.ancestry(l);
            let from = chain.iter().position(|&x| x == st).unwrap_or(0);
            let skip = if at_node { from + 1 } else { from };
            let mut line = base.clone();
            for &n in &chain[skip..] {
                let node = &tree.nodes[n];
                line.push(' ');
                line.push_str(&node.name);
                if let Some((lo, hi)) = node.instances {
                    line.push_str(&format!(" [{lo}..{hi}]"));
                }
            }
            let Some(leaf) = &tree.nodes[l].leaf else {
                continue;
            };
            line.push_str(&format!(": {}", leaf.space));
            if config && leaf.deprecated.is_some() {
                line.push_str(" (deprecated)");
            }
            out.push(line);
            if all {
                if config {
                    out.push(format!(
                        "    default {}: {}",
                        crate::schema::text::quote(&leaf.default),
                        leaf.help
                    ));
                } else {
                    out.push(format!("    {}", leaf.help));
                }
                if let Some(d) = &leaf.deprecated {
                    out.push(format!("    deprecated: {d}"));
                }
                if config && leaf.local {
                    out.push(
                        "    peer-local: in a cluster this peer keeps its own value; it is never shared"
                            .into(),
                    );
                }
            }
        }
    }
    if out.is_empty() {
        out.push(format!("{base}: no match"));
    }
    out
}

fn command_lines(tree: &Tree, addr: &Addr, all: bool, prefix: Option<&str>) -> Vec<String> {
    if !all && prefix.is_none() && addr.steps.is_empty() {
        return top_nodes(tree, "xCommand");
    }
    let mut out = Vec::new();
    let parent = addr.node();
    let starts: Vec<NodeId> = match (parent, prefix) {
        (Some(n), None) => vec![n],
        (p, _) => tree
            .children_of(p)
            .iter()
            .copied()
            .filter(|&c| prefix.is_none_or(|px| starts_with_ci(&tree.nodes[c].name, px)))
            .collect(),
    };
    for st in starts {
        let mut cmds = Vec::new();
        tree.leaves_under(st, &mut cmds);
        for c in cmds {
            let Some(spec) = &tree.nodes[c].command else {
                continue;
            };
            let words: Vec<&str> = tree
                .ancestry(c)
                .iter()
                .map(|&n| tree.nodes[n].name.as_str())
                .collect();
            let mut head = format!("xCommand {}", words.join(" "));
            if spec.body != crate::schema::BodyKind::None {
                head.push_str(" [body: PEM text, then a line '.']");
            }
            out.push(head);
            if all && !spec.help.is_empty() {
                out.push(format!("    {}", spec.help));
            }
            for p in &spec.params {
                let mut l = format!("    {}: {}", p.name, p.space);
                if p.required {
                    l.push_str(" (r)");
                }
                if all {
                    if let Some(d) = &p.default {
                        l.push_str(&format!(" default {}", crate::schema::text::quote(d)));
                    }
                    l.push_str(&format!("  {}", p.help));
                }
                out.push(l);
            }
        }
    }
    if out.is_empty() {
        out.push("xCommand: no match".into());
    }
    out
}

/// Tab completion: the byte offset where the word being completed starts, and the candidates.
pub fn complete(line: &str) -> (usize, Vec<String>) {
    // After the separator, which may be a multi-byte white space (U+00A0, U+3000).
    let word_start = line
        .char_indices()
        .rfind(|&(_, c)| c.is_whitespace() || c == ':')
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let partial = &line[word_start..];
    let cands = candidates(&line[..word_start])
        .into_iter()
        .filter(|c| starts_with_ci(c, partial))
        .collect();
    (word_start, cands)
}

/// Every word that may follow `head` (not yet filtered by what is typed of the next one).
fn candidates(head: &str) -> Vec<String> {
    let Ok(lexed) = lex(head) else {
        return Vec::new();
    };
    let toks = lexed.tokens;
    let Some(first) = toks.first() else {
        let mut verbs: Vec<String> = VERBS.iter().map(|(n, _)| (*n).to_string()).collect();
        verbs.extend(["echo", "bye", "exit", "help"].map(String::from));
        return verbs;
    };
    let Tok::Word(vw) = &first.tok else {
        return Vec::new();
    };
    let tree = match verb_tree(vw, toks.len()) {
        Ok(t) => t,
        Err(words) => return words,
    };
    match walk(tree, &toks) {
        Walked::Candidates(c) => c,
        Walked::At {
            parent,
            awaiting_instance,
        } => node_candidates(tree, parent, awaiting_instance),
    }
}

/// The tree the verb `vw` walks, or (for the verbs without one) the words that follow it.
fn verb_tree(vw: &str, n_toks: usize) -> Result<&'static Tree, Vec<String>> {
    let s = schema();
    let verb = VERBS
        .iter()
        .filter(|(n, _)| vw.len() >= 2 && starts_with_ci(n, vw))
        .map(|(_, v)| *v)
        .collect::<Vec<_>>();
    match verb.as_slice() {
        [crate::parse::Verb::Configuration] => Ok(&s.config),
        [crate::parse::Verb::Status] => Ok(&s.status),
        [crate::parse::Verb::Command] => Ok(&s.commands),
        [crate::parse::Verb::Preferences] => Err(if n_toks == 1 {
            vec!["OutputMode".into()]
        } else {
            vec!["Terminal".into(), "XML".into(), "JSON".into()]
        }),
        [crate::parse::Verb::Feedback] if n_toks == 1 => Err(vec![
            "register".into(),
            "deregister".into(),
            "deregisterall".into(),
            "list".into(),
        ]),
        _ if vw.eq_ignore_ascii_case("echo") => Err(vec!["on".into(), "off".into()]),
        _ => Err(Vec::new()),
    }
}

/// Where the words typed so far lead.
enum Walked {
    /// A value is being typed: these are its words (or none fit).
    Candidates(Vec<String>),
    /// At a node (None: the tree's top), maybe waiting for its instance number.
    At {
        parent: Option<NodeId>,
        awaiting_instance: bool,
    },
}

/// Walks the words after the verb.
fn walk(tree: &Tree, toks: &[crate::parse::lex::Token]) -> Walked {
    let mut parent: Option<NodeId> = None;
    let mut awaiting_instance = false;
    let mut i = 1;
    while i < toks.len() {
        match &toks[i].tok {
            Tok::Word(w) if awaiting_instance && w.chars().all(|c| c.is_ascii_digit()) => {
                awaiting_instance = false;
            }
            Tok::Word(w) => match tree.lookup(parent, w) {
                Lookup::Found(id) => {
                    if toks.get(i + 1).is_some_and(|t| t.tok == Tok::Colon) {
                        // `Key: ` — complete the value of a leaf or a command parameter.
                        if i + 2 >= toks.len() {
                            if let Some(leaf) = &tree.nodes[id].leaf {
                                return Walked::Candidates(leaf.space.words().to_vec());
                            }
                        }
                        i += 3;
                        continue;
                    }
                    parent = Some(id);
                    awaiting_instance = tree.nodes[id].instances.is_some();
                }
                _ => {
                    // Maybe a command parameter: `xCommand ... Key: value`.
                    if let Some(spec) = parent.and_then(|p| tree.nodes[p].command.as_ref()) {
                        if let Some(p) = spec.param(w.split('.').next().unwrap_or(w)) {
                            if toks.get(i + 1).is_some_and(|t| t.tok == Tok::Colon)
                                && i + 2 >= toks.len()
                            {
                                return Walked::Candidates(p.space.words().to_vec());
                            }
                            i += 3;
                            continue;
                        }
                    }
                    return Walked::Candidates(Vec::new());
                }
            },
            _ => return Walked::Candidates(Vec::new()),
        }
        i += 1;
    }
    Walked::At {
        parent,
        awaiting_instance,
    }
}

/// What may follow node `parent`: instance numbers, child names (a configuration leaf with its
/// colon, so the value follows naturally) or a command's parameters.
fn node_candidates(tree: &Tree, parent: Option<NodeId>, awaiting_instance: bool) -> Vec<String> {
    if awaiting_instance {
        if let Some((lo, hi)) = parent.and_then(|p| tree.nodes[p].instances) {
            return (lo..=hi.min(lo + 8)).map(|n| n.to_string()).collect();
        }
    }
    let mut cands: Vec<String> = tree.child_names(parent);
    if let Some(spec) = parent.and_then(|p| tree.nodes[p].command.as_ref()) {
        cands.extend(spec.params.iter().map(|p| format!("{}:", p.name)));
    } else if let Some(p) = parent {
        if tree.nodes[p].leaf.is_some() {
            return Vec::new();
        }
    }
    let config_tree = std::ptr::eq(tree, &schema().config);
    cands
        .into_iter()
        .map(|c| {
            let id = child_id(tree, parent, &c);
            let is_leaf = tree.nodes.get(id).is_some_and(|n| n.leaf.is_some());
            if is_leaf && config_tree {
                format!("{c}:")
            } else {
                c
            }
        })
        .collect()
}

fn child_id(tree: &Tree, parent: Option<NodeId>, name: &str) -> NodeId {
    tree.children_of(parent)
        .iter()
        .copied()
        .find(|&c| tree.nodes[c].name == name)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_byte_white_space_does_not_panic() {
        for line in ["xconf\u{a0}S", "xconf SIP\u{3000}", "\u{2003}"] {
            let (start, _) = complete(line);
            assert!(line.is_char_boundary(start), "{line:?}");
        }
    }

    #[test]
    fn completes_verbs_paths_and_values() {
        assert_eq!(complete("xc").1, vec!["xConfiguration", "xCommand"]);
        assert_eq!(
            complete("xconf SIP TLS Certificate Ext").1,
            vec!["ExtendedKeyUsage"]
        );
        assert_eq!(
            complete("xconf SIP TLS Certificate ExtendedKeyUsage Checking Mode: ").1,
            vec!["On", "Off"]
        );
        assert_eq!(
            complete("xconf SIP TLS Certificate ExtendedKeyUsage Checking Mode: o").1,
            vec!["On", "Off"]
        );
        assert_eq!(complete("xconf SIP TLS P").1, vec!["Port:"]);
        assert_eq!(
            complete("xcommand Security Certificates Server Upload Also").1,
            vec!["AlsoAsClient:"]
        );
        assert_eq!(
            complete("xcommand Security Certificates Server Upload AlsoAsClient: ").1,
            vec!["True", "False"]
        );
        let (start, c) = complete("xconf Zones Zone 1 T");
        assert_eq!(
            (start, c),
            (
                19,
                vec![
                    "Type:".to_string(),
                    "TraversalClient".to_string(),
                    "TraversalServer".to_string()
                ]
            )
        );
    }
}
