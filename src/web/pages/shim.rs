//! TEMPORARY: TEAM4.md's `WebState`/`WebUser` signatures until s4-web's `API:` commit is merged.

use std::path::PathBuf;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use crate::engine::{Context, Engine, Role};

#[derive(Clone)]
pub struct WebState {
    pub engine: Engine,
    pub root: PathBuf,
}

pub struct WebUser {
    pub name: String,
    pub role: Role,
    pub csrf: String,
    pub ctx: Context,
}

impl WebUser {
    #[allow(clippy::result_large_err)]
    pub fn check_csrf(&self, token: Option<&str>, _headers: &HeaderMap) -> Result<(), Response> {
        if token == Some(self.csrf.as_str()) {
            Ok(())
        } else {
            Err((axum::http::StatusCode::FORBIDDEN, "csrf").into_response())
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebUser {
    type Rejection = Response;
    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Err(Redirect::to("/login").into_response())
    }
}
