//! The load generator's side: rustls client configurations (TLS 1.3, ECDSA P-256 client
//! certificate, resumption disabled, so every connection is a full handshake), one exchange
//! (handshake + one request and its response: a TLS 1.3 client learns that its certificate was
//! refused only from the alert after the server's Finished), and N threads of them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::common::die;
use crate::common::pki::Leaf;

/// A request and the start of the answer that means "accepted".
#[derive(Clone, Copy)]
pub struct Proto {
    pub req: &'static [u8],
    pub ok: &'static [u8],
}

pub const SIP: Proto = Proto {
    req: b"OPTIONS sip:bench@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKbench\r\nFrom: <sip:bench@127.0.0.1>;tag=1\r\nTo: <sip:bench@127.0.0.1>\r\nCall-ID: 1@bench\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ok: b"SIP/2.0 200",
};

pub const HTTP: Proto = Proto {
    req: b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    ok: b"HTTP/1.1 200",
};

pub fn client_config(ca_der: &[u8], leaf: &Leaf) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .unwrap_or_else(|e| die(&e.to_string()));
    let chain = vec![CertificateDer::from(leaf.cert_der.clone())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap_or_else(|e| die(&e.to_string()))
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap_or_else(|e| die(&e.to_string()));
    c.resumption = Resumption::disabled();
    Arc::new(c)
}

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// One fresh full handshake plus one request/response. Ok = the server accepted us; returns the
/// stream (to hold it open) and the server's leaf certificate.
pub fn exchange(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    p: Proto,
) -> Result<(Tls, Vec<u8>), String> {
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(p.req).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut got = Vec::with_capacity(64);
    let mut buf = [0u8; 512];
    while got.len() < p.ok.len() {
        let n = tls.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a response".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    if !got.starts_with(p.ok) {
        return Err(format!(
            "unexpected response {:?}",
            String::from_utf8_lossy(&got[..got.len().min(40)])
        ));
    }
    let server_cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    Ok((tls, server_cert))
}

/// The key exchange group one handshake with `addr` negotiated (to name the floor's ECDHE).
pub fn group_of(addr: SocketAddr, cfg: &Arc<ClientConfig>, p: Proto) -> String {
    match exchange(addr, cfg, p) {
        Ok((tls, _)) => tls
            .conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()))
            .unwrap_or_else(|| "?".into()),
        Err(e) => format!("(handshake failed: {e})"),
    }
}

pub struct Load {
    pub ok: u64,
    pub failed: u64,
    pub secs: f64,
    pub errors: BTreeMap<String, u64>,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

/// `threads` clients doing exchanges back to back for `dur`.
pub fn load(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    p: Proto,
    threads: usize,
    dur: Duration,
) -> Load {
    let okc = Arc::new(AtomicU64::new(0));
    let fail = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (okc, fail, errors, stop, cfg) = (
                okc.clone(),
                fail.clone(),
                errors.clone(),
                stop.clone(),
                cfg.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) && start.elapsed() < dur {
                    match exchange(addr, &cfg, p) {
                        Ok(_) => {
                            okc.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            fail.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut m) = errors.lock() {
                                *m.entry(e).or_insert(0) += 1;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in hs {
        let _ = h.join();
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let errors = errors.lock().map(|m| m.clone()).unwrap_or_default();
    Load {
        ok: okc.load(Ordering::Relaxed),
        failed: fail.load(Ordering::Relaxed),
        secs,
        errors,
    }
}
