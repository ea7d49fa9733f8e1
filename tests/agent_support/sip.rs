//! A SIP-over-TLS client for the agent's listener: a client configuration presenting one test
//! certificate, and one handshake with an `OPTIONS` round trip. Shared by the agent and cluster
//! tests and by `benches/cluster_bench.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::LeafFiles;

/// A client presenting `l`'s chain; the server is not checked (each node presents its own
/// certificate, which is what the tests look at).
pub fn client_any_server(l: &LeafFiles) -> Arc<rustls::ClientConfig> {
    let chain: Vec<CertificateDer<'static>> =
        xsh::certs::info::parse_pem_certs(l.leaf.chain_pem.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(l.leaf.key_pem.as_bytes()).unwrap();
    Arc::new(
        xsh::certs::verify::client::client_config(
            Arc::new(xsh::certs::verify::client::AcceptAnyServer),
            Some((&chain, &key)),
            &[],
        )
        .unwrap(),
    )
}

/// One full handshake plus an `OPTIONS` round trip: the server's serial when the node accepted
/// the client, else why not (a TLS 1.3 refusal arrives with the first read).
pub fn options_handshake(cfg: &Arc<rustls::ClientConfig>, port: u16) -> Result<String, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(15))).ok();
    tcp.set_write_timeout(Some(Duration::from_secs(15))).ok();
    // Without it Nagle holds the OPTIONS behind the client's Finished until the server's
    // delayed ACK (40 ms on Linux).
    tcp.set_nodelay(true).ok();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(
        b"OPTIONS sip:agent@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKc\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed before the answer: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if !buf.starts_with(b"SIP/2.0 200") {
        return Err(format!("answer: {:?}", String::from_utf8_lossy(&buf)));
    }
    let serial = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| xsh::certs::decode(c, rustls::pki_types::UnixTime::now()).ok())
        .map(|i| i.serial)
        .unwrap_or_default();
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(serial)
}
