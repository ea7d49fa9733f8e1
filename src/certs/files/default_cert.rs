//! The product's default server certificate (`Security Certificates Server Reset`, first start):
//! self-signed, generated on rcgen. Knows nothing of the stores it is written to.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use crate::certs::x509::error::CertError;

/// The product's default server certificate: self-signed, CN = `hostname`,
/// SAN `hostname` (when it is a valid DNS name or IP), serverAuth+clientAuth,
/// ECDSA P-256, valid 10 years. Returns `(cert_pem, key_pem)`.
pub fn self_signed_default(hostname: &str) -> Result<(String, String), CertError> {
    let mut params = CertificateParams::new(vec![hostname.to_string()])
        .or_else(|_| CertificateParams::new(Vec::<String>::new()))?;
    params.distinguished_name = dn(hostname);
    params.serial_number = Some(random_serial()?);
    let now = OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + Duration::days(3650);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

pub(crate) fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

pub(crate) fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CertError::Generate("system random number generator failed".into()))?;
    // Positive and without a leading zero byte, so DER keeps all 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    Ok(SerialNumber::from_slice(&bytes))
}
