//! How certificate command results look: the fields of a decoded certificate,
//! a CA entry, a CRL, a pending CSR, a trust verdict and warnings.

use crate::certs::info::CertInfo;
use crate::certs::ops::eku_text;
use crate::certs::upload;
use crate::certs::{crl, csr};
use crate::engine::Item;

pub(super) fn cert_fields(i: &CertInfo) -> Vec<Item> {
    vec![
        Item::leaf("Subject", i.subject.clone()),
        Item::leaf("Issuer", i.issuer.clone()),
        Item::leaf("SerialNumber", i.serial.clone()),
        Item::leaf("NotAfter", i.not_after.clone()),
        Item::leaf("DaysLeft", i.days_left.to_string()),
        Item::leaf("ExtendedKeyUsage", eku_text(i)),
        Item::leaf("Fingerprint", i.sha256_fingerprint.clone()),
    ]
}

pub(super) fn ca_fields(i: &CertInfo) -> Vec<Item> {
    vec![
        Item::leaf("Subject", i.subject.clone()),
        Item::leaf("Issuer", i.issuer.clone()),
        Item::leaf("NotAfter", i.not_after.clone()),
        Item::leaf("ExtendedKeyUsage", eku_text(i)),
        Item::leaf(
            "SelfSigned",
            if i.is_self_signed { "True" } else { "False" },
        ),
        Item::leaf("Fingerprint", i.sha256_fingerprint.clone()),
    ]
}

pub(super) fn crl_fields(c: &crl::CrlInfo) -> Vec<Item> {
    vec![
        Item::leaf("File", c.file.clone()),
        Item::leaf("Issuer", c.issuer.clone()),
        Item::leaf("ThisUpdate", c.this_update.clone()),
        Item::leaf("NextUpdate", c.next_update.clone()),
        Item::leaf("Revoked", c.revoked.to_string()),
        Item::leaf("Stale", if c.stale { "True" } else { "False" }),
    ]
}

pub(super) fn csr_fields(p: &csr::PendingCsr) -> Vec<Item> {
    vec![
        Item::leaf("Store", p.store.name()),
        Item::leaf("Status", csr::CSR_IN_PROGRESS),
        Item::leaf("Subject", p.subject.clone()),
        Item::leaf("SubjectAltName", p.sans.join(", ")),
        Item::leaf("ExtendedKeyUsage", p.ekus.join(", ")),
        Item::leaf("KeyType", p.key_type.clone()),
        Item::leaf("Signature", p.signature.clone()),
        Item::leaf("Created", p.created.clone()),
        Item::leaf("CsrFile", p.csr_path.clone()),
        Item::leaf("KeyFile", p.key_path.clone()),
        Item::leaf("PEM", p.pem.clone()),
    ]
}

pub(super) fn trust_fields(t: &upload::Trust) -> Vec<Item> {
    match t {
        upload::Trust::Trusted(a) => vec![
            Item::leaf("Trusted", "True"),
            Item::leaf("TrustAnchor", a.clone()),
        ],
        upload::Trust::Untrusted(why) => vec![
            Item::leaf("Trusted", "False"),
            Item::leaf("TrustDetail", why.clone()),
        ],
    }
}

pub(super) fn warnings(w: &[String]) -> Vec<Item> {
    w.iter()
        .enumerate()
        .map(|(n, t)| Item::instance("Warning", n as u32 + 1, vec![Item::leaf("Text", t.clone())]))
        .collect()
}
