//! The engine driven the way a front end without a terminal drives it (the HTTPS/WebSocket plane
//! next): no shell `Session`, a context per caller, typed answers, errors as values.

use xsh::engine::{Answer, Context, DocKind, Engine, FrontEnd, Item, Request, ResultStatus, Role};
use xsh::error::Code;
use xsh::store::Who;

fn request(line: &str) -> Request {
    let parsed = xsh::parse::parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    Request {
        action: parsed.action,
        body: None,
    }
}

fn caller(role: Role) -> Context {
    let who = Who {
        user: "alice".into(),
        from: "192.0.2.7".into(),
        session: "17".into(),
    };
    Context::new(who, role, FrontEnd::Ws)
}

/// The value of the leaf `name` somewhere in `items`.
fn find<'a>(items: &'a [Item], name: &str) -> Option<&'a str> {
    items.iter().find_map(|it| match it {
        Item::Leaf { name: n, value, .. } if n == name => Some(value.as_str()),
        Item::Leaf { .. } => None,
        Item::Node { children, .. } => find(children, name),
    })
}

fn port(engine: &Engine, ctx: &Context) -> String {
    match engine.execute(ctx, request("xConfiguration SIP TLS Port")) {
        Ok(Answer::Document {
            kind: DocKind::Configuration,
            items,
            ..
        }) => find(&items, "Port").expect("a Port leaf").to_string(),
        other => panic!("not a configuration document: {other:?}"),
    }
}

#[test]
fn a_front_end_without_a_session_sets_reads_and_runs_commands() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), xsh::handlers()).unwrap();
    let admin = caller(Role::Admin);

    assert_eq!(port(&engine, &admin), "5061");
    let done = engine
        .execute(&admin, request("xConfiguration SIP TLS Port: 5064"))
        .unwrap();
    assert_eq!(done, Answer::Done);
    assert_eq!(port(&engine, &admin), "5064");

    // A command goes to the handler registered for its node.
    match engine
        .execute(
            &admin,
            request("xCommand Configuration Reset Path: \"SIP TLS Port\""),
        )
        .unwrap()
    {
        Answer::Result(r) => {
            assert_eq!(r.name, "ConfigurationResetResult");
            assert_eq!(r.status, ResultStatus::Ok);
        }
        other => panic!("not a command result: {other:?}"),
    }
    assert_eq!(port(&engine, &admin), "5061");

    // Several requests in one transaction, as a batch of a front end.
    let (results, changes, _) = engine
        .transact(&admin, |cfg| {
            [
                "xConfiguration SIP TLS Port: 5070",
                "xConfiguration Shell IdleTimeout: 60",
            ]
            .map(|l| engine.execute_in(&admin, request(l), Some(&mut *cfg)))
        })
        .unwrap();
    assert!(
        results.iter().all(|r| r == &Ok(Answer::Done)),
        "{results:?}"
    );
    assert_eq!(changes.len(), 2);
    assert_eq!(port(&engine, &admin), "5070");

    // The audit log names the caller, its address and its front end.
    let audit = std::fs::read_to_string(dir.path().join("config/audit.log")).unwrap();
    assert!(audit.contains("\"user\":\"alice\""), "{audit}");
    assert!(audit.contains("\"from\":\"192.0.2.7\""), "{audit}");
    assert!(audit.contains("\"session\":\"ws:17\""), "{audit}");
}

#[test]
fn a_read_only_caller_is_refused_with_an_error_value_and_an_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), xsh::handlers()).unwrap();
    let reader = caller(Role::ReadOnly);
    let e = engine
        .execute(&reader, request("xConfiguration SIP TLS Port: 5064"))
        .unwrap_err();
    assert_eq!(e.code, Code::PermissionDenied);
    let e = engine
        .execute(
            &reader,
            request("xCommand Configuration Reset Path: \"SIP TLS Port\""),
        )
        .unwrap_err();
    assert_eq!(e.code, Code::PermissionDenied);
    assert_eq!(port(&engine, &reader), "5061");
    let audit = std::fs::read_to_string(dir.path().join("config/audit.log")).unwrap();
    assert_eq!(
        audit.matches("refused: read-only role").count(),
        2,
        "{audit}"
    );
}

#[test]
fn terminal_session_requests_are_not_the_engines() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), xsh::handlers()).unwrap();
    for line in ["echo off", "bye", "xPreferences OutputMode JSON"] {
        let e = engine
            .execute(&caller(Role::Admin), request(line))
            .unwrap_err();
        assert_eq!(e.code, Code::Unexpected, "{line}");
    }
    // An unknown command never reaches the engine: the parser refuses it against the schema.
    assert!(xsh::parse::parse_line("xCommand Security Certificates Nope").is_err());
}

/// An async front end shares one engine between its tasks and moves contexts into them.
#[test]
fn engine_and_context_cross_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<Engine>();
    shared::<Context>();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), xsh::handlers()).unwrap();
    let ctx = caller(Role::Admin);
    let answer = std::thread::spawn(move || port(&engine, &ctx))
        .join()
        .unwrap();
    assert_eq!(answer, "5061");
}
