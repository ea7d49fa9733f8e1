//! The engine: a parsed request executed against a context, answered with a typed reply.
//!
//! An [`Engine`] knows where the configuration lives (its [`Store`]), the certificate root and
//! the command handlers registered against the schema's command nodes. A [`Context`] says who is
//! asking (user, client address, role) and through which front end. [`Engine::execute`] turns a
//! [`Request`] into an [`Answer`] or a [`ShellError`]; the renderers print either. Front ends (the
//! shell today; HTTPS/WebSocket next) build a context per caller and call the engine.
//!
//! This room knows no terminal, no output format and no front end: session state (output mode,
//! echo, feedback registrations, idle timeout) stays in the front end, which answers those
//! requests itself.

// Input from a user, a file or a peer is never unwrapped here: it gets an error value.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod changes;
pub mod help;
pub mod registry;
pub mod reply;
pub mod structured;
pub mod view;

mod exec;

use std::path::{Path, PathBuf};

use crate::error::{Area, Code, ShellError};
use crate::parse::Action;
use crate::store::{Change, Config, Store, StoreError, Who};

pub use registry::{Call, Entry, Handler, Registry};
pub use reply::{Answer, CommandResult, DocKind, Item, ResultStatus};

/// What the caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads and writes configuration and certificates.
    Admin,
    /// Reads only; every write is refused (and the attempt audited).
    ReadOnly,
}

/// The front end a request came through, recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    /// `xsh` over SSH, a pipe or `-c`.
    Shell,
    /// The HTTPS pages.
    Web,
    /// `getxml`/`putxml` over HTTPS.
    Api,
    /// jsxapi's WebSocket (JSON-RPC 2.0).
    Ws,
}

impl FrontEnd {
    pub fn name(self) -> &'static str {
        match self {
            FrontEnd::Shell => "shell",
            FrontEnd::Web => "web",
            FrontEnd::Api => "api",
            FrontEnd::Ws => "ws",
        }
    }
}

/// Who is asking, from where, with what role, through which front end.
#[derive(Debug, Clone)]
pub struct Context {
    /// User, client address (`from`) and session id, as the audit log records them.
    pub who: Who,
    pub role: Role,
    pub front: FrontEnd,
}

impl Context {
    /// A context for `who`. Front ends other than the shell name themselves in the audit
    /// record's session (`ws:17`); the shell's session stays its process id, as it always was.
    pub fn new(mut who: Who, role: Role, front: FrontEnd) -> Context {
        if front != FrontEnd::Shell {
            who.session = format!("{}:{}", front.name(), who.session);
        }
        Context { who, role, front }
    }

    pub fn read_only(&self) -> bool {
        self.role == Role::ReadOnly
    }
}

/// A parsed request and its multi-line body (PEM text pasted after a command line).
#[derive(Debug, Clone)]
pub struct Request {
    pub action: Action,
    pub body: Option<String>,
}

/// The configuration store, the certificate root and the command handlers of one ROOT.
/// Cheap to clone; a clone shares the store's cache.
#[derive(Debug, Clone)]
pub struct Engine {
    root: PathBuf,
    store: Store,
    handlers: &'static Registry,
}

impl Engine {
    /// The engine of `root` (its configuration under `ROOT/config/`, certificates under
    /// `ROOT/certs/`), answering commands with `handlers`.
    pub fn open(root: &Path, handlers: &'static Registry) -> Result<Engine, ShellError> {
        let store =
            Store::open(root).map_err(|e| ShellError::new(Code::Store, 0, e.to_string()))?;
        Ok(Engine {
            root: root.to_path_buf(),
            store,
            handlers,
        })
    }

    /// The certificate (and status) root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the configuration lives.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn handlers(&self) -> &'static Registry {
        self.handlers
    }

    /// Executes `req`; a write runs (and makes durable) its own transaction.
    pub fn execute(&self, ctx: &Context, req: Request) -> Result<Answer, ShellError> {
        self.execute_in(ctx, req, None)
    }

    /// Executes `req`; with `tx` (from [`Engine::transact`]) reads and writes use that
    /// transaction's configuration, and a write holds only once the transaction is durable.
    pub fn execute_in(
        &self,
        ctx: &Context,
        req: Request,
        tx: Option<&mut Config>,
    ) -> Result<Answer, ShellError> {
        match req.action {
            Action::Empty => Ok(Answer::Nothing),
            Action::ConfigGet(addr) => exec::config_get(self, &addr, tx),
            Action::ConfigSet { key, value, col } => {
                exec::config_set(self, ctx, key, value, col, tx)
            }
            Action::StatusGet(addr) => exec::status_get(self, &addr, tx),
            Action::Help {
                which,
                addr,
                all,
                prefix,
            } => Ok(Answer::Help(help::lines(
                which,
                &addr,
                all,
                prefix.as_deref(),
            ))),
            Action::History(n) => exec::history(self, n),
            Action::GetXml(path) => exec::get_xml(self, &path, tx),
            Action::Command { node, params } => {
                exec::command(self, ctx, node, &params, req.body, tx).map(Answer::Result)
            }
            Action::Echo(_) | Action::Bye | Action::Preferences(_) | Action::Feedback(_) => {
                Err(ShellError::new(
                    Code::Unexpected,
                    0,
                    "this request changes a terminal session, and this front end has none",
                )
                .area(Area::Line))
            }
        }
    }

    /// Runs `f` in one locked transaction of the store, on behalf of `ctx`.
    pub fn transact<T>(
        &self,
        ctx: &Context,
        f: impl FnOnce(&mut Config) -> T,
    ) -> Result<(T, Vec<Change>, u64), StoreError> {
        self.store.transact(&ctx.who, f)
    }

    /// Whether `action` changes the configuration: a set, or a command registered as writing
    /// it. Inside a transaction such a request succeeds only once the transaction is durable.
    pub fn writes_config(&self, action: &Action) -> bool {
        match action {
            Action::ConfigSet { .. } => true,
            Action::Command { node, .. } => {
                self.handlers.get(*node).is_some_and(|e| e.writes_config)
            }
            _ => false,
        }
    }
}
