//! The files under `ROOT/certs/`: the two stores, their crash-safe multi-file changes
//! ([`journal`]) and torn-pair-safe loads, the default certificate, the single-store ->
//! two-store upgrade, and the operations
//! behind `xCommand Security Certificates ...` (upload, CA list, CRLs, CSRs, the EKU readiness
//! report) with their shared vocabulary and error type.
//!
//! Must not know: the shell, the renderers or the agent; it asks [`crate::certs::policy`] for
//! every EKU decision and [`crate::certs::verify`] for trust, and never decides either itself.

pub mod calist;
pub mod crl;
pub mod csr;
pub mod csr_key;
pub mod default_cert;
pub mod journal;
pub mod ops;
pub mod readiness;
pub mod store;
pub mod upload;
