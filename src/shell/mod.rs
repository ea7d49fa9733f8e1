//! The shell session: state (output mode, echo, feedback registrations, role) and the execution of
//! parsed requests into replies. How lines arrive (PTY editor, clean line mode, pipe, `-c`) lives
//! in `run`; what the words mean lives in `parse` and `schema`; this room knows no listener.

pub mod editor;
pub mod feedback;
pub mod help;
pub mod input;
pub mod role;
pub mod run;
pub mod view;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::commands;
use crate::error::{Area, Code, ShellError};
use crate::parse::{Action, FeedbackOp, OutputMode, Request};
use crate::render::{self, json, terminal, xml, CommandResult, DocKind, Item, ResultStatus};
use crate::schema::schema;
use crate::store::{Config, Store, Who};

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

/// Session state.
pub struct Session {
    pub root: PathBuf,
    pub store: Store,
    pub who: Who,
    pub mode: OutputMode,
    pub echo: bool,
    pub feedback: Vec<String>,
    pub read_only: bool,
    /// Apply the sets of a batch in one transaction (one fsync). Off only for the P2 baseline.
    pub group_commit: bool,
    /// Shared with the feedback watcher.
    pub registrations: Arc<Mutex<feedback::Registrations>>,
    /// Add a line pointing at `help` to the banner: set by the front end for a person at a
    /// terminal only, so automation reads the banner it always read.
    pub help_hint: bool,
    feedback_watch: Option<feedback::Feedback>,
}

impl Session {
    pub fn new(root: &Path) -> Result<Session, ShellError> {
        let store =
            Store::open(root).map_err(|e| ShellError::new(Code::Store, 0, e.to_string()))?;
        let read_only = role::is_read_only(&store.globals().unwrap_or_default());
        Ok(Session {
            root: root.to_path_buf(),
            store,
            who: Who::current(),
            mode: OutputMode::Terminal,
            echo: true,
            feedback: Vec::new(),
            read_only,
            group_commit: true,
            registrations: Arc::new(Mutex::new(feedback::Registrations::default())),
            help_hint: false,
            feedback_watch: None,
        })
    }

    /// The welcome banner, ending in `OK`.
    pub fn banner(&self) -> String {
        let cfg = self.store.checked_globals().unwrap_or_default();
        let host = crate::status::host_name(&cfg);
        let mut s = format!(
            "Welcome to {host}\n{} {} (xConfiguration-compatible shell); root {}\n",
            crate::schema::PRODUCT,
            crate::schema::VERSION,
            self.root.display()
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
        // A read-only session's sets are refused without touching the store, so it never needs
        // the store's lock (which its user may not be allowed to open).
        if !(has_set && self.group_commit && batch.len() > 1 && !self.read_only) {
            let mut out = Vec::with_capacity(batch.len());
            for inc in batch {
                let r = self.exec_one(inc, None);
                let stop = !r.ok && stop_on_error;
                out.push(r);
                if stop {
                    break;
                }
            }
            return out;
        }
        let store = self.store.clone();
        let who = self.who.clone();
        let mut set_idx = Vec::new();
        // Replies are kept outside the transaction, so a failed commit still answers every
        // request of the batch (only its sets turn into errors).
        let mut out: Vec<Reply> = Vec::with_capacity(batch.len());
        let mut pending = Some(batch);
        let res = store.transact(&who, |cfg| {
            for inc in pending.take().unwrap_or_default() {
                // A set, or a command that changes the configuration (`Configuration Reset`):
                // its `OK` holds only once the transaction is durable.
                let writes = match &inc.parsed {
                    Ok(Request {
                        action: Action::ConfigSet { .. },
                        ..
                    }) => Some(None),
                    Ok(Request {
                        action: Action::Command { node, .. },
                        ..
                    }) if commands::writes_config(*node) => Some(Some(*node)),
                    _ => None,
                };
                let tag = inc.parsed.as_ref().ok().and_then(|r| r.result_id.clone());
                let r = self.exec_one(inc, Some(cfg));
                if let (Some(command), true) = (writes, r.ok) {
                    set_idx.push((out.len(), tag, command));
                }
                let stop = !r.ok && stop_on_error;
                out.push(r);
                if stop {
                    break;
                }
            }
        });
        match res {
            Ok(_) => out,
            Err(e) => {
                // Nothing of the batch's sets is durable: every set that looked fine fails now.
                let err = ShellError::new(Code::Store, 0, e.to_string()).area(Area::Configuration);
                for (i, tag, command) in set_idx {
                    out[i] = match command {
                        None => self.error_reply(&err, tag.as_deref(), None),
                        Some(node) => {
                            let tree = &schema().commands;
                            let words = tree
                                .ancestry(node)
                                .iter()
                                .map(|&n| tree.nodes[n].name.clone())
                                .collect();
                            let err = ShellError::new(Code::Store, 0, e.to_string())
                                .area(Area::Command)
                                .path(words);
                            let name = render::command_result_name(tree, node);
                            self.error_reply(&err, tag.as_deref(), Some(&name))
                        }
                    };
                }
                // The store failed before the batch ran (its lock could not be taken): run the
                // requests one by one, so each gets its own reply.
                if let Some(batch) = pending {
                    for inc in batch {
                        let r = self.exec_one(inc, None);
                        let stop = !r.ok && stop_on_error;
                        out.push(r);
                        if stop {
                            break;
                        }
                    }
                }
                out
            }
        }
    }

    /// Executes one request. With `tx`, configuration reads and sets use that transaction's
    /// configuration; without, a set runs its own transaction.
    pub fn exec_one(&mut self, inc: Incoming, tx: Option<&mut Config>) -> Reply {
        let req = match inc.parsed {
            Ok(r) => r,
            Err(e) => return self.error_reply(&e, inc.result_id.as_deref(), None),
        };
        let tag = req.result_id.clone();
        let command_name = match &req.action {
            Action::Command { node, .. } => {
                Some(render::command_result_name(&schema().commands, *node))
            }
            _ => None,
        };
        match self.exec_action(req.action, inc.body, tx, tag.as_deref()) {
            Ok(r) => r,
            Err(e) => self.error_reply(&e, tag.as_deref(), command_name.as_deref()),
        }
    }

    fn error_reply(&self, e: &ShellError, tag: Option<&str>, command_name: Option<&str>) -> Reply {
        Reply {
            text: render::error(self.mode, e, tag, command_name),
            ok: false,
        }
    }

    fn ok_empty(&self, tag: Option<&str>) -> Reply {
        let text = match self.mode {
            OutputMode::Terminal => {
                let mut s = String::new();
                terminal::result_id(tag, &mut s);
                s.push_str("OK\n");
                s
            }
            OutputMode::Xml => format!("{}OK\n", xml::empty(tag)),
            OutputMode::Json => json::empty(tag),
        };
        Reply { text, ok: true }
    }

    fn doc_reply(&self, kind: DocKind, items: &[Item], tag: Option<&str>) -> Reply {
        let text = match self.mode {
            OutputMode::Terminal => {
                let mut s = String::new();
                terminal::result_id(tag, &mut s);
                match kind {
                    DocKind::Configuration => terminal::config(items, &mut s),
                    DocKind::Status => terminal::status(items, &mut s),
                }
                s.push_str("OK\n");
                s
            }
            OutputMode::Xml => format!("{}OK\n", xml::reply(kind, items, tag)),
            OutputMode::Json => json::reply(kind, items, tag),
        };
        Reply { text, ok: true }
    }

    /// A command result in the session's mode.
    pub fn result_reply(&self, r: &CommandResult, tag: Option<&str>) -> Reply {
        let ok = r.status == ResultStatus::Ok;
        let term = if ok { "OK\n" } else { "ERROR\n" };
        let text = match self.mode {
            OutputMode::Terminal => {
                let mut s = String::new();
                terminal::result_id(tag, &mut s);
                terminal::result(r, &mut s);
                s.push_str(term);
                s
            }
            OutputMode::Xml => format!("{}{term}", xml::result(r, tag)),
            OutputMode::Json => json::result(r, tag),
        };
        Reply { text, ok }
    }

    fn help_reply(&self, lines: Vec<String>, tag: Option<&str>) -> Reply {
        let text = match self.mode {
            OutputMode::Terminal => {
                let mut s = String::new();
                terminal::result_id(tag, &mut s);
                for l in &lines {
                    s.push_str("*h ");
                    s.push_str(l);
                    s.push('\n');
                }
                s.push_str("OK\n");
                s
            }
            OutputMode::Xml => format!("{}OK\n", xml::help(&lines, tag)),
            OutputMode::Json => json::help(&lines, tag),
        };
        Reply { text, ok: true }
    }

    fn exec_action(
        &mut self,
        action: Action,
        body: Option<String>,
        tx: Option<&mut Config>,
        tag: Option<&str>,
    ) -> Result<Reply, ShellError> {
        match action {
            Action::Empty => Ok(if tag.is_some() {
                self.ok_empty(tag)
            } else {
                Reply {
                    text: String::new(),
                    ok: true,
                }
            }),
            Action::Echo(on) => {
                self.echo = on;
                run::set_tty_echo(on);
                Ok(self.ok_empty(tag))
            }
            Action::Bye => Ok(Reply {
                text: String::new(),
                ok: true,
            }),
            Action::Preferences(m) => {
                self.mode = m;
                if let Ok(mut r) = self.registrations.lock() {
                    r.mode = Some(m);
                }
                // In JSON mode nothing but JSON: an untagged switch prints nothing at all.
                if m == OutputMode::Json && tag.is_none() {
                    return Ok(Reply {
                        text: String::new(),
                        ok: true,
                    });
                }
                Ok(self.ok_empty(tag))
            }
            Action::ConfigGet(addr) => {
                let loaded;
                let cfg: &Config = match tx {
                    Some(c) => c,
                    None => {
                        loaded = self
                            .store
                            .snapshot()
                            .map_err(|e| ShellError::new(Code::Store, 0, e.to_string()))?;
                        &loaded
                    }
                };
                let items = config_items(cfg, &addr, self.mode == OutputMode::Xml);
                let mut r = self.doc_reply(DocKind::Configuration, &items, tag);
                if self.mode == OutputMode::Terminal {
                    if let Some(note) = deprecation_note(&addr) {
                        let at = r.text.len() - "OK\n".len();
                        r.text.insert_str(at, &note);
                    }
                }
                Ok(r)
            }
            Action::ConfigSet { key, value, col } => {
                let tree = &schema().config;
                let node = &tree.nodes[key.leaf];
                let words = key.words(tree);
                let path: Vec<String> = words.split(' ').map(str::to_string).collect();
                let Some(leaf) = node.leaf.as_ref() else {
                    return Err(ShellError::new(Code::NotALeaf, col, "not a leaf")
                        .area(Area::Configuration)
                        .path(path));
                };
                if self.read_only {
                    let _ = self
                        .store
                        .audit_refused(&self.who, &words, &value, "read-only role");
                    return Err(ShellError::new(
                        Code::PermissionDenied,
                        col,
                        format!(
                            "user '{}' has a read-only role; {} was not changed",
                            self.who.user, words
                        ),
                    )
                    .expected("membership of the admin group to change configuration")
                    .area(Area::Configuration)
                    .path(path));
                }
                if leaf.read_only {
                    return Err(ShellError::new(
                        Code::ReadOnly,
                        col,
                        format!("{words} is read-only"),
                    )
                    .area(Area::Configuration)
                    .path(path));
                }
                let apply = |cfg: &mut Config| -> Result<(), ShellError> {
                    if let Some(d) = &leaf.deprecated {
                        if cfg.get(&key) != value {
                            return Err(ShellError::new(Code::Deprecated, col, format!("{words} is deprecated and cannot be set: {d}"))
                                .expected("xCommand Security Certificates Server Upload ... AlsoAsClient: True")
                                .area(Area::Configuration)
                                .path(path.clone()));
                        }
                    }
                    cfg.set(key.clone(), value.clone());
                    Ok(())
                };
                match tx {
                    Some(cfg) => apply(cfg)?,
                    None => {
                        let (res, _, _) =
                            self.store.transact(&self.who.clone(), apply).map_err(|e| {
                                ShellError::new(Code::Store, col, e.to_string())
                                    .area(Area::Configuration)
                                    .path(path.clone())
                            })?;
                        res?;
                    }
                }
                Ok(self.ok_empty(tag))
            }
            Action::StatusGet(addr) => {
                let loaded;
                let cfg: &Config = match tx {
                    Some(c) => c,
                    None => {
                        loaded = self.store.globals().unwrap_or_default();
                        &loaded
                    }
                };
                let items = status_items(&self.root, cfg, &addr);
                if items.is_empty() && !addr.steps.is_empty() {
                    let words = addr.words(&schema().status);
                    return Err(ShellError::new(
                        Code::UnknownPath,
                        0,
                        "no status is available at this address yet",
                    )
                    .expected("a path with values; try xStatus ?")
                    .area(Area::Status)
                    .path(words));
                }
                Ok(self.doc_reply(DocKind::Status, &items, tag))
            }
            Action::Help {
                which,
                addr,
                all,
                prefix,
            } => {
                let lines = help::lines(which, &addr, all, prefix.as_deref());
                Ok(self.help_reply(lines, tag))
            }
            Action::Feedback(op) => {
                let r = match op {
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
                            .enumerate()
                            .map(|(i, p)| {
                                Item::instance(
                                    "Registration",
                                    i as u32 + 1,
                                    vec![Item::leaf("Path", p.clone())],
                                )
                            })
                            .collect(),
                    }),
                };
                if let Ok(mut r) = self.registrations.lock() {
                    r.paths = self.feedback.clone();
                    r.mode = Some(self.mode);
                }
                if !self.feedback.is_empty() && self.feedback_watch.is_none() {
                    self.feedback_watch = feedback::start(&self.root, self.registrations.clone());
                }
                Ok(match r {
                    Some(r) => self.result_reply(&r, tag),
                    None => self.ok_empty(tag),
                })
            }
            Action::History(n) => {
                let recs = self
                    .store
                    .history(n.unwrap_or(20))
                    .map_err(|e| ShellError::new(Code::Store, 0, e.to_string()))?;
                let fields = recs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        Item::instance(
                            "Change",
                            i as u32 + 1,
                            vec![
                                Item::leaf("Time", r.time.clone()),
                                Item::leaf("Generation", r.generation.to_string()),
                                Item::leaf("User", r.user.clone()),
                                Item::leaf("From", r.from.clone()),
                                Item::leaf("Session", r.session.clone()),
                                Item::leaf("Path", r.path.clone()),
                                Item::leaf("Old", r.old.clone()),
                                Item::leaf("New", r.new.clone()),
                                Item::leaf("Result", r.result.clone()),
                            ],
                        )
                    })
                    .collect();
                Ok(self.result_reply(
                    &CommandResult {
                        name: "HistoryResult".into(),
                        status: ResultStatus::Ok,
                        fields,
                    },
                    tag,
                ))
            }
            Action::GetXml(path) => {
                let loaded = match tx {
                    Some(c) => c.clone(),
                    None => self.store.load().unwrap_or_default(),
                };
                let text = get_xml(&self.root, &loaded, &path)?;
                let text = match self.mode {
                    // JSON mode prints JSON only: the XML document travels as one string.
                    OutputMode::Json => {
                        let mut s = String::from("{\"GetXML\":{\"Value\":");
                        json::string(&text, &mut s);
                        s.push('}');
                        if let Some(t) = tag {
                            s.push_str(",\"ResultId\":");
                            json::string(t, &mut s);
                        }
                        s.push_str("}\n");
                        s
                    }
                    OutputMode::Terminal => {
                        let mut s = String::new();
                        terminal::result_id(tag, &mut s);
                        format!("{s}{text}OK\n")
                    }
                    OutputMode::Xml => format!("{text}OK\n"),
                };
                Ok(Reply { text, ok: true })
            }
            Action::Command { node, params } => {
                let r = commands::run(self, node, &params, body, tx)?;
                Ok(self.result_reply(&r, tag))
            }
        }
    }
}

use view::deprecation_note;
pub use view::{config_items, get_xml, status_items};
