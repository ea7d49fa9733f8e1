//! Snapshots of the exact bytes the real `xsh` binary writes, for every verb in every output mode
//! (xapi.md). Each test runs the binary on a fresh root with stdin from a file (so the whole input
//! is one batch and the output does not depend on timing), then snapshots a transcript:
//! the arguments, the input, the output followed by `[eof]` (so a missing or extra final newline
//! shows), and the exit status. Only values that change from run to run are replaced: the root
//! folder (`[ROOT]`), uptime, audit times, session ids and dump file time stamps.
//!
//! To update after an intended change: `INSTA_UPDATE=always cargo test --test shell_snapshots`,
//! then review every changed `tests/snapshots/*.snap` against xapi.md before committing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// A fresh root with a known host name and the running user's group as the admin group (so the
/// session is read-write whoever runs the tests).
struct Xsh {
    dir: TempDir,
}

struct Out {
    stdout: String,
    code: i32,
}

impl Xsh {
    fn new() -> Xsh {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("config")).unwrap();
        let group = nix::unistd::Group::from_gid(nix::unistd::getgid())
            .ok()
            .flatten()
            .map(|g| g.name)
            .expect("the test user has a primary group");
        fs::write(
            root.join("config/xconf.txt"),
            format!(
                "xConfiguration SystemUnit Name: \"snap-host\"\nxConfiguration Shell AdminGroup: \"{group}\"\n"
            ),
        )
        .unwrap();
        Xsh { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Runs `xsh --root ROOT <args>` with `stdin` (where `{ROOT}` stands for the root folder).
    fn run(&self, args: &[&str], stdin: &str) -> Out {
        let root = self.root();
        let input = stdin.replace("{ROOT}", &root.display().to_string());
        let stdin_path = self.dir.path().join("stdin.txt");
        fs::write(&stdin_path, input.as_bytes()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_xsh"))
            .arg("--root")
            .arg(&root)
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("TERM", "dumb")
            // The audit user is the real uid's name (never $USER): redacted as [USER].
            .env("USER", "snapuser")
            .stdin(Stdio::from(fs::File::open(&stdin_path).unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("xsh runs");
        let stdout = String::from_utf8(out.stdout).expect("xsh writes UTF-8");
        assert!(
            !stdout.contains('\r'),
            "xsh must write \\n, never \\r\\n:\n{stdout}"
        );
        assert!(
            !stdout.contains('\x1b'),
            "no escape sequences in non-interactive output:\n{stdout}"
        );
        assert!(
            stdout.is_empty() || stdout.ends_with('\n'),
            "the last line ends in \\n:\n{stdout}"
        );
        Out {
            stdout: redact(&stdout, &root),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// The transcript that is snapshotted.
    fn transcript(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        transcript(args, stdin, &out)
    }
}

fn transcript(args: &[&str], stdin: &str, out: &Out) -> String {
    let mut s = format!("$ xsh --root [ROOT] {}\n", args.join(" "));
    s.push_str("--- stdin\n");
    s.push_str(&stdin.replace("{ROOT}", "[ROOT]").replace('\r', "\\r"));
    if !stdin.is_empty() && !stdin.ends_with('\n') {
        s.push_str("[no newline]\n");
    }
    s.push_str("--- stdout\n");
    s.push_str(&out.stdout);
    s.push_str("[eof]\n");
    s.push_str(&format!("--- exit status {}\n", out.code));
    s
}

/// Replaces what changes between runs; everything else is kept byte for byte.
fn redact(s: &str, root: &Path) -> String {
    let mut s = s.replace(&root.display().to_string(), "[ROOT]");
    for (key, with) in [
        ("Uptime", "[UPTIME]"),
        ("Time", "[TIME]"),
        ("Session", "[SESSION]"),
        ("AdminGroup", "[GROUP]"),
        ("User", "[USER]"),
    ] {
        s = redact_field(&s, key, with);
    }
    // Dump file names: `xconf_dump_<host>_<YYYY-MM-DD_HH_MM_SS>.txt`.
    let marker = "_dump_snap-host_";
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let ts_len = "2026-01-01_00_00_00".len();
        if rest.len() >= ts_len {
            out.push_str("[TS]");
            rest = &rest[ts_len..];
        }
    }
    out.push_str(rest);
    out
}

/// Replaces the value of a field `key` in its three spellings: terminal `Key: "v"`, JSON
/// `"Key":{"Value":"v"}`, XML `<Key>v<` or `<Key attr="...">v<`.
fn redact_field(s: &str, key: &str, with: &str) -> String {
    let mut s = s.to_string();
    let openers = [
        (format!(" {key}: \""), '"'),
        (format!("\"{key}\":{{\"Value\":\""), '"'),
        (format!("<{key}>"), '<'),
        (format!("<{key} "), '<'),
    ];
    for (open, close) in openers {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find(&open) {
            let mut start = i + open.len();
            if open.ends_with(' ') && open.starts_with('<') {
                // `<Key attr="...">`: the value starts after the tag's `>`.
                match rest[start..].find('>') {
                    Some(j) => start += j + 1,
                    None => break,
                }
            }
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(close).unwrap_or(rest.len());
            out.push_str(with);
            rest = &rest[end..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

/// Lines of a script in one mode: the mode switch first.
fn in_mode(mode: &str, script: &str) -> String {
    format!("xPreferences OutputMode {mode}\n{script}")
}

/// One line of every verb and the main error classes; run in each output mode.
const EVERY_VERB: &str = r#"xConfiguration SIP TLS
xConfiguration SIP TLS Port
xconf Zones Zone 3 Name: "Edge"
xconf Zones Zone 3 Name
xconf Zones Zone 3 Neighbor SIP
xConfiguration SIP TLS Port: 5070
xconf SIP TLS Port
xconf Nope
xconf SIP TLS Port: 0
xStatus SystemUnit
xstat SystemUnit Software
xCommand SystemUnit Dump Folder: "{ROOT}/dumps"
xCommand Configuration Reset Path: "SIP TLS Port"
xcom SystemUnit Dump
xconf SIP TLS Port ?
xFeedback register /Configuration/SIP/TLS
xFeedback list
xFeedback deregisterall
xHistory 1
xGetXML /Configuration/SIP/TLS/Port
echo on
foo
"#;

#[test]
fn every_verb_terminal() {
    let x = Xsh::new();
    insta::assert_snapshot!(
        "every_verb_terminal",
        x.transcript(&["--no-banner"], &in_mode("Terminal", EVERY_VERB))
    );
}

#[test]
fn every_verb_xml() {
    let x = Xsh::new();
    insta::assert_snapshot!(
        "every_verb_xml",
        x.transcript(&["--no-banner"], &in_mode("XML", EVERY_VERB))
    );
}

#[test]
fn every_verb_json() {
    let x = Xsh::new();
    let out = x.run(&["--no-banner"], &in_mode("JSON", EVERY_VERB));
    assert_json_only(&out.stdout);
    insta::assert_snapshot!(
        "every_verb_json",
        transcript(&["--no-banner"], &in_mode("JSON", EVERY_VERB), &out)
    );
}

/// In JSON mode every line is one JSON document in 7-bit ASCII, and nothing else is written.
fn assert_json_only(stdout: &str) {
    for line in stdout.lines() {
        assert!(line.is_ascii(), "JSON output must be ASCII: {line}");
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {line}"));
    }
}

#[test]
fn banner_and_empty_session() {
    let x = Xsh::new();
    insta::assert_snapshot!("banner", x.transcript(&[], ""));
}

#[test]
fn banner_then_command() {
    let x = Xsh::new();
    insta::assert_snapshot!(
        "banner_then_command",
        x.transcript(
            &[],
            "echo off\nxconf SIP TLS Certificate ExtendedKeyUsage Checking Mode\n"
        )
    );
}

#[test]
fn config_read_terminal() {
    let x = Xsh::new();
    let script = r#"xConfiguration SIP
xconfiguration sip tls certificate extendedkeyusage checking mode
xconf S T C E C M
xconf Zones Zone 3
xconf Zones Zone
xconf Zones Zone 2 Name: "b"
xconf Zones Zone 1 Name: "a"
xconf Zones Zone
xconf Zones Zone 1000 Neighbor SIP TLS
xconf XCP
xconf Security
"#;
    insta::assert_snapshot!(
        "config_read_terminal",
        x.transcript(&["--no-banner"], script)
    );
}

#[test]
fn config_whole_tree_terminal() {
    let x = Xsh::new();
    insta::assert_snapshot!(
        "config_whole_tree_terminal",
        x.transcript(&["--no-banner"], "xConfiguration\n")
    );
}

#[test]
fn config_set_terminal() {
    let x = Xsh::new();
    let script = r#"xconfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: ON
xconf SIP TLS Certificate ExtendedKeyUsage Checking Mode
xconf SystemUnit Description: "say \"hi\" to C:\temp\\x ? | resultId=\"no\""
xconf SystemUnit Description
xconf Agent Listen Address: ::1
xconf Agent Listen Address
xconf Logging Level : debug
xconf Logging Level
xconf SIP TLS Port: 05061
xconf SIP TLS Port
xconf SystemUnit Name: ""
xconf SystemUnit Name
"#;
    insta::assert_snapshot!(
        "config_set_terminal",
        x.transcript(&["--no-banner"], script)
    );
    // A set is durable: a new process reads it back.
    let again = x.run(
        &[
            "-c",
            "xconf SIP TLS Certificate ExtendedKeyUsage Checking Mode",
        ],
        "",
    );
    assert_eq!(
        again.stdout,
        "*c xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: \"On\"\nOK\n"
    );
}

#[test]
fn errors_terminal() {
    let x = Xsh::new();
    let script = r#"xconf SIP TLS Prot
xconf S
xconf Zones Zone Name: "x"
xconf Zones Zone 1001 Name: "x"
xconf SIP TLS Port: 65535
xconf SIP TLS Certificate ExtendedKeyUsage Checking Mode: maybe
xconf SIP TLS Port:
xconf SIP TLS: On
xconf XCP TLS Certificate CVS EnableServerEkuUpload: On
xconf SystemUnit Name: "unterminated
xconf SystemUnit Description: two words
xstatus SystemUnit | resultId
xconf SystemUnit Name: "x" | foo
show config
xc SIP
xstatus Nope
xstatus SystemUnit Name: "x"
xcommand Nope
xcommand Security Certificates CSR Generate Store: Both CommonName: x
xcommand SystemUnit Dump Nope: 1
echo maybe
"#;
    insta::assert_snapshot!("errors_terminal", x.transcript(&["--no-banner"], script));
    // Nothing was stored by any of the failed requests.
    let after = x.run(&["-c", "xconf SIP TLS Port"], "");
    assert_eq!(
        after.stdout,
        "*c xConfiguration SIP TLS Port: \"5061\"\nOK\n"
    );
}

#[test]
fn errors_xml_and_json() {
    let script = r#"xconf SIP TLS Prot
xconf Zones Zone 1001 Name: "x"
xconf SIP TLS Port: 65535 | resultId="iv"
xconf XCP TLS Certificate CVS EnableServerEkuUpload: On
xconf SystemUnit Name: "unterminated
xstatus SystemUnit | resultId
show config | resultId="sc"
xcommand Security Certificates CSR Generate Store: Both CommonName: x
"#;
    let x = Xsh::new();
    insta::assert_snapshot!(
        "errors_xml",
        x.transcript(&["--no-banner"], &in_mode("XML", script))
    );
    let out = x.run(&["--no-banner"], &in_mode("JSON", script));
    assert_json_only(&out.stdout);
    insta::assert_snapshot!(
        "errors_json",
        transcript(&["--no-banner"], &in_mode("JSON", script), &out)
    );
}

#[test]
fn status_terminal() {
    let x = Xsh::new();
    let script = "xStatus SystemUnit\nxstatus systemunit software version\nxstatus SystemUnit Uptime\nxstatus SystemUnit Software ?\n";
    insta::assert_snapshot!("status_terminal", x.transcript(&["--no-banner"], script));
}

#[test]
fn commands_terminal() {
    let x = Xsh::new();
    let script = r#"xconf SIP TLS Port: 5070
xCommand SystemUnit Dump Folder: "{ROOT}/dumps"
xCommand Configuration Reset Path: "SIP TLS Port"
xconf SIP TLS Port
xCommand Configuration Reset Path: "Nope"
xCommand SystemUnit Dump
xCommand SystemUnit Dump Folder: ""
xCommand SystemUnit Dump Folder /tmp
xCommand SystemUnit
"#;
    insta::assert_snapshot!("commands_terminal", x.transcript(&["--no-banner"], script));
    let dumps: Vec<String> = fs::read_dir(x.root().join("dumps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(dumps.len(), 4, "{dumps:?}");
}

#[test]
fn help_terminal() {
    let x = Xsh::new();
    let script = r#"?
??
help
xconf ?
xconf SIP TLS ?
xconf SIP TLS ??
xconf SIP TLS Port ?
xconf SIP TLS Port: ?
xconf S?
xconf Zones Zone ?
xconf Zones Zone 3 T?
xconf XCP ??
xstatus SystemUnit ?
xstatus SystemUnit Software ??
xcommand SystemUnit ?
xcommand Security Certificates CSR Generate ?
xcommand Security Certificates CSR Generate ??
xcommand SystemUnit Dump Fol?
xpref ?
"#;
    insta::assert_snapshot!("help_terminal", x.transcript(&["--no-banner"], script));
}

#[test]
fn help_xml_and_json() {
    let script = "xconf SIP TLS Port ?\nxcommand SystemUnit Dump ?? | resultId=\"h\"\n";
    let x = Xsh::new();
    insta::assert_snapshot!(
        "help_xml",
        x.transcript(&["--no-banner"], &in_mode("XML", script))
    );
    let out = x.run(&["--no-banner"], &in_mode("JSON", script));
    assert_json_only(&out.stdout);
    insta::assert_snapshot!(
        "help_json",
        transcript(&["--no-banner"], &in_mode("JSON", script), &out)
    );
}

#[test]
fn preferences_echo_and_bye() {
    let x = Xsh::new();
    let script = r#"echo off
echo on
xPreferences OutputMode XML
xPreferences OutputMode JSON
xPreferences OutputMode JSON | resultId="j"
echo off
xPreferences OutputMode Terminal
xpref outputmode yaml
xpref outputmode terminal | resultId="t"
bye
xconf SIP TLS Port
"#;
    insta::assert_snapshot!(
        "preferences_echo_bye",
        x.transcript(&["--no-banner"], script)
    );
}

#[test]
fn feedback_register_list() {
    let x = Xsh::new();
    let script = r#"xFeedback list
xfeedback register /Configuration/SIP/TLS
xfeedback register /status/zones/zone[1]
xFeedback register /Configuration/SIP/TLS
xFeedback list
xfeedback deregister /Configuration/SIP/TLS
xFeedback list | resultId="l"
xfeedback register /Configuration/Nope
xfeedback register /Event/CallSuccessful
xfeedback deregisterall
xFeedback list
"#;
    insta::assert_snapshot!("feedback_terminal", x.transcript(&["--no-banner"], script));
    let out = x.run(&["--no-banner"], &in_mode("JSON", script));
    assert_json_only(&out.stdout);
    insta::assert_snapshot!(
        "feedback_json",
        transcript(&["--no-banner"], &in_mode("JSON", script), &out)
    );
}

#[test]
fn history_in_three_modes() {
    let x = Xsh::new();
    // The changes are made by earlier processes, so the audit log holds them when xHistory runs.
    let set = x.run(
        &["--no-banner"],
        "xconf SIP TLS Port: 5070\nxconf SystemUnit Description: \"first\"\n",
    );
    assert_eq!(set.code, 0, "{}", set.stdout);
    let set = x.run(&["-c", "xconf SIP TLS Port: 5071"], "");
    assert_eq!(set.code, 0, "{}", set.stdout);
    insta::assert_snapshot!(
        "history_terminal",
        x.transcript(&["--no-banner"], "xHistory 2\nxhistory ten\n")
    );
    insta::assert_snapshot!(
        "history_xml",
        x.transcript(&["--no-banner"], &in_mode("XML", "xHistory 2\n"))
    );
    let out = x.run(
        &["--no-banner"],
        &in_mode("JSON", "xHistory 2 | resultId=\"h\"\n"),
    );
    assert_json_only(&out.stdout);
    insta::assert_snapshot!(
        "history_json",
        transcript(
            &["--no-banner"],
            &in_mode("JSON", "xHistory 2 | resultId=\"h\"\n"),
            &out
        )
    );
}

#[test]
fn getxml() {
    let x = Xsh::new();
    let script = "xconf Zones Zone 2 Name: \"z&<2>\"\nxGetXML /Configuration/Zones\nxgetxml /Status/SystemUnit/Software\nxGetXML /Configuration/Nope\n";
    insta::assert_snapshot!("getxml", x.transcript(&["--no-banner"], script));
}

#[test]
fn result_id_tagging_in_three_modes() {
    let script = r#"xconf SIP TLS Port: 5070 | resultId="set"
xconf SIP TLS Port | resultId="get"
xstatus SystemUnit Software | resultId="stat"
xconf SIP TLS Port: 0 | resultId="bad"
xcommand Configuration Reset Path: "SIP TLS Port" | resultId="cmd"
xconf SIP TLS Mode ? | resultId="help"
echo on | resultId="echo"
| resultId="empty"
xconf SIP TLS Port | resultId="quote \"and\" \\ é"
"#;
    let x = Xsh::new();
    insta::assert_snapshot!("result_id_terminal", x.transcript(&["--no-banner"], script));
    insta::assert_snapshot!(
        "result_id_xml",
        x.transcript(&["--no-banner"], &in_mode("XML", script))
    );
    let out = x.run(&["--no-banner"], &in_mode("JSON", script));
    assert_json_only(&out.stdout);
    insta::assert_snapshot!(
        "result_id_json",
        transcript(&["--no-banner"], &in_mode("JSON", script), &out)
    );
}

#[test]
fn json_is_ascii_only() {
    let x = Xsh::new();
    let script = "xconf Zones Zone 2 Name: \"Zürich ☃ 😀\"\nxconf Zones Zone 2 Name\nxconf Zones Zone 2 Name: \"\u{e9}\u{e9}\" | resultId=\"\u{e9}\"\nxconf SystemUnit Name: \"\u{e9}\u{1}\"\n";
    let out = x.run(&["--no-banner"], &in_mode("JSON", script));
    assert_json_only(&out.stdout);
    assert!(out.stdout.contains(r#""Z\u00fcrich \u2603 \ud83d\ude00""#));
    insta::assert_snapshot!(
        "json_ascii_only",
        transcript(&["--no-banner"], &in_mode("JSON", script), &out)
    );
}

#[test]
fn length_prefixed_requests() {
    let req = "xconf SIP TLS Port | resultId=\"lp\"\n";
    let script = format!(
        "{{{}}} \n{req}xpreferences outputmode json\n{{{}}} \n{req}xstatus SystemUnit Software\n{{999}} \nxstatus\n",
        req.len(),
        req.len()
    );
    let x = Xsh::new();
    insta::assert_snapshot!("length_prefixed", x.transcript(&["--no-banner"], &script));
}

#[test]
fn multi_line_body_and_dump_restore_lines() {
    let x = Xsh::new();
    let script = "# a comment line\n*c xConfiguration SIP TLS Port: \"5072\"\n*c xConfiguration Zones Zone 4 Name: \"a \\\"q\\\"\"\nxconf SIP TLS Port\nxconf Zones Zone 4 Name\nxconfiguration SIP TLS Port: 5073\r\nxconf SIP TLS Port\r\n";
    insta::assert_snapshot!(
        "comments_dump_lines_crlf",
        x.transcript(&["--no-banner"], script)
    );
}

#[test]
fn exit_status_and_stop_on_error() {
    let ok = "xconf SIP TLS Port: 5070\nxconf SIP TLS Port\n";
    let failing =
        "xconf SIP TLS Port: 5070\nxconf SIP TLS Port: 0\nxconf SIP TLS Mode: Off\nxconf SIP TLS\n";
    let x = Xsh::new();
    let all_ok = x.run(&["--no-banner"], ok);
    assert_eq!(all_ok.code, 0);
    insta::assert_snapshot!("exit_0_all_ok", transcript(&["--no-banner"], ok, &all_ok));
    let x = Xsh::new();
    let goes_on = x.run(&["--no-banner"], failing);
    assert_eq!(goes_on.code, 1);
    insta::assert_snapshot!(
        "exit_1_goes_on",
        transcript(&["--no-banner"], failing, &goes_on)
    );
    let x = Xsh::new();
    let stops = x.run(&["--no-banner", "--stop-on-error"], failing);
    assert_eq!(stops.code, 1);
    insta::assert_snapshot!(
        "exit_1_stop_on_error",
        transcript(&["--no-banner", "--stop-on-error"], failing, &stops)
    );
    // The set before the failure is durable; the one after it never ran.
    let after = x.run(&["-c", "xconf SIP TLS Port\nxconf SIP TLS Mode"], "");
    assert_eq!(
        after.stdout,
        "*c xConfiguration SIP TLS Port: \"5070\"\nOK\n*c xConfiguration SIP TLS Mode: \"On\"\nOK\n"
    );
}

#[test]
fn dash_c_one_command() {
    let x = Xsh::new();
    let mut s = String::new();
    for cmd in [
        "xconf SIP TLS Port",
        "xconf SIP TLS Port: 0",
        "foo",
        "xpreferences outputmode json\nxconf SIP TLS Port",
    ] {
        let out = x.run(&["-c", cmd], "xconf SIP TLS Mode\n");
        s.push_str(&transcript(&["-c", &format!("{cmd:?}")], "", &out));
        s.push('\n');
    }
    insta::assert_snapshot!("dash_c", s);
}

#[test]
fn unknown_verb_ends_with_command_not_recognized() {
    let x = Xsh::new();
    let out = x.run(&["--no-banner"], "xfoo bar\n");
    assert!(
        out.stdout.ends_with("\nCommand not recognized.\n"),
        "{}",
        out.stdout
    );
    assert_eq!(out.code, 1);
}
