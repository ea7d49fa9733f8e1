//! `getxml`/`putxml` over HTTP Basic: documents in and out, one transaction per `putxml`.
//!
//! `GET /getxml?location=/Status/SystemUnit` answers exactly the document the shell's XML mode
//! gives for `xGetXML` (the engine's `GetXml` request, rendered by [`crate::render::xml`]);
//! `/status.xml` and `/configuration.xml` are the whole trees. `POST /putxml` reads its body with
//! [`super::xmldoc`] and applies every leaf in one store transaction: any error and nothing is
//! stored. The documents' shapes are in `docs/web-api.md`.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::auth::ApiUser;
use super::hot::{self, DocCache};
use super::xmldoc::{self, Doc};
use super::WebState;
use crate::engine::structured::{self, Step};
use crate::engine::{Answer, Context, Engine, Request};
use crate::error::{Area, Code, ShellError};
use crate::parse::Action;
use crate::render::xml;

/// `GET /getxml`, `GET /status.xml`, `GET /configuration.xml`, `POST /putxml`.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/getxml", get(getxml))
        .route("/status.xml", get(status_xml))
        .route("/configuration.xml", get(configuration_xml))
        .route("/putxml", post(putxml))
}

pub const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn xml_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// An error document: root `root` with `status="Error"` and the shell's error fields.
pub fn error_doc(root: &str, e: &ShellError) -> String {
    let mut s = format!("{XML_DECL}<{root} status=\"Error\">\n");
    let mut field = |name: &str, v: &str| {
        s.push_str(&format!("  <{name}>{}</{name}>\n", xml::esc(v)));
    };
    field("Reason", e.code.reason());
    field("XPath", &e.xpath());
    field("Code", e.code.as_str());
    field("Detail", &e.message);
    if let Some(x) = &e.expected {
        field("Expected", x);
    }
    s.push_str(&format!("</{root}>\n"));
    s
}

/// The HTTP status an engine error is answered with.
fn status_of(e: &ShellError) -> StatusCode {
    match e.code {
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Store => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

#[derive(Deserialize)]
struct Location {
    location: Option<String>,
}

/// The steps below the root of `location` (`/Configuration/Zones/Zone[2]/Name`, with or
/// without the leading `/`, `Zone/2` also) and whether it is the configuration tree.
fn location_steps(location: &str) -> Result<(bool, Vec<Step>), ShellError> {
    let mut segs = location.split('/').filter(|s| !s.is_empty());
    let root = segs.next().unwrap_or("");
    let is_config = if root.eq_ignore_ascii_case("Configuration") {
        true
    } else if root.eq_ignore_ascii_case("Status") {
        false
    } else {
        return Err(ShellError::new(
            Code::UnknownPath,
            0,
            format!("location {location:?} is neither /Configuration nor /Status"),
        )
        .expected("location=/Configuration/... or location=/Status/...")
        .area(Area::Line));
    };
    let mut steps = Vec::new();
    for seg in segs {
        match seg.split_once('[') {
            Some((name, rest)) => {
                steps.push(Step::Word(name.to_string()));
                let n = rest.trim_end_matches(']').parse::<u32>().map_err(|_| {
                    ShellError::new(
                        Code::UnknownPath,
                        0,
                        format!("{seg:?} has no instance number in its brackets"),
                    )
                    .expected("Name[N]")
                    .area(Area::Line)
                })?;
                steps.push(Step::Index(n));
            }
            None => match seg.parse::<u32>() {
                Ok(n) => steps.push(Step::Index(n)),
                Err(_) => steps.push(Step::Word(seg.to_string())),
            },
        }
    }
    Ok((is_config, steps))
}

/// Which kept-document inputs the document of `location` is built from; `None`: it reads
/// what [`super::hot`] does not stamp, and is built for every request.
fn cache_kind(is_config: bool, steps: &[Step]) -> Option<hot::Kind> {
    match steps.first() {
        _ if is_config => Some(hot::Kind::Configuration),
        Some(Step::Word(w)) if w.eq_ignore_ascii_case("SystemUnit") => Some(hot::Kind::SystemUnit),
        _ => None,
    }
}

/// The `xGetXML` document of `location`, or the error document (HTTP 200 either way, as the
/// product answers a wrong XPath with a document, not a status). Kept in `cache` when its
/// inputs allow (see [`super::hot`]).
fn get_document(engine: &Engine, ctx: &Context, cache: &DocCache, location: &str) -> Response {
    let fault = |e: &ShellError| xml_response(StatusCode::OK, error_doc("Fault", e));
    let (is_config, steps) = match location_steps(location) {
        Ok(x) => x,
        Err(e) => return fault(&e),
    };
    // Resolved exactly as the shell resolves the path (codes E030 and the like); the document
    // itself is the shell's xGetXML.
    let checked = if is_config {
        structured::config_get(&steps)
    } else {
        structured::status_get(&steps)
    };
    if let Err(e) = checked {
        return fault(&e);
    }
    let mut failed = None;
    let mut render = || match render_document(engine, ctx, location) {
        Ok(text) => Some(Bytes::from(text)),
        Err(e) => {
            failed = Some(e);
            None
        }
    };
    let body = match cache_kind(is_config, &steps) {
        Some(kind) => cache.build(location, kind, render),
        None => render(),
    };
    match (body, failed) {
        (Some(b), _) => xml_response(StatusCode::OK, b),
        (None, Some(e)) => fault(&e),
        (None, None) => fault(&ShellError::new(
            Code::Unexpected,
            0,
            "the getxml document was not built",
        )),
    }
}

/// The engine's `GetXml` documents of `location`, rendered.
fn render_document(engine: &Engine, ctx: &Context, location: &str) -> Result<String, ShellError> {
    let path = format!("/{}", location.trim_start_matches('/'));
    let req = Request {
        action: Action::GetXml(path),
        body: None,
    };
    match engine.execute(ctx, req)? {
        Answer::Xml(docs) => Ok(docs
            .iter()
            .map(|(kind, items)| xml::document(*kind, items))
            .collect()),
        _ => Err(ShellError::new(
            Code::Unexpected,
            0,
            "the engine answered getxml with no document",
        )),
    }
}

async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error: the request stopped: {e}\n"),
        )
            .into_response()
    })
}

async fn getxml(
    State(st): State<WebState>,
    user: ApiUser,
    q: Result<Query<Location>, QueryRejection>,
) -> Response {
    let Some(location) = q.ok().and_then(|Query(l)| l.location) else {
        let e = ShellError::new(Code::MissingValue, 0, "getxml needs a location")
            .expected("GET /getxml?location=/Status/SystemUnit")
            .area(Area::Line);
        return xml_response(StatusCode::BAD_REQUEST, error_doc("Fault", &e));
    };
    document(st, user, location).await
}

/// A kept document is answered on the request's task (a `stat` and a clock read); building
/// one reads and renders, on a blocking thread.
async fn document(st: WebState, user: ApiUser, location: String) -> Response {
    if let Some(body) = st.docs.get(&location) {
        return xml_response(StatusCode::OK, body);
    }
    blocking(move || get_document(&st.engine, &user.ctx, &st.docs, &location)).await
}

async fn status_xml(State(st): State<WebState>, user: ApiUser) -> Response {
    document(st, user, "/Status".into()).await
}

async fn configuration_xml(State(st): State<WebState>, user: ApiUser) -> Response {
    document(st, user, "/Configuration".into()).await
}

async fn putxml(
    State(st): State<WebState>,
    user: ApiUser,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return super::security::too_large(None)
        }
        Err(r) => return r.into_response(),
    };
    if body.len() > xmldoc::MAX_DOC {
        let e = ShellError::new(
            Code::Unexpected,
            0,
            format!(
                "the putxml document is {} bytes; at most {} are accepted",
                body.len(),
                xmldoc::MAX_DOC
            ),
        )
        .area(Area::Line);
        return xml_response(StatusCode::PAYLOAD_TOO_LARGE, error_doc("Result", &e));
    }
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        let e = ShellError::new(Code::InvalidUtf8, 0, "the putxml document is not UTF-8")
            .area(Area::Line);
        return xml_response(StatusCode::BAD_REQUEST, error_doc("Result", &e));
    };
    blocking(move || apply(&st.engine, &user.ctx, &text)).await
}

/// Parses and applies a `putxml` document.
fn apply(engine: &Engine, ctx: &Context, text: &str) -> Response {
    let doc = match xmldoc::parse(text) {
        Ok(d) => d,
        // A document that was read but names a wrong path or value answers under its own
        // root; one that could not be read at all, under `Result`.
        Err(e) => {
            let root = match e.area {
                Area::Configuration => "Configuration",
                Area::Command => "Command",
                _ => "Result",
            };
            return xml_response(status_of(&e), error_doc(root, &e));
        }
    };
    match doc {
        Doc::Configuration(reqs) => match in_transaction(engine, ctx, reqs) {
            Ok(_) => xml_response(
                StatusCode::OK,
                format!("{XML_DECL}<Configuration><Success/></Configuration>\n"),
            ),
            Err(e) => xml_response(status_of(&e), error_doc("Configuration", &e)),
        },
        Doc::Command(req) => {
            let answer = if engine.writes_config(&req.action) {
                in_transaction(engine, ctx, vec![req]).map(|mut a| a.pop().unwrap_or(Answer::Done))
            } else {
                engine.execute(ctx, req)
            };
            match answer {
                Ok(Answer::Result(r)) => {
                    xml_response(StatusCode::OK, command_doc(&xml::result(&r, None)))
                }
                Ok(_) => xml_response(
                    StatusCode::OK,
                    format!("{XML_DECL}<Command><Success/></Command>\n"),
                ),
                Err(e) => xml_response(status_of(&e), error_doc("Command", &e)),
            }
        }
    }
}

/// The shell's XML command result with the product's `<Command>` root in place of the shell
/// session's `<XmlDoc><CommandResponse>` wrapper.
fn command_doc(shell: &str) -> String {
    let inner = shell
        .strip_prefix("<XmlDoc resultId=\"\">\n  <CommandResponse>\n")
        .and_then(|s| s.strip_suffix("  </CommandResponse>\n</XmlDoc>\n"));
    match inner {
        Some(inner) => format!("{XML_DECL}<Command>\n{inner}</Command>\n"),
        None => format!("{XML_DECL}{shell}"),
    }
}

/// Runs `reqs` in one store transaction; the first error leaves the configuration as it was
/// (nothing is written) and is returned.
fn in_transaction(
    engine: &Engine,
    ctx: &Context,
    reqs: Vec<Request>,
) -> Result<Vec<Answer>, ShellError> {
    let res = engine.transact(ctx, |cfg| {
        let before = cfg.clone();
        let mut answers = Vec::with_capacity(reqs.len());
        for req in reqs {
            match engine.execute_in(ctx, req, Some(cfg)) {
                Ok(a) => answers.push(a),
                Err(e) => {
                    *cfg = before;
                    return Err(e);
                }
            }
        }
        Ok(answers)
    });
    match res {
        Ok((r, _, _)) => r,
        Err(e) => Err(ShellError::new(Code::Store, 0, e.to_string()).area(Area::Configuration)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_with_and_without_slash_and_instances() {
        let (c, s) = location_steps("/Configuration/Zones/Zone[2]/Name").unwrap();
        assert!(c);
        assert_eq!(
            s,
            vec![
                Step::Word("Zones".into()),
                Step::Word("Zone".into()),
                Step::Index(2),
                Step::Word("Name".into())
            ]
        );
        let (c, s) = location_steps("Status/SystemUnit").unwrap();
        assert!(!c);
        assert_eq!(s, vec![Step::Word("SystemUnit".into())]);
        assert!(location_steps("/Foo").is_err());
    }

    fn kept_or_built(engine: &Engine, ctx: &Context, cache: &DocCache, loc: &str) -> Bytes {
        let (is_config, steps) = location_steps(loc).unwrap();
        let kind = cache_kind(is_config, &steps).unwrap();
        cache.get(loc).unwrap_or_else(|| {
            cache
                .build(loc, kind, || {
                    render_document(engine, ctx, loc).ok().map(Bytes::from)
                })
                .unwrap()
        })
    }

    #[test]
    fn kept_documents_are_the_fresh_ones_and_follow_the_configuration() {
        let d = tempfile::tempdir().unwrap();
        // The engine's own commands are enough here (the crate root's table is above this room).
        static HANDLERS: std::sync::OnceLock<crate::engine::Registry> = std::sync::OnceLock::new();
        let handlers =
            HANDLERS.get_or_init(|| crate::engine::Registry::new(&[crate::commands::HANDLERS]));
        let engine = Engine::open(d.path(), handlers).unwrap();
        let who = crate::store::Who {
            user: "t".into(),
            from: "127.0.0.1".into(),
            session: "1".into(),
        };
        let ctx = Context::new(
            who,
            crate::engine::Role::Admin,
            crate::engine::FrontEnd::Api,
        );
        let cache = DocCache::new(engine.store().config_path());
        let fresh = |loc: &str| Bytes::from(render_document(&engine, &ctx, loc).unwrap());
        let cfg = "/Configuration/SystemUnit";
        kept_or_built(&engine, &ctx, &cache, cfg);
        assert_eq!(cache.get(cfg), Some(fresh(cfg)));
        // SystemUnit's Uptime moves each second: a kept document is the fresh one whenever
        // both were made within one second (a tick can interrupt one pair, not ten).
        let st = "/Status/SystemUnit";
        let mut same_second = 0;
        for _ in 0..10 {
            let before = cache.inputs(hot::Kind::SystemUnit);
            let kept = kept_or_built(&engine, &ctx, &cache, st);
            let now = fresh(st);
            if cache.inputs(hot::Kind::SystemUnit) == before {
                assert_eq!(kept, now);
                same_second += 1;
            }
        }
        assert!(same_second > 0);
        let set = crate::parse::parse_line("xConfiguration SystemUnit Name: kept-doc-test")
            .unwrap()
            .action;
        engine
            .execute(
                &ctx,
                Request {
                    action: set,
                    body: None,
                },
            )
            .unwrap();
        assert_eq!(cache.get(cfg), None, "the configuration changed");
        assert_eq!(cache.get(st), None, "the configuration changed");
        let doc = kept_or_built(&engine, &ctx, &cache, cfg);
        assert!(String::from_utf8_lossy(&doc).contains("kept-doc-test"));
        assert_eq!(doc, fresh(cfg));
        let doc = kept_or_built(&engine, &ctx, &cache, st);
        assert!(String::from_utf8_lossy(&doc).contains("kept-doc-test"));
    }

    #[test]
    fn only_configuration_and_system_unit_are_kept() {
        let kind = |l: &str| {
            let (c, s) = location_steps(l).unwrap();
            cache_kind(c, &s)
        };
        assert_eq!(kind("/Configuration"), Some(hot::Kind::Configuration));
        assert_eq!(
            kind("/Configuration/Zones/Zone[2]"),
            Some(hot::Kind::Configuration)
        );
        assert_eq!(kind("/Status/SystemUnit"), Some(hot::Kind::SystemUnit));
        assert_eq!(
            kind("/Status/systemunit/Uptime"),
            Some(hot::Kind::SystemUnit)
        );
        assert_eq!(kind("/Status"), None);
        assert_eq!(kind("/Status/Agent"), None);
        assert_eq!(kind("/Status/Security"), None);
    }

    /// The leaves the status collection gives under SystemUnit: what [`super::hot`] stamps for
    /// a kept SystemUnit document (the configuration, the second, the host name). A new leaf
    /// here must say what it reads before its documents may be kept.
    #[test]
    fn system_unit_reads_only_what_is_stamped() {
        let d = tempfile::tempdir().unwrap();
        let tree = &crate::schema::schema().status;
        let id = match tree.lookup(None, "SystemUnit") {
            crate::schema::Lookup::Found(id) => id,
            _ => panic!("no SystemUnit in the status schema"),
        };
        let cfg = crate::store::Config::default();
        let got: Vec<String> = crate::status::collect_at(d.path(), &cfg, Some(id))
            .keys()
            .map(|k| {
                tree.ancestry(k.leaf)
                    .iter()
                    .map(|&n| tree.nodes[n].name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let mut want = vec![
            "SystemUnit Configuration Generation",
            "SystemUnit Name",
            "SystemUnit Product",
            "SystemUnit Root",
            "SystemUnit Software Version",
            "SystemUnit Uptime",
        ];
        let mut got: Vec<&str> = got.iter().map(String::as_str).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn command_doc_replaces_the_session_wrapper() {
        let shell = "<XmlDoc resultId=\"\">\n  <CommandResponse>\n    <XResult status=\"OK\">\n    </XResult>\n  </CommandResponse>\n</XmlDoc>\n";
        assert_eq!(
            command_doc(shell),
            format!(
                "{XML_DECL}<Command>\n    <XResult status=\"OK\">\n    </XResult>\n</Command>\n"
            )
        );
    }
}
