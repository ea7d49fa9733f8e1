//! The peer's side of the cluster: which leaves are peer-local (the schema's `local` records),
//! the shared text of a configuration (without them), the effective configuration (the shared
//! text with this peer's local leaves laid over), and the local cache with its record
//! `ROOT/config/cluster-cache.json` of the revisions it holds.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ClusterError, ClusterSnapshot, CACHE_FILE};
use crate::parse::Key;
use crate::schema::schema;
use crate::store::{atomic, Config};

/// Whether `key` is peer-local (never shared).
pub fn is_local(key: &Key) -> bool {
    schema().config.nodes[key.leaf]
        .leaf
        .as_ref()
        .is_some_and(|l| l.local)
}

/// The text the cluster stores for `cfg`: every value except the peer-local ones.
pub fn shared_text(cfg: &Config) -> String {
    let mut c = cfg.clone();
    c.values.retain(|k, _| !is_local(k));
    c.to_text()
}

/// The shared configuration `shared` with the local leaves of `mine` laid over (a local
/// leaf found in the shared text is dropped: the peer's own value wins, or the default).
pub fn overlay(shared: &str, mine: &Config, generation: u64) -> Config {
    let mut c = Config::from_text(shared);
    c.values.retain(|k, _| !is_local(k));
    for (k, v) in &mine.values {
        if is_local(k) {
            c.values.insert(k.clone(), v.clone());
        }
    }
    c.generation = generation;
    c.generation_known = true;
    c
}

/// What the local cache holds, by cluster revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMeta {
    /// Cluster revision of the snapshot last written here.
    pub revision: i64,
    /// `mod_revision` of the config key it came from.
    pub config_revision: i64,
    /// Newest `mod_revision` of the certificate keys it came from.
    pub certs_revision: i64,
    /// Generation of the shared text.
    pub generation: u64,
}

pub fn meta_path(root: &Path) -> std::path::PathBuf {
    root.join("config").join(CACHE_FILE)
}

/// The cache's record; the default (nothing cached) when missing or unreadable.
pub fn read_meta(root: &Path) -> CacheMeta {
    std::fs::read(meta_path(root))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn write_meta(root: &Path, m: &CacheMeta) -> Result<(), ClusterError> {
    let p = meta_path(root);
    let text = serde_json::to_string(m).unwrap_or_default() + "\n";
    atomic::replace(&p, text.as_bytes(), 0o644, atomic::Durability::Synced).map_err(|source| {
        ClusterError::Io {
            path: p,
            op: "write",
            source,
        }
    })
}

fn write(p: &Path, bytes: &[u8]) -> Result<(), ClusterError> {
    if std::fs::read(p).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|source| ClusterError::Io {
            path: d.to_path_buf(),
            op: "create",
            source,
        })?;
    }
    atomic::replace(p, bytes, 0o644, atomic::Durability::Synced).map_err(|source| {
        ClusterError::Io {
            path: p.to_path_buf(),
            op: "write",
            source,
        }
    })
}

/// The local configuration file as it is (empty when missing).
pub fn read_local(root: &Path) -> Config {
    let p = root.join("config").join("xconf.txt");
    let bytes = crate::bounded::read(&p, crate::bounded::FileKind::Config).unwrap_or_default();
    Config::from_bytes(&bytes)
}

/// Writes the effective configuration `cfg` as the local `xconf.txt`.
pub fn write_config(root: &Path, cfg: &Config) -> Result<(), ClusterError> {
    write(
        &root.join("config").join("xconf.txt"),
        cfg.to_text().as_bytes(),
    )
}

/// [`super::materialise`] with the store's lock already held.
pub fn materialise_locked(root: &Path, snap: &ClusterSnapshot) -> Result<bool, ClusterError> {
    let meta = read_meta(root);
    let mut wrote = false;
    if snap.config_revision > 0 && snap.config_revision != meta.config_revision {
        let mine = read_local(root);
        let eff = overlay(&snap.config_text, &mine, snap.generation);
        write_config(root, &eff)?;
        wrote = true;
    }
    if snap.certs_revision > 0 && snap.certs_revision != meta.certs_revision {
        // The certificate room's file names (certs/ca.pem and the CRL files beside it): bytes
        // here, parsed only above this room.
        let certs = root.join("certs");
        if let Some(ca) = &snap.ca_pem {
            write(&certs.join("ca.pem"), ca)?;
        }
        for (name, bytes) in &snap.crls {
            if !name.contains('/') && !name.starts_with('.') {
                write(&certs.join(name), bytes)?;
            }
        }
        wrote = true;
    }
    let next = CacheMeta {
        revision: snap.revision,
        config_revision: if snap.config_revision > 0 {
            snap.config_revision
        } else {
            meta.config_revision
        },
        certs_revision: if snap.certs_revision > 0 {
            snap.certs_revision
        } else {
            meta.certs_revision
        },
        generation: if snap.config_revision > 0 {
            snap.generation
        } else {
            meta.generation
        },
    };
    // Only with a change: peer-status puts move the revision every few seconds.
    if wrote {
        write_meta(root, &next)?;
    }
    Ok(wrote)
}

impl ClusterSnapshot {
    /// The snapshot a watch event of the config key carries (its value is the key as of
    /// `mod_revision`): the configuration only, the certificate keys left as the cache has
    /// them. Saves the agent a read on the path from a commit to the next handshake.
    pub fn of_config_event(
        key: &str,
        value: &[u8],
        mod_revision: i64,
    ) -> Result<Self, ClusterError> {
        let config_text = String::from_utf8(value.to_vec()).map_err(|_| ClusterError::Corrupt {
            key: key.to_string(),
            why: "not UTF-8 text".into(),
        })?;
        Ok(ClusterSnapshot {
            revision: mod_revision,
            generation: crate::store::header_generation(value).unwrap_or(0),
            config_text,
            ca_pem: None,
            crls: Vec::new(),
            config_revision: mod_revision,
            certs_revision: 0,
            initialized: true,
        })
    }
}
