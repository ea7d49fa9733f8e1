//! Established inbound connections, for `Agent Reload CloseRefused Mode`: each accepted
//! connection is held here with the chain its peer presented, and a reload whose generation has
//! the setting On asks that generation's verifier about every one and closes those it refuses.
//! With the setting Off (the default) a connection keeps the decision of its handshake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::sync::Notify;

use super::listener::Kind;
use super::Shared;

/// One established connection.
struct Entry {
    kind: Kind,
    peer: SocketAddr,
    chain: Vec<CertificateDer<'static>>,
    close: Arc<Notify>,
}

/// The connections open now.
#[derive(Default)]
pub struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
}

/// A connection's place in the registry, removed when the connection ends.
pub struct Held {
    shared: Arc<Shared>,
    id: u64,
    close: Arc<Notify>,
}

impl Held {
    pub fn register(
        shared: &Arc<Shared>,
        kind: Kind,
        peer: SocketAddr,
        chain: Vec<CertificateDer<'static>>,
    ) -> Held {
        let reg = &shared.established;
        let id = reg.next.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        if let Ok(mut m) = reg.open.lock() {
            m.insert(
                id,
                Entry {
                    kind,
                    peer,
                    chain,
                    close: close.clone(),
                },
            );
        }
        Held {
            shared: shared.clone(),
            id,
            close,
        }
    }

    /// Fires when a reload decided this connection must close.
    pub fn closer(&self) -> Arc<Notify> {
        self.close.clone()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.established.open.lock() {
            m.remove(&self.id);
        }
    }
}

/// Closes the established connections the generation in force refuses (when its
/// `Agent Reload CloseRefused Mode` is On); returns how many.
pub fn close_refused(shared: &Shared) -> usize {
    let g = shared.current.load();
    if !g.close_refused {
        return 0;
    }
    let now = UnixTime::now();
    let mut closed = Vec::new();
    if let Ok(m) = shared.established.open.lock() {
        for e in m.values() {
            let verifier = match e.kind {
                Kind::Sip => &g.sip_verifier,
                Kind::Tunnel => &g.tunnel_verifier,
            };
            let Some((leaf, rest)) = e.chain.split_first() else {
                continue;
            };
            if let (_, Err(why)) = verifier.check(leaf, rest, now) {
                e.close.notify_one();
                closed.push(format!(
                    "closed the established {} connection from {}: generation {} refuses its certificate ({why}; Agent Reload CloseRefused Mode is On)",
                    e.kind.name(),
                    e.peer,
                    g.number
                ));
            }
        }
    }
    for line in &closed {
        shared.report.event("reload", "INFO", line);
    }
    closed.len()
}
