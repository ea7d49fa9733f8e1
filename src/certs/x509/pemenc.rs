//! Writing PEM: the stores are rewritten from parsed DER, so what lands on
//! disk is clean armour (no stray text, keys in their own PEM label).

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One PEM block with 64-column lines.
pub fn block(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(line));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// Certificates as concatenated `CERTIFICATE` blocks.
pub fn certs(ders: &[CertificateDer<'_>]) -> String {
    ders.iter()
        .map(|d| block("CERTIFICATE", d.as_ref()))
        .collect()
}

/// A private key in the PEM label of its encoding.
pub fn key(key: &PrivateKeyDer<'_>) -> String {
    let label = match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    block(label, key.secret_der())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn round_trip_certificate() {
        let (cert, _) = crate::certs::pki::self_signed_default("a.example").unwrap();
        let ders = crate::certs::parse_pem_certs(cert.as_bytes()).unwrap();
        assert_eq!(certs(&ders), cert.replace("\r\n", "\n"));
    }
}
