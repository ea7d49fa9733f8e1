//! Every certificate failure through the real `xsh` binary: its own stable code, its specific
//! `Reason` (the product's wording for the client usage refusal), and a `Hint` where there is a
//! way out — the same in terminal and JSON mode. The terminal replies are snapshotted.

#[path = "common/mod.rs"]
mod common;

use std::fs;
use std::path::PathBuf;

use serde_json::Value;
use xsh::certs::pki::{IssuedLeaf, LeafEku, LeafSpec, TestCa, Validity};

const NO_CLIENT_USAGE: &str = "Invalid certificate: The file provided does not have a client usage attribute. Services requiring mutual TLS may not work.";

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let n = Node {
            dir: tempfile::tempdir().unwrap(),
        };
        let o = n.run("xstatus SystemUnit Product\n");
        assert!(o.contains("*s SystemUnit"), "{o}");
        n
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn run(&self, input: &str) -> String {
        let o = common::xsh_piped(&self.root(), input);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn input(line: &str, body: Option<&str>) -> String {
        let mut input = format!("{line}\n");
        if let Some(b) = body {
            input.push_str(b);
            if !b.ends_with('\n') {
                input.push('\n');
            }
            input.push_str(".\n");
        }
        input
    }

    /// The JSON error object of one command.
    fn json(&self, line: &str, body: Option<&str>) -> Value {
        let o = self.run(&format!(
            "xpreferences outputmode json\n{}",
            Node::input(line, body)
        ));
        let last = o.lines().rfind(|l| l.starts_with('{')).unwrap();
        let v: Value = serde_json::from_str(last).unwrap();
        v["CommandResponse"]
            .as_object()
            .unwrap_or_else(|| panic!("not a command response: {last}"))
            .values()
            .next()
            .unwrap()
            .clone()
    }

    fn terminal(&self, line: &str, body: Option<&str>) -> String {
        self.run(&Node::input(line, body))
    }

    fn trust(&self, pem: &str) {
        let f = self.file("trust.pem", pem);
        let o = self.terminal(
            &format!("xcommand Security Certificates CA Add File: \"{f}\""),
            None,
        );
        assert!(o.contains("(status=OK)"), "{o}");
    }

    fn upload_line(&self, store: &str, leaf: &IssuedLeaf, n: usize) -> String {
        let c = self.file(&format!("c{n}.pem"), &leaf.chain_pem);
        let k = self.file(&format!("k{n}.pem"), &leaf.key_pem);
        format!(
            "xcommand Security Certificates {store} Upload CertificateFile: \"{c}\" KeyFile: \"{k}\""
        )
    }
}

/// One failure: the command, its pasted body, the code and reason it must get, a hint or not.
struct Case {
    name: &'static str,
    line: String,
    body: Option<String>,
    code: &'static str,
    reason: &'static str,
    hint: Option<&'static str>,
    /// The detail holds times or serial numbers: digits are masked in the snapshot.
    mask_digits: bool,
}

fn case(name: &'static str, line: String, code: &'static str, reason: &'static str) -> Case {
    Case {
        name,
        line,
        body: None,
        code,
        reason,
        hint: None,
        mask_digits: false,
    }
}

fn serial_of(pem: &[u8]) -> String {
    let certs = xsh::certs::parse_pem_certs(pem).unwrap();
    xsh::certs::decode(&certs[0], rustls_pki_types::UnixTime::now())
        .unwrap()
        .serial
}

fn cases(n: &Node, ca1: &TestCa) -> Vec<Case> {
    let issue = |cn: &str, eku: LeafEku, validity: Validity| {
        let mut spec = LeafSpec::new(cn, eku);
        spec.validity = validity;
        ca1.issue(&spec).unwrap()
    };
    let server_only = issue("edge.example", LeafEku::ServerAuth, Validity::Valid);
    let both = issue("a.example", LeafEku::Both, Validity::Valid);
    let other = issue("b.example", LeafEku::Both, Validity::Valid);
    let mixed = IssuedLeaf {
        key_pem: other.key_pem.clone(),
        ..both.clone()
    };
    let upload = "xcommand Security Certificates Server Upload";
    let mut v = Vec::new();

    let mut c = case(
        "no client usage attribute",
        n.upload_line("Client", &server_only, 1),
        "E120",
        NO_CLIENT_USAGE,
    );
    c.hint = Some("Server Upload CertificateFile: <server.pem> AlsoAsClient: True");
    v.push(c);
    let mut c = case(
        "expired",
        n.upload_line(
            "Server",
            &issue("old.example", LeafEku::Both, Validity::Expired),
            2,
        ),
        "E130",
        "Certificate expired",
    );
    c.mask_digits = true;
    v.push(c);
    let mut c = case(
        "not yet valid",
        n.upload_line(
            "Client",
            &issue("new.example", LeafEku::Both, Validity::NotYetValid),
            3,
        ),
        "E131",
        "Certificate not yet valid",
    );
    c.mask_digits = true;
    v.push(c);
    v.push(case(
        "key does not match",
        n.upload_line("Server", &mixed, 4),
        "E113",
        "Key does not match certificate",
    ));
    let mut c = case("not PEM", upload.into(), "E100", "Not a PEM certificate");
    c.body = Some("hello\nthis is not PEM\n".into());
    v.push(c);
    let mut c = case("not X.509", upload.into(), "E101", "Invalid certificate");
    c.body = Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into());
    v.push(c);
    let mut c = case("no key", upload.into(), "E110", "No private key");
    c.body = Some(both.cert_pem.clone());
    c.hint = Some("CSR Generate Store: Server");
    v.push(c);
    let enc = n.file(
        "enc.pem",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let cert = n.file("both.pem", &both.cert_pem);
    let mut c = case(
        "encrypted key",
        format!("{upload} CertificateFile: \"{cert}\" KeyFile: \"{enc}\""),
        "E112",
        "Private key is encrypted",
    );
    c.hint = Some("openssl pkey");
    v.push(c);
    let mut c = case(
        "CA certificate as node certificate",
        upload.into(),
        "E123",
        "Certificate is a CA certificate",
    );
    c.body = Some(format!("{}{}", ca1.root_pem(), ca1.root_key_pem()));
    c.hint = Some("CA Add");
    v.push(c);
    let mut c = case(
        "no server usage attribute",
        n.upload_line(
            "Server",
            &issue("cs.example", LeafEku::ClientAuth, Validity::Valid),
            5,
        ),
        "E121",
        "Invalid certificate: no server usage attribute",
    );
    c.hint = Some("serverAuth");
    v.push(c);
    v.push(case(
        "empty extended key usage",
        n.upload_line(
            "Client",
            &issue("empty.example", LeafEku::Empty, Validity::Valid),
            6,
        ),
        "E122",
        "Invalid certificate: empty extended key usage",
    ));
    v.push(case(
        "unreadable file",
        format!("{upload} CertificateFile: \"/nonexistent/x.pem\""),
        "E103",
        "Cannot read file",
    ));
    let big = n.file("big.pem", &"A".repeat(1024 * 1024 + 1));
    v.push(case(
        "too large",
        format!("{upload} CertificateFile: \"{big}\""),
        "E102",
        "File too large",
    ));
    let untrusted = TestCa::new_root("unknown CA").unwrap();
    let l = untrusted
        .issue(&LeafSpec::new("x.example", LeafEku::Both))
        .unwrap();
    let mut c = case(
        "CRL not trusted by the CA list",
        "xcommand Security Certificates CRL Add".into(),
        "E133",
        "Not trusted by the CA list",
    );
    c.body = Some(
        untrusted
            .crl_revoking(&[&serial_of(l.cert_pem.as_bytes())])
            .unwrap(),
    );
    c.hint = Some("CA Add");
    v.push(c);
    v.push(case(
        "CA to remove not found",
        format!(
            "xcommand Security Certificates CA Remove Fingerprint: {}",
            "AB".repeat(32)
        ),
        "E150",
        "No such certificate",
    ));
    v.push(case(
        "CSR with a bad SubjectAltName",
        "xcommand Security Certificates CSR Generate Store: Client CommonName: a.example SubjectAltName: \"not a name!\"".into(),
        "E151",
        "Invalid certificate request",
    ));
    v
}

fn masked(text: &str, dir: &str, mask_digits: bool) -> String {
    text.replace(dir, "<DIR>")
        .lines()
        .map(|l| {
            if mask_digits && l.trim_start().starts_with("Detail:") {
                l.chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .collect()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_certificate_failure_has_its_code_reason_and_hint() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let dir = n.dir.path().display().to_string();
    let all = cases(&n, &ca1);
    let mut codes = std::collections::HashSet::new();
    let mut transcript = String::new();
    for c in &all {
        assert!(
            codes.insert(c.code),
            "{}: code {} used twice",
            c.name,
            c.code
        );
        let j = n.json(&c.line, c.body.as_deref());
        assert_eq!(j["status"], "Error", "{}: {j}", c.name);
        assert_eq!(j["Code"]["Value"], c.code, "{}: {j}", c.name);
        assert_eq!(j["Reason"]["Value"], c.reason, "{}: {j}", c.name);
        match c.hint {
            Some(h) => {
                let got = j["Hint"]["Value"].as_str().unwrap_or_default();
                assert!(got.contains(h), "{}: hint {got:?} lacks {h:?}", c.name);
            }
            None => assert!(j.get("Hint").is_none(), "{}: {j}", c.name),
        }
        let t = n.terminal(&c.line, c.body.as_deref());
        assert!(
            t.contains(&format!("    Reason: \"{}\"\n", c.reason)),
            "{}: {t}",
            c.name
        );
        assert!(
            t.contains(&format!("    Code: \"{}\"\n", c.code)),
            "{}: {t}",
            c.name
        );
        assert!(t.ends_with("*r/end\nERROR\n"), "{}: {t}", c.name);
        transcript.push_str(&format!("## {}\n", c.name));
        transcript.push_str(&masked(&t, &dir, c.mask_digits));
        transcript.push('\n');
    }
    insta::assert_snapshot!("cert_errors_terminal", transcript);
}

#[test]
fn revoked_upload_has_its_own_code() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let l = ca1
        .issue(&LeafSpec::new("revoked.example", LeafEku::Both))
        .unwrap();
    let crl = ca1
        .crl_revoking(&[&serial_of(l.cert_pem.as_bytes())])
        .unwrap();
    let o = n.terminal("xcommand Security Certificates CRL Add", Some(&crl));
    assert!(o.contains("(status=OK)"), "{o}");
    let j = n.json(&n.upload_line("Server", &l, 1), None);
    assert_eq!(j["Code"]["Value"], "E132", "{j}");
    assert_eq!(j["Reason"]["Value"], "Certificate revoked", "{j}");
    let t = n.terminal(&n.upload_line("Server", &l, 2), None);
    assert!(t.contains("    Code: \"E132\"\n"), "{t}");
}
