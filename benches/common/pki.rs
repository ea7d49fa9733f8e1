//! The benches' own test PKI on rcgen: one ECDSA P-256 root, leaves with SANs
//! `localhost`/`127.0.0.1` and a chosen EKU set, and any number of unrelated extra CAs (the
//! 1,000-CA trust list). Kept here rather than borrowed from the library, which keeps its test PKI
//! out of release builds.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::die;

/// EKU set of a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eku {
    /// serverAuth + clientAuth: accepted in both modes.
    Both,
    /// serverAuth only: accepted as a client under Off, refused under On.
    ServerOnly,
}

/// A leaf as PEM and DER.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: String,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d.push(DnType::OrganizationName, "xsh bench");
    d
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p =
        CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| die(&e.to_string()));
    p.distinguished_name = dn(cn);
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(2);
    p.not_after = now + Duration::days(3650);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap_or_else(|e| die(&e.to_string()));
        let issuer = CertifiedIssuer::self_signed(ca_params(cn), key)
            .unwrap_or_else(|e| die(&e.to_string()));
        Ca {
            pem: issuer.pem(),
            issuer,
        }
    }

    pub fn issue(&self, cn: &str, eku: Eku) -> Leaf {
        let fail = |e: rcgen::Error| -> ! { die(&format!("issuing {cn}: {e}")) };
        let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap_or_else(|e| fail(e));
        p.distinguished_name = dn(cn);
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(1);
        p.not_after = now + Duration::days(365);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        p.extended_key_usages = match eku {
            Eku::Both => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Eku::ServerOnly => vec![ExtendedKeyUsagePurpose::ServerAuth],
        };
        let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let cert = p.signed_by(&key, &self.issuer).unwrap_or_else(|e| fail(e));
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

/// `n` unrelated self-signed CAs as one PEM text (what a long trust list looks like).
pub fn extra_cas_pem(n: usize) -> String {
    let mut s = String::with_capacity(n * 700);
    for i in 0..n {
        s.push_str(&Ca::new(&format!("xsh bench extra CA {i}")).pem);
    }
    s
}

/// The DER of the first certificate in a PEM text.
pub fn pem_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
        .unwrap_or_else(|| die("no certificate in PEM"))
}
