//! jsxapi's WebSocket at `/ws`: the `auth-…` sub-protocol checked before the upgrade, JSON-RPC
//! 2.0 (`xGet`, `xSet`, `xCommand/<Path>`, `xFeedback/Subscribe`/`Unsubscribe`) and
//! `xFeedback/Event` notifications.
//!
//! Requests become engine requests through `engine::structured`, so paths, values, roles and
//! the audit are the shell's; engine calls run in `spawn_blocking`. This room holds the wire
//! format (`rpc`), the collapsed JSON jsxapi reads (`doc`) and the per-process change hub
//! (`hub`); it knows no TLS and no listener.

mod doc;
mod hub;
mod rpc;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::accounts::LoginError;
use crate::engine::changes::{filter, Changes};
use crate::engine::structured::{self, Step};
use crate::engine::view::items_of;
use crate::engine::{Answer, Context, DocKind, Engine, FrontEnd, Request, ResultStatus};
use crate::parse::Action;
use crate::schema::schema;

use super::WebState;
use rpc::{Call, RpcError};

/// The largest message read: a command's multi-line body (a PEM chain with its key) and its
/// JSON framing.
pub const MAX_MESSAGE: usize = 2 * 1024 * 1024;

/// Messages queued for one client before the session waits for it.
const OUT_QUEUE: usize = 64;

pub fn routes() -> Router<WebState> {
    Router::new().route("/ws", any(upgrade))
}

/// `auth-<base64url(user:password)>` (padding optional) into the user and the password; the
/// password is what follows the first `:`, so it may hold colons.
fn credentials(proto: &str) -> Option<(String, String)> {
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    let b64 = proto.strip_prefix("auth-")?;
    let raw = URL_SAFE_NO_PAD
        .decode(b64)
        .or_else(|_| URL_SAFE.decode(b64))
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pw) = text.split_once(':')?;
    Some((user.to_string(), pw.to_string()))
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

async fn upgrade(
    State(st): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(proto) = ws
        .requested_protocols()
        .filter_map(|h| h.to_str().ok())
        .find(|p| p.starts_with("auth-"))
        .map(str::to_owned)
    else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "credentials expected in the Sec-WebSocket-Protocol auth-<base64url(user:password)>",
        );
    };
    let Some((user, pw)) = credentials(&proto) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the auth- sub-protocol is not base64url of user:password",
        );
    };
    let ctx = match super::auth::check_password(&st, &user, &pw, peer, FrontEnd::Ws).await {
        Ok((_, ctx)) => ctx,
        Err(LoginError::Wrong) => {
            return refuse(StatusCode::UNAUTHORIZED, "wrong user name or password")
        }
        Err(LoginError::Disabled) => return refuse(StatusCode::FORBIDDEN, "account disabled"),
        Err(LoginError::LockedOut { seconds_left }) => {
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("locked out after repeated failures; try again in {seconds_left} s"),
            );
            if let Ok(v) = HeaderValue::from_str(&seconds_left.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(LoginError::Unavailable(_)) => {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "accounts cannot be read")
        }
    };
    let engine = st.engine.clone();
    ws.protocols([proto])
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |sock| session(sock, engine, ctx))
}

/// One client: requests answered in order; feedback events between them.
struct Session {
    engine: Engine,
    ctx: Context,
    out: mpsc::Sender<String>,
    subs: Arc<Mutex<BTreeMap<u64, String>>>,
    next_id: u64,
    forwarder: Option<tokio::task::JoinHandle<()>>,
}

async fn session(sock: WebSocket, engine: Engine, ctx: Context) {
    let (mut sink, mut stream) = sock.split();
    let (out, mut queue) = mpsc::channel::<String>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(m) = queue.recv().await {
            if sink.send(Message::text(m)).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut s = Session {
        engine,
        ctx,
        out,
        subs: Default::default(),
        next_id: 1,
        forwarder: None,
    };
    while let Some(Ok(msg)) = stream.next().await {
        let text = match msg {
            Message::Text(t) => t.as_str().to_owned(),
            Message::Binary(b) => match String::from_utf8(b.to_vec()) {
                Ok(t) => t,
                Err(_) => {
                    let e = RpcError::new(rpc::PARSE_ERROR, "Parse error: not UTF-8 text");
                    let _ = s.out.send(rpc::error(&Value::Null, &e)).await;
                    continue;
                }
            },
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if let Some(reply) = s.answer(&text).await {
            if s.out.send(reply).await.is_err() {
                break;
            }
        }
    }
    if let Some(f) = s.forwarder.take() {
        f.abort();
    }
    drop(s);
    let _ = writer.await;
}

/// The `Path` (or `Query`) of a request: the document root and the steps below it.
fn path_param(params: &Map<String, Value>, key: &str) -> Result<(String, Vec<Step>), RpcError> {
    let Some(Value::Array(items)) = params.get(key) else {
        return Err(RpcError::params(format!(
            "Invalid params: expected \"{key}\": an array of path elements"
        )));
    };
    let mut steps = Vec::with_capacity(items.len());
    for it in items {
        steps.push(match it {
            Value::String(w) => Step::Word(w.clone()),
            Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Step::Index(n),
                None => {
                    return Err(RpcError::params(format!(
                        "Invalid params: {n} in \"{key}\" is not an instance number"
                    )))
                }
            },
            other => {
                return Err(RpcError::params(format!(
                    "Invalid params: {other} in \"{key}\" is not a path element"
                )))
            }
        });
    }
    let root = match steps.first() {
        Some(Step::Word(w)) => w.clone(),
        _ => String::new(),
    };
    Ok((root, steps.into_iter().skip(1).collect()))
}

/// Which document a path's first element names, as jsxapi's own `startsWith` test does.
fn which(root: &str) -> Option<DocKind> {
    let r = root.to_ascii_lowercase();
    if r.len() >= 4 && "configuration".starts_with(&r) {
        Some(DocKind::Configuration)
    } else if r.len() >= 4 && "status".starts_with(&r) {
        Some(DocKind::Status)
    } else {
        None
    }
}

fn no_document(root: &str) -> RpcError {
    RpcError {
        code: rpc::INVALID_PATH,
        message: format!("No match on address expression: '{root}' is not Configuration or Status"),
        data: Some(json!({"xpath": format!("/{root}")})),
    }
}

/// Command parameters: each a scalar or an array of scalars (several values); `body` is the
/// multi-line body.
type Params = (Vec<(String, Vec<String>)>, Option<String>);

fn command_params(params: &Map<String, Value>) -> Result<Params, RpcError> {
    let mut out = Vec::new();
    let mut body = None;
    for (k, v) in params {
        if k == "body" {
            body =
                Some(rpc::scalar_text(v).ok_or_else(|| {
                    RpcError::params("Invalid params: \"body\" must be a string")
                })?);
            continue;
        }
        let values = match v {
            Value::Array(a) => a.iter().map(rpc::scalar_text).collect::<Option<Vec<_>>>(),
            v => rpc::scalar_text(v).map(|s| vec![s]),
        }
        .ok_or_else(|| {
            RpcError::params(format!(
                "Invalid params: \"{k}\" must be a string, a number, a boolean or an array of them"
            ))
        })?;
        out.push((k.clone(), values));
    }
    Ok((out, body))
}

impl Session {
    /// The answer to one message; `None` for a notification.
    async fn answer(&mut self, text: &str) -> Option<String> {
        let call = match rpc::read(text) {
            Ok(c) => c,
            Err(refused) => {
                let (id, e) = *refused;
                return id.map(|id| rpc::error(&id, &e));
            }
        };
        let res = self.dispatch(&call).await;
        let id = call.id?;
        Some(match res {
            Ok(v) => rpc::result(&id, v),
            Err(e) => rpc::error(&id, &e),
        })
    }

    async fn dispatch(&mut self, call: &Call) -> Result<Value, RpcError> {
        let p = &call.params;
        match call.method.as_str() {
            "xGet" => self.get(p).await,
            "xSet" => self.set(p).await,
            "xFeedback/Subscribe" => self.subscribe(p).await,
            "xFeedback/Unsubscribe" => self.unsubscribe(p),
            m => match m.strip_prefix("xCommand/") {
                Some(path) => self.command(path, p).await,
                None => Err(RpcError::new(
                    rpc::METHOD_NOT_FOUND,
                    format!("Method not found: {m}"),
                )),
            },
        }
    }

    /// Runs `req` in the engine, off the async threads.
    async fn run(&self, req: Request, command: bool) -> Result<Answer, RpcError> {
        let (engine, ctx) = (self.engine.clone(), self.ctx.clone());
        tokio::task::spawn_blocking(move || engine.execute(&ctx, req))
            .await
            .map_err(|e| RpcError::new(rpc::COMMAND_ERROR, format!("request failed: {e}")))?
            .map_err(|e| RpcError::from_shell(&e, command))
    }

    async fn get(&self, p: &Map<String, Value>) -> Result<Value, RpcError> {
        let (root, steps) = path_param(p, "Path")?;
        let kind = which(&root).ok_or_else(|| no_document(&root))?;
        let req = match kind {
            DocKind::Configuration => structured::config_get(&steps),
            DocKind::Status => structured::status_get(&steps),
        }
        .map_err(|e| RpcError::from_shell(&e, false))?;
        let addr = match &req.action {
            Action::ConfigGet(a) | Action::StatusGet(a) => a.clone(),
            _ => return Err(RpcError::new(rpc::INVALID_PATH, "not a read")),
        };
        let Answer::Document { kind, items, .. } = self.run(req, false).await? else {
            return Ok(Value::Null);
        };
        let tree = match kind {
            DocKind::Configuration => &schema().config,
            DocKind::Status => &schema().status,
        };
        Ok(doc::dig(
            &doc::document(kind, &items),
            kind.root(),
            tree,
            &addr,
        ))
    }

    async fn set(&self, p: &Map<String, Value>) -> Result<Value, RpcError> {
        let (root, steps) = path_param(p, "Path")?;
        if which(&root) != Some(DocKind::Configuration) {
            return Err(no_document(&root));
        }
        let value = p.get("Value").and_then(rpc::scalar_text).ok_or_else(|| {
            RpcError::params("Invalid params: expected \"Value\": a string or a number")
        })?;
        let req =
            structured::config_set(&steps, &value).map_err(|e| RpcError::from_shell(&e, false))?;
        self.run(req, false).await?;
        Ok(Value::Null)
    }

    async fn command(&self, path: &str, p: &Map<String, Value>) -> Result<Value, RpcError> {
        let steps: Vec<Step> = path
            .split('/')
            .map(|w| match w.parse::<u32>() {
                Ok(n) => Step::Index(n),
                Err(_) => Step::Word(w.to_string()),
            })
            .collect();
        let (params, body) = command_params(p)?;
        let req = structured::command(&steps, &params, body)
            .map_err(|e| RpcError::from_shell(&e, true))?;
        match self.run(req, true).await? {
            Answer::Result(r) => match r.status {
                ResultStatus::Ok => Ok(doc::command_result(&r)),
                ResultStatus::Error => Err(RpcError {
                    code: rpc::COMMAND_ERROR,
                    message: format!("{} failed", r.name),
                    data: Some(doc::command_result(&r)),
                }),
                ResultStatus::ParameterError => Err(RpcError {
                    code: rpc::PARAMETER_ERROR,
                    message: "Invalid or missing parameters".into(),
                    data: Some(doc::command_result(&r)),
                }),
            },
            Answer::Nothing | Answer::Done => Ok(Value::Null),
            other => Ok(json!({"status": if other.ok() { "OK" } else { "Error" }})),
        }
    }

    async fn subscribe(&mut self, p: &Map<String, Value>) -> Result<Value, RpcError> {
        let (root, steps) = path_param(p, "Query")?;
        let mut raw = format!("/{root}");
        for s in &steps {
            match s {
                Step::Word(w) => {
                    raw.push('/');
                    raw.push_str(w);
                }
                Step::Index(n) => raw.push_str(&format!("[{n}]")),
            }
        }
        let path = crate::parse::feedback::normalize(&raw).map_err(|m| RpcError {
            code: rpc::INVALID_PATH,
            message: format!("No match on address expression: {m}"),
            data: Some(json!({"xpath": raw})),
        })?;
        if self.forwarder.is_none() {
            let root = self.engine.root().to_path_buf();
            let hub = tokio::task::spawn_blocking(move || hub::hub(&root))
                .await
                .ok()
                .flatten()
                .ok_or_else(|| {
                    RpcError::new(
                        rpc::COMMAND_ERROR,
                        "feedback is unavailable: the configuration and status folders cannot be watched",
                    )
                })?;
            let mut rx = hub.subscribe();
            let (subs, out) = (self.subs.clone(), self.out.clone());
            self.forwarder = Some(tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match rx.recv().await {
                        Ok(ch) => {
                            let events = events(&ch, &subs);
                            for e in events {
                                if out.send(e).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return,
                    }
                }
            }));
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Ok(mut s) = self.subs.lock() {
            s.insert(id, path);
        }
        Ok(json!({"Id": id}))
    }

    fn unsubscribe(&mut self, p: &Map<String, Value>) -> Result<Value, RpcError> {
        let id = p
            .get("Id")
            .and_then(Value::as_u64)
            .ok_or_else(|| RpcError::params("Invalid params: expected \"Id\": a number"))?;
        let removed = self.subs.lock().ok().and_then(|mut s| s.remove(&id));
        match removed {
            Some(_) => Ok(Value::Bool(true)),
            None => Err(RpcError::params(format!(
                "Invalid params: no subscription with Id {id}"
            ))),
        }
    }
}

/// The notifications one set of changes makes: at most one per subscription, holding what
/// changed under its path from the document root down (`{"Id":1,"Configuration":{…}}`).
fn events(ch: &Changes, subs: &Mutex<BTreeMap<u64, String>>) -> Vec<String> {
    let subs = match subs.lock() {
        Ok(s) => s.clone(),
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for (id, path) in subs {
        let regs = std::slice::from_ref(&path);
        let mut params = Map::new();
        params.insert("Id".into(), Value::from(id));
        for (kind, values) in [
            (DocKind::Configuration, &ch.config),
            (DocKind::Status, &ch.status),
        ] {
            let tree = match kind {
                DocKind::Configuration => &schema().config,
                DocKind::Status => &schema().status,
            };
            let mine = filter(tree, kind.root(), values, regs);
            if !mine.is_empty() {
                params.insert(
                    kind.root().into(),
                    Value::Object(doc::members(&items_of(tree, &mine))),
                );
            }
        }
        if params.len() > 1 {
            out.push(rpc::event(Value::Object(params)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_the_sub_protocol() {
        // jsxapi: base64 of "user:password" with + → -, / → _ and no padding.
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("admin:p:?>ss");
        assert_eq!(
            credentials(&format!("auth-{enc}")),
            Some(("admin".into(), "p:?>ss".into()))
        );
        let padded = base64::engine::general_purpose::URL_SAFE.encode("a:b");
        assert_eq!(
            credentials(&format!("auth-{padded}")),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(credentials("auth-!!"), None);
        assert_eq!(credentials("bearer-x"), None);
    }

    #[test]
    fn one_event_per_subscription_with_its_id() {
        let key = crate::status::key_for(&schema().config, "SIP TLS Port").unwrap();
        let ch = Changes {
            config: [(key, "5062".to_string())].into(),
            status: Default::default(),
        };
        let subs = Mutex::new(BTreeMap::from([
            (1, "/Configuration/SIP".to_string()),
            (2, "/Configuration/Zones".to_string()),
            (3, "/Configuration/SIP/TLS/Port".to_string()),
        ]));
        let ev = events(&ch, &subs);
        assert_eq!(ev.len(), 2);
        let v: Value = serde_json::from_str(&ev[0]).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","method":"xFeedback/Event","params":{"Id":1,"Configuration":{"SIP":{"TLS":{"Port":"5062"}}}}})
        );
    }
}
