//! jsxapi's WebSocket at `/ws`: the `auth-…` sub-protocol, JSON-RPC 2.0, feedback notifications.

use axum::Router;

use super::WebState;

/// The WebSocket's routes (the ws helper fills them in).
pub fn routes() -> Router<WebState> {
    Router::new()
}
