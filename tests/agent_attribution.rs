//! Issue 8 deliver 5: under load, each refused connection's `handshakes.log` line names the
//! certificate that connection presented. 64 TLS clients, each with its own refused certificate
//! (half serverAuth-only under the trusted CA: refused by the EKU rule; half from a root the node
//! does not trust: refused by the chain), connect at once from source ports they bound
//! themselves; every rejection line for one of those ports must carry that port's serial and
//! the reason its certificate earns.

mod agent_support;

use std::collections::HashMap;
use std::sync::Arc;

use agent_support::{pem_serial, serial_in, wait_for, Node, Pki};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xsh::certs::info::{parse_pem_certs, parse_pem_key};
use xsh::certs::pki::{LeafEku, LeafSpec, TestCa};

const CLIENTS: usize = 64;

/// The test client does not judge the agent's server certificate: only the agent's log is tested.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

struct Client {
    config: Arc<rustls::ClientConfig>,
    serial: String,
    /// What the agent's reason must say for this certificate.
    reason: &'static str,
}

fn clients(pki: &Pki) -> Vec<Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let untrusted = TestCa::new_root("attribution untrusted CA").unwrap();
    (0..CLIENTS)
        .map(|i| {
            // CA1 is trusted by the node, the other root is not.
            let cn = format!("client {i:02}");
            let (l, reason) = if i % 2 == 0 {
                (
                    pki.issue(true, &cn, LeafEku::ServerAuth).leaf,
                    "lacks clientAuth EKU",
                )
            } else {
                (
                    untrusted.issue(&LeafSpec::new(&cn, LeafEku::Both)).unwrap(),
                    "does not lead to a trusted CA",
                )
            };
            let serial = pem_serial(&l.cert_pem);
            let chain = parse_pem_certs(l.chain_pem.as_bytes()).unwrap();
            let key = parse_pem_key(l.key_pem.as_bytes()).unwrap();
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer(provider.clone())))
                .with_client_auth_cert(chain, key)
                .unwrap();
            Client {
                config: Arc::new(config),
                serial,
                reason,
            }
        })
        .collect()
}

/// Connects every client at once; returns source port -> client index.
fn connect_all(port: u16, clients: &[Client]) -> HashMap<u16, usize> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(clients.len()));
        let mut tasks = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let config = c.config.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let sock = tokio::net::TcpSocket::new_v4().unwrap();
                sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
                let src = sock.local_addr().unwrap().port();
                barrier.wait().await;
                let tcp = sock
                    .connect(format!("127.0.0.1:{port}").parse().unwrap())
                    .await
                    .unwrap();
                let name = ServerName::try_from("localhost").unwrap();
                // TLS 1.3: the client's side of the handshake ends before the agent has judged
                // its certificate; the refusal then arrives as an alert on the first read.
                if let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                {
                    let _ = tls
                        .write_all(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    let mut buf = [0u8; 256];
                    let _ = tls.read(&mut buf).await;
                }
                (src, i)
            }));
        }
        let mut ports = HashMap::new();
        for t in tasks {
            let (src, i) = t.await.unwrap();
            ports.insert(src, i);
        }
        ports
    })
}

#[test]
fn every_rejection_names_the_certificate_of_its_own_connection() {
    let pki = Pki::new();
    let mut node = Node::new("attribution");
    node.ca_add(&pki.ca1_root());
    node.start();
    let clients = clients(&pki);
    let ports = connect_all(node.sip_port, &clients);
    assert_eq!(ports.len(), CLIENTS, "source ports are distinct");
    let lines = wait_for("a rejection line for every client", || {
        let mine: Vec<_> = node
            .handshakes()
            .into_iter()
            .filter(|r| {
                r["peer"]
                    .as_str()
                    .and_then(|p| p.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok())
                    .is_some_and(|p| ports.contains_key(&p))
            })
            .collect();
        if mine.len() >= CLIENTS {
            Ok(mine)
        } else {
            Err(format!("{} of {CLIENTS} lines", mine.len()))
        }
    });
    assert_eq!(lines.len(), CLIENTS, "one line per connection");
    let mut wrong = Vec::new();
    for r in &lines {
        let port: u16 = r["peer"]
            .as_str()
            .and_then(|p| p.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap();
        let c = &clients[ports[&port]];
        let named = r["presented_by_peer"].as_str().and_then(serial_in);
        let reason = r["reason"].as_str().unwrap_or_default();
        if r["decision"] != "rejected"
            || named.as_deref() != Some(c.serial.as_str())
            || !reason.contains(c.reason)
        {
            wrong.push(format!(
                "port {port}: expected serial {} ({}), got {r}",
                c.serial, c.reason
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {CLIENTS} lines name another connection's certificate or reason:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The counters agree with the lines: half refused by the EKU rule, half by the chain.
    wait_for("counters of both kinds", || {
        let eku: u64 = node
            .status_leaf("SIP TLS Listener RejectedEku")
            .parse()
            .unwrap_or(0);
        let chain: u64 = node
            .status_leaf("SIP TLS Listener RejectedChain")
            .parse()
            .unwrap_or(0);
        if eku == CLIENTS as u64 / 2 && chain == CLIENTS as u64 / 2 {
            Ok(())
        } else {
            Err(format!("RejectedEku {eku}, RejectedChain {chain}"))
        }
    });
}
