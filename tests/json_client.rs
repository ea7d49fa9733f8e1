//! A scripted JSON client behaving byte for byte like the endpoint-dialect automation libraries of
//! xapi.md "What clients in the field actually do", over a real sshd and a channel without a PTY:
//! wait for a line exactly `OK` (split on `\n` only), `echo off\n` and its `OK`,
//! `xpreferences outputmode json\n`, then pipelined `<cmd> | resultId="<n>"` requests; from then on
//! every byte goes to a streaming JSON parser. Also the exec channel whose command is `tsh`, and the
//! close without `bye`.

mod ssh_support;

use serde_json::Value;
use ssh_support::{Pty, SshSession, ADMIN};
use xsh::certs::pki::TestCa;

/// The client's reader: a cursor into the session's stdout.
struct Client {
    s: SshSession,
    pos: usize,
}

impl Client {
    /// Connects, waits for the banner's `OK` line, sends `echo off` and waits for its `OK`, then
    /// switches to JSON. Returns with the cursor after the last `OK` line.
    fn connect(srv: &ssh_support::SshServer, remote: Option<&str>) -> Client {
        let s = srv.session(ADMIN, Pty::None, remote);
        let mut c = Client { s, pos: 0 };
        c.wait_ok_line();
        c.s.send(b"echo off\n");
        c.wait_ok_line();
        c.s.send(b"xpreferences outputmode json\n");
        c
    }

    /// Reads lines split on `\n` only until one is exactly `OK` (an `OK\r` never matches).
    fn wait_ok_line(&mut self) {
        let from = self.pos;
        self.pos = self.s.wait_for("a line exactly OK", |b| {
            let mut start = from;
            while let Some(i) = b[start..].iter().position(|&x| x == b'\n') {
                let line = &b[start..start + i];
                start += i + 1;
                if line == b"OK" {
                    return Some(start);
                }
            }
            None
        });
    }

    fn send(&mut self, line: &str) {
        self.s.send(line.as_bytes());
    }

    /// Feeds every byte after the cursor to a streaming JSON parser until `n` more documents
    /// are complete; panics on anything that is not JSON or not ASCII.
    fn docs(&mut self, n: usize) -> Vec<Value> {
        let from = self.pos;
        let (docs, end) = self.s.wait_for(&format!("{n} JSON documents"), |b| {
            let (docs, ends) = ssh_support::json_docs(&b[from..]);
            (docs.len() >= n).then(|| (docs[..n].to_vec(), from + ends[n - 1]))
        });
        let raw = &self.s.output()[from..end];
        assert!(
            raw.is_ascii(),
            "JSON output must be 7-bit ASCII: {:?}",
            String::from_utf8_lossy(raw)
        );
        self.pos = end;
        docs
    }
}

fn rid(v: &Value) -> Option<&str> {
    v.get("ResultId").and_then(Value::as_str)
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .unwrap_or_else(|| panic!("no {p} in {v} (path {path:?})"));
    }
    cur
}

/// The one `<Name>Result` object of a command reply.
fn command_result(v: &Value) -> (&str, &Value) {
    let cr = at(v, &["CommandResponse"]).as_object().expect("object");
    assert_eq!(cr.len(), 1, "exactly one result object: {v}");
    let (k, r) = cr.iter().next().expect("one");
    assert!(k.ends_with("Result"), "{v}");
    (k.as_str(), r)
}

fn length_prefixed(command_line: &str, body: &str) -> String {
    let payload = format!("{command_line}\n{body}\n");
    format!("{{{}}} \n{payload}", payload.len())
}

#[test]
fn json_client_pipelined_requests_bodies_feedback_and_eof() {
    let srv = sshd_or_skip!();
    let ca = TestCa::new_root("JSON Client Test CA").expect("test CA");
    let mut c = Client::connect(&srv, None);

    // Pipelined, without waiting. Values quoted, numbers bare, parameters sorted by name.
    let eku = "xconfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode";
    // A `.` line inside a length-prefixed body is data.
    let body = format!("{}.\n# trailing text after the PEM block", ca.root_pem());
    let requests = [
        format!("{eku} | resultId=\"1\"\n"),
        format!("{eku}: \"Off\" | resultId=\"2\"\n"),
        "xconfiguration SIP TLS Port: 99999 | resultId=\"3\"\n".to_string(),
        "xstatus SystemUnit Uptime | resultId=\"4\"\n".to_string(),
        "xcommand Dila | resultId=\"5\"\n".to_string(),
        "xconfiguration SystemUnit Description: \"Z\u{fc}rich \u{2013} \u{2603}\" | resultId=\"6\"\n"
            .to_string(),
        "xconfiguration SystemUnit Description | resultId=\"7\"\n".to_string(),
        "xconfiguration Zones Zone 2 Name: \"Edge\" | resultId=\"8\"\n".to_string(),
        "xconfiguration Zones Zone 2 | resultId=\"9\"\n".to_string(),
        length_prefixed("xcommand Security Certificates CA Add | resultId=\"10\"", &body),
        "xcommand Security Certificates CA List | resultId=\"11\"\n".to_string(),
        "xcommand Security Certificates CA Add Bogus: 1 | resultId=\"12\"\n".to_string(),
        "xconfiguration Bogus Path | resultId=\"13\"\n".to_string(),
        "xstatus SystemUnit Product | resultId=\"14\"\n".to_string(),
    ];
    let all: String = requests.concat();
    // Split the pipeline across writes at awkward places (as SSH packets may).
    let bytes = all.as_bytes();
    for chunk in bytes.chunks(97) {
        c.s.send(chunk);
    }
    let docs = c.docs(requests.len());
    let ids: Vec<&str> = docs.iter().map(|d| rid(d).unwrap_or("<none>")).collect();
    let want: Vec<String> = (1..=requests.len()).map(|i| i.to_string()).collect();
    assert_eq!(
        ids, want,
        "replies in request order, each tagged: {docs:#?}"
    );

    let mode = &[
        "Configuration",
        "SIP",
        "TLS",
        "Certificate",
        "ExtendedKeyUsage",
        "Checking",
        "Mode",
    ];
    assert_eq!(at(&docs[0], mode), &serde_json::json!({"Value": "On"}));
    assert_eq!(docs[1], serde_json::json!({"ResultId": "2"}));
    let port = at(&docs[2], &["Configuration", "SIP", "TLS", "Port"]);
    assert_eq!(port["error"], "True", "{}", docs[2]);
    assert_eq!(port["Value"], "Illegal value", "{}", docs[2]);
    let uptime = at(&docs[3], &["Status", "SystemUnit", "Uptime", "Value"]);
    assert!(
        uptime.as_str().is_some_and(|u| u.parse::<u64>().is_ok()),
        "{}",
        docs[3]
    );
    let (_, r) = command_result(&docs[4]);
    assert_eq!(r["status"], "Error", "{}", docs[4]);
    assert_eq!(r["XPath"]["Value"], "/Dila", "{}", docs[4]);
    assert!(r["Reason"]["Value"].is_string(), "{}", docs[4]);
    assert_eq!(docs[5], serde_json::json!({"ResultId": "6"}));
    assert_eq!(
        at(
            &docs[6],
            &["Configuration", "SystemUnit", "Description", "Value"]
        ),
        "Z\u{fc}rich \u{2013} \u{2603}"
    );
    let zones = at(&docs[8], &["Configuration", "Zones", "Zone"])
        .as_array()
        .expect("array");
    assert_eq!(zones.len(), 1, "{}", docs[8]);
    assert_eq!(zones[0]["id"], "2");
    assert_eq!(zones[0]["Name"]["Value"], "Edge");
    let (name, r) = command_result(&docs[9]);
    assert_eq!(name, "SecurityCertificatesCAAddResult");
    assert_eq!(r["status"], "OK", "{}", docs[9]);
    let (_, r) = command_result(&docs[10]);
    let list = r.to_string();
    assert!(list.contains("CN=JSON Client Test CA"), "{list}");
    let (_, r) = command_result(&docs[11]);
    assert_eq!(r["status"], "ParameterError", "{}", docs[11]);
    let (_, r) = command_result(&docs[12]);
    assert_eq!(r["status"], "Error", "{}", docs[12]);
    assert_eq!(
        r["Reason"]["Value"], "No match on address expression",
        "{}",
        docs[12]
    );
    assert!(r["XPath"]["Value"]
        .as_str()
        .unwrap_or("")
        .starts_with("/Configuration/Bogus"));
    assert_eq!(
        at(&docs[13], &["Status", "SystemUnit", "Product", "Value"]),
        "xsh"
    );

    // Feedback: lower-case verb, slash path; two overlapping registrations, one change, one
    // document (no ResultId).
    c.send("xfeedback register /Configuration/SIP/TLS | resultId=\"20\"\n");
    c.send("xfeedback register /Configuration/SIP | resultId=\"21\"\n");
    let d = c.docs(2);
    assert_eq!(
        d,
        [
            serde_json::json!({"ResultId": "20"}),
            serde_json::json!({"ResultId": "21"})
        ]
    );
    c.send(&format!("{eku}: \"On\" | resultId=\"22\"\n"));
    let d = c.docs(2);
    let (fb, reply): (Vec<&Value>, Vec<&Value>) = d.iter().partition(|v| rid(v).is_none());
    assert_eq!(reply, [&serde_json::json!({"ResultId": "22"})], "{d:?}");
    assert_eq!(fb.len(), 1, "{d:?}");
    assert_eq!(
        at(fb[0], mode),
        &serde_json::json!({"Value": "On"}),
        "{d:?}"
    );
    // A later tagged request: no second copy of that change came before its reply.
    c.send("xstatus SystemUnit Product | resultId=\"23\"\n");
    let d = c.docs(1);
    assert_eq!(
        rid(&d[0]),
        Some("23"),
        "a duplicate feedback document: {d:?}"
    );
    c.send("xfeedback deregister /Configuration/SIP | resultId=\"24\"\n");
    assert_eq!(c.docs(1), [serde_json::json!({"ResultId": "24"})]);

    // Close without `bye`: the shell exits on EOF.
    c.s.close_stdin();
    c.s.wait_exit();
    let rest = &c.s.output()[c.pos..];
    assert!(
        rest.iter().all(u8::is_ascii_whitespace),
        "nothing but JSON: {:?}",
        String::from_utf8_lossy(rest)
    );
}

/// Some libraries open an exec channel whose command is `tsh`: an ordinary session.
#[test]
fn json_client_on_an_exec_channel_running_tsh() {
    let srv = sshd_or_skip!();
    let mut c = Client::connect(&srv, Some("tsh"));
    c.send("xstatus SystemUnit Product | resultId=\"a\"\n");
    c.send("xconfiguration SIP TLS Port: 5090 | resultId=\"b\"\n");
    c.send("xconfiguration SIP TLS Port | resultId=\"c\"\n");
    let d = c.docs(3);
    assert_eq!(
        at(&d[0], &["Status", "SystemUnit", "Product", "Value"]),
        "xsh"
    );
    assert_eq!(d[1], serde_json::json!({"ResultId": "b"}));
    assert_eq!(
        at(&d[2], &["Configuration", "SIP", "TLS", "Port", "Value"]),
        "5090"
    );
    c.s.close_stdin();
    let st = c.s.wait_exit();
    assert!(st.success(), "every request succeeded: {st}");
    assert!(srv
        .local("xconfiguration SIP TLS Port")
        .contains("\"5090\""));
}

/// `Shell IdleTimeout` ends a silent JSON session without writing anything that is not JSON.
#[test]
fn idle_timeout_in_json_mode_writes_nothing_but_json() {
    let root = tempfile::tempdir().unwrap();
    let xsh = env!("CARGO_BIN_EXE_xsh");
    let o = std::process::Command::new(xsh)
        .arg("--root")
        .arg(root.path())
        .args(["-c", "xConfiguration Shell IdleTimeout: 1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let mut cmd = std::process::Command::new(xsh);
    cmd.arg("--root").arg(root.path()).arg("--no-banner");
    cmd.env_remove("SSH_ORIGINAL_COMMAND")
        .env_remove("XSH_ROOT");
    let mut s = SshSession::spawn(cmd, "xsh idle json");
    s.send(b"xpreferences outputmode json\nxstatus SystemUnit Product | resultId=\"1\"\n");
    // Say nothing more; the shell ends the session.
    s.wait_exit();
    let out = s.output();
    let (docs, ends) = ssh_support::json_docs(&out);
    assert_eq!(docs.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    let rest = &out[ends.last().copied().unwrap_or(0)..];
    assert!(
        rest.iter().all(u8::is_ascii_whitespace),
        "nothing but JSON: {:?}",
        String::from_utf8_lossy(rest)
    );
}
