//! Faults of the certificate folder outside a running change: what an older version cut off
//! (a lone `clientprivkey.pem`, no `ca.pem`), temp files a killed writer left (cleaned by the next
//! start of `xsh` and of `xagent`), and a key file that does not parse (reported under its own
//! name, as text).

#[path = "crash_support/mod.rs"]
mod crash_support;

use crash_support::*;

/// A root left by an older version killed between the client key's and certificate's renames:
/// a lone `clientprivkey.pem` is no client store, and the next start makes one.
#[test]
fn a_lone_client_key_is_not_a_migrated_store() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    xsh_ok(&root, "xStatus SystemUnit Product");
    let certs = root.join("certs");
    std::fs::remove_file(certs.join("client.pem")).unwrap();
    std::fs::remove_file(certs.join("ca.pem")).unwrap();
    xsh_ok(&root, "xStatus SystemUnit Product");
    let [s, c] = stores_on_disk(&root, "healed");
    assert_eq!(s, c);
    assert!(certs.join("ca.pem").exists(), "a root that trusts nothing");
    let (ok, out) = check(&root);
    assert!(ok, "{out}");
}

/// Temp files of a killed writer (some are copies of keys) go at the next start; a live
/// writer's and anything that is not a regular file stay.
#[test]
fn leftover_temp_files_are_cleaned_at_start() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    xsh_ok(&root, "xStatus SystemUnit Product");
    let dead = [
        root.join("certs/.privkey.pem.tmp.0.1f2e3d4c5b6a7980"),
        root.join("certs/.server.pem.tmp.0.3"),
        root.join("config/.xconf.txt.tmp.0"),
        root.join("certs/generated_csr/.client-privkey.pem.tmp.0.aa"),
    ];
    for p in &dead {
        std::fs::write(p, "leftover").unwrap();
    }
    let live = root.join(format!("certs/.privkey.pem.tmp.{}.ab", std::process::id()));
    std::fs::write(&live, "a writer still at work").unwrap();
    xsh_ok(&root, "xStatus SystemUnit Product");
    for p in &dead {
        assert!(!p.exists(), "{} was left", p.display());
    }
    assert!(live.exists());
    // The agent's start cleans too.
    std::fs::write(&dead[0], "leftover").unwrap();
    xsh_ok(
        &root,
        &format!("xConfiguration SIP TLS Port: {}", free_port()),
    );
    xsh_ok(
        &root,
        &format!("xConfiguration Tunnel Port: {}", free_port()),
    );
    std::fs::write(&dead[0], "leftover").unwrap();
    agent_starts(&root).unwrap();
    assert!(!dead[0].exists());
}

/// A key file that does not parse is reported under its own name, by the agent's check.
#[test]
fn key_faults_name_the_key_file() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    xsh_ok(&root, "xStatus SystemUnit Product");
    std::fs::write(
        root.join("certs/clientprivkey.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n",
    )
    .unwrap();
    let (ok, out) = check(&root);
    assert!(!ok);
    let key = root.join("certs/clientprivkey.pem").display().to_string();
    assert!(out.contains(&format!("xagent: {key}: ")), "{out}");
    assert!(
        out.contains("missing section end line '-----END PRIVATE KEY-----'"),
        "{out}"
    );
    assert!(!out.contains("[45, 45"), "{out}");
}
