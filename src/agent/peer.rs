//! Outbound peers: for each zone of type Neighbor or TraversalClient, a TLS client presenting the
//! **client** store certificate sends SIP `OPTIONS` to the peer's SIP port and opens the tunnel
//! port, and the zone becomes Active or Failed with a reason an admin can act on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::AlertDescription;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::generation::{Generation, ZoneSpec};
use super::report::ZoneState;
use super::Shared;
use crate::certs::policy::{self, EkuMode, Ekus, Role};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest answer line read from a peer.
const MAX_LINE: usize = 8192;

/// Checks every zone of the current generation once and publishes the results.
/// Zone checks run at once, at most.
const CONCURRENT_CHECKS: usize = 32;

pub async fn check_all(shared: Arc<Shared>) {
    let gen = shared.current.load_full();
    // A bounded number of checks at once: 1,000 zones must not open 1,000 sockets in one burst
    // (a CPU spike beside the handshakes, and memory the allocator keeps afterwards).
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CHECKS));
    let mut tasks = Vec::new();
    for z in gen.zones.clone() {
        let g = gen.clone();
        let slots = slots.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            (z.id, check_zone(&g, &z).await)
        }));
    }
    let mut states = std::collections::BTreeMap::new();
    for t in tasks {
        if let Ok((id, st)) = t.await {
            states.insert(id, st);
        }
    }
    for (id, st) in &states {
        shared.report.handshake_event(
            "zone",
            "DEBUG",
            &format!(
                "zone {id} checked {}: {}; tunnel {}",
                st.peer, st.status, st.tunnel_status
            ),
        );
    }
    let mut changed = Vec::new();
    if let Ok(mut z) = shared.report.zones.lock() {
        for (id, st) in &states {
            let old = z.get(id);
            if old.map(|o| (&o.status, &o.tunnel_status)) != Some((&st.status, &st.tunnel_status)) {
                changed.push((*id, st.clone()));
            }
        }
        *z = states;
    }
    for (id, st) in changed {
        let level = if st.status == "Active" && st.tunnel_status == "Active" {
            "INFO"
        } else {
            "ERROR"
        };
        shared.report.event(
            "zone",
            level,
            &format!(
                "zone {id} ({}) {}: {}; tunnel {}: {}",
                st.name, st.status, st.reason, st.tunnel_status, st.tunnel_reason
            ),
        );
    }
    shared.report.mark();
}

/// What the policy says about the client store leaf, as seen by a peer that checks it: a leaf
/// without an EKU extension (any purpose) draws no hint, as the verifier accepts it.
fn eku_hint(ekus: &Ekus) -> &'static str {
    let on = policy::decide(Role::InboundClient, EkuMode::On, [ekus]);
    let off = policy::decide(Role::InboundClient, EkuMode::Off, [ekus]);
    match (on, off) {
        (Ok(()), _) => "",
        (Err(_), Ok(())) => "; the client store certificate is serverAuth-only (no clientAuth EKU): peers that check clientAuth reject it",
        (Err(_), Err(_)) => "; the client store certificate lists neither clientAuth nor serverAuth: every peer rejects it as a TLS client",
    }
}

/// Why a zone check failed, as data: each stage keeps its own variant (a name that does not
/// resolve, a connection not made, typed by `io::ErrorKind`, a stage that timed out, the TLS
/// layer's error with the peer's alert), so the reason is chosen by variant, never by the text of
/// an error.
#[derive(Debug, Clone)]
enum Failure {
    /// The peer's name did not resolve; no connection was tried.
    Resolve { host: String, why: Unresolved },
    /// The TCP connection to `target` was not made.
    Connect {
        target: String,
        kind: std::io::ErrorKind,
    },
    /// A stage got no progress within [`IO_TIMEOUT`].
    TimedOut { stage: Stage, target: String },
    /// The TLS layer failed: the peer's alert, or our verdict on its certificate.
    Tls(rustls::Error),
    /// The peer closed the connection without an answer (and without a TLS alert).
    Closed,
    /// The peer reset or aborted the connection (it closed with our data unread).
    Reset,
    /// Anything else, already worded.
    Other(String),
}

/// Why a name did not resolve.
#[derive(Debug, Clone)]
enum Unresolved {
    /// Under `.invalid`, which never resolves (RFC 6761 §6.4): refused without a lookup.
    Reserved,
    /// The resolver answered with an error.
    Lookup(String),
    /// The resolver answered with no address.
    NoAddress,
}

/// The stage of a check that timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Handshake,
    Answer,
}

impl Failure {
    /// An I/O error from tokio-rustls: the rustls error inside it when there is one.
    fn io(e: &std::io::Error) -> Failure {
        match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(r) => Failure::Tls(r.clone()),
            None => match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Failure::Closed,
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => Failure::Reset,
                _ => Failure::Other(e.to_string()),
            },
        }
    }

    /// The refusal the seed reports as "Permission denied" (domain.md §3, Test case 2): the
    /// peer refused this node's client certificate for its extended key usage.
    fn is_eku_refusal(&self) -> bool {
        matches!(
            self,
            Failure::Tls(rustls::Error::AlertReceived(
                AlertDescription::UnsupportedCertificate
            ))
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::io::ErrorKind as K;
        match self {
            Failure::Resolve { host, why } => match why {
                Unresolved::Reserved => write!(
                    f,
                    "name '{host}' does not resolve (.invalid is reserved and never resolves)"
                ),
                Unresolved::Lookup(e) => write!(f, "name '{host}' does not resolve: {e}"),
                Unresolved::NoAddress => write!(f, "name '{host}' resolves to no address"),
            },
            Failure::Connect { target, kind } => match kind {
                K::ConnectionRefused => write!(
                    f,
                    "connection refused by {target} (nothing listens on that port)"
                ),
                K::TimedOut => write!(f, "connect to {target}: timed out"),
                K::HostUnreachable => write!(f, "connect to {target}: host unreachable"),
                K::NetworkUnreachable => write!(f, "connect to {target}: network unreachable"),
                K::ConnectionReset => write!(f, "connect to {target}: connection reset"),
                K::AddrNotAvailable => {
                    write!(f, "connect to {target}: no local address to connect from")
                }
                K::PermissionDenied => write!(
                    f,
                    "connect to {target}: not allowed by this machine (a local firewall or policy)"
                ),
                other => write!(f, "connect to {target}: {other}"),
            },
            Failure::TimedOut { stage, target } => match stage {
                Stage::Connect => write!(f, "connect to {target}: timed out"),
                Stage::Handshake => write!(f, "TLS handshake with {target} timed out"),
                Stage::Answer => f.write_str("no answer from the peer"),
            },
            Failure::Tls(e) => write!(f, "{e}"),
            Failure::Closed => f.write_str("peer closed the connection"),
            Failure::Reset => f.write_str("peer reset the connection"),
            Failure::Other(s) => f.write_str(s),
        }
    }
}

/// What the peer's alert says it held against this node's client certificate; `None` for an
/// alert that is not about the certificate.
fn alert_meaning(a: AlertDescription) -> Option<&'static str> {
    use AlertDescription as A;
    // Our own listener sends unsupported_certificate for the EKU rule and unknown_ca for trust.
    Some(match a {
        A::UnsupportedCertificate => {
            "the peer refused its extended key usage (it requires clientAuth); "
        }
        A::UnknownCA => {
            "the peer does not trust its issuer (add this node's CA to the peer's trusted CA list); "
        }
        A::CertificateRevoked => "the peer says it is revoked; ",
        A::CertificateExpired => "the peer says it is expired or not yet valid; ",
        // Our listener's answer to a signature that does not verify under the anchor it found
        // by the issuer's name: two CAs with one name (two nodes' default certificates).
        A::DecryptError => {
            "its signature does not verify against the certificate the peer trusts under its issuer's name (two CAs with the same name, such as two nodes' default certificates); "
        }
        A::BadCertificate
        | A::CertificateUnknown
        | A::CertificateRequired
        | A::CertificateUnobtainable
        | A::BadCertificateStatusResponse
        | A::HandshakeFailure => "",
        _ => return None,
    })
}

/// Sanitised: a TLS library's error text can quote what the peer sent (its certificate's names).
fn explain(err: &Failure, gen: &Generation) -> String {
    crate::peer_text::PeerText::new(&explain_raw(err, gen)).into_string()
}

fn explain_raw(err: &Failure, gen: &Generation) -> String {
    match err {
        Failure::Tls(rustls::Error::AlertReceived(a)) => match alert_meaning(*a) {
            Some(why) => format!(
                "peer rejected this node's client certificate (serial {}, EKUs {}): {why}{err}{}",
                gen.client_serial,
                gen.client_ekus.names(","),
                eku_hint(&gen.client_ekus)
            ),
            None => err.to_string(),
        },
        Failure::Tls(rustls::Error::InvalidCertificate(_)) => {
            format!("peer's server certificate is not trusted by this node's CA list: {err}")
        }
        _ => err.to_string(),
    }
}

/// The addresses of `host`: an IP literal as is; a name under `.invalid` refused without a
/// lookup (it must not resolve, and asking would send a query off the machine).
async fn resolve(host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, Failure> {
    let unresolved = |why| Failure::Resolve {
        host: host.to_string(),
        why,
    };
    let bare = host.trim_end_matches('.');
    let tld = bare.rsplit('.').next().unwrap_or(bare);
    if tld.eq_ignore_ascii_case("invalid") {
        return Err(unresolved(Unresolved::Reserved));
    }
    let target = format!("{host}:{port}");
    let addrs: Vec<_> = tokio::time::timeout(IO_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Failure::TimedOut {
            stage: Stage::Connect,
            target,
        })?
        .map_err(|e| unresolved(Unresolved::Lookup(e.to_string())))?
        .collect();
    if addrs.is_empty() {
        return Err(unresolved(Unresolved::NoAddress));
    }
    Ok(addrs)
}

/// TCP to the first address of `host` that accepts; the error of the last one tried.
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, Failure> {
    let target = format!("{host}:{port}");
    let mut last = None;
    for addr in resolve(host, port).await? {
        match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => {
                last = Some(Failure::Connect {
                    target: target.clone(),
                    kind: e.kind(),
                })
            }
            Err(_) => {
                last = Some(Failure::TimedOut {
                    stage: Stage::Connect,
                    target: target.clone(),
                })
            }
        }
    }
    Err(last.unwrap_or(Failure::Resolve {
        host: host.to_string(),
        why: Unresolved::NoAddress,
    }))
}

async fn connect(
    gen: &Generation,
    z: &ZoneSpec,
    port: u16,
    sent: &Arc<AtomicBool>,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, String), Failure> {
    let other = Failure::Other;
    let base = if z.verify {
        match &gen.client_verified {
            Some(c) => c,
            None => return Err(other(gen.client_verify_error.clone())),
        }
    } else {
        &gen.client_unverified
    };
    let name = if z.subject_name.is_empty() {
        z.address.clone()
    } else {
        z.subject_name.clone()
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| other(format!("'{name}' is not a valid peer name")))?;
    let tcp = tcp_connect(&z.address, port).await?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio::time::timeout(
        IO_TIMEOUT,
        TlsConnector::from(crate::certs::verify::client::check_config(base, sent))
            .connect(server_name, tcp),
    )
    .await
    .map_err(|_| Failure::TimedOut {
        stage: Stage::Handshake,
        target: format!("{}:{port}", z.address),
    })?
    .map_err(|e| Failure::io(&e))?;
    let peer_serial = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| crate::certs::info::Presented::parse(c).ok())
        .map(|p| p.serial)
        .unwrap_or_default();
    Ok((tls, peer_serial))
}

async fn read_line<S: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<S>,
) -> Result<String, Failure> {
    use tokio::io::AsyncReadExt;
    let mut line = String::new();
    // Capped: a peer streaming a line without end must not grow `line` without bound.
    let mut capped = r.take(MAX_LINE as u64);
    match tokio::time::timeout(IO_TIMEOUT, capped.read_line(&mut line)).await {
        Err(_) => Err(Failure::TimedOut {
            stage: Stage::Answer,
            target: String::new(),
        }),
        Ok(Err(e)) => Err(Failure::io(&e)),
        Ok(Ok(0)) => Err(Failure::Closed),
        Ok(Ok(_)) if !line.ends_with('\n') && line.len() >= MAX_LINE => Err(Failure::Other(
            format!("the peer's answer line is longer than {MAX_LINE} bytes"),
        )),
        // The first text from the peer: sanitised here, before any status or log holds it.
        Ok(Ok(_)) => Ok(crate::peer_text::PeerText::new(line.trim_end()).into_string()),
    }
}

/// One check of one zone: SIP OPTIONS over TLS, then the tunnel.
pub async fn check_zone(gen: &Generation, z: &ZoneSpec) -> ZoneState {
    let mut st = ZoneState {
        name: z.name.clone(),
        peer: format!("{}:{}", z.address, z.port),
        last_check: crate::store::now_rfc3339(),
        ..Default::default()
    };
    let sent = Arc::new(AtomicBool::new(false));
    match connect(gen, z, z.port, &sent).await {
        Err(e) => {
            st.status = "Failed".into();
            st.reason = explain(&e, gen);
        }
        Ok((tls, peer_serial)) => {
            st.peer_serial = peer_serial;
            let mut r = BufReader::new(tls);
            let req = format!(
                "OPTIONS sip:{addr}:{port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK{n}\r\nFrom: <sip:xagent@localhost>;tag={n}\r\nTo: <sip:{addr}>\r\nCall-ID: {n}@xagent\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                addr = z.address,
                port = z.port,
                n = gen.number
            );
            let res = match r.get_mut().write_all(req.as_bytes()).await {
                Err(e) => Err(Failure::io(&e)),
                Ok(()) => read_line(&mut r).await,
            };
            match res {
                Ok(l) if l.starts_with("SIP/2.0 200") => {
                    st.status = "Active".into();
                    st.reason = format!("SIP OPTIONS answered: {l}");
                }
                Ok(l) => {
                    st.status = "Failed".into();
                    st.reason = format!("unexpected answer to OPTIONS: {l}");
                }
                Err(e) => {
                    st.status = "Failed".into();
                    st.reason = explain(&e, gen);
                }
            }
            let _ = r.get_mut().shutdown().await;
        }
    }
    match connect(gen, z, z.tunnel_port, &sent).await {
        Err(e) => {
            st.tunnel_status = "Failed".into();
            st.tunnel_reason = tunnel_reason(&e, gen);
        }
        Ok((tls, _)) => {
            let mut r = BufReader::new(tls);
            match read_line(&mut r).await {
                Ok(l) if l.starts_with("XTUNNEL") => {
                    st.tunnel_status = "Active".into();
                    st.tunnel_reason = "tunnel established".into();
                }
                Ok(l) => {
                    st.tunnel_status = "Failed".into();
                    st.tunnel_reason = format!("unexpected tunnel greeting: {l}");
                }
                Err(e) => {
                    st.tunnel_status = "Failed".into();
                    st.tunnel_reason = tunnel_reason(&e, gen);
                }
            }
            let _ = r.get_mut().shutdown().await;
        }
    }
    // Only a certificate that went out in a handshake is "presented" (not one that would have).
    if sent.load(Ordering::Relaxed) {
        st.presented_serial = gen.client_serial.clone();
    }
    st
}

/// A tunnel failure: "Permission denied" (the seed's wording) only when the peer refused this
/// node's client certificate for its extended key usage; any other failure says what it is.
fn tunnel_reason(e: &Failure, gen: &Generation) -> String {
    if e.is_eku_refusal() {
        format!("Permission denied: {}", explain(e, gen))
    } else {
        explain(e, gen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endless_answer_line_is_refused_at_the_cap() {
        let (mut peer, ours) = tokio::io::duplex(1 << 20);
        peer.write_all(&vec![b'S'; 512 * 1024])
            .await
            .expect("write");
        let mut r = BufReader::new(ours);
        let got = read_line(&mut r).await;
        let e = got.expect_err("an endless line must be refused");
        assert!(e.to_string().contains("longer than"), "{e}");
        let (mut peer, ours) = tokio::io::duplex(1024);
        peer.write_all(b"SIP/2.0 200 OK\r\n").await.expect("write");
        let mut r = BufReader::new(ours);
        assert_eq!(read_line(&mut r).await.unwrap(), "SIP/2.0 200 OK");
    }

    /// The zone hint asks the policy: no EKU extension (any purpose) draws none, like the verifier.
    #[test]
    fn zone_hint_agrees_with_the_policy() {
        use crate::certs::Eku;
        assert_eq!(eku_hint(&Ekus::Absent), "");
        assert_eq!(eku_hint(&Ekus::Listed(vec![Eku::ClientAuth])), "");
        assert!(eku_hint(&Ekus::Listed(vec![Eku::ServerAuth])).contains("serverAuth-only"));
        assert!(eku_hint(&Ekus::Listed(vec![Eku::CodeSigning])).contains("neither"));
    }

    /// Zone failures are classified by the rustls error variant and the alert code.
    #[test]
    fn failures_are_classified_by_variant() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        );
        assert!(matches!(
            Failure::io(&e),
            Failure::Tls(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
        ));
        let plain = std::io::Error::other("unknownca alert certificate");
        assert!(matches!(Failure::io(&plain), Failure::Other(_)));
        assert!(alert_meaning(AlertDescription::UnsupportedCertificate)
            .unwrap()
            .contains("extended key usage"));
        assert_eq!(alert_meaning(AlertDescription::CloseNotify), None);
        assert!(alert_meaning(AlertDescription::DecryptError)
            .unwrap()
            .contains("signature does not verify"));
    }

    /// Connect failures are typed from `io::ErrorKind` and the stage, and only the peer's EKU
    /// refusal is the seed's "Permission denied".
    #[test]
    fn connect_failures_are_typed_not_permission_denied() {
        use std::io::ErrorKind as K;
        let refused = Failure::Connect {
            target: "127.0.0.1:9".into(),
            kind: K::ConnectionRefused,
        };
        assert_eq!(
            refused.to_string(),
            "connection refused by 127.0.0.1:9 (nothing listens on that port)"
        );
        let local = Failure::Connect {
            target: "127.0.0.1:9".into(),
            kind: K::PermissionDenied,
        };
        assert!(!local.to_string().contains("ermission denied"), "{local}");
        let eof = std::io::Error::from(K::UnexpectedEof);
        assert!(matches!(Failure::io(&eof), Failure::Closed));
        let reset = std::io::Error::from(K::ConnectionReset);
        assert!(matches!(Failure::io(&reset), Failure::Reset));
        for f in [refused, local, Failure::Closed] {
            assert!(!f.is_eku_refusal(), "{f}");
        }
        assert!(Failure::Tls(rustls::Error::AlertReceived(
            AlertDescription::UnsupportedCertificate
        ))
        .is_eku_refusal());
        assert!(
            !Failure::Tls(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
                .is_eku_refusal()
        );
    }

    /// A name under `.invalid` is refused without a lookup (RFC 6761): no query leaves the host.
    #[tokio::test]
    async fn invalid_names_are_not_looked_up() {
        for host in ["nonexistent.invalid", "a.b.INVALID", "x.invalid."] {
            match resolve(host, 5061).await {
                Err(Failure::Resolve {
                    why: Unresolved::Reserved,
                    ..
                }) => {}
                other => panic!("{host}: {other:?}"),
            }
        }
        let ip = resolve("127.0.0.1", 5061).await.expect("an IP literal");
        assert_eq!(ip, vec!["127.0.0.1:5061".parse().unwrap()]);
    }
}
