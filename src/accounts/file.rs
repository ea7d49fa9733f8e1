//! `ROOT/config/accounts`: JSON, mode 0600, read through [`crate::bounded`] (a regular file of
//! at most 64 KiB, never through a link) and replaced whole with
//! [`crate::store::atomic::replace`] under the lock file `config/.accounts.lock`. A looser
//! mode found on load is narrowed to 0600 before anything is read.
//!
//! Each account keeps its PHC hash and, when it is locked out, until when (ms since the
//! epoch): a locked-out login stays locked across an agent restart.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Access, AccountError};
use crate::bounded::{self, FileKind};
use crate::store::atomic;

/// The file's mode: the owner only.
pub const MODE: u32 = 0o600;

/// One account as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stored {
    pub name: String,
    pub access: Access,
    #[serde(default = "yes")]
    pub web: bool,
    #[serde(default = "yes")]
    pub api: bool,
    /// The argon2id PHC string.
    pub hash: String,
    /// End of a lockout after failed logins, ms since the epoch; 0 when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub locked_until: u64,
}

fn yes() -> bool {
    true
}

// serde's skip_serializing_if passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Serialize, Deserialize)]
struct Doc {
    version: u32,
    accounts: Vec<Stored>,
}

/// What identifies one version of the file (every write is a rename: a new inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

/// The stamp of the file now; `None` when there is none.
pub fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

/// Reads the accounts (none when the file is missing), narrowing a looser mode first.
pub fn load(path: &Path) -> Result<Vec<Stored>, AccountError> {
    let (mut f, _) = match bounded::open(path, FileKind::Accounts) {
        Ok(x) => x,
        Err(e) if e.is_missing() => return Ok(Vec::new()),
        Err(e) => return Err(AccountError::Read(e)),
    };
    narrow_mode(&f, path)?;
    let limit = FileKind::Accounts.limit().bytes;
    let mut buf = Vec::new();
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| AccountError::Io {
            path: path.to_path_buf(),
            op: "read",
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(AccountError::Read(bounded::ReadError::TooLarge {
            path: path.to_path_buf(),
            kind: FileKind::Accounts,
            size: buf.len() as u64,
        }));
    }
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let doc: Doc = serde_json::from_slice(&buf).map_err(|e| AccountError::Corrupt {
        path: path.to_path_buf(),
        why: format!("line {} column {}: {}", e.line(), e.column(), e),
    })?;
    Ok(doc.accounts)
}

/// A group- or world-accessible file is made the owner's only before it is read.
fn narrow_mode(f: &File, path: &Path) -> Result<(), AccountError> {
    let io = |op: &'static str| {
        move |source| AccountError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    };
    let mode = f.metadata().map_err(io("stat"))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(MODE))
            .map_err(io("narrow the mode (it was too open) of"))?;
    }
    Ok(())
}

/// Replaces the file with `accounts`, mode 0600, durable when this returns.
pub fn save(path: &Path, accounts: &[Stored]) -> Result<(), AccountError> {
    let doc = Doc {
        version: 1,
        accounts: accounts.to_vec(),
    };
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| AccountError::Corrupt {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    text.push('\n');
    atomic::replace(path, text.as_bytes(), MODE, atomic::Durability::Synced).map_err(|source| {
        AccountError::Io {
            path: path.to_path_buf(),
            op: "write",
            source,
        }
    })
}

/// The lock every writer of the file holds (released when dropped).
pub fn lock(path: &Path) -> Result<File, AccountError> {
    let lp = lock_path(path);
    let io = |op: &'static str| {
        let lp = lp.clone();
        move |source| AccountError::Io {
            path: lp,
            op,
            source,
        }
    };
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lp)
        .map_err(io("open"))?;
    f.lock().map_err(io("lock"))?;
    Ok(f)
}

fn lock_path(path: &Path) -> PathBuf {
    path.with_file_name(".accounts.lock")
}
