//! Changes of several files under `ROOT/certs/` made atomic as a whole (a key and its
//! certificate, `AlsoAsClient`, Server Reset with the re-trusted CA list, the first start, the
//! single-store upgrade), through one intent file, `ROOT/certs/.intent`.
//!
//! # The protocol
//! 1. The intent — every file's new content *and* its old one — is written (`prepared`) through
//!    the one temp-file primitive ([`crate::store::atomic`]), with the length the audit log had.
//! 2. The audit records of the change, tagged with the intent's id, are appended and synced.
//! 3. The intent is rewritten `committed`: from here on the change happens.
//! 4. The files are replaced one by one, each synced.
//! 5. The intent is removed and the folder synced.
//!
//! A kill before 3 leaves the files untouched: the next start rolls the change back, marking its
//! records (if they were written) [`CHANGE_ROLLED_BACK`]. A kill after 3 leaves a committed
//! intent: readers of a pair ([`super::store::load_pair`]) see its new contents through
//! [`committed_view`], so the pair never looks torn, and the next start completes it. A change
//! that fails with an error at 4 is undone from the old contents and marked rolled back.
//!
//! Writers hold the certificate folder lock ([`super::ops::lock`]); so does the recovery.
//! Knows the files and the audit log, not the shell, the renderers or the agent.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::certs::x509::error::CertError;
use crate::store::atomic::{self, Durability};
use crate::store::audit::{self, AuditRecord};
use crate::store::{now_rfc3339, Store, Who, CHANGE_ROLLED_BACK};

/// The intent file in `ROOT/certs/`.
pub const INTENT: &str = ".intent";
/// The intent holds private keys: the keys' own mode (owner and the root's group, which the
/// agent's user is in), so an agent that did not start the change can still read through it
/// and finish it.
const INTENT_MODE: u32 = super::store::KEY_MODE;
const MAGIC: &str = "xsh-certificate-change 1";

/// One file of a change: its name under `ROOT/certs/` (may name a sub-folder), its mode and its
/// new content (`None`: the file is removed).
#[derive(Debug, Clone)]
pub struct FileChange {
    pub name: String,
    pub mode: u32,
    pub new: Option<Vec<u8>>,
}

impl FileChange {
    /// Write `bytes` to `name` with `mode`.
    pub fn put(name: &str, bytes: &[u8], mode: u32) -> FileChange {
        FileChange {
            name: name.to_string(),
            mode,
            new: Some(bytes.to_vec()),
        }
    }

    /// Remove `name`.
    pub fn remove(name: &str) -> FileChange {
        FileChange {
            name: name.to_string(),
            mode: 0o600,
            new: None,
        }
    }
}

/// An audit record of a change, before it gets its time, generation and id.
#[derive(Debug, Clone)]
pub struct Note {
    pub path: String,
    pub old: String,
    pub new: String,
    pub result: String,
}

/// Where and as whom a change is audited.
pub struct Audit<'a> {
    pub store: &'a Store,
    pub who: &'a Who,
    pub notes: Vec<Note>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    mode: u32,
    new: Option<Vec<u8>>,
    old: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Intent {
    id: String,
    committed: bool,
    audit_from: u64,
    /// Path words of the change, for its rolled-back marker.
    path: String,
    entries: Vec<Entry>,
}

/// What the recovery at a start did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// A committed change was completed.
    Completed(String),
    /// A change that had not committed was rolled back (and its records marked).
    RolledBack(String),
}

/// Makes `changes` in `dir` (`ROOT/certs/`) as one change, audited first (see the module docs).
/// The caller holds the folder lock.
pub fn change(
    dir: &Path,
    changes: Vec<FileChange>,
    audit: Option<Audit<'_>>,
) -> Result<(), CertError> {
    let mut entries = Vec::with_capacity(changes.len());
    for c in changes {
        let p = dir.join(&c.name);
        // The old content goes into the intent: a regular file of a store's size only.
        let old = crate::bounded::read_opt(&p, crate::bounded::FileKind::CaList)?;
        entries.push(Entry {
            name: c.name,
            mode: c.mode,
            new: c.new,
            old,
        });
    }
    let mut intent = Intent {
        id: atomic::temp_name("c")
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string(),
        committed: false,
        audit_from: 0,
        path: audit
            .as_ref()
            .and_then(|a| a.notes.first())
            .map(|n| n.path.clone())
            .unwrap_or_default(),
        entries,
    };
    if let Some(a) = &audit {
        let log = a.store.audit_path();
        intent.audit_from = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        write_intent(dir, &intent)?;
        if let Err(e) = append_notes(a, &intent.id) {
            // Some records may have landed (a write that went through, an fsync that failed):
            // mark them rolled back; if even that fails, the prepared intent stays and the next
            // start marks them.
            let root = dir.parent().unwrap_or(dir);
            if mark_rolled_back(root, &intent).is_ok() {
                let _ = atomic::remove(&dir.join(INTENT));
            }
            return Err(e);
        }
    }
    intent.committed = true;
    if let Err(e) = write_intent(dir, &intent) {
        // The committed intent may have landed (its rename did, its folder's fsync did not):
        // write it back as prepared before marking, so no start completes what was refused.
        intent.committed = false;
        let root = dir.parent().unwrap_or(dir);
        if write_intent(dir, &intent).is_ok() && mark_rolled_back(root, &intent).is_ok() {
            let _ = atomic::remove(&dir.join(INTENT));
        }
        return Err(e);
    }
    if let Err(e) = apply(dir, &intent, false) {
        // Undo from the old contents; if even that fails the committed intent stays, and the
        // next start completes the change.
        if apply(dir, &intent, true).is_ok() {
            // Prepared again before the marker: the user was told the change failed, so a later
            // start must roll it back, never complete it.
            intent.committed = false;
            let root = dir.parent().unwrap_or(dir);
            if write_intent(dir, &intent).is_ok() && mark_rolled_back(root, &intent).is_ok() {
                let _ = atomic::remove(&dir.join(INTENT));
            }
        }
        return Err(e);
    }
    atomic::remove(&dir.join(INTENT)).map_err(|e| CertError::io("remove", dir.join(INTENT), e))
}

fn append_notes(a: &Audit<'_>, id: &str) -> Result<(), CertError> {
    let time = now_rfc3339();
    let generation = a.store.generation().unwrap_or(0);
    let recs: Vec<AuditRecord> = a
        .notes
        .iter()
        .map(|n| AuditRecord {
            time: time.clone(),
            generation,
            user: a.who.user.clone(),
            from: a.who.from.clone(),
            session: a.who.session.clone(),
            path: n.path.clone(),
            old: n.old.clone(),
            new: n.new.clone(),
            result: n.result.clone(),
            change: id.to_string(),
        })
        .collect();
    let log = a.store.audit_path();
    audit::append_records(&log, &recs)
        .map(drop)
        .map_err(|e| CertError::io("append to", log, std::io::Error::other(e.to_string())))
}

/// Replaces every file with its new content (`undo`: its old one).
fn apply(dir: &Path, intent: &Intent, undo: bool) -> Result<(), CertError> {
    for e in &intent.entries {
        let p = dir.join(&e.name);
        let content = if undo { &e.old } else { &e.new };
        let res = match content {
            Some(b) => atomic::replace(&p, b, e.mode, Durability::Synced),
            None => atomic::remove(&p),
        };
        res.map_err(|err| CertError::io("replace", p, err))?;
    }
    Ok(())
}

/// Appends the rolled-back marker for `intent`'s records, when they were written and are not
/// marked yet.
fn mark_rolled_back(root: &Path, intent: &Intent) -> Result<(), CertError> {
    let store = Store::open(root).map_err(|e| CertError::Generate(e.to_string()))?;
    let log = store.audit_path();
    let recs = audit::records_from(&log, intent.audit_from);
    let ours = |r: &&AuditRecord| r.change == intent.id;
    if !recs
        .iter()
        .filter(ours)
        .any(|r| r.result != CHANGE_ROLLED_BACK)
        || recs
            .iter()
            .filter(ours)
            .any(|r| r.result == CHANGE_ROLLED_BACK)
    {
        return Ok(());
    }
    let rec = AuditRecord {
        time: now_rfc3339(),
        generation: store.generation().unwrap_or(0),
        user: String::new(),
        from: String::new(),
        session: String::new(),
        path: intent.path.clone(),
        old: String::new(),
        new: String::new(),
        result: CHANGE_ROLLED_BACK.into(),
        change: intent.id.clone(),
    };
    audit::append_records(&log, &[rec])
        .map(drop)
        .map_err(|e| CertError::io("append to", log, std::io::Error::other(e.to_string())))
}

/// Whether `dir` holds an intent (a change was cut off, or is being made right now).
pub fn pending(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join(INTENT)).is_ok()
}

/// Completes or rolls back the change a killed writer left in `root`'s certificate folder.
/// The caller holds the folder lock. `Ok(None)` when there was nothing to do.
pub fn recover(root: &Path) -> Result<Option<Recovered>, CertError> {
    let dir = super::store::certs_dir(root);
    let Some(intent) = read_intent(&dir)? else {
        return Ok(None);
    };
    let done = if intent.committed {
        match apply(&dir, &intent, false) {
            Ok(()) => Recovered::Completed(intent.path.clone()),
            Err(e) => {
                apply(&dir, &intent, true).map_err(|_| e)?;
                mark_rolled_back(root, &intent)?;
                Recovered::RolledBack(intent.path.clone())
            }
        }
    } else {
        // Nothing was replaced before the commit; only the records need their marker.
        mark_rolled_back(root, &intent)?;
        Recovered::RolledBack(intent.path.clone())
    };
    let p = dir.join(INTENT);
    atomic::remove(&p).map_err(|e| CertError::io("remove", p, e))?;
    Ok(Some(done))
}

/// The new contents of a committed change still being applied (or cut off), by file name:
/// what a reader must take instead of the files on disk. Empty when there is none.
pub fn committed_view(dir: &Path) -> HashMap<String, Option<Vec<u8>>> {
    match read_intent(dir) {
        Ok(Some(i)) if i.committed => i.entries.into_iter().map(|e| (e.name, e.new)).collect(),
        _ => HashMap::new(),
    }
}

fn write_intent(dir: &Path, intent: &Intent) -> Result<(), CertError> {
    let mut head = format!(
        "{MAGIC}\n{} {} {}\n{}\n{}\n",
        intent.id,
        if intent.committed {
            "committed"
        } else {
            "prepared"
        },
        intent.audit_from,
        intent.path.replace('\n', " "),
        intent.entries.len()
    );
    let len = |b: &Option<Vec<u8>>| b.as_ref().map_or("-".to_string(), |b| b.len().to_string());
    for e in &intent.entries {
        head.push_str(&format!(
            "{:o} {} {} {}\n",
            e.mode,
            len(&e.new),
            len(&e.old),
            e.name.replace('\n', " ")
        ));
    }
    let mut bytes = head.into_bytes();
    for e in &intent.entries {
        bytes.extend(e.new.iter().flatten());
        bytes.extend(e.old.iter().flatten());
    }
    let p = dir.join(INTENT);
    atomic::replace(&p, &bytes, INTENT_MODE, Durability::Synced)
        .map_err(|e| CertError::io("write", p, e))
}

fn read_intent(dir: &Path) -> Result<Option<Intent>, CertError> {
    let p = dir.join(INTENT);
    // Bounded, regular file only, never through a link: every pair load reads it.
    let Some(bytes) = crate::bounded::read_opt(&p, crate::bounded::FileKind::Intent)? else {
        return Ok(None);
    };
    parse_intent(&bytes).map(Some).ok_or_else(|| {
        CertError::io(
            "understand",
            p,
            std::io::Error::other("not an intent written by this program"),
        )
    })
}

fn parse_intent(bytes: &[u8]) -> Option<Intent> {
    let mut pos = 0;
    let mut line = || {
        let rest = bytes.get(pos..)?;
        let end = rest.iter().position(|&b| b == b'\n')?;
        pos += end + 1;
        std::str::from_utf8(&rest[..end]).ok().map(str::to_string)
    };
    if line()? != MAGIC {
        return None;
    }
    let state = line()?;
    let mut s = state.split(' ');
    let id = s.next()?.to_string();
    let committed = s.next()? == "committed";
    let audit_from = s.next()?.parse().ok()?;
    let path = line()?;
    let n: usize = line()?.parse().ok()?;
    let mut heads = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let l = line()?;
        let mut f = l.splitn(4, ' ');
        let mode = u32::from_str_radix(f.next()?, 8).ok()?;
        let new = parse_len(f.next()?).ok()?;
        let old = parse_len(f.next()?).ok()?;
        let name = f.next()?.to_string();
        if !is_store_name(&name) {
            return None;
        }
        heads.push((name, mode, new, old));
    }
    let mut take = |len: Option<usize>| -> Option<Option<Vec<u8>>> {
        match len {
            None => Some(None),
            Some(l) => {
                let b = bytes.get(pos..pos.checked_add(l)?)?.to_vec();
                pos += l;
                Some(Some(b))
            }
        }
    };
    let mut entries = Vec::with_capacity(heads.len());
    for (name, mode, new, old) in heads {
        let new = take(new)?;
        let old = take(old)?;
        entries.push(Entry {
            name,
            mode,
            new,
            old,
        });
    }
    Some(Intent {
        id,
        committed,
        audit_from,
        path,
        entries,
    })
}

/// `-` (no content: the file is absent) or a length.
/// A name under `ROOT/certs/`: relative, with normal components only (no `..`, no root), so a
/// planted intent cannot make a start write outside the store.
fn is_store_name(name: &str) -> bool {
    use std::path::Component;
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn parse_len(s: &str) -> Result<Option<usize>, std::num::ParseIntError> {
    if s == "-" {
        Ok(None)
    } else {
        s.parse().map(Some)
    }
}

/// Writes the committed intent of `changes` and stops, as a writer killed right after its
/// commit point would (for tests of the readers and of the recovery).
#[cfg(test)]
pub(crate) fn commit_only(dir: &Path, changes: Vec<FileChange>) {
    let entries = changes
        .into_iter()
        .map(|c| Entry {
            old: fs::read(dir.join(&c.name)).ok(),
            name: c.name,
            mode: c.mode,
            new: c.new,
        })
        .collect();
    let intent = Intent {
        id: "test".into(),
        committed: true,
        audit_from: 0,
        path: "test".into(),
        entries,
    };
    write_intent(dir, &intent).unwrap();
}

/// `ROOT/certs/.intent`.
pub fn intent_path(root: &Path) -> PathBuf {
    super::store::certs_dir(root).join(INTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(committed: bool) -> Intent {
        Intent {
            id: "ab12".into(),
            committed,
            audit_from: 7,
            path: "Security Certificates Server Upload".into(),
            entries: vec![
                Entry {
                    name: "privkey.pem".into(),
                    mode: 0o600,
                    new: Some(b"key\nnew".to_vec()),
                    old: None,
                },
                Entry {
                    name: "generated_csr/server.csr".into(),
                    mode: 0o644,
                    new: None,
                    old: Some(b"csr".to_vec()),
                },
            ],
        }
    }

    #[test]
    fn intent_round_trips() {
        let d = tempfile::tempdir().unwrap();
        write_intent(d.path(), &intent(true)).unwrap();
        let back = read_intent(d.path()).unwrap().unwrap();
        assert_eq!(format!("{back:?}"), format!("{:?}", intent(true)));
        let view = committed_view(d.path());
        assert_eq!(view["privkey.pem"].as_deref(), Some(&b"key\nnew"[..]));
        assert_eq!(view["generated_csr/server.csr"], None);
        write_intent(d.path(), &intent(false)).unwrap();
        assert!(committed_view(d.path()).is_empty());
        fs::write(d.path().join(INTENT), b"junk").unwrap();
        assert!(read_intent(d.path()).is_err());
        // A planted intent naming a file outside the store is not an intent.
        let mut outside = intent(true);
        outside.entries[0].name = "../config/xconf.txt".into();
        write_intent(d.path(), &outside).unwrap();
        assert!(read_intent(d.path()).is_err());
        outside.entries[0].name = "/etc/passwd".into();
        write_intent(d.path(), &outside).unwrap();
        assert!(read_intent(d.path()).is_err());
        // Never read through a link (every pair load reads the intent).
        fs::remove_file(d.path().join(INTENT)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.path().join(INTENT)).unwrap();
        assert!(read_intent(d.path()).is_err());
    }

    /// Records written before a kill that came ahead of the commit point are marked once, and
    /// `xHistory` no longer shows them; a change that landed keeps its record.
    #[test]
    fn records_of_a_change_that_never_landed_are_marked_rolled_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = super::super::store::certs_dir(root.path());
        fs::create_dir_all(&dir).unwrap();
        let store = Store::open(root.path()).unwrap();
        let who = Who {
            user: "admin".into(),
            from: "local".into(),
            session: "1".into(),
        };
        let note = |path: &str| Note {
            path: path.into(),
            old: "old".into(),
            new: "new".into(),
            result: "applied".into(),
        };
        let files = || vec![FileChange::put("server.pem", b"landed", 0o644)];
        let audit = |n| {
            Some(Audit {
                store: &store,
                who: &who,
                notes: vec![note(n)],
            })
        };
        change(&dir, files(), audit("Security Certificates Server Upload")).unwrap();
        // A writer killed between its records and its commit: prepared intent, records written.
        let mut i = intent(false);
        i.audit_from = fs::metadata(store.audit_path()).unwrap().len();
        write_intent(&dir, &i).unwrap();
        let a = Audit {
            store: &store,
            who: &who,
            notes: vec![note("Security Certificates Client Upload")],
        };
        append_notes(&a, &i.id).unwrap();
        assert_eq!(store.history(10).unwrap().len(), 2);
        assert!(matches!(
            recover(root.path()).unwrap(),
            Some(Recovered::RolledBack(_))
        ));
        let h = store.history(10).unwrap();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].path, "Security Certificates Server Upload");
        let log = fs::read_to_string(store.audit_path()).unwrap();
        assert_eq!(log.matches(CHANGE_ROLLED_BACK).count(), 1, "{log}");
        assert_eq!(fs::read(dir.join("server.pem")).unwrap(), b"landed");
    }

    #[test]
    fn recovery_completes_a_committed_change_and_rolls_back_a_prepared_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = super::super::store::certs_dir(root.path());
        fs::create_dir_all(dir.join("generated_csr")).unwrap();
        fs::write(dir.join("generated_csr/server.csr"), b"csr").unwrap();
        write_intent(&dir, &intent(true)).unwrap();
        let r = recover(root.path()).unwrap();
        assert_eq!(
            r,
            Some(Recovered::Completed(
                "Security Certificates Server Upload".into()
            ))
        );
        assert_eq!(fs::read(dir.join("privkey.pem")).unwrap(), b"key\nnew");
        assert!(!dir.join("generated_csr/server.csr").exists());
        assert!(!pending(&dir));

        fs::write(dir.join("privkey.pem"), b"kept").unwrap();
        write_intent(&dir, &intent(false)).unwrap();
        assert!(matches!(
            recover(root.path()).unwrap(),
            Some(Recovered::RolledBack(_))
        ));
        assert_eq!(fs::read(dir.join("privkey.pem")).unwrap(), b"kept");
        assert_eq!(recover(root.path()).unwrap(), None);
    }
}
