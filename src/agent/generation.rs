//! A generation: everything a handshake needs, built once off to the side from the files of a ROOT
//! and then swapped in whole. Start-up and every reload use [`build`]; a generation is never
//! changed after it is built, so a handshake only loads one pointer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ServerSessionMemoryCache;
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

use crate::certs::store::{
    self as cstore, CA_LIST, CLIENT_CA_CRL, CLIENT_CERT, CLIENT_KEY, POLICY_SERVICES_CRL,
    SERVER_CERT, SERVER_KEY,
};
use crate::certs::{decode, EkuClientVerifier, EkuMode, TrustAnchors};
use crate::parse::Key;
use crate::schema::schema;
use crate::status::key_for;
use crate::store::{Config, Store};

/// An outbound peer (a zone of type Neighbor or TraversalClient with an address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSpec {
    pub id: u32,
    pub name: String,
    pub address: String,
    pub port: u16,
    pub tunnel_port: u16,
    pub verify: bool,
    pub subject_name: String,
}

/// Listener settings; a change of these rebinds the listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    pub address: String,
    pub sip_port: Option<u16>,
    pub tunnel_port: Option<u16>,
}

/// One immutable generation.
pub struct Generation {
    pub number: u64,
    pub config_generation: u64,
    pub mode: EkuMode,
    pub listen: ListenSpec,
    pub handshake_timeout: std::time::Duration,
    /// Inbound connections held at once, both listeners together.
    pub max_connections: usize,
    pub status_interval: std::time::Duration,
    pub sip: Arc<ServerConfig>,
    pub tunnel: Arc<ServerConfig>,
    /// Client configs presenting the client store; `verified` checks the peer against `ca.pem`.
    pub client_verified: Option<Arc<ClientConfig>>,
    pub client_unverified: Arc<ClientConfig>,
    pub client_verify_error: String,
    pub server_serial: String,
    pub client_serial: String,
    /// The client store leaf's EKU extension (typed: the zone hints ask the policy about it).
    pub client_ekus: crate::certs::Ekus,
    pub ca_count: usize,
    pub zones: Vec<ZoneSpec>,
    /// Content hash of the files this generation was built from.
    pub hash: u64,
}

/// Why a generation could not be built: the file at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub file: PathBuf,
    pub message: String,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// The files a generation is built from.
pub fn watched_files(root: &Path) -> Vec<PathBuf> {
    let c = root.join("certs");
    vec![
        root.join("config").join("xconf.txt"),
        c.join(SERVER_CERT),
        c.join(SERVER_KEY),
        c.join(CLIENT_CERT),
        c.join(CLIENT_KEY),
        c.join(CA_LIST),
        c.join(CLIENT_CA_CRL),
        c.join(POLICY_SERVICES_CRL),
    ]
}

/// FNV-1a over the watched files' contents (missing files hash as absent).
pub fn content_hash(root: &Path) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in watched_files(root) {
        let bytes = std::fs::read(&p).ok();
        let marker: &[u8] = if bytes.is_some() { b"+" } else { b"-" };
        for b in marker.iter().chain(bytes.as_deref().unwrap_or_default()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn cfg_value(cfg: &Config, words: &str) -> String {
    key_for(&schema().config, words)
        .map(|k| cfg.get(&k).to_string())
        .unwrap_or_default()
}

fn zone_value(cfg: &Config, id: u32, leaf: &str) -> String {
    key_for(&schema().config, &format!("Zones Zone {id} {leaf}"))
        .map(|k: Key| cfg.get(&k).to_string())
        .unwrap_or_default()
}

fn serial_of(chain: &[CertificateDer<'_>]) -> (String, crate::certs::Ekus) {
    match chain.first().map(|c| decode(c, UnixTime::now())) {
        Some(Ok(i)) => (i.serial, i.ekus),
        _ => (String::new(), crate::certs::Ekus::default()),
    }
}

/// Builds a generation from the files of `root`. `prev` is the generation in force: a `ca.pem`
/// that existed before and is now missing is an error (a deleted trust list must not silently
/// turn into "trust nothing" or keep serving a stale list unnoticed).
pub fn build(
    root: &Path,
    number: u64,
    prev: Option<&Generation>,
) -> Result<Generation, BuildError> {
    let hash = content_hash(root);
    let store = Store::open(root).map_err(|e| BuildError {
        file: root.join("config"),
        message: e.to_string(),
    })?;
    let cfg_path = store.config_path();
    // A plain (non-atomic) save truncates the file before writing it: read in between, an empty
    // file would be a valid configuration of defaults and move the listeners to the default ports.
    // xsh always writes a header, so an empty file after a real configuration is a torn write.
    if prev.is_some_and(|g| g.config_generation > 0)
        && std::fs::read(&cfg_path).is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace))
    {
        return Err(BuildError {
            file: cfg_path,
            message: "the file is empty (a save in progress, or truncated); the configuration in force is kept".into(),
        });
    }
    let cfg = store.load().map_err(|e| BuildError {
        file: cfg_path.clone(),
        message: e.to_string(),
    })?;
    if let Some(p) = cfg.problems.iter().find(|p| p.is_error) {
        return Err(BuildError {
            file: cfg_path,
            message: format!("line {}: {}", p.line, p.message),
        });
    }
    let certs = cstore::certs_dir(root);
    let ca_path = certs.join(CA_LIST);
    let anchors = match std::fs::read(&ca_path) {
        // An empty list is what removing the last CA writes: from now on nothing is trusted.
        // Refusing it would keep the generation in force, which still trusts the removed CA.
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => TrustAnchors::empty(),
        Ok(b) => TrustAnchors::from_pem(&b).map_err(|e| BuildError {
            file: ca_path.clone(),
            message: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if prev.is_some_and(|g| g.ca_count > 0) {
                return Err(BuildError {
                    file: ca_path,
                    message: "the trusted CA list is missing (it existed before)".into(),
                });
            }
            TrustAnchors::empty()
        }
        Err(e) => {
            return Err(BuildError {
                file: ca_path,
                message: e.to_string(),
            })
        }
    };
    let anchors = Arc::new(anchors);
    let (server_chain, server_key) =
        cstore::load_pair(&certs, SERVER_CERT, SERVER_KEY).map_err(|e| BuildError {
            file: certs.join(SERVER_CERT),
            message: e.to_string(),
        })?;
    let (client_chain, client_key) =
        cstore::load_pair(&certs, CLIENT_CERT, CLIENT_KEY).map_err(|e| BuildError {
            file: certs.join(CLIENT_CERT),
            message: e.to_string(),
        })?;
    let mode = if cfg_value(&cfg, "SIP TLS Certificate ExtendedKeyUsage Checking Mode")
        .eq_ignore_ascii_case("off")
    {
        EkuMode::Off
    } else {
        EkuMode::On
    };
    let on = |w: &str| !cfg_value(&cfg, w).eq_ignore_ascii_case("off");
    let tickets = cfg_value(&cfg, "SIP TLS SessionTickets Mode").eq_ignore_ascii_case("on");
    let server_cfg =
        |verifier: EkuClientVerifier, file: &str| -> Result<Arc<ServerConfig>, BuildError> {
            let mut c = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| BuildError {
                    file: certs.join(file),
                    message: e.to_string(),
                })?
                .with_client_cert_verifier(Arc::new(super::listener::Recording(verifier)))
                .with_single_cert(server_chain.clone(), server_key.clone_key())
                .map_err(|e| BuildError {
                    file: certs.join(SERVER_CERT),
                    message: e.to_string(),
                })?;
            // Resumption skips the verifier, so sessions live and die with this generation: a fresh
            // cache per generation means a mode switch always forces a full handshake.
            c.session_storage = ServerSessionMemoryCache::new(1024);
            // TLS 1.3 tickets only when asked for: unused ones cost a write and a cache slot each.
            c.send_tls13_tickets = usize::from(tickets);
            Ok(Arc::new(c))
        };
    // Revocation: installed CRLs, checked in every handshake when both switches are On. OCSP
    // needs the peer to staple or a responder to ask; neither exists on loopback, so a status no
    // CRL covers is left to the fallback.
    let revocation = if !cfg_value(&cfg, "SIP TLS Certificate Revocation Checking Mode")
        .eq_ignore_ascii_case("on")
        || cfg_value(&cfg, "SIP TLS Certificate Revocation CRL Mode").eq_ignore_ascii_case("off")
    {
        None
    } else {
        let deny = cfg_value(&cfg, "SIP TLS Certificate Revocation Fallback Mode")
            .eq_ignore_ascii_case("deny");
        let crl_file = certs.join(CLIENT_CA_CRL);
        let ders = crate::certs::crl::read_all(root).map_err(|e| BuildError {
            file: crl_file.clone(),
            message: e.to_string(),
        })?;
        let r = crate::certs::eku::Revocation::from_ders(&ders, deny).map_err(|message| {
            BuildError {
                file: crl_file.clone(),
                message,
            }
        })?;
        Some(Arc::new(r))
    };
    let ca_names = on("SIP TLS CertificateRequest CANames Mode");
    let sip = server_cfg(
        EkuClientVerifier::inbound(anchors.clone(), mode)
            .with_revocation(revocation.clone())
            .with_ca_names(ca_names),
        SERVER_CERT,
    )?;
    let tunnel = server_cfg(
        EkuClientVerifier::tunnel(anchors.clone())
            .with_revocation(revocation)
            .with_ca_names(ca_names),
        SERVER_CERT,
    )?;
    let client_builder =
        |verifier: Arc<dyn ServerCertVerifier>| -> Result<Arc<ClientConfig>, BuildError> {
            let c = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| BuildError {
                    file: certs.join(CLIENT_CERT),
                    message: e.to_string(),
                })?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_client_auth_cert(client_chain.clone(), client_key.clone_key())
                .map_err(|e| BuildError {
                    file: certs.join(CLIENT_CERT),
                    message: e.to_string(),
                })?;
            Ok(Arc::new(c))
        };
    let (client_verified, client_verify_error) = match crate::certs::server_verifier(&anchors) {
        Ok(v) => (Some(client_builder(v)?), String::new()),
        Err(e) => (None, format!("cannot verify peers: {e}")),
    };
    let client_unverified = client_builder(Arc::new(AcceptAnyServer))?;
    let port = |w: &str| cfg_value(&cfg, w).parse::<u16>().ok();
    let listen = ListenSpec {
        address: cfg_value(&cfg, "Agent Listen Address"),
        sip_port: port("SIP TLS Port").filter(|_| on("SIP TLS Mode")),
        tunnel_port: port("Tunnel Port").filter(|_| on("Tunnel Mode")),
    };
    let zone_node = match key_for(&schema().config, "Zones Zone 1 Name") {
        Some(k) => schema().config.nodes[k.leaf].parent,
        None => None,
    };
    let mut zones = Vec::new();
    if let Some(zn) = zone_node {
        for id in cfg.instances_of(zn, &[]) {
            let ty = zone_value(&cfg, id, "Type");
            let address = zone_value(&cfg, id, "Peer Address");
            if address.is_empty() || ty == "TraversalServer" {
                continue;
            }
            zones.push(ZoneSpec {
                id,
                name: zone_value(&cfg, id, "Name"),
                address,
                port: zone_value(&cfg, id, "Peer Port").parse().unwrap_or(5061),
                tunnel_port: zone_value(&cfg, id, "Peer TunnelPort")
                    .parse()
                    .unwrap_or(2222),
                verify: !zone_value(&cfg, id, "TLS Verify Mode").eq_ignore_ascii_case("off"),
                subject_name: zone_value(&cfg, id, "TLS Verify Subject Name"),
            });
        }
    }
    let (server_serial, _) = serial_of(&server_chain);
    let (client_serial, client_ekus) = serial_of(&client_chain);
    let secs = |w: &str, d: u64| cfg_value(&cfg, w).parse::<u64>().unwrap_or(d);
    Ok(Generation {
        number,
        config_generation: cfg.generation,
        mode,
        listen,
        handshake_timeout: std::time::Duration::from_secs(secs("SIP TLS HandshakeTimeout", 10)),
        status_interval: std::time::Duration::from_secs(secs("Agent StatusInterval", 5)),
        max_connections: secs("Agent MaxConnections", 10_000) as usize,
        sip,
        tunnel,
        client_verified,
        client_unverified,
        client_verify_error,
        server_serial,
        client_serial,
        client_ekus,
        ca_count: anchors.len(),
        zones,
        hash,
    })
}

/// Zone `TLS Verify Mode: Off`: the peer's certificate is not checked (signatures still are).
#[derive(Debug)]
struct AcceptAnyServer;

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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &crate::certs::eku::ALGORITHMS)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &crate::certs::eku::ALGORITHMS)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        crate::certs::eku::ALGORITHMS.supported_schemes()
    }
}
