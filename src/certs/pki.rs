//! A small test PKI on rcgen, for unit tests, integration tests and benches (built only for
//! tests or with the `test-pki` feature; never in a release library): root CAs, intermediates
//! with a chosen EKU, leaves with a chosen EKU set and validity, ECDSA P-256
//! keys, SANs `localhost` / `127.0.0.1`, random unique serials. Everything is
//! returned as PEM strings.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

pub use crate::certs::files::default_cert::self_signed_default;
use crate::certs::files::default_cert::{dn, random_serial};
use crate::certs::x509::error::CertError;

/// EKU set of a generated leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeafEku {
    /// No EKU extension.
    None,
    /// serverAuth only (what public CAs issue from 2026).
    ServerAuth,
    /// clientAuth only.
    ClientAuth,
    /// serverAuth + clientAuth.
    Both,
    /// anyExtendedKeyUsage only.
    AnyOnly,
    /// codeSigning only.
    CodeSigningOnly,
    /// An EKU extension with an empty list (malformed per RFC 5280).
    Empty,
}

impl LeafEku {
    /// The six sets of the EKU matrix (without the malformed `Empty`).
    pub const MATRIX: [LeafEku; 6] = [
        LeafEku::None,
        LeafEku::ServerAuth,
        LeafEku::ClientAuth,
        LeafEku::Both,
        LeafEku::AnyOnly,
        LeafEku::CodeSigningOnly,
    ];

    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            LeafEku::None => "none",
            LeafEku::ServerAuth => "serverAuth",
            LeafEku::ClientAuth => "clientAuth",
            LeafEku::Both => "both",
            LeafEku::AnyOnly => "anyEKU-only",
            LeafEku::CodeSigningOnly => "codeSigning-only",
            LeafEku::Empty => "empty-ext",
        }
    }
}

/// EKU of a generated intermediate CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterEku {
    /// No EKU extension.
    None,
    /// serverAuth only (public 2026 chains).
    ServerAuth,
    /// serverAuth + clientAuth.
    Both,
}

impl InterEku {
    /// All three, in matrix order.
    pub const MATRIX: [InterEku; 3] = [InterEku::None, InterEku::ServerAuth, InterEku::Both];

    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            InterEku::None => "none",
            InterEku::ServerAuth => "serverAuth",
            InterEku::Both => "both",
        }
    }
}

/// Validity window of a generated leaf, relative to the real clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Validity {
    /// From yesterday for a year.
    #[default]
    Valid,
    /// Ended 30 days ago.
    Expired,
    /// Starts in 30 days.
    NotYetValid,
}

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Subject CN.
    pub cn: String,
    /// EKU set.
    pub eku: LeafEku,
    /// Validity window.
    pub validity: Validity,
    /// SANs (DNS names or IP addresses); default `localhost`, `127.0.0.1`.
    pub sans: Vec<String>,
}

impl LeafSpec {
    /// A valid leaf with SANs `localhost` and `127.0.0.1`.
    pub fn new(cn: &str, eku: LeafEku) -> Self {
        LeafSpec {
            cn: cn.to_string(),
            eku,
            validity: Validity::Valid,
            sans: vec!["localhost".into(), "127.0.0.1".into()],
        }
    }
}

/// An issued leaf, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedLeaf {
    /// The leaf certificate alone.
    pub cert_pem: String,
    /// Its PKCS#8 private key.
    pub key_pem: String,
    /// Leaf followed by the intermediate (if any): what a peer presents.
    pub chain_pem: String,
    /// The intermediate alone (empty when issued by the root).
    pub intermediates_pem: String,
    /// The root (the trust anchor for `ca.pem`).
    pub root_pem: String,
}

struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: String,
    key_pem: String,
}

/// A root CA, optionally with one intermediate that issues the leaves.
pub struct TestCa {
    root: Authority,
    intermediate: Option<Authority>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("root_pem", &self.root.pem)
            .field("has_intermediate", &self.intermediate.is_some())
            .finish()
    }
}

impl TestCa {
    /// A root CA named `cn` issuing leaves directly.
    pub fn new_root(cn: &str) -> Result<Self, CertError> {
        Ok(TestCa {
            root: root_authority(cn)?,
            intermediate: None,
        })
    }

    /// "private CA1": a root that issues any EKU directly.
    pub fn private_ca1() -> Result<Self, CertError> {
        Self::new_root("xsh test private CA1")
    }

    /// "public CA2": a root whose serverAuth-only intermediate issues leaves.
    pub fn public_ca2() -> Result<Self, CertError> {
        let mut ca = Self::new_root("xsh test public CA2 root")?;
        ca.intermediate = Some(intermediate_authority(
            "xsh test public CA2 serverAuth intermediate",
            InterEku::ServerAuth,
            &ca.root,
        )?);
        Ok(ca)
    }

    /// A root (`<cn> root`) with an intermediate (`<cn>`) of the given EKU.
    pub fn with_intermediate(cn: &str, eku: InterEku) -> Result<Self, CertError> {
        let mut ca = Self::new_root(&format!("{cn} root"))?;
        ca.intermediate = Some(intermediate_authority(cn, eku, &ca.root)?);
        Ok(ca)
    }

    /// The root certificate (PEM).
    pub fn root_pem(&self) -> &str {
        &self.root.pem
    }

    /// The root's private key (PEM).
    pub fn root_key_pem(&self) -> &str {
        &self.root.key_pem
    }

    /// The intermediate certificate (PEM), if any.
    pub fn intermediate_pem(&self) -> Option<&str> {
        self.intermediate.as_ref().map(|a| a.pem.as_str())
    }

    /// A CRL signed by the root, valid for a week, listing the certificates with these serials
    /// (colon hex, as `CertInfo::serial` shows them).
    pub fn crl_revoking(&self, serials: &[&str]) -> Result<String, CertError> {
        let bad = |s: &str| CertError::Generate(format!("'{s}' is not a colon-hex serial"));
        let mut revoked = Vec::new();
        for s in serials {
            let bytes = s
                .split(':')
                .map(|h| u8::from_str_radix(h, 16).map_err(|_| bad(s)))
                .collect::<Result<Vec<u8>, _>>()?;
            revoked.push(rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(&bytes),
                revocation_time: OffsetDateTime::now_utc() - Duration::hours(2),
                reason_code: None,
                invalidity_date: None,
            });
        }
        let key = KeyPair::from_pem(&self.root.key_pem)?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(&self.root.pem, key)?;
        let now = OffsetDateTime::now_utc();
        let crl = rcgen::CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(7),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)?;
        Ok(crl.pem()?)
    }

    /// Issue a leaf under the intermediate (or the root when there is none).
    pub fn issue(&self, spec: &LeafSpec) -> Result<IssuedLeaf, CertError> {
        let mut params = CertificateParams::new(spec.sans.clone())?;
        params.distinguished_name = dn(&spec.cn);
        params.serial_number = Some(random_serial()?);
        let now = OffsetDateTime::now_utc();
        let (nb, na) = match spec.validity {
            Validity::Valid => (now - Duration::days(1), now + Duration::days(365)),
            Validity::Expired => (now - Duration::days(400), now - Duration::days(30)),
            Validity::NotYetValid => (now + Duration::days(30), now + Duration::days(400)),
        };
        params.not_before = nb;
        params.not_after = na;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        use ExtendedKeyUsagePurpose as P;
        params.extended_key_usages = match spec.eku {
            LeafEku::None | LeafEku::Empty => vec![],
            LeafEku::ServerAuth => vec![P::ServerAuth],
            LeafEku::ClientAuth => vec![P::ClientAuth],
            LeafEku::Both => vec![P::ServerAuth, P::ClientAuth],
            LeafEku::AnyOnly => vec![P::Any],
            LeafEku::CodeSigningOnly => vec![P::CodeSigning],
        };
        if spec.eku == LeafEku::Empty {
            // extKeyUsage (2.5.29.37) = SEQUENCE {} — an empty list.
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 37],
                    vec![0x30, 0x00],
                ));
        }
        let key = KeyPair::generate()?;
        let signer = self.intermediate.as_ref().unwrap_or(&self.root);
        let cert = params.signed_by(&key, &signer.issuer)?;
        let cert_pem = cert.pem();
        let intermediates_pem = self
            .intermediate
            .as_ref()
            .map(|a| a.pem.clone())
            .unwrap_or_default();
        Ok(IssuedLeaf {
            chain_pem: format!("{cert_pem}{intermediates_pem}"),
            cert_pem,
            key_pem: key.serialize_pem(),
            intermediates_pem,
            root_pem: self.root.pem.clone(),
        })
    }
}

fn ca_params(cn: &str) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = dn(cn);
    params.serial_number = Some(random_serial()?);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(2);
    params.not_after = now + Duration::days(3650);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn root_authority(cn: &str) -> Result<Authority, CertError> {
    let key = KeyPair::generate()?;
    let key_pem = key.serialize_pem();
    let issuer = CertifiedIssuer::self_signed(ca_params(cn)?, key)?;
    Ok(Authority {
        pem: issuer.pem(),
        issuer,
        key_pem,
    })
}

fn intermediate_authority(
    cn: &str,
    eku: InterEku,
    root: &Authority,
) -> Result<Authority, CertError> {
    let mut params = ca_params(cn)?;
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = match eku {
        InterEku::None => vec![],
        InterEku::ServerAuth => vec![ExtendedKeyUsagePurpose::ServerAuth],
        InterEku::Both => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    let key = KeyPair::generate()?;
    let key_pem = key.serialize_pem();
    let issuer = CertifiedIssuer::signed_by(params, key, &root.issuer)?;
    Ok(Authority {
        pem: issuer.pem(),
        issuer,
        key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::info::{decode, parse_pem_certs};
    use rustls_pki_types::UnixTime;

    #[test]
    fn leaves_have_requested_ekus_and_unique_serials() {
        let ca = TestCa::public_ca2().unwrap();
        let a = ca.issue(&LeafSpec::new("a", LeafEku::Both)).unwrap();
        let b = ca
            .issue(&LeafSpec::new("b", LeafEku::CodeSigningOnly))
            .unwrap();
        let chain = parse_pem_certs(a.chain_pem.as_bytes()).unwrap();
        assert_eq!(chain.len(), 2);
        let ia = decode(&chain[0], UnixTime::now()).unwrap();
        let ib = decode(
            &parse_pem_certs(b.cert_pem.as_bytes()).unwrap()[0],
            UnixTime::now(),
        )
        .unwrap();
        assert_ne!(ia.serial, ib.serial);
        assert_eq!(ia.ekus.names(","), "serverAuth,clientAuth");
        assert_eq!(ib.ekus.names(","), "codeSigning");
        assert!(ia.sans.contains(&"IP:127.0.0.1".to_string()));
        let inter = decode(&chain[1], UnixTime::now()).unwrap();
        assert_eq!(inter.ekus.names(","), "serverAuth");
        assert!(inter.is_ca);
    }

    #[test]
    fn expired_leaf_has_negative_days_left() {
        let ca = TestCa::private_ca1().unwrap();
        let mut spec = LeafSpec::new("old", LeafEku::Both);
        spec.validity = Validity::Expired;
        let leaf = ca.issue(&spec).unwrap();
        let info = decode(
            &parse_pem_certs(leaf.cert_pem.as_bytes()).unwrap()[0],
            UnixTime::now(),
        )
        .unwrap();
        assert!(info.days_left < -29, "{}", info.days_left);
    }
}
