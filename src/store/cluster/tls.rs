//! TLS to etcd: the PEM material a bootstrap carries (the CA certificate that verifies the
//! members' server certificates and, for etcd's `--client-cert-auth`, this peer's client
//! certificate and key), its checks, the etcd client's TLS options, and the probe
//! `Cluster Join` runs first: one handshake per member, so a wrong CA or a refused client
//! certificate is a clear error instead of requests that time out (the etcd client retries
//! failed handshakes quietly, behind its load balancer).
//!
//! The room knows rustls and PEM; it knows no certificate store of the node (etcd's PKI is not
//! the SIP one), no terminal and no command parameter.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Bootstrap, ClusterError};

/// The TLS material of a bootstrap, as PEM text (the file is 0600: it holds the client key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdTls {
    /// One or more CA certificates; etcd's server certificate must chain to one of them.
    pub ca_certificate: String,
    /// This peer's client certificate (chain, leaf first), for `--client-cert-auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// The private key of `client_certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

/// The key never reaches a log or a debug print.
impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field(
                "ca_certificate",
                &format!("{} bytes", self.ca_certificate.len()),
            )
            .field(
                "client_certificate",
                &self.client_certificate.as_ref().map(|c| c.len()),
            )
            .field("client_key", &self.client_key.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not PEM ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// The CA certificates of `pem`: at least one, each usable as a trust anchor.
pub fn parse_ca(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = certificates(pem)?;
    for (i, c) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(c).map_err(|e| {
            format!(
                "certificate {} is not a valid X.509 certificate ({e})",
                i + 1
            )
        })?;
    }
    Ok(certs)
}

/// A client certificate chain, leaf first.
pub fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = certificates(pem)?;
    webpki::EndEntityCert::try_from(&certs[0])
        .map_err(|e| format!("the first certificate is not a valid X.509 certificate ({e})"))?;
    Ok(certs)
}

/// A private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
        "holds no PEM private key (expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
            .to_string()
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether `key` is the private key of the chain's leaf.
fn check_pair(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<(), String> {
    rustls::sign::CertifiedKey::from_der(chain, key, &provider())
        .map(|_| ())
        .map_err(|e| format!("the client key does not fit the client certificate ({e})"))
}

impl EtcdTls {
    /// Every part parses; certificate and key come together and match.
    pub fn check(&self) -> Result<(), String> {
        parse_ca(&self.ca_certificate).map_err(|e| format!("the CA certificate {e}"))?;
        match (&self.client_certificate, &self.client_key) {
            (None, None) => Ok(()),
            (Some(_), None) => Err("a client certificate was given without its client key".into()),
            (None, Some(_)) => Err("a client key was given without its client certificate".into()),
            (Some(c), Some(k)) => {
                let chain = parse_chain(c).map_err(|e| format!("the client certificate {e}"))?;
                let key = parse_key(k).map_err(|e| format!("the client key {e}"))?;
                check_pair(chain, key)
            }
        }
    }

    /// The etcd client's TLS options. The server name checked is each endpoint's host.
    pub fn options(&self) -> etcd_client::TlsOptions {
        let mut o = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(&self.ca_certificate));
        if let (Some(c), Some(k)) = (&self.client_certificate, &self.client_key) {
            o = o.identity(etcd_client::Identity::from_pem(c, k));
        }
        o
    }

    /// The probe's rustls configuration: the same trust and identity as [`EtcdTls::options`].
    fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in parse_ca(&self.ca_certificate)? {
            roots
                .add(c)
                .map_err(|e| format!("the CA certificate: {e}"))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let mut cfg = match (&self.client_certificate, &self.client_key) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(parse_chain(c)?, parse_key(k)?)
                .map_err(|e| format!("the client certificate: {e}"))?,
            _ => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(cfg)
    }
}

/// Which side refused a TLS connection to etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// etcd's server certificate does not verify against the CA certificate (or names another
    /// host).
    ServerNotTrusted,
    /// etcd refused this peer: no client certificate, or one from a CA it does not trust.
    ClientRefused,
    /// Anything else (protocol versions, a member that speaks no TLS).
    Handshake,
}

/// How long the probe waits for one member (connect, handshake, first answer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// An HTTP/2 client preface and an empty SETTINGS frame: a gRPC server answers with its own
/// SETTINGS. Under TLS 1.3 a refused client certificate shows only here, after the handshake.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn classify(e: &std::io::Error) -> (TlsFailure, String) {
    let Some(r) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return (TlsFailure::Handshake, e.to_string().to_lowercase());
    };
    let failure = match r {
        rustls::Error::InvalidCertificate(_) => TlsFailure::ServerNotTrusted,
        rustls::Error::AlertReceived(a) => {
            use rustls::AlertDescription as A;
            match a {
                A::CertificateRequired
                | A::BadCertificate
                | A::UnknownCA
                | A::CertificateUnknown
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::AccessDenied => TlsFailure::ClientRefused,
                _ => TlsFailure::Handshake,
            }
        }
        _ => TlsFailure::Handshake,
    };
    (failure, r.to_string())
}

/// One member: `Ok(true)` it accepted this peer, `Ok(false)` it did not answer (down), or
/// the TLS failure.
async fn probe_one(
    cfg: Arc<rustls::ClientConfig>,
    endpoint: &str,
) -> Result<bool, (TlsFailure, String)> {
    let addr = endpoint.trim_start_matches("https://");
    let host = addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(addr);
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        (
            TlsFailure::Handshake,
            format!("'{host}' is not a host name"),
        )
    })?;
    let run = async {
        let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
            return Ok(false);
        };
        let mut tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| classify(&e))?;
        tls.write_all(H2_PREFACE).await.map_err(|e| classify(&e))?;
        tls.flush().await.map_err(|e| classify(&e))?;
        let mut buf = [0u8; 64];
        match tls.read(&mut buf).await {
            Ok(0) => Err((
                TlsFailure::ClientRefused,
                "etcd closed the connection after the handshake".into(),
            )),
            Ok(_) => Ok(true),
            Err(e) => Err(classify(&e)),
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, run)
        .await
        .unwrap_or(Ok(false))
}

/// Shakes hands with every `https://` member of `b` as the etcd client will; the first member
/// that refuses is the error. Members that do not answer are left to the join itself (a cluster
/// with a member down still has quorum). Runs on a thread of its own, so it can be called from
/// inside a runtime.
pub fn probe(b: &Bootstrap) -> Result<(), ClusterError> {
    let Some(t) = &b.tls else { return Ok(()) };
    let cfg = Arc::new(t.client_config().map_err(|why| ClusterError::Tls {
        endpoint: b.endpoints.first().cloned().unwrap_or_default(),
        failure: TlsFailure::Handshake,
        why,
    })?);
    let endpoints = b.endpoints.clone();
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ClusterError::Unreachable(format!("cannot start a runtime: {e}")))?;
            rt.block_on(async {
                for e in &endpoints {
                    if let Err((failure, why)) = probe_one(cfg.clone(), e).await {
                        return Err(ClusterError::Tls {
                            endpoint: e.clone(),
                            failure,
                            why,
                        });
                    }
                }
                Ok(())
            })
        })
        .join()
        .unwrap_or_else(|_| Err(ClusterError::Unreachable("the TLS probe failed".into())))
    })
}
