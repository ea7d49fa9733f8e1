//! A stalled TLS client is cut off after `SIP TLS HandshakeTimeout` and counted, and does not keep
//! a well-behaved client from being served.

mod agent_support;

use std::io::Write;
use std::net::TcpStream;

use agent_support::Node;

#[test]
fn stalled_handshake_times_out_and_is_counted() {
    let mut node = Node::new("stall");
    node.ok(&["xConfiguration SIP TLS HandshakeTimeout: 1"]);
    node.start();
    // Connects and says nothing: no ClientHello ever arrives.
    let mut silent = TcpStream::connect(("127.0.0.1", node.sip_port)).unwrap();
    // A half ClientHello: the record header promises more than is ever sent.
    let mut partial = TcpStream::connect(("127.0.0.1", node.sip_port)).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let rejected = node.wait_leaf("SIP TLS Listener RejectedTimeout", |v| {
        v.parse::<u64>().unwrap_or(0) >= 2
    });
    assert_eq!(rejected, "2");
    let last = node.status_leaf("SIP TLS Listener LastRejection");
    assert!(last.contains("handshake did not complete within"), "{last}");
    // The agent closed both: reads see EOF (or a reset), not a hang.
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut silent, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the stalled connection was not closed");
    assert_eq!(node.status_leaf("SIP TLS Listener RejectedEku"), "0");
}

#[test]
fn connection_limit_closes_the_extra_connection_and_frees_its_slot() {
    let mut node = Node::new("limit");
    node.ok(&[
        "xConfiguration Agent MaxConnections: 2",
        "xConfiguration SIP TLS HandshakeTimeout: 60",
    ]);
    node.start();
    // One accept loop takes connections in order, so the third one is the one over the limit.
    let a = TcpStream::connect(("127.0.0.1", node.sip_port)).unwrap();
    let b = TcpStream::connect(("127.0.0.1", node.sip_port)).unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", node.sip_port)).unwrap();
    let last = node.wait_leaf("SIP TLS Listener LastRejection", |v| {
        v.contains("connection limit of 2")
    });
    assert!(last.contains("Agent MaxConnections"), "{last}");
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(std::io::Read::read(&mut c, &mut buf).unwrap_or(0), 0);
    // Closing the two held connections frees their slots: a real client gets through again.
    drop(a);
    drop(b);
    let certs = node.certs();
    let accepted = agent_support::wait_for("a handshake after the slots were freed", || {
        node.openssl_handshake(&certs.join("client.pem"), &certs.join("clientprivkey.pem"));
        let n = node.status_leaf("SIP TLS Listener Accepted");
        if n != "0" {
            Ok(n)
        } else {
            Err(n)
        }
    });
    assert_ne!(accepted, "0");
}
