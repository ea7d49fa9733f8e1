//! Outbound peers: for each zone of type Neighbor or TraversalClient, a TLS client presenting the
//! **client** store certificate sends SIP `OPTIONS` to the peer's SIP port and opens the tunnel
//! port, and the zone becomes Active or Failed with a reason an admin can act on.

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
pub async fn check_all(shared: Arc<Shared>) {
    let gen = shared.current.load_full();
    let mut tasks = Vec::new();
    for z in gen.zones.clone() {
        let g = gen.clone();
        tasks.push(tokio::spawn(
            async move { (z.id, check_zone(&g, &z).await) },
        ));
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

/// Why a zone check failed, as data: the rustls error (with the peer's alert) is kept typed so
/// the reason is chosen by variant, never by the text of the error.
#[derive(Debug, Clone)]
enum Failure {
    /// The TLS layer failed: the peer's alert, or our verdict on its certificate.
    Tls(rustls::Error),
    /// Anything else (connect, name, time-out, closed connection), already worded.
    Other(String),
}

impl Failure {
    /// An I/O error from tokio-rustls: the rustls error inside it when there is one.
    fn io(e: &std::io::Error) -> Failure {
        match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(r) => Failure::Tls(r.clone()),
            None => Failure::Other(e.to_string()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Tls(e) => write!(f, "{e}"),
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
        A::BadCertificate
        | A::CertificateUnknown
        | A::CertificateRequired
        | A::CertificateUnobtainable
        | A::BadCertificateStatusResponse
        | A::DecryptError
        | A::HandshakeFailure => "",
        _ => return None,
    })
}

fn explain(err: &Failure, gen: &Generation) -> String {
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

async fn connect(
    gen: &Generation,
    z: &ZoneSpec,
    port: u16,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, String), Failure> {
    let other = Failure::Other;
    let cfg = if z.verify {
        match &gen.client_verified {
            Some(c) => c.clone(),
            None => return Err(other(gen.client_verify_error.clone())),
        }
    } else {
        gen.client_unverified.clone()
    };
    let name = if z.subject_name.is_empty() {
        z.address.clone()
    } else {
        z.subject_name.clone()
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| other(format!("'{name}' is not a valid peer name")))?;
    let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect((z.address.as_str(), port)))
        .await
        .map_err(|_| other(format!("connect to {}:{port}: timed out", z.address)))?
        .map_err(|e| other(format!("connect to {}:{port}: {e}", z.address)))?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio::time::timeout(
        IO_TIMEOUT,
        TlsConnector::from(cfg).connect(server_name, tcp),
    )
    .await
    .map_err(|_| other("TLS handshake timed out".to_string()))?
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
        Err(_) => Err(Failure::Other("no answer from the peer".into())),
        Ok(Err(e)) => Err(Failure::io(&e)),
        Ok(Ok(0)) => Err(Failure::Other("peer closed the connection".into())),
        Ok(Ok(_)) if !line.ends_with('\n') && line.len() >= MAX_LINE => Err(Failure::Other(
            format!("the peer's answer line is longer than {MAX_LINE} bytes"),
        )),
        Ok(Ok(_)) => Ok(line.trim_end().to_string()),
    }
}

/// One check of one zone: SIP OPTIONS over TLS, then the tunnel.
pub async fn check_zone(gen: &Generation, z: &ZoneSpec) -> ZoneState {
    let mut st = ZoneState {
        name: z.name.clone(),
        peer: format!("{}:{}", z.address, z.port),
        presented_serial: gen.client_serial.clone(),
        last_check: crate::store::now_rfc3339(),
        ..Default::default()
    };
    match connect(gen, z, z.port).await {
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
    match connect(gen, z, z.tunnel_port).await {
        Err(e) => {
            st.tunnel_status = "Failed".into();
            st.tunnel_reason = format!("Permission denied: {}", explain(&e, gen));
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
                    st.tunnel_reason = format!("Permission denied: {}", explain(&e, gen));
                }
            }
            let _ = r.get_mut().shutdown().await;
        }
    }
    st
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
    }
}
