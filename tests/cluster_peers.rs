//! Peers of a cluster seen from one node (issue 12 item 5) and the shared CA list on a server
//! certificate reset: two real `xagent`s, each with its own ROOT, joined to a real three-member
//! etcd on loopback. The EKU readiness report (`xsh -c`) and the web pages list every peer with
//! its own client certificate's verdict (a serverAuth-only one is flagged not ready); `Server
//! Reset` on node 1 re-trusts its new default certificate in the cluster's CA list, which node 2
//! then holds; with etcd stopped the reset, a CA add and a set are refused with one clear
//! message and nothing changes locally; a CA add computed from a stale local list is refused.
//!
//! Nothing here asserts on timing: every wait polls for an event up to a generous deadline.

mod agent_support;

use std::process::Command;

use agent_support::common::etcd::EtcdCluster;
use agent_support::common::web::curl;
use agent_support::*;
use serde_json::Value;
use xsh::certs::pki::LeafEku;

/// `xsh --root R -c LINE`: its stdout and whether it succeeded.
fn xsh_c(node: &Node, line: &str) -> (bool, String) {
    let o = Command::new(XSH)
        .arg("--root")
        .arg(node.root())
        .args(["--no-banner", "-c", line])
        .env_remove("XSH_ROOT")
        .env_remove("SSH_ORIGINAL_COMMAND")
        .output()
        .expect("run xsh -c");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success() && !text.contains("*r ERROR"), text)
}

/// Two nodes joined under `prefix` (node 1 first: its files become the cluster's), agents
/// running, both seen Active by node 1. `setup(i, node)` runs on each node before it joins.
fn cluster(prefix: &str, setup: impl Fn(usize, &Node)) -> Option<(EtcdCluster, Vec<Node>)> {
    let etcd = EtcdCluster::start(3)?;
    let mut nodes: Vec<Node> = (1..=2).map(|i| Node::new(&format!("n{i}"))).collect();
    for (i, n) in nodes.iter().enumerate() {
        setup(i, n);
        n.ok(&[&etcd.join_line(prefix, &n.name)]);
    }
    for n in &mut nodes {
        n.start();
    }
    for n in &nodes {
        n.wait_leaf("Cluster State", |s| s == "Synced");
    }
    wait_for("node 1 sees both peers Active", || {
        let doc = nodes[0].status("Cluster");
        let seen: Vec<String> = (1..=6)
            .filter_map(|p| leaf(&doc, &format!("Cluster Peer {p} Status")))
            .collect();
        if seen.len() == 2 && seen.iter().all(|s| s == "Active") {
            Ok(())
        } else {
            Err(doc.to_string())
        }
    });
    Some((etcd, nodes))
}

/// The `Peer` entries of the readiness report (JSON mode), by name.
fn readiness_peers(node: &Node) -> Vec<(String, Value)> {
    let docs = node.json("xCommand Security Certificates EkuReadiness");
    let doc = docs.into_iter().next().unwrap_or(Value::Null);
    let r = doc["CommandResponse"]
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or(Value::Null);
    let v = |p: &Value, k: &str| p[k]["Value"].as_str().unwrap_or("").to_string();
    r["Peer"]
        .as_array()
        .map(|a| a.iter().map(|p| (v(p, "Name"), p.clone())).collect())
        .unwrap_or_default()
}

fn val(p: &Value, k: &str) -> String {
    p[k]["Value"].as_str().unwrap_or("").to_string()
}

const PW: &str = "peers-pass-1";

#[test]
fn readiness_report_and_status_page_list_every_peer_with_its_client_verdict() {
    if !require_openssl()
        || !agent_support::common::require_tool("curl", "--version", "curl")
        || !agent_support::common::require_tool("tidy", "-v", "tidy")
    {
        return;
    }
    let pki = Pki::new();
    let https = free_port();
    let ca1 = pki.ca1_root();
    let ready = pki.issue(true, "n1-client", LeafEku::Both);
    let server_only = pki.issue(true, "n2-client", LeafEku::ServerAuth);
    let Some((_etcd, nodes)) = cluster("/xsh/peers1", |i, n| {
        n.ca_add(&ca1);
        if i == 0 {
            n.upload_client(&ready);
            n.ok(&[&format!(
                "xConfiguration Administration HTTPS Port: {https}"
            )]);
        } else {
            // A serverAuth-only client certificate goes in as the server's, also as client.
            n.upload_server(&server_only, true);
        }
    }) else {
        return;
    };
    let [n1, n2] = [&nodes[0], &nodes[1]];

    // The report on node 1 lists both peers, each with its own client certificate's verdict.
    let peers = wait_for(
        "node 1's readiness report describes both client certificates",
        || {
            let p = readiness_peers(n1);
            if p.len() == 2 && p.iter().all(|(_, x)| val(x, "ClientResult") != "Unknown") {
                Ok(p)
            } else {
                Err(format!("{p:?}"))
            }
        },
    );
    let (name1, p1) = &peers[0];
    let (name2, p2) = &peers[1];
    assert_eq!((name1.as_str(), name2.as_str()), ("n1", "n2"));
    assert_eq!(val(p1, "ClientResult"), "Ready", "{p1}");
    assert_eq!(val(p1, "ClientAuth"), "Yes", "{p1}");
    assert_eq!(val(p1, "ClientSerial"), n1.store_serial("Client"), "{p1}");
    assert_eq!(val(p2, "ClientResult"), "Limited", "{p2}");
    assert_eq!(val(p2, "ClientAuth"), "No", "{p2}");
    assert!(
        val(p2, "ClientExplanation").contains("serverAuth-only"),
        "{p2}"
    );
    assert_eq!(val(p2, "ClientSerial"), n2.store_serial("Client"), "{p2}");
    for (p, n) in [(p1, n1), (p2, n2)] {
        assert_eq!(val(p, "ServerSerial"), n.store_serial("Server"), "{p}");
        assert_eq!(val(p, "Status"), "Active", "{p}");
        assert_eq!(
            val(p, "Address"),
            format!("127.0.0.1:{}", n.sip_port),
            "{p}"
        );
        let days: i64 = val(p, "ClientDaysLeft").parse().expect("days left");
        assert!(days > 30, "{p}");
    }
    // The same through `xsh -c` (terminal text), on the other node.
    let (ok, text) = xsh_c(n2, "xCommand Security Certificates EkuReadiness");
    assert!(ok, "{text}");
    let peer2 = text.split("Peer 2: /").nth(1).unwrap_or("");
    let peer1 = text.split("Peer 1: /").nth(1).unwrap_or("");
    let peer1 = peer1.split("Peer 2: /").next().unwrap_or("");
    for (block, want) in [
        (peer1, "Name: \"n1\""),
        (peer1, "ClientResult: \"Ready\""),
        (peer1, "ClientAuth: \"Yes\""),
        (peer2, "Name: \"n2\""),
        (peer2, "ClientResult: \"Limited\""),
        (peer2, "ClientAuth: \"No\""),
    ] {
        assert!(block.contains(want), "{want:?} in:\n{text}");
    }

    // The web pages (HTTPS on node 1; the account is node 1's).
    n1.ok(&[&format!(
        "xCommand AdminAccountAdd Name: \"admin\" Password: \"{PW}\" Access: ReadOnly"
    )]);
    let url = |p: &str| format!("https://127.0.0.1:{https}{p}");
    let jar = n1.root().join("jar");
    let jar = jar.to_str().unwrap();
    wait_for("node 1's web login", || {
        let r = curl(&[
            "-c",
            jar,
            "-d",
            &format!("username=admin&password={PW}"),
            &url("/login"),
        ]);
        if r.code == 303 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let r = curl(&["-b", jar, &url("/status")]);
    assert_eq!(r.code, 200, "{r:?}");
    let body = &r.body;
    assert!(
        body.contains("<h2 id=\"cluster-peers\">Cluster peers</h2>"),
        "{body}"
    );
    for n in [n1, n2] {
        assert!(
            body.contains(&format!("<th scope=\"row\">{}</th>", n.name)),
            "{}: {body}",
            n.name
        );
        assert!(
            body.contains(&format!("127.0.0.1:{}", n.sip_port)),
            "{body}"
        );
    }
    assert_eq!(
        common::tidy(dir.path(), "status", body),
        Vec::<String>::new()
    );
    let r = curl(&["-b", jar, &url("/maintenance/security/readiness")]);
    assert_eq!(r.code, 200, "{r:?}");
    let body = &r.body;
    assert!(body.contains("Cluster peers"), "{body}");
    assert!(body.contains("serverAuth-only"), "{body}");
    assert!(body.contains(&n2.store_serial("Client")), "{body}");
    assert_eq!(
        common::tidy(dir.path(), "readiness", body),
        Vec::<String>::new()
    );
}

/// SHA-256 fingerprint of the server store's certificate, as `CA List` shows it.
fn server_fingerprint(n: &Node) -> String {
    let pem = std::fs::read(n.certs().join("server.pem")).unwrap();
    let chain = xsh::certs::info::parse_pem_certs(&pem).unwrap();
    xsh::certs::decode(&chain[0], rustls::pki_types::UnixTime::now())
        .unwrap()
        .sha256_fingerprint
}

/// How often `needle` occurs in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The error lines of `text` (printed too: the test's output shows each refusal).
fn error_lines(text: &str) -> String {
    let l = text
        .lines()
        .filter(|l| l.contains("Reason") || l.contains("Detail") || l.contains("*e "))
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("{l}");
    l
}

#[test]
fn server_reset_retrusts_through_the_cluster_and_is_refused_without_it() {
    if !require_openssl() {
        return;
    }
    let Some((mut etcd, nodes)) = cluster("/xsh/peers2", |_, _| {}) else {
        return;
    };
    let [n1, n2] = [&nodes[0], &nodes[1]];
    let ca = |n: &Node| std::fs::read(n.certs().join("ca.pem")).unwrap();
    let old = server_fingerprint(n1);
    // Node 1 joined first: the cluster's list trusts node 1's default certificate.
    let listed = |n: &Node, fp: &str| {
        let (ok, text) = xsh_c(n, "xCommand Security Certificates CA List");
        assert!(ok, "{text}");
        text.contains(fp)
    };
    wait_for("node 2 holds the cluster's list", || {
        if listed(n2, &old) {
            Ok(())
        } else {
            Err(format!(
                "{old}: {}\n{}",
                xsh_c(n2, "xCommand Security Certificates CA List").1,
                String::from_utf8_lossy(&ca(n1))
            ))
        }
    });

    let (ok, text) = xsh_c(n1, "xCommand Security Certificates Server Reset");
    assert!(ok, "{text}");
    let new = server_fingerprint(n1);
    assert_ne!(new, old);
    wait_for(
        "node 2's CA list trusts node 1's new default certificate",
        || {
            if listed(n2, &new) && !listed(n2, &old) {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&ca(n2)).into_owned())
            }
        },
    );
    assert_eq!(
        etcd.get("/xsh/peers2/certs/ca.pem")
            .unwrap_or_default()
            .trim_end(),
        String::from_utf8_lossy(&ca(n1)).trim_end(),
        "the cluster holds node 1's list"
    );

    // A CA add computed from a local list that is not the cluster's: refused, one prefix.
    let before = ca(n1);
    std::fs::write(n1.certs().join("ca.pem"), b"").unwrap();
    let pki = Pki::new();
    let (ok, text) = xsh_c(
        n1,
        &format!(
            "xCommand Security Certificates CA Add File: \"{}\"",
            pki.ca2_root().display()
        ),
    );
    assert!(!ok, "{text}");
    let e = error_lines(&text);
    assert_eq!(count(&text, "the cluster (etcd)"), 1, "{e}");
    assert_eq!(ca(n1), before, "the local copy is the cluster's again");

    // With every etcd member stopped: refused, one prefix, nothing changed locally.
    etcd.stop_all();
    let server = std::fs::read(n1.certs().join("server.pem")).unwrap();
    let (ok, text) = xsh_c(n1, "xCommand Security Certificates Server Reset");
    assert!(!ok, "{text}");
    let e = error_lines(&text);
    assert_eq!(count(&text, "the cluster (etcd)"), 1, "{e}");
    assert!(text.contains("unreachable"), "{text}");
    assert_eq!(
        std::fs::read(n1.certs().join("server.pem")).unwrap(),
        server
    );
    assert_eq!(ca(n1), before);
    assert_eq!(server_fingerprint(n1), new);
    let (ok, text) = xsh_c(
        n1,
        &format!(
            "xCommand Security Certificates CA Add File: \"{}\"",
            pki.ca2_root().display()
        ),
    );
    assert!(!ok, "{text}");
    let e = error_lines(&text);
    assert_eq!(count(&text, "the cluster (etcd)"), 1, "{e}");
    assert_eq!(ca(n1), before);
    for _ in 0..2 {
        // The second set comes after a recent failure (the store's remembered outage).
        let (ok, text) = xsh_c(
            n1,
            "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: Off",
        );
        assert!(!ok, "{text}");
        let e = error_lines(&text);
        assert_eq!(count(&text, "the cluster (etcd)"), 1, "{e}");
    }
}
