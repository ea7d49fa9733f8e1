//! Writes to the cluster: one transaction per commit (compare the revision of the key the
//! change is based on, put the new value and the audit records together), the writers' lock,
//! and the audit encoding.
//!
//! A transaction that times out or loses its member may still have committed. It is retried
//! as it was: the compare makes that safe (if the first attempt landed, the retry's compare
//! fails and the value found is ours). Only a transaction etcd answered as succeeded, or whose
//! value a re-read finds, is [`Outcome::Committed`]; otherwise the write is not acknowledged.

use std::io::{Read, Write as _};
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, GetOptions, LockOptions, Txn, TxnOp, TxnOpResponse};

use super::{timed, ClusterClient, ClusterError, WRITE_PATIENCE};
use crate::store::AuditRecord;

/// What a compare-and-swap transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at this cluster revision (the new `mod_revision` of every key it put).
    Committed { revision: i64 },
    /// The compared key had another revision: nothing was written.
    Conflict { current: i64 },
}

/// One compare-and-swap write: `key` must still have `expected` as its `mod_revision` (0:
/// absent); then `key` gets `value` and every extra put is made, all in one transaction.
#[derive(Debug, Clone)]
pub struct Write {
    pub key: String,
    pub expected: i64,
    pub value: Vec<u8>,
    pub extra: Vec<(String, Vec<u8>)>,
}

/// Audit values past this size are gzip-compressed (a 10,000-set commit's records).
const GZIP_OVER: usize = 64 * 1024;
/// Raw bytes of records per audit key, so a value stays well below etcd's request limit.
const CHUNK: usize = 768 * 1024;

/// The audit keys and values of `recs` (already stamped) for generation `generation`.
pub fn audit_puts(
    c: &ClusterClient,
    generation: u64,
    recs: &[AuditRecord],
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let flush = |buf: &mut String, out: &mut Vec<(String, Vec<u8>)>| {
        if buf.is_empty() {
            return;
        }
        let key = c.key(&format!("audit/{generation:020}-c{:03}", out.len()));
        out.push((key, encode(buf.as_bytes())));
        buf.clear();
    };
    for r in recs {
        if let Ok(s) = serde_json::to_string(r) {
            buf.push_str(&s);
            buf.push('\n');
        }
        if buf.len() >= CHUNK {
            flush(&mut buf, &mut out);
        }
    }
    flush(&mut buf, &mut out);
    out
}

/// The key of a note (an audit record that is not a configuration change).
pub fn note_key(c: &ClusterClient, generation: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    c.key(&format!(
        "audit/{generation:020}-note-{nanos:020}-{}",
        c.peer()
    ))
}

fn encode(raw: &[u8]) -> Vec<u8> {
    if raw.len() <= GZIP_OVER {
        return raw.to_vec();
    }
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if z.write_all(raw).is_err() {
        return raw.to_vec();
    }
    z.finish().unwrap_or_else(|_| raw.to_vec())
}

/// The records of one audit value (JSON lines, or gzip of them; gzip's magic cannot start a
/// JSON line).
pub fn decode_audit(value: &[u8]) -> Vec<AuditRecord> {
    let text = if value.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        if flate2::read::GzDecoder::new(value)
            .read_to_string(&mut s)
            .is_err()
        {
            return Vec::new();
        }
        s
    } else {
        String::from_utf8_lossy(value).into_owned()
    };
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The writers' lock: held while its lease lives; released by revoking the lease.
#[derive(Debug)]
pub struct Held {
    lease: i64,
}

impl ClusterClient {
    /// Retries `op` on transient failures until `patience` has passed.
    async fn patiently<T, F, Fut>(&self, patience: Duration, mut op: F) -> Result<T, ClusterError>
    where
        F: FnMut(ClusterClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let until = Instant::now() + patience;
        loop {
            match op(self.clone()).await {
                Err(ClusterError::Unreachable(why)) => {
                    if Instant::now() >= until {
                        return Err(ClusterError::Unreachable(why));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    /// Takes the cluster's writer lock (waiting for another holder), under a lease of 15 s so
    /// a writer that dies frees it.
    pub async fn lock(&self) -> Result<Held, ClusterError> {
        let lease = self
            .patiently(WRITE_PATIENCE, |c| async move {
                let mut e = c.client.clone();
                timed(e.lease_grant(15, None)).await.map(|l| l.id())
            })
            .await?;
        let name = self.key("lock");
        let got = self
            .patiently(WRITE_PATIENCE, |c| {
                let name = name.clone();
                async move {
                    let mut e = c.client.clone();
                    let opts = LockOptions::new().with_lease(lease);
                    // Waiting for another writer is not a failure: a longer bound than one request.
                    match tokio::time::timeout(Duration::from_secs(30), e.lock(name, Some(opts)))
                        .await
                    {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) if super::is_transient(&e) => {
                            Err(ClusterError::Unreachable(super::describe(&e)))
                        }
                        Ok(Err(e)) => Err(ClusterError::Refused(super::describe(&e))),
                        Err(_) => Err(ClusterError::Unreachable(
                            "the writers' lock was not granted within 30 s".into(),
                        )),
                    }
                }
            })
            .await;
        match got {
            Ok(()) => Ok(Held { lease }),
            Err(e) => {
                self.unlock(Held { lease }).await;
                Err(e)
            }
        }
    }

    /// Releases the lock (best effort: the lease expires anyway).
    pub async fn unlock(&self, held: Held) {
        let mut e = self.client.clone();
        let _ = timed(e.lease_revoke(held.lease)).await;
    }

    /// Runs one compare-and-swap write, retrying transient failures (see the module doc).
    pub async fn write(&self, w: &Write) -> Result<Outcome, ClusterError> {
        let until = Instant::now() + WRITE_PATIENCE;
        let mut maybe_sent = false;
        let mut last;
        loop {
            let mut puts = vec![TxnOp::put(w.key.clone(), w.value.clone(), None)];
            puts.extend(
                w.extra
                    .iter()
                    .map(|(k, v)| TxnOp::put(k.clone(), v.clone(), None)),
            );
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    w.key.clone(),
                    CompareOp::Equal,
                    w.expected,
                )])
                .and_then(puts)
                .or_else([TxnOp::get(w.key.clone(), None)]);
            let mut e = self.client.clone();
            match timed(e.txn(txn)).await {
                Ok(r) if r.succeeded() => {
                    let revision = r.header().map(|h| h.revision()).unwrap_or(0);
                    return Ok(Outcome::Committed { revision });
                }
                Ok(r) => {
                    let current = r.op_responses().into_iter().find_map(|op| match op {
                        TxnOpResponse::Get(g) => Some(
                            g.kvs()
                                .first()
                                .map(|kv| (kv.mod_revision(), kv.value() == w.value.as_slice()))
                                .unwrap_or((0, false)),
                        ),
                        _ => None,
                    });
                    let (current, ours) = current.unwrap_or((0, false));
                    if maybe_sent && ours {
                        // An earlier attempt landed before its answer was lost.
                        return Ok(Outcome::Committed { revision: current });
                    }
                    return Ok(Outcome::Conflict { current });
                }
                Err(ClusterError::Unreachable(why)) => {
                    maybe_sent = true;
                    last = why;
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // One last look: the write may have landed after all.
        let mut e = self.client.clone();
        match timed(e.get(w.key.clone(), Some(GetOptions::new()))).await {
            Ok(r) => match r.kvs().first() {
                Some(kv) if kv.value() == w.value.as_slice() => Ok(Outcome::Committed {
                    revision: kv.mod_revision(),
                }),
                _ => Err(ClusterError::Unconfirmed(last)),
            },
            Err(_) => Err(ClusterError::Unconfirmed(last)),
        }
    }

    /// Puts one record that is not a configuration change (a join, a leave).
    pub async fn note(&self, generation: u64, rec: &AuditRecord) -> Result<(), ClusterError> {
        let key = note_key(self, generation);
        let value = serde_json::to_string(rec).unwrap_or_default() + "\n";
        let mut e = self.client.clone();
        timed(e.put(key, value, None)).await.map(drop)
    }
}
