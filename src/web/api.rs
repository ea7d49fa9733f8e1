//! `getxml`/`putxml` over HTTP Basic: documents in and out, one transaction per `putxml`.

use axum::Router;

use super::WebState;

/// `GET /getxml`, `POST /putxml`.
pub fn routes() -> Router<WebState> {
    Router::new()
}
