//! One probe handshake on the wire: TCP connect, the TLS handshake, then the first read after
//! Finished (a short bounded read, or SIP `OPTIONS` and its status line), every stage bounded
//! in time. Blocking sockets: a probe runs from a shell command, one handshake at a time.
//!
//! A refusal is classified by where it arrived: an alert while rustls still handshakes is
//! *during* the handshake; in TLS 1.3 the server judges the client's certificate after the
//! client sent Finished, so its alert arrives on the first read: *after* the handshake.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::{Failure, Outcome, Protocol, Stage, When};

/// TCP connect, per address tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Protocol TLS: how long the first read after Finished waits for an alert (a peer that accepts
/// says nothing, so this is the cost of every accepted TLS probe).
pub const ALERT_WAIT: Duration = Duration::from_millis(500);
/// Protocol SIP: how long the answer to `OPTIONS` may take.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest SIP status line read.
const MAX_LINE: usize = 8192;
/// Characters of the status line kept in the reply.
const MAX_STATUS: usize = 256;

/// What one handshake learned besides its outcome.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub handshake_done: bool,
    /// Protocol SIP: the status line of the answer.
    pub sip_status: Option<String>,
}

/// The addresses of `host`: an IP literal as is; a name under `.invalid` refused without a
/// lookup (RFC 6761 §6.4: it must not resolve, and asking would send a query off the machine).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let bare = host.trim_end_matches('.');
    let tld = bare.rsplit('.').next().unwrap_or(bare);
    if tld.eq_ignore_ascii_case("invalid") {
        return Err(Failure::Unresolved(host.to_string()));
    }
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|_| Failure::Unresolved(host.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(Failure::Unresolved(host.to_string()));
    }
    Ok(addrs)
}

fn tcp_connect(addrs: &[SocketAddr]) -> Result<TcpStream, Failure> {
    let mut last = Failure::TimedOut(Stage::Connect);
    for a in addrs {
        match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
            Ok(t) => return Ok(t),
            Err(e) if is_timeout(&e) => last = Failure::TimedOut(Stage::Connect),
            Err(e) => last = Failure::Connect(e.kind()),
        }
    }
    Err(last)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// An I/O error at `stage`, typed: the rustls error inside it (the peer's alert, or our own
/// refusal), a timeout, the peer closing or resetting.
fn classify(e: &std::io::Error, stage: Stage) -> Failure {
    use std::io::ErrorKind as K;
    if let Some(r) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return Failure::Tls(r.clone());
    }
    match e.kind() {
        _ if is_timeout(e) => Failure::TimedOut(stage),
        K::UnexpectedEof => Failure::Closed(stage),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Failure::Reset(stage),
        k => Failure::Io(stage, k),
    }
}

/// Time left before `deadline`, or the stage's timeout.
fn left(deadline: Instant, stage: Stage) -> Result<Duration, Failure> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(Failure::TimedOut(stage))
}

/// One attempt: connect to `addrs`, handshake with `config` as `name`, then the first read.
pub fn attempt(
    addrs: &[SocketAddr],
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    protocol: Protocol,
    sip_request: &str,
) -> (Outcome, Seen) {
    let mut seen = Seen::default();
    let out = run(addrs, config, name, protocol, sip_request, &mut seen);
    (out, seen)
}

fn run(
    addrs: &[SocketAddr],
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    protocol: Protocol,
    sip_request: &str,
    seen: &mut Seen,
) -> Outcome {
    let mut tcp = match tcp_connect(addrs) {
        Ok(t) => t,
        Err(f) => return Outcome::Failed(f),
    };
    let _ = tcp.set_nodelay(true);
    let mut conn = match ClientConnection::new(config, name) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(Failure::Tls(e)),
    };
    let hs = handshake(&mut conn, &mut tcp);
    seen.version = conn.protocol_version().map(version_name);
    seen.cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    if let Err(f) = hs {
        return refusal_or(f, When::During);
    }
    seen.handshake_done = true;
    let after = match protocol {
        Protocol::Tls => first_read(&mut conn, &mut tcp),
        Protocol::Sip => sip_options(&mut conn, &mut tcp, sip_request, seen),
    };
    conn.send_close_notify();
    let _ = conn.write_tls(&mut tcp);
    match after {
        Ok(evidence) => Outcome::Accepted(evidence),
        Err(f) => refusal_or(f, When::After),
    }
}

/// The peer's alert is a refusal (during or after the handshake); anything else a failure.
fn refusal_or(f: Failure, when: When) -> Outcome {
    match f {
        Failure::Tls(rustls::Error::AlertReceived(a)) => Outcome::Refused { alert: a, when },
        Failure::Closed(_) if when == When::After => Outcome::ClosedAfter,
        other => Outcome::Failed(other),
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// Drives the handshake to its end (our Finished written), within [`HANDSHAKE_TIMEOUT`].
fn handshake(conn: &mut ClientConnection, tcp: &mut TcpStream) -> Result<(), Failure> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    while conn.is_handshaking() {
        let _ = tcp.set_read_timeout(Some(left(deadline, Stage::Handshake)?));
        let _ = tcp.set_write_timeout(Some(left(deadline, Stage::Handshake)?));
        conn.complete_io(tcp)
            .map_err(|e| classify(&e, Stage::Handshake))?;
    }
    while conn.wants_write() {
        conn.write_tls(tcp)
            .map_err(|e| classify(&e, Stage::Handshake))?;
    }
    Ok(())
}

/// Reads until plaintext arrives, the peer closes or alerts, or `deadline`.
/// `Ok(None)`: the deadline passed with nothing (and no refusal).
fn read_some(
    conn: &mut ClientConnection,
    tcp: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<Option<usize>, Failure> {
    loop {
        match conn.reader().read(buf) {
            Ok(0) => return Err(Failure::Closed(Stage::Answer)),
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(classify(&e, Stage::Answer)),
        }
        let Ok(wait) = left(deadline, Stage::Answer) else {
            return Ok(None);
        };
        let _ = tcp.set_read_timeout(Some(wait));
        match conn.read_tls(tcp) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Ok(None),
            Err(e) => return Err(classify(&e, Stage::Answer)),
        }
        if let Err(e) = conn.process_new_packets() {
            // The alert we owe the peer, if any; the error is what counts.
            let _ = conn.write_tls(tcp);
            return Err(Failure::Tls(e));
        }
        while conn.wants_write() {
            if conn.write_tls(tcp).is_err() {
                break;
            }
        }
    }
}

/// Protocol TLS: one short read after Finished; silence within [`ALERT_WAIT`] is acceptance.
fn first_read(
    conn: &mut ClientConnection,
    tcp: &mut TcpStream,
) -> Result<super::Evidence, Failure> {
    let mut buf = [0u8; 1024];
    match read_some(conn, tcp, &mut buf, Instant::now() + ALERT_WAIT)? {
        Some(n) => Ok(super::Evidence::Data(n)),
        None => Ok(super::Evidence::Silent(ALERT_WAIT)),
    }
}

/// Protocol SIP: `OPTIONS`, then the status line of the answer.
fn sip_options(
    conn: &mut ClientConnection,
    tcp: &mut TcpStream,
    request: &str,
    seen: &mut Seen,
) -> Result<super::Evidence, Failure> {
    let _ = tcp.set_write_timeout(Some(ANSWER_TIMEOUT));
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut buf = [0u8; 1024];
    if let Err(f) = send(conn, tcp, request) {
        // A peer that refused us after Finished may already have closed: its alert can still
        // be read, and it is what counts.
        return match read_some(conn, tcp, &mut buf, Instant::now() + ALERT_WAIT) {
            Err(tls @ Failure::Tls(_)) => Err(tls),
            _ => Err(f),
        };
    }
    let mut line = Vec::new();
    while !line.contains(&b'\n') {
        if line.len() >= MAX_LINE {
            return Err(Failure::LongLine(MAX_LINE));
        }
        match read_some(conn, tcp, &mut buf, deadline)? {
            Some(n) => line.extend_from_slice(&buf[..n]),
            None => return Err(Failure::TimedOut(Stage::Answer)),
        }
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    // Peer text: control characters never reach a terminal, and a status line is short.
    let status: String = String::from_utf8_lossy(&line[..end])
        .trim_end()
        .chars()
        .take(MAX_STATUS)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    seen.sip_status = Some(status.clone());
    Ok(super::Evidence::SipAnswer(status))
}

fn send(conn: &mut ClientConnection, tcp: &mut TcpStream, request: &str) -> Result<(), Failure> {
    conn.writer()
        .write_all(request.as_bytes())
        .map_err(|e| classify(&e, Stage::Answer))?;
    while conn.wants_write() {
        conn.write_tls(tcp)
            .map_err(|e| classify(&e, Stage::Answer))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription as A;
    use std::io::{Error, ErrorKind as K};

    /// Failures are typed by the rustls variant inside the I/O error and by its kind, and an
    /// alert is a refusal whose time is where it arrived; text that looks like an alert is not.
    #[test]
    fn alerts_are_refusals_by_where_they_arrive() {
        let alert = Error::new(K::InvalidData, rustls::Error::AlertReceived(A::UnknownCA));
        let f = classify(&alert, Stage::Handshake);
        assert_eq!(f, Failure::Tls(rustls::Error::AlertReceived(A::UnknownCA)));
        assert_eq!(
            refusal_or(f, When::During),
            Outcome::Refused {
                alert: A::UnknownCA,
                when: When::During
            }
        );
        let look_alike = Error::other("received fatal alert: UnknownCA");
        assert_eq!(
            classify(&look_alike, Stage::Answer),
            Failure::Io(Stage::Answer, K::Other)
        );
        assert_eq!(
            refusal_or(Failure::Closed(Stage::Answer), When::After),
            Outcome::ClosedAfter
        );
        assert_eq!(
            refusal_or(Failure::Closed(Stage::Handshake), When::During),
            Outcome::Failed(Failure::Closed(Stage::Handshake))
        );
        assert_eq!(
            classify(&Error::from(K::WouldBlock), Stage::Handshake),
            Failure::TimedOut(Stage::Handshake)
        );
        assert_eq!(
            classify(&Error::from(K::ConnectionReset), Stage::Answer),
            Failure::Reset(Stage::Answer)
        );
    }

    /// `.invalid` is refused without a lookup; an IP literal is used as is.
    #[test]
    fn invalid_names_are_not_looked_up() {
        assert_eq!(
            resolve("partner.invalid", 5061),
            Err(Failure::Unresolved("partner.invalid".into()))
        );
        assert_eq!(
            resolve("127.0.0.1", 5061),
            Ok(vec!["127.0.0.1:5061".parse().unwrap()])
        );
    }
}
