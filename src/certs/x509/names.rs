//! Distinguished names outside a certificate: the CA names a TLS server lists in its
//! CertificateRequest, shown as the stores show subjects (`CN=…, O=…`).

use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// The text of a DER distinguished name (with or without its outer SEQUENCE); undecodable bytes
/// are shown as hex, so nothing the peer sent is lost.
pub fn name_text(der: &[u8]) -> String {
    if let Ok((_, n)) = X509Name::from_der(der) {
        return n.to_string();
    }
    let mut wrapped = vec![0x30];
    match der.len() {
        n if n < 0x80 => wrapped.push(n as u8),
        n if n <= 0xff => wrapped.extend([0x81, n as u8]),
        n => wrapped.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    wrapped.extend_from_slice(der);
    match X509Name::from_der(&wrapped) {
        Ok((_, n)) => n.to_string(),
        Err(_) => der.iter().map(|b| format!("{b:02X}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_subject_reads_back_as_the_store_shows_it() {
        let ca = crate::certs::pki::TestCa::private_ca1().unwrap();
        let der = crate::certs::info::parse_pem_certs(ca.root_pem().as_bytes()).unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(der[0].as_ref()).unwrap();
        let raw = x.subject().as_raw();
        assert_eq!(name_text(raw), x.subject().to_string());
        // Without the outer SEQUENCE (how some stacks hand the hints over).
        let inner = &raw[2..];
        assert_eq!(name_text(inner), x.subject().to_string());
    }
}
