//! The diagnostic bundle through the real binaries: exactly the product's files, named
//! `<kind>_<host>_<YYYY-MM-DD_HH_MM_SS>.<ext>`, the agent's event and handshake logs inside, and
//! never a private key — not even one an admin left inside a certificate file.

mod agent_support;

use std::io::Read;

use agent_support::Node;

fn entries(bundle: &std::path::Path) -> Vec<(String, String)> {
    let f = std::fs::File::open(bundle).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut text = String::new();
        e.read_to_string(&mut text).unwrap();
        out.push((name, text));
    }
    out
}

#[test]
fn bundle_holds_exactly_the_listed_files_and_no_key() {
    let mut node = Node::new("diag");
    node.ok(&["xConfiguration SystemUnit Name: \"core-1\""]);
    node.start();
    // One accepted handshake so the handshake log has something to say.
    let certs = node.certs();
    node.openssl_handshake(&certs.join("client.pem"), &certs.join("clientprivkey.pem"));
    node.wait_leaf("SIP TLS Listener Accepted", |v| v != "0");
    // An admin pasted a key into the certificate file: the bundle must still hold no key.
    let key = std::fs::read_to_string(certs.join("clientprivkey.pem")).unwrap();
    let mut server = std::fs::read_to_string(certs.join("server.pem")).unwrap();
    server.push_str(&key);
    std::fs::write(certs.join("server.pem"), server).unwrap();

    let out_dir = tempfile::tempdir().unwrap();
    let folder = out_dir.path().display().to_string();
    let reply = node.ok(&[&format!(
        "xCommand DiagnosticLogging Collect Folder: \"{folder}\""
    )]);
    assert!(
        reply.contains("DiagnosticLoggingCollectResult (status=OK)"),
        "{reply}"
    );

    let bundles: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let bundle_name = bundles[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let ts = bundle_name
        .strip_prefix("diagnostic_logging_core-1_")
        .and_then(|s| s.strip_suffix(".tar.gz"))
        .unwrap_or_else(|| panic!("bundle name {bundle_name}"));
    // 2026-03-25_03_20_11
    assert_eq!(ts.len(), 19, "{ts}");
    assert!(ts.chars().enumerate().all(|(i, c)| match i {
        4 | 7 => c == '-',
        10 | 13 | 16 => c == '_',
        _ => c.is_ascii_digit(),
    }));

    let files = entries(&bundles[0]);
    let mut names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    let mut want: Vec<String> = [
        "ca_{}.pem",
        "client_{}.pem",
        "server_{}.pem",
        "xconf_dump_{}.txt",
        "xconf_dump_{}.xml",
        "xstat_dump_{}.txt",
        "xstat_dump_{}.xml",
        "loggingsnapshot_{}.txt",
        "handshakes_{}.log",
        "probes_{}.json",
    ]
    .iter()
    .map(|p| p.replace("{}", &format!("core-1_{ts}")))
    .collect();
    want.sort();
    assert_eq!(names, want);
    for (name, text) in &files {
        assert!(!text.contains("PRIVATE KEY"), "{name} holds a private key");
    }
    let get = |prefix: &str| {
        files
            .iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    assert!(get("server_").contains("BEGIN CERTIFICATE"));
    assert!(get("client_").contains("BEGIN CERTIFICATE"));
    assert!(get("xconf_dump_").contains("*c xConfiguration SystemUnit Name: \"core-1\""));
    assert!(get("xstat_dump_").contains("Running: \"True\""));
    assert!(get("loggingsnapshot_").contains("Level=\"INFO\""));
    let hs = get("handshakes_");
    assert!(hs.contains("\"decision\":\"accepted\""), "{hs}");
}
