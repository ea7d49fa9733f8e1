//! Expressway's zone paths (issue 10 item 6): a push written for a real Expressway
//! (`Zones Zone N TraversalClient Peer 1 Address`, `… SIP Port`, `… SIP TLS Verify Mode`) runs
//! through `xsh` unchanged and the agent checks every peer with an address, each with its own
//! status and reason (`xStatus Zones Zone N Peer M`); a read shows only the sub-tree of the
//! zone's `Type`; a TraversalServer zone is reported Off; `xCommand ZoneAdd`/`ZoneDelete` add and
//! remove zones, audited; a root written with this project's first paths (`Zones Zone N Peer
//! Address` …) is rewritten once at start, with one audit record. No timing: status is polled
//! to a deadline.

mod agent_support;

use agent_support::*;

#[test]
fn an_expressway_push_runs_and_the_agent_checks_every_peer() {
    let mut core = Node::new("zpaths");
    let closed = free_port();
    let p = "xConfiguration Zones Zone 5";
    core.ok(&[
        &format!("{p} Name: \"edge\""),
        &format!("{p} Type: TraversalClient"),
        &format!("{p} TraversalClient Peer 1 Address: \"127.0.0.1\""),
        &format!("{p} TraversalClient Peer 2 Address: \"nonexistent.invalid\""),
        &format!("{p} TraversalClient Peer 4 Address: \"127.0.0.1\""),
        &format!("{p} TraversalClient SIP Port: {closed}"),
        &format!("{p} TraversalClient Tunnel Port: {closed}"),
        &format!("{p} TraversalClient SIP TLS Verify Mode: Off"),
        &format!("{p} TraversalClient SIP TLS Verify Subject Name: \"edge.example\""),
        "xConfiguration Zones Zone 6 Name: \"dmz\"",
        "xConfiguration Zones Zone 6 Type: TraversalServer",
        "xConfiguration Zones Zone 6 TraversalServer SIP Port: 7003",
    ]);
    let shown = core.ok(&["xConfiguration Zones Zone 5"]);
    assert!(
        shown.contains("TraversalClient Peer 2 Address: \"nonexistent.invalid\""),
        "{shown}"
    );
    core.start();
    let z = core.wait_zone(5, "Failed (every peer)", |z| {
        z.status == "Failed" && z.reason.contains("nonexistent.invalid")
    });
    assert!(z.reason.starts_with("0 of 3 peers Active"), "{z}");
    let p1 = core.peer(5, 1);
    assert_eq!(p1.status, "Failed", "{p1}");
    assert!(
        p1.reason
            .contains(&format!("connection refused by 127.0.0.1:{closed}")),
        "{p1}"
    );
    // Peer 2 has its own reason: its name does not resolve (no connection was tried).
    let p2 = core.peer(5, 2);
    assert_eq!(p2.status, "Failed", "{p2}");
    assert!(
        p2.reason.contains("'nonexistent.invalid' does not resolve"),
        "{p2}"
    );
    assert!(!p2.reason.contains("refused"), "{p2}");
    assert!(
        p2.presented_serial.is_empty(),
        "no handshake, nothing presented: {p2}"
    );
    let doc = core.status("Zones");
    assert_eq!(
        leaf(&doc, "Zones Zone 5 Peer 4 Address").as_deref(),
        Some(format!("127.0.0.1:{closed}").as_str()),
        "{doc}"
    );
    assert_eq!(leaf(&doc, "Zones Zone 5 Peer 3 Address"), None, "{doc}");
    assert_eq!(
        leaf(&doc, "Zones Zone 5 Type").as_deref(),
        Some("TraversalClient")
    );
    // The TraversalServer zone: reported Off, naming its own port, with no peers.
    let ts = core.zone(6);
    assert_eq!(ts.status, "Off", "{ts}");
    assert!(ts.reason.contains("(7003)"), "{ts}");
    assert_eq!(leaf(&doc, "Zones Zone 6 Peer 1 Address"), None, "{doc}");
}

/// A read of a zone shows its own type's sub-tree only, whatever else is stored; naming another
/// type's sub-tree still shows it, and nothing stored is lost (the dump keeps it).
#[test]
fn a_zone_read_shows_the_sub_tree_of_its_type() {
    let core = Node::new("zread");
    core.ok(&[
        "xConfiguration Zones Zone 2 Neighbor Peer 1 Address: \"n.example\"",
        "xConfiguration Zones Zone 2 TraversalClient Peer 1 Address: \"t.example\"",
    ]);
    let neighbor = core.ok(&["xConfiguration Zones Zone 2"]);
    assert!(
        neighbor.contains("Zone 2 Neighbor Peer 1 Address: \"n.example\""),
        "{neighbor}"
    );
    assert!(!neighbor.contains("TraversalClient"), "{neighbor}");
    assert!(!neighbor.contains("TraversalServer"), "{neighbor}");
    core.ok(&["xConfiguration Zones Zone 2 Type: TraversalServer"]);
    let server = core.ok(&["xConfiguration Zones Zone 2"]);
    assert!(
        server.contains("Zone 2 TraversalServer SIP Port: \"7001\""),
        "{server}"
    );
    assert!(
        !server.contains("Neighbor") && !server.contains("Peer"),
        "{server}"
    );
    let named = core.ok(&["xConfiguration Zones Zone 2 TraversalClient"]);
    assert!(
        named.contains("TraversalClient Peer 1 Address: \"t.example\""),
        "{named}"
    );
    let dump = core.root().join("dump");
    core.ok(&[&format!(
        "xCommand SystemUnit Dump Folder: \"{}\"",
        dump.display()
    )]);
    let file = std::fs::read_dir(&dump)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("xconf_dump_") && n.ends_with(".txt")
        })
        .expect("xconf_dump_*.txt");
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains("n.example") && text.contains("t.example"),
        "{text}"
    );
}

/// `xCommand ZoneAdd` takes the lowest free number and refuses a name in use; `ZoneDelete`
/// removes every leaf of the zone and refuses a zone that does not exist; both are audited.
#[test]
fn zone_add_and_delete_as_expressway_names_them() {
    let core = Node::new("zadd");
    core.ok(&["xConfiguration Zones Zone 1 Name: \"one\""]);
    let added = core.ok(&["xCommand ZoneAdd ZoneName: \"edge\" Type: traversalclient"]);
    assert!(added.contains("*r ZoneAddResult (status=OK):"), "{added}");
    assert!(added.contains("ZoneId: \"2\""), "{added}");
    let z2 = core.ok(&["xConfiguration Zones Zone 2"]);
    assert!(
        z2.contains("Zone 2 Name: \"edge\"") && z2.contains("Zone 2 Type: \"TraversalClient\""),
        "{z2}"
    );
    let again = xsh_run(
        core.root(),
        "xCommand ZoneAdd ZoneName: \"EDGE\" Type: Neighbor\n",
    );
    assert!(
        again
            .stdout
            .contains("a zone named 'EDGE' exists already (Zones Zone 2)"),
        "{again:?}"
    );
    let missing = xsh_run(core.root(), "xCommand ZoneAdd ZoneName: \"x\"\n");
    assert!(
        missing.stdout.contains("Type"),
        "a required parameter is named: {missing:?}"
    );
    // Two sessions: within one, the set and the delete would be one batch with no net change.
    core.ok(&["xConfiguration Zones Zone 2 TraversalClient Peer 3 Address: \"p3.example\""]);
    core.ok(&["xCommand ZoneDelete ZoneId: 2"]);
    let text = std::fs::read_to_string(core.root().join("config/xconf.txt")).unwrap();
    assert!(!text.contains("Zone 2 "), "{text}");
    assert!(text.contains("Zone 1 Name"), "{text}");
    let line = "xCommand ZoneDelete ZoneId: 2";
    let gone = xsh_run(core.root(), &format!("{line}\n"));
    assert!(gone.stdout.contains("zone 2 does not exist"), "{gone:?}");
    let col = line.find("2").unwrap() + 1;
    assert!(
        gone.stdout.contains(&format!("Column: \"{col}\"")),
        "{gone:?}"
    );
    let audit = std::fs::read_to_string(core.root().join("config/audit.log")).unwrap();
    for want in [
        "Zones Zone 2 Name",
        "Zones Zone 2 Type",
        "Zones Zone 2 TraversalClient Peer 3 Address",
    ] {
        assert!(
            audit.matches(want).count() >= 2,
            "{want} added and deleted:\n{audit}"
        );
    }
    // The next add fills the freed number again.
    let re = core.ok(&["xCommand ZoneAdd ZoneName: \"dmz\" Type: TraversalServer"]);
    assert!(re.contains("ZoneId: \"2\""), "{re}");
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
