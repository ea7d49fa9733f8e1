//! `xCommand <Path...> [Key[.N]: value]...`: the command tree, parameters checked against their
//! value spaces, required parameters, and help.

use super::lex::{Tok, Token};
use super::path::{help_kind, walk};
use super::{end_col, Action, ParamValue, Which};
use crate::error::{Area, Code, ShellError};
use crate::schema::{Lookup, Schema};

/// `xCommand <Path...> [Key[.N]: value]... [?|??]`.
pub(super) fn resolve_command(
    s: &Schema,
    toks: &[Token],
    line: &str,
) -> Result<Action, ShellError> {
    let tree = &s.commands;
    if let (Some(last), true) = (toks.last(), toks.len() >= 2) {
        if let (Some(all), Tok::Word(w)) = (help_kind(last), &toks[toks.len() - 2].tok) {
            if last.glued {
                if let Ok((addr, used)) = walk(tree, Area::Command, &toks[..toks.len() - 2], false)
                {
                    let at_command = addr.node().is_some_and(|n| tree.nodes[n].command.is_some());
                    if used == toks.len() - 2
                        && !matches!(tree.lookup(addr.node(), w), Lookup::Found(_))
                    {
                        // After a command the word is a parameter: help on the command.
                        return Ok(Action::Help {
                            which: Which::Command,
                            addr,
                            all,
                            prefix: (!at_command).then(|| w.clone()),
                        });
                    }
                }
            }
        }
    }
    let (addr, used) = walk(tree, Area::Command, toks, true)?;
    let rest = &toks[used..];
    if let Some(h) = rest.first().and_then(help_kind) {
        return Ok(Action::Help {
            which: Which::Command,
            addr,
            all: h,
            prefix: None,
        });
    }
    let Some(node) = addr.node().filter(|&n| tree.nodes[n].command.is_some()) else {
        let names = tree.child_names(addr.node());
        let col = rest.first().map(|t| t.col).unwrap_or(end_col(line));
        return Err(
            ShellError::new(Code::UnknownPath, col, "incomplete command")
                .expected(format!("one of: {}", names.join(", ")))
                .area(Area::Command)
                .path(addr.words(tree)),
        );
    };
    let Some(spec) = tree.nodes[node].command.as_ref() else {
        return Err(
            ShellError::new(Code::UnknownPath, end_col(line), "incomplete command")
                .area(Area::Command),
        );
    };
    let mut params = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let key = &rest[i];
        if help_kind(key).is_some() {
            return Ok(Action::Help {
                which: Which::Command,
                addr,
                all: true,
                prefix: None,
            });
        }
        let Some(kw) = key.text().filter(|_| matches!(key.tok, Tok::Word(_))) else {
            return Err(
                ShellError::new(Code::Unexpected, key.col, "expected a parameter name")
                    .expected(param_list(spec))
                    .area(Area::Command)
                    .path(addr.words(tree)),
            );
        };
        let (name, index) = match kw.split_once('.') {
            Some((n, idx)) => match idx.parse::<u32>() {
                Ok(k) if k >= 1 => (n, Some(k)),
                _ => {
                    return Err(ShellError::new(
                        Code::UnknownParam,
                        key.col,
                        format!("bad parameter index in '{kw}'"),
                    )
                    .expected("Key.N with N >= 1")
                    .area(Area::Command)
                    .path(addr.words(tree)))
                }
            },
            None => (kw, None),
        };
        let Some(p) = spec.param(name) else {
            return Err(ShellError::new(
                Code::UnknownParam,
                key.col,
                format!("unknown parameter '{name}'"),
            )
            .expected(param_list(spec))
            .area(Area::Command)
            .path(addr.words(tree)));
        };
        if rest.get(i + 1).map(|t| &t.tok) != Some(&Tok::Colon) {
            return Err(ShellError::new(
                Code::MissingValue,
                rest.get(i + 1).map(|t| t.col).unwrap_or(end_col(line)),
                format!("'{}' needs ':' and a value", p.name),
            )
            .expected(format!("{}: {}", p.name, p.space))
            .area(Area::Command)
            .path(addr.words(tree)));
        }
        let Some(vt) = rest.get(i + 2) else {
            return Err(ShellError::new(
                Code::MissingValue,
                end_col(line),
                format!("'{}:' has no value", p.name),
            )
            .expected(p.space.to_string())
            .area(Area::Command)
            .path(addr.words(tree)));
        };
        if help_kind(vt).is_some() {
            return Ok(Action::Help {
                which: Which::Command,
                addr,
                all: true,
                prefix: None,
            });
        }
        let raw = vt.text().unwrap_or_default();
        let value = p.space.validate(raw).map_err(|_| {
            ShellError::new(
                Code::IllegalParam,
                vt.col,
                format!(
                    "'{}' is not a valid value for {}",
                    super::mask::shown_value(&p.name, raw),
                    p.name
                ),
            )
            .expected(p.space.to_string())
            .area(Area::Command)
            .path(addr.words(tree))
        })?;
        params.push(ParamValue {
            name: p.name.clone(),
            index,
            value,
            col: vt.col + usize::from(matches!(vt.tok, Tok::Quoted(_))),
        });
        i += 3;
    }
    for p in spec.params.iter().filter(|p| p.required) {
        if !params.iter().any(|v| v.name == p.name) {
            return Err(ShellError::new(
                Code::MissingParam,
                end_col(line),
                format!("required parameter '{}' is missing", p.name),
            )
            .expected(format!("{}: {}", p.name, p.space))
            .area(Area::Command)
            .path(addr.words(tree)));
        }
    }
    Ok(Action::Command { node, params })
}

fn param_list(spec: &crate::schema::CommandSpec) -> String {
    if spec.params.is_empty() {
        return "no parameters".into();
    }
    spec.params
        .iter()
        .map(|p| {
            format!(
                "{}: {}{}",
                p.name,
                p.space,
                if p.required { " (r)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
