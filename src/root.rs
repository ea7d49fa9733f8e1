//! Preparing a ROOT: folders, the default self-signed server certificate, and the upgrade from the
//! single-store layout (recorded in the audit log). Cheap when there is nothing to do, because
//! every shell start runs it.

use std::path::{Path, PathBuf};

use crate::certs::store::{ensure_default, migrate_single_store, MigrationOutcome};
use crate::store::{Store, Who};

/// The root from `--root`, else `XSH_ROOT`, else the packaged default.
pub fn resolve(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("XSH_ROOT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from("/var/lib/xsh"))
}

/// Creates what a root needs. Returns notes worth showing (migration, default certificate).
pub fn prepare(root: &Path) -> Result<Vec<String>, String> {
    let store = Store::open(root).map_err(|e| e.to_string())?;
    for dir in ["status", "certs"] {
        let p = root.join(dir);
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
    let mut notes = Vec::new();
    let certs = root.join("certs");
    // Parallel first starts on one root must not interleave their key pairs: prepare under the
    // store lock (only when there is something to do, so an ordinary start stays cheap).
    let guard = if !certs.join("server.pem").exists() || !certs.join("client.pem").exists() {
        Some(store.lock().map_err(|e| e.to_string())?)
    } else {
        None
    };
    let fresh = !certs.join("server.pem").exists();
    let mut created_default = false;
    if fresh {
        let cfg = store.globals().unwrap_or_default();
        let host = crate::status::host_name(&cfg);
        if ensure_default(root, &host)
            .map_err(|e| format!("cannot create the default certificate: {e}"))?
        {
            created_default = true;
            notes.push(format!(
                "created the default self-signed certificate for {host} (server and client store)"
            ));
            // A new node trusts its own default certificate, so its two stores work against
            // each other out of the box; uploads replace or extend this list.
            let ca = certs.join("ca.pem");
            if !ca.exists() {
                let server = certs.join("server.pem");
                if let Ok(pem) =
                    crate::bounded::read(&server, crate::bounded::FileKind::Certificate)
                {
                    crate::store::write_file_atomic(&ca, &pem, 0o644)
                        .map_err(|e| format!("cannot write {}: {e}", ca.display()))?;
                }
            }
        }
    }
    if !certs.join("client.pem").exists() {
        let rep = migrate_single_store(root)
            .map_err(|e| format!("cannot upgrade the certificate stores: {e}"))?;
        // On a fresh root the copy just completes the default (both stores); only a real
        // single-store root is an upgrade worth announcing and auditing.
        if rep.outcome == MigrationOutcome::Migrated && !created_default {
            let copied: Vec<String> = rep
                .copied
                .iter()
                .map(|(a, b)| format!("{a} -> {b}"))
                .collect();
            let msg = copied.join(", ");
            let _ = store.audit_note(
                &Who::current(),
                "Security Certificates Migration",
                "single store",
                &msg,
                "applied",
            );
            notes.push(format!("upgraded to two certificate stores: {msg}"));
        }
    }
    // The store lock is not re-entrant: the zone migration takes it itself.
    drop(guard);
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
