//! `SIP TLS Certificate Revocation ...` in the running agent: with checking On, a client whose
//! certificate an installed CRL lists is refused at the handshake (alert certificate_revoked, and
//! the listener says why); a certificate no CRL covers follows the fallback (Allow/Deny); Off
//! accepts again. Every change goes through `xsh` while the agent runs.

mod agent_support;

use std::path::{Path, PathBuf};

use agent_support::{wait_for, Node};
use xsh::certs::pki::{LeafEku, LeafSpec, TestCa};

struct Client {
    cert: PathBuf,
    key: PathBuf,
    serial: String,
}

fn client(ca: &TestCa, cn: &str, dir: &Path) -> Client {
    let l = ca.issue(&LeafSpec::new(cn, LeafEku::Both)).unwrap();
    let cert = dir.join(format!("{cn}.pem"));
    let key = dir.join(format!("{cn}.key"));
    std::fs::write(&cert, &l.cert_pem).unwrap();
    std::fs::write(&key, &l.key_pem).unwrap();
    let serial = agent_support::pem_serial(&l.cert_pem);
    Client { cert, key, serial }
}

/// Runs handshakes until the listener's decision for `c` is the expected one. The decision is
/// read from the handshake log, which the agent writes as each handshake ends (status counters
/// are published on a timer, so they can lag one handshake behind).
fn expect(node: &Node, c: &Client, accepted: bool, reason: &str) -> String {
    let log = node.root().join("status").join("handshakes.log");
    let want = if accepted { "accepted" } else { reason };
    wait_for(&format!("{} {want}", c.serial), || {
        let seen = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count();
        node.openssl_handshake(&c.cert, &c.key);
        let mut last = String::new();
        for _ in 0..40 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .skip(seen)
                .filter(|l| l.contains(&c.serial))
                .last()
            {
                last = line.to_string();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let ok = if accepted {
            last.contains("\"decision\":\"accepted\"")
        } else {
            last.contains("\"decision\":\"rejected\"") && last.contains(reason)
        };
        if ok {
            Ok(last)
        } else {
            Err(format!("last handshake record: {last}"))
        }
    })
}

#[test]
fn crls_are_checked_in_the_handshake_with_the_fallback() {
    let files = tempfile::tempdir().unwrap();
    let ca1 = TestCa::private_ca1().unwrap();
    let other = TestCa::new_root("xsh test CA without CRL").unwrap();
    let ca1_root = files.path().join("ca1.pem");
    let other_root = files.path().join("other.pem");
    std::fs::write(&ca1_root, ca1.root_pem()).unwrap();
    std::fs::write(&other_root, other.root_pem()).unwrap();
    let revoked = client(&ca1, "revoked.example", files.path());
    let good = client(&ca1, "good.example", files.path());
    let uncovered = client(&other, "uncovered.example", files.path());
    let crl = files.path().join("ca1.crl");
    std::fs::write(&crl, ca1.crl_revoking(&[&revoked.serial]).unwrap()).unwrap();

    let mut node = Node::new("crl");
    node.ok(&[
        &format!(
            "xCommand Security Certificates CA Add File: \"{}\"",
            ca1_root.display()
        ),
        &format!(
            "xCommand Security Certificates CA Add File: \"{}\"",
            other_root.display()
        ),
    ]);
    node.start();
    // Checking Off (the default): the CRL is not consulted yet.
    node.ok(&[&format!(
        "xCommand Security Certificates CRL Add File: \"{}\"",
        crl.display()
    )]);
    expect(&node, &revoked, true, "");

    node.ok(&["xConfiguration SIP TLS Certificate Revocation Checking Mode: On"]);
    let why = expect(&node, &revoked, false, "revoked by an installed CRL");
    assert!(why.contains("revoked.example"), "{why}");
    expect(&node, &good, true, "");
    // Fallback Allow (the default): a certificate no CRL covers passes.
    expect(&node, &uncovered, true, "");

    node.ok(&["xConfiguration SIP TLS Certificate Revocation Fallback Mode: Deny"]);
    expect(&node, &uncovered, false, "revocation status");
    expect(&node, &good, true, "");

    // CRL Mode Off: installed CRLs are not used, so nothing is refused for revocation.
    node.ok(&["xConfiguration SIP TLS Certificate Revocation CRL Mode: Off"]);
    expect(&node, &revoked, true, "");
    node.ok(&["xConfiguration SIP TLS Certificate Revocation Checking Mode: Off"]);
    expect(&node, &uncovered, true, "");
}
