//! The certificate room: X.509 reading and display, the trusted CA list, the
//! client-certificate EKU policy (domain.md §2, §4) and its rustls verifier,
//! a test/demo PKI, and the certificate file layout under `ROOT/certs/`
//! (atomic pair writes, torn-pair-safe loads, default certificate, the
//! single-store -> two-store upgrade).
//!
//! * [`eku`] — the EKU policy as a pure function ([`eku::check_chain`]).
//! * [`verifier`] — [`verifier::EkuClientVerifier`] for rustls servers and
//!   [`verifier::server_verifier`] for outbound peers.
//! * [`info`] — PEM parsing, key/cert matching, decoded certificate view.
//! * [`anchors`] — [`TrustAnchors`] built from `ca.pem`.
//! * [`pki`] — generated CAs/leaves for tests and the default certificate.
//! * [`store`] — file names and atomic operations in `ROOT/certs/`.
//! * [`upload`], [`calist`], [`crl`], [`csr`], [`readiness`] — the operations
//!   behind `xCommand Security Certificates ...` ([`ops`] holds their shared
//!   vocabulary and error type; [`trust`] the EKU-neutral chain check;
//!   [`pemenc`] writes clean PEM).

pub mod anchors;
pub mod calist;
pub mod crl;
pub mod csr;
mod diagnose;
pub mod eku;
pub mod error;
pub mod info;
pub mod ops;
pub mod pemenc;
pub mod pki;
pub mod policy;
pub mod readiness;
pub mod store;
pub mod trust;
pub mod upload;
pub mod verifier;

pub use anchors::TrustAnchors;
pub use eku::{check_chain, check_chain_for, ChainInfo, EkuError, EkuMode, Role};
pub use error::CertError;
pub use info::{
    decode, key_matches_cert, load_trust_anchors, parse_pem_certs, parse_pem_key, CertInfo,
};
pub use policy::{Eku, Ekus};
pub use verifier::{server_verifier, EkuClientVerifier};
