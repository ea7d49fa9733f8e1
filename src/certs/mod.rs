//! The certificate room, in four sub-rooms by concern (each imports only those before it):
//!
//! * [`policy`] — the one EKU rule: typed [`Eku`]/[`Ekus`], [`EkuMode`], [`Role`], and
//!   [`policy::decide`] with a typed refusal. No DER, no rustls.
//! * [`x509`] — reading certificates and keys ([`info`], [`anchors`], [`pemenc`], [`error`]).
//! * [`verify`] — the chain check ([`eku::check_chain`]), its diagnosis, the EKU-neutral trust
//!   check ([`trust`]) and the rustls verifiers ([`verifier`]).
//! * [`files`] — `ROOT/certs/`: stores, the default certificate, the upgrade, and the operations
//!   behind `xCommand Security Certificates ...` ([`upload`], [`calist`], [`crl`], [`csr`],
//!   [`readiness`], [`ops`], [`store`]).
//!
//! The test PKI ([`pki`]) is built only for tests or with the `test-pki` feature, never into a
//! release library. The module paths of before the split (`certs::info`, `certs::store`, ...)
//! stay as re-exports, so other rooms' imports keep working.

pub mod files;
#[cfg(any(test, feature = "test-pki"))]
pub mod pki;
pub mod policy;
pub mod verify;
pub mod x509;

pub use files::{calist, crl, csr, journal, ops, readiness, store, upload};
pub use verify::{eku, verifier};
pub use x509::{anchors, error, info, pemenc};

/// `certs::trust` of before the split: the trust check, and reading `ca.pem`.
pub mod trust {
    pub use super::files::calist::load_ca_list;
    pub use super::verify::trust::verify_trust;
}

pub use anchors::TrustAnchors;
pub use eku::{check_chain, check_chain_for, ChainInfo, EkuError, EkuMode, Role};
pub use error::CertError;
pub use info::{
    decode, key_matches_cert, load_trust_anchors, parse_pem_certs, parse_pem_key, CertInfo,
};
pub use policy::{Eku, Ekus};
pub use verifier::{server_verifier, EkuClientVerifier};
