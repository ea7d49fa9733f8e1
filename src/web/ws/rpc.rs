//! JSON-RPC 2.0 as jsxapi 6 speaks it: requests with string ids (echoed verbatim), results,
//! errors with jsxapi's codes, and `xFeedback/Event` notifications.
//!
//! Error codes (jsxapi `src/xapi/exc.ts`, plus JSON-RPC's own for what is not a request):
//!
//! | code | jsxapi name | the shell's codes |
//! |---|---|---|
//! | 1 | `COMMAND_ERROR` | a command that ran and failed (E090, E1xx certificate errors, E080 store), a read-only leaf (E042), a deprecated leaf (E043), **access denied** (E070: a read-only account's set or admin command; message `Access denied: …`) |
//! | 2 | `ILLEGAL_VALUE` (`IllegalValueError`) | E040, E041 outside a command |
//! | 3 | `INVALID_PATH` (`InvalidPathError`, `data.xpath`) | E030–E034, E012 |
//! | 4 | `PARAMETER_ERROR` | E050–E053, E041 in a command |
//! | -32601 | method not found | an unknown method, and an unknown command (as jsxapi's own tests do) |
//! | -32602 | invalid params | `Path`, `Value`, `Query` or `Id` missing or of the wrong JSON type |
//! | -32600 | invalid request | not a JSON-RPC 2.0 request object (a batch, no method) |
//! | -32700 | parse error | not JSON |
//!
//! Every error's `data` also carries the shell's `Code` (`E040`) and, where known, `Expected`, so
//! a script can tell exactly what was refused.

use serde_json::{json, Map, Value};

use crate::error::{Area, Code, ShellError};

pub const COMMAND_ERROR: i64 = 1;
pub const ILLEGAL_VALUE: i64 = 2;
pub const INVALID_PATH: i64 = 3;
pub const PARAMETER_ERROR: i64 = 4;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INVALID_REQUEST: i64 = -32600;
pub const PARSE_ERROR: i64 = -32700;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }

    /// The shell's error in jsxapi's terms; `command` says whether the request was an
    /// `xCommand/…` (an unknown path there is an unknown method).
    pub fn from_shell(e: &ShellError, command: bool) -> RpcError {
        use Code::*;
        let path_error = matches!(
            e.code,
            UnknownPath
                | AmbiguousPath
                | MissingInstance
                | InstanceOutOfRange
                | NotALeaf
                | Unexpected
        );
        let code = match e.code {
            _ if path_error && command => METHOD_NOT_FOUND,
            _ if path_error => INVALID_PATH,
            IllegalValue => ILLEGAL_VALUE,
            MissingValue if e.area != Area::Command => ILLEGAL_VALUE,
            MissingValue | UnknownParam | MissingParam | IllegalParam | BodyMismatch => {
                PARAMETER_ERROR
            }
            _ => COMMAND_ERROR,
        };
        let reason = if e.code == PermissionDenied {
            "Access denied"
        } else if code == METHOD_NOT_FOUND {
            "Unknown command"
        } else {
            e.code.reason()
        };
        let mut data = Map::new();
        data.insert("Code".into(), Value::from(e.code.as_str()));
        if path_error || e.area != Area::Line {
            data.insert("xpath".into(), Value::from(e.xpath()));
        }
        if let Some(x) = &e.expected {
            data.insert("Expected".into(), Value::from(x.as_str()));
        }
        if let Some(h) = &e.hint {
            data.insert("Hint".into(), Value::from(h.as_str()));
        }
        RpcError {
            code,
            message: format!("{reason}: {}", e.message),
            data: Some(Value::Object(data)),
        }
    }
}

/// One request as read from a text message.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `None` for a notification (no answer is sent).
    pub id: Option<Value>,
    pub method: String,
    pub params: Map<String, Value>,
}

/// A message that is no request: the error, with the id to answer it under (`Null` when none
/// could be read).
pub type Refused = Box<(Option<Value>, RpcError)>;

/// Reads one message. An error comes with the id when one could be read.
pub fn read(text: &str) -> Result<Call, Refused> {
    let refused = |id: Option<Value>, e: RpcError| -> Refused { Box::new((id, e)) };
    let v: Value = serde_json::from_str(text).map_err(|e| {
        refused(
            Some(Value::Null),
            RpcError::new(PARSE_ERROR, format!("Parse error: {e}")),
        )
    })?;
    let Value::Object(mut o) = v else {
        return Err(refused(
            Some(Value::Null),
            RpcError::new(
                INVALID_REQUEST,
                "Invalid request: expected one JSON-RPC 2.0 request object (batches are not supported)",
            ),
        ));
    };
    let id = o.remove("id");
    if id
        .as_ref()
        .is_some_and(|i| !(i.is_string() || i.is_number() || i.is_null()))
    {
        return Err(refused(
            Some(Value::Null),
            RpcError::new(
                INVALID_REQUEST,
                "Invalid request: id must be a string or a number",
            ),
        ));
    }
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(refused(
            id.or(Some(Value::Null)),
            RpcError::new(
                INVALID_REQUEST,
                "Invalid request: expected \"jsonrpc\": \"2.0\"",
            ),
        ));
    }
    let method = match o.remove("method") {
        Some(Value::String(m)) => m,
        _ => {
            return Err(refused(
                id.or(Some(Value::Null)),
                RpcError::new(
                    INVALID_REQUEST,
                    "Invalid request: expected a \"method\" string",
                ),
            ))
        }
    };
    let params = match o.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(refused(
                id.or(Some(Value::Null)),
                RpcError::params("Invalid params: expected an object"),
            ))
        }
    };
    Ok(Call { id, method, params })
}

/// `{"jsonrpc":"2.0","id":…,"result":…}`.
pub fn result(id: &Value, result: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

/// `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…,"data":…}}`.
pub fn error(id: &Value, e: &RpcError) -> String {
    let mut err = json!({"code": e.code, "message": e.message});
    if let (Some(d), Some(o)) = (&e.data, err.as_object_mut()) {
        o.insert("data".into(), d.clone());
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err}).to_string()
}

/// `{"jsonrpc":"2.0","method":"xFeedback/Event","params":{"Id":…,…}}`.
pub fn event(params: Value) -> String {
    json!({"jsonrpc": "2.0", "method": "xFeedback/Event", "params": params}).to_string()
}

/// A JSON scalar as the text a value or parameter is: strings as they are, numbers and
/// booleans written out (`5062`, `true`). `None` for objects, arrays and null.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_garbage() {
        let c = read(r#"{"jsonrpc":"2.0","id":"7","method":"xGet","params":{"Path":["Status"]}}"#)
            .unwrap();
        assert_eq!(c.id, Some(Value::from("7")));
        assert_eq!(c.method, "xGet");
        assert_eq!(read("{nope").unwrap_err().1.code, PARSE_ERROR);
        assert_eq!(read("[1]").unwrap_err().1.code, INVALID_REQUEST);
        assert_eq!(
            read(r#"{"id":"1","method":"x"}"#).unwrap_err().1.code,
            INVALID_REQUEST
        );
        let (id, e) = *read(r#"{"jsonrpc":"2.0","id":"3","method":"x","params":[1]}"#).unwrap_err();
        assert_eq!((id, e.code), (Some(Value::from("3")), INVALID_PARAMS));
        assert_eq!(
            error(&Value::from("3"), &RpcError::new(2, "bad")),
            r#"{"jsonrpc":"2.0","id":"3","error":{"code":2,"message":"bad"}}"#
        );
    }

    #[test]
    fn shell_codes_map_to_jsxapi_codes() {
        let e = ShellError::new(Code::UnknownPath, 3, "no match for 'Prot'")
            .area(Area::Configuration)
            .path(vec!["SIP".into(), "TLS".into(), "Prot".into()]);
        let r = RpcError::from_shell(&e, false);
        assert_eq!(r.code, INVALID_PATH);
        assert_eq!(
            r.data.as_ref().and_then(|d| d.get("xpath")),
            Some(&Value::from("/Configuration/SIP/TLS/Prot"))
        );
        assert_eq!(RpcError::from_shell(&e, true).code, METHOD_NOT_FOUND);
        let e = ShellError::new(Code::IllegalValue, 3, "x").area(Area::Configuration);
        assert_eq!(RpcError::from_shell(&e, false).code, ILLEGAL_VALUE);
        let e = ShellError::new(Code::MissingParam, 3, "x").area(Area::Command);
        assert_eq!(RpcError::from_shell(&e, true).code, PARAMETER_ERROR);
        let e = ShellError::new(Code::PermissionDenied, 3, "read-only").area(Area::Configuration);
        let r = RpcError::from_shell(&e, false);
        assert_eq!(r.code, COMMAND_ERROR);
        assert!(r.message.starts_with("Access denied: "), "{}", r.message);
    }
}
