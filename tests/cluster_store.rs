//! The etcd store with a real 3-member etcd cluster (tests/common/etcd.rs): join and migration,
//! peer-local leaves, 8 parallel pushes over three ROOTs, leader loss during a push, quorum loss
//! (writes refused, reads served stale and marked), leave.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;

use common::etcd::EtcdCluster;
use common::xsh_piped;

/// The harness itself: members start, a leader is found, killed, and the cluster recovers.
#[test]
fn harness_survives_leader_loss_and_full_restart() {
    let Some(mut c) = EtcdCluster::start(3) else {
        return;
    };
    c.ctl(&["put", "k", "v1"]);
    let l = c.kill_leader();
    c.wait_healthy();
    assert_ne!(c.leader(), l);
    c.ctl(&["put", "k", "v2"]);
    c.stop_all();
    c.start_all();
    assert_eq!(c.get("k").as_deref(), Some("v2"));
    assert!(c.compact() > 0);
    assert_eq!(c.keys("k"), vec!["k".to_string()]);
}

fn run(root: &Path, input: &str) -> String {
    let out = xsh_piped(root, input);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `input`, which must answer only `OK`s (no ERROR).
fn ok(root: &Path, input: &str) -> String {
    let s = run(root, input);
    assert!(!s.contains("ERROR") && s.contains("OK"), "{input}\n=> {s}");
    s
}

fn join(c: &EtcdCluster, root: &Path, prefix: &str, peer: &str) -> String {
    ok(root, &(c.join_line(prefix, peer) + "\n"))
}

/// Every audit record the cluster holds under `prefix`: (key, record).
fn audit(c: &EtcdCluster, prefix: &str) -> Vec<(String, serde_json::Value)> {
    let out = c.ctl(&["get", &format!("{prefix}/audit/"), "--prefix"]);
    let lines: Vec<&str> = out.lines().collect();
    let mut recs = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        let key = lines[i].to_string();
        // A value is one or more JSON lines; keys start with the prefix.
        let mut j = i + 1;
        while j < lines.len() && !lines[j].starts_with(prefix) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(lines[j]) {
                recs.push((key.clone(), v));
            }
            j += 1;
        }
        i = j;
    }
    recs
}

fn root() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The first peer's files become the cluster's content (recorded in the audit), a second peer
/// adopts them and keeps its own peer-local leaves, which are never shared; leaving goes back
/// to files with the cluster's content kept.
#[test]
fn join_migrates_both_ways_and_keeps_peer_local_leaves() {
    let Some(c) = EtcdCluster::start(3) else {
        return;
    };
    let (a, b) = (root(), root());
    ok(
        a.path(),
        "xConfiguration SystemUnit Name: \"node-a\"\nxConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: Off\n",
    );
    ok(
        b.path(),
        "xConfiguration SystemUnit Name: \"node-b\"\nxConfiguration Shell IdleTimeout: 77\n",
    );
    let gen_b_before = std::fs::read_to_string(b.path().join("config/xconf.txt")).unwrap();
    let j = join(&c, a.path(), "/t/mig", "a");
    assert!(j.contains("Content: \"Uploaded\""), "{j}");
    let shared = c
        .get("/t/mig/config")
        .expect("the cluster holds the config");
    assert!(
        shared.contains("ExtendedKeyUsage Checking Mode: \"Off\""),
        "{shared}"
    );
    assert!(
        !shared.contains("node-a"),
        "a peer-local leaf was shared: {shared}"
    );
    let recs = audit(&c, "/t/mig");
    assert!(
        recs.iter().any(|(_, r)| r["path"] == "Cluster Join a"
            && r["new"].as_str().unwrap().contains("uploaded")),
        "{recs:?}"
    );
    let j = join(&c, b.path(), "/t/mig", "b");
    assert!(j.contains("Content: \"Adopted\""), "{j}");
    assert!(b.path().join("config/xconf.before-join.txt").exists());
    let cfg_b = ok(b.path(), "xConfiguration\n");
    assert!(cfg_b.contains("Checking Mode: \"Off\""), "{cfg_b}");
    assert!(cfg_b.contains("Name: \"node-b\""), "{cfg_b}");
    assert!(
        !cfg_b.contains("IdleTimeout: \"77\""),
        "b's own shared value survived: {cfg_b}"
    );
    assert!(gen_b_before.contains("# generation:"));
    // A peer-local change stays on its peer; a shared one reaches the other.
    ok(a.path(), "xConfiguration SystemUnit Name: \"node-a2\"\n");
    ok(a.path(), "xConfiguration Shell IdleTimeout: 99\n");
    let cfg_b = ok(b.path(), "xConfiguration\n");
    assert!(
        cfg_b.contains("IdleTimeout: \"99\"") && cfg_b.contains("node-b"),
        "{cfg_b}"
    );
    assert!(!c.get("/t/mig/config").unwrap().contains("node-a2"));
    let help = ok(a.path(), "xConfiguration SystemUnit Name ??\n");
    assert!(help.contains("peer-local"), "{help}");
    // The history is the cluster's.
    let h = ok(b.path(), "xHistory 20\n");
    assert!(h.contains("IdleTimeout"), "{h}");
    // The trusted CA list is shared: added on b, it is in etcd (with its audit record) and
    // reaches a's copy.
    if common::require_tool("openssl", "version", "openssl") {
        let pem = b.path().join("partner-ca.pem");
        let st = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "30", "-subj", "/CN=Partner Root CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .arg("-keyout")
            .arg(b.path().join("partner-ca.key"))
            .arg("-out")
            .arg(&pem)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let added = ok(
            b.path(),
            &format!(
                "xCommand Security Certificates CA Add File: \"{}\"\n",
                pem.display()
            ),
        );
        assert!(added.contains("status=OK"), "{added}");
        let theirs = std::fs::read_to_string(&pem).unwrap();
        let body: String = theirs.lines().nth(1).unwrap().to_string();
        assert!(c.get("/t/mig/certs/ca.pem").unwrap().contains(&body));
        assert!(audit(&c, "/t/mig")
            .iter()
            .any(|(_, r)| r["path"] == "Security Certificates ca.pem"));
        ok(a.path(), "xConfiguration Shell\n");
        let mine = std::fs::read_to_string(a.path().join("certs/ca.pem")).unwrap();
        assert!(
            mine.contains(&body),
            "a's CA list did not follow the cluster's"
        );
    }
    // Leave: files again, with what the cluster had.
    let l = ok(b.path(), "xCommand Cluster Leave\n");
    assert!(l.contains("ClusterLeaveResult (status=OK)"), "{l}");
    assert!(!b.path().join("config/cluster.json").exists());
    ok(b.path(), "xConfiguration Shell IdleTimeout: 12\n");
    assert!(c
        .get("/t/mig/config")
        .unwrap()
        .contains("IdleTimeout: \"99\""));
    let cfg_b = ok(b.path(), "xConfiguration Shell\n");
    assert!(cfg_b.contains("IdleTimeout: \"12\""), "{cfg_b}");
}

/// Joined ROOTs of one cluster and its etcd.
fn three_peers(c: &EtcdCluster, prefix: &str) -> Vec<tempfile::TempDir> {
    let roots: Vec<_> = (0..3).map(|_| root()).collect();
    for (i, r) in roots.iter().enumerate() {
        ok(r.path(), "xConfiguration Shell IdleTimeout: 0\n");
        join(c, r.path(), prefix, &format!("p{i}"));
    }
    roots
}

/// The configuration commits in the cluster's audit, by generation: (generation, paths).
fn commits(c: &EtcdCluster, prefix: &str) -> Vec<(u64, Vec<String>)> {
    let mut out: Vec<(u64, Vec<String>)> = Vec::new();
    for (key, r) in audit(c, prefix) {
        if !key.contains("-c") {
            continue;
        }
        let g = r["generation"].as_u64().unwrap();
        let p = r["path"].as_str().unwrap().to_string();
        match out.last_mut() {
            Some((lg, v)) if *lg == g => v.push(p),
            _ => out.push((g, vec![p])),
        }
    }
    out
}

/// 8 parallel pushes spread over three peers: every set lands (no lost update) and the
/// cluster's audit shows one generation order, each generation once.
#[test]
fn eight_parallel_pushes_over_three_peers_lose_nothing() {
    let Some(c) = EtcdCluster::start(3) else {
        return;
    };
    let roots = three_peers(&c, "/t/par");
    let paths: Vec<_> = roots.iter().map(|r| r.path().to_path_buf()).collect();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let root = paths[t % 3].clone();
            std::thread::spawn(move || {
                for j in 0..5 {
                    let mut input = String::new();
                    for k in 0..4 {
                        let z = t * 20 + j * 4 + k + 1;
                        input.push_str(&format!(
                            "xConfiguration Zones Zone {z} Name: \"t{t}-j{j}-k{k}\"\n"
                        ));
                    }
                    let out = run(&root, &input);
                    assert!(!out.contains("ERROR"), "{out}");
                    assert_eq!(out.matches("OK").count(), 4, "{out}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let shared = c.get("/t/par/config").unwrap();
    for t in 0..8 {
        for j in 0..5 {
            for k in 0..4 {
                let v = format!("\"t{t}-j{j}-k{k}\"");
                assert!(shared.contains(&v), "lost update {v}");
            }
        }
    }
    let cs = commits(&c, "/t/par");
    // The pushes' commits (after the joins): one order, each generation once, none skipped.
    let gens: Vec<u64> = cs
        .iter()
        .filter(|(_, p)| p.iter().all(|p| p.starts_with("Zones Zone")))
        .map(|(g, _)| *g)
        .collect();
    assert!(gens.len() >= 40, "{cs:?}");
    assert!(gens.windows(2).all(|w| w[1] == w[0] + 1), "{gens:?}");
    let zone_sets: usize = cs
        .iter()
        .flat_map(|(_, p)| p)
        .filter(|p| p.starts_with("Zones Zone"))
        .count();
    assert_eq!(zone_sets, 160);
    // Every peer reads the same configuration.
    let reads: Vec<String> = paths
        .iter()
        .map(|p| ok(p, "xConfiguration Zones Zone 160 Name\n"))
        .collect();
    assert!(reads.iter().all(|r| r.contains("t7-j4-k3")), "{reads:?}");
}

/// Killing the etcd leader during a push: every acknowledged write is in the cluster, the
/// others were refused with an error, and writes resume once a new leader is elected.
#[test]
fn leader_loss_during_a_push_loses_no_acknowledged_write() {
    let Some(mut c) = EtcdCluster::start(3) else {
        return;
    };
    let roots = three_peers(&c, "/t/lead");
    let paths: Vec<_> = roots.iter().map(|r| r.path().to_path_buf()).collect();
    let pusher = {
        let paths = paths.clone();
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut refused = Vec::new();
            for n in 1..=60usize {
                let v = format!("w{n}");
                let out = run(
                    &paths[n % 3],
                    &format!("xConfiguration Zones Zone {n} Name: \"{v}\"\n"),
                );
                if out.contains("ERROR") {
                    refused.push((v, out));
                } else {
                    assert!(out.contains("OK"), "{out}");
                    acked.push(v);
                }
            }
            (acked, refused)
        })
    };
    // Kill the leader once the push is under way.
    while c
        .get("/t/lead/config")
        .is_none_or(|s| !s.contains("\"w5\""))
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = c.kill_leader();
    let (acked, refused) = pusher.join().unwrap();
    for (_, out) in &refused {
        assert!(out.contains("cluster (etcd)"), "unclear refusal: {out}");
    }
    c.wait_healthy();
    let shared = c.get("/t/lead/config").unwrap();
    for v in &acked {
        assert!(
            shared.contains(&format!("\"{v}\"")),
            "acknowledged {v} is missing"
        );
    }
    // Writes resume (the dead member stays dead: two of three are a quorum).
    let mut resumed = false;
    for _ in 0..20 {
        let out = run(&paths[0], "xConfiguration Zones Zone 999 Name: \"after\"\n");
        if !out.contains("ERROR") {
            resumed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(resumed, "no write succeeded after the election");
    c.start_member(killed);
    c.wait_healthy();
    assert!(c.get("/t/lead/config").unwrap().contains("\"after\""));
    let gens: Vec<u64> = commits(&c, "/t/lead").iter().map(|(g, _)| *g).collect();
    assert!(gens.windows(2).all(|w| w[1] > w[0]), "{gens:?}");
}

/// All members stopped: a write is refused with the clear error and nothing is written
/// locally; reads are served from the cache, marked stale; once etcd is back writes work.
#[test]
fn quorum_loss_refuses_writes_and_serves_stale_reads() {
    let Some(mut c) = EtcdCluster::start(3) else {
        return;
    };
    let roots = three_peers(&c, "/t/down");
    let a = roots[0].path();
    ok(a, "xConfiguration Shell IdleTimeout: 41\n");
    c.stop_all();
    let before = std::fs::read(a.join("config/xconf.txt")).unwrap();
    let out = run(a, "xConfiguration Shell IdleTimeout: 42\n");
    assert!(out.contains("ERROR"), "{out}");
    assert!(out.contains("the cluster (etcd) is unreachable"), "{out}");
    assert_eq!(std::fs::read(a.join("config/xconf.txt")).unwrap(), before);
    let read = run(a, "xConfiguration Shell IdleTimeout\n");
    assert!(read.contains("IdleTimeout: \"41\""), "{read}");
    assert!(read.contains("*w stale:"), "{read}");
    c.start_all();
    let mut done = false;
    for _ in 0..20 {
        let out = run(a, "xConfiguration Shell IdleTimeout: 43\n");
        if !out.contains("ERROR") {
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(done, "writes did not come back with etcd");
    let read = ok(roots[2].path(), "xConfiguration Shell IdleTimeout\n");
    assert!(
        read.contains("IdleTimeout: \"43\"") && !read.contains("stale"),
        "{read}"
    );
}

/// `Cluster Join` over TLS to an etcd that checks client certificates: a wrong CA, a missing
/// client certificate, a CA-less https:// endpoint and a file that is not PEM are each refused
/// with an error naming what to fix, and write no bootstrap; with the CA and a client
/// certificate the node joins, the PEM text is kept in `cluster.json` (0600, so the source files
/// may go), a set commits in etcd (read back with `etcdctl --cacert --cert --key`) and a second
/// node joined the same way reads it.
#[test]
fn a_node_joins_a_tls_etcd_with_a_client_certificate() {
    let Some(c) = EtcdCluster::start_tls(1, true) else {
        return;
    };
    let pki = c.pki().expect("a TLS cluster");
    let eps = c.endpoints_arg();
    assert!(eps.starts_with("https://"), "{eps}");
    let files = tempfile::tempdir().unwrap();
    let copy = |from: &Path, name: &str| {
        let to = files.path().join(name);
        std::fs::copy(from, &to).unwrap();
        to.display().to_string()
    };
    let (ca, cert, key) = (
        copy(&pki.ca, "ca.pem"),
        copy(&pki.client_cert, "client.pem"),
        copy(&pki.client_key, "client.key"),
    );
    let wrong_ca = files.path().join("other-ca.pem");
    std::fs::write(
        &wrong_ca,
        xsh::certs::pki::TestCa::public_ca2().unwrap().root_pem(),
    )
    .unwrap();
    let not_pem = files.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let join_cmd = |extra: &str| {
        format!(
            "xCommand Cluster Join Endpoints: \"{eps}\" Prefix: \"/t/tls\" PeerName: \"a\"{extra}\n"
        )
    };
    let a = root();
    let boot = a.path().join("config/cluster.json");
    let refused = |extra: String, want: &[&str]| {
        let out = run(a.path(), &join_cmd(&extra));
        assert!(out.contains("ERROR"), "{extra}\n=> {out}");
        for w in want {
            assert!(out.contains(w), "{extra}: wants '{w}'\n=> {out}");
        }
        assert!(!boot.exists(), "{extra}: a refused join wrote cluster.json");
    };
    refused(
        String::new(),
        &["https:// endpoints need CACertificate", "no CA certificate"],
    );
    refused(
        format!(" CACertificate: \"{}\"", not_pem.display()),
        &["CACertificate", "holds no PEM certificate"],
    );
    refused(
        format!(" CACertificate: \"{ca}\" ClientCertificate: \"{cert}\""),
        &["ClientCertificate was given without ClientKey"],
    );
    refused(
        format!(" CACertificate: \"{ca}\" ClientCertificate: \"{cert}\" ClientKey: \"{ca}\""),
        &["ClientKey", "holds no PEM private key"],
    );
    let other_key = pki.server_key.display();
    refused(
        format!(
            " CACertificate: \"{ca}\" ClientCertificate: \"{cert}\" ClientKey: \"{other_key}\""
        ),
        &["the client key does not fit the client certificate"],
    );
    refused(
        format!(
            " CACertificate: \"{}\" ClientCertificate: \"{cert}\" ClientKey: \"{key}\"",
            wrong_ca.display()
        ),
        &[
            "cannot verify the TLS certificate of etcd at https://127.0.0.1:",
            "UnknownIssuer",
            "CACertificate",
        ],
    );
    refused(
        format!(" CACertificate: \"{ca}\""),
        &["refused this peer's TLS connection", "ClientCertificate"],
    );
    assert!(c.keys("/t/tls/").is_empty(), "a refused join wrote to etcd");

    let tls =
        format!(" CACertificate: \"{ca}\" ClientCertificate: \"{cert}\" ClientKey: \"{key}\"");
    let j = ok(a.path(), &join_cmd(&tls));
    assert!(
        j.contains("Content: \"Uploaded\"") && j.contains("Transport: \"MutualTLS\""),
        "{j}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&boot).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&boot).unwrap();
    assert!(
        text.contains("BEGIN CERTIFICATE") && text.contains("PRIVATE KEY"),
        "{text}"
    );
    let st = ok(a.path(), "xStatus Cluster Transport\n");
    assert!(st.contains("Transport: \"MutualTLS\""), "{st}");
    let b = root();
    let j = ok(
        b.path(),
        &join_cmd(&tls).replace("PeerName: \"a\"", "PeerName: \"b\""),
    );
    assert!(j.contains("Content: \"Adopted\""), "{j}");
    // The bootstrap holds the material: the files it came from are not needed any more.
    drop(files);
    ok(a.path(), "xConfiguration Shell IdleTimeout: 42\n");
    let shared = c
        .get("/t/tls/config")
        .expect("the cluster holds the config");
    assert!(shared.contains("IdleTimeout: \"42\""), "{shared}");
    let read = ok(b.path(), "xConfiguration Shell IdleTimeout\n");
    assert!(
        read.contains("IdleTimeout: \"42\"") && !read.contains("stale"),
        "{read}"
    );
}
