//! The fuzz targets' invariants (fuzz/fuzz_targets/*.rs) on stable, in the ordinary test run:
//! the seeds, every input line of the conformance corpus, and every input the fuzzer ever
//! crashed on (`fuzz/regressions/<target>/`, kept after the fix) go through the same checks, so
//! a finding stays fixed without cargo-fuzz. The long runs are `.ci/run`'s (RELIABILITY.md).

use std::path::{Path, PathBuf};

use xsh::store::Config;

fn manifest(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The files of a folder (none when it does not exist).
fn files(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(manifest(dir)) else {
        return Vec::new();
    };
    let mut out: Vec<_> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

/// `parse_line`'s invariant: no panic, and an error's column points into the line.
fn parse_line_holds(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = xsh::parse::parse_line(line) {
        let chars = line.chars().count();
        assert!(
            e.column <= chars + 1,
            "column {} past the end of a {chars}-character line: {line:?}",
            e.column
        );
    }
}

/// `xconf_load`'s invariant: no panic, and a rewrite keeps values, kept lines and comments.
fn xconf_load_holds(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some((rewritten, _)) = xsh::store::zone_paths::rewrite(&text) {
        let _ = Config::from_text(&rewritten);
    }
    let cfg = Config::from_bytes(data);
    let written = cfg.to_text();
    let again = Config::from_text(&written);
    assert_eq!(again.values, cfg.values, "values changed:\n{written}");
    assert_eq!(again.kept, cfg.kept, "kept lines changed:\n{written}");
    assert_eq!(again.comments, cfg.comments, "comments changed:\n{written}");
}

#[test]
fn parser_invariants_hold_on_seeds_corpus_and_past_findings() {
    let mut n = 0;
    for (_, text) in files("tests/corpus") {
        for line in String::from_utf8(text).unwrap().lines() {
            if let Some(input) = line.strip_prefix("> ") {
                parse_line_holds(input.as_bytes());
                n += 1;
            }
        }
    }
    for (p, b) in files("fuzz/regressions/parse_line") {
        println!("regression {}", p.display());
        parse_line_holds(&b);
        n += 1;
    }
    assert!(n > 100, "the corpus was read ({n} inputs)");
}

#[test]
fn loader_invariants_hold_on_seeds_and_past_findings() {
    let seeds = files("fuzz/seeds/xconf_load");
    assert!(
        !seeds.is_empty(),
        "the loader seeds are in fuzz/seeds/xconf_load"
    );
    for (p, b) in seeds
        .iter()
        .chain(files("fuzz/regressions/xconf_load").iter())
    {
        println!("input {}", p.display());
        xconf_load_holds(b);
    }
}
