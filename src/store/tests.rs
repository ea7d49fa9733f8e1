//! The store's own tests: transactions, the cache, crash leftovers, hand edits.

use super::*;
use crate::parse::{parse_line, Action};

fn set(c: &mut Config, line: &str) {
    match parse_line(line).unwrap().action {
        Action::ConfigSet { key, value, .. } => {
            c.set(key, value);
        }
        a => panic!("{a:?}"),
    }
}

#[test]
fn diff_is_the_naive_diff() {
    let mut before = Config::default();
    let mut after = Config::default();
    for line in [
        "xConfiguration SIP TLS Port: 5062",
        "xConfiguration Zones Zone 1 Name: a",
        "xConfiguration Zones Zone 2 Name: b",
        "xConfiguration Zones Zone 9 Name: c",
    ] {
        set(&mut before, line);
    }
    for line in [
        "xConfiguration SIP TLS Port: 5063",
        "xConfiguration Zones Zone 2 Name: b",
        "xConfiguration Zones Zone 3 Name: new",
        "xConfiguration Tunnel Port: 2300",
    ] {
        set(&mut after, line);
    }
    // A stored default (a hand edit) that is dropped is no change.
    let k = after.values.keys().next().unwrap().clone();
    before.values.insert(
        crate::parse::Key {
            leaf: k.leaf,
            inst: vec![],
        },
        "x".into(),
    );
    let tree = &schema().config;
    let default_of =
        |k: &crate::parse::Key| tree.nodes[k.leaf].leaf.as_ref().unwrap().default.clone();
    let mut naive = Vec::new();
    for (k, v) in &after.values {
        let old = before
            .values
            .get(k)
            .cloned()
            .unwrap_or_else(|| default_of(k));
        if &old != v {
            naive.push(Change {
                key: k.clone(),
                old,
                new: v.clone(),
            });
        }
    }
    for (k, v) in &before.values {
        if !after.values.contains_key(k) && &default_of(k) != v {
            naive.push(Change {
                key: k.clone(),
                old: v.clone(),
                new: default_of(k),
            });
        }
    }
    assert_eq!(diff(&before.values, &after), naive);
    assert_eq!(naive.len(), 5, "{naive:?}");
}

#[test]
fn transact_writes_generation_and_audit() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let who = Who {
        user: "alice".into(),
        from: "local".into(),
        session: "1".into(),
    };
    let (_, ch, g) = s
        .transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5062"))
        .unwrap();
    assert_eq!((ch.len(), g), (1, 1));
    let (_, ch, g) = s
        .transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5062"))
        .unwrap();
    assert_eq!((ch.len(), g), (0, 1));
    let loaded = s.load().unwrap();
    assert_eq!(loaded.generation, 1);
    assert_eq!(loaded.values.len(), 1);
    let h = s.history(10).unwrap();
    assert_eq!(h[0].old, "5061");
    assert_eq!(h[0].new, "5062");
    // Back to the default: the line disappears.
    s.transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5061"))
        .unwrap();
    assert!(s.load().unwrap().values.is_empty());
}

#[test]
fn cached_configuration_equals_a_fresh_parse() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let who = Who::default();
    for line in [
        "xConfiguration SystemUnit Name: \"a \\\"q\\\" b\\\\c  d\"",
        "xConfiguration Zones Zone 3 Name: \"caf\u{e9} \u{20ac}\"",
        "xConfiguration Zones Zone 1000 Neighbor SIP Port: 6000",
    ] {
        s.transact(&who, |c| set(c, line)).unwrap();
        let (bytes, cached) = s.read_locked().unwrap();
        let fresh = Config::from_bytes(&bytes);
        assert_eq!(cached, fresh);
        s.remember(bytes, cached);
    }
    // Another writer's bytes are parsed, not taken from the cache.
    let other = Store::open(d.path()).unwrap();
    other
        .transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5070"))
        .unwrap();
    let (_, c) = s.read_locked().unwrap();
    assert_eq!(c.values.len(), 4);
    assert_eq!(c.generation, 4);
}

#[test]
fn bad_lines_are_kept_and_reported() {
    let text = "xConfiguration SIP TLS Port: \"5062\"\nxConfiguration SIP TLS Nope: 1\nxConfiguration XCP TLS Certificate CVS EnableServerEkuUpload: On\n";
    let c = Config::from_text(text);
    assert_eq!(c.values.len(), 2);
    assert_eq!(c.kept, vec!["xConfiguration SIP TLS Nope: 1".to_string()]);
    assert_eq!(c.problems.len(), 2);
    assert_eq!(c.problems[0].line, 2);
    assert!(c.to_text().contains("Nope"));
}

#[test]
fn records_of_a_crashed_writer_are_rolled_back() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let who = Who {
        user: "a".into(),
        from: "local".into(),
        session: "1".into(),
    };
    s.transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5062"))
        .unwrap();
    // A writer that died after its audit append (generation 2) but before its rename.
    let ghost = Change {
        key: s.load().unwrap().values.keys().next().unwrap().clone(),
        old: "5062".into(),
        new: "5099".into(),
    };
    s.append_audit(&who, 2, &[ghost], "applied").unwrap();
    let (_, _, g) = s
        .transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5063"))
        .unwrap();
    assert_eq!(g, 3);
    let h = s.history(10).unwrap();
    let news: Vec<&str> = h
        .iter()
        .filter(|r| r.result == "applied")
        .map(|r| r.new.as_str())
        .collect();
    assert_eq!(news, ["5062", "5063"]);
}

#[test]
fn crashed_writer_is_rolled_back_behind_many_refusals() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let who = Who::default();
    s.transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5062"))
        .unwrap();
    let ghost = Change {
        key: s.load().unwrap().values.keys().next().unwrap().clone(),
        old: "5062".into(),
        new: "5099".into(),
    };
    s.append_audit(&who, 2, &[ghost], "applied").unwrap();
    // More than the 64 KiB tail of refused attempts after the crashed writer's record.
    for _ in 0..1000 {
        s.audit_refused(&who, "SIP TLS Port", "5070", "read-only role")
            .unwrap();
    }
    let (_, _, g) = s
        .transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5063"))
        .unwrap();
    assert_eq!(g, 3, "the crashed writer's generation was reused");
    let h = s.history(10_000).unwrap();
    assert!(!h.iter().any(|r| r.new == "5099"), "{h:?}");
}

#[test]
fn crashed_writer_is_rolled_back_behind_an_applied_note() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let who = Who::default();
    s.transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5062"))
        .unwrap();
    let ghost = Change {
        key: s.load().unwrap().values.keys().next().unwrap().clone(),
        old: "5062".into(),
        new: "5099".into(),
    };
    s.append_audit(&who, 2, &[ghost], "applied").unwrap();
    // A certificate change after the crash: a note stamped with the current generation (1).
    s.audit_note(&who, "Security Certificates CA Add", "", "CN=x", "applied")
        .unwrap();
    let (_, _, g) = s
        .transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5063"))
        .unwrap();
    assert_eq!(g, 3, "the crashed writer's generation was reused");
    let h = s.history(10_000).unwrap();
    assert!(!h.iter().any(|r| r.new == "5099"), "{h:?}");
}

#[test]
fn a_hand_written_file_without_header_keeps_history() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let who = Who {
        user: "a".into(),
        from: "local".into(),
        session: "1".into(),
    };
    s.transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5062"))
        .unwrap();
    s.transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5063"))
        .unwrap();
    // Configuration management rewrites the file without our header.
    std::fs::write(s.config_path(), "xConfiguration SIP TLS Port: \"5064\"\n").unwrap();
    let (_, _, g) = s
        .transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5065"))
        .unwrap();
    assert_eq!(g, 3);
    let h = s.history(10).unwrap();
    let news: Vec<&str> = h
        .iter()
        .filter(|r| r.result == "applied")
        .map(|r| r.new.as_str())
        .collect();
    assert_eq!(news, ["5062", "5063", "5065"]);
}

#[test]
fn operator_comments_survive_and_latin1_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let who = Who {
        user: "a".into(),
        from: "local".into(),
        session: "1".into(),
    };
    let mut text =
        b"# site: edge-7, managed by hand\nxConfiguration SystemUnit Name: \"Caf".to_vec();
    text.extend_from_slice(b"\xe9\"\n");
    std::fs::write(s.config_path(), &text).unwrap();
    let c = s.load().unwrap();
    assert_eq!(c.problems.len(), 1);
    assert_eq!(c.problems[0].line, 2);
    assert!(!c.problems[0].is_error);
    s.transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5062"))
        .unwrap();
    let after = std::fs::read_to_string(s.config_path()).unwrap();
    assert!(
        after.contains("# site: edge-7, managed by hand\n"),
        "{after}"
    );
    assert_eq!(after.matches("# site").count(), 1);
    // Our own header is not collected as a comment on the next load.
    s.transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5063"))
        .unwrap();
    let again = std::fs::read_to_string(s.config_path()).unwrap();
    assert_eq!(again.matches("# xsh configuration").count(), 1, "{again}");
}

#[test]
fn a_clean_stamp_stands_for_the_check_and_a_hand_edit_voids_it() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let who = Who::default();
    s.transact(&who, |c| set(c, "xConfiguration Zones Zone 3 Name: \"z\""))
        .unwrap();
    let bytes = std::fs::read(s.config_path()).unwrap();
    assert!(s.is_clean(&bytes));
    let fresh = Store::open(d.path()).unwrap();
    let g = fresh.checked_globals().unwrap();
    assert!(g.problems.is_empty() && g.values.is_empty());
    // A hand edit under an instance node, same length: the stamp no longer matches, and the
    // checked read reports the line.
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("Zone 3 Name", "Zone 3 Nome");
    std::fs::write(s.config_path(), &text).unwrap();
    let other = Store::open(d.path()).unwrap();
    assert!(!other.is_clean(text.as_bytes()));
    assert_eq!(other.checked_globals().unwrap().problems.len(), 1);
    // A configuration that keeps a bad line is not stamped.
    other
        .transact(&who, |c| set(c, "xConfiguration SIP TLS Port: 5070"))
        .unwrap();
    assert!(!other.clean_path().exists());
}

#[test]
fn side_files_are_named_for_watchers() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    s.transact(&Who::default(), |c| {
        set(c, "xConfiguration SIP TLS Port: 5070")
    })
    .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(d.path().join("config"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| is_side_file(Path::new(n)))
        .collect();
    names.sort();
    assert_eq!(names, [".audit.tail", ".xconf.clean"]);
    assert!(is_side_file(Path::new("/r/config/.audit.tail.tmp.77")));
    assert!(!is_side_file(Path::new("/r/config/xconf.txt")));
    assert!(!is_side_file(Path::new("/r/config/.xconf.txt.tmp.77")));
}
