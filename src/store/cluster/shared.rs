//! Shared files other than the configuration (the trusted CA list, the CRL files), written
//! through the cluster when the ROOT is in one: one transaction puts the new bytes and the audit
//! record, compared on the key's revision; the caller writes its local file (the cache) only
//! after it succeeded. Bytes only: what they hold is the certificate room's business.

use std::path::Path;

use super::blocking::Peer;
use super::commit::{note_key, Outcome, Write};
use super::{local, Bootstrap, ClusterError};
use crate::store::{now_rfc3339, AuditRecord, Who};

/// Puts `bytes` as the cluster's copy of `file` (`ca.pem`, `client-ca.crl`,
/// `policy-services.crl`) when `root` is in a cluster; `Ok(false)` when it is not (the caller
/// writes its file as always). The local file must hold what the cluster holds (the change was
/// computed from it): when another peer changed it meanwhile, the local copy is brought up to
/// date and the write is refused, to be run again.
pub fn put_file(root: &Path, file: &str, bytes: &[u8], what: &str) -> Result<bool, ClusterError> {
    let Some(boot) = Bootstrap::load(root)? else {
        return Ok(false);
    };
    let peer = Peer::new(root, boot)?;
    let local_path = root.join("certs").join(file);
    let base = std::fs::read(&local_path).unwrap_or_default();
    let who = Who::current();
    let file = file.to_string();
    let bytes = bytes.to_vec();
    let what = what.to_string();
    let snap_gen = local::read_meta(root).generation;
    let out = peer.run(|c| async move {
        let held = c.lock().await?;
        let res = async {
            let key = c.cert_key(&file);
            let mut e = c.client();
            let cur = super::timed(e.get(key.clone(), None)).await?;
            let (rev, value) = cur
                .kvs()
                .first()
                .map(|kv| (kv.mod_revision(), kv.value().to_vec()))
                .unwrap_or((0, Vec::new()));
            if value != base {
                return Ok(Err(value));
            }
            let rec = AuditRecord {
                time: now_rfc3339(),
                generation: snap_gen,
                user: who.user.clone(),
                from: who.from.clone(),
                session: who.session.clone(),
                path: format!("Security Certificates {file}"),
                old: String::new(),
                new: what,
                result: "applied".into(),
                change: String::new(),
            };
            let w = Write {
                key,
                expected: rev,
                value: bytes,
                extra: vec![(
                    note_key(&c, snap_gen),
                    (serde_json::to_string(&rec).unwrap_or_default() + "\n").into_bytes(),
                )],
            };
            Ok(Ok(c.write(&w).await?))
        }
        .await;
        c.unlock(held).await;
        res
    });
    match out? {
        Ok(Outcome::Committed { .. }) => Ok(true),
        Ok(Outcome::Conflict { .. }) => Err(ClusterError::Refused(format!(
            "the cluster's {} changed meanwhile; run the command again",
            local_path.display()
        ))),
        Err(theirs) => {
            if !theirs.is_empty() {
                let _ = crate::store::atomic::replace(
                    &local_path,
                    &theirs,
                    0o644,
                    crate::store::atomic::Durability::Synced,
                );
            }
            Err(ClusterError::Refused(format!(
                "another peer changed {} in the cluster; this peer's copy is now the cluster's, run the command again",
                local_path.display()
            )))
        }
    }
}
