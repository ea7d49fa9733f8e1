//! The real `jsxapi` npm package (6.0.0, installed into `target/jsxapi-node` by the first test
//! that needs it) against a real `xagent` with its HTTPS listener (`tests/common/web.rs`): `jsxapi.connect('wss://…',
//! {username, password})`, configuration get/set, status get, commands with parameters and with
//! a multi-line body, the errors jsxapi maps, feedback fired by an `xsh` change (exactly one
//! event for one change), a read-only account refused on a set, and a wrong password refused.
//!
//! The scripts are in `tests/jsxapi/`; each prints `OUT {json}` lines and always ends (it closes
//! the socket and exits, with a guard timer against a hang). Needs node and npm: outside CI a
//! missing node or a failed install is a visible skip; under `CI=true` a failure.

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use common::web::WebAgent;

const JSXAPI_VERSION: &str = "6.0.0";
/// A deadline for a script's next line, not a timing assertion: the scripts' own guard is
/// shorter, so a hang shows up as the script's guard line.
const LINE_DEADLINE: Duration = Duration::from_secs(180);

fn target_dir() -> PathBuf {
    // target/release/xsh → target
    Path::new(env!("CARGO_BIN_EXE_xsh"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The folder holding `node_modules/jsxapi` 6.0.0, installed on first use; `None` (after
/// `cannot_run`) when node or npm is missing or the install fails.
fn jsxapi_node() -> Option<PathBuf> {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let dir = target_dir().join("jsxapi-node");
        let pkg = dir.join("node_modules/jsxapi/package.json");
        let installed = std::fs::read_to_string(&pkg)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_string));
        if installed.as_deref() == Some(JSXAPI_VERSION) {
            return Ok(dir);
        }
        for (tool, pkg) in [("node", "nodejs"), ("npm", "npm")] {
            if Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
            {
                return Err(format!("`{tool}` is not installed (apt-get install {pkg})"));
            }
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let out = Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&dir)
            .arg(format!("jsxapi@{JSXAPI_VERSION}"))
            .args(["--no-audit", "--no-fund", "--omit=optional"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("npm install: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm install jsxapi@{JSXAPI_VERSION} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(dir)
    });
    match r {
        Ok(d) => Some(d.clone()),
        Err(why) => {
            common::cannot_run(why);
            None
        }
    }
}

/// A running node script and the `OUT` lines it prints.
struct Script {
    child: Child,
    lines: mpsc::Receiver<String>,
    name: String,
    seen: Vec<String>,
}

impl Script {
    fn start(
        node_dir: &Path,
        name: &str,
        port: u16,
        user: &str,
        pw: &str,
        extra: &[(&str, &str)],
    ) -> Script {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/jsxapi")
            .join(format!("{name}.js"));
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .env("JSXAPI_NODE", node_dir)
            .env("PORT", port.to_string())
            .env("XUSER", user)
            .env("XPASS", pw)
            .env("GUARD_MS", "120000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("node starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Script {
            child,
            lines: rx,
            name: name.to_string(),
            seen: Vec::new(),
        }
    }

    /// The next `OUT` document; panics with what was printed when the script ends first.
    fn next(&mut self) -> Value {
        loop {
            match self.lines.recv_timeout(LINE_DEADLINE) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if let Some(j) = l.strip_prefix("OUT ") {
                        return serde_json::from_str(j)
                            .unwrap_or_else(|e| panic!("{}: bad OUT line {l:?}: {e}", self.name));
                    }
                }
                Err(_) => panic!(
                    "{}: no further OUT line; printed so far: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Waits for the exit; its status code.
    fn exit_code(&mut self) -> Option<i32> {
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value a call resolved with; panics with the error it was rejected with.
fn ok<'a>(r: &'a Value, what: &str) -> &'a Value {
    match r.get(what).and_then(|x| x.get("ok")) {
        Some(v) => v,
        None => panic!("{what} was rejected: {}", r[what]),
    }
}

/// The error a call was rejected with; panics when it resolved.
fn err<'a>(r: &'a Value, what: &str) -> &'a Value {
    match r.get(what).and_then(|x| x.get("err")) {
        Some(e) => e,
        None => panic!("{what} resolved, a rejection was expected: {}", r[what]),
    }
}

/// A self-signed CA certificate (PEM) made by openssl, for the multi-line body.
fn ca_pem(dir: &Path) -> Option<PathBuf> {
    if !common::require_tool("openssl", "version", "openssl") {
        return None;
    }
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=jsxapi test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(st.success(), "openssl req made no CA");
    Some(cert)
}

const ADMIN: (&str, &str) = ("jsadmin", "Adm1n-pass:word");
const VIEWER: (&str, &str) = ("jsviewer", "V1ewer-pass");

/// An agent with its web listener and the two accounts, and the jsxapi folder.
fn setup() -> Option<(WebAgent, PathBuf)> {
    let node = jsxapi_node()?;
    let agent = WebAgent::start();
    agent.add_account(ADMIN.0, ADMIN.1, "ReadWrite");
    agent.add_account(VIEWER.0, VIEWER.1, "ReadOnly");
    Some((agent, node))
}

#[test]
fn config_status_commands_and_errors() {
    let Some((agent, node)) = setup() else { return };
    let Some(ca) = ca_pem(agent.root()) else {
        return;
    };
    let ca_text = ca.to_string_lossy().into_owned();
    let mut s = Script::start(
        &node,
        "basic",
        agent.port,
        ADMIN.0,
        ADMIN.1,
        &[("CA_PEM", &ca_text)],
    );
    let r = s.next();
    assert_eq!(s.exit_code(), Some(0), "{r}");
    assert!(r.get("event").is_none(), "{r}");

    // Configuration: a leaf is its value; a set holds (the shell sees it); a subtree is an object.
    assert_eq!(ok(&r, "port_before"), "10");
    assert_eq!(ok(&r, "set_port"), &Value::Null);
    assert_eq!(ok(&r, "port_after"), "12");
    let shell = agent.xsh_ok("xConfiguration SIP TLS HandshakeTimeout\n");
    assert!(shell.contains("HandshakeTimeout: \"12\""), "{shell}");
    // A value with quotes and a colon is one value, stored whole.
    assert_eq!(ok(&r, "name"), "edge \"one\": two");
    assert_eq!(ok(&r, "tls")["HandshakeTimeout"], "12");
    assert_eq!(
        ok(&r, "tls")["Certificate"]["ExtendedKeyUsage"]["Checking"]["Mode"],
        "On"
    );
    assert_eq!(ok(&r, "set_zone"), &Value::Null);
    assert_eq!(ok(&r, "zone2"), "west");

    // Status.
    assert_eq!(ok(&r, "status_product"), "xsh");
    assert_eq!(ok(&r, "status_unit")["Product"], "xsh");

    // Commands: parameters, and a multi-line body (a CA through the body param).
    let show = ok(&r, "show_pem");
    assert_eq!(show["status"], "OK", "{show}");
    assert!(show.to_string().contains("BEGIN CERTIFICATE"), "{show}");
    assert_eq!(ok(&r, "ca_add")["status"], "OK");
    let list = ok(&r, "ca_list").to_string();
    assert!(list.contains("jsxapi test CA"), "{list}");
    let shell = agent.xsh_ok("xCommand Security Certificates CA List\n");
    assert!(shell.contains("jsxapi test CA"), "{shell}");

    // Errors with jsxapi's codes.
    let e = err(&r, "bad_path");
    assert_eq!(e["code"], 3, "{e}");
    assert_eq!(e["data"]["xpath"], "/Configuration/SIP/TLS/Prot", "{e}");
    let e = err(&r, "bad_value");
    assert_eq!(e["code"], 2, "{e}");
    assert_eq!(e["data"]["Code"], "E040", "{e}");
    assert_eq!(err(&r, "bad_param")["code"], 4);
    assert_eq!(err(&r, "missing_param")["code"], 4);
    assert_eq!(err(&r, "bad_command")["code"], -32601);
    assert_eq!(err(&r, "bad_method")["code"], -32601);
    // The refused set stored nothing.
    let shell = agent.xsh_ok("xConfiguration SIP TLS HandshakeTimeout\n");
    assert!(shell.contains("HandshakeTimeout: \"12\""), "{shell}");

    // Audited as the account, through the ws front end.
    let audit = std::fs::read_to_string(agent.root().join("config/audit.log")).unwrap_or_default();
    let rec = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["path"] == "SIP TLS HandshakeTimeout" && v["new"] == "12")
        .unwrap_or_else(|| panic!("no audit record of the set: {audit}"));
    assert_eq!(rec["user"], ADMIN.0, "{rec}");
    assert!(
        rec["session"]
            .as_str()
            .is_some_and(|s| s.starts_with("ws:")),
        "{rec}"
    );
}

#[test]
fn feedback_from_an_xsh_change_arrives_once() {
    let Some((agent, node)) = setup() else { return };
    let mut s = Script::start(&node, "feedback", agent.port, ADMIN.0, ADMIN.1, &[]);
    assert_eq!(s.next()["event"], "subscribed");
    let o =
        agent.xsh_ok("xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: Off\n");
    assert!(o.contains("OK"), "{o}");
    let ev = s.next();
    assert_eq!(ev["event"], "mode", "{ev}");
    assert_eq!(ev["value"], "Off", "{ev}");
    // The barrier: a second change, on another leaf, after the first event arrived.
    let o = agent.xsh_ok("xConfiguration SystemUnit Description: \"barrier\"\n");
    assert!(o.contains("OK"), "{o}");
    let ev = s.next();
    assert_eq!(ev["event"], "barrier", "{ev}");
    assert_eq!(ev["value"], "barrier", "{ev}");
    assert_eq!(
        ev["mode"],
        serde_json::json!(["Off"]),
        "one change, one event: {ev}"
    );
    assert_eq!(s.exit_code(), Some(0));
}

#[test]
fn read_only_account_is_refused_on_set() {
    let Some((agent, node)) = setup() else { return };
    let mut s = Script::start(&node, "readonly", agent.port, VIEWER.0, VIEWER.1, &[]);
    let r = s.next();
    assert_eq!(s.exit_code(), Some(0), "{r}");
    assert_eq!(ok(&r, "get"), "10");
    let e = err(&r, "set");
    assert_eq!(e["code"], 1, "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Access denied")),
        "{e}"
    );
    assert_eq!(e["data"]["Code"], "E070", "{e}");
    assert_eq!(ok(&r, "after"), "10");
    assert_eq!(err(&r, "reset")["code"], 1);
}

#[test]
fn wrong_password_is_refused() {
    let Some((agent, node)) = setup() else { return };
    let mut s = Script::start(
        &node,
        "refused",
        agent.port,
        ADMIN.0,
        "not-the-password",
        &[],
    );
    let r = s.next();
    assert_eq!(r["event"], "error", "{r}");
    assert!(
        r["error"].as_str().is_some_and(|m| m.contains("401")),
        "{r}"
    );
    assert_eq!(s.exit_code(), Some(0), "ready was emitted: {r}");
    let mut s = Script::start(&node, "refused", agent.port, "nobody", "whatever-pass", &[]);
    assert_eq!(s.next()["event"], "error");
    assert_eq!(s.exit_code(), Some(0));
}
