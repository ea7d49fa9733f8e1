//! Outbound TLS client configurations: the one place this node's TLS client is built, shared by
//! the agent's zone checks and the partner probe. A config presents an identity (a chain and its
//! key, or none), checks the peer with a given verifier, and speaks the chosen TLS versions; the
//! [`Presenting`] resolver records whether the identity went out and what the peer's
//! CertificateRequest asked for.
//!
//! Must not know: files under `ROOT/certs/`, zones, the agent or the shell (callers hand it the
//! chain, the key and the verifier).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};

use super::eku::ALGORITHMS;

/// The crypto provider of every TLS config of this node.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config presenting `identity` (chain leaf first, and its key; `None`: no
/// certificate), checking the peer with `verifier`, offering `versions` (the safe defaults,
/// TLS 1.3 and 1.2, when empty).
pub fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    identity: Option<(&[CertificateDer<'static>], &PrivateKeyDer<'static>)>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ClientConfig, rustls::Error> {
    let b = ClientConfig::builder_with_provider(provider());
    let b = if versions.is_empty() {
        b.with_safe_default_protocol_versions()?
    } else {
        b.with_protocol_versions(versions)?
    };
    let b = b.dangerous().with_custom_certificate_verifier(verifier);
    match identity {
        Some((chain, key)) => b.with_client_auth_cert(chain.to_vec(), key.clone_key()),
        None => Ok(b.with_no_client_auth()),
    }
}

/// What a peer's CertificateRequest asked for: the CA names it listed (DER of each name) and
/// the signature schemes it accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertRequest {
    pub ca_names: Vec<Vec<u8>>,
    pub schemes: Vec<SignatureScheme>,
}

/// Wraps a config's certificate resolver: rustls asks it only when the peer requests a
/// certificate, so `sent` says whether the identity went out in a handshake, and `request`
/// keeps what the peer asked for.
#[derive(Debug)]
pub struct Presenting {
    inner: Arc<dyn ResolvesClientCert>,
    sent: Arc<AtomicBool>,
    request: Arc<Mutex<Option<CertRequest>>>,
}

impl ResolvesClientCert for Presenting {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        if let Ok(mut r) = self.request.lock() {
            *r = Some(CertRequest {
                ca_names: root_hint_subjects.iter().map(|s| s.to_vec()).collect(),
                schemes: sigschemes.to_vec(),
            });
        }
        let key = self.inner.resolve(root_hint_subjects, sigschemes);
        if key.is_some() {
            self.sent.store(true, Ordering::Relaxed);
        }
        key
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// `base` for one check: no resumption (a check proves what the peer accepts now, so every
/// check is a full handshake), and `sent` set when the identity goes out.
pub fn check_config(base: &Arc<ClientConfig>, sent: &Arc<AtomicBool>) -> Arc<ClientConfig> {
    recording_config(base, sent, &Arc::new(Mutex::new(None)))
}

/// [`check_config`], also keeping the peer's CertificateRequest in `request`.
pub fn recording_config(
    base: &Arc<ClientConfig>,
    sent: &Arc<AtomicBool>,
    request: &Arc<Mutex<Option<CertRequest>>>,
) -> Arc<ClientConfig> {
    let mut c = (**base).clone();
    c.resumption = rustls::client::Resumption::disabled();
    c.client_auth_cert_resolver = Arc::new(Presenting {
        inner: base.client_auth_cert_resolver.clone(),
        sent: sent.clone(),
        request: request.clone(),
    });
    Arc::new(c)
}

/// Zone `TLS Verify Mode: Off`: the peer's certificate is not checked (signatures still are).
#[derive(Debug)]
pub struct AcceptAnyServer;

/// Signatures are checked with the same algorithms as the EKU verifier (no provider per call).
impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &ALGORITHMS)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &ALGORITHMS)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ALGORITHMS.supported_schemes()
    }
}
