//! A generation: everything a handshake needs, built once off to the side from the files of a ROOT
//! and then swapped in whole. Start-up and every reload use [`build`]; a generation is never
//! changed after it is built, so a handshake only loads one pointer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::ServerSessionMemoryCache;
use rustls::{ClientConfig, ServerConfig};

use crate::bounded::{self, FileKind};
use crate::certs::eku::Revocation;
use crate::certs::store::{
    self as cstore, CA_LIST, CLIENT_CA_CRL, CLIENT_CERT, CLIENT_KEY, POLICY_SERVICES_CRL,
    SERVER_CERT, SERVER_KEY,
};
use crate::certs::{decode, EkuClientVerifier, EkuMode, TrustAnchors};
use crate::schema::values::{AllowDeny, NeighborTraversalClientTraversalServer as ZoneType, OnOff};
use crate::store::{Config, Store};

/// A zone the agent reports: a Neighbor or TraversalClient zone with at least one peer address
/// (its outbound peers), or a TraversalServer zone (no peers: it would wait for its client).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ZoneSpec {
    pub id: u32,
    pub name: String,
    pub kind: ZoneType,
    /// `(Peer index, address)` of each peer of the type's sub-tree that has an address.
    pub peers: Vec<(u8, String)>,
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
    /// `Administration HTTPS Port` while `Administration HTTPS Mode` is On.
    pub https_port: Option<u16>,
}

/// One immutable generation.
pub struct Generation {
    pub number: u64,
    pub config_generation: u64,
    pub mode: EkuMode,
    pub listen: ListenSpec,
    pub handshake_timeout: Duration,
    /// `Agent IdleTimeout`: how long an inbound connection may take to complete a request.
    pub idle_timeout: Duration,
    /// `Agent SessionLimit`: how long an inbound connection may stay open (None: no limit).
    pub session_limit: Option<Duration>,
    /// Inbound connections held at once, both listeners together.
    pub max_connections: usize,
    pub status_interval: Duration,
    /// `Logging Level`, as the diagnostic log's filter.
    pub log_level: tracing::level_filters::LevelFilter,
    pub sip: Arc<ServerConfig>,
    pub tunnel: Arc<ServerConfig>,
    /// The HTTPS plane's config: the server store, no client certificate, ALPN h2 and http/1.1.
    pub https: Arc<ServerConfig>,
    /// The verifiers inside `sip` and `tunnel`, to ask again about established connections.
    pub sip_verifier: EkuClientVerifier,
    pub tunnel_verifier: EkuClientVerifier,
    /// `Agent Reload CloseRefused Mode`: close established connections this generation refuses.
    pub close_refused: bool,
    /// `Logging Rotation` and `Logging Refused`.
    pub logs: super::logfile::LogLimits,
    /// Client configs presenting the client store; `verified` checks the peer against `ca.pem`.
    pub client_verified: Option<Arc<ClientConfig>>,
    pub client_unverified: Arc<ClientConfig>,
    pub client_verify_error: String,
    pub server_serial: String,
    pub client_serial: String,
    /// The client store leaf's EKU extension (typed: the zone hints ask the policy about it).
    pub client_ekus: crate::certs::Ekus,
    /// The client store leaf's notAfter, RFC 3339 (empty without a client certificate).
    pub client_not_after: String,
    pub ca_count: usize,
    pub zones: Vec<ZoneSpec>,
    /// Content hash of the files this generation was built from.
    pub hash: u64,
    /// Hash of what the outbound zone checks depend on (the zones, the client store's chain,
    /// the trusted CAs): a change that leaves it alone (a mode flip, a new server certificate)
    /// does not re-run every zone check, which costs a connection per zone.
    pub outbound: u64,
}

/// See [`Generation::outbound`].
fn outbound_hash(
    zones: &[ZoneSpec],
    client_chain: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    zones.hash(&mut h);
    for c in client_chain.iter().chain(anchors.ders()) {
        h.write_usize(c.len());
        h.write(c);
    }
    h.finish()
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

/// The files a generation is built from, each with its kind (its size limit).
pub fn watched_files(root: &Path) -> Vec<(PathBuf, FileKind)> {
    let c = root.join("certs");
    vec![
        (root.join("config").join("xconf.txt"), FileKind::Config),
        (c.join(SERVER_CERT), FileKind::Certificate),
        (c.join(SERVER_KEY), FileKind::Key),
        (c.join(CLIENT_CERT), FileKind::Certificate),
        (c.join(CLIENT_KEY), FileKind::Key),
        (c.join(CA_LIST), FileKind::CaList),
        (c.join(CLIENT_CA_CRL), FileKind::Crl),
        (c.join(POLICY_SERVICES_CRL), FileKind::Crl),
    ]
}

/// A hash of the watched files' contents (missing files hash as absent, lengths mixed in so
/// content cannot slide from one file to the next): SipHash, whole buffers at a time, since a
/// 1,000-zone `xconf.txt` is 380 KB hashed at every wake-up. Compared only within one process.
/// A file refused by its bounded read (a FIFO, `/dev/zero`, 100 MB) hashes as its refusal and
/// its metadata, never its content: a bad file that stays costs a `stat`, not a read.
pub fn content_hash(root: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for (p, kind) in watched_files(root) {
        match bounded::read(&p, kind) {
            Ok(bytes) => {
                h.write_u8(b'+');
                h.write_usize(bytes.len());
                h.write(&bytes);
            }
            Err(e) if e.is_missing() => h.write_u8(b'-'),
            Err(e) => {
                h.write_u8(b'!');
                e.reason().hash(&mut h);
                if let Ok(m) = std::fs::metadata(&p) {
                    use std::os::unix::fs::MetadataExt;
                    (m.ino(), m.len(), m.mtime(), m.mtime_nsec()).hash(&mut h);
                }
            }
        }
    }
    h.finish()
}

fn provider() -> Arc<CryptoProvider> {
    crate::certs::verify::client::provider()
}

fn serial_of(chain: &[CertificateDer<'_>]) -> (String, crate::certs::Ekus, String) {
    match chain.first().map(|c| decode(c, UnixTime::now())) {
        Some(Ok(i)) => (i.serial, i.ekus, i.not_after),
        _ => (String::new(), crate::certs::Ekus::default(), String::new()),
    }
}

/// The configuration's `ExtendedKeyUsage Checking Mode` as the certificate room's mode.
fn eku_mode(cfg: &Config) -> EkuMode {
    match cfg
        .sip()
        .tls()
        .certificate()
        .extended_key_usage()
        .checking()
        .mode()
    {
        OnOff::On => EkuMode::On,
        OnOff::Off => EkuMode::Off,
    }
}

/// The zones the agent reports (see [`ZoneSpec`]): each peer of the zone's own type's
/// sub-tree that has an address is checked; the other types' sub-trees are ignored.
fn zone_specs(cfg: &Config) -> Vec<ZoneSpec> {
    const PEERS: u8 = 6;
    cfg.zones()
        .zone_instances()
        .filter_map(|z| {
            let kind = z.r#type();
            let (peers, port, tunnel_port, verify_on, subject) = match kind {
                ZoneType::TraversalServer => {
                    let t = z.traversal_server();
                    let v = t.sip().tls().verify();
                    (Vec::new(), t.sip().port(), 0, v.mode(), v.subject().name())
                }
                ZoneType::Neighbor => {
                    let t = z.neighbor();
                    let v = t.sip().tls().verify();
                    let peers = (1..=PEERS)
                        .map(|i| (i, t.peer(u32::from(i)).address().to_string()))
                        .collect::<Vec<_>>();
                    (
                        peers,
                        t.sip().port(),
                        t.tunnel().port(),
                        v.mode(),
                        v.subject().name(),
                    )
                }
                ZoneType::TraversalClient => {
                    let t = z.traversal_client();
                    let v = t.sip().tls().verify();
                    let peers = (1..=PEERS)
                        .map(|i| (i, t.peer(u32::from(i)).address().to_string()))
                        .collect::<Vec<_>>();
                    (
                        peers,
                        t.sip().port(),
                        t.tunnel().port(),
                        v.mode(),
                        v.subject().name(),
                    )
                }
            };
            let peers: Vec<(u8, String)> =
                peers.into_iter().filter(|(_, a)| !a.is_empty()).collect();
            if peers.is_empty() && kind != ZoneType::TraversalServer {
                return None;
            }
            Some(ZoneSpec {
                id: z.id(),
                name: z.name().to_string(),
                kind,
                peers,
                port,
                tunnel_port,
                verify: verify_on == OnOff::On,
                subject_name: subject.to_string(),
            })
        })
        .collect()
}

fn log_limits(cfg: &Config) -> super::logfile::LogLimits {
    let l = cfg.logging();
    super::logfile::LogLimits {
        max_bytes: u64::from(l.rotation().size()) * 1024,
        keep: u32::from(l.rotation().count()),
        refused_limit: u64::from(l.refused().limit()),
        refused_interval: Duration::from_secs(l.refused().interval().into()),
    }
}

fn listen_spec(cfg: &Config) -> ListenSpec {
    let sip = cfg.sip().tls();
    let tunnel = cfg.tunnel();
    ListenSpec {
        address: cfg.agent().listen().address().to_string(),
        sip_port: Some(sip.port()).filter(|_| sip.mode() == OnOff::On),
        tunnel_port: Some(tunnel.port()).filter(|_| tunnel.mode() == OnOff::On),
        https_port: Some(cfg.administration().https().port())
            .filter(|_| cfg.administration().https().mode() == OnOff::On),
    }
}

fn err(file: PathBuf, e: impl std::fmt::Display) -> BuildError {
    BuildError {
        file,
        message: e.to_string(),
    }
}

/// The configuration of `root`, refused when torn or when a line is in error.
fn load_config(root: &Path, prev: Option<&Generation>) -> Result<Arc<Config>, BuildError> {
    let store = Store::open(root).map_err(|e| err(root.join("config"), e))?;
    let cfg_path = store.config_path();
    // Under a running agent a missing file is a fault, not "every default": the listeners would
    // move to the default ports and the mode go back to On without a word. A deliberate reset is
    // a file that says so (a comment line and no values); a first start without one uses defaults.
    if prev.is_some() && !cfg_path.exists() && std::fs::symlink_metadata(&cfg_path).is_err() {
        return Err(err(
            cfg_path,
            "the configuration file is missing; the configuration in force is kept (to reset every value to its default, write a file holding only a comment line, e.g. '# reset')",
        ));
    }
    // A plain (non-atomic) save truncates the file before writing it: read in between, an empty
    // file would be a valid configuration of defaults and move the listeners to the default ports.
    // xsh always writes a header, so an empty file after a real configuration is a torn write.
    // Only a short file can be blank: a large one is not read twice for this.
    if prev.is_some_and(|g| g.config_generation > 0)
        && std::fs::metadata(&cfg_path).is_ok_and(|m| m.len() <= 4096)
        && bounded::read(&cfg_path, FileKind::Config)
            .is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace))
    {
        return Err(err(
            cfg_path,
            "the file is empty (a save in progress, or truncated); the configuration in force is kept",
        ));
    }
    let cfg = store.snapshot().map_err(|e| match e {
        crate::store::StoreError::Read(r) => err(cfg_path.clone(), r.reason()),
        e => err(cfg_path.clone(), e),
    })?;
    if let Some(p) = cfg.problems.iter().find(|p| p.is_error) {
        return Err(err(cfg_path, format!("line {}: {}", p.line, p.message)));
    }
    Ok(cfg)
}

/// The trusted CA list. An empty file is what removing the last CA writes: from now on nothing
/// is trusted (refusing it would keep the generation in force, which still trusts the removed
/// CA). A missing file after a non-empty list is an error.
fn load_anchors(certs: &Path, prev: Option<&Generation>) -> Result<TrustAnchors, BuildError> {
    let ca_path = certs.join(CA_LIST);
    match bounded::read(&ca_path, FileKind::CaList) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(TrustAnchors::empty()),
        Ok(b) => TrustAnchors::from_pem(&b).map_err(|e| err(ca_path, e)),
        Err(e) if e.is_missing() => {
            if prev.is_some_and(|g| g.ca_count > 0) {
                return Err(err(
                    ca_path,
                    "the trusted CA list is missing (it existed before)",
                ));
            }
            Ok(TrustAnchors::empty())
        }
        Err(e) => Err(err(ca_path, e.reason())),
    }
}

/// Revocation: installed CRLs, checked in every handshake when Checking Mode and CRL Mode are
/// both On. OCSP needs the peer to staple or a responder to ask; neither exists on loopback, so
/// a status no CRL covers is left to the fallback.
fn revocation(root: &Path, cfg: &Config) -> Result<Option<Arc<Revocation>>, BuildError> {
    let r = cfg.sip().tls().certificate().revocation();
    if r.checking().mode() != OnOff::On || r.crl().mode() != OnOff::On {
        return Ok(None);
    }
    let deny = r.fallback().mode() == AllowDeny::Deny;
    let crl_file = cstore::certs_dir(root).join(CLIENT_CA_CRL);
    let ders = crate::certs::crl::read_all(root).map_err(|e| err(crl_file.clone(), e))?;
    let rev = Revocation::from_ders(&ders, deny).map_err(|m| err(crl_file, m))?;
    Ok(Some(Arc::new(rev)))
}

/// A listener's server config. Resumption skips the verifier, so sessions live and die with
/// this generation: a fresh cache per generation means a mode switch always forces a full
/// handshake.
fn server_config(
    certs: &Path,
    verifier: EkuClientVerifier,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    tickets: bool,
) -> Result<Arc<ServerConfig>, BuildError> {
    let mut c = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(certs.join(SERVER_CERT), e))?
        .with_client_cert_verifier(Arc::new(super::listener::Recording(verifier)))
        .with_single_cert(chain.to_vec(), key.clone_key())
        .map_err(|e| err(certs.join(SERVER_CERT), e))?;
    c.session_storage = ServerSessionMemoryCache::new(1024);
    // TLS 1.3 tickets only when asked for: unused ones cost a write and a cache slot each.
    c.send_tls13_tickets = usize::from(tickets);
    Ok(Arc::new(c))
}

/// The HTTPS plane's server config: the same server chain as the SIP listener, no client
/// authentication (browsers and API clients log in with accounts), ALPN for HTTP/2. ALPN is set
/// here only: the SIP and tunnel configs never advertise it.
fn https_config(
    certs: &Path,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, BuildError> {
    let mut c = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(certs.join(SERVER_CERT), e))?
        .with_no_client_auth()
        .with_single_cert(chain.to_vec(), key.clone_key())
        .map_err(|e| err(certs.join(SERVER_CERT), e))?;
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    c.session_storage = ServerSessionMemoryCache::new(256);
    Ok(Arc::new(c))
}

/// A client config presenting the client store, checking peers with `verifier`: the one
/// outbound client config ([`crate::certs::verify::client`]), which the probe builds too.
fn client_config(
    certs: &Path,
    verifier: Arc<dyn ServerCertVerifier>,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<Arc<ClientConfig>, BuildError> {
    crate::certs::verify::client::client_config(verifier, Some((chain, key)), &[])
        .map(Arc::new)
        .map_err(|e| err(certs.join(CLIENT_CERT), e))
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
    let cfg = load_config(root, prev)?;
    let certs = cstore::certs_dir(root);
    let anchors = Arc::new(load_anchors(&certs, prev)?);
    let (server_chain, server_key) =
        cstore::load_pair(&certs, SERVER_CERT, SERVER_KEY).map_err(|e| err(e.file, e.error))?;
    let (client_chain, client_key) =
        cstore::load_pair(&certs, CLIENT_CERT, CLIENT_KEY).map_err(|e| err(e.file, e.error))?;
    let mode = eku_mode(&cfg);
    let revocation = revocation(root, &cfg)?;
    let tls = cfg.sip().tls();
    let tickets = tls.session_tickets().mode() == OnOff::On;
    let ca_names = tls.certificate().ca_names().mode() == OnOff::On;
    let sip_verifier = EkuClientVerifier::inbound(anchors.clone(), mode)
        .with_revocation(revocation.clone())
        .with_ca_names(ca_names);
    let tunnel_verifier = EkuClientVerifier::tunnel(anchors.clone())
        .with_revocation(revocation)
        .with_ca_names(ca_names);
    let sip = server_config(
        &certs,
        sip_verifier.clone(),
        &server_chain,
        &server_key,
        tickets,
    )?;
    let tunnel = server_config(
        &certs,
        tunnel_verifier.clone(),
        &server_chain,
        &server_key,
        tickets,
    )?;
    let https = https_config(&certs, &server_chain, &server_key)?;
    let (client_verified, client_verify_error) = match crate::certs::server_verifier(&anchors) {
        Ok(v) => (
            Some(client_config(&certs, v, &client_chain, &client_key)?),
            String::new(),
        ),
        Err(e) => (None, format!("cannot verify peers: {e}")),
    };
    let client_unverified = client_config(
        &certs,
        Arc::new(crate::certs::verify::client::AcceptAnyServer),
        &client_chain,
        &client_key,
    )?;
    let (server_serial, _, _) = serial_of(&server_chain);
    let (client_serial, client_ekus, client_not_after) = serial_of(&client_chain);
    let agent = cfg.agent();
    let zones = zone_specs(&cfg);
    let outbound = outbound_hash(&zones, &client_chain, &anchors);
    Ok(Generation {
        number,
        config_generation: cfg.generation,
        mode,
        listen: listen_spec(&cfg),
        handshake_timeout: Duration::from_secs(cfg.sip().tls().handshake_timeout().into()),
        status_interval: Duration::from_secs(agent.status_interval().into()),
        idle_timeout: Duration::from_secs(agent.idle_timeout().into()),
        session_limit: Some(Duration::from_secs(agent.session_limit().into()))
            .filter(|d| !d.is_zero()),
        log_level: super::logging::filter_of(cfg.logging().level()),
        max_connections: agent.max_connections() as usize,
        sip,
        tunnel,
        https,
        sip_verifier,
        tunnel_verifier,
        close_refused: agent.reload().close_refused().mode() == OnOff::On,
        logs: log_limits(&cfg),
        client_verified,
        client_unverified,
        client_verify_error,
        server_serial,
        client_serial,
        client_ekus,
        client_not_after,
        ca_count: anchors.len(),
        zones,
        hash,
        outbound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Who;

    /// 1,000 zones come out of the typed configuration whole, each leaf where it was set, and
    /// the defaults from the schema where nothing was. Prints the build time (`--nocapture`).
    #[test]
    fn build_reads_every_zone_typed() {
        let d = tempfile::tempdir().unwrap();
        crate::root::prepare(d.path()).unwrap();
        let store = Store::open(d.path()).unwrap();
        store
            .transact(&Who::default(), |c| {
                let mut set = |line: String| match crate::parse::parse_line(&line).unwrap().action {
                    crate::parse::Action::ConfigSet { key, value, .. } => {
                        c.set(key, value);
                    }
                    a => panic!("{a:?}"),
                };
                set(
                    "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: Off".into(),
                );
                set("xConfiguration Tunnel Mode: Off".into());
                for z in 1..=1000 {
                    set(format!("xConfiguration Zones Zone {z} Name: \"zone {z}\""));
                    set(format!(
                        "xConfiguration Zones Zone {z} Neighbor Peer 1 Address: \"p{z}.example\""
                    ));
                    if z % 2 == 0 {
                        set(format!(
                            "xConfiguration Zones Zone {z} Neighbor SIP Port: {}",
                            6000 + z
                        ));
                    }
                    if z % 10 == 0 {
                        set(format!(
                            "xConfiguration Zones Zone {z} Type: TraversalServer"
                        ));
                    }
                    if z % 3 == 0 {
                        set(format!(
                            "xConfiguration Zones Zone {z} Neighbor SIP TLS Verify Mode: Off"
                        ));
                    }
                }
            })
            .unwrap();
        let first = build(d.path(), 1, None).unwrap();
        let t = std::time::Instant::now();
        let g = build(d.path(), 2, Some(&first)).unwrap();
        println!("generation::build with 1,000 zones: {:?}", t.elapsed());
        assert_eq!(g.mode, EkuMode::Off);
        assert_eq!(g.listen.sip_port, Some(5061));
        assert_eq!(g.listen.tunnel_port, None);
        assert_eq!(g.listen.address, "127.0.0.1");
        assert_eq!(g.max_connections, 10_000);
        assert_eq!(g.handshake_timeout, Duration::from_secs(10));
        assert_eq!(g.status_interval, Duration::from_secs(5));
        assert_eq!(g.zones.len(), 1000);
        let servers: Vec<_> = g
            .zones
            .iter()
            .filter(|z| z.kind == ZoneType::TraversalServer)
            .collect();
        assert_eq!(servers.len(), 100);
        assert!(
            servers.iter().all(|z| z.peers.is_empty() && z.port == 7001),
            "a TraversalServer zone has no outbound peer and its own default SIP Port"
        );
        let z = g.zones.iter().find(|z| z.id == 42).unwrap();
        assert_eq!(
            (
                z.name.as_str(),
                z.peers.clone(),
                z.port,
                z.tunnel_port,
                z.verify
            ),
            (
                "zone 42",
                vec![(1, "p42.example".to_string())],
                6042,
                2222,
                false
            )
        );
        let z = g.zones.iter().find(|z| z.id == 7).unwrap();
        assert_eq!(
            (z.port, z.verify, z.subject_name.as_str()),
            (5061, true, "")
        );
    }
}
