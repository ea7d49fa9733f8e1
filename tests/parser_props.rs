//! Property tests of the parser and the input reader: no panic on any input, the reader always
//! terminates, and a configuration set rendered with the product's quoting parses back to the
//! same key and value. The seed is fixed, so every run checks the same cases.

use std::io::BufReader;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngSeed};

use xsh::parse::lex::{check_bytes, MAX_LINE};
use xsh::parse::{parse_line, Action};
use xsh::render::quote;
use xsh::schema::{schema, NodeId, ValueSpace};
use xsh::shell::input::Source;

fn config(cases: u32) -> PtConfig {
    PtConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x5eed_c0de),
        failure_persistence: None,
        ..PtConfig::default()
    }
}

/// Pieces of the language, so generated lines reach deep into the resolver, not only the lexer.
const PIECES: &[&str] = &[
    "xConfiguration",
    "xconf",
    "xStatus",
    "xstat",
    "xCommand",
    "xcom",
    "xPreferences",
    "OutputMode",
    "JSON",
    "xFeedback",
    "register",
    "list",
    "xHistory",
    "xGetXML",
    "echo",
    "on",
    "bye",
    "help",
    "SIP",
    "TLS",
    "Port",
    "Mode",
    "Certificate",
    "ExtendedKeyUsage",
    "Checking",
    "Zones",
    "Zone",
    "Name",
    "Peer",
    "Verify",
    "Subject",
    "SystemUnit",
    "Dump",
    "Folder",
    "Security",
    "Certificates",
    "CSR",
    "Generate",
    "Store",
    "CommonName",
    "SubjectAltName.1",
    "SubjectAltName.0",
    "S",
    "C",
    "T",
    "1",
    "0",
    "1000",
    "1001",
    "-1",
    "65535",
    ":",
    ": ",
    "?",
    "??",
    "\"",
    "\"a b\"",
    "\"\\\"\"",
    "\\",
    "|",
    "| resultId=\"r1\"",
    "| resultId=",
    "resultId",
    "=",
    "::1",
    "é",
    "\t",
    " ",
    "  ",
    "*c ",
    "#",
    "{5} ",
    ".",
    "On",
    "Off",
    "/Configuration/SIP",
    "/Status/Zones/Zone[1]",
];

fn piece_line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(PIECES).prop_map(str::to_string),
            1 => "[ -~]{0,6}",
            1 => any::<char>().prop_map(|c| c.to_string()),
        ],
        0..14,
    )
    .prop_map(|v| {
        // Mostly space-separated, sometimes glued.
        let mut s = String::new();
        for (i, p) in v.iter().enumerate() {
            if i > 0 && (i % 3 != 0) {
                s.push(' ');
            }
            s.push_str(p);
        }
        s
    })
}

/// Parses like the shell does and checks the error columns are inside the line.
fn parse_checked(bytes: &[u8]) {
    match check_bytes(bytes).and_then(|line| parse_line(line).map(|r| (line, r))) {
        Ok((_, r)) => {
            // The canonical form must render for every successful parse.
            let _ = r.action.to_string();
        }
        Err(e) => {
            let chars = String::from_utf8_lossy(bytes).chars().count();
            assert!(
                e.column <= chars.max(MAX_LINE) + 1,
                "column {} outside a line of {chars} characters: {e}",
                e.column
            );
            let _ = e.to_string();
        }
    }
}

/// Reads requests until EOF; each request consumes input, so the count is bounded.
fn drain(bytes: &[u8]) -> usize {
    let mut src = Source::new(BufReader::new(bytes));
    let mut n = 0;
    while let Ok(Some(inc)) = src.next_request() {
        if let Err(e) = &inc.parsed {
            let _ = e.to_string();
        }
        n += 1;
        assert!(
            n <= bytes.len() + 1,
            "the reader produced more requests than there are bytes"
        );
    }
    n
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        parse_checked(&bytes);
    }

    #[test]
    fn language_like_lines_never_panic(line in piece_line()) {
        parse_checked(line.as_bytes());
    }

    #[test]
    fn arbitrary_streams_terminate(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        drain(&bytes);
    }

    #[test]
    fn language_like_streams_terminate(lines in prop::collection::vec(piece_line(), 0..12),
                                       crlf in any::<bool>()) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let text = lines.join(sep);
        drain(text.as_bytes());
    }
}

/// A configuration leaf with a valid value: the words to type, the raw value and its stored form.
#[derive(Debug, Clone)]
struct SetCase {
    leaf: NodeId,
    inst: Vec<u32>,
    raw: String,
}

/// Characters values are drawn from: the ones quoting must survive, plus ordinary text.
const VALUE_CHARS: &[char] = &[
    'a', 'Z', '0', '9', ' ', ' ', '"', '\\', '?', ':', '|', '=', '.', '/', '#', '*', '{', '}',
    '\'', 'é', 'ß', '中', '😀', '-', '_', '@', '%', '[', ']',
];

fn value_for(space: &ValueSpace) -> BoxedStrategy<String> {
    match space {
        ValueSpace::Enum(words) => (prop::sample::select(words.clone()), 0..3u8)
            .prop_map(|(w, case)| match case {
                0 => w,
                1 => w.to_ascii_lowercase(),
                _ => w.to_ascii_uppercase(),
            })
            .boxed(),
        ValueSpace::Int { min, max } => {
            let (lo, hi) = (*min, *max);
            prop_oneof![Just(lo), Just(hi), lo..=hi]
                .prop_map(|n| n.to_string())
                .boxed()
        }
        ValueSpace::Str { min, max } => {
            let (lo, hi) = (*min, (*max).min(80));
            prop::collection::vec(prop::sample::select(VALUE_CHARS), lo..=hi.max(lo))
                .prop_map(|v| v.into_iter().collect())
                .boxed()
        }
        ValueSpace::AnyStr => "[a-z ]{0,10}".boxed(),
        ValueSpace::AnyInt => any::<i32>().prop_map(|n| n.to_string()).boxed(),
    }
}

fn set_case() -> impl Strategy<Value = SetCase> {
    let tree = &schema().config;
    let leaves: Vec<NodeId> = (0..tree.nodes.len())
        .filter(|&i| tree.nodes[i].leaf.is_some())
        .collect();
    prop::sample::select(leaves).prop_flat_map(move |leaf| {
        let tree = &schema().config;
        let ranges: Vec<(u32, u32)> = tree
            .instance_ancestors(leaf)
            .into_iter()
            .filter_map(|n| tree.nodes[n].instances)
            .collect();
        let inst = ranges
            .into_iter()
            .map(|(lo, hi)| prop_oneof![Just(lo), Just(hi), lo..=hi].boxed())
            .collect::<Vec<_>>();
        let space = tree.nodes[leaf].leaf.as_ref().unwrap().space.clone();
        (inst, value_for(&space)).prop_map(move |(inst, raw)| SetCase { leaf, inst, raw })
    })
}

proptest! {
    #![proptest_config(config(400))]

    /// `xConfiguration <words>: <quote(value)>` parses back to the same key and value, and so
    /// does the `*c` dump form and, for values without spaces or specials, the bare form.
    #[test]
    fn set_lines_round_trip(case in set_case(), tag in prop::option::of("[a-z0-9]{1,6}")) {
        let tree = &schema().config;
        let key = xsh::parse::Key { leaf: case.leaf, inst: case.inst.clone() };
        let words = key.words(tree);
        let space = &tree.nodes[case.leaf].leaf.as_ref().unwrap().space;
        let stored = space.validate(&case.raw).expect("generated values are valid");
        let mut line = format!("xConfiguration {words}: {}", quote(&case.raw));
        if let Some(t) = &tag {
            line.push_str(&format!(" | resultId={}", quote(t)));
        }
        let r = parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        match r.action {
            Action::ConfigSet { key: k, value, .. } => {
                prop_assert_eq!(&k, &key, "{}", line);
                prop_assert_eq!(&value, &stored, "{}", line);
            }
            other => prop_assert!(false, "{line}: parsed as {other}"),
        }
        prop_assert_eq!(r.result_id, tag);
        // The value as stored renders to a line that parses to itself (a dump reloads exactly).
        let dump = format!("xConfiguration {words}: {}", quote(&stored));
        let again = parse_line(&dump).map_err(|e| TestCaseError::fail(format!("{dump}: {e}")))?;
        prop_assert_eq!(again.action.to_string(), format!("config-set [{words}] = {stored:?}"));
        // A bare value (no quoting needed) parses the same.
        let bare_ok = !case.raw.is_empty()
            && !case.raw.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '|'))
            && case.raw != "?" && case.raw != "??";
        if bare_ok {
            let bare = format!("xconf {}: {}", words.to_lowercase(), case.raw);
            let b = parse_line(&bare).map_err(|e| TestCaseError::fail(format!("{bare}: {e}")))?;
            prop_assert_eq!(b.action.to_string(), format!("config-set [{words}] = {stored:?}"));
        }
    }
}
