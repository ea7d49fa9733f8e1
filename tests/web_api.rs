//! The HTTPS plane from outside: a real `xagent` on a temporary root, real `curl` and
//! `openssl s_client`. getxml/putxml with the product's documents, HTTP/2 and keep-alive, a new
//! server certificate presented without a restart, the security headers, CSRF, body limits,
//! passwords, lockout and read-only accounts.

#[path = "common/mod.rs"]
mod common;

use common::web::WebAgent;

const PW: &str = "correct-horse-9";

fn tools() -> bool {
    common::require_tool("curl", "--version", "curl")
        && common::require_tool("openssl", "version", "openssl")
}

/// An agent with a read-write `admin` and a read-only `viewer`.
fn agent() -> WebAgent {
    let a = WebAgent::start();
    a.add_account("admin", PW, "ReadWrite");
    a.add_account("viewer", PW, "ReadOnly");
    a
}

fn basic(user: &str) -> String {
    format!("{user}:{PW}")
}

/// What the shell's XML mode prints for `xGetXML path`, without its `OK` terminator.
fn shell_getxml(a: &WebAgent, path: &str) -> String {
    let out = a.xsh_ok(&format!("xPreferences outputmode xml\nxGetXML {path}\n"));
    let start = out.find("<?xml").expect("an XML document");
    out[start..]
        .strip_suffix("OK\n")
        .expect("the OK terminator")
        .to_string()
}

fn getxml(a: &WebAgent, location: &str) -> common::web::Reply {
    a.curl(&[
        "-u",
        &basic("admin"),
        &a.url(&format!("/getxml?location={location}")),
    ])
}

fn putxml(a: &WebAgent, user: &str, doc: &str) -> common::web::Reply {
    a.curl(&[
        "-u",
        &basic(user),
        "-H",
        "X-CSRF-Header: 1",
        "-H",
        "Content-Type: text/xml",
        "--data-binary",
        doc,
        &a.url("/putxml"),
    ])
}

#[test]
fn getxml_is_the_shells_document() {
    if !tools() {
        return;
    }
    let a = agent();
    let want = shell_getxml(&a, "/Configuration/SIP");
    for loc in ["/Configuration/SIP", "Configuration/SIP"] {
        let r = getxml(&a, loc);
        assert_eq!(r.code, 200, "{r:?}");
        assert_eq!(r.header("content-type"), Some("text/xml; charset=utf-8"));
        assert_eq!(r.body, want, "location {loc}");
    }
    let r = getxml(&a, "/Status/SystemUnit");
    assert_eq!(r.code, 200);
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Status xmlns="),
        "{}",
        r.body
    );
    assert!(r.body.contains("<SystemUnit>"), "{}", r.body);
    let whole = a.curl(&["-u", &basic("admin"), &a.url("/configuration.xml")]);
    assert_eq!(whole.body, shell_getxml(&a, "/Configuration"));
    // An unknown location: the error document with the shell's code, as a document.
    let r = getxml(&a, "/Configuration/Nope");
    assert_eq!(r.code, 200);
    insta::assert_snapshot!(r.body, @r#"
    <?xml version="1.0" encoding="UTF-8"?>
    <Fault status="Error">
      <Reason>No match on address expression</Reason>
      <XPath>Configuration/Nope</XPath>
      <Code>E030</Code>
      <Detail>no such path: Nope</Detail>
    </Fault>
    "#);
}

#[test]
fn putxml_applies_one_transaction_or_nothing() {
    if !tools() {
        return;
    }
    let a = agent();
    let name = |a: &WebAgent| getxml(a, "/Configuration/Zones/Zone[1]/Name").body;
    let r = putxml(
        &a,
        "admin",
        "<?xml version=\"1.0\"?>\n<Configuration>\n  <Zones>\n    <Zone item=\"1\">\n      <Name>edge \"one\" SIP TLS Port: 1</Name>\n    </Zone>\n  </Zones>\n</Configuration>\n",
    );
    assert_eq!(r.code, 200, "{r:?}");
    assert_eq!(
        r.body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Configuration><Success/></Configuration>\n"
    );
    let stored = name(&a);
    assert!(
        stored.contains("edge &quot;one&quot; SIP TLS Port: 1</Name>"),
        "one value, nothing injected: {stored}"
    );
    let shell = a.xsh_ok("xConfiguration SIP TLS Port\n");
    assert!(!shell.contains("Port: 1\n"), "{shell}");

    let before = a.xsh_ok("xConfiguration\n");
    // A valid leaf and an illegal one: neither is stored.
    let r = putxml(
        &a,
        "admin",
        "<Configuration><Zones><Zone item=\"1\"><Name>changed</Name></Zone></Zones><SIP><TLS><Port>notanumber</Port></TLS></SIP></Configuration>",
    );
    assert_eq!(r.code, 400, "{r:?}");
    assert!(
        r.body.contains("<Configuration status=\"Error\">"),
        "{}",
        r.body
    );
    assert!(r.body.contains("<Code>E040</Code>"), "{}", r.body);
    // An unknown path, then bad XML, then a DOCTYPE.
    let r = putxml(&a, "admin", "<Configuration><Nope>1</Nope></Configuration>");
    assert_eq!(r.code, 400);
    assert!(r.body.contains("<Code>E030</Code>"), "{}", r.body);
    let r = putxml(&a, "admin", "<Configuration><SIP>");
    assert_eq!(r.code, 400);
    assert!(
        r.body.contains("<Result status=\"Error\">") && r.body.contains("not well-formed"),
        "{}",
        r.body
    );
    let r = putxml(
        &a,
        "admin",
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Configuration><SystemUnit><Name>&e;</Name></SystemUnit></Configuration>",
    );
    assert_eq!(r.code, 400);
    assert!(r.body.contains("DOCTYPE"), "{}", r.body);
    assert_eq!(
        a.xsh_ok("xConfiguration\n"),
        before,
        "nothing stored on any error"
    );

    // A command with the product's command="True" marker, answered with its result element.
    let r = putxml(
        &a,
        "admin",
        "<Command><AdminAccountList command=\"True\"/></Command>",
    );
    assert_eq!(r.code, 200, "{r:?}");
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Command>\n"),
        "{}",
        r.body
    );
    assert!(r.body.contains("status=\"OK\""), "{}", r.body);
    assert!(r.body.contains("viewer"), "{}", r.body);

    // A read-only account changes nothing.
    let r = putxml(
        &a,
        "viewer",
        "<Configuration><Zones><Zone item=\"1\"><Name>ro</Name></Zone></Zones></Configuration>",
    );
    assert_eq!(r.code, 403, "{r:?}");
    assert!(r.body.contains("<Code>E070</Code>"), "{}", r.body);
    assert_eq!(a.xsh_ok("xConfiguration\n"), before);
}

#[test]
fn http2_keep_alive_and_security_headers() {
    if !tools() {
        return;
    }
    let a = agent();
    let r = a.curl(&[
        "--http2",
        "-w",
        "",
        "-u",
        &basic("admin"),
        &a.url("/getxml?location=/Status/SystemUnit"),
    ]);
    assert_eq!(r.code, 200);
    let out = std::process::Command::new("curl")
        .args([
            "-sk",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            "-u",
            &basic("admin"),
        ])
        .arg(a.url("/getxml?location=/Status/SystemUnit"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2");
    // Two requests on one HTTP/1.1 connection.
    let r = a.curl(&[
        "-v",
        "--http1.1",
        "-u",
        &basic("admin"),
        &a.url("/getxml?location=/Status/SystemUnit"),
        "-o",
        "/dev/null",
        &a.url("/getxml?location=/Configuration/SIP"),
    ]);
    assert!(
        r.stderr.contains("Re-using existing connection")
            || r.stderr.contains("Reusing existing connection"),
        "{}",
        r.stderr
    );
    for (h, v) in [
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        ("x-frame-options", "DENY"),
        ("strict-transport-security", "max-age=31536000"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(r.header(h), Some(v), "{h}: {:?}", r.headers);
    }
    // ALPN as openssl sees it.
    let s = s_client(&a, &["-alpn", "h2,http/1.1"]);
    assert!(s.contains("ALPN protocol: h2"), "{s}");
}

fn s_client(a: &WebAgent, extra: &[&str]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", a.port),
            "-servername",
            "localhost",
        ])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _ = c.stdin.take().unwrap().write_all(b"");
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The serial of the certificate the plane presents, as openssl prints it.
fn presented_serial(a: &WebAgent) -> String {
    use std::io::Write;
    let pem = s_client(a, &[]);
    let mut x = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    x.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    String::from_utf8_lossy(&x.wait_with_output().unwrap().stdout)
        .trim()
        .to_string()
}

fn file_serial(a: &WebAgent) -> String {
    let o = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(a.cert_file("server.pem"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn a_new_server_certificate_is_presented_without_restart() {
    if !tools() {
        return;
    }
    let mut a = agent();
    let before = presented_serial(&a);
    assert_eq!(before, file_serial(&a));
    let out = a.xsh_ok("xCommand Security Certificates Server Reset\n");
    assert!(out.contains("OK"), "{out}");
    let after_file = file_serial(&a);
    assert_ne!(after_file, before, "the reset made a new certificate");
    // The agent reloads on its own (file watch); the next connection shows the new serial.
    a.wait_line("applied generation");
    let mut seen = presented_serial(&a);
    for _ in 0..600 {
        if seen == after_file {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        seen = presented_serial(&a);
    }
    assert_eq!(seen, after_file);
}

#[test]
fn csrf_cross_site_and_body_limits() {
    if !tools() {
        return;
    }
    let a = agent();
    let doc =
        "<Configuration><Zones><Zone item=\"1\"><Name>x</Name></Zone></Zones></Configuration>";
    // Basic putxml without X-CSRF-Header.
    let r = a.curl(&[
        "-u",
        &basic("admin"),
        "--data-binary",
        doc,
        &a.url("/putxml"),
    ]);
    assert_eq!(r.code, 403, "{r:?}");
    assert!(r.body.contains("X-CSRF-Header"), "{}", r.body);
    // A cross-site form post (what a browser sends from another site's page).
    let r = a.curl(&[
        "-H",
        "Origin: https://evil.example",
        "-H",
        "Sec-Fetch-Site: cross-site",
        "-d",
        "username=admin&password=x",
        &a.url("/login"),
    ]);
    assert_eq!(r.code, 403, "{r:?}");
    assert!(r.body.contains("cross-site"), "{}", r.body);
    // Logged in, a form without the session's token is refused.
    let jar = a.root().join("jar");
    let jar = jar.to_str().unwrap();
    let r = a.curl(&[
        "-c",
        jar,
        "-d",
        &format!("username=admin&password={PW}"),
        &a.url("/login"),
    ]);
    assert_eq!(r.code, 303, "{r:?}");
    let cookie = r.header("set-cookie").unwrap_or_default().to_string();
    for part in [
        "SessionId=",
        "Path=/",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let r = a.curl(&["-b", jar, "-X", "POST", &a.url("/logout")]);
    assert_eq!(r.code, 403, "{r:?}");
    assert!(r.body.contains("CSRF"), "{}", r.body);
    let r = a.curl(&["-b", jar, "-d", "csrf=wrong", &a.url("/logout")]);
    assert_eq!(r.code, 403, "{r:?}");
    // Over-size bodies: announced, and sent chunked.
    let big = "x".repeat(2 * 1024 * 1024);
    let file = a.root().join("big");
    std::fs::write(&file, &big).unwrap();
    let at = format!("@{}", file.display());
    let r = a.curl(&[
        "-u",
        &basic("admin"),
        "-H",
        "X-CSRF-Header: 1",
        "--data-binary",
        &at,
        &a.url("/putxml"),
    ]);
    assert_eq!(r.code, 413, "{r:?}");
    assert!(
        r.body.contains("too large") && r.body.contains("1048576"),
        "{}",
        r.body
    );
    let r = a.curl(&[
        "-u",
        &basic("admin"),
        "-H",
        "X-CSRF-Header: 1",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &at,
        &a.url("/putxml"),
    ]);
    assert_eq!(r.code, 413, "{r:?}");
    assert!(r.body.contains("too large"), "{}", r.body);
}

#[test]
fn wrong_password_lockout_and_disabled() {
    if !tools() {
        return;
    }
    let a = WebAgent::start_with("xConfiguration Administration Lockout Attempts: 3\n");
    a.add_account("admin", PW, "ReadWrite");
    a.add_account("off", PW, "AccountDisabled");
    let url = a.url("/getxml?location=/Status/SystemUnit");
    let r = a.curl(&["-u", "admin:wrong-password", &url]);
    assert_eq!(r.code, 401, "{r:?}");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Basic")));
    let r = a.curl(&["-u", &basic("off"), &url]);
    assert_eq!(r.code, 403, "{r:?}");
    let r = a.curl(&[&url]);
    assert_eq!(r.code, 401, "no credentials: {r:?}");
    for _ in 0..3 {
        a.curl(&["-u", "admin:wrong-password", &url]);
    }
    // Locked: the right password is refused too, and stays refused.
    for _ in 0..2 {
        let r = a.curl(&["-u", &basic("admin"), &url]);
        assert_eq!(r.code, 403, "{r:?}");
        assert!(r.body.contains("locked"), "{}", r.body);
    }
}
