//! Expressway's zone paths (issue 10 item 6): a push written for a real Expressway
//! (`Zones Zone N TraversalClient Peer 1 Address`, `… SIP Port`, `… SIP TLS Verify Mode`) runs
//! through `xsh` unchanged and the agent checks that zone's Peer 1 (Peers 2..6 are stored, not
//! checked); a root written with this project's first paths (`Zones Zone N Peer Address` …) is
//! rewritten once at start, with one audit record. No timing: status is polled to a deadline.

mod agent_support;

use agent_support::*;

#[test]
fn an_expressway_push_runs_and_the_agent_checks_peer_1() {
    let mut core = Node::new("zpaths");
    let closed = free_port();
    let p = "xConfiguration Zones Zone 5";
    core.ok(&[
        &format!("{p} Name: \"edge\""),
        &format!("{p} Type: TraversalClient"),
        &format!("{p} TraversalClient Peer 1 Address: \"127.0.0.1\""),
        &format!("{p} TraversalClient Peer 2 Address: \"nonexistent.invalid\""),
        &format!("{p} TraversalClient SIP Port: {closed}"),
        &format!("{p} TraversalClient Tunnel Port: {closed}"),
        &format!("{p} TraversalClient SIP TLS Verify Mode: Off"),
        &format!("{p} TraversalClient SIP TLS Verify Subject Name: \"edge.example\""),
    ]);
    let shown = core.ok(&["xConfiguration Zones Zone 5"]);
    assert!(
        shown.contains("TraversalClient Peer 2 Address: \"nonexistent.invalid\""),
        "{shown}"
    );
    core.start();
    let z = core.wait_zone(5, "Failed (closed port of Peer 1)", |z| {
        z.status == "Failed" && z.reason.contains(&format!("127.0.0.1:{closed}"))
    });
    assert!(!z.reason.contains("nonexistent.invalid"), "{z}");
    let doc = core.status("Zones");
    assert_eq!(
        leaf(&doc, "Zones Zone 5 Peer").as_deref(),
        Some(format!("127.0.0.1:{closed}").as_str()),
        "{doc}"
    );
}

#[test]
fn an_old_path_root_migrates_once_with_an_audit_record() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("config")).unwrap();
    let old = "xConfiguration Zones Zone 1 Name: \"old\"\n\
               xConfiguration Zones Zone 1 Peer Address: \"10.0.0.1\"\n\
               xConfiguration Zones Zone 1 Peer Port: 5071\n\
               xConfiguration Zones Zone 2 Type: TraversalClient\n\
               xConfiguration Zones Zone 2 Peer Address: \"10.0.0.2\"\n\
               xConfiguration Zones Zone 2 TLS Verify Mode: Off\n";
    let conf = root.path().join("config/xconf.txt");
    std::fs::write(&conf, old).unwrap();
    let out = xsh_run(root.path(), "xConfiguration Zones\n");
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    for want in [
        "Zones Zone 1 Neighbor Peer 1 Address: \"10.0.0.1\"",
        "Zones Zone 1 Neighbor SIP Port: \"5071\"",
        "Zones Zone 2 TraversalClient Peer 1 Address: \"10.0.0.2\"",
        "Zones Zone 2 TraversalClient SIP TLS Verify Mode: \"Off\"",
    ] {
        assert!(out.stdout.contains(want), "{want}:\n{}", out.stdout);
    }
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(!text.contains("Zone 1 Peer Address"), "{text}");
    let audit = || std::fs::read_to_string(root.path().join("config/audit.log")).unwrap();
    assert_eq!(
        audit().matches("Zones Zone Migration").count(),
        1,
        "{}",
        audit()
    );
    // A second start finds nothing to do.
    let again = xsh_run(root.path(), "xConfiguration Zones Zone 2\n");
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
    assert_eq!(
        audit().matches("Zones Zone Migration").count(),
        1,
        "{}",
        audit()
    );
}
