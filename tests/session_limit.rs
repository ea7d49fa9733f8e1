//! The agent's limits count the session, not the line (issue 9 item 7): with a real agent and
//! `openssl s_client` peers that stay active (a line every 200 ms), a SIP peer trickling header
//! lines is closed by `Agent IdleTimeout` (the request never completes), and a tunnel peer whose
//! every line is echoed is closed by `Agent SessionLimit`. Tiny limits, and only "it ends before
//! the peer stops sending" is checked: the peer would keep sending for far longer.

mod agent_support;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_support::*;
use xsh::certs::pki::LeafEku;

/// A peer on `port` with a client certificate that writes `line(i)` every 200 ms for up to a
/// minute; returns whether the agent closed the connection meanwhile, and what came back.
fn active_peer(port: u16, l: &LeafFiles, line: impl Fn(usize) -> String) -> (bool, String) {
    let mut child: Child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("-cert")
        .arg(&l.chain)
        .arg("-key")
        .arg(&l.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut closed = false;
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            closed = true;
            break;
        }
        if stdin.write_all(line(i).as_bytes()).is_err() {
            // The pipe broke because s_client is going: the connection ended.
            closed = child.wait().is_ok();
            break;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    (closed, reader.join().unwrap_or_default())
}

#[test]
fn active_peers_are_closed_by_the_session_limits() {
    if !common::require_tool("openssl", "version", "openssl") {
        return;
    }
    let pki = Pki::new();
    let mut node = Node::new("limits");
    node.ca_add(&pki.ca1_root());
    node.ok(&[
        "xConfiguration Agent IdleTimeout: 1",
        "xConfiguration Agent SessionLimit: 2",
    ]);
    let leaf = pki.issue(true, "active peer", LeafEku::ClientAuth);
    node.start();

    // SIP: a request line, then a header line every 200 ms, never the blank line that ends it.
    let (closed, _) = active_peer(node.sip_port, &leaf, |i| {
        if i == 0 {
            "OPTIONS sip:x SIP/2.0\r\n".into()
        } else {
            format!("X-Trickle-{i}: y\r\n")
        }
    });
    assert!(closed, "a SIP peer trickling header lines was never closed");

    // Tunnel: every line is echoed (activity), and the session limit still ends it.
    let (closed, echoed) = active_peer(node.tunnel_port, &leaf, |i| format!("ping {i}\n"));
    assert!(
        echoed.contains("ping 1"),
        "the tunnel did not echo: {echoed}"
    );
    assert!(closed, "an active tunnel peer outlived Agent SessionLimit");
}
