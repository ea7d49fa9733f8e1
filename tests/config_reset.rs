//! `xCommand Configuration Reset` through the binary: a leaf, a whole instance (every leaf of
//! `Zones Zone 3`, nothing of its neighbours), a part of an instance, and the errors: a wrong
//! word is reported at its column in the user's line, a path that is neither a leaf nor inside
//! an instance is refused.

use std::process::Command;

const XSH: &str = env!("CARGO_BIN_EXE_xsh");

fn xsh(root: &std::path::Path, lines: &str) -> (bool, String) {
    let out = Command::new(XSH)
        .arg("--root")
        .arg(root)
        .arg("-c")
        .arg(lines)
        .output()
        .expect("run xsh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn stored(root: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(root.join("config/xconf.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("xConfiguration "))
        .map(str::to_string)
        .collect()
}

const ZONES: &str = "xConfiguration Zones Zone 3 Name: \"z3\"
xConfiguration Zones Zone 3 Neighbor Peer 1 Address: \"10.0.0.3\"
xConfiguration Zones Zone 3 Neighbor SIP Port: 5071
xConfiguration Zones Zone 4 Name: \"z4\"
xConfiguration Zones Zone 4 Neighbor Peer 1 Address: \"10.0.0.4\"
xConfiguration SIP TLS Port: 5099";

#[test]
fn reset_a_whole_instance_a_part_of_one_and_a_leaf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (ok, out) = xsh(&root, ZONES);
    assert!(ok, "{out}");
    assert_eq!(stored(&root).len(), 6);

    // One instance, in its own run (its own transaction).
    let (ok, out) = xsh(&root, "xCommand Configuration Reset Path: \"Zones Zone 3\"");
    assert!(ok, "{out}");
    assert_eq!(
        stored(&root),
        [
            "xConfiguration SIP TLS Port: \"5099\"",
            "xConfiguration Zones Zone 4 Name: \"z4\"",
            "xConfiguration Zones Zone 4 Neighbor Peer 1 Address: \"10.0.0.4\"",
        ],
        "{out}"
    );
    let (_, shown) = xsh(&root, "xConfiguration Zones Zone 3 Name");
    assert!(
        shown.contains("*c xConfiguration Zones Zone 3 Name: \"\""),
        "{shown}"
    );

    // A part of an instance, and a leaf, in one batch.
    let (ok, out) = xsh(
        &root,
        "xCommand Configuration Reset Path: \"Zones Zone 4 Neighbor\"\n\
         xCommand Configuration Reset Path: \"SIP TLS Port\"",
    );
    assert!(ok, "{out}");
    assert_eq!(stored(&root), ["xConfiguration Zones Zone 4 Name: \"z4\""]);
}

#[test]
fn reset_errors_point_into_the_users_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (ok, out) = xsh(&root, ZONES);
    assert!(ok, "{out}");
    let line = "xCommand Configuration Reset Path: \"Zones Zone 3 Bogus\"";
    let (ok, out) = xsh(&root, line);
    assert!(!ok);
    let col = line.find("Bogus").expect("Bogus") + 1;
    assert!(out.contains(&format!("Column: \"{col}\"")), "{out}");
    let (ok, refused) = xsh(
        &root,
        "xCommand Configuration Reset Path: \"Zones\"\n\
         xCommand Configuration Reset Path: \"SIP TLS\"",
    );
    assert!(!ok);
    assert_eq!(
        refused
            .matches("is neither a configuration leaf nor an instance")
            .count(),
        2
    );
    let value_col = line.find("Zones").expect("Zones") + 1;
    assert_eq!(
        refused.matches(&format!("Column: \"{value_col}\"")).count(),
        2,
        "{refused}"
    );
    // Nothing was reset by a refused request.
    assert_eq!(stored(&root).len(), 6);
    insta::assert_snapshot!("config_reset_errors", format!("{out}{refused}"));
}
