//! The cluster backend: one configuration, one trusted CA list and its CRLs, and one audit log
//! for every peer of a cluster, kept in etcd (3.4) under a prefix; each peer's files under
//! `ROOT/config/` (and `ROOT/certs/ca.pem`, the CRLs) are the local cache of what the cluster
//! holds, so the agent and every front end keep reading files.
//!
//! A peer is in a cluster when `ROOT/config/cluster.json` exists ([`Bootstrap`]: endpoints,
//! prefix, this peer's name and, for `https://` endpoints, the TLS material to reach etcd
//! ([`tls`]); 0600). The cluster settings never live in the cluster.
//!
//! Key layout under `{prefix}` (no trailing slash):
//! * `{prefix}/config`: the shared xconf text (every leaf not marked `local` in the schema)
//!   with its `# generation: N` header. The generation counter lives in this text: each commit
//!   stores N+1, and the first peer's upload continues its own count, so generations stay
//!   monotonic across a migration. The key's `mod_revision` is only the compare-and-swap token.
//! * `{prefix}/certs/ca.pem`: the trusted CA list; `{prefix}/certs/crl/<file>`: one key per CRL
//!   file (`client-ca.crl`, `policy-services.crl`).
//! * `{prefix}/audit/<20-digit generation>-<n>`: audit records (JSON lines, gzip when large),
//!   put in the same transaction as the change they record; `n` is `c<chunk>` for a commit's
//!   records and `note-<time>-<peer>` for an event that is not a configuration change.
//! * `{prefix}/meta/initialized`: the migration marker the first joiner creates (a
//!   create-if-absent transaction); later joiners adopt the cluster's content.
//! * `{prefix}/lock`: the etcd lock (under a lease) that serialises writers, so a transaction
//!   runs once as on the file store; the compare on `config`'s revision still guards the write.
//! * `{prefix}/peers/<name>`: each agent's status under a lease (the agent's room).
//!
//! Peer-local leaves stay in the peer's own `xconf.txt`: the cache is the cluster's text with
//! them laid over ([`local`]). The room knows etcd and bytes; it knows no certificates (the CA
//! list and CRLs are opaque bytes here), no terminal and no renderer.

pub mod backend;
pub mod blocking;
mod commit;
pub mod join;
pub mod local;
pub mod shared;
pub mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, Txn, TxnOp, TxnOpResponse};
use serde::{Deserialize, Serialize};

pub use commit::{decode_audit, Outcome};

/// The file that puts a peer in a cluster.
pub const BOOTSTRAP_FILE: &str = "cluster.json";
/// The local cache's record of what it holds (revisions, generation).
pub const CACHE_FILE: &str = "cluster-cache.json";
/// How long one etcd request may take before it counts as unanswered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a write keeps retrying while the cluster has no leader or a member is down.
pub const WRITE_PATIENCE: Duration = Duration::from_secs(5);

/// `ROOT/config/cluster.json`: where the cluster is and who this peer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Client URLs of the etcd members (`http://127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// Key prefix of this cluster (`/xsh/c1`), without a trailing slash.
    pub prefix: String,
    /// This peer's name, unique in the cluster.
    pub peer: String,
    /// TLS to etcd (`https://` endpoints): the PEM text itself, so the bootstrap depends on no
    /// file outside it. Absent for `http://` endpoints (and in bootstraps written before TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<tls::EtcdTls>,
}

impl Bootstrap {
    pub fn path(root: &Path) -> PathBuf {
        root.join("config").join(BOOTSTRAP_FILE)
    }

    /// The bootstrap file of `root`; `None` when the peer is not in a cluster.
    pub fn load(root: &Path) -> Result<Option<Bootstrap>, ClusterError> {
        let p = Bootstrap::path(root);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ClusterError::Io {
                    path: p,
                    op: "read",
                    source,
                })
            }
        };
        let b: Bootstrap = serde_json::from_slice(&bytes).map_err(|e| ClusterError::Bootstrap {
            path: p.clone(),
            why: e.to_string(),
        })?;
        b.check()
            .map_err(|why| ClusterError::Bootstrap { path: p, why })?;
        Ok(Some(b))
    }

    /// What a valid bootstrap holds: endpoints as `http(s)://host:port` (all of one scheme;
    /// `https://` with a CA certificate, `http://` without TLS material), a prefix starting with
    /// `/` and no trailing `/`, a peer name of letters, digits, `-`, `_`, `.`, and TLS material
    /// that parses (a client key that matches its certificate).
    pub fn check(&self) -> Result<(), String> {
        if self.endpoints.is_empty() {
            return Err("no etcd endpoints (expected http://host:port, comma-separated)".into());
        }
        for e in &self.endpoints {
            let rest = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"));
            let ok = rest.is_some_and(|r| {
                r.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            });
            if !ok {
                return Err(format!(
                    "endpoint '{e}' is not http://host:port or https://host:port"
                ));
            }
        }
        self.check_transport()?;
        if !self.prefix.starts_with('/') || self.prefix.ends_with('/') || self.prefix.len() < 2 {
            return Err(format!(
                "prefix '{}' must start with '/' and not end with '/' (e.g. /xsh/c1)",
                self.prefix
            ));
        }
        if self.peer.is_empty()
            || self.peer.len() > 64
            || !self
                .peer
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "peer name '{}' must be 1 to 64 letters, digits, '-', '_' or '.'",
                self.peer
            ));
        }
        Ok(())
    }

    /// One scheme for every endpoint, and TLS material exactly when it is `https://`.
    fn check_transport(&self) -> Result<(), String> {
        let https = self.endpoints.iter().filter(|e| e.starts_with("https://"));
        let secure = https.count();
        if secure > 0 && secure < self.endpoints.len() {
            return Err(
                "endpoints mix http:// and https://; give every etcd member the same scheme".into(),
            );
        }
        match (&self.tls, secure > 0) {
            (None, true) => Err(format!(
                "endpoint '{}' is https:// and no CA certificate was given to verify etcd's server certificate",
                self.endpoints[0]
            )),
            (Some(_), false) => Err(format!(
                "a CA certificate was given but endpoint '{}' is http:// (TLS to etcd needs https:// endpoints)",
                self.endpoints[0]
            )),
            (Some(t), true) => t.check(),
            (None, false) => Ok(()),
        }
    }

    /// How this peer reaches etcd, for `xStatus Cluster Transport`: `Plain`, `TLS`, or
    /// `MutualTLS` (TLS with a client certificate).
    pub fn transport(&self) -> &'static str {
        match &self.tls {
            None => "Plain",
            Some(t) if t.client_certificate.is_some() => "MutualTLS",
            Some(_) => "TLS",
        }
    }

    /// Writes the bootstrap file (0600).
    pub fn save(&self, root: &Path) -> Result<(), ClusterError> {
        let p = Bootstrap::path(root);
        let text = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        super::write_file_atomic(&p, text.as_bytes(), 0o600).map_err(|source| ClusterError::Io {
            path: p,
            op: "write",
            source,
        })
    }

    /// Removes the bootstrap file (leaving the cluster).
    pub fn remove(root: &Path) -> Result<(), ClusterError> {
        let p = Bootstrap::path(root);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ClusterError::Io {
                path: p,
                op: "remove",
                source,
            }),
        }
    }
}

/// Failures of the cluster backend.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// `cluster.json` does not say what it must.
    Bootstrap { path: PathBuf, why: String },
    /// No etcd member answered (all down, no leader, or no quorum) within the time allowed.
    Unreachable(String),
    /// A write was sent and the cluster never confirmed it (timeout or lost connection); a
    /// re-read did not find it. It may still land: it was not acknowledged.
    Unconfirmed(String),
    /// etcd refused the request (too large, invalid).
    Refused(String),
    /// A TLS connection to an etcd member failed: which member, which side refused, why.
    Tls {
        endpoint: String,
        failure: tls::TlsFailure,
        why: String,
    },
    /// What the cluster holds is not what this build stores there.
    Corrupt { key: String, why: String },
    /// A local cache file could not be read or written.
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Bootstrap { path, why } => {
                write!(f, "cluster bootstrap file {}: {why}", path.display())
            }
            ClusterError::Unreachable(why) => write!(
                f,
                "the cluster (etcd) is unreachable, so nothing was written: {why}"
            ),
            ClusterError::Unconfirmed(why) => write!(
                f,
                "the cluster (etcd) did not confirm the write, so it is not acknowledged: {why}"
            ),
            ClusterError::Refused(why) => write!(f, "the cluster (etcd) refused the write: {why}"),
            ClusterError::Tls {
                endpoint,
                failure,
                why,
            } => match failure {
                tls::TlsFailure::ServerNotTrusted => write!(
                    f,
                    "cannot verify the TLS certificate of etcd at {endpoint}: {why}"
                ),
                tls::TlsFailure::ClientRefused => write!(
                    f,
                    "etcd at {endpoint} refused this peer's TLS connection: {why}"
                ),
                tls::TlsFailure::Handshake => {
                    write!(f, "no TLS connection to etcd at {endpoint}: {why}")
                }
            },
            ClusterError::Corrupt { key, why } => write!(f, "cluster key {key}: {why}"),
            ClusterError::Io { path, op, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for ClusterError {}

/// gRPC codes (tonic is not a direct dependency): the ones that mean "try again".
const CODE_DEADLINE_EXCEEDED: i32 = 4;
const CODE_UNAVAILABLE: i32 = 14;

/// Whether an etcd error means the member or the cluster did not answer (retry, or report
/// unreachable), as opposed to a refusal.
pub fn is_transient(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            let c = s.code() as i32;
            c == CODE_UNAVAILABLE || c == CODE_DEADLINE_EXCEEDED
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

fn describe(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_lowercase(),
        e => e.to_string().to_lowercase(),
    }
}

/// One consistent read of what the cluster shares (all at one revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// The cluster revision of the read: watch from `revision + 1`.
    pub revision: i64,
    /// The generation in the shared text's header (0 before the first upload).
    pub generation: u64,
    /// The shared configuration text (empty before the first upload).
    pub config_text: String,
    /// The trusted CA list, when the cluster holds one.
    pub ca_pem: Option<Vec<u8>>,
    /// The CRL files the cluster holds: (file name, bytes).
    pub crls: Vec<(String, Vec<u8>)>,
    /// `mod_revision` of the config key (0 when absent): the compare-and-swap token.
    pub config_revision: i64,
    /// `mod_revision` of the newest certificate key (0 when none).
    pub certs_revision: i64,
    /// Whether the migration marker exists (a first peer uploaded its content).
    pub initialized: bool,
}

/// An async client of one cluster (cheap to clone).
#[derive(Clone)]
pub struct ClusterClient {
    client: Client,
    prefix: String,
    peer: String,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("prefix", &self.prefix)
            .field("peer", &self.peer)
            .finish()
    }
}

/// Runs one etcd request under [`REQUEST_TIMEOUT`].
pub(crate) async fn timed<T>(
    fut: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if is_transient(&e) => Err(ClusterError::Unreachable(describe(&e))),
        Ok(Err(e)) => Err(ClusterError::Refused(describe(&e))),
        Err(_) => Err(ClusterError::Unreachable(format!(
            "no answer within {} s",
            REQUEST_TIMEOUT.as_secs()
        ))),
    }
}

impl ClusterClient {
    /// A client of the cluster `b` names. Lazy: no request is made, so this succeeds with every
    /// member down; the first request says whether the cluster answers.
    pub async fn connect(b: &Bootstrap) -> Result<ClusterClient, ClusterError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(500))
            // ≥ 5 s: the server's --grpc-keepalive-min-time, or every watch dies with GOAWAY.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(3))
            .with_require_leader(true);
        if let Some(t) = &b.tls {
            opts = opts.with_tls(t.options());
        }
        let client = Client::connect(&b.endpoints, Some(opts))
            .await
            .map_err(|e| ClusterError::Unreachable(describe(&e)))?;
        Ok(ClusterClient {
            client,
            prefix: b.prefix.clone(),
            peer: b.peer.clone(),
        })
    }

    /// The prefix the agent watches (`{prefix}/`): config, certs and peers.
    pub fn watch_prefix(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// The underlying etcd client, for the agent's own watch and lease calls.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    pub fn config_key(&self) -> String {
        self.key("config")
    }

    /// The key of the CA list or a CRL file in the cluster.
    pub fn cert_key(&self, file: &str) -> String {
        if file == "ca.pem" {
            self.key("certs/ca.pem")
        } else {
            self.key(&format!("certs/crl/{file}"))
        }
    }

    /// One consistent read (one transaction, one revision) of the config key, the certificate
    /// keys and the migration marker.
    pub async fn load(&self) -> Result<ClusterSnapshot, ClusterError> {
        let txn = Txn::new().and_then([
            TxnOp::get(self.config_key(), None),
            TxnOp::get(self.key("certs/"), Some(GetOptions::new().with_prefix())),
            TxnOp::get(self.key("meta/initialized"), None),
        ]);
        let mut c = self.client.clone();
        let r = timed(c.txn(txn)).await?;
        let revision = r.header().map(|h| h.revision()).unwrap_or(0);
        let mut snap = ClusterSnapshot {
            revision,
            generation: 0,
            config_text: String::new(),
            ca_pem: None,
            crls: Vec::new(),
            config_revision: 0,
            certs_revision: 0,
            initialized: false,
        };
        let ca_key = self.cert_key("ca.pem");
        let crl_prefix = self.key("certs/crl/");
        for (i, op) in r.op_responses().into_iter().enumerate() {
            let TxnOpResponse::Get(g) = op else { continue };
            for kv in g.kvs() {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                match i {
                    0 => {
                        snap.config_text =
                            String::from_utf8(kv.value().to_vec()).map_err(|_| {
                                ClusterError::Corrupt {
                                    key: key.clone(),
                                    why: "not UTF-8 text".into(),
                                }
                            })?;
                        snap.config_revision = kv.mod_revision();
                        snap.generation = super::header_generation(kv.value()).unwrap_or(0);
                    }
                    1 => {
                        snap.certs_revision = snap.certs_revision.max(kv.mod_revision());
                        if key == ca_key {
                            snap.ca_pem = Some(kv.value().to_vec());
                        } else if let Some(name) = key.strip_prefix(&crl_prefix) {
                            snap.crls.push((name.to_string(), kv.value().to_vec()));
                        }
                    }
                    _ => snap.initialized = true,
                }
            }
        }
        Ok(snap)
    }

    /// The newest `limit` audit records of the cluster, oldest first.
    pub async fn audit(&self, limit: usize) -> Result<Vec<super::AuditRecord>, ClusterError> {
        let opts = GetOptions::new()
            .with_prefix()
            .with_sort(
                etcd_client::SortTarget::Key,
                etcd_client::SortOrder::Descend,
            )
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        let mut c = self.client.clone();
        let r = timed(c.get(self.key("audit/"), Some(opts))).await?;
        let mut out = Vec::new();
        for kv in r.kvs() {
            let mut recs = decode_audit(kv.value());
            recs.reverse();
            out.extend(recs);
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        out.reverse();
        Ok(out)
    }
}

/// Writes the local cache of `root` from `snap` when it is newer than what the cache holds:
/// `xconf.txt` (the shared text with this peer's local leaves laid over, the cluster's
/// generation in its header), `certs/ca.pem` and the CRL files. True when something was written.
/// Takes the store's lock, so it never interleaves with a local writer.
pub fn materialise(root: &Path, snap: &ClusterSnapshot) -> Result<bool, ClusterError> {
    let store = super::Store::open(root).map_err(|e| ClusterError::Io {
        path: root.join("config"),
        op: "open",
        source: std::io::Error::other(e.to_string()),
    })?;
    let _lock = store.lock().map_err(|e| ClusterError::Io {
        path: root.join("config/.xconf.lock"),
        op: "lock",
        source: std::io::Error::other(e.to_string()),
    })?;
    local::materialise_locked(root, snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Config;

    fn boot(endpoints: &[&str], prefix: &str, peer: &str) -> Bootstrap {
        Bootstrap {
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.into(),
            peer: peer.into(),
            tls: None,
        }
    }

    #[test]
    fn a_bootstrap_says_what_is_wrong() {
        assert!(boot(&["http://127.0.0.1:2379"], "/xsh/c1", "n1")
            .check()
            .is_ok());
        for (b, want) in [
            (boot(&[], "/x", "n"), "no etcd endpoints"),
            (
                boot(&["127.0.0.1:2379"], "/x", "n"),
                "is not http://host:port",
            ),
            (boot(&["http://h:0"], "/x", "n"), "is not http://host:port"),
            (boot(&["http://h:1"], "x", "n"), "must start with '/'"),
            (boot(&["http://h:1"], "/x/", "n"), "must start with '/'"),
            (boot(&["http://h:1"], "/x", "a b"), "peer name"),
            (
                boot(&["http://h:1", "https://h:2"], "/x", "n"),
                "mix http:// and https://",
            ),
            (boot(&["https://h:1"], "/x", "n"), "no CA certificate"),
            (
                Bootstrap {
                    tls: Some(tls::EtcdTls {
                        ca_certificate: "x".into(),
                        client_certificate: None,
                        client_key: None,
                    }),
                    ..boot(&["http://h:1"], "/x", "n")
                },
                "is http://",
            ),
            (
                Bootstrap {
                    tls: Some(tls::EtcdTls {
                        ca_certificate: "x".into(),
                        client_certificate: None,
                        client_key: None,
                    }),
                    ..boot(&["https://h:1"], "/x", "n")
                },
                "the CA certificate holds no PEM certificate",
            ),
        ] {
            let e = b.check().unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let d = tempfile::tempdir().unwrap();
        assert!(Bootstrap::load(d.path()).unwrap().is_none());
        std::fs::create_dir_all(d.path().join("config")).unwrap();
        let b = boot(&["http://127.0.0.1:2379"], "/xsh/c1", "n1");
        b.save(d.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(Bootstrap::path(d.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Bootstrap::load(d.path()).unwrap(), Some(b));
        std::fs::write(Bootstrap::path(d.path()), "{").unwrap();
        assert!(matches!(
            Bootstrap::load(d.path()),
            Err(ClusterError::Bootstrap { .. })
        ));
    }

    /// The shared text leaves out the peer-local leaves; the overlay puts this peer's back.
    #[test]
    fn peer_local_leaves_are_never_shared() {
        let mine = Config::from_text(
            "xConfiguration SystemUnit Name: \"a\"\nxConfiguration SIP TLS Port: 5070\nxConfiguration Shell IdleTimeout: 5\n",
        );
        let shared = local::shared_text(&mine);
        assert!(!shared.contains("SystemUnit Name") && !shared.contains("TLS Port"));
        assert!(shared.contains("IdleTimeout"));
        let theirs = "xConfiguration SystemUnit Name: \"b\"\nxConfiguration Shell IdleTimeout: 9\n";
        let eff = local::overlay(theirs, &mine, 7);
        let text = eff.to_text();
        assert!(text.contains("# generation: 7"), "{text}");
        assert!(
            text.contains("Name: \"a\"") && text.contains("Port: \"5070\""),
            "{text}"
        );
        assert!(text.contains("IdleTimeout: \"9\""), "{text}");
        let leaf = crate::schema::schema()
            .config
            .nodes
            .iter()
            .filter(|n| n.leaf.as_ref().is_some_and(|l| l.local))
            .count();
        assert_eq!(leaf, 5);
    }

    #[test]
    fn audit_values_round_trip_plain_and_gzipped() {
        let rec = |i: usize| crate::store::AuditRecord {
            time: "t".into(),
            generation: 3,
            user: "u".into(),
            from: "local".into(),
            session: "1".into(),
            path: format!("Zones Zone {i} Name"),
            old: String::new(),
            new: "x".repeat(40),
            result: "applied".into(),
            change: String::new(),
        };
        let small: Vec<_> = (0..3).map(rec).collect();
        let big: Vec<_> = (0..5000).map(rec).collect();
        for recs in [small, big] {
            let v: Vec<u8> = recs
                .iter()
                .map(|r| serde_json::to_string(r).unwrap() + "\n")
                .collect::<String>()
                .into_bytes();
            let enc = if v.len() > 64 * 1024 {
                let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut z, &v).unwrap();
                z.finish().unwrap()
            } else {
                v
            };
            assert_eq!(decode_audit(&enc), recs);
        }
    }
}
