//! Inbound TLS listeners: SIP TLS (EKU checking mode) and the tunnel (always clientAuth). Each
//! accept loads the current generation once; the handshake runs with that generation's config
//! even if a reload swaps in another meanwhile. After the handshake: SIP answers `OPTIONS` with
//! `200 OK` and anything else with `501`; the tunnel greets and echoes.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::report::{ListenerStats, RejectKind};
use super::Shared;
use crate::certs::info::Presented;
use crate::certs::{EkuClientVerifier, EkuError, EkuMode};

/// Which listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sip,
    Tunnel,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sip => "sip",
            Kind::Tunnel => "tunnel",
        }
    }
}

/// What the verifier saw and decided on one connection: the presented leaf (read once: serial,
/// subject, issuer, EKUs) and the decision with its typed reason.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub presented: Option<Presented>,
    pub decision: Result<(), EkuError>,
}

impl Outcome {
    fn cert(&self) -> String {
        match &self.presented {
            Some(p) => p.describe(),
            None => "undecodable certificate".into(),
        }
    }
}

/// One connection's outcome slot, filled by the verifier during that connection's handshake.
type Slot = Arc<Mutex<Option<Outcome>>>;

tokio::task_local! {
    /// The slot of the connection whose handshake this task is driving. rustls calls the
    /// verifier synchronously inside the poll of that connection's accept future (which runs in
    /// the slot's scope), and a `ServerConfig`'s verifier cannot be swapped per connection, so
    /// this is how the outcome reaches its own connection — never another's.
    static OUTCOME: Slot;
}

/// The EKU verifier, recording its outcome in the slot of the connection it runs for.
#[derive(Debug)]
pub struct Recording(pub EkuClientVerifier);

impl ClientCertVerifier for Recording {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let (presented, result) = self.0.check(end_entity, intermediates, now);
        let (decision, out) = match result {
            Ok(_) => (Ok(()), Ok(ClientCertVerified::assertion())),
            Err(e) => (Err(e.clone()), Err(EkuClientVerifier::rejection(e))),
        };
        let _ = OUTCOME.try_with(|slot| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(Outcome {
                    presented,
                    decision,
                });
            }
        });
        out
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `serial=.. issuer=.. ekus=..` of a certificate, for status and logs.
pub fn describe(der: &[u8]) -> String {
    match Presented::parse(der) {
        Ok(p) => p.describe(),
        Err(_) => "undecodable certificate".into(),
    }
}

/// One line of `handshakes.log`. Fields in name order: the bytes stay those of the earlier
/// JSON-map records.
#[derive(serde::Serialize)]
struct Record<'a> {
    decision: &'static str,
    generation: u64,
    listener: &'static str,
    mode: &'static str,
    peer: SocketAddr,
    presented_by_peer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    sent_server_serial: &'a str,
    time: String,
}

/// Why a handshake failed, for the log line and the counters: the verifier's own outcome for
/// this connection when it ran, else the class of the rustls error (by variant).
fn refusal(outcome: Option<&Outcome>, err: &std::io::Error) -> (String, RejectKind, String) {
    if let Some(o) = outcome {
        if let Err(e) = &o.decision {
            let kind = if e.is_eku_policy() {
                RejectKind::Eku
            } else {
                RejectKind::Chain
            };
            return (e.to_string(), kind, o.cert());
        }
    }
    let rerr = err
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>());
    let kind = match rerr {
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            RejectKind::Chain
        }
        _ => RejectKind::Other,
    };
    let reason = rerr.map_or_else(|| err.to_string(), ToString::to_string);
    let cert = match outcome {
        Some(o) => o.cert(),
        None => "no certificate presented".to_string(),
    };
    (reason, kind, cert)
}

/// Accept loop of one listener; ends when `stop` flips.
pub async fn serve(
    kind: Kind,
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = listener.accept() => {
                match r {
                    Ok((stream, peer)) => {
                        let max = shared.current.load().max_connections;
                        let open = shared.connections.fetch_add(1, Ordering::AcqRel);
                        if open >= max {
                            shared.connections.fetch_sub(1, Ordering::AcqRel);
                            drop(stream);
                            stats(&shared, kind).reject(
                                RejectKind::Other,
                                format!("peer={peer} reason=\"connection limit of {max} reached (Agent MaxConnections)\""),
                            );
                            shared.report.mark();
                            continue;
                        }
                        let sh = shared.clone();
                        tokio::spawn(async move {
                            let _open = OpenConnection(sh.clone());
                            handle(kind, stream, peer, sh).await
                        });
                    }
                    // Out of descriptors and the like: back off instead of spinning on the error.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// Counts a connection as open until its task ends (also on panic or cancellation).
struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

fn stats(shared: &Shared, kind: Kind) -> &ListenerStats {
    match kind {
        Kind::Sip => &shared.report.sip,
        Kind::Tunnel => &shared.report.tunnel,
    }
}

async fn handle(kind: Kind, stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let gen = shared.current.load_full();
    let cfg = match kind {
        Kind::Sip => gen.sip.clone(),
        Kind::Tunnel => gen.tunnel.clone(),
    };
    let _ = stream.set_nodelay(true);
    let st = stats(&shared, kind);
    let slot: Slot = Arc::new(Mutex::new(None));
    let res = tokio::time::timeout(
        gen.handshake_timeout,
        OUTCOME.scope(slot.clone(), TlsAcceptor::from(cfg).accept(stream)),
    )
    .await;
    let outcome = slot.lock().ok().and_then(|mut s| s.take());
    let mode = match (kind, gen.mode) {
        (Kind::Sip, EkuMode::On) => "On",
        (Kind::Sip, EkuMode::Off) => "Off",
        (Kind::Tunnel, _) => "always clientAuth",
    };
    let mut tls = match res {
        Err(_) => {
            st.reject(
                RejectKind::Timeout,
                format!(
                    "peer={peer} reason=\"handshake did not complete within {:?}\"",
                    gen.handshake_timeout
                ),
            );
            shared.report.mark();
            return;
        }
        Ok(Err(e)) => {
            let (reason, kind_of, cert) = refusal(outcome.as_ref(), &e);
            let reason = crate::peer_text::PeerText::new(&reason).into_string();
            let text = format!("peer={peer} {cert} reason=\"{reason}\"");
            st.reject(kind_of, text);
            shared.report.mark();
            // Counted always; logged line by line only up to `Logging Refused Limit`.
            if !shared
                .report
                .refused_admit(&format!("{} peer={peer} reason=\"{reason}\"", kind.name()))
            {
                return;
            }
            shared.report.handshake(&Record {
                decision: "rejected",
                generation: gen.number,
                listener: kind.name(),
                mode,
                peer,
                presented_by_peer: &cert,
                reason: Some(&reason),
                sent_server_serial: &gen.server_serial,
                time: crate::store::now_rfc3339(),
            });
            shared.report.handshake_event(
                kind.name(),
                "ERROR",
                &format!("TLS handshake from {peer} rejected: {reason}"),
            );
            return;
        }
        Ok(Ok(t)) => t,
    };
    // A resumed session skips the verifier: then the certificate comes from the session.
    let peer_cert = match outcome.and_then(|o| o.presented) {
        Some(p) => p.describe(),
        None => tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| describe(c))
            .unwrap_or_default(),
    };
    st.accepted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(mut l) = st.last_accepted.lock() {
        *l = format!("peer={peer} {peer_cert}");
    }
    shared.report.handshake(&Record {
        decision: "accepted",
        generation: gen.number,
        listener: kind.name(),
        mode,
        peer,
        presented_by_peer: &peer_cert,
        reason: None,
        sent_server_serial: &gen.server_serial,
        time: crate::store::now_rfc3339(),
    });
    shared.report.mark();
    // Read once: a connection keeps the limits it opened with.
    let (idle, limit) = (gen.idle_timeout, gen.session_limit);
    drop(gen);
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let held = super::established::Held::register(&shared, kind, peer, chain);
    let closer = held.closer();
    let session = async {
        match kind {
            Kind::Sip => {
                let _ = sip_session(&mut tls, idle).await;
            }
            Kind::Tunnel => tunnel_echo(&mut tls, idle).await,
        }
    };
    // `Agent SessionLimit` counts the whole connection, however active it is.
    let limited = async {
        match limit {
            Some(l) => {
                let _ = tokio::time::timeout(l, session).await;
            }
            None => session.await,
        }
    };
    tokio::select! {
        _ = limited => {}
        _ = closer.notified() => {}
    }
    drop(held);
    let _ = tokio::time::timeout(idle, tls.shutdown()).await;
}

/// Longest SIP header line accepted; a longer one ends the connection (read at most one byte more).
const MAX_LINE: usize = 8192;

/// `write_all` + `flush`, bounded by `idle`: a peer that stops reading cannot hold the task forever.
async fn write_idle<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    bytes: &[u8],
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "peer does not read");
    tokio::time::timeout(idle, async {
        s.write_all(bytes).await?;
        s.flush().await
    })
    .await
    .map_err(|_| timed_out())?
}

/// The tunnel: greets, then echoes until EOF, an error, or `idle` without progress either way.
async fn tunnel_echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    tls: &mut S,
    idle: std::time::Duration,
) {
    if write_idle(tls, b"XTUNNEL 1 ready\r\n", idle).await.is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(idle, tls.read(&mut buf)).await {
        if n == 0 || write_idle(tls, &buf[..n], idle).await.is_err() {
            break;
        }
    }
}

/// Answers SIP requests on one connection: `OPTIONS` → `200 OK`, others → `501`.
async fn sip_session<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    tls: &mut S,
    idle: std::time::Duration,
) -> std::io::Result<()> {
    // SIP requests here are a few hundred bytes; an idle connection holds this buffer, so keep it
    // small (a longer line still reads whole, in several fills).
    let mut r = BufReader::with_capacity(1024, tls);
    loop {
        // `idle` counts the request, not the line: every header line and the body must arrive
        // within it, so a peer trickling a line now and then is closed all the same.
        let deadline = tokio::time::Instant::now() + idle;
        let mut head = Vec::new();
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            // Capped read: an endless line must not grow `line` without bound.
            let mut capped = (&mut r).take(MAX_LINE as u64 + 1);
            let n = tokio::time::timeout_at(deadline, capped.read_line(&mut line))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
            if n == 0 {
                return Ok(());
            }
            if line.len() > MAX_LINE || head.len() > 64 {
                return Ok(());
            }
            let t = line.trim_end().to_string();
            if t.is_empty() {
                if head.is_empty() {
                    continue;
                }
                break;
            }
            if let Some((k, v)) = t.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") || k.trim() == "l" {
                    content_length = v.trim().parse().unwrap_or(0).min(65536);
                }
            }
            head.push(t);
        }
        if content_length > 0 {
            let mut body = vec![0u8; content_length];
            tokio::time::timeout_at(deadline, r.read_exact(&mut body))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        }
        let method = head
            .first()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        let echo: Vec<&String> = head
            .iter()
            .skip(1)
            .filter(|l| {
                let k = l
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                matches!(
                    k.as_str(),
                    "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq"
                )
            })
            .collect();
        let status = if method.eq_ignore_ascii_case("OPTIONS") {
            "200 OK"
        } else {
            "501 Not Implemented"
        };
        let mut resp = format!("SIP/2.0 {status}\r\n");
        for h in echo {
            resp.push_str(h);
            resp.push_str("\r\n");
        }
        if status.starts_with("200") {
            resp.push_str("Allow: OPTIONS\r\n");
        }
        resp.push_str(&format!(
            "Server: xagent {}\r\nContent-Length: 0\r\n\r\n",
            crate::schema::VERSION
        ));
        write_idle(r.get_mut(), resp.as_bytes(), idle).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn endless_header_line_ends_the_session_without_buffering_it() {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        // 512 KiB without a newline, and the stream stays open: the session must give up at the
        // line cap instead of buffering until a newline (or the idle timeout) arrives.
        client
            .write_all(&vec![b'A'; 512 * 1024])
            .await
            .expect("write");
        let r =
            tokio::time::timeout(LIMIT, sip_session(&mut server, Duration::from_secs(60))).await;
        assert!(
            matches!(r, Ok(Ok(()))),
            "session kept reading an endless line: {r:?}"
        );
        drop(client);
    }

    #[tokio::test]
    async fn sip_body_that_never_comes_times_out() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        client
            .write_all(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 100\r\n\r\n")
            .await
            .expect("write");
        let r =
            tokio::time::timeout(LIMIT, sip_session(&mut server, Duration::from_millis(200))).await;
        assert!(
            matches!(&r, Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut),
            "session waited for the body forever: {r:?}"
        );
        drop(client);
    }

    #[tokio::test]
    async fn header_lines_trickling_in_do_not_keep_the_session() {
        // One header line every 50 ms with a 300 ms limit: each line is within the limit of
        // the one before, and the request never completes.
        let (mut client, mut server) = tokio::io::duplex(4096);
        let trickle = tokio::spawn(async move {
            let _ = client.write_all(b"OPTIONS sip:x SIP/2.0\r\n").await;
            for i in 0..1000 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if client
                    .write_all(format!("X-{i}: y\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let r =
            tokio::time::timeout(LIMIT, sip_session(&mut server, Duration::from_millis(300))).await;
        trickle.abort();
        assert!(
            matches!(&r, Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut),
            "a trickled request kept the session: {r:?}"
        );
    }

    #[tokio::test]
    async fn tunnel_peer_that_never_reads_is_dropped() {
        // A tiny pipe: the echo back fills it at once, and the peer never reads it.
        let (client, mut server) = tokio::io::duplex(64);
        let (_client_rd, mut client_wr) = tokio::io::split(client);
        let writer = tokio::spawn(async move {
            let chunk = [b'x'; 1024];
            while client_wr.write_all(&chunk).await.is_ok() {}
        });
        let r =
            tokio::time::timeout(LIMIT, tunnel_echo(&mut server, Duration::from_millis(200))).await;
        writer.abort();
        assert!(
            r.is_ok(),
            "tunnel echo blocked on a peer that does not read"
        );
    }
}
