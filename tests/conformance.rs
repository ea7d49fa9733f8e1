//! The conformance corpus: `tests/corpus/*.txt`, one case per input line, checked against the
//! parser. The format is described in `tests/corpus/README.txt`:
//!
//! ```text
//! # a comment
//! > xconf SIP TLS Port: 5061            literal input line, through check_bytes + parse_line
//! = config-set [SIP TLS Port] = "5061"  expected canonical parse (Action's Display)
//!
//! >> ab\xffc                            input with escapes (\n \r \t \0 \xHH \\ \{N:c})
//! ! E002@3                              expected error code @ column
//!
//! >s xcommand ... CA Add\nabc\n.\n      a byte stream through the input reader; first request
//! = command [Security Certificates CA Add]
//! + "abc\n"                             expected body (Rust debug string), optional
//! ```
//!
//! A parse with a result tag is written `= <display> | resultId="<tag>"`.
//! `CORPUS_SHOW=1 cargo test --test conformance -- --nocapture` prints what the parser gives for
//! every case, which helps when writing new ones.

use std::fmt::Write as _;
use std::fs;
use std::io::BufReader;
use std::path::Path;

use xsh::error::ShellError;
use xsh::parse::{parse_line, Request};
use xsh::shell::input::Source;

#[derive(Debug)]
enum Input {
    Line(Vec<u8>),
    Stream(Vec<u8>),
}

#[derive(Debug)]
struct Case {
    file: String,
    line: usize,
    input: Input,
    expect: Option<String>,
    body: Option<String>,
}

/// Resolves the escapes of `>>` and `>s` inputs.
fn unescape(s: &str, file: &str, line: usize) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b
            .get(i + 1)
            .unwrap_or_else(|| panic!("{file}:{line}: dangling backslash"));
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = &s[i..i + 2];
                out.push(
                    u8::from_str_radix(hex, 16)
                        .unwrap_or_else(|_| panic!("{file}:{line}: bad \\x{hex}")),
                );
                i += 2;
            }
            b'{' => {
                let end = s[i..]
                    .find('}')
                    .unwrap_or_else(|| panic!("{file}:{line}: unclosed \\{{"))
                    + i;
                let (n, ch) = s[i..end]
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{file}:{line}: \\{{N:c}} expected"));
                let n: usize = n
                    .parse()
                    .unwrap_or_else(|_| panic!("{file}:{line}: bad count {n}"));
                for _ in 0..n {
                    out.extend_from_slice(ch.as_bytes());
                }
                i = end + 1;
            }
            other => panic!("{file}:{line}: unknown escape \\{}", other as char),
        }
    }
    out
}

fn load(dir: &Path) -> Vec<Case> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("tests/corpus exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt") && !p.ends_with("README.txt"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(&path).unwrap();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let (tag, rest) = raw.split_once(' ').unwrap_or((raw, ""));
            match tag {
                ">" => cases.push(Case {
                    file: file.clone(),
                    line,
                    input: Input::Line(rest.as_bytes().to_vec()),
                    expect: None,
                    body: None,
                }),
                ">>" => cases.push(Case {
                    file: file.clone(),
                    line,
                    input: Input::Line(unescape(rest, &file, line)),
                    expect: None,
                    body: None,
                }),
                ">s" => cases.push(Case {
                    file: file.clone(),
                    line,
                    input: Input::Stream(unescape(rest, &file, line)),
                    expect: None,
                    body: None,
                }),
                "=" | "!" => {
                    let c = cases
                        .last_mut()
                        .unwrap_or_else(|| panic!("{file}:{line}: expectation before any input"));
                    assert!(
                        c.expect.is_none(),
                        "{file}:{line}: second expectation for one input"
                    );
                    c.expect = Some(format!("{tag} {rest}"));
                }
                "+" => {
                    let c = cases
                        .last_mut()
                        .unwrap_or_else(|| panic!("{file}:{line}: body before any input"));
                    c.body = Some(rest.to_string());
                }
                _ => panic!(
                    "{file}:{line}: a line starts with '>', '>>', '>s', '=', '!', '+' or '#'"
                ),
            }
        }
    }
    cases
}

fn show_ok(r: &Request) -> String {
    let mut s = format!("= {}", r.action);
    if let Some(id) = &r.result_id {
        write!(s, " | resultId={id:?}").unwrap();
    }
    s
}

fn show_err(e: &ShellError) -> String {
    format!("! {}@{}", e.code.as_str(), e.column)
}

/// What the implementation gives for a case: the expectation line and the body, if any.
fn actual(input: &Input) -> (String, Option<String>) {
    match input {
        Input::Line(bytes) => {
            let r = xsh::parse::lex::check_bytes(bytes).and_then(parse_line);
            match r {
                Ok(r) => (show_ok(&r), None),
                Err(e) => (show_err(&e), None),
            }
        }
        Input::Stream(bytes) => {
            let mut src = Source::new(BufReader::new(&bytes[..]));
            match src.next_request() {
                Ok(Some(inc)) => {
                    let body = inc.body.as_ref().map(|b| format!("{b:?}"));
                    match &inc.parsed {
                        Ok(r) => (show_ok(r), body),
                        Err(e) => (show_err(e), body),
                    }
                }
                Ok(None) => ("= <end of input>".into(), None),
                Err(e) => (format!("! io {e}"), None),
            }
        }
    }
}

#[test]
fn corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let cases = load(&dir);
    let show = std::env::var_os("CORPUS_SHOW").is_some();
    let mut failures = Vec::new();
    for c in &cases {
        let (got, body) = actual(&c.input);
        if show {
            println!(
                "{}:{}: {got}{}",
                c.file,
                c.line,
                body.as_deref()
                    .map(|b| format!("\n  + {b}"))
                    .unwrap_or_default()
            );
        }
        match &c.expect {
            None => failures.push(format!("{}:{}: no expectation; got {got}", c.file, c.line)),
            Some(e) if *e != got => failures.push(format!(
                "{}:{}: expected {e}\n{:>w$}      got {got}",
                c.file,
                c.line,
                "",
                w = c.file.len()
            )),
            Some(_) => {}
        }
        if let Some(b) = &c.body {
            if body.as_deref() != Some(b.as_str()) {
                failures.push(format!(
                    "{}:{}: expected body {b}, got {body:?}",
                    c.file, c.line
                ));
            }
        }
    }
    assert!(
        cases.len() >= 120,
        "the corpus should hold at least 120 cases, it holds {}",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every code the parser can produce from one line appears in the corpus at least once.
#[test]
fn corpus_covers_every_line_error_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let all: String = load(&dir)
        .iter()
        .filter_map(|c| c.expect.clone())
        .collect::<Vec<_>>()
        .join("\n");
    for code in [
        "E001", "E002", "E003", "E004", "E010", "E011", "E012", "E020", "E021", "E030", "E031",
        "E032", "E033", "E034", "E040", "E041", "E050", "E051", "E052", "E060", "E061",
    ] {
        assert!(
            all.contains(&format!("! {code}@")),
            "no corpus case expects {code}"
        );
    }
}
