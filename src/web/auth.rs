//! Who is asking over HTTPS: web sessions (a random id in a `SessionId` cookie, an idle
//! timeout, a per-session CSRF token), the [`WebUser`] extractor of the pages, the [`ApiUser`]
//! extractor of `getxml`/`putxml` (HTTP Basic), [`check_password`] shared by every front end of
//! the plane, and the `POST /login` / `POST /logout` handlers.
//!
//! CSRF, with `Security CSRFProtection Status: Enabled` (the default): a page's state-changing
//! request carries its session's token (form field `csrf`, checked by [`WebUser::check_csrf`]);
//! an API client's state-changing request carries a non-empty `X-CSRF-Header` (a cross-site
//! form cannot set a custom header, and a cross-site script cannot without a CORS preflight this
//! server never grants). Both also pass the cross-site `Origin` check of [`super::security`].
//!
//! Passwords are checked by [`crate::accounts`] (argon2id, throttling and lockout) on a blocking
//! thread, unless the accounts answer without hashing (a login remembered a moment ago, a
//! lockout); this room never sees a hash and never logs a password.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use base64::Engine as _;
use serde::Deserialize;

use super::security::{changes_state, forbidden};
use super::WebState;
use crate::accounts::{self, Access, Account, LoginError};
use crate::engine::{Context, FrontEnd, Role};
use crate::store::Who;

/// The session cookie's name.
pub const COOKIE: &str = "SessionId";
/// The header an API client's state-changing request must carry (any non-empty value).
pub const CSRF_HEADER: &str = "X-CSRF-Header";
/// Sessions kept at once; past it the least recently used one is dropped.
const MAX_SESSIONS: usize = 512;

/// How long a web session lives without a request (`xConfiguration Administration TimeOut`;
/// 0 there is never).
pub fn idle_timeout(cfg: &crate::store::Config) -> Duration {
    accounts::session_idle_timeout(cfg).unwrap_or(Duration::MAX)
}

#[derive(Debug, Clone)]
struct Session {
    name: String,
    role: Role,
    csrf: String,
    /// A number for the audit log's session column (never the cookie's secret id).
    serial: u64,
    last: Instant,
}

/// The live web sessions. Clones share them.
#[derive(Clone, Default)]
pub struct Sessions {
    map: Arc<Mutex<HashMap<String, Session>>>,
    serial: Arc<AtomicU64>,
}

/// 32 random bytes, base64url: a session id or a CSRF token.
fn random_token() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// Equal strings, compared without an early exit (tokens are secrets).
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// A number for one API request or WebSocket session in the audit log (`api:17`).
    pub fn next_serial(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A new session for `name`: its secret id (the cookie) and its CSRF token.
    fn create(&self, name: &str, role: Role) -> Result<(String, String), getrandom::Error> {
        let (id, csrf) = (random_token()?, random_token()?);
        let s = Session {
            name: name.to_string(),
            role,
            csrf: csrf.clone(),
            serial: self.next_serial(),
            last: Instant::now(),
        };
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_SESSIONS {
            let oldest = m.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                m.remove(&k);
            }
        }
        m.insert(id.clone(), s);
        Ok((id, csrf))
    }

    /// The session of `id` if it was used within `idle`; marks it used. An expired one is
    /// dropped.
    fn touch(&self, id: &str, idle: Duration) -> Option<Session> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let s = m.get_mut(id)?;
        if now.duration_since(s.last) >= idle {
            m.remove(id);
            return None;
        }
        s.last = now;
        Some(s.clone())
    }

    fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Ends every session of `name` (its account was deleted or its password changed).
    pub fn end_all_of(&self, name: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.name != name);
    }

    /// How many sessions are live (expired ones included until next used).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The client address the accept loop recorded (`0.0.0.0:0` when served without one, as in
/// an in-process test).
pub fn peer_of(parts: &Parts) -> SocketAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), |c| c.0)
}

fn cookie_value<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn role_of(access: Access) -> Option<Role> {
    match access {
        Access::ReadWrite => Some(Role::Admin),
        Access::ReadOnly => Some(Role::ReadOnly),
        Access::Disabled => None,
    }
}

/// A context for `name` through `front` from `from`, numbered `serial` in the audit log.
pub fn context(name: &str, role: Role, from: SocketAddr, front: FrontEnd, serial: u64) -> Context {
    let who = Who {
        user: name.to_string(),
        from: from.ip().to_string(),
        session: serial.to_string(),
    };
    Context::new(who, role, front)
}

/// Checks `name`/`pw` (argon2id on a blocking thread; throttling and lockout before hashing)
/// and whether the account may use `front`: the account and a context for this request.
/// A disabled account, or one not allowed on this front end, is [`LoginError::Disabled`].
pub async fn check_password(
    st: &WebState,
    name: &str,
    pw: &str,
    from: SocketAddr,
    front: FrontEnd,
) -> Result<(Account, Context), LoginError> {
    let ip = from.ip().to_string();
    // A login remembered a moment ago (an API client sending Basic with every request) and a
    // locked one are answered here, on the request's own task; only argon2id takes a thread.
    let account = match st.accounts.verify_remembered(name, pw, &ip) {
        Some(r) => r?,
        None => {
            let lockout = match st.engine.store().globals() {
                Ok(cfg) => accounts::lockout_from(&cfg),
                Err(_) => accounts::lockout_from(&crate::store::Config::default()),
            };
            let (acc, name2, pw) = (st.accounts.clone(), name.to_string(), pw.to_string());
            tokio::task::spawn_blocking(move || acc.verify(&name2, &pw, &ip, &lockout))
                .await
                .map_err(|e| {
                    LoginError::Unavailable(accounts::AccountError::Hash(format!(
                        "the password check stopped: {e}"
                    )))
                })??
        }
    };
    let allowed = match front {
        FrontEnd::Web => account.web,
        FrontEnd::Api | FrontEnd::Ws => account.api,
        FrontEnd::Shell => false,
    };
    let role = role_of(account.access)
        .filter(|_| allowed)
        .ok_or(LoginError::Disabled)?;
    let ctx = context(&account.name, role, from, front, st.sessions.next_serial());
    Ok((account, ctx))
}

/// The words a refused login is answered with (one message for an unknown user and a wrong
/// password), and its status.
pub fn login_refusal(e: &LoginError) -> (StatusCode, String) {
    match e {
        LoginError::Wrong => (
            StatusCode::UNAUTHORIZED,
            "wrong user name or password".into(),
        ),
        LoginError::LockedOut { seconds_left } => (
            StatusCode::FORBIDDEN,
            format!("too many failed logins: the account is locked for another {seconds_left} s"),
        ),
        LoginError::Disabled => (
            StatusCode::FORBIDDEN,
            "this account is disabled or may not use this interface".into(),
        ),
        LoginError::Unavailable(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("accounts cannot be checked: {e}"),
        ),
    }
}

/// A logged-in web user (session cookie). Pages that need one take it as an argument: without
/// a live session a `GET` is redirected to `/login`, anything else gets a 401.
#[derive(Debug, Clone)]
pub struct WebUser {
    pub name: String,
    pub role: Role,
    /// The session's CSRF token: every form's hidden `csrf` field.
    pub csrf: String,
    pub ctx: Context,
    csrf_on: bool,
}

impl WebUser {
    /// `Ok` when CSRF protection is disabled, or `token` (the form's `csrf` field, else an
    /// `X-CSRF-Header` carrying the token, for a page's own script) is this session's token.
    /// (A cross-site request never gets this far: [`super::security`] refused it.) The refusal
    /// is a 403 saying what was expected.
    // A response is what a handler returns on refusal anyway (`?` in a handler); boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    pub fn check_csrf(&self, token: Option<&str>, headers: &HeaderMap) -> Result<(), Response> {
        if !self.csrf_on {
            return Ok(());
        }
        let token = token.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
        match token {
            Some(t) if same_secret(t, &self.csrf) => Ok(()),
            Some(_) => Err(forbidden("the form's CSRF token does not match this session (the page is stale, or came from another site); reload the page and try again")),
            None => Err(forbidden("the form carries no CSRF token (field `csrf`); reload the page and try again")),
        }
    }

    pub fn read_only(&self) -> bool {
        self.role == Role::ReadOnly
    }
}

impl FromRequestParts<WebState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &WebState) -> Result<WebUser, Response> {
        let cfg = st.engine.store().globals().unwrap_or_default();
        let idle = idle_timeout(&cfg);
        let session =
            cookie_value(&parts.headers, COOKIE).and_then(|id| st.sessions.touch(id, idle));
        let Some(s) = session else {
            return Err(if changes_state(&parts.method) {
                (
                    StatusCode::UNAUTHORIZED,
                    "error: not logged in, or the session expired; log in at /login\n",
                )
                    .into_response()
            } else {
                Redirect::to("/login").into_response()
            });
        };
        let ctx = context(&s.name, s.role, peer_of(parts), FrontEnd::Web, s.serial);
        Ok(WebUser {
            name: s.name,
            role: s.role,
            csrf: s.csrf,
            ctx,
            csrf_on: st.csrf_enabled(),
        })
    }
}

/// An API caller authenticated by HTTP Basic (front end `api`). A state-changing request
/// without `X-CSRF-Header` is refused (CSRF protection enabled) before the password is checked.
#[derive(Debug, Clone)]
pub struct ApiUser {
    pub ctx: Context,
}

fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn unauthorized(why: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, format!("error: {why}\n")).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"xsh\", charset=\"UTF-8\""),
    );
    r
}

impl FromRequestParts<WebState> for ApiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &WebState) -> Result<ApiUser, Response> {
        if changes_state(&parts.method) && st.csrf_enabled() {
            let present = parts
                .headers
                .get(CSRF_HEADER)
                .is_some_and(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace));
            if !present {
                return Err(forbidden(
                    "a state-changing API request needs the header X-CSRF-Header (any non-empty value) while Security CSRFProtection Status is Enabled",
                ));
            }
        }
        let Some((user, pw)) = basic_credentials(&parts.headers) else {
            return Err(unauthorized(
                "this API needs HTTP Basic credentials (Authorization: Basic base64(user:password))",
            ));
        };
        match check_password(st, &user, &pw, peer_of(parts), FrontEnd::Api).await {
            Ok((_, ctx)) => Ok(ApiUser { ctx }),
            Err(e) => {
                let (status, why) = login_refusal(&e);
                if status == StatusCode::UNAUTHORIZED {
                    Err(unauthorized(&why))
                } else {
                    Err((status, format!("error: {why}\n")).into_response())
                }
            }
        }
    }
}

/// `POST /login` and `POST /logout`.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

fn session_cookie(id: &str) -> HeaderValue {
    let v = format!("{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("SessionId=; Max-Age=0"))
}

async fn login(
    State(st): State<WebState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    match check_password(&st, &f.username, &f.password, from, FrontEnd::Web).await {
        Ok((account, ctx)) => match st.sessions.create(&account.name, ctx.role) {
            Ok((id, _)) => {
                let mut r = Redirect::to("/").into_response();
                r.headers_mut()
                    .insert(header::SET_COOKIE, session_cookie(&id));
                r
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("error: no random session id: {e}\n"),
            )
                .into_response(),
        },
        Err(e) => {
            let (status, why) = login_refusal(&e);
            (status, super::pages::login_page(Some(&why))).into_response()
        }
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

async fn logout(
    State(st): State<WebState>,
    user: WebUser,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let token = form.ok().and_then(|Form(f)| f.csrf);
    if let Err(r) = user.check_csrf(token.as_deref(), &headers) {
        return r;
    }
    if let Some(id) = cookie_value(&headers, COOKIE) {
        st.sessions.remove(id);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "SessionId=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_tokens_differ() {
        let s = Sessions::default();
        let (id, csrf) = s.create("admin", Role::Admin).unwrap();
        assert_ne!(id, csrf);
        assert!(id.len() >= 43);
        assert_eq!(s.touch(&id, Duration::from_secs(60)).unwrap().csrf, csrf);
        assert!(s.touch(&id, Duration::ZERO).is_none());
        assert!(
            s.touch(&id, Duration::from_secs(60)).is_none(),
            "an expired session is gone"
        );
        assert!(s.touch("nope", Duration::from_secs(60)).is_none());
    }

    #[test]
    fn basic_credentials_split_on_the_first_colon() {
        let mut h = HeaderMap::new();
        let b = base64::engine::general_purpose::STANDARD.encode("admin:pa:ss");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {b}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("admin".into(), "pa:ss".into()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h), None);
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; SessionId=xyz; c=d"),
        );
        assert_eq!(cookie_value(&h, COOKIE), Some("xyz"));
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
