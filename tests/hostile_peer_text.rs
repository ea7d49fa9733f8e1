//! A peer writes nothing into the admin's terminal or documents (issue 9 item 4): a client
//! certificate whose subject holds ESC/BEL sequences, other C0 and C1 controls, DEL, `<&"'` and
//! non-ASCII text connects to a real agent (once accepted, once refused), so its subject is
//! recorded in status and in the logs; then `xStatus` in the terminal, XML and JSON modes,
//! `--dump-status xml` and the diagnostic bundle hold no raw control character, the XML is
//! well-formed for `xmllint`, the JSON parses, and the non-ASCII text is still there.

mod agent_support;

use std::io::Read;
use std::process::Command;

use agent_support::*;
use xsh::certs::pki::{LeafEku, LeafSpec};

/// ESC [ 2J (clear screen), an OSC title with BEL, a NUL-free set of other C0, DEL, C1 (CSI as
/// U+009B, NEL), markup characters and non-ASCII letters.
const HOSTILE_CN: &str =
    "evil\u{1b}[2J\u{1b}]0;owned\u{7} \u{1}\u{8}\u{b}\u{1f}\u{7f} \u{9b}31m\u{85} <&\"'> Gr\u{fc}\u{df} \u{65e5}\u{672c}";

/// Raw control characters of `text` (newline and tab, which the formats use, allowed; `\r` is
/// in the C0 range and refused).
fn raw_controls(text: &str) -> Vec<(usize, char)> {
    text.char_indices()
        .filter(|&(_, c)| matches!(c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
        .collect()
}

fn assert_clean(what: &str, text: &str) {
    let bad = raw_controls(text);
    assert!(
        bad.is_empty(),
        "{what}: raw control characters {:?} in:\n{}",
        bad.iter().take(8).collect::<Vec<_>>(),
        text.escape_debug()
    );
}

/// Every `<XmlDoc ...>...</XmlDoc>` (or `<XmlDoc .../>`) of an XML-mode reply stream.
fn xml_docs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<XmlDoc") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let end = if after[..tag_end].ends_with('/') {
            tag_end + 1
        } else {
            match after.find("</XmlDoc>") {
                Some(e) => e + "</XmlDoc>".len(),
                None => break,
            }
        };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

fn xmllint_ok(what: &str, doc: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("doc.xml");
    std::fs::write(&f, doc).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg(&f)
        .output()
        .expect("xmllint runs");
    assert!(
        out.status.success(),
        "{what}: not well-formed: {}\n{doc}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_hostile_subject_reaches_no_terminal_and_breaks_no_document() {
    if !common::require_tool("xmllint", "--version", "libxml2-utils")
        || !common::require_tool("openssl", "version", "openssl")
    {
        return;
    }
    let pki = Pki::new();
    let mut node = Node::new("hostile");
    node.ca_add(&pki.ca1_root());
    let write = |name: &str, text: &str| {
        let p = pki.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let accepted = pki
        .ca1
        .issue(&LeafSpec::new(HOSTILE_CN, LeafEku::ClientAuth))
        .expect("issue the hostile client certificate");
    // serverAuth only: refused in the default mode (On), so the refusal records it too.
    let refused = pki
        .ca1
        .issue(&LeafSpec::new(
            &format!("{HOSTILE_CN} refused"),
            LeafEku::ServerAuth,
        ))
        .expect("issue the refused hostile certificate");
    node.start();
    node.openssl_handshake(
        &write("ok.pem", &accepted.chain_pem),
        &write("ok.key", &accepted.key_pem),
    );
    node.openssl_handshake(
        &write("no.pem", &refused.chain_pem),
        &write("no.key", &refused.key_pem),
    );
    node.wait_leaf("SIP TLS Listener LastAccepted", |v| v.contains("evil"));
    wait_for("the refusal in the handshake log", || {
        let n = node
            .handshakes()
            .iter()
            .filter(|r| r["decision"] == "rejected")
            .count();
        if n > 0 {
            Ok(())
        } else {
            Err(format!("{:?}", node.handshakes()))
        }
    });
    // The logs hold the subject sanitised, as every later reader sees it.
    let hs = std::fs::read_to_string(node.root().join("status/handshakes.log")).unwrap();
    assert_clean("handshakes.log", &hs);
    assert!(hs.contains("evil\\\\x1b[2J"), "{hs}");
    assert_clean("events.log", &node.events());

    // Terminal mode: the subject is there, escaped (then quoted: a backslash shows doubled),
    // with its non-ASCII letters.
    let term = node.ok(&["xStatus"]);
    assert_clean("xStatus (terminal)", &term);
    assert!(term.contains(r"evil\\x1b[2J\\x1b]0;owned\\x07"), "{term}");
    assert!(term.contains(r"\\x9b31m\\x85"), "{term}");
    assert!(term.contains("Gr\u{fc}\u{df} \u{65e5}\u{672c}"), "{term}");

    // XML mode: every document well-formed.
    let xml = node.ok(&["xPreferences OutputMode XML", "xStatus"]);
    assert_clean("xStatus (XML)", &xml);
    let docs = xml_docs(&xml);
    assert!(docs.iter().any(|d| d.contains("evil")), "{xml}");
    for d in &docs {
        xmllint_ok("xStatus (XML)", d);
    }
    assert!(xml.contains("&lt;&amp;&quot;&apos;&gt;"), "{xml}");

    // JSON mode: every document parses, and carries the escaped subject.
    let json = node.ok(&["xPreferences OutputMode JSON", "xStatus"]);
    assert_clean("xStatus (JSON)", &json);
    let docs = json_docs(&json);
    assert!(!docs.is_empty(), "{json}");
    let accepted_leaf = leaf(&docs[0], "SIP TLS Listener LastAccepted").unwrap_or_default();
    assert!(accepted_leaf.contains("evil\\x1b[2J"), "{accepted_leaf}");
    assert!(accepted_leaf.contains("<&\"'>"), "{accepted_leaf}");

    // The status dump as a document.
    let dump = Command::new(XSH)
        .arg("--root")
        .arg(node.root())
        .args(["--dump-status", "xml"])
        .output()
        .unwrap();
    let dump = String::from_utf8(dump.stdout).expect("utf-8 dump");
    assert_clean("--dump-status xml", &dump);
    assert!(dump.contains("evil"), "{dump}");
    xmllint_ok("--dump-status xml", &dump);

    // The diagnostic bundle: every file inside clean, every XML file well-formed.
    let out = tempfile::tempdir().unwrap();
    node.ok(&[&format!(
        "xCommand DiagnosticLogging Collect Folder: \"{}\"",
        out.path().display()
    )]);
    let bundle = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a bundle");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&bundle).unwrap(),
    ));
    let mut seen_subject = false;
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert_clean(&format!("bundle file {name}"), &text);
        seen_subject |= text.contains("evil");
        if name.ends_with(".xml") {
            xmllint_ok(&format!("bundle file {name}"), &text);
        }
    }
    assert!(seen_subject, "the bundle does not hold the peer's subject");
}
