//! Reading the table: the record grammar of `xconf/schema.xconf` (grammar/valuespace.ebnf) in
//! nom, sharing the quoted-string parser with the command language.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{char, digit1, space0, space1};
use nom::combinator::{map_res, opt};
use nom::{IResult, Parser};

use super::text::quoted;
use super::{BodyKind, CommandSpec, Leaf, NodeId, Param, Schema, SchemaError, ValueSpace};

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Config,
    Status,
    Commands,
}

impl Schema {
    /// Parses the schema table.
    pub fn parse(src: &str) -> Result<Schema, SchemaError> {
        let mut s = Schema::default();
        let mut section = Section::None;
        let mut last_command: Option<NodeId> = None;
        let mut locals = Vec::new();
        for (i, raw) in src.lines().enumerate() {
            let line = i + 1;
            let text = raw.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let err = |message: String| SchemaError { line, message };
            match text {
                "[configuration]" => section = Section::Config,
                "[status]" => section = Section::Status,
                "[commands]" => section = Section::Commands,
                _ => {
                    let (rest, rec) =
                        record(text).map_err(|e| err(format!("cannot parse: {e}")))?;
                    if !rest.trim().is_empty() {
                        return Err(err(format!("unexpected text: {rest}")));
                    }
                    match (section, rec.kind) {
                        (Section::Config, "config") | (Section::Status, "status") => {
                            let space =
                                rec.space.ok_or_else(|| err("missing value space".into()))?;
                            let default = rec.default.unwrap_or_default();
                            if section == Section::Config && space.validate(&default).is_err() {
                                return Err(err(format!(
                                    "default \"{default}\" is outside {space}"
                                )));
                            }
                            let tree = if section == Section::Config {
                                &mut s.config
                            } else {
                                &mut s.status
                            };
                            let id = tree.insert(&rec.path, line)?;
                            tree.nodes[id].leaf = Some(Leaf {
                                space,
                                default,
                                read_only: rec.read_only,
                                local: false,
                                deprecated: rec.deprecated,
                                help: rec.help.unwrap_or_default(),
                            });
                        }
                        // Applied once every leaf is declared, wherever the record stands.
                        (Section::Config, "local") => locals.push((line, rec.path)),
                        (Section::Commands, "command") => {
                            let id = s.commands.insert(&rec.path, line)?;
                            s.commands.nodes[id].command = Some(CommandSpec {
                                params: Vec::new(),
                                body: rec.body,
                                help: rec.help.unwrap_or_default(),
                            });
                            last_command = Some(id);
                        }
                        (Section::Commands, "param") => {
                            let cmd = last_command
                                .ok_or_else(|| err("param before any command".into()))?;
                            let name = rec.path.first().map(|p| p.0.clone()).unwrap_or_default();
                            let space =
                                rec.space.ok_or_else(|| err("missing value space".into()))?;
                            if let Some(spec) = s.commands.nodes[cmd].command.as_mut() {
                                spec.params.push(Param {
                                    name,
                                    space,
                                    required: rec.required,
                                    default: rec.default,
                                    help: rec.help.unwrap_or_default(),
                                });
                            }
                        }
                        (_, kind) => {
                            return Err(err(format!("'{kind}' does not belong in this section")))
                        }
                    }
                }
            }
        }
        for (line, path) in locals {
            let id = s.config.find_exact(&path).ok_or_else(|| SchemaError {
                line,
                message: "'local' names no configuration node of this table".into(),
            })?;
            let mut leaves = Vec::new();
            s.config.leaves_under(id, &mut leaves);
            for l in leaves {
                if let Some(leaf) = s.config.nodes[l].leaf.as_mut() {
                    leaf.local = true;
                }
            }
        }
        s.config.number_leaves();
        s.status.number_leaves();
        s.commands.number_leaves();
        Ok(s)
    }
}

struct Record<'a> {
    kind: &'a str,
    path: Vec<(String, Option<(u32, u32)>)>,
    space: Option<ValueSpace>,
    default: Option<String>,
    read_only: bool,
    required: bool,
    deprecated: Option<String>,
    help: Option<String>,
    body: BodyKind,
}

fn ident(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_').parse(i)
}

/// A word of an enum value space: an ident, or idents joined by single dots (`1.2`).
fn enum_word(i: &str) -> IResult<&str, String> {
    let (mut i, first) = ident(i)?;
    let mut w = first.to_string();
    while let Ok((rest, (_, part))) = (char('.'), ident).parse(i) {
        w.push('.');
        w.push_str(part);
        i = rest;
    }
    Ok((i, w))
}

fn number(i: &str) -> IResult<&str, i64> {
    map_res(
        (opt(char('-')), digit1),
        |(neg, d): (Option<char>, &str)| {
            d.parse::<i64>().map(|n| if neg.is_some() { -n } else { n })
        },
    )
    .parse(i)
}

fn instance_range(i: &str) -> IResult<&str, (u32, u32)> {
    let (i, (_, _, a, _, b, _)) =
        (space1, char('['), number, tag(".."), number, char(']')).parse(i)?;
    Ok((i, (a.max(0) as u32, b.max(0) as u32)))
}

/// Parses a value space in the product's notation: `<On/Off>`, `<1..65534>`, `<S: 0, 255>`.
pub fn value_space(i: &str) -> IResult<&str, ValueSpace> {
    let (i, _) = char('<').parse(i)?;
    let (i, vs) = alt((
        |i| {
            let (i, (_, _, _, a, _, _, _, b)) = (
                char('S'),
                char(':'),
                space0,
                number,
                space0,
                char(','),
                space0,
                number,
            )
                .parse(i)?;
            Ok((
                i,
                ValueSpace::Str {
                    min: a.max(0) as usize,
                    max: b.max(0) as usize,
                },
            ))
        },
        |i| {
            let (i, (a, _, b)) = (number, tag(".."), number).parse(i)?;
            Ok((i, ValueSpace::Int { min: a, max: b }))
        },
        |i| {
            tag("Integer")
                .parse(i)
                .map(|(i, _)| (i, ValueSpace::AnyInt))
        },
        |i| {
            let (i, first) = enum_word(i)?;
            let mut words = vec![first];
            let mut i = i;
            while let Ok((rest, (_, w))) = (char('/'), enum_word).parse(i) {
                words.push(w);
                i = rest;
            }
            if words.len() == 1 && words[0] == "S" {
                return Ok((i, ValueSpace::AnyStr));
            }
            Ok((i, ValueSpace::Enum(words)))
        },
    ))
    .parse(i)?;
    let (i, _) = char('>').parse(i)?;
    Ok((i, vs))
}

fn record(i: &str) -> IResult<&str, Record<'_>> {
    let (mut i, kind) = alt((
        tag("config"),
        tag("status"),
        tag("command"),
        tag("param"),
        tag("local"),
    ))
    .parse(i)?;
    let mut rec = Record {
        kind,
        path: Vec::new(),
        space: None,
        default: None,
        read_only: false,
        required: false,
        deprecated: None,
        help: None,
        body: BodyKind::None,
    };
    // Path words until ':' (leaves, params) or the first attribute keyword (commands).
    loop {
        let (rest, _) = space0.parse(i)?;
        if rest.starts_with(':') || rest.is_empty() || is_attr(rest) {
            i = rest;
            break;
        }
        let (rest, w) = ident(rest)?;
        let (rest, inst) = opt(instance_range).parse(rest)?;
        rec.path.push((w.to_string(), inst));
        i = rest;
    }
    if let Ok((rest, _)) = char::<&str, nom::error::Error<&str>>(':').parse(i) {
        let (rest, _) = space0.parse(rest)?;
        let (rest, vs) = value_space(rest)?;
        rec.space = Some(vs);
        i = rest;
    }
    loop {
        let (rest, _) = space0.parse(i)?;
        if rest.is_empty() {
            return Ok((rest, rec));
        }
        let (rest, key) = alt((
            tag("default"),
            tag("deprecated"),
            tag("help"),
            tag("body"),
            tag("ro"),
            tag("(r)"),
        ))
        .parse(rest)?;
        i = match key {
            "ro" => {
                rec.read_only = true;
                rest
            }
            "(r)" => {
                rec.required = true;
                rest
            }
            "body" => {
                let (rest, (_, b)) =
                    (space1, alt((tag("optional"), tag("required")))).parse(rest)?;
                rec.body = if b == "optional" {
                    BodyKind::Optional
                } else {
                    BodyKind::Required
                };
                rest
            }
            _ => {
                let (rest, (_, q)) = (space1, quoted).parse(rest)?;
                match key {
                    "default" => rec.default = Some(q),
                    "deprecated" => rec.deprecated = Some(q),
                    _ => rec.help = Some(q),
                }
                rest
            }
        };
    }
}

fn is_attr(s: &str) -> bool {
    ["default ", "deprecated ", "help ", "body ", "(r)"]
        .iter()
        .any(|k| s.starts_with(k))
        || s == "ro"
        || s.starts_with("ro ")
}
