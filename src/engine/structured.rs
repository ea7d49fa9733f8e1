//! Requests from structured paths: what the front ends without a command line (jsxapi's
//! WebSocket, `putxml`, the web forms) send — a list of path elements (`["Zones", "Zone", 2,
//! "Name"]`), a value, named parameters, a multi-line body — turned into the same [`Request`] a
//! typed line gives.
//!
//! Each element becomes one token of the parser's own kinds (a path word, a `:`, a quoted value)
//! and the parser resolves the tokens against the schema exactly as it resolves a typed line, so
//! words match case-insensitively, unique prefixes and instance numbers work, and every error
//! carries the code the shell gives. Nothing is lexed: a value holding quotes, colons or
//! newlines stays one value and can never become a second parameter. The line written out beside
//! the tokens is only there so an error's column points somewhere sensible.
//!
//! This room knows no JSON, no XML and no HTTP: callers strip their own document root
//! (`Configuration`, `Status`, `Command`) and pass what is below it.

use super::Request;
use crate::error::{Area, Code, ShellError};
use crate::parse::lex::{Tok, Token};
use crate::parse::{resolve_tokens, Action, Verb};
use crate::schema::{schema, text::quote_into, BodyKind};

/// One element of a structured path: a node name, or an instance number (jsxapi sends digits as
/// JSON numbers). Words match case-insensitively, as typed words do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Word(String),
    Index(u32),
}

impl From<&str> for Step {
    fn from(w: &str) -> Step {
        Step::Word(w.to_string())
    }
}

impl From<u32> for Step {
    fn from(n: u32) -> Step {
        Step::Index(n)
    }
}

/// Tokens and the line they would have been typed as.
struct Line {
    text: String,
    toks: Vec<Token>,
}

impl Line {
    fn new(verb: &str) -> Line {
        Line {
            text: verb.to_string(),
            toks: Vec::new(),
        }
    }

    fn col(&self) -> usize {
        self.text.chars().count() + 1
    }

    fn push(&mut self, tok: Tok) {
        let glued = tok == Tok::Colon;
        if !glued {
            self.text.push(' ');
        }
        let col = self.col();
        match &tok {
            Tok::Word(w) => self.text.push_str(w),
            Tok::Quoted(v) => quote_into(v, &mut self.text),
            Tok::Colon => self.text.push(':'),
            Tok::Help => self.text.push('?'),
            Tok::HelpAll => self.text.push_str("??"),
        }
        self.toks.push(Token { tok, col, glued });
    }

    /// A path element as a word. An empty word would be a prefix of every name, so it is
    /// refused here rather than matched.
    fn step(&mut self, s: &Step, area: Area) -> Result<(), ShellError> {
        let w = match s {
            Step::Word(w) if w.is_empty() => {
                return Err(ShellError::new(
                    Code::UnknownPath,
                    self.col() + 1,
                    "empty path element",
                )
                .expected("a node name")
                .area(area))
            }
            Step::Word(w) => w.clone(),
            Step::Index(n) => n.to_string(),
        };
        self.push(Tok::Word(w));
        Ok(())
    }

    fn steps(&mut self, steps: &[Step], area: Area) -> Result<(), ShellError> {
        steps.iter().try_for_each(|s| self.step(s, area))
    }

    fn resolve(&self, verb: Verb) -> Result<Action, ShellError> {
        resolve_tokens(schema(), verb, &self.toks, &self.text)
    }
}

fn request(action: Action) -> Request {
    Request { action, body: None }
}

/// The configuration at `steps` (below `Configuration`; empty = the whole tree).
pub fn config_get(steps: &[Step]) -> Result<Request, ShellError> {
    let mut l = Line::new("xConfiguration");
    l.steps(steps, Area::Configuration)?;
    l.resolve(Verb::Configuration).map(request)
}

/// The status at `steps` (below `Status`; empty = the whole tree).
pub fn status_get(steps: &[Step]) -> Result<Request, ShellError> {
    let mut l = Line::new("xStatus");
    l.steps(steps, Area::Status)?;
    l.resolve(Verb::Status).map(request)
}

/// Sets the leaf at `steps` (below `Configuration`, ending with the leaf's name) to `value`.
pub fn config_set(steps: &[Step], value: &str) -> Result<Request, ShellError> {
    let mut l = Line::new("xConfiguration");
    l.steps(steps, Area::Configuration)?;
    l.push(Tok::Colon);
    l.push(Tok::Quoted(value.to_string()));
    l.resolve(Verb::Configuration).map(request)
}

/// The command at `steps` (below `Command`) with `params` (a name and its values; several values
/// repeat the parameter, as `Name: a Name: b` does) and a multi-line `body`.
pub fn command(
    steps: &[Step],
    params: &[(String, Vec<String>)],
    body: Option<String>,
) -> Result<Request, ShellError> {
    let mut l = Line::new("xCommand");
    l.steps(steps, Area::Command)?;
    for (name, values) in params {
        if name.is_empty() {
            return Err(
                ShellError::new(Code::UnknownParam, l.col() + 1, "empty parameter name")
                    .expected("a parameter name")
                    .area(Area::Command),
            );
        }
        if values.is_empty() {
            l.push(Tok::Word(name.clone()));
            l.push(Tok::Colon);
        }
        for v in values {
            l.push(Tok::Word(name.clone()));
            l.push(Tok::Colon);
            l.push(Tok::Quoted(v.clone()));
        }
    }
    let action = l.resolve(Verb::Command)?;
    if let (Action::Command { node, .. }, Some(_)) = (&action, &body) {
        let tree = &schema().commands;
        let takes = tree.nodes[*node].command.as_ref().map(|c| c.body);
        if takes.is_none_or(|k| k == BodyKind::None) {
            let words = tree
                .ancestry(*node)
                .iter()
                .map(|&n| tree.nodes[n].name.clone())
                .collect::<Vec<_>>();
            return Err(ShellError::new(
                Code::BodyMismatch,
                0,
                format!("xCommand {} takes no multi-line body", words.join(" ")),
            )
            .expected("the command's parameters only")
            .area(Area::Command)
            .path(words));
        }
    }
    Ok(Request { action, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_line;

    fn w(words: &str) -> Vec<Step> {
        words
            .split(' ')
            .map(|x| match x.parse::<u32>() {
                Ok(n) => Step::Index(n),
                Err(_) => Step::Word(x.to_string()),
            })
            .collect()
    }

    fn same(structured: Result<Request, ShellError>, line: &str) {
        assert_eq!(
            structured.map(|r| r.action),
            parse_line(line).map(|r| r.action),
            "{line}"
        );
    }

    #[test]
    fn reads_match_typed_lines() {
        same(
            config_get(&w("SIP TLS Port")),
            "xConfiguration SIP TLS Port",
        );
        same(config_get(&w("sip tls")), "xConfiguration sip tls");
        same(config_get(&[]), "xConfiguration");
        same(
            config_get(&w("Zones Zone 2 Name")),
            "xConfiguration Zones Zone 2 Name",
        );
        same(status_get(&w("SystemUnit")), "xStatus SystemUnit");
        same(status_get(&w("Zones Zone 1001")), "xStatus Zones Zone 1001");
    }

    #[test]
    fn unknown_paths_carry_the_shells_code_and_path() {
        let e = config_get(&w("SIP TLS Prot")).unwrap_err();
        assert_eq!(e.code, Code::UnknownPath);
        assert_eq!(e.xpath(), "/Configuration/SIP/TLS/Prot");
        same(
            config_get(&w("SIP TLS Prot")),
            "xConfiguration SIP TLS Prot",
        );
        let e = config_get(&[Step::Word(String::new())]).unwrap_err();
        assert_eq!(e.code, Code::UnknownPath);
        let e = config_get(&w("Zones Zone Name")).unwrap_err();
        assert_eq!(e.code, Code::MissingInstance);
    }

    #[test]
    fn sets_validate_like_the_shell() {
        same(
            config_set(&w("SIP TLS Port"), "5062"),
            "xConfiguration SIP TLS Port: 5062",
        );
        let r = config_set(
            &w("sip tls certificate extendedkeyusage checking mode"),
            "off",
        )
        .unwrap();
        let Action::ConfigSet { value, .. } = r.action else {
            panic!("not a set")
        };
        assert_eq!(value, "Off");
        let e = config_set(&w("SIP TLS Port"), "70000").unwrap_err();
        assert_eq!(e.code, Code::IllegalValue);
        let e = config_set(&w("SIP TLS"), "1").unwrap_err();
        assert_eq!(e.code, Code::NotALeaf);
        let e = config_set(&w("Zones Zone Name"), "x").unwrap_err();
        assert_eq!(e.code, Code::MissingInstance);
    }

    #[test]
    fn a_value_never_injects_syntax() {
        // Quotes, a colon and a second key inside one value: one value, refused whole (a newline
        // is a control character) or kept whole.
        let v = "edge\" Mode: \"Off";
        let r = config_set(&w("SystemUnit Name"), v).unwrap();
        let Action::ConfigSet { value, .. } = r.action else {
            panic!("not a set")
        };
        assert_eq!(value, v);
        let e =
            config_set(&w("SystemUnit Name"), "a\nxConfiguration SIP TLS Mode: Off").unwrap_err();
        assert_eq!(e.code, Code::IllegalValue);
        // A path word holding syntax matches nothing.
        let e = config_get(&[Step::from("SIP TLS: x")]).unwrap_err();
        assert_eq!(e.code, Code::UnknownPath);
        let e = config_get(&[Step::from("?")]).unwrap_err();
        assert_eq!(e.code, Code::UnknownPath);
    }

    #[test]
    fn commands_params_and_bodies() {
        let params = vec![("Format".to_string(), vec!["PEM".to_string()])];
        same(
            command(&w("Security Certificates Server Show"), &params, None),
            "xCommand Security Certificates Server Show Format: \"PEM\"",
        );
        let bad = vec![("Nope".to_string(), vec!["1".to_string()])];
        let e = command(&w("Security Certificates Server Show"), &bad, None).unwrap_err();
        assert_eq!(e.code, Code::UnknownParam);
        let e = command(&w("Security Certificates Server"), &[], None).unwrap_err();
        assert_eq!(e.code, Code::UnknownPath);
        let e = command(&w("Security Certificates Nope Show"), &[], None).unwrap_err();
        assert_eq!(e.code, Code::UnknownPath);
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let r = command(
            &w("Security Certificates CA Add"),
            &[],
            Some(pem.to_string()),
        )
        .unwrap();
        assert_eq!(r.body.as_deref(), Some(pem));
        let e = command(
            &w("Security Certificates Server Show"),
            &[],
            Some(pem.into()),
        )
        .unwrap_err();
        assert_eq!(e.code, Code::BodyMismatch);
        // A parameter value with a quote and a second "parameter" stays one value.
        let sneaky = vec![(
            "Format".to_string(),
            vec!["PEM\" Format: \"Text".to_string()],
        )];
        let e = command(&w("Security Certificates Server Show"), &sneaky, None).unwrap_err();
        assert_eq!(e.code, Code::IllegalParam);
    }
}
