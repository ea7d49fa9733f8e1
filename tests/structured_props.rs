//! Property test: a request built from a structured path (`engine::structured`, what jsxapi,
//! putxml and the web forms send) and the same request typed as a line (`parse_line`) resolve to
//! the same action or to the same error (code, column, path, expected words). The paths are
//! walks of the schema with instance numbers in and out of range, mixed case, prefixes and
//! unknown words; values include quotes, backslashes, colons and non-ASCII text. Fixed seed.

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngSeed};

use xsh::engine::structured::{command, config_get, config_set, status_get, Step};
use xsh::engine::Request;
use xsh::error::ShellError;
use xsh::parse::{parse_line, Action};
use xsh::render::quote;
use xsh::schema::{schema, Tree};

fn config(cases: u32) -> PtConfig {
    PtConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x57_2c_70_e5),
        failure_persistence: None,
        ..PtConfig::default()
    }
}

/// How one path word is spelt.
#[derive(Debug, Clone)]
enum Spell {
    Exact,
    Lower,
    Prefix(usize),
    Junk(String),
}

fn spell(name: &str, how: &Spell) -> String {
    match how {
        Spell::Exact => name.to_string(),
        Spell::Lower => name.to_ascii_lowercase(),
        Spell::Prefix(n) => name[..(*n).clamp(1, name.len())].to_string(),
        Spell::Junk(j) => j.clone(),
    }
}

fn spelling() -> impl Strategy<Value = Spell> {
    prop_oneof![
        6 => Just(Spell::Exact),
        2 => Just(Spell::Lower),
        1 => (1usize..6).prop_map(Spell::Prefix),
        1 => "[A-Za-z][A-Za-z0-9]{0,7}".prop_map(Spell::Junk),
    ]
}

/// The path words down to node `id` of `tree`, with instance numbers (sometimes missing or out
/// of range), each word spelt by `how`, cut short after `keep` words.
fn path_words(tree: &Tree, id: usize, how: &[Spell], inst: &[u32], keep: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (k, n) in tree.ancestry(id).into_iter().enumerate() {
        let node = &tree.nodes[n];
        out.push(spell(&node.name, &how[k % how.len()]));
        if node.instances.is_some() && inst[k % inst.len()] != 0 {
            out.push(inst[k % inst.len()].to_string());
        }
    }
    out.truncate(keep.max(1));
    out
}

fn steps_of(words: &[String]) -> Vec<Step> {
    words
        .iter()
        .map(|w| match w.parse::<u32>() {
            Ok(n) => Step::Index(n),
            Err(_) => Step::Word(w.clone()),
        })
        .collect()
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ -~]{0,12}",
        2 => prop::sample::select(vec!["On", "off", "PEM", "5061", "0", "65535", "-1", "True", "a\"b", "x\\y", "Mode: Off", "caf\u{e9}", ""]).prop_map(str::to_string),
        1 => (0i64..70000).prop_map(|n| n.to_string()),
    ]
}

fn instances() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(
        prop_oneof![3 => 1u32..4, 1 => Just(0u32), 1 => Just(1001u32), 1 => Just(7u32)],
        1..4,
    )
}

fn agree(structured: Result<Request, ShellError>, line: &str) -> Result<(), TestCaseError> {
    let a: Result<Action, ShellError> = structured.map(|r| r.action);
    let b = parse_line(line).map(|r| r.action);
    prop_assert_eq!(a, b, "line: {}", line);
    Ok(())
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn config_reads_and_sets_agree(
        pick in any::<prop::sample::Index>(),
        how in prop::collection::vec(spelling(), 1..5),
        inst in instances(),
        keep in 1usize..12,
        v in value(),
        set in any::<bool>(),
    ) {
        let tree = &schema().config;
        let id = pick.index(tree.nodes.len());
        let words = path_words(tree, id, &how, &inst, keep);
        let steps = steps_of(&words);
        if set {
            agree(config_set(&steps, &v), &format!("xConfiguration {}: {}", words.join(" "), quote(&v)))?;
        } else {
            agree(config_get(&steps), &format!("xConfiguration {}", words.join(" ")))?;
        }
    }

    #[test]
    fn status_reads_agree(
        pick in any::<prop::sample::Index>(),
        how in prop::collection::vec(spelling(), 1..5),
        inst in instances(),
        keep in 1usize..12,
    ) {
        let tree = &schema().status;
        let id = pick.index(tree.nodes.len());
        let words = path_words(tree, id, &how, &inst, keep);
        agree(status_get(&steps_of(&words)), &format!("xStatus {}", words.join(" ")))?;
    }

    #[test]
    fn commands_agree(
        pick in any::<prop::sample::Index>(),
        how in prop::collection::vec(spelling(), 1..5),
        keep in 1usize..8,
        chosen in prop::collection::vec((any::<prop::sample::Index>(), spelling(), value()), 0..4),
    ) {
        let tree = &schema().commands;
        let id = pick.index(tree.nodes.len());
        let words = path_words(tree, id, &how, &[1], keep);
        let spec = tree.nodes[id].command.as_ref();
        let mut params: Vec<(String, Vec<String>)> = Vec::new();
        let mut line = format!("xCommand {}", words.join(" "));
        for (p, how, v) in &chosen {
            let name = match spec.filter(|s| !s.params.is_empty()) {
                Some(s) => {
                    let param = &s.params[p.index(s.params.len())];
                    // A value from the parameter's own words when it has some, so valid calls
                    // are common.
                    let words = param.space.words();
                    let v = if words.is_empty() { v.clone() } else { words[p.index(words.len())].clone() };
                    params.push((spell(&param.name, how), vec![v]));
                    params.last().map(|x| x.0.clone()).unwrap_or_default()
                }
                None => {
                    params.push((spell("Format", how), vec![v.clone()]));
                    params.last().map(|x| x.0.clone()).unwrap_or_default()
                }
            };
            let v = &params.last().map(|x| x.1[0].clone()).unwrap_or_default();
            line.push_str(&format!(" {name}: {}", quote(v)));
        }
        agree(command(&steps_of(&words), &params, None), &line)?;
    }
}
