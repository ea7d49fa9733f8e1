//! `xCommand Security Certificates ...`: the command face of the certificate
//! room, registered in [`HANDLERS`]. Each handler reads its parameters (file paths or the pasted PEM
//! body), refuses writes for read-only sessions, runs the operation from
//! `crate::certs` under the certificate folder lock, records every change
//! (and every refused change) in the audit log, and turns the outcome into a
//! command result. The rules themselves live in `crate::certs`.

use rustls_pki_types::UnixTime;

mod errors;
mod fields;
mod peers;
pub mod probe;

use self::errors::{Failure, Missing};
use self::fields::{ca_fields, cert_fields, crl_fields, csr_fields, trust_fields, warnings};
use super::{ok, param, require_write};
use crate::certs::eku::EkuMode;
use crate::certs::journal::{self, Audit, FileChange, Note};
use crate::certs::ops::{self, eku_text, OpError, StoreKind};
use crate::certs::upload::{self, UploadInput};
use crate::certs::x509::error::CertError;
use crate::certs::{calist, crl, csr, readiness, store as files};
use crate::engine::{Call, CommandResult, Entry, Item};
use crate::error::ShellError;
use crate::parse::ParamValue;
use crate::schema::values::OnOff;

/// The certificate commands, by path.
pub const HANDLERS: &[Entry] = &[
    Entry::new("Security Certificates Server Upload", |c| {
        with(c, |cx, body| cx.upload(StoreKind::Server, body))
    }),
    Entry::new("Security Certificates Client Upload", |c| {
        with(c, |cx, body| cx.upload(StoreKind::Client, body))
    }),
    Entry::new("Security Certificates Server Reset", |c| {
        with(c, |cx, _| cx.reset())
    }),
    Entry::new("Security Certificates Server Show", |c| {
        with(c, |cx, _| cx.show(StoreKind::Server))
    }),
    Entry::new("Security Certificates Client Show", |c| {
        with(c, |cx, _| cx.show(StoreKind::Client))
    }),
    Entry::new("Security Certificates CA Add", |c| {
        with(c, |cx, body| cx.ca_add(body))
    }),
    Entry::new("Security Certificates CA Remove", |c| {
        with(c, |cx, _| cx.ca_remove())
    }),
    Entry::new("Security Certificates CA List", |c| {
        with(c, |cx, _| cx.ca_list())
    }),
    Entry::new("Security Certificates CRL Add", |c| {
        with(c, |cx, body| cx.crl_add(body))
    }),
    Entry::new("Security Certificates CRL List", |c| {
        with(c, |cx, _| cx.crl_list())
    }),
    Entry::new("Security Certificates CSR Generate", |c| {
        with(c, |cx, _| cx.csr_generate())
    }),
    Entry::new("Security Certificates CSR Show", |c| {
        with(c, |cx, _| cx.csr_show())
    }),
    Entry::new("Security Certificates CSR Discard", |c| {
        with(c, |cx, _| cx.csr_discard())
    }),
    Entry::new("Security Certificates EkuReadiness", |c| {
        with(c, |cx, _| cx.readiness())
    }),
    Entry::new("Security Certificates Probe", probe::run),
];

/// Runs `f` on the call's context and its body.
fn with(
    mut call: Call,
    f: impl FnOnce(Cx, Option<String>) -> Result<CommandResult, ShellError>,
) -> Result<CommandResult, ShellError> {
    let body = call.body.take();
    let cx = Cx {
        session: &call,
        path: call.path,
        name: call.name,
        params: call.params,
    };
    f(cx, body)
}

struct Cx<'a, 'c> {
    session: &'a Call<'c>,
    path: &'a str,
    name: &'a str,
    params: &'a [ParamValue],
}

impl Cx<'_, '_> {
    fn p(&self, key: &str) -> Option<&str> {
        param(self.params, key).filter(|v| !v.is_empty())
    }

    fn fail(&self, e: impl Failure) -> ShellError {
        e.into_shell(self.path, self.params)
    }

    /// Audit a change (or a refused one).
    fn audit(&self, old: &str, new: &str, result: &str) {
        self.audit_at(self.path, old, new, result);
    }

    fn audit_at(&self, path: &str, old: &str, new: &str, result: &str) {
        let _ = self
            .session
            .store
            .audit_note(&self.session.ctx.who, path, old, new, result);
    }

    /// A refused write: audited, then the error.
    fn refuse(&self, e: OpError) -> ShellError {
        self.audit("", "", &format!("refused: {e}"));
        self.fail(e)
    }

    fn write_guard(&self) -> Result<ops::FolderLock, ShellError> {
        require_write(self.session, self.path)?;
        ops::lock(self.session.root).map_err(|e| self.fail(e))
    }

    /// PEM text from the parameter `file_param`, else the body.
    fn pem_input(&self, file_param: &str, body: Option<String>) -> Result<Vec<u8>, OpError> {
        if let Some(f) = self.p(file_param) {
            return ops::read_param_file(f, param_file_kind(self.name, file_param));
        }
        match body {
            Some(b) if !b.trim().is_empty() => Ok(b.into_bytes()),
            _ => Err(OpError::Invalid(format!(
                "give {file_param}, or paste the PEM text after the command line and end it with a line holding only '.'"
            ))),
        }
    }

    fn upload(self, store: StoreKind, body: Option<String>) -> Result<CommandResult, ShellError> {
        let _lock = self.write_guard()?;
        let also = self
            .p("AlsoAsClient")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let input = (|| {
            Ok::<_, OpError>(UploadInput {
                store,
                cert_pem: self.pem_input("CertificateFile", body)?,
                key_pem: self
                    .p("KeyFile")
                    .map(|f| ops::read_param_file(f, crate::bounded::FileKind::Key))
                    .transpose()?,
                also_as_client: also,
            })
        })()
        .map_err(|e| self.refuse(e))?;
        let root = self.session.root;
        let checked = upload::check(root, &input, UnixTime::now()).map_err(|e| self.refuse(e))?;
        // The records go to the audit log before any file changes (see `certs::journal`).
        let audit = upload::AuditAs {
            store: self.session.store,
            who: &self.session.ctx.who,
            path: self.path,
        };
        let done = upload::commit(root, &checked, Some(audit)).map_err(|e| self.fail(e))?;
        let mut f = vec![Item::leaf("Store", store.name())];
        f.extend(cert_fields(&checked.info));
        f.push(Item::leaf("Chain", checked.chain_len.to_string()));
        f.push(Item::leaf("Key", checked.key_source.text()));
        f.extend(trust_fields(&checked.trust));
        if store == StoreKind::Server {
            f.push(Item::leaf(
                "AlsoAsClient",
                if also { "True" } else { "False" },
            ));
        }
        if done.cleared_request {
            f.push(Item::leaf("SigningRequest", csr::NO_CSR));
        }
        f.extend(warnings(&checked.warnings));
        Ok(ok(self.name, f))
    }

    fn reset(self) -> Result<CommandResult, ShellError> {
        let _lock = self.write_guard()?;
        let root = self.session.root;
        let cfg = self.session.store.load().unwrap_or_default();
        let host = crate::status::host_name(&cfg);
        let old_info = ops::store_leaf(root, StoreKind::Server).ok().flatten();
        let (cert, key) = crate::certs::files::default_cert::self_signed_default(&host)
            .map_err(|e| self.fail(e))?;
        let chain = crate::certs::parse_pem_certs(cert.as_bytes()).map_err(|e| self.fail(e))?;
        let info = crate::certs::decode(&chain[0], UnixTime::now()).map_err(|e| self.fail(e))?;
        let mut changes = files::pair_changes(
            files::SERVER_CERT,
            files::SERVER_KEY,
            cert.as_bytes(),
            key.as_bytes(),
        );
        let mut notes = vec![Note {
            path: self.path.to_string(),
            old: ops::audit_line(old_info.as_ref()),
            new: ops::audit_line(Some(&info)),
            result: "applied (reset to default)".into(),
        }];
        // The list trusted the old self-signed certificate (a new node trusts its own default):
        // trust the new default in its place, in the same change.
        let mut retrusted = None;
        if let Some(o) = old_info.as_ref().filter(|o| o.is_self_signed) {
            let list = calist::replaced(
                root,
                &o.sha256_fingerprint,
                chain[0].clone(),
                UnixTime::now(),
            )
            .map_err(|e| self.fail(e))?;
            if let Some(list) = list {
                changes.push(FileChange::put(
                    files::CA_LIST,
                    list.as_bytes(),
                    files::CERT_MODE,
                ));
                retrusted = Some(list);
                notes.push(Note {
                    path: "Security Certificates CA".into(),
                    old: ops::audit_line(Some(o)),
                    new: ops::audit_line(Some(&info)),
                    result: "applied (default certificate re-trusted after reset)".into(),
                });
            }
        }
        // In a cluster the list is shared: the cluster takes the new list first (compared with
        // what this peer holds), and a refusal refuses the whole reset before any local file
        // changes. The local files then change together through the journal.
        if let Some(list) = &retrusted {
            calist::shared(
                root,
                files::CA_LIST,
                list.as_bytes(),
                "trusted CA list: default certificate re-trusted after a server certificate reset",
            )
            .map_err(|e| self.fail(e))?;
        }
        let audit = Audit {
            store: self.session.store,
            who: &self.session.ctx.who,
            notes,
        };
        journal::change(&files::certs_dir(root), changes, Some(audit)).map_err(|e| self.fail(e))?;
        let mut f = vec![Item::leaf("Store", "Server")];
        f.extend(cert_fields(&info));
        f.push(Item::leaf("SelfSigned", "True"));
        if retrusted.is_some() {
            f.push(Item::leaf(
                "TrustedList",
                "the previous default certificate in the trusted CA list was replaced by this one",
            ));
        }
        f.push(Item::leaf(
            "Note",
            "reset to default server certificate (self-signed); the client store is not changed",
        ));
        Ok(ok(self.name, f))
    }

    fn show(self, store: StoreKind) -> Result<CommandResult, ShellError> {
        let root = &self.session.root;
        let pem_format = self
            .p("Format")
            .is_some_and(|v| v.eq_ignore_ascii_case("pem"));
        let p = files::certs_dir(root).join(store.cert_file());
        if pem_format {
            let bytes = crate::bounded::read(&p, crate::bounded::FileKind::Certificate)
                .map_err(|e| self.fail(CertError::from(e)))?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            return Ok(ok(
                self.name,
                vec![Item::leaf("Store", store.name()), Item::leaf("PEM", text)],
            ));
        }
        let now = UnixTime::now();
        let chain = ops::read_store_chain(root, store)
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| {
                self.fail(Missing(format!(
                    "the {} store is empty ({} is missing)",
                    store.word(),
                    p.display()
                )))
            })?;
        let info = crate::certs::decode(&chain[0], now).map_err(|e| self.fail(e))?;
        let mut f = vec![Item::leaf("Store", store.name())];
        f.extend(cert_fields(&info));
        f.push(Item::leaf("SubjectAltName", info.sans.join(", ")));
        f.push(Item::leaf("KeyType", info.key_type.clone()));
        f.push(Item::leaf("NotBefore", info.not_before.clone()));
        f.push(Item::leaf(
            "SelfSigned",
            if info.is_self_signed { "True" } else { "False" },
        ));
        for (n, c) in chain[1..].iter().enumerate() {
            if let Ok(i) = crate::certs::decode(c, now) {
                f.push(Item::instance(
                    "Intermediate",
                    n as u32 + 1,
                    vec![
                        Item::leaf("Subject", i.subject.clone()),
                        Item::leaf("Issuer", i.issuer.clone()),
                        Item::leaf("NotAfter", i.not_after.clone()),
                        Item::leaf("ExtendedKeyUsage", eku_text(&i)),
                        Item::leaf("Fingerprint", i.sha256_fingerprint.clone()),
                    ],
                ));
            }
        }
        let trust = match crate::certs::trust::load_ca_list(root) {
            Ok(Some(a)) => match crate::certs::trust::verify_trust(&chain[0], &chain[1..], &a, now)
            {
                Ok(anchor) => upload::Trust::Trusted(anchor),
                Err(e) => upload::Trust::Untrusted(e.to_string()),
            },
            Ok(None) => upload::Trust::Untrusted("the trusted CA list is empty".into()),
            Err(e) => upload::Trust::Untrusted(e.to_string()),
        };
        f.extend(trust_fields(&trust));
        if store == StoreKind::Client {
            let same = ops::store_leaf(root, StoreKind::Server)
                .ok()
                .flatten()
                .is_some_and(|s| s.sha256_fingerprint == info.sha256_fingerprint);
            f.push(Item::leaf(
                "SameAsServer",
                if same { "True" } else { "False" },
            ));
        }
        let state = match csr::pending(root, store) {
            Ok(Some(_)) => csr::CSR_IN_PROGRESS,
            _ => csr::NO_CSR,
        };
        f.push(Item::leaf("SigningRequest", state));
        Ok(ok(self.name, f))
    }

    fn ca_add(self, body: Option<String>) -> Result<CommandResult, ShellError> {
        let _lock = self.write_guard()?;
        let root = self.session.root;
        let pem = self.pem_input("File", body).map_err(|e| self.refuse(e))?;
        let added = calist::add(root, &pem, UnixTime::now()).map_err(|e| self.refuse(e))?;
        if !added.added.is_empty() {
            let new: Vec<String> = added
                .added
                .iter()
                .map(|i| ops::audit_line(Some(i)))
                .collect();
            self.audit("", &new.join(" | "), "applied");
        }
        let mut f = vec![
            Item::leaf("Added", added.added.len().to_string()),
            Item::leaf("AlreadyPresent", added.skipped.len().to_string()),
            Item::leaf("Total", added.total.to_string()),
        ];
        for (n, i) in added.added.iter().enumerate() {
            f.push(Item::instance("CA", n as u32 + 1, ca_fields(i)));
        }
        f.extend(warnings(&added.warnings));
        Ok(ok(self.name, f))
    }

    fn ca_remove(self) -> Result<CommandResult, ShellError> {
        let _lock = self.write_guard()?;
        let root = self.session.root;
        let (removed, total) = calist::remove(
            root,
            self.p("Fingerprint"),
            self.p("Subject"),
            UnixTime::now(),
        )
        .map_err(|e| self.refuse(e))?;
        let old: Vec<String> = removed.iter().map(|i| ops::audit_line(Some(i))).collect();
        self.audit(&old.join(" | "), "", "applied");
        let mut f = vec![
            Item::leaf("Removed", removed.len().to_string()),
            Item::leaf("Total", total.to_string()),
        ];
        for (n, i) in removed.iter().enumerate() {
            f.push(Item::instance("CA", n as u32 + 1, ca_fields(i)));
        }
        if total == 0 {
            f.extend(warnings(&[
                "the trusted CA list is now empty: every inbound mutual TLS handshake will fail"
                    .to_string(),
            ]));
        }
        Ok(ok(self.name, f))
    }

    fn ca_list(self) -> Result<CommandResult, ShellError> {
        let root = &self.session.root;
        if self
            .p("Format")
            .is_some_and(|v| v.eq_ignore_ascii_case("pem"))
        {
            let ders = calist::read(root).map_err(|e| self.fail(e))?;
            return Ok(ok(
                self.name,
                vec![
                    Item::leaf("Total", ders.len().to_string()),
                    Item::leaf("PEM", crate::certs::pemenc::certs(&ders)),
                ],
            ));
        }
        let list = calist::list(root, UnixTime::now()).map_err(|e| self.fail(e))?;
        let mut f = vec![Item::leaf("Total", list.len().to_string())];
        for (n, i) in list.iter().enumerate() {
            f.push(Item::instance("CA", n as u32 + 1, ca_fields(i)));
        }
        Ok(ok(self.name, f))
    }

    fn crl_add(self, body: Option<String>) -> Result<CommandResult, ShellError> {
        let _lock = self.write_guard()?;
        let root = self.session.root;
        let target = match self.p("Target") {
            Some(t) if t.eq_ignore_ascii_case("policyservices") => files::POLICY_SERVICES_CRL,
            _ => files::CLIENT_CA_CRL,
        };
        let pem = self.pem_input("File", body).map_err(|e| self.refuse(e))?;
        let added = crl::add(root, target, &pem, UnixTime::now()).map_err(|e| self.refuse(e))?;
        let new: Vec<String> = added
            .added
            .iter()
            .map(|c| {
                format!(
                    "{}: issuer={}; this update={}",
                    c.file, c.issuer, c.this_update
                )
            })
            .collect();
        self.audit("", &new.join(" | "), "applied");
        let mut f = vec![
            Item::leaf("File", target),
            Item::leaf("Added", added.added.len().to_string()),
            Item::leaf("Replaced", added.replaced.to_string()),
        ];
        for (n, c) in added.added.iter().enumerate() {
            f.push(Item::instance("CRL", n as u32 + 1, crl_fields(c)));
        }
        f.extend(warnings(&added.warnings));
        Ok(ok(self.name, f))
    }

    fn crl_list(self) -> Result<CommandResult, ShellError> {
        let list = crl::list(self.session.root, UnixTime::now()).map_err(|e| self.fail(e))?;
        let mut f = vec![Item::leaf("Total", list.len().to_string())];
        for (n, c) in list.iter().enumerate() {
            f.push(Item::instance("CRL", n as u32 + 1, crl_fields(c)));
        }
        Ok(ok(self.name, f))
    }

    fn store_param(&self) -> Result<StoreKind, ShellError> {
        let v = self.p("Store").unwrap_or_default();
        StoreKind::parse(v).ok_or_else(|| {
            self.fail(OpError::Invalid(format!(
                "Store must be Server or Client, not '{v}'"
            )))
        })
    }

    fn csr_generate(self) -> Result<CommandResult, ShellError> {
        let _lock = self.write_guard()?;
        let store = self.store_param()?;
        let cn = self.p("CommonName").unwrap_or_default().to_string();
        let sans: Vec<String> = self
            .p("SubjectAltName")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let eku_v = self.p("ExtendedKeyUsage").unwrap_or("Both");
        let eku = csr::RequestedEku::parse(eku_v).ok_or_else(|| {
            self.fail(OpError::Invalid(format!(
                "ExtendedKeyUsage must be Both, ServerAuth or ClientAuth, not '{eku_v}'"
            )))
        })?;
        let key = csr::CsrKeyType::parse(self.p("KeyType"), self.p("KeyLength"))
            .map_err(|e| self.refuse(e))?;
        let digest = self
            .p("Digest")
            .map(|d| {
                csr::CsrDigest::parse(d).ok_or_else(|| {
                    OpError::Invalid(format!(
                        "Digest must be SHA256, SHA384 or SHA512, not '{d}'"
                    ))
                })
            })
            .transpose()
            .map_err(|e| self.refuse(e))?;
        let text = |k: &str| self.p(k).map(str::to_string);
        let req = csr::CsrRequest {
            common_name: cn,
            sans,
            eku,
            subject: csr::SubjectFields {
                organization: text("Organization"),
                organizational_unit: text("OrganizationalUnit"),
                country: text("Country"),
                state: text("State"),
                locality: text("Locality"),
            },
            key,
            digest,
        };
        let root = self.session.root;
        let (pending, replaced) = csr::generate(root, store, &req).map_err(|e| self.refuse(e))?;
        self.audit(
            if replaced { "a previous request" } else { "" },
            &format!(
                "csr for {}; eku={}; key={}; signature={}",
                pending.subject,
                pending.ekus.join(","),
                pending.key_type,
                pending.signature
            ),
            "applied",
        );
        let mut f = csr_fields(&pending);
        if replaced {
            f.push(Item::leaf("Replaced", "True"));
        }
        let mut notes = Vec::new();
        let requested = crate::certs::Ekus::Listed(
            pending
                .ekus
                .iter()
                .map(|n| crate::certs::Eku::from_name(n))
                .collect(),
        );
        let client_ok = crate::certs::policy::decide(
            crate::certs::policy::Role::InboundClient,
            crate::certs::EkuMode::On,
            [&requested],
        )
        .is_ok();
        if !client_ok {
            notes.push("this request does not ask for clientAuth: the certificate will not be usable in the client store or for tunnels".to_string());
        } else {
            notes.push("a private CA honours clientAuth; a public CA strips it (from May 2026 public CAs issue serverAuth only)".to_string());
        }
        f.push(Item::leaf("Note", notes.join("; ")));
        f.push(Item::leaf(
            "Next",
            format!(
                "have the CA sign the request, then: xCommand Security Certificates {} Upload CertificateFile: <signed.pem> (no key needed)",
                store.name()
            ),
        ));
        Ok(ok(self.name, f))
    }

    fn csr_show(self) -> Result<CommandResult, ShellError> {
        let store = self.store_param()?;
        match csr::pending(self.session.root, store).map_err(|e| self.fail(e))? {
            Some(p) => Ok(ok(self.name, csr_fields(&p))),
            None => Ok(ok(
                self.name,
                vec![
                    Item::leaf("Store", store.name()),
                    Item::leaf("Status", csr::NO_CSR),
                ],
            )),
        }
    }

    fn csr_discard(self) -> Result<CommandResult, ShellError> {
        let _lock = self.write_guard()?;
        let store = self.store_param()?;
        let had = csr::clear(self.session.root, store).map_err(|e| self.fail(e))?;
        if !had {
            return Err(self.refuse(OpError::NotFound(format!(
                "the {} store has no certificate signing request in progress",
                store.word()
            ))));
        }
        self.audit("a pending request", "", "applied (discarded)");
        Ok(ok(
            self.name,
            vec![
                Item::leaf("Store", store.name()),
                Item::leaf("Status", csr::NO_CSR),
            ],
        ))
    }

    fn readiness(self) -> Result<CommandResult, ShellError> {
        let cfg = self.session.store.globals().unwrap_or_default();
        let mode = match cfg
            .sip()
            .tls()
            .certificate()
            .extended_key_usage()
            .checking()
            .mode()
        {
            OnOff::On => EkuMode::On,
            OnOff::Off => EkuMode::Off,
        };
        let tunnel_on = cfg.tunnel().mode() == OnOff::On;
        let r = readiness::report(self.session.root, mode, tunnel_on, UnixTime::now())
            .map_err(|e| self.fail(e))?;
        let mut f = vec![
            Item::leaf("Mode", r.mode.to_string()),
            Item::leaf("Summary", r.summary.clone()),
        ];
        for (n, role) in r.roles.iter().enumerate() {
            f.push(Item::instance(
                "Role",
                n as u32 + 1,
                vec![
                    Item::leaf("Name", role.role.clone()),
                    Item::leaf("Presents", role.presents.clone()),
                    Item::leaf("Result", role.verdict.text()),
                    Item::leaf("Explanation", role.explanation.clone()),
                    Item::leaf("Seed", role.seed.clone()),
                ],
            ));
        }
        f.extend(peers::fields(self.session.root, UnixTime::now()));
        Ok(ok(self.name, f))
    }
}

/// The kind (and so the size limit) of a file named by `param` of command `name`.
fn param_file_kind(name: &str, param: &str) -> crate::bounded::FileKind {
    use crate::bounded::FileKind;
    match (name, param) {
        (_, "KeyFile") => FileKind::Key,
        (n, "File") if n.contains("CRL") => FileKind::Crl,
        (n, "File") if n.contains(" CA ") => FileKind::CaList,
        _ => FileKind::Certificate,
    }
}
