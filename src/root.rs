//! Preparing a ROOT: folders, the clean-up of temp files and of a certificate change a killed
//! process left (completed or rolled back), the default self-signed certificate of a first start,
//! and the upgrade from the single-store layout (recorded in the audit log). Cheap when there is nothing to do, because
//! every shell start runs it.

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

/// Creates what a root needs. Returns notes worth showing (migration, default certificate,
/// a certificate change cut off by a kill and completed or rolled back now).
pub fn prepare(root: &Path) -> Result<Vec<String>, String> {
    let store = Store::open(root).map_err(|e| e.to_string())?;
    for dir in ["status", "certs"] {
        let p = root.join(dir);
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
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
