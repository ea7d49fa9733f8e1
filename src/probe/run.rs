//! One probe from start to end: the identities from the stores, the CA list, one handshake per
//! identity through the outbound client config with a verifier that records its judgement of the
//! partner's chain instead of aborting, and the report with its verdict.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::{
    conn, verdict, Attempt, Failure, Identity, Offered, Outcome, PeerTrust, Report, Requested, Spec,
};
use crate::certs::policy::{self, EkuMode, Role};
use crate::certs::store::{self as cstore, CLIENT_CERT, CLIENT_KEY, SERVER_CERT, SERVER_KEY};
use crate::certs::verify::client::{self, AcceptAnyServer, CertRequest};
use crate::certs::{decode, server_verifier, TrustAnchors};

type Chain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The partner's chain, and what the CA list says of it.
type Judged = (Vec<CertificateDer<'static>>, PeerTrust);

/// Runs the outbound verifier over the partner's chain and keeps its verdict; the handshake
/// goes on either way (signatures are still checked), so the rest is learned.
#[derive(Debug)]
struct Judging {
    inner: Option<Arc<dyn ServerCertVerifier>>,
    name_given: bool,
    seen: Mutex<Option<Judged>>,
}

impl ServerCertVerifier for Judging {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let trust = match &self.inner {
            None => PeerTrust::NoCaList,
            Some(v) => {
                match v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                    Ok(_) => PeerTrust::Verified {
                        name_checked: self.name_given,
                    },
                    // webpki checks the name after the chain: without a ServerName to check, a
                    // name mismatch means the chain verified.
                    Err(rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. },
                    )) if !self.name_given => PeerTrust::Verified {
                        name_checked: false,
                    },
                    Err(
                        e @ rustls::Error::InvalidCertificate(
                            CertificateError::NotValidForName
                            | CertificateError::NotValidForNameContext { .. },
                        ),
                    ) => PeerTrust::WrongName(e.to_string()),
                    Err(e) => PeerTrust::NotVerified(e.to_string()),
                }
            }
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        if let Ok(mut s) = self.seen.lock() {
            *s = Some((chain, trust));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        AcceptAnyServer.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        AcceptAnyServer.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        AcceptAnyServer.supported_verify_schemes()
    }
}

/// What the probe needs from ROOT.
struct Node {
    anchors: Option<TrustAnchors>,
    client: Result<Chain, String>,
    server: Result<Chain, String>,
}

fn load(root: &Path) -> Node {
    let certs = cstore::certs_dir(root);
    let pair = |c, k| cstore::load_pair(&certs, c, k).map_err(|e| e.to_string());
    Node {
        anchors: crate::certs::trust::load_ca_list(root).ok().flatten(),
        client: pair(CLIENT_CERT, CLIENT_KEY),
        server: pair(SERVER_CERT, SERVER_KEY),
    }
}

/// What the identity offers, judged as a TLS client by the one policy.
fn offered(chain: &[CertificateDer<'static>]) -> Option<Offered> {
    let now = UnixTime::now();
    let infos: Vec<_> = chain.iter().filter_map(|c| decode(c, now).ok()).collect();
    let leaf = infos.first()?.clone();
    let ekus: Vec<_> = infos.iter().map(|i| &i.ekus).collect();
    Some(Offered {
        issuers: infos.iter().map(|i| i.issuer.clone()).collect(),
        policy_on: policy::decide(Role::InboundClient, EkuMode::On, ekus.iter().copied()),
        policy_off: policy::decide(Role::InboundClient, EkuMode::Off, ekus.iter().copied()),
        leaf,
    })
}

fn sip_request(spec: &Spec, n: u64) -> String {
    let addr = super::target(&spec.address, spec.port);
    format!(
        "OPTIONS sip:{addr};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKprobe{n}\r\nFrom: <sip:xsh-probe@localhost>;tag={n}\r\nTo: <sip:{addr}>\r\nCall-ID: probe{n}@xsh\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Everything gathered over the attempts.
#[derive(Default)]
struct Learned {
    version: Option<String>,
    cipher: Option<String>,
    judged: Option<Judged>,
    request: Option<CertRequest>,
    completed: bool,
}

/// Probes the partner of `spec` from the node at `root`.
pub fn probe(root: &Path, spec: &Spec) -> Report {
    let node = load(root);
    let inner = node.anchors.as_ref().and_then(|a| server_verifier(a).ok());
    let name_text = spec
        .server_name
        .clone()
        .unwrap_or_else(|| spec.address.clone());
    let name = ServerName::try_from(name_text.clone()).map_err(|_| Failure::BadName(name_text));
    let addrs = conn::resolve(&spec.address, spec.port);
    let pid = u64::from(std::process::id());
    let mut learned = Learned::default();
    let mut attempts = Vec::new();
    let mut stop: Option<String> = None;
    for (i, &id) in spec.present.identities().iter().enumerate() {
        let identity = match id {
            Identity::ClientStore => Some(&node.client),
            Identity::ServerStore => Some(&node.server),
            Identity::NoCertificate => None,
        };
        let offer = identity
            .and_then(|r| r.as_ref().ok())
            .and_then(|c| offered(&c.0));
        let mut a = Attempt {
            identity: id,
            offered: offer,
            sent: false,
            outcome: Outcome::NotTried(String::new()),
            sip_status: None,
            reached: false,
        };
        let pair = match identity {
            Some(Err(e)) => Err(Failure::Store(e.clone())),
            Some(Ok((c, k))) => Ok(Some((c.as_slice(), k))),
            None => Ok(None),
        };
        a.outcome = match (&stop, &addrs, &name, pair) {
            (Some(why), ..) => Outcome::NotTried(why.clone()),
            (_, Err(f), ..) | (_, _, Err(f), _) => Outcome::Failed(f.clone()),
            (.., Err(f)) => Outcome::Failed(f),
            (None, Ok(addrs), Ok(name), Ok(pair)) => {
                let judging = Arc::new(Judging {
                    inner: inner.clone(),
                    name_given: spec.server_name.is_some(),
                    seen: Mutex::new(None),
                });
                let req = sip_request(spec, pid * 10 + i as u64);
                match client::client_config(judging.clone(), pair, spec.version.versions()) {
                    Err(e) => Outcome::Failed(Failure::Tls(e)),
                    Ok(base) => one(
                        &mut a,
                        &mut learned,
                        &judging,
                        base,
                        addrs,
                        name,
                        spec,
                        &req,
                    ),
                }
            }
        };
        if stop.is_none() && !a.reached {
            stop = never_reached(&a.outcome);
        }
        attempts.push(a);
    }
    report(spec, learned, attempts)
}

/// After an attempt that never got a ServerHello, the others would fare the same (the partner
/// does not answer, or refuses before any certificate is asked for): they are not tried.
fn never_reached(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Failed(Failure::Store(_)) => None,
        Outcome::Failed(f) => Some(format!(
            "the first attempt never reached the partner's ServerHello ({f})"
        )),
        Outcome::Refused { alert, .. } => Some(format!(
            "the partner refused before its ServerHello (alert {})",
            super::alert_text(*alert)
        )),
        _ => None,
    }
}

/// One handshake of one identity.
#[allow(clippy::too_many_arguments)]
fn one(
    a: &mut Attempt,
    learned: &mut Learned,
    judging: &Arc<Judging>,
    base: rustls::ClientConfig,
    addrs: &[std::net::SocketAddr],
    name: &ServerName<'static>,
    spec: &Spec,
    req: &str,
) -> Outcome {
    let sent = Arc::new(AtomicBool::new(false));
    let request = Arc::new(Mutex::new(None));
    let config = client::recording_config(&Arc::new(base), &sent, &request);
    let (outcome, seen) = conn::attempt(addrs, config, name.clone(), spec.protocol, req);
    a.sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    a.sip_status = seen.sip_status;
    a.reached = seen.version.is_some();
    if a.reached {
        learned.version = learned.version.take().or(seen.version);
        learned.cipher = learned.cipher.take().or(seen.cipher);
    }
    learned.completed |= seen.handshake_done;
    if learned.judged.is_none() {
        learned.judged = judging.seen.lock().ok().and_then(|mut s| s.take());
    }
    if learned.request.is_none() {
        learned.request = request.lock().ok().and_then(|mut r| r.take());
    }
    outcome
}

fn report(spec: &Spec, learned: Learned, attempts: Vec<Attempt>) -> Report {
    let now = UnixTime::now();
    let (chain, trust) = match learned.judged {
        Some((ders, trust)) => (
            ders.iter()
                .filter_map(|c| decode(c, now).ok())
                .collect::<Vec<_>>(),
            trust,
        ),
        None => (Vec::new(), PeerTrust::NotSeen),
    };
    let server_policy = (!chain.is_empty())
        .then(|| policy::decide(Role::Server, EkuMode::On, chain.iter().map(|c| &c.ekus)));
    let requested = match learned.request {
        Some(r) => Requested::Yes {
            ca_names: r
                .ca_names
                .iter()
                .map(|n| crate::certs::x509::names::name_text(n))
                .collect(),
            schemes: r.schemes.iter().map(|s| format!("{s:?}")).collect(),
        },
        None if learned.completed => Requested::No,
        None => Requested::Unknown,
    };
    let mut r = Report {
        spec: spec.clone(),
        time: crate::store::now_rfc3339(),
        version: learned.version,
        cipher: learned.cipher,
        chain,
        trust,
        server_policy,
        requested,
        attempts,
        verdict: String::new(),
    };
    r.verdict = verdict::verdict(&r);
    r
}
