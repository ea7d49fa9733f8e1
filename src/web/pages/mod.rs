//! The server-rendered pages (maud): log in, Maintenance > Security (server and client
//! certificates, trusted CAs, CRLs, EKU readiness), Status (listeners, zones, the handshake
//! log) and Configuration (the EKU checking mode and a page per schema node).
//!
//! Every page works without JavaScript; the one stylesheet is served from the binary (the CSP
//! is `default-src 'self'`, so no inline style or script). Every action is the shell's request
//! run through the engine with the logged-in user's context, so roles, validation and audit
//! are the shell's; every state-changing form carries the session's CSRF token. Text from
//! peers and files is only ever written through maud's escaping. This room knows no TLS, no
//! cookies and no passwords: those are `web::auth`'s.

mod certs;
mod config;
mod layout;
mod req;
mod run;
mod status;

use std::collections::HashMap;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};

use self::certs::{done, Store};
use self::layout::{Outcome, View};
use super::auth::WebUser;
use super::WebState;
use crate::engine::Role;
use crate::error::{Area, Code, ShellError};

const CSS: &str = include_str!("xsh.css");

/// The pages' routes (GET /login is here; POST /login and /logout are `web::auth`'s).
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/login", get(login_get))
        .route("/", get(|| async { Redirect::to("/status") }))
        .route(layout::CSS_PATH, get(css))
        .route("/status", get(status_page))
        .route("/status/handshakes", get(handshakes_page))
        .route("/maintenance/security/server", get(server_page))
        .route("/maintenance/security/server/upload", post(server_upload))
        .route("/maintenance/security/server/reset", post(server_reset))
        .route("/maintenance/security/server/csr/{op}", post(server_csr))
        .route("/maintenance/security/client", get(client_page))
        .route("/maintenance/security/client/upload", post(client_upload))
        .route("/maintenance/security/client/csr/{op}", post(client_csr))
        .route("/maintenance/security/ca", get(ca_page))
        .route("/maintenance/security/ca/add", post(ca_add))
        .route("/maintenance/security/ca/remove", post(ca_remove))
        .route("/maintenance/security/crl", get(crl_page))
        .route("/maintenance/security/crl/add", post(crl_add))
        .route("/maintenance/security/readiness", get(readiness_page))
        .route("/configuration", get(config_index))
        .route("/configuration/eku", get(eku_get).post(eku_post))
        .route("/configuration/{*path}", get(config_get).post(config_post))
}

/// The login page; `error` is the refusal of the last attempt (one message for an unknown
/// user and a wrong password).
pub fn login_page(error: Option<&str>) -> Markup {
    layout::bare(
        "Log in",
        html! {
            @if let Some(e) = error {
                div class="banner error" role="alert" { p class="banner-title" { (e) } }
            }
            form method="post" action="/login" class="stack" {
                div class="field" {
                    label for="username" { "Username" }
                    input id="username" type="text" name="username" autocomplete="username" required;
                }
                div class="field" {
                    label for="password" { "Password" }
                    input id="password" type="password" name="password" autocomplete="current-password" required;
                }
                div { button type="submit" { "Log in" } }
            }
        },
    )
}

async fn login_get() -> Markup {
    login_page(None)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

fn view<'a>(u: &'a WebUser, here: &'a str) -> View<'a> {
    View {
        user: &u.name,
        read_only: u.role == Role::ReadOnly,
        csrf: &u.csrf,
        here,
    }
}

/// A page after an action: 200 when it succeeded, else the status its error calls for.
fn answered(out: &Option<Outcome>, page: Markup) -> Response {
    let code = match out {
        Some(Outcome::Failed(e)) if e.code == Code::PermissionDenied => StatusCode::FORBIDDEN,
        Some(Outcome::Failed(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    (code, page).into_response()
}

async fn status_page(State(st): State<WebState>, u: WebUser) -> Markup {
    status::overview(&st.engine, &u.ctx, &view(&u, "/status")).await
}

#[derive(serde::Deserialize)]
struct LogFilter {
    #[serde(default)]
    peer: String,
    #[serde(default)]
    decision: String,
}

async fn handshakes_page(
    State(st): State<WebState>,
    u: WebUser,
    Query(f): Query<LogFilter>,
) -> Markup {
    let root = st.root.clone();
    let v = view(&u, "/status/handshakes");
    status::handshakes(&root, &v, f.peer.trim(), f.decision.trim())
}

#[derive(serde::Deserialize)]
struct ViewQuery {
    #[serde(default)]
    view: String,
}

async fn store_page(
    st: &WebState,
    u: &WebUser,
    store: Store,
    pem: bool,
    out: Option<Outcome>,
) -> Response {
    let page_out = match &out {
        Some(Outcome::Failed(e)) => Some(Outcome::Failed(e.clone())),
        Some(Outcome::Done(w, f)) => Some(Outcome::Done(w.clone(), f.clone())),
        None => None,
    };
    let page = certs::store_page(
        &st.engine,
        &u.ctx,
        &view(u, store.path()),
        store,
        pem,
        page_out,
    )
    .await;
    answered(&out, page)
}

async fn server_page(
    State(st): State<WebState>,
    u: WebUser,
    Query(q): Query<ViewQuery>,
) -> Response {
    store_page(
        &st,
        &u,
        Store::Server,
        q.view.eq_ignore_ascii_case("pem"),
        None,
    )
    .await
}

async fn client_page(
    State(st): State<WebState>,
    u: WebUser,
    Query(q): Query<ViewQuery>,
) -> Response {
    store_page(
        &st,
        &u,
        Store::Client,
        q.view.eq_ignore_ascii_case("pem"),
        None,
    )
    .await
}

/// The fields of a multipart form; a file that is not text is an error naming the field.
struct Parts(HashMap<String, Vec<u8>>);

impl Parts {
    async fn read(mut mp: Multipart) -> Result<Parts, ShellError> {
        let mut out = HashMap::new();
        loop {
            match mp.next_field().await {
                Ok(Some(f)) => {
                    let name = f.name().unwrap_or_default().to_string();
                    let bytes = f.bytes().await.map_err(upload_error)?;
                    out.insert(name, bytes.to_vec());
                }
                Ok(None) => return Ok(Parts(out)),
                Err(e) => return Err(upload_error(e)),
            }
        }
    }

    fn text(&self, name: &str) -> Result<String, ShellError> {
        match self.0.get(name) {
            None => Ok(String::new()),
            Some(b) => String::from_utf8(b.clone()).map_err(|_| {
                ShellError::new(
                    Code::CertNotPem,
                    0,
                    format!("the file given as {name} is not PEM text (not UTF-8)"),
                )
                .area(Area::Command)
            }),
        }
    }

    fn csrf(&self) -> Option<String> {
        self.0
            .get("csrf")
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

fn upload_error(e: axum::extract::multipart::MultipartError) -> ShellError {
    ShellError::new(
        Code::CertTooLarge,
        0,
        format!("the upload could not be read: {}", e.body_text()),
    )
    .area(Area::Command)
}

/// A multipart form, CSRF-checked: its parts, or the response that ends the request.
async fn checked_parts(
    u: &WebUser,
    headers: &HeaderMap,
    mp: Multipart,
) -> Result<Result<Parts, ShellError>, Response> {
    let parts = match Parts::read(mp).await {
        Ok(p) => p,
        // Without the parts there is no token to check: refuse as a missing token would be.
        Err(e) => {
            u.check_csrf(None, headers)?;
            return Ok(Err(e));
        }
    };
    u.check_csrf(parts.csrf().as_deref(), headers)?;
    Ok(Ok(parts))
}

/// The PEM text of an upload: the certificate file, then the key file, in one body.
fn upload_body(p: &Parts) -> Result<String, ShellError> {
    let mut body = p.text("certificate")?;
    let key = p.text("key")?;
    if !key.trim().is_empty() {
        if !body.ends_with('\n') {
            body.push('\n');
        }
        body.push_str(&key);
    }
    Ok(body)
}

async fn server_upload(
    State(st): State<WebState>,
    u: WebUser,
    headers: HeaderMap,
    mp: Multipart,
) -> Response {
    let parts = match checked_parts(&u, &headers, mp).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let out = match parts.and_then(|p| {
        let also = if p.0.contains_key("also_as_client") {
            "True"
        } else {
            "False"
        };
        upload_body(&p).map(|b| (b, also))
    }) {
        Ok((body, also)) => {
            let r = run::command(
                &st.engine,
                &u.ctx,
                "Security Certificates Server Upload",
                &[("AlsoAsClient", also.to_string())],
                Some(body),
            )
            .await;
            done("Server certificate uploaded", r)
        }
        Err(e) => Outcome::Failed(e),
    };
    store_page(&st, &u, Store::Server, false, Some(out)).await
}

async fn client_upload(
    State(st): State<WebState>,
    u: WebUser,
    headers: HeaderMap,
    mp: Multipart,
) -> Response {
    let parts = match checked_parts(&u, &headers, mp).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let out = match parts.and_then(|p| upload_body(&p)) {
        Ok(body) => {
            let r = run::command(
                &st.engine,
                &u.ctx,
                "Security Certificates Client Upload",
                &[],
                Some(body),
            )
            .await;
            done("Client certificate uploaded", r)
        }
        Err(e) => Outcome::Failed(e),
    };
    store_page(&st, &u, Store::Client, false, Some(out)).await
}

type Fields = Form<Vec<(String, String)>>;

fn get_field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn server_reset(
    State(st): State<WebState>,
    u: WebUser,
    headers: HeaderMap,
    Form(f): Fields,
) -> Response {
    if let Err(r) = u.check_csrf(get_field(&f, "csrf"), &headers) {
        return r;
    }
    let r = run::command(
        &st.engine,
        &u.ctx,
        "Security Certificates Server Reset",
        &[],
        None,
    )
    .await;
    store_page(
        &st,
        &u,
        Store::Server,
        false,
        Some(done("Reset to the default server certificate", r)),
    )
    .await
}

async fn csr(
    st: &WebState,
    u: &WebUser,
    headers: &HeaderMap,
    store: Store,
    op: &str,
    f: &[(String, String)],
) -> Response {
    if let Err(r) = u.check_csrf(get_field(f, "csrf"), headers) {
        return r;
    }
    let s = ("Store", store.word().to_string());
    let out = match op {
        "generate" => {
            let mut params = vec![s];
            for k in [
                "CommonName",
                "SubjectAltName",
                "ExtendedKeyUsage",
                "KeyType",
            ] {
                params.push((k, get_field(f, k).unwrap_or_default().trim().to_string()));
            }
            let r = run::command(
                &st.engine,
                &u.ctx,
                "Security Certificates CSR Generate",
                &params,
                None,
            )
            .await;
            done("Certificate signing request generated", r)
        }
        "discard" => {
            let r = run::command(
                &st.engine,
                &u.ctx,
                "Security Certificates CSR Discard",
                &[s],
                None,
            )
            .await;
            done("Certificate signing request discarded", r)
        }
        other => Outcome::Failed(
            ShellError::new(Code::UnknownPath, 0, format!("no CSR action '{other}'"))
                .expected("generate or discard")
                .area(Area::Command),
        ),
    };
    store_page(st, u, store, false, Some(out)).await
}

async fn server_csr(
    State(st): State<WebState>,
    u: WebUser,
    Path(op): Path<String>,
    headers: HeaderMap,
    Form(f): Fields,
) -> Response {
    csr(&st, &u, &headers, Store::Server, &op, &f).await
}

async fn client_csr(
    State(st): State<WebState>,
    u: WebUser,
    Path(op): Path<String>,
    headers: HeaderMap,
    Form(f): Fields,
) -> Response {
    csr(&st, &u, &headers, Store::Client, &op, &f).await
}

async fn ca_page(State(st): State<WebState>, u: WebUser) -> Markup {
    certs::ca_page(
        &st.engine,
        &u.ctx,
        &view(&u, "/maintenance/security/ca"),
        None,
    )
    .await
}

async fn ca_respond(st: &WebState, u: &WebUser, out: Outcome) -> Response {
    let failed = matches!(out, Outcome::Failed(_));
    let code_of = |o: &Outcome| match o {
        Outcome::Failed(e) => Some(e.code),
        Outcome::Done(..) => None,
    };
    let code = code_of(&out);
    let page = certs::ca_page(
        &st.engine,
        &u.ctx,
        &view(u, "/maintenance/security/ca"),
        Some(out),
    )
    .await;
    status_response(failed, code, page)
}

fn status_response(failed: bool, code: Option<Code>, page: Markup) -> Response {
    let s = match (failed, code) {
        (true, Some(Code::PermissionDenied)) => StatusCode::FORBIDDEN,
        (true, _) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    (s, page).into_response()
}

async fn ca_add(
    State(st): State<WebState>,
    u: WebUser,
    headers: HeaderMap,
    mp: Multipart,
) -> Response {
    let parts = match checked_parts(&u, &headers, mp).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = parts.and_then(|p| {
        let mut b = p.text("file")?;
        let pasted = p.text("pem")?;
        if !pasted.trim().is_empty() {
            b.push('\n');
            b.push_str(&pasted);
        }
        Ok(b)
    });
    let out = match body {
        Ok(b) => done(
            "CA certificates added",
            run::command(
                &st.engine,
                &u.ctx,
                "Security Certificates CA Add",
                &[],
                Some(b),
            )
            .await,
        ),
        Err(e) => Outcome::Failed(e),
    };
    ca_respond(&st, &u, out).await
}

async fn ca_remove(
    State(st): State<WebState>,
    u: WebUser,
    headers: HeaderMap,
    Form(f): Fields,
) -> Response {
    if let Err(r) = u.check_csrf(get_field(&f, "csrf"), &headers) {
        return r;
    }
    let fp = get_field(&f, "fingerprint").unwrap_or_default().to_string();
    let r = run::command(
        &st.engine,
        &u.ctx,
        "Security Certificates CA Remove",
        &[("Fingerprint", fp)],
        None,
    )
    .await;
    ca_respond(&st, &u, done("CA certificate removed", r)).await
}

async fn crl_page(State(st): State<WebState>, u: WebUser) -> Markup {
    certs::crl_page(
        &st.engine,
        &u.ctx,
        &view(&u, "/maintenance/security/crl"),
        None,
    )
    .await
}

async fn crl_add(
    State(st): State<WebState>,
    u: WebUser,
    headers: HeaderMap,
    mp: Multipart,
) -> Response {
    let parts = match checked_parts(&u, &headers, mp).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let input = parts.and_then(|p| Ok((p.text("file")?, p.text("Target")?)));
    let out = match input {
        Ok((b, target)) => done(
            "CRL added",
            run::command(
                &st.engine,
                &u.ctx,
                "Security Certificates CRL Add",
                &[("Target", target)],
                Some(b),
            )
            .await,
        ),
        Err(e) => Outcome::Failed(e),
    };
    let (failed, code) = match &out {
        Outcome::Failed(e) => (true, Some(e.code)),
        Outcome::Done(..) => (false, None),
    };
    let page = certs::crl_page(
        &st.engine,
        &u.ctx,
        &view(&u, "/maintenance/security/crl"),
        Some(out),
    )
    .await;
    status_response(failed, code, page)
}

async fn readiness_page(State(st): State<WebState>, u: WebUser) -> Markup {
    certs::readiness_page(
        &st.engine,
        &u.ctx,
        &view(&u, "/maintenance/security/readiness"),
    )
    .await
}

fn snapshot(st: &WebState) -> std::sync::Arc<crate::store::Config> {
    st.engine.store().snapshot().unwrap_or_default()
}

async fn config_index(State(st): State<WebState>, u: WebUser) -> Markup {
    config::index(&view(&u, "/configuration"), &snapshot(&st))
}

fn eku_intro() -> Markup {
    html! {
        p {
            "Governs every inbound SIP TLS connection (the peer is the TLS client). "
            strong { "On" } ": the certificate the peer presents must list clientAuth. "
            strong { "Off" } ": clientAuth or serverAuth is accepted. The chain is verified against the trusted CA list in both modes; tunnels always require clientAuth."
        }
        p { "What this means for this node: " a href="/maintenance/security/readiness" { "EKU readiness report" } "." }
    }
}

fn eku_at() -> config::At {
    config::resolve(config::EKU_PATH).unwrap_or(config::At {
        node: None,
        inst: Vec::new(),
        list: false,
    })
}

async fn eku_get(State(st): State<WebState>, u: WebUser) -> Markup {
    let v = view(&u, "/configuration/eku");
    config::node_page(
        &v,
        &snapshot(&st),
        &eku_at(),
        "/configuration/eku",
        Some("EKU checking mode"),
        Some(eku_intro()),
        None,
    )
}

async fn eku_post(
    State(st): State<WebState>,
    u: WebUser,
    headers: HeaderMap,
    Form(f): Fields,
) -> Response {
    if let Err(r) = u.check_csrf(get_field(&f, "csrf"), &headers) {
        return r;
    }
    let at = eku_at();
    let out = save(&st, &u, &at, f).await;
    let v = view(&u, "/configuration/eku");
    let (failed, code) = failure(&out);
    let page = config::node_page(
        &v,
        &snapshot(&st),
        &at,
        "/configuration/eku",
        Some("EKU checking mode"),
        Some(eku_intro()),
        Some(out),
    );
    status_response(failed, code, page)
}

fn failure(o: &Outcome) -> (bool, Option<Code>) {
    match o {
        Outcome::Failed(e) => (true, Some(e.code)),
        Outcome::Done(..) => (false, None),
    }
}

/// Applies a configuration form: the changed leaves in one transaction.
async fn save(st: &WebState, u: &WebUser, at: &config::At, f: Vec<(String, String)>) -> Outcome {
    let cfg = snapshot(st);
    let reqs = match config::changes(&cfg, at, &f) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e),
    };
    let engine = st.engine.clone();
    let ctx = u.ctx.clone();
    let r = tokio::task::spawn_blocking(move || config::apply(&engine, &ctx, reqs))
        .await
        .unwrap_or_else(|e| {
            Err(ShellError::new(
                Code::Store,
                0,
                format!("the change did not finish: {e}"),
            ))
        });
    match r {
        Ok(f) if f.is_empty() => Outcome::Done("Nothing changed".into(), f),
        Ok(f) => Outcome::Done("Saved".into(), f),
        Err(e) => Outcome::Failed(e),
    }
}

#[derive(serde::Deserialize)]
struct InstanceQuery {
    n: Option<u32>,
}

async fn config_get(
    State(st): State<WebState>,
    u: WebUser,
    Path(path): Path<String>,
    Query(q): Query<InstanceQuery>,
) -> Response {
    let here = format!("/configuration/{path}");
    let v = view(&u, &here);
    match config::resolve(&path) {
        Ok(at) => {
            if let (true, Some(n)) = (at.list, q.n) {
                return Redirect::to(&format!("{}/{n}", here.trim_end_matches('/')))
                    .into_response();
            }
            config::node_page(&v, &snapshot(&st), &at, &here, None, None, None).into_response()
        }
        Err(e) => {
            let page = layout::page(&v, "Configuration", layout::error_banner(&e));
            (StatusCode::NOT_FOUND, page).into_response()
        }
    }
}

async fn config_post(
    State(st): State<WebState>,
    u: WebUser,
    Path(path): Path<String>,
    headers: HeaderMap,
    Form(f): Fields,
) -> Response {
    if let Err(r) = u.check_csrf(get_field(&f, "csrf"), &headers) {
        return r;
    }
    let here = format!("/configuration/{path}");
    let v = view(&u, &here);
    let at = match config::resolve(&path) {
        Ok(at) if !at.list => at,
        Ok(_) => {
            let e = ShellError::new(Code::MissingInstance, 0, "give the instance number")
                .area(Area::Configuration);
            return (
                StatusCode::NOT_FOUND,
                layout::page(&v, "Configuration", layout::error_banner(&e)),
            )
                .into_response();
        }
        Err(e) => {
            return (
                StatusCode::NOT_FOUND,
                layout::page(&v, "Configuration", layout::error_banner(&e)),
            )
                .into_response()
        }
    };
    let out = save(&st, &u, &at, f).await;
    let (failed, code) = failure(&out);
    let page = config::node_page(&v, &snapshot(&st), &at, &here, None, None, Some(out));
    status_response(failed, code, page)
}
