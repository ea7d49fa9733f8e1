//! The parser: a line of the command language into an [`Action`] checked against the schema.
//!
//! `lex` splits the line (grammar/xapi.ebnf); this room resolves verbs, paths, instances, keys
//! and values against [`crate::schema`]. It knows no disk, no terminal and no session state, so the
//! conformance corpus (`tests/corpus/`) can check it line by line.

mod command;
mod display;
pub mod feedback;
pub mod lex;
pub mod mask;
mod path;

use crate::error::{nearest, Area, Code, ShellError};
use crate::schema::{schema, BodyKind, NodeId, Schema, Tree};
use command::resolve_command;
use lex::{Tok, Token};
use path::resolve_tree;

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
    /// Column of the value's first character in the line (inside the quotes), so a handler
    /// that parses the value further can point into the user's line.
    pub col: usize,
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

/// Resolves tokens a front end built from a structured request (a JSON path, a form) exactly as
/// the tokens of a typed line are resolved. `line` is that request written out as a line; it is
/// read only for the columns of errors, never lexed, so a value can never become syntax.
pub fn resolve_tokens(
    s: &Schema,
    verb: Verb,
    toks: &[Token],
    line: &str,
) -> Result<Action, ShellError> {
    resolve(s, verb, toks, line)
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

/// The canonical name of a verb, as help names it.
pub fn verb_name(verb: Verb) -> &'static str {
    VERBS
        .iter()
        .chain(PLAIN_VERBS)
        .find(|(_, v)| *v == verb)
        .map_or("help", |(n, _)| *n)
}

/// `help <verb> [<path>]`: the same as `<verb> [<path>] ?` (or `??` when typed).
fn help_for(s: &Schema, toks: &[Token], line: &str) -> Result<Action, ShellError> {
    let verb = match toks.first().map(|t| (&t.tok, t.col)) {
        Some((Tok::Word(w), col)) => find_verb(w, col)?,
        Some((Tok::Help | Tok::HelpAll, _)) | None => {
            let all = toks.first().is_some_and(|t| t.tok == Tok::HelpAll);
            return Ok(Action::Help {
                which: Which::Verbs,
                addr: Addr::default(),
                all,
                prefix: None,
            });
        }
        Some((_, col)) => {
            return Err(ShellError::new(Code::Unexpected, col, "unexpected symbol")
                .expected("a command to explain, e.g. help xConfiguration SIP"))
        }
    };
    let mut rest = toks[1..].to_vec();
    if !rest
        .iter()
        .any(|t| matches!(t.tok, Tok::Help | Tok::HelpAll))
    {
        rest.push(Token {
            tok: Tok::Help,
            col: end_col(line),
            glued: false,
        });
    }
    resolve(s, verb, &rest, line)
}

/// `?` or `??` after a verb without a tree: that verb's usage.
fn verb_help(verb: Verb, toks: &[Token]) -> Option<Action> {
    let t = toks
        .iter()
        .find(|t| matches!(t.tok, Tok::Help | Tok::HelpAll))?;
    Some(Action::Help {
        which: Which::Verbs,
        addr: Addr::default(),
        all: t.tok == Tok::HelpAll,
        prefix: Some(verb_name(verb).to_string()),
    })
}

fn resolve(s: &Schema, verb: Verb, toks: &[Token], line: &str) -> Result<Action, ShellError> {
    if !matches!(
        verb,
        Verb::Configuration | Verb::Status | Verb::Command | Verb::Help | Verb::Preferences
    ) {
        if let Some(help) = verb_help(verb, toks) {
            return Ok(help);
        }
    }
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
        Verb::Help => help_for(s, toks, line),
        Verb::Preferences => {
            if toks
                .iter()
                .any(|t| matches!(t.tok, Tok::Help | Tok::HelpAll))
            {
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
