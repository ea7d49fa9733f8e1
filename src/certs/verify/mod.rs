//! Verification: the chain check (rustls-webpki path validation with the policy's rule applied
//! to every certificate below the anchor, revocation by installed CRLs), the precise diagnosis
//! of a refusal ([`eku::EkuError`]), the EKU-neutral trust check, and the rustls verifiers for
//! inbound clients and outbound peers, and this node's outbound TLS client configs ([`client`]).
//!
//! Must not know: files under `ROOT/certs/` (callers hand it anchors, chains and CRLs), the
//! agent, the shell or configuration paths. The rule itself lives in [`crate::certs::policy`].

pub mod client;
pub(crate) mod diagnose;
pub mod eku;
pub mod trust;
pub mod verifier;
