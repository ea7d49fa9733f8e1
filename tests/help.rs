//! Help in the product's shape (issue 10 item 6): a bare `xConfiguration ?`, `xStatus ?` and
//! `xCommand ?` list the top-level nodes (not every leaf), a path lists what is below it, `??`
//! keeps every leaf with its details, `?` after any verb gives its usage, and `help <verb>
//! [<path>]` is the same as `<verb> [<path>] ?`, for every verb.

use std::io::Write;
use std::process::{Command, Stdio};

const XSH: &str = env!("CARGO_BIN_EXE_xsh");

/// Runs `xsh` on a fresh root with `input`; returns stdout.
fn run(input: &str) -> String {
    let root = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(XSH)
        .arg("--root")
        .arg(root.path())
        .arg("--no-banner")
        .env_remove("XSH_ROOT")
        .env_remove("SSH_ORIGINAL_COMMAND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xsh");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `*h` lines of one request's reply, which must end in OK.
fn help(line: &str) -> Vec<String> {
    let out = run(&format!("{line}\n"));
    assert!(out.trim_end().ends_with("OK"), "{line}: {out}");
    assert!(!out.contains("*e "), "{line}: {out}");
    out.lines()
        .filter_map(|l| l.strip_prefix("*h "))
        .map(str::to_string)
        .collect()
}

#[test]
fn bare_question_mark_lists_the_top_level_nodes() {
    for (line, verb, some) in [
        ("xconf ?", "xConfiguration", ["SIP", "Zones"]),
        ("xstatus ?", "xStatus", ["Agent", "Zones"]),
        ("xcommand ?", "xCommand", ["Security", "SystemUnit"]),
    ] {
        let h = help(line);
        assert!(h.len() <= 12, "{line}: {} lines: {h:?}", h.len());
        for l in &h {
            let rest = l
                .strip_prefix(&format!("{verb} "))
                .unwrap_or_else(|| panic!("{l}"));
            assert!(
                !rest.contains(' ') && !rest.contains(':'),
                "{line}: a leaf path: {l}"
            );
        }
        for w in some {
            assert!(h.contains(&format!("{verb} {w}")), "{line}: no {w}: {h:?}");
        }
    }
}

#[test]
fn deeper_paths_and_double_question_mark_keep_the_detail() {
    let sip = help("xconf SIP ?");
    assert!(
        sip.contains(&"xConfiguration SIP TLS Port: <1..65534>".to_string()),
        "{sip:?}"
    );
    let all = help("xconf ??");
    assert!(all.len() > 60, "?? lists every leaf with details: {all:?}");
    assert!(all.iter().any(|l| l.starts_with("    default ")), "{all:?}");
    assert!(
        all.contains(&"xConfiguration Logging Level: <Error/Warn/Info/Debug/Trace>".to_string())
    );
    let zones = help("xstatus Zones ?");
    assert!(
        zones
            .iter()
            .all(|l| l.starts_with("xStatus Zones Zone [1..1000] ")),
        "{zones:?}"
    );
}

#[test]
fn help_for_every_verb() {
    for (line, first) in [
        ("xhistory ?", "xHistory [<count>]"),
        ("help xhistory", "xHistory [<count>]"),
        ("xgetxml ?", "xGetXML <path>"),
        ("help xGetXML", "xGetXML <path>"),
        ("xfeedback ?", "xFeedback register <path>"),
        ("help xfeedback", "xFeedback register <path>"),
        ("xpref ?", "xPreferences OutputMode <Terminal/XML/JSON>"),
        (
            "help xpreferences",
            "xPreferences OutputMode <Terminal/XML/JSON>",
        ),
        ("echo ?", "echo <on/off>"),
        ("help echo", "echo <on/off>"),
        ("help bye", "bye (or exit, quit)"),
        ("help exit", "bye (or exit, quit)"),
        ("help xconf", "xConfiguration SystemUnit"),
        ("help xstatus", "xStatus SystemUnit"),
        ("help xcommand", "xCommand SystemUnit"),
        (
            "help",
            "xConfiguration [<path>] [<leaf>: <value>]   read or set configuration",
        ),
        (
            "help help",
            "xConfiguration [<path>] [<leaf>: <value>]   read or set configuration",
        ),
    ] {
        let h = help(line);
        assert_eq!(h.first().map(String::as_str), Some(first), "{line}: {h:?}");
    }
    let details = help("xhistory ??");
    assert!(
        details.len() > 1 && details[1].contains("default 20"),
        "{details:?}"
    );
    assert_eq!(
        help("help xconf SIP TLS Port"),
        help("xconf SIP TLS Port ?")
    );
}

#[test]
fn help_xcommand_security_lists_its_commands() {
    let h = help("help xcommand Security");
    assert_eq!(h, help("xcommand Security ?"));
    assert!(
        h.contains(&"xCommand Security Certificates CA List".to_string()),
        "{h:?}"
    );
    assert!(
        h.iter()
            .all(|l| l.starts_with("xCommand Security ") || l.starts_with("    ")),
        "{h:?}"
    );
    let out = run("help nosuchverb\n");
    assert!(
        out.contains("E020") && out.contains("unknown command 'nosuchverb'"),
        "{out}"
    );
}
