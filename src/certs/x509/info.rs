//! Reading certificates and keys: PEM parsing, key/certificate matching, and a
//! decoded view of a certificate for display and status (subject, issuer,
//! serial, validity, SANs, key type, EKUs, fingerprint).

use std::net::IpAddr;

use ring::digest;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::certs::policy::{Eku, Ekus};
pub use crate::certs::policy::{OID_ANY_EKU, OID_CLIENT_AUTH, OID_SERVER_AUTH};
use crate::certs::x509::anchors::TrustAnchors;
use crate::certs::x509::error::CertError;
use crate::peer_text::PeerText;

/// A name read from a certificate, sanitised where it enters ([`PeerText`]): any certificate may
/// have come from a peer, and its names end up on terminals and in documents.
fn name_text(s: impl std::fmt::Display) -> String {
    PeerText::new(&s.to_string()).into_string()
}

/// A decoded certificate, ready for `show decoded` and status output. Subject, issuer and names
/// are sanitised as [`PeerText`] when decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Subject, e.g. `CN=edge.example.com, O=Example`.
    pub subject: String,
    /// Issuer, same format.
    pub issuer: String,
    /// Serial number, colon-separated upper-case hex (`01:A2:...`).
    pub serial: String,
    /// notBefore, RFC 3339 UTC.
    pub not_before: String,
    /// notAfter, RFC 3339 UTC.
    pub not_after: String,
    /// Whole days until notAfter (negative once expired).
    pub days_left: i64,
    /// Subject alternative names: `DNS:host`, `IP:addr`, `URI:...`, `email:...`.
    pub sans: Vec<String>,
    /// Key type, e.g. `ECDSA P-256`, `RSA 2048`, `Ed25519`.
    pub key_type: String,
    /// The EKU extension ([`Ekus::Absent`] without one).
    pub ekus: Ekus,
    /// SHA-256 of the DER, colon-separated upper-case hex.
    pub sha256_fingerprint: String,
    /// Subject equals issuer (and key identifiers agree when present).
    pub is_self_signed: bool,
    /// BasicConstraints cA is set.
    pub is_ca: bool,
}

/// The certificate a peer presented, as logs and status name it. Read once per handshake (by
/// the verifier) and carried with that connection's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presented {
    /// Colon-separated upper-case hex, as [`CertInfo::serial`].
    pub serial: String,
    pub subject: PeerText,
    pub issuer: PeerText,
    pub ekus: Ekus,
}

impl Presented {
    /// Reads the fields of a DER certificate (one parse).
    pub fn parse(der: &[u8]) -> Result<Presented, CertError> {
        let (_, x) = X509Certificate::from_der(der).map_err(|e| CertError::BadCertificate {
            index: 1,
            detail: e.to_string().to_lowercase(),
        })?;
        Ok(Presented {
            serial: colon_hex(x.raw_serial()),
            subject: PeerText::new(&x.subject().to_string()),
            issuer: PeerText::new(&x.issuer().to_string()),
            ekus: ekus_of(&x)?,
        })
    }

    /// `serial=.. subject=".." issuer=".." ekus=..`, the shape of status and log lines.
    pub fn describe(&self) -> String {
        format!(
            "serial={} subject=\"{}\" issuer=\"{}\" ekus={}",
            self.serial,
            self.subject,
            self.issuer,
            self.ekus.names(",")
        )
    }
}

/// Parse every `CERTIFICATE` block of a PEM input; other blocks are ignored.
/// Each certificate is checked to be parseable X.509.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let der = item.map_err(|e| CertError::Pem(super::error::pem_error_text(&e)))?;
        if let Err(e) = X509Certificate::from_der(der.as_ref()) {
            return Err(CertError::BadCertificate {
                index: out.len() + 1,
                detail: e.to_string().to_lowercase(),
            });
        }
        out.push(der);
    }
    if out.is_empty() {
        return Err(CertError::NoCertificates);
    }
    Ok(out)
}

/// Parse the first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of a PEM input.
pub fn parse_pem_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, CertError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => CertError::NoPrivateKey,
        other => CertError::Pem(super::error::pem_error_text(&other)),
    })
}

/// Parse a trusted CA bundle (`ca.pem`). Fast enough for 1,000+ CAs.
pub fn load_trust_anchors(pem: &[u8]) -> Result<TrustAnchors, CertError> {
    TrustAnchors::from_pem(pem)
}

/// Does `key` belong to `cert`? Compares the SubjectPublicKeyInfo derived from
/// the private key (by the ring provider) with the certificate's.
pub fn key_matches_cert(
    cert: &CertificateDer<'_>,
    key: &PrivateKeyDer<'_>,
) -> Result<bool, CertError> {
    let signer = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| CertError::BadKey(e.to_string().to_lowercase()))?;
    let key_spki = signer
        .public_key()
        .ok_or_else(|| CertError::BadKey("cannot derive the public key".into()))?;
    let (_, x509) =
        X509Certificate::from_der(cert.as_ref()).map_err(|e| CertError::BadCertificate {
            index: 1,
            detail: e.to_string().to_lowercase(),
        })?;
    Ok(key_spki.as_ref() == x509.public_key().raw)
}

/// Decode a certificate for display; `now` sets `days_left`.
pub fn decode(cert: &CertificateDer<'_>, now: UnixTime) -> Result<CertInfo, CertError> {
    let (_, x) =
        X509Certificate::from_der(cert.as_ref()).map_err(|e| CertError::BadCertificate {
            index: 1,
            detail: e.to_string().to_lowercase(),
        })?;
    let not_before = x.validity().not_before.to_datetime();
    let not_after = x.validity().not_after.to_datetime();
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let days_left = (not_after.unix_timestamp() - now_secs).div_euclid(86_400);
    let sans = match x.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .map(|g| name_text(general_name(g)))
            .collect(),
        _ => Vec::new(),
    };
    Ok(CertInfo {
        subject: name_text(x.subject()),
        issuer: name_text(x.issuer()),
        serial: colon_hex(x.raw_serial()),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        days_left,
        sans,
        key_type: key_type(&x),
        ekus: ekus_of(&x)?,
        sha256_fingerprint: colon_hex(digest::digest(&digest::SHA256, cert.as_ref()).as_ref()),
        is_self_signed: is_self_signed(&x),
        is_ca: x.is_ca(),
    })
}

/// Name of an EKU OID: `serverAuth`, `clientAuth`, `codeSigning`,
/// `emailProtection`, `timeStamping`, `OCSPSigning`, `anyExtendedKeyUsage`,
/// else the dotted OID itself.
pub fn eku_name(oid: &str) -> String {
    Eku::from_oid(oid).name().to_string()
}

/// The EKU extension of a DER certificate.
pub fn ekus(cert: &[u8]) -> Result<Ekus, CertError> {
    let (_, x) = X509Certificate::from_der(cert).map_err(|e| CertError::BadCertificate {
        index: 1,
        detail: e.to_string().to_lowercase(),
    })?;
    ekus_of(&x)
}

/// Subject of a DER certificate for messages, `None` if it does not parse.
pub fn subject_name(cert: &[u8]) -> Option<String> {
    X509Certificate::from_der(cert)
        .ok()
        .map(|(_, x)| name_text(x.subject()))
}

/// Format a Unix time as RFC 3339 UTC (`2026-11-26T10:00:00Z`).
pub fn unix_rfc3339(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs)
        .map(rfc3339)
        .unwrap_or_else(|_| format!("@{secs}"))
}

pub(crate) fn ekus_of(x: &X509Certificate<'_>) -> Result<Ekus, CertError> {
    let ext = x
        .extended_key_usage()
        .map_err(|e| CertError::BadCertificate {
            index: 1,
            detail: format!("extended key usage: {}", e.to_string().to_lowercase()),
        })?;
    let Some(ext) = ext else {
        return Ok(Ekus::Absent);
    };
    let e = ext.value;
    let mut v = Vec::new();
    for (flag, eku) in [
        (e.server_auth, Eku::ServerAuth),
        (e.client_auth, Eku::ClientAuth),
        (e.code_signing, Eku::CodeSigning),
        (e.email_protection, Eku::EmailProtection),
        (e.time_stamping, Eku::TimeStamping),
        (e.ocsp_signing, Eku::OcspSigning),
        (e.any, Eku::Any),
    ] {
        if flag {
            v.push(eku);
        }
    }
    v.extend(e.other.iter().map(|o| Eku::from_oid(&o.to_id_string())));
    Ok(Ekus::Listed(v))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| format!("@{}", t.unix_timestamp()))
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn general_name(n: &GeneralName<'_>) -> String {
    match n {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => {
                let a: [u8; 4] = [b[0], b[1], b[2], b[3]];
                format!("IP:{}", IpAddr::from(a))
            }
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                format!("IP:{}", IpAddr::from(a))
            }
            _ => format!("IP:{}", colon_hex(b)),
        },
        GeneralName::DirectoryName(d) => format!("DirName:{d}"),
        other => format!("{other:?}"),
    }
}

fn key_type(x: &X509Certificate<'_>) -> String {
    spki_key_type(x.public_key())
}

/// `ECDSA P-256`, `RSA 2048`, ... for a public key (of a certificate or a CSR).
pub(crate) fn spki_key_type(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> String {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".into(),
                Some("1.3.132.0.34") => "ECDSA P-384".into(),
                Some("1.3.132.0.35") => "ECDSA P-521".into(),
                Some(c) => format!("ECDSA {c}"),
                None => "ECDSA".into(),
            }
        }
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => match spki.parsed() {
            Ok(PublicKey::RSA(k)) => format!("RSA {}", k.key_size()),
            _ => "RSA".into(),
        },
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        other => other.to_string(),
    }
}

fn is_self_signed(x: &X509Certificate<'_>) -> bool {
    if x.subject().as_raw() != x.issuer().as_raw() {
        return false;
    }
    let ski = x
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        });
    let aki = x
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0)
            }
            _ => None,
        });
    match (ski, aki) {
        (Some(s), Some(a)) => s == a,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::pki;

    #[test]
    fn decode_default_cert() {
        let (cert, key) = pki::self_signed_default("edge.example.com").unwrap();
        let certs = parse_pem_certs(cert.as_bytes()).unwrap();
        let key = parse_pem_key(key.as_bytes()).unwrap();
        assert!(key_matches_cert(&certs[0], &key).unwrap());
        let info = decode(&certs[0], UnixTime::now()).unwrap();
        assert_eq!(info.subject, "CN=edge.example.com");
        assert_eq!(info.subject, info.issuer);
        assert!(info.is_self_signed);
        assert_eq!(info.key_type, "ECDSA P-256");
        assert_eq!(
            info.ekus,
            Ekus::Listed(vec![Eku::ServerAuth, Eku::ClientAuth])
        );
        assert!(
            info.days_left >= 3649 && info.days_left <= 3653,
            "{}",
            info.days_left
        );
        assert!(info.sans.contains(&"DNS:edge.example.com".to_string()));
        assert_eq!(info.sha256_fingerprint.len(), 32 * 3 - 1);
        assert!(info
            .serial
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':'));
        assert!(info.not_after.ends_with('Z'));
    }

    #[test]
    fn mismatched_key_is_detected() {
        let (cert, _) = pki::self_signed_default("a.example").unwrap();
        let (_, other_key) = pki::self_signed_default("b.example").unwrap();
        let certs = parse_pem_certs(cert.as_bytes()).unwrap();
        let key = parse_pem_key(other_key.as_bytes()).unwrap();
        assert!(!key_matches_cert(&certs[0], &key).unwrap());
    }

    #[test]
    fn garbage_pem_is_rejected() {
        assert!(matches!(
            parse_pem_certs(b"hello world"),
            Err(CertError::NoCertificates)
        ));
        let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = parse_pem_certs(bad).unwrap_err();
        assert_eq!(e.code(), "bad-certificate", "{e}");
        assert!(matches!(
            parse_pem_key(b"nothing"),
            Err(CertError::NoPrivateKey)
        ));
    }

    #[test]
    fn eku_names() {
        assert_eq!(eku_name(OID_CLIENT_AUTH), "clientAuth");
        assert_eq!(eku_name("1.2.3.4"), "1.2.3.4");
        assert_eq!(colon_hex(&[0x01, 0xab]), "01:AB");
    }
}
