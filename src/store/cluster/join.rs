//! Migration both ways. Joining: the first peer of a cluster uploads its files as the cluster's
//! initial content (a create-if-absent transaction on the migration marker, with its audit
//! record); a later peer adopts the cluster's content (its own files are kept aside as
//! `xconf.before-join.txt`), and the cluster's generation moves past this peer's own, so no
//! reader of this ROOT ever sees the generation go back. Only then is `cluster.json` written.
//! Leaving: the cache is refreshed when the cluster answers, `cluster.json` goes, and the peer
//! is back on its files, which hold what the cluster had.

use std::path::Path;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::blocking::Peer;
use super::commit::{audit_puts, Outcome, Write};
use super::{local, Bootstrap, ClusterError, ClusterSnapshot};
use crate::store::{now_rfc3339, AuditRecord, Store, Who};

/// What joining did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// This peer's files became the cluster's initial content, at this generation.
    Uploaded { generation: u64 },
    /// This peer took the cluster's content, now at this generation.
    Adopted { generation: u64 },
}

fn record(who: &Who, generation: u64, path: &str, new: &str) -> AuditRecord {
    AuditRecord {
        time: now_rfc3339(),
        generation,
        user: who.user.clone(),
        from: who.from.clone(),
        session: who.session.clone(),
        path: path.to_string(),
        old: String::new(),
        new: new.to_string(),
        result: "applied".into(),
        change: String::new(),
    }
}

fn io(path: &Path, op: &'static str) -> impl FnOnce(crate::store::StoreError) -> ClusterError {
    let path = path.to_path_buf();
    move |e| ClusterError::Io {
        path,
        op,
        source: std::io::Error::other(e.to_string()),
    }
}

/// The certificate files the cluster shares, as this peer holds them: `(key name, bytes)`.
fn local_certs(root: &Path) -> Vec<(String, Vec<u8>)> {
    ["ca.pem", "client-ca.crl", "policy-services.crl"]
        .iter()
        .filter_map(|n| {
            let b = std::fs::read(root.join("certs").join(n)).ok()?;
            (!b.is_empty()).then(|| (n.to_string(), b))
        })
        .collect()
}

/// Joins `root` to the cluster `boot` names.
pub fn join(root: &Path, boot: &Bootstrap, who: &Who) -> Result<Joined, ClusterError> {
    boot.check().map_err(|why| ClusterError::Bootstrap {
        path: Bootstrap::path(root),
        why,
    })?;
    if let Some(b) = Bootstrap::load(root)? {
        return Err(ClusterError::Bootstrap {
            path: Bootstrap::path(root),
            why: format!(
                "this peer is already in the cluster {} as '{}'; xCommand Cluster Leave first",
                b.prefix, b.peer
            ),
        });
    }
    // Before anything else: the etcd client hides a refused handshake behind a timeout.
    super::tls::probe(boot)?;
    let store = Store::open(root).map_err(io(root, "open the store of"))?;
    let _local = store.lock().map_err(io(root, "lock the store of"))?;
    let peer = Peer::new(root, boot.clone())?;
    let held = peer.run(|c| async move { c.lock().await })?;
    let res = join_held(root, &peer, who);
    let _ = peer.run(|c| async move {
        c.unlock(held).await;
        Ok(())
    });
    let joined = res?;
    boot.save(root)?;
    Ok(joined)
}

fn join_held(root: &Path, peer: &Peer, who: &Who) -> Result<Joined, ClusterError> {
    let snap = peer.load()?;
    let mine = local::read_local(root);
    if !snap.initialized {
        if let Some(g) = upload(root, peer, &snap, &mine, who)? {
            let snap = peer.load()?;
            local::materialise_locked(root, &snap)?;
            return Ok(Joined::Uploaded { generation: g });
        }
    }
    let snap = peer.load()?;
    let _ = std::fs::copy(
        root.join("config/xconf.txt"),
        root.join("config/xconf.before-join.txt"),
    );
    // Past this peer's own generation, so its readers never see the number go back.
    let generation = snap.generation.max(mine.generation) + 1;
    let mut cfg = local::overlay(&snap.config_text, &mine, generation);
    cfg.generation = generation;
    let rec = record(
        who,
        generation,
        &format!("Cluster Join {}", peer.bootstrap().peer),
        "adopted the cluster's configuration",
    );
    let text = local::shared_text(&cfg);
    let expected = snap.config_revision;
    let out = peer.run(|c| async move {
        let w = Write {
            key: c.config_key(),
            expected,
            value: text.into_bytes(),
            extra: audit_puts(&c, generation, &[rec]),
        };
        c.write(&w).await
    })?;
    if let Outcome::Conflict { .. } = out {
        return Err(ClusterError::Unconfirmed(
            "the cluster's configuration changed while joining; try again".into(),
        ));
    }
    let snap = peer.load()?;
    local::materialise_locked(root, &snap)?;
    Ok(Joined::Adopted { generation })
}

/// The first peer's upload: config, CA list, CRLs, the marker and the audit record in one
/// transaction, only while the marker is absent. `None` when another peer was first.
fn upload(
    root: &Path,
    peer: &Peer,
    snap: &ClusterSnapshot,
    mine: &crate::store::Config,
    who: &Who,
) -> Result<Option<u64>, ClusterError> {
    let generation = mine.generation + 1;
    let mut cfg = mine.clone();
    cfg.generation = generation;
    cfg.generation_known = true;
    let text = local::shared_text(&cfg);
    let certs = local_certs(root);
    let rec = record(
        who,
        generation,
        &format!("Cluster Join {}", peer.bootstrap().peer),
        &format!(
            "uploaded this peer's configuration ({} values) and {} certificate file(s) as the cluster's initial content",
            cfg.values.len(),
            certs.len()
        ),
    );
    let marker = serde_json::json!({ "peer": peer.bootstrap().peer, "time": rec.time }).to_string();
    let expected = snap.config_revision;
    let ok = peer.run(|c| async move {
        let marker_key = c.key("meta/initialized");
        let mut puts = vec![
            TxnOp::put(c.config_key(), text, None),
            TxnOp::put(marker_key.clone(), marker, None),
        ];
        for (name, bytes) in certs {
            puts.push(TxnOp::put(c.cert_key(&name), bytes, None));
        }
        for (k, v) in audit_puts(&c, generation, &[rec]) {
            puts.push(TxnOp::put(k, v, None));
        }
        let txn = Txn::new()
            .when([
                Compare::create_revision(marker_key, CompareOp::Equal, 0),
                Compare::mod_revision(c.config_key(), CompareOp::Equal, expected),
            ])
            .and_then(puts);
        let mut e = c.client();
        super::timed(e.txn(txn)).await.map(|r| r.succeeded())
    })?;
    Ok(ok.then_some(generation))
}

/// Leaves the cluster: refresh the cache when the cluster answers (else keep it as it is),
/// record the leave in both audit logs, remove `cluster.json`. The files are then the store.
pub fn leave(root: &Path, who: &Who) -> Result<u64, ClusterError> {
    let Some(boot) = Bootstrap::load(root)? else {
        return Err(ClusterError::Bootstrap {
            path: Bootstrap::path(root),
            why: "this peer is in no cluster".into(),
        });
    };
    let store = Store::open(root).map_err(io(root, "open the store of"))?;
    let _local = store.lock().map_err(io(root, "lock the store of"))?;
    let peer = Peer::new(root, boot.clone())?;
    let generation = match peer.load() {
        Ok(snap) => {
            local::materialise_locked(root, &snap)?;
            let rec = record(
                who,
                snap.generation,
                &format!("Cluster Leave {}", boot.peer),
                "left the cluster; this peer keeps a copy and is back on its files",
            );
            let _ = peer.run(|c| async move { c.note(rec.generation, &rec).await });
            snap.generation
        }
        Err(_) => local::read_meta(root).generation,
    };
    Bootstrap::remove(root)?;
    let _ = std::fs::remove_file(local::meta_path(root));
    let rec = record(
        who,
        generation,
        &format!("Cluster Leave {}", boot.peer),
        &format!("left the cluster {}", boot.prefix),
    );
    crate::store::audit::append(&store.audit_path(), &[rec])
        .map_err(io(root, "append to the audit log of"))?;
    Ok(generation)
}
