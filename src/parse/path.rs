//! Walking path words through the configuration and status trees: instances, unique prefixes,
//! `Leaf: value` sets and help requests, with errors that name the nearest valid words.

use super::lex::{Tok, Token};
use super::{end_col, Action, Addr, Key, Step, Which};
use crate::error::{nearest, Area, Code, ShellError};
use crate::schema::{Lookup, Tree};

pub(super) fn help_kind(t: &Token) -> Option<bool> {
    match t.tok {
        Tok::Help => Some(false),
        Tok::HelpAll => Some(true),
        _ => None,
    }
}

/// Walks path words through a tree. Returns the address and the index of the first unused token.
pub(super) fn walk(
    tree: &Tree,
    area: Area,
    toks: &[Token],
    stop_before_colon: bool,
) -> Result<(Addr, usize), ShellError> {
    let mut addr = Addr::default();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let w = match &t.tok {
            Tok::Word(w) => w,
            _ => break,
        };
        if stop_before_colon
            && toks.get(i + 1).is_some_and(|n| n.tok == Tok::Colon)
            && addr_wants_word(tree, &addr)
        {
            break;
        }
        // An instance number after an instance node.
        if let Some(last) = addr.steps.last_mut() {
            let node = &tree.nodes[last.node];
            if let (Some((lo, hi)), None) = (node.instances, last.instance) {
                match w.parse::<u32>() {
                    Ok(n) if n >= lo && n <= hi => {
                        last.instance = Some(n);
                        i += 1;
                        continue;
                    }
                    Ok(_) | Err(_) if w.chars().all(|c| c.is_ascii_digit()) => {
                        return Err(ShellError::new(
                            Code::InstanceOutOfRange,
                            t.col,
                            format!("{} {w} is out of range", node.name),
                        )
                        .expected(format!("{} [{lo}..{hi}]", node.name))
                        .area(area)
                        .path(addr.words(tree)));
                    }
                    _ => {
                        // A further path word: allowed only when it is help or the end; otherwise the instance is missing.
                        let is_help_next = toks.get(i).is_some_and(|x| help_kind(x).is_some());
                        if !is_help_next {
                            return Err(ShellError::new(
                                Code::MissingInstance,
                                t.col,
                                format!("{} needs an instance number before '{w}'", node.name),
                            )
                            .expected(format!("{} [{lo}..{hi}]", node.name))
                            .area(area)
                            .path(addr.words(tree)));
                        }
                    }
                }
            }
        }
        let parent = addr.node();
        // After a command with nothing below it, the words are its parameters.
        if parent
            .is_some_and(|p| tree.nodes[p].command.is_some() && tree.nodes[p].children.is_empty())
        {
            break;
        }
        match tree.lookup(parent, w) {
            Lookup::Found(id) => {
                addr.steps.push(Step {
                    node: id,
                    instance: None,
                });
                i += 1;
            }
            Lookup::Ambiguous(names) => {
                return Err(ShellError::new(
                    Code::AmbiguousPath,
                    t.col,
                    format!("'{w}' is the start of several words"),
                )
                .expected(format!("one of: {}", names.join(", ")))
                .area(area)
                .path(addr.words(tree)));
            }
            Lookup::NotFound => {
                let names = tree.child_names(parent);
                let what = if names.is_empty() {
                    "end of line".to_string()
                } else {
                    format!(
                        "one of: {}",
                        nearest(w, names.iter().map(String::as_str)).join(", ")
                    )
                };
                let mut p = addr.words(tree);
                p.push(w.clone());
                return Err(ShellError::new(
                    Code::UnknownPath,
                    t.col,
                    format!("no match for '{w}'"),
                )
                .expected(what)
                .area(area)
                .path(p));
            }
        }
    }
    Ok((addr, i))
}

fn addr_wants_word(tree: &Tree, addr: &Addr) -> bool {
    match addr.steps.last() {
        Some(s) => !(tree.nodes[s.node].instances.is_some() && s.instance.is_none()),
        None => true,
    }
}

/// `xConfiguration` / `xStatus`: read, set, or help.
pub(super) fn resolve_tree(
    tree: &Tree,
    area: Area,
    toks: &[Token],
    line: &str,
    settable: bool,
) -> Result<Action, ShellError> {
    let which = if area == Area::Configuration {
        Which::Configuration
    } else {
        Which::Status
    };
    // Help on a partial word: `xconf SIP T?` lists the words starting with T.
    if let (Some(last), true) = (toks.last(), toks.len() >= 2) {
        if let (Some(all), Tok::Word(w)) = (help_kind(last), &toks[toks.len() - 2].tok) {
            if last.glued {
                if let Ok((addr, used)) = walk(tree, area, &toks[..toks.len() - 2], false) {
                    if used == toks.len() - 2
                        && !matches!(tree.lookup(addr.node(), w), Lookup::Found(_))
                    {
                        return Ok(Action::Help {
                            which,
                            addr,
                            all,
                            prefix: Some(w.clone()),
                        });
                    }
                }
            }
        }
    }
    let (addr, used) = walk(tree, area, toks, settable)?;
    let rest = &toks[used..];
    match rest {
        [] => Ok(if area == Area::Configuration {
            Action::ConfigGet(addr)
        } else {
            Action::StatusGet(addr)
        }),
        [h] if help_kind(h).is_some() => Ok(Action::Help {
            which,
            addr,
            all: help_kind(h) == Some(true),
            prefix: None,
        }),
        [key, colon, tail @ ..] if settable && colon.tok == Tok::Colon => {
            let w = key.text().unwrap_or_default().to_string();
            let leaf_id = match tree.lookup(addr.node(), &w) {
                Lookup::Found(id) => id,
                Lookup::Ambiguous(names) => {
                    return Err(ShellError::new(
                        Code::AmbiguousPath,
                        key.col,
                        format!("'{w}' is the start of several words"),
                    )
                    .expected(format!("one of: {}", names.join(", ")))
                    .area(area)
                    .path(addr.words(tree)))
                }
                Lookup::NotFound => {
                    let names = tree.child_names(addr.node());
                    let mut p = addr.words(tree);
                    p.push(w.clone());
                    return Err(ShellError::new(
                        Code::UnknownPath,
                        key.col,
                        format!("no match for '{w}'"),
                    )
                    .expected(format!(
                        "one of: {}",
                        nearest(&w, names.iter().map(String::as_str)).join(", ")
                    ))
                    .area(area)
                    .path(p));
                }
            };
            let mut full = addr.clone();
            full.steps.push(Step {
                node: leaf_id,
                instance: None,
            });
            let node = &tree.nodes[leaf_id];
            let Some(leaf) = node.leaf.as_ref() else {
                let mut under = Vec::new();
                tree.leaves_under(leaf_id, &mut under);
                let names: Vec<String> = tree.child_names(Some(leaf_id));
                let what = if node.instances.is_some() {
                    format!("{} <n> then one of: {}", node.name, names.join(", "))
                } else {
                    format!("one of: {}", names.join(", "))
                };
                return Err(ShellError::new(
                    Code::NotALeaf,
                    key.col,
                    format!("'{}' is not a leaf; a value goes after a leaf", node.name),
                )
                .expected(what)
                .area(area)
                .path(full.words(tree)));
            };
            // Instance numbers must be complete for a set.
            for st in &addr.steps {
                if let (Some((lo, hi)), None) = (tree.nodes[st.node].instances, st.instance) {
                    return Err(ShellError::new(
                        Code::MissingInstance,
                        key.col,
                        format!("{} needs an instance number", tree.nodes[st.node].name),
                    )
                    .expected(format!("{} [{lo}..{hi}]", tree.nodes[st.node].name))
                    .area(area)
                    .path(addr.words(tree)));
                }
            }
            let value_tok = match tail {
                [] => {
                    return Err(ShellError::new(
                        Code::MissingValue,
                        end_col(line),
                        format!("'{}:' has no value", node.name),
                    )
                    .expected(leaf.space.to_string())
                    .area(area)
                    .path(full.words(tree)))
                }
                [h] if help_kind(h).is_some() => {
                    return Ok(Action::Help {
                        which,
                        addr: full,
                        all: help_kind(h) == Some(true),
                        prefix: None,
                    })
                }
                [v] => v,
                [_, extra, ..] => {
                    return Err(ShellError::new(
                        Code::Unexpected,
                        extra.col,
                        "text after the value",
                    )
                    .expected("end of line (quote values that hold spaces)")
                    .area(area)
                    .path(full.words(tree)))
                }
            };
            let raw = value_tok.text().unwrap_or_default();
            let value = leaf.space.validate(raw).map_err(|_| {
                ShellError::new(
                    Code::IllegalValue,
                    value_tok.col,
                    format!("'{raw}' is not a valid value for {}", node.name),
                )
                .expected(leaf.space.to_string())
                .area(area)
                .path(full.words(tree))
            })?;
            let inst = addr.steps.iter().filter_map(|s| s.instance).collect();
            Ok(Action::ConfigSet {
                key: Key {
                    leaf: leaf_id,
                    inst,
                },
                value,
                col: key.col,
            })
        }
        [t, ..] => {
            let expected = match addr.node() {
                Some(n) if tree.nodes[n].leaf.is_some() => "end of line".to_string(),
                n => format!("one of: {}", tree.child_names(n).join(", ")),
            };
            Err(ShellError::new(Code::Unexpected, t.col, "unexpected token")
                .expected(expected)
                .area(area)
                .path(addr.words(tree)))
        }
    }
}
