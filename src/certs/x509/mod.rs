//! X.509 reading: PEM parsing, key/certificate matching, the decoded view of a certificate
//! (subject, issuer, serial, validity, SANs, key type, typed EKUs, fingerprint), the presented
//! leaf as logs name it, the trusted CA list as anchors, clean PEM output, and the room's error.
//!
//! Must not know: the EKU rule (it reports EKUs, [`crate::certs::policy`] judges them), path
//! validation or rustls verifiers, and files under `ROOT/certs/`.

pub mod anchors;
pub mod error;
pub mod info;
pub mod names;
pub mod pemenc;
