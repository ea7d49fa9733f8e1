//! The crypto floor of one mutual-TLS 1.3 handshake on the server, measured with ring in the same
//! run: the ECDHE of the negotiated group (X25519: key generation + derivation), one ECDSA P-256
//! signature (CertificateVerify with the server key) and two ECDSA P-256 verifications (the
//! client's CertificateVerify and its certificate's signature by the CA). Thread CPU time, so a
//! busy machine stretches it less than wall time.

use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};

use crate::common::{die, procfs};
use crate::setup::Pki;

pub struct Floor {
    pub kx_us: f64,
    pub sign_us: f64,
    pub verify_us: f64,
}

impl Floor {
    /// ECDHE + sign + two verifies.
    pub fn total_us(&self) -> f64 {
        self.kx_us + self.sign_us + 2.0 * self.verify_us
    }
}

/// CPU µs per call of `f`, over at least 2,000 calls and 0.3 s of CPU.
fn per_call(mut f: impl FnMut()) -> f64 {
    for _ in 0..50 {
        f();
    }
    let c0 = procfs::thread_cpu();
    let mut n = 0u64;
    while n < 2000 || procfs::thread_cpu() - c0 < 0.3 {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    (procfs::thread_cpu() - c0) / n as f64 * 1e6
}

pub fn measure(pki: &Pki) -> Floor {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let server = EcdsaKeyPair::from_pkcs8(alg, &pki.servers[0].key_der, &rng)
        .unwrap_or_else(|e| die(&format!("server key: {e}")));
    let client = EcdsaKeyPair::from_pkcs8(alg, &pki.client_leaf.key_der, &rng)
        .unwrap_or_else(|e| die(&format!("client key: {e}")));
    // TLS 1.3 CertificateVerify content: 64 spaces, a context string, a SHA-256 transcript hash.
    let cv: Vec<u8> = std::iter::repeat_n(b' ', 64)
        .chain(b"TLS 1.3, client CertificateVerify\0".iter().copied())
        .chain([7u8; 32])
        .collect();
    let sig = client
        .sign(&rng, &cv)
        .unwrap_or_else(|e| die(&e.to_string()));
    let peer = EphemeralPrivateKey::generate(&X25519, &rng)
        .and_then(|k| k.compute_public_key())
        .unwrap_or_else(|e| die(&e.to_string()));
    let peer = peer.as_ref().to_vec();
    let kx_us = per_call(|| {
        let k = EphemeralPrivateKey::generate(&X25519, &rng).expect("x25519 key");
        let _public = k.compute_public_key().expect("x25519 public key");
        let _ = agreement::agree_ephemeral(k, &UnparsedPublicKey::new(&X25519, &peer), |s| {
            std::hint::black_box(s.len())
        });
    });
    let sign_us = per_call(|| {
        std::hint::black_box(server.sign(&rng, &cv).expect("sign"));
    });
    let vk = signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_ASN1,
        client.public_key().as_ref().to_vec(),
    );
    let verify_us = per_call(|| {
        std::hint::black_box(vk.verify(&cv, sig.as_ref()).is_ok());
    });
    Floor {
        kx_us,
        sign_us,
        verify_us,
    }
}
