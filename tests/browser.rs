//! Headless Chromium (WebDriver through `chromedriver`) walks the seed's certificate flows in
//! the web pages of a real `xagent` (issue 11 item 7): log in; a serverAuth-only certificate
//! refused by the Client certificate page with the product's banner; the same certificate
//! uploaded on the Server certificate page with "Upload server certificate file as client
//! certificate" ticked, after which both stores show the same serial; the EKU checking mode
//! flipped on the Configuration page, seen by an `openssl s_client` presenting a
//! serverAuth-only client certificate to the agent's SIP TLS port; a read-only account that sees
//! no form that changes anything.
//!
//! Every page is saved as a PNG under `target/browser-shots/`, its HTML (the bytes the server
//! sent) is checked with `tidy`, and it is walked with the Tab key: every form control and link
//! must receive the focus, and every control must have a label.
//!
//! Nothing asserts on timing: the agent's status is polled up to a deadline.

mod agent_support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agent_support::common::{cannot_run, require_tool};
use agent_support::*;
use futures_util::FutureExt;
use thirtyfour::prelude::*;
use xsh::certs::pki::LeafEku;

const ADMIN: (&str, &str) = ("webadmin", "correct-horse-9");
const VIEWER: (&str, &str) = ("viewer", "read-only-pass-7");
const NO_CLIENT_USAGE: &str = "Invalid certificate: The file provided does not have a client usage attribute. Services requiring mutual TLS may not work.";

/// A `chromedriver` on a free loopback port, killed when dropped.
struct Driver {
    _guard: ChildGuard,
    port: u16,
}

fn start_chromedriver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let guard = ChildGuard::new(child, "chromedriver");
    wait_for("chromedriver answers /status", || {
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{port}/status")])
            .output()
            .map_err(|e| e.to_string())?;
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.contains("\"ready\"") {
            Ok(())
        } else {
            Err(body)
        }
    });
    Driver {
        _guard: guard,
        port,
    }
}

/// The node under test: its ROOT, its agent with the web listener, and two accounts.
struct Site {
    node: Node,
    https_port: u16,
}

impl Site {
    fn start() -> Site {
        let mut node = Node::new("web");
        let mut https_port = free_port();
        node.ok(&[
            &format!(
                "xCommand AdminAccountAdd Name: \"{}\" Password: \"{}\" Access: ReadWrite",
                ADMIN.0, ADMIN.1
            ),
            &format!(
                "xCommand AdminAccountAdd Name: \"{}\" Password: \"{}\" Access: ReadOnly",
                VIEWER.0, VIEWER.1
            ),
        ]);
        for attempt in 1..=5 {
            node.ok(&[&web_port_line(https_port)]);
            node.start();
            let up = wait_for("the web listener answers /login", || {
                match curl(&format!("https://127.0.0.1:{https_port}/login"), None) {
                    Some((200, _)) => Ok(true),
                    Some((code, body)) => Err(format!("HTTP {code}: {body}")),
                    None if node
                        .agent
                        .as_mut()
                        .is_some_and(|a| a.guard.try_wait().is_some()) =>
                    {
                        Ok(false)
                    }
                    None => Err("no answer".into()),
                }
            });
            if up {
                break;
            }
            assert!(attempt < 5, "the web listener did not start");
            node.agent = None;
            https_port = free_port();
        }
        Site { node, https_port }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https_port)
    }
}

/// The configuration line that puts the agent's web listener on `port`.
fn web_port_line(port: u16) -> String {
    format!("xConfiguration Administration HTTPS Port: {port}")
}

/// `curl -k` of `url` (with a `Cookie:` header): the status code and body.
fn curl(url: &str, cookie: Option<&str>) -> Option<(u16, String)> {
    let mut c = Command::new("curl");
    c.args(["-sk", "--max-time", "20", "-w", "\n%{http_code}", url]);
    if let Some(ck) = cookie {
        c.args(["-H", &format!("Cookie: {ck}")]);
    }
    let out = c.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    let code: u16 = code.trim().parse().ok()?;
    (code != 0).then(|| (code, body.to_string()))
}

fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let d = target.join("browser-shots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `tidy` of a page, its HTML kept beside the screenshots.
fn tidy(name: &str, html: &str) -> Vec<String> {
    agent_support::common::tidy(&shots_dir(), name, html)
}

struct Walk<'a> {
    d: &'a WebDriver,
    site: &'a Site,
    /// Pages checked (name, url path).
    checked: Vec<String>,
    /// What the HTML, label and keyboard checks found, page by page (asserted at the end, so
    /// one run reports every page).
    problems: Vec<String>,
}

impl Walk<'_> {
    async fn cookie(&self) -> String {
        self.d
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Opens `path`, saves its screenshot, validates the HTML the server sends and walks it
    /// with the keyboard.
    async fn page(&mut self, name: &str, path: &str) {
        self.d.goto(self.site.url(path)).await.unwrap();
        self.check(name, Some(path)).await;
    }

    /// Checks the page the browser shows now (`path`: refetch its bytes for tidy; `None`: the
    /// page came from a form post, validate the browser's copy of it).
    async fn check(&mut self, name: &str, path: Option<&str>) {
        self.d
            .screenshot(&shots_dir().join(format!("{name}.png")))
            .await
            .unwrap();
        let html = match path {
            Some(p) => {
                let ck = self.cookie().await;
                let (code, body) = curl(&self.site.url(p), Some(&ck)).expect("page answers");
                assert_eq!(code, 200, "{name}: GET {p} answered {code}: {body}");
                body
            }
            // The browser's copy of a page from a form post: its serialisation of the DOM
            // leaves the doctype out (the server sent one: the GET pages are checked as sent).
            None => format!("<!DOCTYPE html>\n{}", self.d.source().await.unwrap()),
        };
        for p in tidy(name, &html) {
            self.problems.push(format!("{name}: tidy: {p}"));
        }
        self.labels(name).await;
        self.keyboard(name).await;
        self.checked.push(name.to_string());
    }

    /// Every visible form control has a label (or is a button with text) and no negative
    /// tabindex: the offenders' HTML, found in one script.
    async fn labels(&mut self, name: &str) {
        let r = self
            .d
            .execute(
                r#"const bad = [];
                for (const c of document.querySelectorAll('input:not([type=hidden]), select, textarea, button')) {
                  const t = c.getAttribute('tabindex');
                  if (t !== null && t.startsWith('-')) { bad.push('out of the tab order: ' + c.outerHTML); continue; }
                  if (c.tagName === 'BUTTON') {
                    if (!c.textContent.trim() && !c.getAttribute('aria-label')) bad.push('no text: ' + c.outerHTML);
                    continue;
                  }
                  if (!c.id || !document.querySelector('label[for="' + c.id + '"]')) bad.push('no label: ' + c.outerHTML);
                }
                return bad;"#,
                Vec::new(),
            )
            .await
            .unwrap();
        let bad: Vec<String> = r.convert().unwrap();
        for b in bad {
            self.problems.push(format!("{name}: {b}"));
        }
    }

    /// Tabs through the page from the top: the skip link comes first, and every link and
    /// enabled form control receives the focus.
    async fn keyboard(&mut self, name: &str) {
        let r = self
            .d
            .execute(
                r#"let n = 0;
                for (const e of document.querySelectorAll('a[href], input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea, button, summary')) {
                  if (e.offsetParent === null && !e.classList.contains('skip')) continue;
                  e.setAttribute('data-kb', String(n++));
                }
                return n;"#,
                Vec::new(),
            )
            .await
            .unwrap();
        let want: u64 = r.convert().unwrap();
        let mut seen = HashSet::new();
        let mut first = None;
        for _ in 0..(want + 3) {
            self.d
                .action_chain()
                .send_keys(Key::Tab)
                .perform()
                .await
                .unwrap();
            let r = self
                .d
                .execute(
                    "const a = document.activeElement; return [a.getAttribute('data-kb') || '', a.outerHTML.slice(0, 160)];",
                    Vec::new(),
                )
                .await
                .unwrap();
            let (kb, html): (String, String) = r.convert().unwrap();
            first.get_or_insert(html);
            seen.insert(kb);
        }
        let first = first.unwrap_or_default();
        if !first.contains("Skip to content") {
            self.problems.push(format!(
                "{name}: the first Tab stop is {first}, not the skip link"
            ));
        }
        let missed: Vec<u64> = (0..want)
            .filter(|i| !seen.contains(&i.to_string()))
            .collect();
        if !missed.is_empty() {
            let r = self
                .d
                .execute(
                    "return arguments[0].map(i => document.querySelector('[data-kb=\"' + i + '\"]').outerHTML.slice(0, 200));",
                    vec![serde_json::json!(missed)],
                )
                .await
                .unwrap();
            let desc: Vec<String> = r.convert().unwrap();
            for x in desc {
                self.problems
                    .push(format!("{name}: never reached with Tab: {x}"));
            }
        }
    }

    async fn login(&mut self, who: (&str, &str)) {
        self.d.goto(self.site.url("/login")).await.unwrap();
        self.d
            .query(By::Id("username"))
            .first()
            .await
            .unwrap()
            .send_keys(who.0)
            .await
            .unwrap();
        self.d
            .find(By::Id("password"))
            .await
            .unwrap()
            .send_keys(who.1)
            .await
            .unwrap();
        self.d
            .find(By::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let who_text = self
            .d
            .query(By::Css(".who"))
            .first()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(who_text.contains(who.0), "after login: {who_text}");
    }

    async fn logout(&self) {
        self.d
            .find(By::Css(".who button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The login page is the next page: query() polls while it loads (find() looks once).
        self.d.query(By::Id("username")).first().await.unwrap();
    }

    /// Chooses `file` in the file input `id` (WebDriver sends the path).
    async fn choose(&self, id: &str, file: &Path) {
        self.d
            .find(By::Id(id))
            .await
            .unwrap()
            .send_keys(file.to_str().unwrap())
            .await
            .unwrap();
    }

    async fn submit(&self, css: &str) {
        self.d
            .find(By::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn text(&self, css: &str) -> String {
        // query() polls until the element is there: after a click the next page may still be
        // loading, and find() looks once.
        match self.d.query(By::Css(css)).first().await {
            Ok(e) => e.text().await.unwrap(),
            Err(_) => {
                let body = self
                    .d
                    .find(By::Css("body"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                panic!(
                    "no {css} on {}; the page says:\n{body}",
                    self.d.current_url().await.unwrap()
                );
            }
        }
    }
}

/// One `openssl s_client` handshake against the node's SIP listener presenting `leaf` with its
/// intermediate (`-cert_chain`: `-cert` alone sends the leaf only), then one `OPTIONS`.
fn sip_handshake(node: &Node, leaf: &LeafFiles) {
    use std::io::Write;
    let mut c = Command::new("openssl");
    c.args([
        "s_client",
        "-brief",
        "-connect",
        &format!("127.0.0.1:{}", node.sip_port),
    ])
    .arg("-cert")
    .arg(&leaf.cert)
    .arg("-key")
    .arg(&leaf.key);
    if let Some(i) = &leaf.intermediate {
        c.arg("-cert_chain").arg(i);
    }
    let child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(mut ch) = child {
        if let Some(mut i) = ch.stdin.take() {
            let _ = i.write_all(
                b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            );
        }
        let _ = ch.wait();
    }
}

#[test]
fn chromium_walks_the_certificate_flows() {
    for (tool, arg, pkg) in [
        ("chromium", "--version", "chromium"),
        ("chromedriver", "--version", "chromium-driver"),
        ("tidy", "-v", "tidy"),
        ("openssl", "version", "openssl"),
        ("curl", "--version", "curl"),
    ] {
        if !require_tool(tool, arg, pkg) {
            return;
        }
    }
    if !Path::new("/usr/bin/chromium").exists() {
        cannot_run("/usr/bin/chromium is missing (apt-get install chromium)");
        return;
    }
    let pki = Pki::new();
    let site = Site::start();
    let driver = start_chromedriver();
    let profile = tempfile::Builder::new()
        .prefix("xsh-chromium-")
        .tempdir()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary("/usr/bin/chromium").unwrap();
        for a in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            caps.add_arg(a).unwrap();
        }
        caps.accept_insecure_certs(true).unwrap();
        let d = WebDriver::new(format!("http://127.0.0.1:{}", driver.port), caps)
            .await
            .expect("a browser session");
        // A failed check must not leave the browser running: quit it, then fail.
        let r = std::panic::AssertUnwindSafe(flows(&d, &site, &pki))
            .catch_unwind()
            .await;
        d.quit().await.ok();
        if let Err(panic) = r {
            std::panic::resume_unwind(panic);
        }
    });
}

async fn flows(d: &WebDriver, site: &Site, pki: &Pki) {
    let mut w = Walk {
        d,
        site,
        checked: Vec::new(),
        problems: Vec::new(),
    };
    // Logged out, every page leads to the login page.
    d.goto(site.url("/maintenance/security/server"))
        .await
        .unwrap();
    d.query(By::Id("username")).first().await.unwrap();
    w.page("01-login", "/login").await;

    // A wrong password is refused on the login page.
    d.find(By::Id("username"))
        .await
        .unwrap()
        .send_keys(ADMIN.0)
        .await
        .unwrap();
    d.find(By::Id("password"))
        .await
        .unwrap()
        .send_keys("not-the-password")
        .await
        .unwrap();
    w.submit("button[type=submit]").await;
    let refused = w.text(".banner.error").await;
    assert!(!refused.is_empty(), "a wrong password shows a refusal");

    w.login(ADMIN).await;
    w.page("02-status", "/status").await;

    // The CA list: add CA2's root (the public CA issuing serverAuth-only certificates).
    w.page("03-ca", "/maintenance/security/ca").await;
    w.choose("ca-file", &pki.ca2_root()).await;
    w.submit("form[action='/maintenance/security/ca/add'] button[type=submit]")
        .await;
    let ok = w.text(".banner.ok").await;
    assert!(ok.contains("CA certificates added"), "{ok}");
    w.check("04-ca-added", None).await;

    let leaf = pki.issue(false, "web ca2 serverAuth", LeafEku::ServerAuth);
    let client_before = site.node.store_serial("Client");

    // Client certificate page: the serverAuth-only certificate is refused with the product's
    // words, and the client store keeps what it had.
    w.page("05-client", "/maintenance/security/client").await;
    w.choose("client-cert", &leaf.chain).await;
    w.choose("client-key", &leaf.key).await;
    w.submit("form[action='/maintenance/security/client/upload'] button[type=submit]")
        .await;
    let banner = w.text(".banner.error").await;
    assert!(
        banner.contains(NO_CLIENT_USAGE),
        "the refusal banner says: {banner}"
    );
    w.check("06-client-refused", None).await;
    assert_eq!(site.node.store_serial("Client"), client_before);

    // Server certificate page with the box ticked: both stores take it.
    w.page("07-server", "/maintenance/security/server").await;
    w.choose("server-cert", &leaf.chain).await;
    w.choose("server-key", &leaf.key).await;
    d.find(By::Id("also-as-client"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    w.submit("form[action='/maintenance/security/server/upload'] button[type=submit]")
        .await;
    let ok = w.text(".banner.ok").await;
    assert!(ok.contains("Server certificate uploaded"), "{ok}");
    w.check("08-server-uploaded", None).await;
    w.page("09-server", "/maintenance/security/server").await;
    let server_serial = w.text("td.serial").await;
    w.page("10-server-pem", "/maintenance/security/server?view=pem")
        .await;
    assert!(w.text("pre.pem").await.contains("BEGIN CERTIFICATE"));
    w.page("11-client", "/maintenance/security/client").await;
    let client_serial = w.text("td.serial").await;
    assert_eq!(server_serial, client_serial, "both stores show one serial");
    assert_eq!(server_serial, leaf.serial);
    assert_eq!(site.node.store_serial("Server"), leaf.serial);
    assert_eq!(site.node.store_serial("Client"), leaf.serial);

    w.page("12-crl", "/maintenance/security/crl").await;
    w.page("13-readiness", "/maintenance/security/readiness")
        .await;

    // The EKU checking mode, with a SIP client presenting a serverAuth-only certificate.
    let sip_client = pki.issue(false, "sip client serverAuth", LeafEku::ServerAuth);
    site.node.wait_leaf("SIP TLS Listener Mode", |m| m == "On");
    site.node
        .openssl_handshake(&sip_client.chain, &sip_client.key);
    let rej = site.node.wait_leaf("SIP TLS Listener LastRejection", |r| {
        serial_in(r).as_deref() == Some(sip_client.serial.as_str())
    });
    assert!(rej.contains("clientAuth"), "mode On refuses it: {rej}");
    w.page("14-status-rejection", "/status").await;
    assert!(w.text("td.rejection").await.contains(&sip_client.serial));

    w.page("15-eku", "/configuration/eku").await;
    let mode_id = {
        let sel = d.find(By::Css("form.settings select")).await.unwrap();
        sel.id().await.unwrap().unwrap()
    };
    let select =
        thirtyfour::components::SelectElement::new(&d.find(By::Id(&mode_id)).await.unwrap())
            .await
            .unwrap();
    select.select_by_value("Off").await.unwrap();
    w.submit("form.settings button[type=submit]").await;
    let ok = w.text(".banner.ok").await;
    assert!(ok.contains("Saved"), "{ok}");
    w.check("16-eku-off", None).await;
    site.node.wait_leaf("SIP TLS Listener Mode", |m| m == "Off");
    site.node
        .openssl_handshake(&sip_client.chain, &sip_client.key);
    wait_for("mode Off accepts the serverAuth-only SIP client", || {
        let acc = site.node.status_leaf("SIP TLS Listener LastAccepted");
        if serial_in(&acc).as_deref() == Some(sip_client.serial.as_str()) {
            return Ok(());
        }
        sip_handshake(&site.node, &sip_client);
        Err(format!(
            "LastAccepted {acc:?}; LastRejection {:?}",
            site.node.status_leaf("SIP TLS Listener LastRejection")
        ))
    });

    w.page("17-handshakes", "/status/handshakes").await;
    d.find(By::Id("f-decision")).await.unwrap();
    w.page(
        "18-handshakes-rejected",
        "/status/handshakes?decision=rejected",
    )
    .await;
    let rows = w.text("table.log tbody").await;
    assert!(
        rows.contains("rejected") && !rows.contains("accepted"),
        "{rows}"
    );

    w.page("19-config", "/configuration").await;
    w.page("20-config-sip", "/configuration/SIP").await;
    w.page("21-config-zones", "/configuration/Zones/Zone").await;

    // A read-only account sees the pages and no form that changes anything.
    w.logout().await;
    w.login(VIEWER).await;
    for (name, path) in [
        ("22-ro-server", "/maintenance/security/server"),
        ("23-ro-client", "/maintenance/security/client"),
        ("24-ro-ca", "/maintenance/security/ca"),
        ("25-ro-crl", "/maintenance/security/crl"),
        ("26-ro-eku", "/configuration/eku"),
    ] {
        w.page(name, path).await;
        let posts = d.find_all(By::Css("form[method=post]")).await.unwrap();
        for f in posts {
            assert_eq!(
                f.attr("action").await.unwrap().as_deref(),
                Some("/logout"),
                "{name}: a read-only account sees a form that changes something"
            );
        }
        assert!(d
            .find_all(By::Css("input[type=file]"))
            .await
            .unwrap()
            .is_empty());
    }
    assert!(
        w.problems.is_empty(),
        "page checks failed:\n{}",
        w.problems.join("\n")
    );
    assert!(w.checked.len() >= 26, "pages checked: {:?}", w.checked);
}
