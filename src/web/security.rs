//! What every response and every request of the plane passes through: the security headers,
//! the refusal of a cross-site state-changing request, and the request body limit with an error
//! that says what was expected.
//!
//! Per-session CSRF tokens and the API's `X-CSRF-Header` are checked by the extractors in
//! [`super::auth`]; this layer holds what needs no user.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::WebState;

/// The largest request body any route accepts (a certificate upload, a `putxml` document).
pub const MAX_BODY: usize = 1024 * 1024;

pub const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'";
pub const HSTS: &str = "max-age=31536000";

/// `routes` behind the body limit, the cross-site refusal and the security headers.
pub fn layers(routes: Router<WebState>, state: WebState) -> Router<WebState> {
    routes
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state, guard))
        .layer(middleware::from_fn(headers))
}

/// Adds the security headers to every response (a handler's own value is kept).
async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE && is_plain_text(res.headers()) {
        res = too_large(None);
    }
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::STRICT_TRANSPORT_SECURITY, HSTS),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    res
}

fn is_plain_text(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"))
}

/// The 413 answer: what was sent (when known) and what is accepted.
pub fn too_large(sent: Option<u64>) -> Response {
    let sent = sent.map_or(String::new(), |n| format!(" ({n} bytes sent)"));
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "error: the request body is too large{sent}; at most {MAX_BODY} bytes are accepted\n"
        ),
    )
        .into_response()
}

/// Refuses, before any handler runs, a body announced as larger than [`MAX_BODY`] and (with
/// CSRF protection enabled) a state-changing request another site's page made.
async fn guard(State(st): State<WebState>, req: Request<Body>, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = announced.filter(|&n| n > MAX_BODY as u64) {
        return too_large(Some(n));
    }
    if !changes_state(req.method()) {
        return next.run(req).await;
    }
    // The body is read (bounded) before anything is decided: an HTTP/2 answer sent while the
    // client is still sending is reset with the stream, and some clients then lose it.
    let (parts, body) = req.into_parts();
    let bytes = match read_bounded(body).await {
        Ok(b) => b,
        Err(sent) => return too_large(sent),
    };
    if st.csrf_enabled() {
        if let Err(why) = same_site(&parts.headers, &parts.uri) {
            return forbidden(&why);
        }
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    next.run(req).await
}

/// Bytes an over-size body of unknown length is still read (and dropped) for before the 413 goes
/// out: a client that is still sending when the server answers and closes loses the answer (it
/// sees a reset), so the refusal waits for the end of a moderately large upload, never longer
/// than [`DRAIN_TIME`].
const DRAIN_MAX: usize = 8 * MAX_BODY;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The body, at most [`MAX_BODY`] bytes; past that `Err` with the size read, when all of it was.
async fn read_bounded(body: Body) -> Result<axum::body::Bytes, Option<u64>> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut total = 0usize;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let Ok(next) = next else { return Err(None) };
        match next {
            None => break,
            Some(Err(_)) => return Err(None),
            Some(Ok(chunk)) => {
                total = total.saturating_add(chunk.len());
                if total <= MAX_BODY {
                    buf.extend_from_slice(&chunk);
                } else if total > DRAIN_MAX {
                    return Err(None);
                }
            }
        }
    }
    if total > MAX_BODY {
        return Err(Some(total as u64));
    }
    Ok(buf.into())
}

/// Every method but the safe ones may change something.
pub fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A 403 with a plain-text reason.
pub fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, format!("error: {why}\n")).into_response()
}

/// `Ok` unless the browser says the request came from another site: `Sec-Fetch-Site:
/// cross-site`, or an `Origin` whose host differs from the one the request was sent to. A
/// client that sends neither header (curl, jsxapi) is not a browser form and passes here; the
/// session token or `X-CSRF-Header` still applies.
pub fn same_site(h: &HeaderMap, uri: &axum::http::Uri) -> Result<(), String> {
    if h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err("a cross-site request may not change anything here (Sec-Fetch-Site: cross-site); use this site's own pages".into());
    }
    let Some(origin) = h.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    if !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(format!(
        "a cross-site request may not change anything here (Origin {origin:?}, expected https://{host}); use this site's own pages"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_site_checks_origin_against_host() {
        let uri: axum::http::Uri = "/putxml".parse().unwrap();
        assert!(same_site(&hm(&[("host", "127.0.0.1:8443")]), &uri).is_ok());
        assert!(same_site(
            &hm(&[
                ("host", "127.0.0.1:8443"),
                ("origin", "https://127.0.0.1:8443")
            ]),
            &uri
        )
        .is_ok());
        assert!(same_site(
            &hm(&[
                ("host", "127.0.0.1:8443"),
                ("origin", "https://evil.example")
            ]),
            &uri
        )
        .is_err());
        assert!(same_site(&hm(&[("host", "a"), ("origin", "null")]), &uri).is_err());
        assert!(same_site(&hm(&[("sec-fetch-site", "cross-site")]), &uri).is_err());
        assert!(same_site(&hm(&[("sec-fetch-site", "same-origin")]), &uri).is_ok());
    }
}
