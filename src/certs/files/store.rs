//! The certificate folder `ROOT/certs/`: file names, atomic writes of a
//! certificate + key pair, torn-pair-safe loading, the default self-signed
//! server certificate, and the upgrade from one store to two
//! (server store -> client store copy, domain.md §2).
//!
//! # Reading a pair
//! Two renames can never be one atomic step, so a reader may see a new
//! certificate with the old key (or the reverse) for a moment. Readers must
//! therefore load with [`load_pair`] (or do the same themselves): read the
//! certificate and the key, check [`key_matches_cert`], and on a mismatch
//! retry shortly; a pair that still does not match is an error, and the caller
//! keeps what it had.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::certs::files::default_cert;
use crate::certs::x509::error::CertError;
use crate::certs::x509::info::{key_matches_cert, parse_pem_certs, parse_pem_key};

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

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `ROOT/certs`.
pub fn certs_dir(root: &Path) -> PathBuf {
    root.join(CERTS_DIR)
}

/// Write `bytes` to `dir/name` atomically: temp file created with `mode`,
/// fsync, rename over the target, fsync the folder.
pub fn write_file_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let tmp = write_temp(dir, name, bytes, mode)?;
    let target = dir.join(name);
    if let Err(e) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err(CertError::io("rename into", target, e));
    }
    sync_dir(dir)
}

/// Replace a certificate and its key. Both go to temp files first (the key
/// created with mode 0600), are fsynced, then the key and the certificate are
/// renamed into place and the folder is fsynced. Readers must use
/// [`load_pair`] (see the module docs) because the two renames are separate.
pub fn write_pair_atomic(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(), CertError> {
    let key_tmp = write_temp(dir, key_name, key_pem, KEY_MODE)?;
    let cert_tmp = match write_temp(dir, cert_name, cert_pem, CERT_MODE) {
        Ok(p) => p,
        Err(e) => {
            let _ = fs::remove_file(&key_tmp);
            return Err(e);
        }
    };
    let key_target = dir.join(key_name);
    if let Err(e) = fs::rename(&key_tmp, &key_target) {
        let _ = fs::remove_file(&key_tmp);
        let _ = fs::remove_file(&cert_tmp);
        return Err(CertError::io("rename into", key_target, e));
    }
    let cert_target = dir.join(cert_name);
    if let Err(e) = fs::rename(&cert_tmp, &cert_target) {
        let _ = fs::remove_file(&cert_tmp);
        return Err(CertError::io("rename into", cert_target, e));
    }
    sync_dir(dir)
}

/// Load a certificate chain and its key, retrying briefly while they do not
/// match (a writer between its two renames); fails with
/// [`CertError::KeyMismatch`] if they still do not match.
pub fn load_pair(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CertError> {
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    for attempt in 1..=LOAD_ATTEMPTS {
        let cert_pem = fs::read(&cert_path).map_err(|e| CertError::io("read", &cert_path, e))?;
        let key_pem = fs::read(&key_path).map_err(|e| CertError::io("read", &key_path, e))?;
        let certs = parse_pem_certs(&cert_pem)?;
        let key = parse_pem_key(&key_pem)?;
        if key_matches_cert(&certs[0], &key)? {
            return Ok((certs, key));
        }
        if attempt < LOAD_ATTEMPTS {
            std::thread::sleep(LOAD_RETRY_DELAY);
        }
    }
    Err(CertError::KeyMismatch {
        cert: cert_path,
        key: key_path,
    })
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
/// exist and neither `client.pem` nor `clientprivkey.pem` does, copy them
/// (and `server-ssh.pem` -> `client-ssh.pem` if present). Idempotent; never
/// overwrites an existing client store. A run interrupted after the pair copy
/// is completed (the ssh file) when the client pair still equals the server pair.
pub fn migrate_single_store(root: &Path) -> Result<MigrationReport, CertError> {
    let dir = certs_dir(root);
    let mut report = MigrationReport::default();
    let has = |n: &str| dir.join(n).exists();
    if !has(SERVER_CERT) || !has(SERVER_KEY) {
        return Ok(report);
    }
    if has(CLIENT_CERT) || has(CLIENT_KEY) {
        report.outcome = MigrationOutcome::AlreadyMigrated;
        let same = has(CLIENT_CERT)
            && has(CLIENT_KEY)
            && read(&dir, SERVER_CERT)? == read(&dir, CLIENT_CERT)?
            && read(&dir, SERVER_KEY)? == read(&dir, CLIENT_KEY)?;
        if same {
            copy_ssh(&dir, &mut report)?;
        }
        return Ok(report);
    }
    // Validate the pair (and wait out a concurrent writer) before copying.
    load_pair(&dir, SERVER_CERT, SERVER_KEY)?;
    let cert = read(&dir, SERVER_CERT)?;
    let key = read(&dir, SERVER_KEY)?;
    write_pair_atomic(&dir, CLIENT_CERT, CLIENT_KEY, &cert, &key)?;
    report.outcome = MigrationOutcome::Migrated;
    report
        .copied
        .push((SERVER_CERT.to_string(), CLIENT_CERT.to_string()));
    report
        .copied
        .push((SERVER_KEY.to_string(), CLIENT_KEY.to_string()));
    copy_ssh(&dir, &mut report)?;
    Ok(report)
}

fn copy_ssh(dir: &Path, report: &mut MigrationReport) -> Result<(), CertError> {
    if dir.join(SERVER_SSH).exists() && !dir.join(CLIENT_SSH).exists() {
        let bytes = read(dir, SERVER_SSH)?;
        // May hold a private key: owner-only like the keys.
        write_file_atomic(dir, CLIENT_SSH, &bytes, KEY_MODE)?;
        report
            .copied
            .push((SERVER_SSH.to_string(), CLIENT_SSH.to_string()));
    }
    Ok(())
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, CertError> {
    let p = dir.join(name);
    fs::read(&p).map_err(|e| CertError::io("read", p, e))
}

fn create_dirs(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|e| CertError::io("create folder", dir, e))?;
    let csr = dir.join(GENERATED_CSR_DIR);
    fs::create_dir_all(&csr).map_err(|e| CertError::io("create folder", csr, e))
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, CertError> {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask only narrows `mode`: set it, so a key is 0640 whoever uploads it.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(CertError::io("write", tmp, e))
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), CertError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CertError::io("sync folder", dir, e))
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

        let r = migrate_single_store(root.path()).unwrap();
        assert_eq!(r.outcome, MigrationOutcome::Migrated);
        assert_eq!(r.copied.len(), 3);
        assert_eq!(
            fs::read(dir.join(SERVER_CERT)).unwrap(),
            fs::read(dir.join(CLIENT_CERT)).unwrap()
        );
        let r = migrate_single_store(root.path()).unwrap();
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
        let r = migrate_single_store(root.path()).unwrap();
        assert_eq!(r.outcome, MigrationOutcome::AlreadyMigrated);
        assert_eq!(fs::read_to_string(dir.join(CLIENT_CERT)).unwrap(), c);
    }

    #[test]
    fn nothing_to_migrate_and_torn_pair() {
        let root = tempfile::tempdir().unwrap();
        let r = migrate_single_store(root.path()).unwrap();
        assert_eq!(r.outcome, MigrationOutcome::NothingToMigrate);
        ensure_default(root.path(), "a.example").unwrap();
        let dir = certs_dir(root.path());
        let (c, _) = default_cert::self_signed_default("b.example").unwrap();
        write_file_atomic(&dir, SERVER_CERT, c.as_bytes(), CERT_MODE).unwrap();
        let e = load_pair(&dir, SERVER_CERT, SERVER_KEY).unwrap_err();
        assert_eq!(e.code(), "key-mismatch", "{e}");
        let before = fs::read(dir.join(SERVER_CERT)).unwrap();
        reset_server_to_default(root.path(), "a.example").unwrap();
        assert_ne!(before, fs::read(dir.join(SERVER_CERT)).unwrap());
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
