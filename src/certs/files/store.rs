//! The certificate folder `ROOT/certs/`: file names, crash-safe writes of a
//! certificate + key pair (one [`journal`] change), torn-pair-safe loading,
//! the default self-signed certificate of a first start, and the upgrade from
//! one store to two (server store -> client store copy, domain.md §2).
//!
//! # Reading a pair
//! Two renames can never be one atomic step, so a reader may see a new
//! certificate with the old key (or the reverse) for a moment. Readers must
//! therefore load with [`load_pair`] (or do the same themselves): read the
//! certificate and the key through a committed change's intent (a writer
//! killed between its renames leaves one), check [`key_matches_cert`], and on
//! a mismatch retry shortly; a pair that still does not match is an error, and
//! the caller keeps what it had.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::bounded::FileKind;
use crate::certs::files::default_cert;
use crate::certs::files::journal::{self, Audit, FileChange};
use crate::certs::x509::error::CertError;
use crate::certs::x509::info::{key_matches_cert, parse_pem_certs, parse_pem_key};
use crate::store::atomic::{self, Durability};

/// Folder under ROOT.
pub const CERTS_DIR: &str = "certs";
/// Server store certificate.
pub const SERVER_CERT: &str = "server.pem";
/// Server store key.
pub const SERVER_KEY: &str = "privkey.pem";
/// Client store certificate.
pub const CLIENT_CERT: &str = "client.pem";
/// Client store key.
pub const CLIENT_KEY: &str = "clientprivkey.pem";
/// Trusted CA list shared by both stores.
pub const CA_LIST: &str = "ca.pem";
/// SSH tunnel material of the server side.
pub const SERVER_SSH: &str = "server-ssh.pem";
/// SSH tunnel material of the client side.
pub const CLIENT_SSH: &str = "client-ssh.pem";
/// Client CA revocation list.
pub const CLIENT_CA_CRL: &str = "client-ca.crl";
/// Policy services revocation list.
pub const POLICY_SERVICES_CRL: &str = "policy-services.crl";
/// Folder of generated CSRs.
pub const GENERATED_CSR_DIR: &str = "generated_csr";

/// Mode of private key files: the owner, and the group of `certs/` (setgid: the admins and the
/// agent's user, contrib/README.md), so an agent running as its own user reads the keys admins
/// upload; nobody else.
pub const KEY_MODE: u32 = 0o640;
/// Mode of certificate files.
pub const CERT_MODE: u32 = 0o644;

const LOAD_ATTEMPTS: u32 = 40;
const LOAD_RETRY_DELAY: Duration = Duration::from_millis(5);

/// `ROOT/certs`.
pub fn certs_dir(root: &Path) -> PathBuf {
    root.join(CERTS_DIR)
}

/// Write `bytes` to `dir/name` atomically through the one temp-file primitive
/// ([`crate::store::atomic::replace`]): exclusive unpredictable temp file with
/// exactly `mode`, fsync, rename over the target, fsync the folder.
pub fn write_file_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let target = dir.join(name);
    atomic::replace(&target, bytes, mode, Durability::Synced)
        .map_err(|e| CertError::io("write", target, e))
}

/// Replace a certificate and its key as one change (see [`journal`]): after a
/// kill at any point readers see the old pair or the new one, and the next
/// start completes or rolls back what was cut off. The caller holds the folder
/// lock when other writers may run.
pub fn write_pair_atomic(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(), CertError> {
    journal::change(
        dir,
        pair_changes(cert_name, key_name, cert_pem, key_pem),
        None,
    )
}

/// The two file changes of a pair, key first.
pub fn pair_changes(
    cert_name: &str,
    key_name: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Vec<FileChange> {
    vec![
        FileChange::put(key_name, key_pem, KEY_MODE),
        FileChange::put(cert_name, cert_pem, CERT_MODE),
    ]
}

/// Why a pair could not be loaded, with the file at fault: the key file for a
/// key that does not parse, the certificate for everything else (a mismatch
/// names both in its message).
#[derive(Debug)]
pub struct PairError {
    pub file: PathBuf,
    pub error: CertError,
}

impl std::fmt::Display for PairError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.error)
    }
}

impl std::error::Error for PairError {}

/// Load a certificate chain and its key, retrying briefly while they do not
/// match (a writer between its two renames); fails with
/// [`CertError::KeyMismatch`] if they still do not match. A change cut off
/// half-way is read through its committed intent ([`journal::committed_view`]),
/// so the pair it leaves on disk never counts.
pub fn load_pair(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PairError> {
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    let at = |p: &Path| {
        let file = p.to_path_buf();
        move |error| PairError { file, error }
    };
    for attempt in 1..=LOAD_ATTEMPTS {
        let view = journal::committed_view(dir);
        let cert_pem =
            read_through(&view, dir, cert_name, FileKind::Certificate).map_err(at(&cert_path))?;
        let key_pem = read_through(&view, dir, key_name, FileKind::Key).map_err(at(&key_path))?;
        let certs = parse_pem_certs(&cert_pem).map_err(at(&cert_path))?;
        let key = parse_pem_key(&key_pem).map_err(at(&key_path))?;
        if key_matches_cert(&certs[0], &key).map_err(at(&key_path))? {
            return Ok((certs, key));
        }
        if attempt < LOAD_ATTEMPTS {
            std::thread::sleep(LOAD_RETRY_DELAY);
        }
    }
    Err(PairError {
        file: cert_path.clone(),
        error: CertError::KeyMismatch {
            cert: cert_path,
            key: key_path,
        },
    })
}

/// A file's content as a committed change makes it, else as on disk.
fn read_through(
    view: &std::collections::HashMap<String, Option<Vec<u8>>>,
    dir: &Path,
    name: &str,
    kind: FileKind,
) -> Result<Vec<u8>, CertError> {
    let p = dir.join(name);
    match view.get(name) {
        Some(Some(b)) => Ok(b.clone()),
        Some(None) => Err(CertError::io(
            "read",
            p,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )),
        None => Ok(crate::bounded::read(&p, kind)?),
    }
}

/// Create `ROOT/certs/` (and `generated_csr/`) and, if `server.pem` is
/// missing, the default self-signed server certificate for `hostname`.
/// Returns true when a certificate was created.
pub fn ensure_default(root: &Path, hostname: &str) -> Result<bool, CertError> {
    let dir = certs_dir(root);
    create_dirs(&dir)?;
    if dir.join(SERVER_CERT).exists() {
        return Ok(false);
    }
    reset_server_to_default(root, hostname)?;
    Ok(true)
}

/// The first start of a root: when `server.pem` is missing, the default
/// self-signed certificate for `hostname` goes into both stores (the client
/// store only when it has no certificate) and, when
/// there is no `ca.pem`, into the trusted CA list (a new node trusts its own
/// default), all as one change. Returns true when it was made.
pub fn create_default_stores(root: &Path, hostname: &str) -> Result<bool, CertError> {
    let dir = certs_dir(root);
    create_dirs(&dir)?;
    if dir.join(SERVER_CERT).exists() {
        return Ok(false);
    }
    let (cert, key) = default_cert::self_signed_default(hostname)?;
    let (cert, key) = (cert.as_bytes(), key.as_bytes());
    let mut changes = pair_changes(SERVER_CERT, SERVER_KEY, cert, key);
    // A client store with its certificate is never overwritten (only `server.pem` was lost).
    if !dir.join(CLIENT_CERT).exists() {
        changes.extend(pair_changes(CLIENT_CERT, CLIENT_KEY, cert, key));
    }
    if !dir.join(CA_LIST).exists() {
        changes.push(FileChange::put(CA_LIST, cert, CERT_MODE));
    }
    journal::change(&dir, changes, None)?;
    Ok(true)
}

/// "Reset to default server certificate": replace the server store with a new
/// self-signed certificate for `hostname` (the client store is not touched).
pub fn reset_server_to_default(root: &Path, hostname: &str) -> Result<(), CertError> {
    let dir = certs_dir(root);
    create_dirs(&dir)?;
    let (cert, key) = default_cert::self_signed_default(hostname)?;
    write_pair_atomic(
        &dir,
        SERVER_CERT,
        SERVER_KEY,
        cert.as_bytes(),
        key.as_bytes(),
    )
}

/// What [`migrate_single_store`] found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationReport {
    /// What the folder looked like.
    pub outcome: MigrationOutcome,
    /// Files copied, `(from, to)` names.
    pub copied: Vec<(String, String)>,
}

impl MigrationReport {
    /// `server.pem -> client.pem, ...`, as shown and audited.
    pub fn text(&self) -> String {
        let copied: Vec<String> = self
            .copied
            .iter()
            .map(|(a, b)| format!("{a} -> {b}"))
            .collect();
        copied.join(", ")
    }
}

/// The state [`migrate_single_store`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationOutcome {
    /// No server store: nothing to copy.
    #[default]
    NothingToMigrate,
    /// A client store already existed; it was not overwritten.
    AlreadyMigrated,
    /// The server store was copied into the client store.
    Migrated,
}

/// Upgrade from the one-store layout: when `server.pem` + `privkey.pem`
/// exist and `client.pem` does not, copy them (and `server-ssh.pem` ->
/// `client-ssh.pem` if present; and a self-signed `server.pem` into a missing
/// `ca.pem`, as a first start does) as one change, audited before it is made
/// when `audit` is given (its note gets the path and the list of copies).
/// Idempotent; never overwrites a client store that has its certificate: a
/// lone `clientprivkey.pem` (an older writer cut off between its renames) is
/// no store. A run of an older version interrupted after the pair copy is
/// completed (the ssh file) when the client pair still equals the server pair.
pub fn migrate_single_store(
    root: &Path,
    audit: Option<(&crate::store::Store, &crate::store::Who)>,
) -> Result<MigrationReport, CertError> {
    let dir = certs_dir(root);
    let mut report = MigrationReport::default();
    let has = |n: &str| dir.join(n).exists();
    if !has(SERVER_CERT) || !has(SERVER_KEY) {
        return Ok(report);
    }
    if has(CLIENT_CERT) {
        report.outcome = MigrationOutcome::AlreadyMigrated;
        let same = has(CLIENT_KEY)
            && read(&dir, SERVER_CERT)? == read(&dir, CLIENT_CERT)?
            && read(&dir, SERVER_KEY)? == read(&dir, CLIENT_KEY)?;
        if same && has(SERVER_SSH) && !has(CLIENT_SSH) {
            let bytes = read(&dir, SERVER_SSH)?;
            // May hold a private key: owner-only like the keys.
            write_file_atomic(&dir, CLIENT_SSH, &bytes, KEY_MODE)?;
            report.copied.push((SERVER_SSH.into(), CLIENT_SSH.into()));
        }
        return Ok(report);
    }
    // Validate the pair (and wait out a concurrent writer) before copying.
    load_pair(&dir, SERVER_CERT, SERVER_KEY).map_err(|e| e.error)?;
    let cert = read(&dir, SERVER_CERT)?;
    let key = read(&dir, SERVER_KEY)?;
    let mut changes = pair_changes(CLIENT_CERT, CLIENT_KEY, &cert, &key);
    report.copied.push((SERVER_CERT.into(), CLIENT_CERT.into()));
    report.copied.push((SERVER_KEY.into(), CLIENT_KEY.into()));
    if has(SERVER_SSH) && !has(CLIENT_SSH) {
        // May hold a private key: owner-only like the keys.
        changes.push(FileChange::put(
            CLIENT_SSH,
            &read(&dir, SERVER_SSH)?,
            KEY_MODE,
        ));
        report.copied.push((SERVER_SSH.into(), CLIENT_SSH.into()));
    }
    if !has(CA_LIST) && is_self_signed(&cert) {
        changes.push(FileChange::put(CA_LIST, &cert, CERT_MODE));
        report.copied.push((SERVER_CERT.into(), CA_LIST.into()));
    }
    report.outcome = MigrationOutcome::Migrated;
    let audit = audit.map(|(store, who)| Audit {
        store,
        who,
        notes: vec![journal::Note {
            path: "Security Certificates Migration".into(),
            old: "single store".into(),
            new: report.text(),
            result: "applied".into(),
        }],
    });
    journal::change(&dir, changes, audit)?;
    Ok(report)
}

fn is_self_signed(pem: &[u8]) -> bool {
    parse_pem_certs(pem)
        .ok()
        .and_then(|c| {
            crate::certs::x509::info::decode(&c[0], rustls_pki_types::UnixTime::now()).ok()
        })
        .is_some_and(|i| i.is_self_signed)
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, CertError> {
    let p = dir.join(name);
    let kind = if name.ends_with("key.pem") || name.ends_with(".key") {
        crate::bounded::FileKind::Key
    } else {
        crate::bounded::FileKind::Certificate
    };
    Ok(crate::bounded::read(&p, kind)?)
}

fn create_dirs(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|e| CertError::io("create folder", dir, e))?;
    let csr = dir.join(GENERATED_CSR_DIR);
    fs::create_dir_all(&csr).map_err(|e| CertError::io("create folder", csr, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn default_then_migrate_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        assert!(ensure_default(root.path(), "core.example").unwrap());
        assert!(!ensure_default(root.path(), "core.example").unwrap());
        let dir = certs_dir(root.path());
        let mode = fs::metadata(dir.join(SERVER_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, KEY_MODE);
        assert!(dir.join(GENERATED_CSR_DIR).is_dir());
        fs::write(dir.join(SERVER_SSH), b"ssh material").unwrap();

        let r = migrate_single_store(root.path(), None).unwrap();
        assert_eq!(r.outcome, MigrationOutcome::Migrated);
        // The pair, the ssh material and, the list being missing, the self-signed default.
        assert_eq!(r.copied.len(), 4, "{r:?}");
        assert!(dir.join(CA_LIST).exists());
        assert_eq!(
            fs::read(dir.join(SERVER_CERT)).unwrap(),
            fs::read(dir.join(CLIENT_CERT)).unwrap()
        );
        let r = migrate_single_store(root.path(), None).unwrap();
        assert_eq!(r.outcome, MigrationOutcome::AlreadyMigrated);
        assert!(r.copied.is_empty());
        let (certs, _) = load_pair(&dir, CLIENT_CERT, CLIENT_KEY).unwrap();
        assert_eq!(certs.len(), 1);
    }

    #[test]
    fn never_overwrites_client_store() {
        let root = tempfile::tempdir().unwrap();
        ensure_default(root.path(), "edge.example").unwrap();
        let dir = certs_dir(root.path());
        let (c, k) = default_cert::self_signed_default("client.example").unwrap();
        write_pair_atomic(&dir, CLIENT_CERT, CLIENT_KEY, c.as_bytes(), k.as_bytes()).unwrap();
        let r = migrate_single_store(root.path(), None).unwrap();
        assert_eq!(r.outcome, MigrationOutcome::AlreadyMigrated);
        assert_eq!(fs::read_to_string(dir.join(CLIENT_CERT)).unwrap(), c);
    }

    #[test]
    fn nothing_to_migrate_and_torn_pair() {
        let root = tempfile::tempdir().unwrap();
        let r = migrate_single_store(root.path(), None).unwrap();
        assert_eq!(r.outcome, MigrationOutcome::NothingToMigrate);
        ensure_default(root.path(), "a.example").unwrap();
        let dir = certs_dir(root.path());
        let (c, _) = default_cert::self_signed_default("b.example").unwrap();
        write_file_atomic(&dir, SERVER_CERT, c.as_bytes(), CERT_MODE).unwrap();
        let e = load_pair(&dir, SERVER_CERT, SERVER_KEY).unwrap_err();
        assert_eq!(e.error.code(), "key-mismatch", "{e}");
        assert_eq!(e.file, dir.join(SERVER_CERT));
        let before = fs::read(dir.join(SERVER_CERT)).unwrap();
        reset_server_to_default(root.path(), "a.example").unwrap();
        assert_ne!(before, fs::read(dir.join(SERVER_CERT)).unwrap());
        load_pair(&dir, SERVER_CERT, SERVER_KEY).unwrap();
    }

    /// A key that does not parse is the key file's fault, not the certificate's.
    #[test]
    fn key_faults_name_the_key_file() {
        let root = tempfile::tempdir().unwrap();
        ensure_default(root.path(), "a.example").unwrap();
        let dir = certs_dir(root.path());
        fs::write(dir.join(SERVER_KEY), b"not a key").unwrap();
        let e = load_pair(&dir, SERVER_CERT, SERVER_KEY).unwrap_err();
        assert_eq!(e.file, dir.join(SERVER_KEY), "{e}");
        assert_eq!(e.error.code(), "no-private-key");
        fs::write(dir.join(SERVER_CERT), b"not a certificate").unwrap();
        let e = load_pair(&dir, SERVER_CERT, SERVER_KEY).unwrap_err();
        assert_eq!(e.file, dir.join(SERVER_CERT), "{e}");
    }

    /// A pair torn by a writer killed between its renames is read through its committed intent.
    #[test]
    fn a_committed_intent_hides_a_torn_pair() {
        let root = tempfile::tempdir().unwrap();
        ensure_default(root.path(), "a.example").unwrap();
        let dir = certs_dir(root.path());
        let (c, k) = default_cert::self_signed_default("b.example").unwrap();
        // The state of a kill after the key's rename: intent committed, new key, old certificate.
        journal::commit_only(
            &dir,
            pair_changes(SERVER_CERT, SERVER_KEY, c.as_bytes(), k.as_bytes()),
        );
        fs::write(dir.join(SERVER_KEY), k.as_bytes()).unwrap();
        let (certs, _) = load_pair(&dir, SERVER_CERT, SERVER_KEY).unwrap();
        assert_eq!(certs[0], parse_pem_certs(c.as_bytes()).unwrap()[0]);
        let r = journal::recover(root.path()).unwrap();
        assert!(matches!(r, Some(journal::Recovered::Completed(_))), "{r:?}");
        assert_eq!(fs::read(dir.join(SERVER_CERT)).unwrap(), c.as_bytes());
        assert!(!journal::pending(&dir));
        load_pair(&dir, SERVER_CERT, SERVER_KEY).unwrap();
    }

    #[test]
    fn concurrent_reader_never_accepts_torn_pair() {
        let root = tempfile::tempdir().unwrap();
        ensure_default(root.path(), "a.example").unwrap();
        let dir = certs_dir(root.path());
        let pairs: Vec<_> = (0..4)
            .map(|i| default_cert::self_signed_default(&format!("h{i}.example")).unwrap())
            .collect();
        let wdir = dir.clone();
        let writer = std::thread::spawn(move || {
            for (c, k) in pairs.iter().cycle().take(40) {
                write_pair_atomic(&wdir, SERVER_CERT, SERVER_KEY, c.as_bytes(), k.as_bytes())
                    .unwrap();
            }
        });
        for _ in 0..40 {
            if let Ok((certs, key)) = load_pair(&dir, SERVER_CERT, SERVER_KEY) {
                assert!(key_matches_cert(&certs[0], &key).unwrap());
            }
        }
        writer.join().unwrap();
    }
}
