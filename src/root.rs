//! Preparing a ROOT: folders, the clean-up of temp files and of a certificate change a killed
//! process left (completed or rolled back), the default self-signed certificate of a first start,
//! and the upgrade from the single-store layout (recorded in the audit log). Cheap when there is nothing to do, because
//! every shell start runs it.
//!
//! The folders a start creates get the modes of [`FOLDER_MODES`] set explicitly, whatever the
//! umask of whoever started first (`contrib/README.md` says why each); folders that exist are
//! left as the administrator made them.

use std::path::{Path, PathBuf};

use crate::certs::journal::{self, Recovered};
use crate::certs::ops;
use crate::certs::store::{create_default_stores, migrate_single_store, MigrationOutcome};
use crate::store::{atomic, Store, Who};

/// The root from `--root`, else `XSH_ROOT`, else the packaged default.
pub fn resolve(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("XSH_ROOT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from("/var/lib/xsh"))
}

/// The root's folders and the modes a start gives them when it creates them: shared ones
/// group-writable with setgid (new files keep the folder's group, the admins' and the agent's);
/// `history/` sticky and world-writable, for each user's own `history/<uid>/` (0700).
pub const FOLDER_MODES: &[(&str, u32)] = &[
    ("", 0o2775),
    ("config", 0o2775),
    ("certs", 0o2775),
    ("certs/generated_csr", 0o2775),
    ("status", 0o2775),
    ("history", 0o1777),
];

/// The shared files of `config/` a start creates with their modes, when missing: every admin's
/// transaction opens the lock for writing, and read-only users append their refused attempts to
/// the audit log (rate-limited per user).
pub const FILE_MODES: &[(&str, u32)] =
    &[("config/.xconf.lock", 0o664), ("config/audit.log", 0o666)];

/// Creates the folders of [`FOLDER_MODES`] that are missing, each with its mode set by
/// `chmod` after `mkdir` (the umask only narrows `mkdir`'s mode).
pub fn create_folders(root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for (rel, mode) in FOLDER_MODES {
        let p = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        if p.is_dir() {
            continue;
        }
        if let Some(parent) = p.parent().filter(|_| rel.is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        match std::fs::create_dir(&p) {
            Ok(()) => std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
                .map_err(|e| format!("cannot set the mode of {}: {e}", p.display()))?,
            // Another start made it meanwhile: its mode is that start's business.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", p.display())),
        }
    }
    for (rel, mode) in FILE_MODES {
        let p = root.join(rel);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => f
                .set_permissions(std::fs::Permissions::from_mode(*mode))
                .map_err(|e| format!("cannot set the mode of {}: {e}", p.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", p.display())),
        }
    }
    Ok(())
}

/// Creates what a root needs. Returns notes worth showing (migration, default certificate,
/// a certificate change cut off by a kill and completed or rolled back now).
pub fn prepare(root: &Path) -> Result<Vec<String>, String> {
    create_folders(root)?;
    let store = Store::open(root).map_err(|e| e.to_string())?;
    let certs = root.join("certs");
    // Writers killed between their create and their rename left temp files (some hold keys).
    for dir in [
        root.join("config"),
        root.join("status"),
        certs.clone(),
        certs.join(crate::certs::store::GENERATED_CSR_DIR),
    ] {
        atomic::clean_temps(&dir);
    }
    let mut notes = Vec::new();
    // Parallel first starts on one root must not interleave their key pairs: prepare under the
    // store lock (only when there is something to do, so an ordinary start stays cheap), and
    // the certificate folder lock (the one every certificate writer holds).
    let stores_missing = !certs.join("server.pem").exists() || !certs.join("client.pem").exists();
    if !stores_missing && !journal::pending(&certs) {
        return finish(&store, notes);
    }
    let locked = store
        .lock()
        .map_err(|e| e.to_string())
        .and_then(|g| Ok((g, ops::lock(root).map_err(|e| e.to_string())?)));
    let (guard, cert_lock) = match locked {
        Ok(l) => l,
        // Only a cut-off change to finish, by a user who may not write here: readers see it
        // through its intent until a user who may write starts.
        Err(e) if !stores_missing => {
            notes.push(format!(
                "a certificate change was cut off; it is finished at the next start by a user who may write the root ({e})"
            ));
            return finish(&store, notes);
        }
        Err(e) => return Err(e),
    };
    match journal::recover(root) {
        Ok(Some(Recovered::Completed(what))) => notes.push(format!(
            "completed the certificate change a stopped process left half done ({what})"
        )),
        Ok(Some(Recovered::RolledBack(what))) => notes.push(format!(
            "rolled back the certificate change a stopped process left unfinished ({what})"
        )),
        Ok(None) => {}
        // Readers see the change through its intent; the next start that may write finishes it.
        Err(e) if !stores_missing => notes.push(format!(
            "cannot finish the interrupted certificate change yet: {e}"
        )),
        Err(e) => {
            return Err(format!(
                "cannot finish the interrupted certificate change: {e}"
            ))
        }
    }
    if !certs.join("server.pem").exists() {
        let cfg = store.globals().unwrap_or_default();
        let host = crate::status::host_name(&cfg);
        // Both stores and the trusted list (a new node trusts its own default certificate, so
        // its two stores work against each other out of the box), as one change.
        if create_default_stores(root, &host)
            .map_err(|e| format!("cannot create the default certificate: {e}"))?
        {
            notes.push(format!(
                "created the default self-signed certificate for {host} (server and client store)"
            ));
        }
    }
    if !certs.join("client.pem").exists() {
        let who = Who::current();
        let rep = migrate_single_store(root, Some((&store, &who)))
            .map_err(|e| format!("cannot upgrade the certificate stores: {e}"))?;
        if rep.outcome == MigrationOutcome::Migrated {
            notes.push(format!(
                "upgraded to two certificate stores: {}",
                rep.text()
            ));
        }
    }
    drop(cert_lock);
    // The store lock is not re-entrant: the zone migration takes it itself.
    drop(guard);
    finish(&store, notes)
}

/// The zone-path migration, which takes the store lock itself.
fn finish(store: &Store, mut notes: Vec<String>) -> Result<Vec<String>, String> {
    if let Some(n) = store
        .migrate_zone_paths(&Who::current())
        .map_err(|e| format!("cannot migrate the zone paths: {e}"))?
    {
        notes.push(format!(
            "moved {n} zone settings to Expressway's paths (Zones Zone N Neighbor|TraversalClient ...)"
        ));
    }
    Ok(notes)
}
