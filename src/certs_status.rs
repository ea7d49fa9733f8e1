//! Status leaves of `xStatus Security Certificates`, read from the stores under `ROOT/certs/`:
//! per store the decoded leaf (subject, issuer, serial, validity, days left, EKUs, fingerprint),
//! whether its chain leads to the trusted CA list, and its CSR state; the size of the CA list and
//! the number of CRLs. Runs on every xStatus, so it reads certificate files only (never keys) and
//! parses the CA list once.

use std::path::Path;

use rustls_pki_types::UnixTime;

use crate::certs::ops::{eku_text, read_store_chain, StoreKind};
use crate::certs::trust::{load_ca_list, verify_trust};
use crate::certs::{crl, csr, decode};

/// `(path words, value)` pairs for the certificate status leaves.
pub fn collect(root: &Path) -> Vec<(String, String)> {
    let now = UnixTime::now();
    let mut out = Vec::new();
    let anchors = load_ca_list(root).ok().flatten();
    let mut fingerprints = Vec::new();
    for store in [StoreKind::Server, StoreKind::Client] {
        let base = format!("Security Certificates {}", store.name());
        let mut put = |leaf: &str, v: String| out.push((format!("{base} {leaf}"), v));
        let chain = read_store_chain(root, store).ok().flatten();
        let info = chain.as_ref().and_then(|c| decode(&c[0], now).ok());
        if let (Some(chain), Some(i)) = (chain.as_ref(), info) {
            put("Subject", i.subject.clone());
            put("Issuer", i.issuer.clone());
            put("SerialNumber", i.serial.clone());
            put("NotBefore", i.not_before.clone());
            put("NotAfter", i.not_after.clone());
            put("DaysLeft", i.days_left.to_string());
            put("ExtendedKeyUsage", eku_text(&i));
            put("Fingerprint", i.sha256_fingerprint.clone());
            let trusted = anchors
                .as_ref()
                .is_some_and(|a| verify_trust(&chain[0], &chain[1..], a, now).is_ok());
            put("Trusted", if trusted { "True" } else { "False" }.into());
            fingerprints.push(i.sha256_fingerprint);
        }
        let state = if root
            .join("certs")
            .join(crate::certs::store::GENERATED_CSR_DIR)
            .join(csr::csr_file(store))
            .exists()
        {
            csr::CSR_IN_PROGRESS
        } else {
            csr::NO_CSR
        };
        put("SigningRequest", state.into());
    }
    if fingerprints.len() == 2 {
        let same = fingerprints[0] == fingerprints[1];
        out.push((
            "Security Certificates Client SameAsServer".into(),
            if same { "True" } else { "False" }.into(),
        ));
    }
    out.push((
        "Security Certificates CA Count".into(),
        anchors.as_ref().map_or(0, |a| a.len()).to_string(),
    ));
    let crls = crl::list(root, now).map(|l| l.len()).unwrap_or(0);
    out.push(("Security Certificates CRL Count".into(), crls.to_string()));
    out
}
