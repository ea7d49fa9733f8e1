//! The HTTPS plane: the router, sessions and CSRF, getxml/putxml, jsxapi's WebSocket and the
//! server-rendered pages. Every request goes through the same engine, schema, roles and audit as
//! the shell; this room holds only what HTTP needs (routes, cookies, headers, documents in and
//! out). The agent owns the TCP listener and hands each accepted connection the current
//! generation's TLS configuration ([`server::serve`]).
//!
//! It knows no terminal and opens no listener of its own choosing.

pub mod api;
pub mod auth;
pub mod hot;
pub mod pages;
pub mod security;
pub mod server;
pub mod ws;
pub mod xmldoc;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;

use crate::accounts::Accounts;
use crate::engine::Engine;

/// What every handler shares: the engine of the ROOT, the accounts, the web sessions, the
/// kept getxml documents. One reference count to clone (the router and the extractors clone
/// it for every request); the fields are reached through [`std::ops::Deref`].
#[derive(Clone)]
pub struct WebState(Arc<Shared>);

/// The parts of a [`WebState`].
pub struct Shared {
    pub engine: Engine,
    pub accounts: Accounts,
    pub sessions: auth::Sessions,
    /// getxml documents kept while their inputs stand still.
    pub docs: hot::DocCache,
    pub root: PathBuf,
}

impl std::ops::Deref for WebState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl WebState {
    /// The state of `root` served by `engine`, with no session yet.
    pub fn new(engine: Engine, accounts: Accounts) -> WebState {
        WebState(Arc::new(Shared {
            root: engine.root().to_path_buf(),
            docs: hot::DocCache::new(engine.store().config_path()),
            engine,
            accounts,
            sessions: auth::Sessions::default(),
        }))
    }

    /// Whether `Security CSRFProtection Status` is `Enabled` (the default; also when the
    /// configuration cannot be read, so a broken store never turns protection off).
    pub fn csrf_enabled(&self) -> bool {
        use crate::schema::values::EnabledDisabled;
        self.engine.store().globals().map_or(true, |cfg| {
            cfg.security().csrf_protection().status() == EnabledDisabled::Enabled
        })
    }
}

/// Every route of the plane (the API's, the WebSocket's, the pages' and the login/logout
/// handlers), behind the security headers, the cross-site refusal and the body limit.
pub fn router(state: WebState) -> Router {
    let routes: Router<WebState> = Router::new()
        .merge(api::routes())
        .merge(ws::routes())
        .merge(pages::routes())
        .merge(auth::routes());
    security::layers(routes, state.clone()).with_state(state)
}
