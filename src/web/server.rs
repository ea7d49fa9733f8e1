//! The accept loop: TLS with the configuration of the moment, then HTTP/1.1 or HTTP/2 (ALPN).
//!
//! Each accepted connection asks the caller for the TLS configuration to use (the agent hands
//! in its current generation's), so a new server certificate is presented by the next
//! connection while connections in flight keep theirs. Handshakes run in the connection's own
//! task: one slow client never holds up the next. The loop knows no agent and no store.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;

/// How long a client has for its TLS handshake, and for a request's headers.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the listener has seen, for the status tree.
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections accepted.
    pub accepted: AtomicU64,
    /// Connections whose TLS handshake failed or timed out.
    pub handshake_failed: AtomicU64,
    /// Connections being served now.
    pub active: AtomicU64,
}

impl Counters {
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.accepted.load(Ordering::Relaxed),
            self.handshake_failed.load(Ordering::Relaxed),
            self.active.load(Ordering::Relaxed),
        )
    }
}

/// The current TLS configuration, asked once per accepted connection.
pub type TlsSource = Arc<dyn Fn() -> Arc<ServerConfig> + Send + Sync>;

/// Serves `app` on `listener` until `stop` turns true (or its sender is dropped): accepting
/// stops at once, connections in flight finish their current requests (graceful shutdown).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: TlsSource,
    mut stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped(&mut stop) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            // Out of descriptors and the like: back off a little instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls());
        let (app, stop, counters) = (app.clone(), stop.clone(), counters.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => {
                    counters.handshake_failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            counters.active.fetch_add(1, Ordering::Relaxed);
            connection(TokioIo::new(tls), peer, app, stop).await;
            counters.active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Resolves when `stop` is true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection<I>(io: I, peer: SocketAddr, app: Router, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = tower::ServiceExt::map_request(
        app,
        move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.map(axum::body::Body::new)
        },
    );
    let svc = TowerToHyperService::new(svc);
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64u32);
    let mut conn = pin!(b.serve_connection_with_upgrades(io, svc));
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped(&mut stop) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}
