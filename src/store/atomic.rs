//! The one way this project replaces a file: a temp file created beside the target with
//! `O_CREAT|O_EXCL` (so a planted file or symlink is never opened, let alone followed) under an
//! unpredictable name, given its mode explicitly (independent of the umask), written, fsynced,
//! renamed over the target (a symlink at the target is replaced, never followed) and the folder
//! fsynced. Also the clean-up of temp files a killed writer left behind, run at every start.
//!
//! Knows only the file system: no configuration, no certificates, no terminal.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The marker every temp file name holds: `.NAME.tmp.PID.RANDOM`.
const TMP_MARK: &str = ".tmp.";

/// Whether the rename is followed by fsyncs (a hint file may skip them: losing it only costs
/// the work it would have saved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// File and folder fsynced: the new content survives a power loss once this returns.
    Synced,
    /// Renamed only.
    Unsynced,
}

/// The temp name for `name`: hidden, with the writer's pid (so the clean-up can tell a live
/// writer's file from a dead one's) and 64 random bits (so nobody can plant it in advance).
pub fn temp_name(name: &str) -> String {
    let mut r = [0u8; 8];
    if getrandom::fill(&mut r).is_err() {
        // No entropy source: the exclusive create still refuses a planted name.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        r = t.to_le_bytes();
    }
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    let dot = if name.starts_with('.') { "" } else { "." };
    format!("{dot}{name}{TMP_MARK}{}.{hex}", std::process::id())
}

/// Creates a new temp file for `dest` in its folder (never an existing one), with exactly `mode`,
/// holding `bytes`; returns its path. On failure nothing is left behind.
pub fn write_temp(dest: &Path, bytes: &[u8], mode: u32, d: Durability) -> io::Result<PathBuf> {
    let dir = parent(dest);
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut last = None;
    // A clash of 64 random bits is a planted file: try a few names, then give up.
    for _ in 0..4 {
        let tmp = dir.join(temp_name(name));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp);
        let mut f = match f {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let res = (|| {
            // The umask may have narrowed the mode; a key stays 0600 and a certificate 0644.
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            f.write_all(bytes)?;
            if d == Durability::Synced {
                f.sync_all()?;
            }
            Ok(())
        })();
        return match res {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        };
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot create a temp file")))
}

/// Replaces `dest` with `bytes` (see the module docs).
pub fn replace(dest: &Path, bytes: &[u8], mode: u32, d: Durability) -> io::Result<()> {
    let tmp = write_temp(dest, bytes, mode, d)?;
    if let Err(e) = fs::rename(&tmp, dest) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if d == Durability::Synced {
        sync_dir(parent(dest))?;
    }
    Ok(())
}

/// Removes `dest` (a missing one is fine) and fsyncs its folder.
pub fn remove(dest: &Path) -> io::Result<()> {
    match fs::remove_file(dest) {
        Ok(()) => sync_dir(parent(dest)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Fsyncs a folder, making the renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The pid in a temp file name of ours (`…​.tmp.PID` or `…​.tmp.PID.SUFFIX`), if it is one.
fn temp_writer(name: &str) -> Option<u32> {
    let at = name.rfind(TMP_MARK)?;
    let rest = &name[at + TMP_MARK.len()..];
    let pid = rest.split('.').next()?;
    let suffix_ok = rest[pid.len()..]
        .trim_start_matches('.')
        .chars()
        .all(|c| c.is_ascii_alphanumeric());
    (name.starts_with('.') && suffix_ok && !pid.is_empty())
        .then(|| pid.parse().ok())
        .flatten()
}

/// Removes the temp files in `dir` whose writer is no longer running (a writer killed between
/// its create and its rename; some hold copies of private keys). A live writer's file is left
/// alone, and so is anything that is not a regular file. Returns how many were removed.
pub fn clean_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temp_writer) else {
            continue;
        };
        let regular = e.file_type().is_ok_and(|t| t.is_file());
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if regular && !alive && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unpredictable_and_recognised() {
        let a = temp_name("xconf.txt");
        let b = temp_name("xconf.txt");
        assert_ne!(a, b);
        assert!(a.starts_with(".xconf.txt.tmp."), "{a}");
        assert_eq!(temp_writer(&a), Some(std::process::id()));
        assert!(temp_name(".audit.tail").starts_with(".audit.tail.tmp."));
        // Older writers' names are leftovers too.
        assert_eq!(temp_writer(".privkey.pem.tmp.77.3"), Some(77));
        assert_eq!(temp_writer(".xconf.txt.tmp.77"), Some(77));
        assert_eq!(temp_writer("xconf.txt"), None);
        assert_eq!(temp_writer(".x.tmp.notapid"), None);
    }

    #[test]
    fn replace_never_follows_a_symlink_and_sets_the_mode() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let dest = d.path().join("out.txt");
        std::os::unix::fs::symlink(&victim, &dest).unwrap();
        replace(&dest, b"new", 0o600, Durability::Synced).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        let m = fs::symlink_metadata(&dest).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn clean_removes_dead_writers_files_only() {
        let d = tempfile::tempdir().unwrap();
        // pid 0 is never a user process; ours is alive.
        let dead = d.path().join(".privkey.pem.tmp.0.abcd");
        let live = d.path().join(temp_name("privkey.pem"));
        let other = d.path().join("server.pem");
        for p in [&dead, &live, &other] {
            fs::write(p, b"x").unwrap();
        }
        std::os::unix::fs::symlink(&other, d.path().join(".link.tmp.0")).unwrap();
        assert_eq!(clean_temps(d.path()), 1);
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
        assert!(fs::symlink_metadata(d.path().join(".link.tmp.0")).is_ok());
    }
}
