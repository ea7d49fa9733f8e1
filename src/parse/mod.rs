//! The parser: a line of the command language into an [`Action`] checked against the schema.
//!
//! `lex` splits the line (grammar/xapi.ebnf); this room resolves verbs, paths, instances, keys
//! and values against [`crate::schema`]. It knows no disk, no terminal and no session state, so the
//! conformance corpus (`tests/corpus/`) can check it line by line.

pub mod feedback;
pub mod lex;

use std::fmt;

use crate::error::{nearest, Area, Code, ShellError};
use crate::schema::{schema, BodyKind, Lookup, NodeId, Schema, Tree};
use lex::{Tok, Token};

/// The verbs of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Configuration,
    Status,
    Command,
    Preferences,
    Feedback,
    History,
    GetXml,
    Echo,
    Bye,
    Help,
}

/// Canonical verb spellings; any unique prefix of these is accepted (`xconf`, `xstat`, `xcom`).
pub const VERBS: &[(&str, Verb)] = &[
    ("xConfiguration", Verb::Configuration),
    ("xStatus", Verb::Status),
    ("xCommand", Verb::Command),
    ("xPreferences", Verb::Preferences),
    ("xFeedback", Verb::Feedback),
    ("xHistory", Verb::History),
    ("xGetXML", Verb::GetXml),
];

/// Words that must be typed in full.
pub const PLAIN_VERBS: &[(&str, Verb)] = &[
    ("echo", Verb::Echo),
    ("bye", Verb::Bye),
    ("exit", Verb::Bye),
    ("quit", Verb::Bye),
    ("help", Verb::Help),
];

/// One step of an address: a node and, for instance nodes, the chosen instance (None = all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub node: NodeId,
    pub instance: Option<u32>,
}

/// An address in a tree: the steps from a root. Empty = the whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addr {
    pub steps: Vec<Step>,
}

impl Addr {
    pub fn node(&self) -> Option<NodeId> {
        self.steps.last().map(|s| s.node)
    }

    /// Canonical words, e.g. `Zones Zone 3 Name`.
    pub fn words(&self, tree: &Tree) -> Vec<String> {
        let mut v = Vec::new();
        for s in &self.steps {
            v.push(tree.nodes[s.node].name.clone());
            if let Some(n) = s.instance {
                v.push(n.to_string());
            }
        }
        v
    }
}

/// The key a configuration or status value is stored under: the leaf and its instance numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub leaf: NodeId,
    pub inst: Vec<u32>,
}

impl Key {
    /// Canonical words, e.g. `Zones Zone 3 Name`.
    pub fn words(&self, tree: &Tree) -> String {
        let mut out = String::new();
        let mut inst = self.inst.iter();
        for id in tree.ancestry(self.leaf) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&tree.nodes[id].name);
            if tree.nodes[id].instances.is_some() {
                if let Some(n) = inst.next() {
                    out.push(' ');
                    out.push_str(&n.to_string());
                }
            }
        }
        out
    }

    /// XPath-like address, e.g. `Zones/Zone[3]/Name`.
    pub fn slash_path(&self, tree: &Tree) -> String {
        let mut out = String::new();
        let mut inst = self.inst.iter();
        for id in tree.ancestry(self.leaf) {
            out.push('/');
            out.push_str(&tree.nodes[id].name);
            if tree.nodes[id].instances.is_some() {
                if let Some(n) = inst.next() {
                    out.push_str(&format!("[{n}]"));
                }
            }
        }
        out
    }
}

/// Output modes of `xPreferences OutputMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Terminal,
    Xml,
    Json,
}

/// `xFeedback` operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackOp {
    Register(String),
    Deregister(String),
    DeregisterAll,
    List,
}

/// Which tree a help request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Configuration,
    Status,
    Command,
    Verbs,
}

/// A command parameter as given: canonical name, `.N` index, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamValue {
    pub name: String,
    pub index: Option<u32>,
    pub value: String,
}

/// What a line asks for, fully checked against the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Empty,
    Echo(bool),
    Bye,
    ConfigGet(Addr),
    /// `col` is the column of the leaf word, for errors found after parsing (deprecated, role).
    ConfigSet {
        key: Key,
        value: String,
        col: usize,
    },
    StatusGet(Addr),
    Command {
        node: NodeId,
        params: Vec<ParamValue>,
    },
    Preferences(OutputMode),
    Feedback(FeedbackOp),
    History(Option<usize>),
    GetXml(String),
    Help {
        which: Which,
        addr: Addr,
        all: bool,
        prefix: Option<String>,
    },
}

/// A parsed request: the action and its result tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub result_id: Option<String>,
}

impl Request {
    /// Whether the command at this request expects a multi-line body to follow.
    pub fn body_kind(&self) -> BodyKind {
        match &self.action {
            Action::Command { node, .. } => schema().commands.nodes[*node]
                .command
                .as_ref()
                .map(|c| c.body)
                .unwrap_or(BodyKind::None),
            _ => BodyKind::None,
        }
    }
}

/// Parses one line against the process schema.
pub fn parse_line(line: &str) -> Result<Request, ShellError> {
    parse_with(schema(), line)
}

/// Parses one line against a given schema.
pub fn parse_with(s: &Schema, line: &str) -> Result<Request, ShellError> {
    let lexed = lex::lex(line)?;
    let result_id = lexed.result_id.clone();
    let toks = lexed.tokens;
    let action = match toks.first() {
        None => {
            if result_id.is_some() {
                Action::Empty
            } else {
                return Ok(Request {
                    action: Action::Empty,
                    result_id,
                });
            }
        }
        Some(first) => match &first.tok {
            Tok::Help | Tok::HelpAll => Action::Help {
                which: Which::Verbs,
                addr: Addr::default(),
                all: first.tok == Tok::HelpAll,
                prefix: None,
            },
            Tok::Word(w) => {
                let verb = find_verb(w, first.col)?;
                resolve(s, verb, &toks[1..], line)?
            }
            _ => {
                return Err(ShellError::new(
                    Code::UnknownVerb,
                    first.col,
                    "line does not start with a command",
                )
                .expected(verb_list()))
            }
        },
    };
    Ok(Request { action, result_id })
}

fn verb_list() -> String {
    let mut v: Vec<&str> = VERBS.iter().map(|(n, _)| *n).collect();
    v.extend(["echo", "bye", "help"]);
    v.join(", ")
}

fn find_verb(w: &str, col: usize) -> Result<Verb, ShellError> {
    if let Some((_, v)) = PLAIN_VERBS.iter().find(|(n, _)| n.eq_ignore_ascii_case(w)) {
        return Ok(*v);
    }
    let hits: Vec<&(&str, Verb)> = if w.len() >= 2 {
        VERBS
            .iter()
            .filter(|(n, _)| crate::schema::starts_with_ci(n, w))
            .collect()
    } else {
        Vec::new()
    };
    match hits.as_slice() {
        [one] => Ok(one.1),
        [] => {
            let names: Vec<&str> = VERBS
                .iter()
                .map(|(n, _)| *n)
                .chain(["echo", "bye", "help"])
                .collect();
            Err(
                ShellError::new(Code::UnknownVerb, col, format!("unknown command '{w}'"))
                    .expected(format!("one of: {}", nearest(w, names).join(", "))),
            )
        }
        many => Err(ShellError::new(
            Code::AmbiguousVerb,
            col,
            format!("'{w}' is the start of several commands"),
        )
        .expected(format!(
            "one of: {}",
            many.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn end_col(line: &str) -> usize {
    line.chars().count() + 1
}

fn resolve(s: &Schema, verb: Verb, toks: &[Token], line: &str) -> Result<Action, ShellError> {
    match verb {
        Verb::Configuration => resolve_tree(&s.config, Area::Configuration, toks, line, true),
        Verb::Status => resolve_tree(&s.status, Area::Status, toks, line, false),
        Verb::Command => resolve_command(s, toks, line),
        Verb::Echo => match words_only(toks)?.as_slice() {
            [(w, _)] if w.eq_ignore_ascii_case("on") => Ok(Action::Echo(true)),
            [(w, _)] if w.eq_ignore_ascii_case("off") => Ok(Action::Echo(false)),
            [] => Err(
                ShellError::new(Code::MissingValue, end_col(line), "echo takes on or off")
                    .expected("<on/off>"),
            ),
            other => Err(ShellError::new(
                Code::IllegalValue,
                other.first().map(|x| x.1).unwrap_or(end_col(line)),
                "echo takes on or off",
            )
            .expected("<on/off>")),
        },
        Verb::Bye => no_args(toks, Action::Bye),
        Verb::Help => no_args(
            toks,
            Action::Help {
                which: Which::Verbs,
                addr: Addr::default(),
                all: false,
                prefix: None,
            },
        ),
        Verb::Preferences => {
            if let Some(h) = toks
                .iter()
                .find(|t| matches!(t.tok, Tok::Help | Tok::HelpAll))
            {
                let _ = h;
                return Ok(Action::Help {
                    which: Which::Verbs,
                    addr: Addr::default(),
                    all: true,
                    prefix: Some("xPreferences".into()),
                });
            }
            let w = words_only(toks)?;
            let expected = "xPreferences OutputMode <Terminal/XML/JSON>";
            match w.as_slice() {
                [(k, kc), (v, vc)] => {
                    if !crate::schema::starts_with_ci("OutputMode", k) || k.len() < 2 {
                        return Err(ShellError::new(
                            Code::UnknownPath,
                            *kc,
                            format!("unknown preference '{k}'"),
                        )
                        .expected(expected));
                    }
                    let mode = if v.eq_ignore_ascii_case("terminal") {
                        OutputMode::Terminal
                    } else if v.eq_ignore_ascii_case("xml") {
                        OutputMode::Xml
                    } else if v.eq_ignore_ascii_case("json") {
                        OutputMode::Json
                    } else {
                        return Err(ShellError::new(
                            Code::IllegalValue,
                            *vc,
                            format!("'{v}' is not an output mode"),
                        )
                        .expected("<Terminal/XML/JSON>"));
                    };
                    Ok(Action::Preferences(mode))
                }
                [_, _, (_, c), ..] => {
                    Err(
                        ShellError::new(Code::Unexpected, *c, "text after the output mode")
                            .expected("end of line"),
                    )
                }
                [(k, kc)] if !crate::schema::starts_with_ci("OutputMode", k) || k.len() < 2 => Err(
                    ShellError::new(Code::UnknownPath, *kc, format!("unknown preference '{k}'"))
                        .expected(expected),
                ),
                _ => Err(
                    ShellError::new(Code::MissingValue, end_col(line), "missing preference")
                        .expected(expected),
                ),
            }
        }
        Verb::Feedback => {
            let w = words_only(toks)?;
            let expected = "register <path> | deregister <path> | deregisterall | list";
            match w.as_slice() {
                [(op, _)] if op.eq_ignore_ascii_case("list") => {
                    Ok(Action::Feedback(FeedbackOp::List))
                }
                [(op, _)] if op.eq_ignore_ascii_case("deregisterall") => {
                    Ok(Action::Feedback(FeedbackOp::DeregisterAll))
                }
                [(op, _), (p, pc)]
                    if op.eq_ignore_ascii_case("register")
                        || op.eq_ignore_ascii_case("deregister") =>
                {
                    let path = feedback::normalize(p).map_err(|m| {
                        ShellError::new(Code::UnknownPath, *pc, m)
                            .expected("a path like /Configuration/SIP/TLS or /Status/Zones/Zone[1]")
                    })?;
                    Ok(Action::Feedback(if op.eq_ignore_ascii_case("register") {
                        FeedbackOp::Register(path)
                    } else {
                        FeedbackOp::Deregister(path)
                    }))
                }
                other => Err(ShellError::new(
                    Code::Unexpected,
                    other.first().map(|x| x.1).unwrap_or(end_col(line)),
                    "bad xFeedback request",
                )
                .expected(expected)),
            }
        }
        Verb::History => match words_only(toks)?.as_slice() {
            [] => Ok(Action::History(None)),
            [(n, c)] => n
                .parse::<usize>()
                .map(|n| Action::History(Some(n)))
                .map_err(|_| {
                    ShellError::new(Code::IllegalValue, *c, format!("'{n}' is not a count"))
                        .expected("<1..10000>")
                }),
            [_, (_, c), ..] => Err(ShellError::new(Code::Unexpected, *c, "too many words")
                .expected("xHistory [count]")),
        },
        Verb::GetXml => {
            match words_only(toks)?.as_slice() {
                [(p, _)] => Ok(Action::GetXml(p.clone())),
                [] => Ok(Action::GetXml("/".into())),
                [_, (_, c), ..] => Err(ShellError::new(Code::Unexpected, *c, "too many words")
                    .expected("xGetXML <path>")),
            }
        }
    }
}

fn no_args(toks: &[Token], a: Action) -> Result<Action, ShellError> {
    match toks.first() {
        None => Ok(a),
        Some(t) => Err(
            ShellError::new(Code::Unexpected, t.col, "this command takes no arguments")
                .expected("end of line"),
        ),
    }
}

fn words_only(toks: &[Token]) -> Result<Vec<(String, usize)>, ShellError> {
    toks.iter()
        .map(|t| match &t.tok {
            Tok::Word(w) | Tok::Quoted(w) => Ok((w.clone(), t.col)),
            _ => Err(
                ShellError::new(Code::Unexpected, t.col, "unexpected symbol").expected("a word"),
            ),
        })
        .collect()
}

fn help_kind(t: &Token) -> Option<bool> {
    match t.tok {
        Tok::Help => Some(false),
        Tok::HelpAll => Some(true),
        _ => None,
    }
}

/// Walks path words through a tree. Returns the address and the index of the first unused token.
fn walk(
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
fn resolve_tree(
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

/// `xCommand <Path...> [Key[.N]: value]... [?|??]`.
fn resolve_command(s: &Schema, toks: &[Token], line: &str) -> Result<Action, ShellError> {
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
                format!("'{raw}' is not a valid value for {}", p.name),
            )
            .expected(p.space.to_string())
            .area(Area::Command)
            .path(addr.words(tree))
        })?;
        params.push(ParamValue {
            name: p.name.clone(),
            index,
            value,
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

impl fmt::Display for Action {
    /// A canonical one-line form, used by the conformance corpus.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = schema();
        match self {
            Action::Empty => write!(f, "empty"),
            Action::Echo(on) => write!(f, "echo {}", if *on { "on" } else { "off" }),
            Action::Bye => write!(f, "bye"),
            Action::ConfigGet(a) => write!(f, "config-get [{}]", a.words(&s.config).join(" ")),
            Action::ConfigSet { key, value, .. } => {
                write!(f, "config-set [{}] = {value:?}", key.words(&s.config))
            }
            Action::StatusGet(a) => write!(f, "status-get [{}]", a.words(&s.status).join(" ")),
            Action::Command { node, params } => {
                write!(
                    f,
                    "command [{}]",
                    Addr {
                        steps: s
                            .commands
                            .ancestry(*node)
                            .into_iter()
                            .map(|n| Step {
                                node: n,
                                instance: None
                            })
                            .collect()
                    }
                    .words(&s.commands)
                    .join(" ")
                )?;
                for p in params {
                    match p.index {
                        Some(i) => write!(f, " {}.{i}={:?}", p.name, p.value)?,
                        None => write!(f, " {}={:?}", p.name, p.value)?,
                    }
                }
                Ok(())
            }
            Action::Preferences(m) => write!(f, "preferences {m:?}"),
            Action::Feedback(op) => write!(f, "feedback {op:?}"),
            Action::History(n) => write!(f, "history {n:?}"),
            Action::GetXml(p) => write!(f, "getxml {p:?}"),
            Action::Help {
                which,
                addr,
                all,
                prefix,
            } => {
                let tree = match which {
                    Which::Configuration => Some(&s.config),
                    Which::Status => Some(&s.status),
                    Which::Command => Some(&s.commands),
                    Which::Verbs => None,
                };
                let words = tree.map(|t| addr.words(t).join(" ")).unwrap_or_default();
                write!(
                    f,
                    "help{} {which:?} [{words}]",
                    if *all { "-all" } else { "" }
                )?;
                if let Some(p) = prefix {
                    write!(f, " prefix={p:?}")?;
                }
                Ok(())
            }
        }
    }
}
