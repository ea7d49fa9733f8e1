//! Outbound peers: for each zone of type Neighbor or TraversalClient, each of its peers (Peer 1
//! to 6 with an address) gets a TLS client presenting the **client** store certificate, which
//! sends SIP `OPTIONS` to the peer's SIP port and opens its tunnel port; each peer becomes Active
//! or Failed with its own reason, and the zone sums them up. A TraversalServer zone is reported
//! Off: it would wait for its traversal client, and this build does not listen on its port.
//! Why a check failed is classified in [`failure`].

mod failure;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use self::failure::{explain, tunnel_reason, Failure, Stage, Unresolved};
use super::generation::{Generation, ZoneSpec};
use super::report::{PeerState, ZoneState};
use super::Shared;
use crate::schema::values::NeighborTraversalClientTraversalServer as ZoneType;

const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest answer line read from a peer.
const MAX_LINE: usize = 8192;

/// Zone checks run at once, at most.
const CONCURRENT_CHECKS: usize = 32;

/// Checks every zone of the current generation once and publishes the results.
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
    let mut states = BTreeMap::new();
    for t in tasks {
        if let Ok((id, st)) = t.await {
            states.insert(id, st);
        }
    }
    for (id, st) in &states {
        for (m, p) in &st.peers {
            shared.report.handshake_event(
                "zone",
                "DEBUG",
                &format!(
                    "zone {id} checked peer {m} {}: {}; tunnel {}",
                    p.address, p.status, p.tunnel_status
                ),
            );
        }
    }
    let mut changed = Vec::new();
    if let Ok(mut z) = shared.report.zones.lock() {
        for (id, st) in &states {
            if z.get(id).map(outcome) != Some(outcome(st)) {
                changed.push((*id, st.clone()));
            }
        }
        *z = states;
    }
    for (id, st) in changed {
        let tunnels_up = st.peers.values().all(|p| p.tunnel_status == "Active");
        let level = if (st.status == "Active" || st.status == "Off") && tunnels_up {
            "INFO"
        } else {
            "ERROR"
        };
        let mut text = format!("zone {id} ({}) {}: {}", st.name, st.status, st.reason);
        for (m, p) in &st.peers {
            text.push_str(&format!(
                "; peer {m} tunnel {}: {}",
                p.tunnel_status, p.tunnel_reason
            ));
        }
        shared.report.event("zone", level, &text);
    }
    shared.report.mark();
}

/// What a change event is about: the zone's status and each peer's two states.
fn outcome(z: &ZoneState) -> (String, Vec<(u8, String, String)>) {
    let peers = z
        .peers
        .iter()
        .map(|(m, p)| (*m, p.status.clone(), p.tunnel_status.clone()))
        .collect();
    (z.status.clone(), peers)
}

/// One check of one zone: its peers at once, then the zone's summary.
async fn check_zone(gen: &Arc<Generation>, z: &ZoneSpec) -> ZoneState {
    let mut st = ZoneState {
        name: z.name.clone(),
        kind: kind_word(z.kind).to_string(),
        ..Default::default()
    };
    if z.kind == ZoneType::TraversalServer {
        st.status = "Off".into();
        st.reason = format!(
            "a TraversalServer zone waits for its traversal client; this build does not listen on the zone's SIP Port ({}): inbound clients use SIP TLS Port",
            z.port
        );
        return st;
    }
    let mut set = tokio::task::JoinSet::new();
    for (m, address) in &z.peers {
        let (g, z, m, address) = (gen.clone(), z.clone(), *m, address.clone());
        set.spawn(async move { (m, check_peer(&g, &z, &address).await) });
    }
    while let Some(done) = set.join_next().await {
        if let Ok((m, p)) = done {
            st.peers.insert(m, p);
        }
    }
    summarize(&mut st);
    st
}

/// The schema's word for a zone type.
fn kind_word(k: ZoneType) -> &'static str {
    match k {
        ZoneType::Neighbor => "Neighbor",
        ZoneType::TraversalClient => "TraversalClient",
        ZoneType::TraversalServer => "TraversalServer",
    }
}

/// The zone's status and reason from its peers': Active when all are, Failed when none is,
/// Warning between; the reason is the one peer's, or each peer that is not Active with its own.
fn summarize(st: &mut ZoneState) {
    let active = st.peers.values().filter(|p| p.status == "Active").count();
    st.status = match active {
        0 => "Failed",
        n if n == st.peers.len() => "Active",
        _ => "Warning",
    }
    .into();
    st.reason = match st.peers.len() {
        1 => st.peers.values().map(|p| p.reason.clone()).collect(),
        n => {
            let mut r = format!("{active} of {n} peers Active");
            for (m, p) in st.peers.iter().filter(|(_, p)| p.status != "Active") {
                r.push_str(&format!("; Peer {m} ({}): {}", p.address, p.reason));
            }
            r
        }
    };
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
    address: &str,
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
        address.to_string()
    } else {
        z.subject_name.clone()
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| other(format!("'{name}' is not a valid peer name")))?;
    let tcp = tcp_connect(address, port).await?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio::time::timeout(
        IO_TIMEOUT,
        TlsConnector::from(crate::certs::verify::client::check_config(base, sent))
            .connect(server_name, tcp),
    )
    .await
    .map_err(|_| Failure::TimedOut {
        stage: Stage::Handshake,
        target: format!("{address}:{port}"),
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
        Ok(Ok(_)) => Ok(line.trim_end().to_string()),
    }
}

/// One check of one peer of a zone: SIP OPTIONS over TLS, then the tunnel.
async fn check_peer(gen: &Generation, z: &ZoneSpec, address: &str) -> PeerState {
    let mut st = PeerState {
        address: format!("{address}:{}", z.port),
        last_check: crate::store::now_rfc3339(),
        ..Default::default()
    };
    let sent = Arc::new(AtomicBool::new(false));
    match connect(gen, z, address, z.port, &sent).await {
        Err(e) => {
            st.status = "Failed".into();
            st.reason = explain(&e, gen);
        }
        Ok((tls, peer_serial)) => {
            st.peer_serial = peer_serial;
            let mut r = BufReader::new(tls);
            let req = format!(
                "OPTIONS sip:{addr}:{port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK{n}\r\nFrom: <sip:xagent@localhost>;tag={n}\r\nTo: <sip:{addr}>\r\nCall-ID: {n}@xagent\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                addr = address,
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
    match connect(gen, z, address, z.tunnel_port, &sent).await {
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

    /// The zone sums its peers up: one peer's reason as is; several, each one not Active.
    #[test]
    fn a_zone_sums_up_its_peers() {
        let peer = |status: &str, reason: &str| PeerState {
            address: "a:1".into(),
            status: status.into(),
            reason: reason.into(),
            ..Default::default()
        };
        let mut z = ZoneState::default();
        z.peers.insert(1, peer("Failed", "connection refused"));
        summarize(&mut z);
        assert_eq!(
            (z.status.as_str(), z.reason.as_str()),
            ("Failed", "connection refused")
        );
        z.peers.insert(2, peer("Active", "SIP OPTIONS answered"));
        z.peers
            .insert(3, peer("Failed", "name 'x' does not resolve"));
        summarize(&mut z);
        assert_eq!(z.status, "Warning");
        assert_eq!(
            z.reason,
            "1 of 3 peers Active; Peer 1 (a:1): connection refused; Peer 3 (a:1): name 'x' does not resolve"
        );
        z.peers.remove(&1);
        z.peers.remove(&3);
        summarize(&mut z);
        assert_eq!(z.status, "Active");
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
