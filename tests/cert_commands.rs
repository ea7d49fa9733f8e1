//! `xCommand Security Certificates ...`, `xStatus Security Certificates` and the
//! single-store upgrade, driven through the real `xsh` binary on temporary
//! roots with generated PKIs (private CA1 issuing any EKU, public CA2 whose
//! serverAuth-only intermediate issues serverAuth-only leaves). OpenSSL is
//! used as an independent reader where it helps.

#[path = "common/mod.rs"]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use xsh::certs::pki::{IssuedLeaf, LeafEku, LeafSpec, TestCa, Validity};

const NO_CLIENT_USAGE: &str = "Invalid certificate: The file provided does not have a client usage attribute. Services requiring mutual TLS may not work.";

struct Node {
    dir: tempfile::TempDir,
}

struct Out {
    stdout: String,
    stderr: String,
    ok: bool,
}

impl Node {
    /// A prepared root (default certificate, both stores).
    fn new() -> Node {
        let n = Node {
            dir: tempfile::tempdir().unwrap(),
        };
        let o = n.run("xstatus SystemUnit Product\n");
        assert!(o.ok, "{} {}", o.stdout, o.stderr);
        n
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn certs(&self) -> PathBuf {
        self.root().join("certs")
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.certs().join(name)).unwrap()
    }

    fn mode(&self, name: &str) -> u32 {
        fs::metadata(self.certs().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    /// Writes an input file outside the root.
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn run(&self, input: &str) -> Out {
        let o = common::xsh_piped(&self.root(), input);
        Out {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            ok: o.status.success(),
        }
    }

    fn run_c(&self, cmd: &str) -> Out {
        let o = Command::new(env!("CARGO_BIN_EXE_xsh"))
            .arg("--root")
            .arg(self.root())
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        Out {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            ok: o.status.success(),
        }
    }

    /// Runs one command (with an optional pasted body) in JSON mode; returns the result object.
    fn cmd(&self, line: &str, body: Option<&str>) -> Value {
        let mut input = format!("xpreferences outputmode json\n{line}\n");
        if let Some(b) = body {
            input.push_str(b);
            if !b.ends_with('\n') {
                input.push('\n');
            }
            input.push_str(".\n");
        }
        let o = self.run(&input);
        let last = o
            .stdout
            .lines()
            .rfind(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON reply to {line}: {} {}", o.stdout, o.stderr));
        let v: Value = serde_json::from_str(last).unwrap();
        let resp = v
            .get("CommandResponse")
            .unwrap_or_else(|| panic!("not a command response: {last}"));
        resp.as_object().unwrap().values().next().unwrap().clone()
    }

    fn ok(&self, line: &str, body: Option<&str>) -> Value {
        let r = self.cmd(line, body);
        assert_eq!(r["status"], "OK", "{line}: {r}");
        r
    }

    fn err(&self, line: &str, body: Option<&str>) -> String {
        let r = self.cmd(line, body);
        assert_eq!(r["status"], "Error", "{line}: {r}");
        val(&r, "Detail")
    }

    fn audit(&self) -> String {
        fs::read_to_string(self.root().join("config").join("audit.log")).unwrap_or_default()
    }

    /// Adds a CA by file.
    fn trust(&self, pem: &str) {
        let f = self.file(&format!("ca{}.pem", rand_name()), pem);
        self.ok(
            &format!("xcommand Security Certificates CA Add File: \"{f}\""),
            None,
        );
    }

    fn upload(&self, store: &str, leaf: &IssuedLeaf, extra: &str) -> Value {
        self.cmd(&self.upload_line(store, leaf, extra), None)
    }

    fn upload_line(&self, store: &str, leaf: &IssuedLeaf, extra: &str) -> String {
        let c = self.file(&format!("c{}.pem", rand_name()), &leaf.chain_pem);
        let k = self.file(&format!("k{}.pem", rand_name()), &leaf.key_pem);
        format!(
            "xcommand Security Certificates {store} Upload CertificateFile: \"{c}\" KeyFile: \"{k}\" {extra}"
        )
    }
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn val(r: &Value, key: &str) -> String {
    r[key]["Value"]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {r}"))
        .to_string()
}

fn warnings(r: &Value) -> Vec<String> {
    r["Warning"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|w| w["Text"]["Value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn leaf(ca: &TestCa, cn: &str, eku: LeafEku) -> IssuedLeaf {
    ca.issue(&LeafSpec::new(cn, eku)).unwrap()
}

fn openssl(args: &[&str]) -> String {
    let o = Command::new("openssl").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn serial_of(pem: &[u8]) -> String {
    let certs = xsh::certs::parse_pem_certs(pem).unwrap();
    xsh::certs::decode(&certs[0], rustls_pki_types::UnixTime::now())
        .unwrap()
        .serial
}

#[test]
fn upload_server_by_file_and_by_pasted_body() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let client_before = n.read("client.pem");

    let a = leaf(&ca1, "core.example", LeafEku::Both);
    let r = n.upload("Server", &a, "");
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(val(&r, "Trusted"), "True");
    assert_eq!(val(&r, "Subject"), "CN=core.example");
    assert_eq!(val(&r, "ExtendedKeyUsage"), "serverAuth, clientAuth");
    // The client store held the same (default) certificate: the upload says it stays.
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{r}");
    assert!(
        w[0].starts_with("the client store keeps the previous certificate"),
        "{r}"
    );
    assert_eq!(
        serial_of(&n.read("server.pem")),
        serial_of(a.cert_pem.as_bytes())
    );
    assert_eq!(n.mode("privkey.pem"), 0o640);
    assert_eq!(
        n.read("client.pem"),
        client_before,
        "client store untouched"
    );
    // OpenSSL reads what was written, and the key is the certificate's.
    let p = n.certs().join("server.pem").display().to_string();
    let k = n.certs().join("privkey.pem").display().to_string();
    assert!(openssl(&["x509", "-in", &p, "-noout", "-subject"]).contains("core.example"));
    assert_eq!(
        openssl(&["x509", "-in", &p, "-noout", "-pubkey"]),
        openssl(&["pkey", "-in", &k, "-pubout"])
    );

    // Pasted body: certificate and key in one PEM text, ended by a line '.'.
    let b = leaf(&ca1, "core2.example", LeafEku::ServerAuth);
    let body = format!("{}{}", b.chain_pem, b.key_pem);
    let r = n.ok("xcommand Security Certificates Server Upload", Some(&body));
    assert_eq!(val(&r, "Subject"), "CN=core2.example");
    assert_eq!(val(&r, "Key"), "with the certificate");
    assert_eq!(
        serial_of(&n.read("server.pem")),
        serial_of(b.cert_pem.as_bytes())
    );
    assert_eq!(n.read("client.pem"), client_before);
    assert!(n.audit().contains("Security Certificates Server Upload"));

    // Terminal mode: the same paste, the documented shape.
    let c = leaf(&ca1, "core3.example", LeafEku::Both);
    let o = n.run(&format!(
        "xcommand Security Certificates Server Upload\n{}{}.\n",
        c.cert_pem, c.key_pem
    ));
    assert!(o.ok, "{}", o.stdout);
    assert!(o
        .stdout
        .contains("*r SecurityCertificatesServerUploadResult (status=OK):"));
    assert!(o.stdout.contains("Subject: \"CN=core3.example\""));
}

#[test]
fn upload_as_client_copies_a_server_auth_only_certificate() {
    let n = Node::new();
    let ca2 = TestCa::public_ca2().unwrap();
    n.trust(ca2.root_pem());
    let l = leaf(&ca2, "edge.example", LeafEku::ServerAuth);
    let r = n.upload("Server", &l, "AlsoAsClient: True");
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(val(&r, "AlsoAsClient"), "True");
    let w = warnings(&r).join("\n");
    assert!(
        w.contains("peers with EKU checking On will reject this node as a TLS client"),
        "{w}"
    );
    assert_eq!(n.read("client.pem"), n.read("server.pem"));
    assert_eq!(n.read("clientprivkey.pem"), n.read("privkey.pem"));
    assert_eq!(n.mode("clientprivkey.pem"), 0o640);
    assert_eq!(
        serial_of(&n.read("client.pem")),
        serial_of(l.cert_pem.as_bytes())
    );
    assert!(n.audit().contains("AlsoAsClient"));
    let s = n.ok("xcommand Security Certificates Client Show", None);
    assert_eq!(val(&s, "SameAsServer"), "True");
    assert_eq!(val(&s, "ExtendedKeyUsage"), "serverAuth");
}

/// One answer for a certificate without an EKU extension (any purpose, as the verifier, OpenSSL
/// and webpki say): Client Upload takes it, Server Upload with AlsoAsClient does not warn about
/// clientAuth, and the client store shows it as any purpose.
#[test]
fn client_upload_without_eku_extension_is_accepted() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let l = leaf(&ca1, "any.example", LeafEku::None);
    let r = n.upload("Client", &l, "");
    assert_eq!(r["status"], "OK", "{r}");
    let s = n.ok("xcommand Security Certificates Client Show", None);
    assert_eq!(
        val(&s, "ExtendedKeyUsage"),
        "none (no extended key usage extension: any purpose)"
    );
    let l = leaf(&ca1, "both.example", LeafEku::None);
    let r = n.upload("Server", &l, "AlsoAsClient: True");
    assert_eq!(r["status"], "OK", "{r}");
    assert!(!r.to_string().contains("without clientAuth"), "{r}");
}

#[test]
fn client_upload_without_client_auth_is_refused_with_the_product_message() {
    let n = Node::new();
    let ca2 = TestCa::public_ca2().unwrap();
    n.trust(ca2.root_pem());
    let (cert, key) = (n.read("client.pem"), n.read("clientprivkey.pem"));
    // No EKU extension is any purpose (domain.md §4): that one goes in, see
    // `client_upload_without_eku_extension_is_accepted`.
    for eku in [LeafEku::ServerAuth, LeafEku::CodeSigningOnly] {
        let l = leaf(&ca2, "edge.example", eku);
        assert_eq!(
            n.err(&n.upload_line("Client", &l, ""), None),
            NO_CLIENT_USAGE
        );
        assert_eq!(n.read("client.pem"), cert, "{eku:?}");
        assert_eq!(n.read("clientprivkey.pem"), key);
    }
    // Terminal mode shows the same text.
    let l = leaf(&ca2, "edge.example", LeafEku::ServerAuth);
    let o = n.run(&format!("{}\n", n.upload_line("Client", &l, "")));
    assert!(!o.ok);
    assert!(o.stdout.contains(NO_CLIENT_USAGE), "{}", o.stdout);
    assert!(n.audit().contains("refused: Invalid certificate"));
    // A clientAuth certificate goes in.
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let good = leaf(&ca1, "core.example", LeafEku::ClientAuth);
    let r = n.upload("Client", &good, "");
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(
        serial_of(&n.read("client.pem")),
        serial_of(good.cert_pem.as_bytes())
    );
}

#[test]
fn bad_uploads_are_refused_and_change_nothing() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let before: Vec<Vec<u8>> = [
        "server.pem",
        "privkey.pem",
        "client.pem",
        "clientprivkey.pem",
    ]
    .iter()
    .map(|f| n.read(f))
    .collect();

    let mut spec = LeafSpec::new("old.example", LeafEku::Both);
    spec.validity = Validity::Expired;
    let expired = ca1.issue(&spec).unwrap();
    let e = n.err(&n.upload_line("Server", &expired, ""), None);
    assert!(
        e.starts_with("certificate 'CN=old.example' expired at "),
        "{e}"
    );

    spec.validity = Validity::NotYetValid;
    let future = ca1.issue(&spec).unwrap();
    let e = n.err(&n.upload_line("Client", &future, ""), None);
    assert!(e.contains("is not valid yet: valid from"), "{e}");

    let a = leaf(&ca1, "a.example", LeafEku::Both);
    let b = leaf(&ca1, "b.example", LeafEku::Both);
    let mixed = IssuedLeaf {
        key_pem: b.key_pem.clone(),
        ..a.clone()
    };
    let e = n.err(&n.upload_line("Server", &mixed, ""), None);
    assert_eq!(e, "private key does not match certificate 'CN=a.example'");

    let e = n.err(
        "xcommand Security Certificates Server Upload",
        Some("hello\nthis is not PEM\n"),
    );
    assert_eq!(e, "certificate: no certificate found in PEM input");
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let e = n.err(
        "xcommand Security Certificates Server Upload",
        Some(garbage),
    );
    assert!(
        e.starts_with("certificate: certificate #1 is not a valid X.509"),
        "{e}"
    );

    let e = n.err(
        "xcommand Security Certificates Server Upload",
        Some(&a.cert_pem),
    );
    assert!(e.starts_with("no private key: give KeyFile"), "{e}");

    let e = n.err(
        "xcommand Security Certificates Server Upload",
        Some(&format!("{}{}", ca1.root_pem(), ca1.root_key_pem())),
    );
    assert!(e.contains("is a CA certificate"), "{e}");

    let cs = leaf(&ca1, "cs.example", LeafEku::ClientAuth);
    let e = n.err(&n.upload_line("Server", &cs, ""), None);
    assert!(e.contains("has no server usage attribute"), "{e}");

    let e = n.err(
        "xcommand Security Certificates Server Upload CertificateFile: /nonexistent/x.pem",
        None,
    );
    assert!(e.starts_with("cannot read file /nonexistent/x.pem"), "{e}");

    let after: Vec<Vec<u8>> = [
        "server.pem",
        "privkey.pem",
        "client.pem",
        "clientprivkey.pem",
    ]
    .iter()
    .map(|f| n.read(f))
    .collect();
    assert_eq!(before, after);
}

#[test]
fn untrusted_upload_warns_clearly() {
    let n = Node::new();
    let other = TestCa::new_root("unknown CA").unwrap();
    let l = leaf(&other, "core.example", LeafEku::Both);
    let r = n.upload("Server", &l, "");
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(val(&r, "Trusted"), "False");
    let w = warnings(&r).join("\n");
    assert!(w.contains("certificate is not trusted: chain does not lead to a trusted CA (issuer 'CN=unknown CA'"), "{w}");
    assert!(w.contains("CA Add"), "{w}");
    let s = n.ok("xcommand Security Certificates Server Show", None);
    assert_eq!(val(&s, "Trusted"), "False");
}

#[test]
fn ca_add_list_remove() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    let ca2 = TestCa::public_ca2().unwrap();
    let list = n.ok("xcommand Security Certificates CA List", None);
    let start: usize = val(&list, "Total").parse().unwrap();

    let body = format!("{}{}", ca1.root_pem(), ca2.root_pem());
    let r = n.ok("xcommand Security Certificates CA Add", Some(&body));
    assert_eq!(val(&r, "Added"), "2");
    assert_eq!(val(&r, "Total"), (start + 2).to_string());
    let r = n.ok(
        "xcommand Security Certificates CA Add",
        Some(ca1.root_pem()),
    );
    assert_eq!(val(&r, "Added"), "0");
    assert_eq!(val(&r, "AlreadyPresent"), "1");
    // An intermediate as trust anchor: the OpenSSL difference is spelled out.
    let r = n.ok(
        "xcommand Security Certificates CA Add",
        Some(ca2.intermediate_pem().unwrap()),
    );
    let w = warnings(&r).join("\n");
    assert!(
        w.contains("not self-signed") && w.contains("openssl"),
        "{w}"
    );

    let list = n.ok("xcommand Security Certificates CA List", None);
    let cas = list["CA"].as_array().unwrap();
    assert_eq!(cas.len(), start + 3);
    let fp_ca1 = cas
        .iter()
        .find(|c| c["Subject"]["Value"] == "CN=xsh test private CA1")
        .unwrap()["Fingerprint"]["Value"]
        .as_str()
        .unwrap()
        .to_string();
    // The fingerprint agrees with OpenSSL's.
    let f = n.file("ca1.pem", ca1.root_pem());
    let o = openssl(&["x509", "-in", &f, "-noout", "-fingerprint", "-sha256"]);
    assert!(o.trim().ends_with(&fp_ca1), "{o} vs {fp_ca1}");
    let st = n.run("xstatus Security Certificates CA Count\n");
    assert!(
        st.stdout.contains(&format!("Count: \"{}\"", start + 3)),
        "{}",
        st.stdout
    );

    let r = n.ok(
        &format!(
            "xcommand Security Certificates CA Remove Fingerprint: {}",
            fp_ca1.replace(':', "").to_lowercase()
        ),
        None,
    );
    assert_eq!(val(&r, "Removed"), "1");
    let r = n.ok(
        "xcommand Security Certificates CA Remove Subject: \"cn=xsh test public CA2 root\"",
        None,
    );
    assert_eq!(val(&r, "Removed"), "1");
    assert_eq!(val(&r, "Total"), (start + 1).to_string());
    let e = n.err(
        "xcommand Security Certificates CA Remove Subject: \"CN=nobody\"",
        None,
    );
    assert_eq!(
        e,
        "no certificate in the trusted CA list has subject 'CN=nobody'"
    );
    let e = n.err("xcommand Security Certificates CA Remove", None);
    assert_eq!(e, "give Fingerprint or Subject of the CA to remove");
    let pem = n.ok("xcommand Security Certificates CA List Format: PEM", None);
    assert_eq!(val(&pem, "PEM").as_bytes(), n.read("ca.pem"));
    assert!(n.audit().contains("Security Certificates CA Remove"));
}

#[test]
fn csr_generate_sign_then_upload_without_key() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let none = n.ok(
        "xcommand Security Certificates CSR Show Store: Client",
        None,
    );
    assert_eq!(
        val(&none, "Status"),
        "no certificate signing request in progress"
    );

    let r = n.ok(
        "xcommand Security Certificates CSR Generate Store: Client CommonName: core.example SubjectAltName: \"core.example, 192.0.2.10\"",
        None,
    );
    assert_eq!(val(&r, "Status"), "certificate signing request in progress");
    assert_eq!(val(&r, "ExtendedKeyUsage"), "serverAuth, clientAuth");
    let csr_pem = val(&r, "PEM");
    assert_eq!(n.mode("generated_csr/client-privkey.pem"), 0o640);
    let st = n.run("xstatus Security Certificates Client SigningRequest\n");
    assert!(
        st.stdout
            .contains("\"certificate signing request in progress\""),
        "{}",
        st.stdout
    );
    let srv = n.ok("xcommand Security Certificates Server Show", None);
    assert_eq!(
        val(&srv, "SigningRequest"),
        "no certificate signing request in progress"
    );

    // OpenSSL checks the request's signature and sees both EKUs.
    let f = n.file("req.csr", &csr_pem);
    let text = openssl(&["req", "-in", &f, "-verify", "-noout", "-text"]);
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    assert!(text.contains("IP Address:192.0.2.10"), "{text}");

    // The CA signs it (rcgen), the admin uploads the certificate without a key.
    let key = rcgen::KeyPair::from_pem(ca1.root_key_pem()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(ca1.root_pem(), key).unwrap();
    let signed = rcgen::CertificateSigningRequestParams::from_pem(&csr_pem)
        .unwrap()
        .signed_by(&issuer)
        .unwrap()
        .pem();
    let before = n.read("clientprivkey.pem");
    let r = n.ok(
        "xcommand Security Certificates Client Upload",
        Some(&signed),
    );
    assert_eq!(val(&r, "Key"), "certificate signing request in progress");
    assert_eq!(val(&r, "Trusted"), "True");
    assert_eq!(
        val(&r, "SigningRequest"),
        "no certificate signing request in progress"
    );
    assert_ne!(n.read("clientprivkey.pem"), before);
    assert_eq!(n.mode("clientprivkey.pem"), 0o640);
    assert!(!n.certs().join("generated_csr/client-privkey.pem").exists());
    let c = n.certs().join("client.pem").display().to_string();
    let k = n.certs().join("clientprivkey.pem").display().to_string();
    assert_eq!(
        openssl(&["x509", "-in", &c, "-noout", "-pubkey"]),
        openssl(&["pkey", "-in", &k, "-pubout"])
    );
    let none = n.ok(
        "xcommand Security Certificates CSR Show Store: Client",
        None,
    );
    assert_eq!(
        val(&none, "Status"),
        "no certificate signing request in progress"
    );

    // A certificate that does not belong to the pending key, without a key: refused.
    n.ok(
        "xcommand Security Certificates CSR Generate Store: Server CommonName: edge.example",
        None,
    );
    let other = leaf(&ca1, "x.example", LeafEku::Both);
    let e = n.err(
        "xcommand Security Certificates Server Upload",
        Some(&other.cert_pem),
    );
    assert!(
        e.contains("does not match the key of the certificate signing request in progress"),
        "{e}"
    );
    n.ok(
        "xcommand Security Certificates CSR Discard Store: Server",
        None,
    );
}

#[test]
fn reset_to_default_server_certificate() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    n.upload("Server", &leaf(&ca1, "core.example", LeafEku::Both), "");
    let client = n.read("client.pem");
    let r = n.ok("xcommand Security Certificates Server Reset", None);
    assert_eq!(val(&r, "Subject"), val(&r, "Issuer"));
    assert_eq!(val(&r, "SelfSigned"), "True");
    let s = n.ok("xcommand Security Certificates Server Show", None);
    assert_eq!(val(&s, "SelfSigned"), "True");
    assert_eq!(val(&s, "SerialNumber"), val(&r, "SerialNumber"));
    assert_eq!(
        n.read("client.pem"),
        client,
        "reset leaves the client store"
    );
    assert_eq!(n.mode("privkey.pem"), 0o640);
    assert!(n.audit().contains("reset to default"));
}

#[test]
fn show_decoded_and_pem() {
    let n = Node::new();
    let ca2 = TestCa::public_ca2().unwrap();
    n.trust(ca2.root_pem());
    let l = leaf(&ca2, "edge.example", LeafEku::ServerAuth);
    n.upload("Server", &l, "");
    let d = n.ok(
        "xcommand Security Certificates Server Show Format: Decoded",
        None,
    );
    assert_eq!(val(&d, "Subject"), "CN=edge.example");
    assert_eq!(
        val(&d, "Issuer"),
        "CN=xsh test public CA2 serverAuth intermediate"
    );
    assert_eq!(val(&d, "SubjectAltName"), "DNS:localhost, IP:127.0.0.1");
    assert_eq!(val(&d, "KeyType"), "ECDSA P-256");
    assert_eq!(val(&d, "ExtendedKeyUsage"), "serverAuth");
    assert_eq!(val(&d, "Trusted"), "True");
    assert_eq!(
        d["Intermediate"][0]["ExtendedKeyUsage"]["Value"],
        "serverAuth"
    );
    let p = n.certs().join("server.pem").display().to_string();
    let o = openssl(&[
        "x509",
        "-in",
        &p,
        "-noout",
        "-fingerprint",
        "-sha256",
        "-serial",
    ]);
    assert!(o.contains(&val(&d, "Fingerprint")), "{o}");
    assert!(o.contains(&val(&d, "SerialNumber").replace(':', "")), "{o}");
    let pem = n.ok(
        "xcommand Security Certificates Server Show Format: PEM",
        None,
    );
    assert_eq!(val(&pem, "PEM").as_bytes(), n.read("server.pem"));
    // Terminal form of the PEM: the multi-line form, the file's bytes between `PEM:` and `.`.
    let o = n.run("xcommand Security Certificates Server Show Format: PEM\n");
    let block = o
        .stdout
        .split_once("    PEM:\n")
        .and_then(|(_, rest)| rest.split_once("\n.\n"))
        .map(|(b, _)| format!("{b}\n"))
        .unwrap_or_else(|| panic!("no PEM block: {}", o.stdout));
    assert_eq!(block.as_bytes(), n.read("server.pem"));
}

#[test]
fn single_store_root_is_upgraded_once_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let certs = root.join("certs");
    fs::create_dir_all(&certs).unwrap();
    let ca1 = TestCa::private_ca1().unwrap();
    let l = leaf(&ca1, "old-x15-4.example", LeafEku::ServerAuth);
    fs::write(certs.join("server.pem"), &l.chain_pem).unwrap();
    fs::write(certs.join("privkey.pem"), &l.key_pem).unwrap();
    fs::write(certs.join("server-ssh.pem"), "ssh material\n").unwrap();
    let n = Node { dir };
    let o = n.run_c("xstatus Security Certificates Client SerialNumber");
    assert!(o.ok, "{} {}", o.stdout, o.stderr);
    assert_eq!(n.read("client.pem"), n.read("server.pem"));
    assert_eq!(n.read("clientprivkey.pem"), n.read("privkey.pem"));
    assert_eq!(n.read("client-ssh.pem"), b"ssh material\n");
    assert_eq!(n.mode("clientprivkey.pem"), 0o640);
    assert!(
        o.stdout.contains(&serial_of(l.cert_pem.as_bytes())),
        "{}",
        o.stdout
    );
    let audit = n.audit();
    assert_eq!(
        audit.matches("Security Certificates Migration").count(),
        1,
        "{audit}"
    );
    assert!(audit.contains("server.pem -> client.pem"), "{audit}");

    let snapshot: Vec<(String, Vec<u8>)> = [
        "server.pem",
        "privkey.pem",
        "client.pem",
        "clientprivkey.pem",
        "client-ssh.pem",
    ]
    .iter()
    .map(|f| (f.to_string(), n.read(f)))
    .collect();
    let o = n.run_c("xstatus Security Certificates Client SameAsServer");
    assert!(o.ok);
    assert!(o.stdout.contains("SameAsServer: \"True\""), "{}", o.stdout);
    for (f, bytes) in &snapshot {
        assert_eq!(&n.read(f), bytes, "{f} changed on the second run");
    }
    assert_eq!(
        n.audit().matches("Security Certificates Migration").count(),
        1
    );
}

#[test]
fn status_shows_both_stores() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    let ca2 = TestCa::public_ca2().unwrap();
    n.trust(ca1.root_pem());
    n.trust(ca2.root_pem());
    let s = leaf(&ca2, "edge.example", LeafEku::ServerAuth);
    let c = leaf(&ca1, "edge-client.example", LeafEku::Both);
    n.upload("Server", &s, "");
    n.upload("Client", &c, "");
    let o = n.run("xstatus Security Certificates\n");
    assert!(o.ok, "{}", o.stdout);
    let out = &o.stdout;
    for want in [
        "Subject: \"CN=edge.example\"",
        "Subject: \"CN=edge-client.example\"",
        "Issuer: \"CN=xsh test public CA2 serverAuth intermediate\"",
        "ExtendedKeyUsage: \"serverAuth\"",
        "ExtendedKeyUsage: \"serverAuth, clientAuth\"",
        "Trusted: \"True\"",
        "SameAsServer: \"False\"",
        "SigningRequest: \"no certificate signing request in progress\"",
    ] {
        assert!(out.contains(want), "missing {want} in\n{out}");
    }
    for leafname in [
        "SerialNumber",
        "NotBefore",
        "NotAfter",
        "DaysLeft",
        "Fingerprint",
    ] {
        assert_eq!(
            out.matches(&format!("{leafname}: \"")).count(),
            2,
            "{leafname}\n{out}"
        );
    }
    assert!(out.contains(&serial_of(s.cert_pem.as_bytes())));
    assert!(out.contains("DaysLeft: \"36"), "{out}");
}

#[test]
fn crl_add_list_and_revoked_upload() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    let l = leaf(&ca1, "revoked.example", LeafEku::Both);
    let crl = ca1
        .crl_revoking(&[&serial_of(l.cert_pem.as_bytes())])
        .unwrap();
    let e = n.err("xcommand Security Certificates CRL Add", Some(&crl));
    assert_eq!(
        e,
        "CRL issuer 'CN=xsh test private CA1' is not in the trusted CA list; add that CA first"
    );
    n.trust(ca1.root_pem());
    let r = n.ok("xcommand Security Certificates CRL Add", Some(&crl));
    assert_eq!(val(&r, "Added"), "1");
    let list = n.ok("xcommand Security Certificates CRL List", None);
    assert_eq!(list["CRL"][0]["Revoked"]["Value"], "1");
    assert_eq!(list["CRL"][0]["File"]["Value"], "client-ca.crl");
    let f = n.certs().join("client-ca.crl").display().to_string();
    let c = n.file("ca1.pem", ca1.root_pem());
    openssl(&["crl", "-in", &f, "-CAfile", &c, "-noout"]);
    let e = n.err(&n.upload_line("Server", &l, ""), None);
    assert!(
        e.contains("is revoked by the installed CRL client-ca.crl"),
        "{e}"
    );
}

#[test]
fn read_only_session_is_refused_for_every_write() {
    let n = Node::new();
    let mut s = xsh::shell::Session::new(&n.root()).unwrap();
    s.read_only = true;
    let before = n.read("server.pem");
    for line in [
        "xcommand Security Certificates Server Reset",
        "xcommand Security Certificates CA Remove Subject: x",
        "xcommand Security Certificates CSR Generate Store: Server CommonName: x",
        "xcommand Security Certificates Client Upload CertificateFile: /x",
        "xcommand Security Certificates CRL Add File: /x",
    ] {
        let reply = s.exec_one(xsh::shell::input::parse_text_line(line), None);
        assert!(!reply.ok, "{line}");
        assert!(reply.text.contains("read-only role"), "{}", reply.text);
    }
    let reply = s.exec_one(
        xsh::shell::input::parse_text_line("xcommand Security Certificates Server Show"),
        None,
    );
    assert!(reply.ok, "{}", reply.text);
    assert_eq!(n.read("server.pem"), before);
    assert!(n.audit().contains("read-only role"));
}

/// Readiness report for a node set up as in each row of the seed matrix (domain.md §3).
#[test]
fn readiness_report_explains_every_seed_row() {
    let ca1 = TestCa::private_ca1().unwrap();
    let ca2 = TestCa::public_ca2().unwrap();
    let report = |n: &Node| {
        let r = n.ok("xcommand Security Certificates EkuReadiness", None);
        let roles: Vec<(String, String, String)> = r["Role"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["Result"]["Value"].as_str().unwrap().to_string(),
                    x["Explanation"]["Value"].as_str().unwrap().to_string(),
                    x["Seed"]["Value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (val(&r, "Mode"), val(&r, "Summary"), roles)
    };
    let set_mode = |n: &Node, m: &str| {
        let o = n.run(&format!(
            "xconfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: {m}\n"
        ));
        assert!(o.ok, "{}", o.stdout);
    };
    let public_node = || {
        let n = Node::new();
        n.trust(ca2.root_pem());
        let r = n.upload(
            "Server",
            &leaf(&ca2, "node.example", LeafEku::ServerAuth),
            "AlsoAsClient: True",
        );
        assert_eq!(r["status"], "OK", "{r}");
        n
    };

    // Test case 1: everything CA2 serverAuth-only, mode On.
    let n = public_node();
    let (mode, summary, roles) = report(&n);
    assert_eq!(mode, "On");
    assert!(summary.starts_with("client certificate is serverAuth-only (issued by a public CA): peers with EKU checking On will reject this node as a TLS client; tunnels will fail"), "{summary}");
    assert_eq!(roles[0].0, "Limited");
    assert!(
        roles[0].1.contains("Test case 1: traversal zone Failed"),
        "{}",
        roles[0].1
    );
    assert_eq!(roles[1].0, "Limited");
    assert!(roles[1].2.contains("Test case 1"), "{:?}", roles[1]);
    assert_eq!(roles[2].0, "Fails");
    assert!(roles[2].1.contains("Tunnels will fail"), "{}", roles[2].1);

    // Test case 2: the same with mode Off: inbound accepts, tunnel still fails.
    set_mode(&n, "Off");
    let (mode, summary, roles) = report(&n);
    assert_eq!(mode, "Off");
    assert!(
        summary.contains("inbound peers with serverAuth-only certificates are accepted"),
        "{summary}"
    );
    assert_eq!(roles[0].0, "Ready");
    assert!(
        roles[0].1.contains("Test case 2: traversal zone Active"),
        "{}",
        roles[0].1
    );
    assert_eq!(roles[2].0, "Fails");
    assert!(roles[2].1.contains("Permission denied"), "{}", roles[2].1);

    // Condition 2.1: client CA1 both, server CA2 serverAuth-only; works in On or Off.
    let n = Node::new();
    n.trust(ca1.root_pem());
    n.trust(ca2.root_pem());
    n.upload(
        "Server",
        &leaf(&ca2, "core.example", LeafEku::ServerAuth),
        "",
    );
    n.upload("Client", &leaf(&ca1, "core.example", LeafEku::Both), "");
    for m in ["On", "Off"] {
        set_mode(&n, m);
        let (_, summary, roles) = report(&n);
        assert!(
            summary.starts_with("client certificate lists clientAuth"),
            "{summary}"
        );
        assert!(
            roles[0].1.contains("serverAuth-only") && roles[0].2.contains("Condition 2.1"),
            "{:?}",
            roles[0]
        );
        assert_eq!(roles[1].0, "Ready");
        assert!(roles[1].2.contains("Condition 2.1"));
        assert_eq!(roles[2].0, "Ready");
        assert!(roles[2].1.contains("Condition 2.1: tunnel Active"));
    }

    // Condition 3: CA1 everywhere; works where the peer trusts CA1.
    let n = Node::new();
    n.trust(ca1.root_pem());
    n.upload("Server", &leaf(&ca1, "core.example", LeafEku::Both), "");
    n.upload("Client", &leaf(&ca1, "core.example", LeafEku::Both), "");
    let (_, _, roles) = report(&n);
    assert_eq!(roles[1].0, "Ready");
    assert!(roles[1].2.contains("Condition 3"));
    assert!(
        roles[1]
            .1
            .contains("Peers must trust 'CN=xsh test private CA1' (Condition 3"),
        "{}",
        roles[1].1
    );

    // Condition 4: the Edge's CA2 serverAuth-only server certificate copied to its client store.
    let n = public_node();
    let (_, _, roles) = report(&n);
    assert!(roles[1].2.contains("Condition 4"), "{:?}", roles[1]);
    assert!(
        roles[1]
            .1
            .contains("a remote that checks clientAuth fails unless it turns checking Off"),
        "{}",
        roles[1].1
    );

    // The intermediate-as-anchor difference from OpenSSL, where it applies.
    let n = Node::new();
    n.trust(ca2.intermediate_pem().unwrap());
    let (_, _, roles) = report(&n);
    assert!(
        roles[0].1.contains("openssl verify -purpose sslclient"),
        "{}",
        roles[0].1
    );
    let n = Node::new();
    n.trust(ca1.root_pem());
    let both_under_server_only = TestCa::public_ca2().unwrap();
    n.trust(both_under_server_only.root_pem());
    let r = n.upload(
        "Client",
        &leaf(&both_under_server_only, "c.example", LeafEku::Both),
        "",
    );
    assert!(
        warnings(&r).join(" ").contains("OpenSSL still checks it"),
        "{r}"
    );
    // OpenSSL agrees that such a chain fails the sslclient purpose with a roots-only list.
    let l = leaf(&both_under_server_only, "c2.example", LeafEku::Both);
    let root_f = n.file("r.pem", both_under_server_only.root_pem());
    let inter_f = n.file("i.pem", &l.intermediates_pem);
    let leaf_f = n.file("l.pem", &l.cert_pem);
    let verify = |purpose: &str| {
        Command::new("openssl")
            .args([
                "verify",
                "-purpose",
                purpose,
                "-CAfile",
                &root_f,
                "-untrusted",
                &inter_f,
                &leaf_f,
            ])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(!verify("sslclient"));
    assert!(verify("sslserver"));
    let (_, summary, roles) = report(&n);
    assert!(summary.contains("intermediate"), "{summary}");
    assert_eq!(roles[1].0, "Limited");
    assert!(roles[1].1.contains("OpenSSL does not"), "{}", roles[1].1);
    assert_eq!(roles[2].0, "Fails");
}

#[test]
fn empty_and_any_eku_uploads_are_refused() {
    let n = Node::new();
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let empty = leaf(&ca1, "empty.example", LeafEku::Empty);
    let e = n.err(&n.upload_line("Server", &empty, ""), None);
    assert!(e.contains("empty extended key usage"), "{e}");
    let any = leaf(&ca1, "any.example", LeafEku::AnyOnly);
    assert_eq!(
        n.err(&n.upload_line("Client", &any, ""), None),
        NO_CLIENT_USAGE
    );
    let e = n.err(&n.upload_line("Server", &any, ""), None);
    assert!(e.contains("has no server usage attribute"), "{e}");
}

/// The text of the multi-line value `key` of a terminal reply: the lines between `<key>:` and `.`.
fn terminal_block(out: &str, key: &str) -> String {
    out.split_once(&format!("    {key}:\n"))
        .and_then(|(_, rest)| rest.split_once("\n.\n"))
        .map(|(b, _)| format!("{b}\n"))
        .unwrap_or_else(|| panic!("no {key} block: {out}"))
}

#[test]
fn pem_is_printed_as_lines_that_copy_from_the_terminal() {
    let n = Node::new();
    let o = n.run(
        "xcommand Security Certificates CSR Generate Store: Server CommonName: edge.example\n",
    );
    assert!(o.ok, "{} {}", o.stdout, o.stderr);
    // What an admin selects on the screen, BEGIN to END, is the request: OpenSSL verifies it.
    let block = terminal_block(&o.stdout, "PEM");
    assert!(block.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
    assert!(block.ends_with("-----END CERTIFICATE REQUEST-----\n"));
    let f = n.file("copied.csr", &block);
    let text = openssl(&["req", "-in", &f, "-verify", "-noout", "-subject"]);
    assert!(text.contains("edge.example"), "{text}");
    // The reply names both files; the CSR file holds what was shown.
    let csr_file = n.certs().join("generated_csr/server.csr");
    let key_file = n.certs().join("generated_csr/server-privkey.pem");
    assert!(o
        .stdout
        .contains(&format!("    CsrFile: \"{}\"\n", csr_file.display())));
    assert!(o
        .stdout
        .contains(&format!("    KeyFile: \"{}\"\n", key_file.display())));
    assert_eq!(fs::read_to_string(&csr_file).unwrap(), block);
    let show = n.run("xcommand Security Certificates CSR Show Store: Server\n");
    assert_eq!(terminal_block(&show.stdout, "PEM"), block);

    // The same shape for the stores and the CA list.
    let client = n.run("xcommand Security Certificates Client Show Format: PEM\n");
    assert_eq!(
        terminal_block(&client.stdout, "PEM").as_bytes(),
        n.read("client.pem")
    );
    let ca = n.run("xcommand Security Certificates CA List Format: PEM\n");
    assert_eq!(
        terminal_block(&ca.stdout, "PEM").as_bytes(),
        n.read("ca.pem")
    );

    // JSON: one string, newlines escaped by JSON; XML: the element's text holds the lines.
    let j = n.ok(
        "xcommand Security Certificates CSR Show Store: Server",
        None,
    );
    assert_eq!(val(&j, "PEM"), block);
    let x = n.run(
        "xpreferences outputmode xml\nxcommand Security Certificates CSR Show Store: Server\n",
    );
    let xml_text = x
        .stdout
        .split_once("<PEM>")
        .and_then(|(_, r)| r.split_once("</PEM>"))
        .map(|(t, _)| t.to_string())
        .unwrap_or_else(|| panic!("no <PEM>: {}", x.stdout));
    assert_eq!(xml_text, block);

    // The screen, with what changes per run masked.
    let root = n.root().display().to_string();
    let mut masked = Vec::new();
    let mut in_pem = false;
    for l in o.stdout.replace(&root, "<ROOT>").lines() {
        if l.starts_with("-----BEGIN") {
            in_pem = true;
            masked.push(l.to_string());
            masked.push("<base64>".to_string());
        } else if l.starts_with("-----END") {
            in_pem = false;
            masked.push(l.to_string());
        } else if l.starts_with("    Created: ") {
            masked.push("    Created: \"<time>\"".to_string());
        } else if !in_pem {
            masked.push(l.to_string());
        }
    }
    insta::assert_snapshot!("csr_generate_terminal", masked.join("\n"));
}

#[test]
fn csr_options_subject_key_type_and_digest() {
    let n = Node::new();
    // (parameters, OpenSSL's key line, OpenSSL's signature algorithm, KeyType shown)
    let cases = [
        (
            "",
            "Public-Key: (256 bit)",
            "ecdsa-with-SHA256",
            "ECDSA P-256",
        ),
        (
            "KeyType: ECDSA KeyLength: 384",
            "Public-Key: (384 bit)",
            "ecdsa-with-SHA384",
            "ECDSA P-384",
        ),
        (
            "KeyType: RSA Digest: SHA512",
            "Public-Key: (2048 bit)",
            "sha512WithRSAEncryption",
            "RSA 2048",
        ),
        (
            "KeyLength: 3072 Digest: SHA384",
            "Public-Key: (3072 bit)",
            "sha384WithRSAEncryption",
            "RSA 3072",
        ),
        (
            "KeyType: RSA KeyLength: 4096",
            "Public-Key: (4096 bit)",
            "sha256WithRSAEncryption",
            "RSA 4096",
        ),
    ];
    for (extra, key_line, sig, shown) in cases {
        let o = n.run(&format!(
            "xcommand Security Certificates CSR Generate Store: Client CommonName: core.example ExtendedKeyUsage: ClientAuth Organization: \"Acme Health\" OrganizationalUnit: \"Voice Team\" Country: de State: Bavaria Locality: Munich {extra}\n"
        ));
        assert!(o.ok, "{extra}: {} {}", o.stdout, o.stderr);
        assert!(
            o.stdout.contains(&format!("    KeyType: \"{shown}\"\n")),
            "{extra}: {}",
            o.stdout
        );
        // The request as copied from the screen verifies and says what was asked for.
        let f = n.file("opt.csr", &terminal_block(&o.stdout, "PEM"));
        let text = openssl(&["req", "-in", &f, "-verify", "-noout", "-text"]);
        assert!(text.contains(key_line), "{extra}: {text}");
        assert!(
            text.contains(&format!("Signature Algorithm: {sig}")),
            "{extra}: {text}"
        );
        assert!(
            text.contains(
                "Subject: C=DE, ST=Bavaria, L=Munich, O=Acme Health, OU=Voice Team, CN=core.example"
            ) || text.contains(
                "Subject: C = DE, ST = Bavaria, L = Munich, O = Acme Health, OU = Voice Team, CN = core.example"
            ),
            "{extra}: {text}"
        );
        assert!(
            text.contains("TLS Web Client Authentication"),
            "{extra}: {text}"
        );
        assert!(
            !text.contains("TLS Web Server Authentication"),
            "{extra}: {text}"
        );
    }

    // The RSA request, signed by a private CA, goes into the client store without a key.
    let ca1 = TestCa::private_ca1().unwrap();
    n.trust(ca1.root_pem());
    let r = n.ok(
        "xcommand Security Certificates CSR Generate Store: Client CommonName: core.example KeyType: RSA",
        None,
    );
    let key = rcgen::KeyPair::from_pem(ca1.root_key_pem()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(ca1.root_pem(), key).unwrap();
    let signed = rcgen::CertificateSigningRequestParams::from_pem(&val(&r, "PEM"))
        .unwrap()
        .signed_by(&issuer)
        .unwrap()
        .pem();
    let up = n.ok(
        "xcommand Security Certificates Client Upload",
        Some(&signed),
    );
    assert_eq!(val(&up, "Key"), "certificate signing request in progress");
    let show = n.ok("xcommand Security Certificates Client Show", None);
    assert_eq!(val(&show, "KeyType"), "RSA 2048");

    // Choices that cannot work are refused before any key is made, each with its reason.
    for (extra, detail) in [
        (
            "Digest: SHA512",
            "an ECDSA P-256 key signs with SHA-256 only, not SHA-512",
        ),
        (
            "KeyType: ECDSA KeyLength: 4096",
            "an ECDSA key is 256 (P-256) or 384 (P-384) bits, not 4096",
        ),
        (
            "KeyType: RSA KeyLength: 256",
            "an RSA key is 2048, 3072 or 4096 bits, not 256",
        ),
        (
            "Country: D1",
            "Country must be a two-letter country code (ISO 3166, e.g. DE), not 'D1'",
        ),
    ] {
        let r = n.cmd(
            &format!("xcommand Security Certificates CSR Generate Store: Server CommonName: x.example {extra}"),
            None,
        );
        assert_eq!(r["Code"]["Value"], "E151", "{extra}: {r}");
        assert!(val(&r, "Detail").starts_with(detail), "{extra}: {r}");
    }
    let none = n.ok(
        "xcommand Security Certificates CSR Show Store: Server",
        None,
    );
    assert_eq!(
        val(&none, "Status"),
        "no certificate signing request in progress"
    );
}
