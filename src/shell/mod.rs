//! The shell session: what a terminal session has (output mode, echo, feedback registrations,
//! the caller's role, batching lines into one transaction) around the engine, which executes the
//! requests. How lines arrive (PTY editor, clean line mode, pipe, `-c`) lives in `run`; what the
//! words mean lives in `parse` and `schema`; what they do lives in `engine`. This room knows no
//! listener.

// Input from a user, a file or a peer is never unwrapped here: it gets an error value.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod editor;
pub mod feedback;
pub mod history;
pub mod input;
pub mod role;
pub mod run;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use crate::engine::{
    self, Answer, CommandResult, Context, Engine, FrontEnd, Item, ResultStatus, Role,
};
use crate::error::{Area, Code, ShellError};
use crate::parse::{Action, FeedbackOp, OutputMode, Request, Which};
use crate::render;
use crate::schema::schema;
use crate::store::{Config, Who};

/// The lock every writer of the session's output takes, so a feedback document never lands in
/// the middle of a reply.
pub fn output() -> &'static Mutex<()> {
    static L: OnceLock<Mutex<()>> = OnceLock::new();
    L.get_or_init(|| Mutex::new(()))
}

/// One reply: the exact text to write and whether the request succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub ok: bool,
}

/// A request as read: parsed (or failed), with its multi-line body.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub parsed: Result<Request, ShellError>,
    pub body: Option<String>,
    /// A tag recovered from a line that failed to parse, so errors can still carry it.
    pub result_id: Option<String>,
}

/// Which keys the session's terminal has, for `help` to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// No terminal (a pipe, `-c`, a channel without a PTY): nothing to say about keys.
    None,
    /// The full editor.
    Editor,
    /// Clean line mode: the kernel's line editing only.
    Line,
}

impl Keys {
    /// The `help` line about the keys, if there is a terminal.
    fn help_line(self) -> Option<String> {
        match self {
            Keys::None => None,
            Keys::Editor => Some(
                "Keys: Tab completes, Up/Down recall history, Ctrl-C clears the line, Ctrl-D leaves."
                    .into(),
            ),
            Keys::Line => Some(format!(
                "Line mode (TERM={}): type each line whole and press Enter; Backspace works, Tab, arrows and history do not (TERM=xterm gets the full editor).",
                std::env::var("TERM").unwrap_or_default()
            )),
        }
    }
}

/// Session state.
pub struct Session {
    /// The engine of the session's ROOT.
    pub engine: Engine,
    pub who: Who,
    pub mode: OutputMode,
    pub echo: bool,
    pub feedback: Vec<String>,
    pub read_only: bool,
    /// `Shell IdleTimeout` as the session opened (None: never).
    pub idle_limit: Option<u64>,
    /// Apply the sets of a batch in one transaction (one fsync). Off only for the P2 baseline.
    pub group_commit: bool,
    /// Shared with the feedback watcher.
    pub registrations: Arc<Mutex<feedback::Registrations>>,
    /// Add a line pointing at `help` to the banner: set by the front end for a person at a
    /// terminal only, so automation reads the banner it always read.
    pub help_hint: bool,
    /// The keys of the session's terminal (set by the front end that reads it).
    pub keys: Keys,
    feedback_watch: Option<feedback::Feedback>,
}

/// What a batch entry needs if its transaction fails: its index, its tag, and the command that
/// wrote (None: a set).
type Written = (usize, Option<String>, Option<crate::schema::NodeId>);

impl Session {
    pub fn new(root: &Path) -> Result<Session, ShellError> {
        let engine = Engine::open(root, crate::handlers())?;
        // One read of the configuration decides what the session is opened with.
        // Only the values outside instances: the session must not pay for 1,000 zones.
        let loaded = engine.store().checked_globals();
        let read_only = role::is_read_only(loaded.as_deref().unwrap_or(&Config::default()));
        let idle_limit = loaded.as_deref().ok().and_then(run::idle_limit);
        Ok(Session {
            engine,
            who: Who::current(),
            mode: OutputMode::Terminal,
            echo: true,
            feedback: Vec::new(),
            read_only,
            idle_limit,
            group_commit: true,
            registrations: Arc::new(Mutex::new(feedback::Registrations::default())),
            help_hint: false,
            keys: Keys::None,
            feedback_watch: None,
        })
    }

    /// The session's ROOT.
    pub fn root(&self) -> &Path {
        self.engine.root()
    }

    /// Who asks, for the engine: this session's user and role, through the shell.
    pub fn context(&self) -> Context {
        let role = if self.read_only {
            Role::ReadOnly
        } else {
            Role::Admin
        };
        Context::new(self.who.clone(), role, FrontEnd::Shell)
    }

    /// The welcome banner, ending in `OK`.
    pub fn banner(&self) -> String {
        let cfg = self.engine.store().checked_globals().unwrap_or_default();
        let host = crate::status::host_name(&cfg);
        let mut s = format!(
            "Welcome to {host}\n{} {} (xConfiguration-compatible shell); root {}\n",
            crate::schema::PRODUCT,
            crate::schema::VERSION,
            self.root().display()
        );
        for p in &cfg.problems {
            s.push_str(&format!(
                "*w xconf.txt line {}: {}: {}\n",
                p.line,
                if p.is_error { "ignored" } else { "warning" },
                p.message
            ));
        }
        if self.read_only {
            s.push_str("*w read-only session: configuration and certificates cannot be changed\n");
        }
        if self.help_hint {
            s.push_str(
                "Type help for the commands and keys, or ? after a word for what can follow.\n",
            );
        }
        s.push_str("*r Login successful\n\nOK\n");
        s
    }

    /// Executes a batch of requests: all sets in one locked transaction (group commit), replies
    /// returned only after the transaction is durable. Stops after the first failure when
    /// `stop_on_error`; returns the replies of the requests that ran.
    pub fn run_batch(&mut self, batch: Vec<Incoming>, stop_on_error: bool) -> Vec<Reply> {
        let has_set = batch.iter().any(|i| {
            matches!(
                &i.parsed,
                Ok(Request {
                    action: Action::ConfigSet { .. },
                    ..
                })
            )
        });
        let ctx = self.context();
        let mut out = Vec::with_capacity(batch.len());
        // A read-only session's sets are refused without touching the store, so it never needs
        // the store's lock (which its user may not be allowed to open).
        if !(has_set && self.group_commit && batch.len() > 1 && !self.read_only) {
            self.run_each(&ctx, batch, stop_on_error, &mut out);
            return out;
        }
        let engine = self.engine.clone();
        let mut written = Vec::new();
        // Replies are kept outside the transaction, so a failed commit still answers every
        // request of the batch (only its writes turn into errors).
        let mut pending = Some(batch);
        let res = engine.transact(&ctx, |cfg| {
            let batch = pending.take().unwrap_or_default();
            self.run_in(&ctx, cfg, batch, stop_on_error, &mut out, &mut written);
        });
        if let Err(e) = res {
            // Nothing of the batch's writes is durable: every one that looked fine fails now.
            self.fail_written(&e.to_string(), written, &mut out);
            // The store failed before the batch ran (its lock could not be taken): run the
            // requests one by one, so each gets its own reply.
            if let Some(batch) = pending {
                self.run_each(&ctx, batch, stop_on_error, &mut out);
            }
        }
        out
    }

    /// Runs `batch` request by request, each write in its own transaction.
    fn run_each(
        &mut self,
        ctx: &Context,
        batch: Vec<Incoming>,
        stop_on_error: bool,
        out: &mut Vec<Reply>,
    ) {
        for inc in batch {
            let r = self.exec_with(ctx, inc, None);
            let stop = !r.ok && stop_on_error;
            out.push(r);
            if stop {
                break;
            }
        }
    }

    /// Runs `batch` inside the transaction on `cfg`, noting in `written` each write whose `OK`
    /// holds only once the transaction is durable.
    fn run_in(
        &mut self,
        ctx: &Context,
        cfg: &mut Config,
        batch: Vec<Incoming>,
        stop_on_error: bool,
        out: &mut Vec<Reply>,
        written: &mut Vec<Written>,
    ) {
        for inc in batch {
            let writes = match &inc.parsed {
                Ok(r) if self.engine.writes_config(&r.action) => Some(match r.action {
                    Action::Command { node, .. } => Some(node),
                    _ => None,
                }),
                _ => None,
            };
            let tag = inc.parsed.as_ref().ok().and_then(|r| r.result_id.clone());
            let r = self.exec_with(ctx, inc, Some(cfg));
            if let (Some(command), true) = (writes, r.ok) {
                written.push((out.len(), tag, command));
            }
            let stop = !r.ok && stop_on_error;
            out.push(r);
            if stop {
                break;
            }
        }
    }

    /// Turns the replies of `written` into the store's error `message`.
    fn fail_written(&self, message: &str, written: Vec<Written>, out: &mut [Reply]) {
        for (i, tag, command) in written {
            out[i] = match command {
                None => {
                    let err = ShellError::new(Code::Store, 0, message).area(Area::Configuration);
                    self.error_reply(&err, tag.as_deref(), None)
                }
                Some(node) => {
                    let tree = &schema().commands;
                    let words = tree
                        .ancestry(node)
                        .iter()
                        .map(|&n| tree.nodes[n].name.clone())
                        .collect();
                    let err = ShellError::new(Code::Store, 0, message)
                        .area(Area::Command)
                        .path(words);
                    let name = render::command_result_name(tree, node);
                    self.error_reply(&err, tag.as_deref(), Some(&name))
                }
            };
        }
    }

    /// Executes one request. With `tx`, configuration reads and sets use that transaction's
    /// configuration; without, a set runs its own transaction.
    pub fn exec_one(&mut self, inc: Incoming, tx: Option<&mut Config>) -> Reply {
        let ctx = self.context();
        self.exec_with(&ctx, inc, tx)
    }

    fn exec_with(&mut self, ctx: &Context, inc: Incoming, tx: Option<&mut Config>) -> Reply {
        let req = match inc.parsed {
            Ok(r) => r,
            Err(e) => return self.error_reply(&e, inc.result_id.as_deref(), None),
        };
        let tag = req.result_id.as_deref();
        let action = match req.action {
            Action::Echo(on) => return self.set_echo(on, tag),
            Action::Bye => return Reply::silent(),
            Action::Preferences(m) => return self.set_mode(m, tag),
            Action::Feedback(op) => return self.feedback(op, tag),
            a => a,
        };
        let command_name = match &action {
            Action::Command { node, .. } => {
                Some(render::command_result_name(&schema().commands, *node))
            }
            _ => None,
        };
        let verbs_help = matches!(
            &action,
            Action::Help {
                which: Which::Verbs,
                ..
            }
        );
        let req = engine::Request {
            action,
            body: inc.body,
        };
        match self.engine.execute_in(ctx, req, tx) {
            Ok(Answer::Help(mut lines)) if verbs_help => {
                lines.extend(self.keys.help_line());
                self.answer(&Answer::Help(lines), tag)
            }
            Ok(a) => self.answer(&a, tag),
            Err(e) => self.error_reply(&e, tag, command_name.as_deref()),
        }
    }

    fn answer(&self, a: &Answer, tag: Option<&str>) -> Reply {
        Reply {
            text: render::answer(self.mode, a, tag),
            ok: a.ok(),
        }
    }

    fn error_reply(&self, e: &ShellError, tag: Option<&str>, command_name: Option<&str>) -> Reply {
        Reply {
            text: render::error(self.mode, e, tag, command_name),
            ok: false,
        }
    }

    /// A command result in the session's mode.
    pub fn result_reply(&self, r: &CommandResult, tag: Option<&str>) -> Reply {
        self.answer(&Answer::Result(r.clone()), tag)
    }

    fn set_echo(&mut self, on: bool, tag: Option<&str>) -> Reply {
        self.echo = on;
        run::set_tty_echo(on);
        self.answer(&Answer::Done, tag)
    }

    fn set_mode(&mut self, m: OutputMode, tag: Option<&str>) -> Reply {
        self.mode = m;
        if let Ok(mut r) = self.registrations.lock() {
            r.mode = Some(m);
        }
        // In JSON mode nothing but JSON: an untagged switch prints nothing at all.
        if m == OutputMode::Json && tag.is_none() {
            return Reply::silent();
        }
        self.answer(&Answer::Done, tag)
    }

    /// `xFeedback register/deregister/list`: the session's registrations, and the watcher that
    /// delivers them (started at the first registration).
    fn feedback(&mut self, op: FeedbackOp, tag: Option<&str>) -> Reply {
        let listed = match op {
            FeedbackOp::Register(p) => {
                if !self.feedback.contains(&p) {
                    self.feedback.push(p);
                }
                None
            }
            FeedbackOp::Deregister(p) => {
                self.feedback.retain(|x| *x != p);
                None
            }
            FeedbackOp::DeregisterAll => {
                self.feedback.clear();
                None
            }
            FeedbackOp::List => Some(CommandResult {
                name: "FeedbackListResult".into(),
                status: ResultStatus::Ok,
                fields: self
                    .feedback
                    .iter()
                    .zip(1u32..)
                    .map(|(p, i)| {
                        Item::instance("Registration", i, vec![Item::leaf("Path", p.clone())])
                    })
                    .collect(),
            }),
        };
        if let Ok(mut r) = self.registrations.lock() {
            r.paths = self.feedback.clone();
            r.mode = Some(self.mode);
        }
        if !self.feedback.is_empty() && self.feedback_watch.is_none() {
            self.feedback_watch = feedback::start(self.engine.root(), self.registrations.clone());
        }
        match listed {
            Some(r) => self.answer(&Answer::Result(r), tag),
            None => self.answer(&Answer::Done, tag),
        }
    }
}

impl Reply {
    /// Nothing written, success (`bye`, an untagged switch to JSON).
    fn silent() -> Reply {
        Reply {
            text: String::new(),
            ok: true,
        }
    }
}
