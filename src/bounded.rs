//! Bounded, typed reads of the files the shell and the agent take in: regular files only, at
//! most the limit of their kind, refused with an error that names the file. One table
//! ([`LIMITS`]) holds every limit; the `??` help of the settings and commands that take files
//! names the same numbers (a test holds the two together).
//!
//! A file is opened non-blocking (a FIFO in place of `ca.pem` must not hang a reload), checked
//! with `fstat` on the open descriptor (no window between the check and the read), and read
//! through `take(limit + 1)` so a file that grows while it is read cannot get past the limit.
//! Kinds whose files this program writes itself (the configuration, its logs) are opened with
//! `O_NOFOLLOW`: a symbolic link there is planted, never meant. Certificate files may be links
//! (an ACME client's `live/` folder); their target is checked like the file itself.
//!
//! This room is at the bottom of the layers: it knows no schema, no certificate and no store.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a file is, for its limit and whether a symbolic link may lead to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `config/xconf.txt`.
    Config,
    /// `certs/ca.pem`, or a file given to `CA Add File:`.
    CaList,
    /// `certs/client-ca.crl`, `certs/policy-services.crl`, or a file given to `CRL Add File:`.
    Crl,
    /// A certificate (chain) file of a store, or `CertificateFile:` of an upload.
    Certificate,
    /// A private key file of a store, or `KeyFile:` of an upload.
    Key,
    /// `status/agent.json`, the agent's status snapshot.
    Snapshot,
    /// `status/events.log`, `status/handshakes.log`: only a tail of them is ever read.
    Log,
    /// `status/probes.json`, the last partner probe per address.
    Probes,
    /// `certs/.intent`, a certificate change in flight (new and old contents of its files).
    Intent,
    /// `config/accounts`, the local administrator accounts (argon2id hashes, mode 0600).
    Accounts,
}

/// One row of the table: the kind, its limit, whether a link may lead to it, and its name.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub kind: FileKind,
    pub bytes: u64,
    /// A symbolic link is followed and its target checked; else the link itself is refused.
    pub follow: bool,
    /// What the file is, in the words of error messages.
    pub what: &'static str,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Every limit. A 1,000-zone `xconf.txt` is 380 KB; a few hundred CAs are 1 MB of PEM; a
/// public CA's CRL can reach tens of MB; a status snapshot of 1,000 zones is about 1 MB.
pub const LIMITS: &[Limit] = &[
    Limit {
        kind: FileKind::Config,
        bytes: 16 * MIB,
        follow: false,
        what: "configuration file",
    },
    Limit {
        kind: FileKind::CaList,
        bytes: 8 * MIB,
        follow: true,
        what: "trusted CA list",
    },
    Limit {
        kind: FileKind::Crl,
        bytes: 64 * MIB,
        follow: true,
        what: "CRL file",
    },
    Limit {
        kind: FileKind::Certificate,
        bytes: MIB,
        follow: true,
        what: "certificate file",
    },
    Limit {
        kind: FileKind::Key,
        bytes: 64 * KIB,
        follow: true,
        what: "private key file",
    },
    Limit {
        kind: FileKind::Snapshot,
        bytes: 64 * MIB,
        follow: false,
        what: "status snapshot",
    },
    Limit {
        kind: FileKind::Log,
        bytes: MIB,
        follow: false,
        what: "log tail",
    },
    Limit {
        kind: FileKind::Probes,
        bytes: MIB,
        follow: false,
        what: "probe record file",
    },
    Limit {
        kind: FileKind::Intent,
        bytes: 40 * MIB,
        follow: false,
        what: "certificate change intent",
    },
    // 15 accounts of ~200 bytes each; the limit leaves room for a hand-edited file.
    Limit {
        kind: FileKind::Accounts,
        bytes: 64 * KIB,
        follow: false,
        what: "accounts file",
    },
];

impl FileKind {
    /// This kind's row of [`LIMITS`].
    pub fn limit(self) -> &'static Limit {
        LIMITS.iter().find(|l| l.kind == self).unwrap_or(&LIMITS[0])
    }
}

/// A byte count as the help text writes it: `8 MiB`, `64 KiB`, `100 bytes`.
pub fn human(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else if bytes >= 10 * MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Why a file was not read. Every message names the file.
#[derive(Debug)]
pub enum ReadError {
    /// A symbolic link where this program only ever writes regular files.
    Symlink { path: PathBuf, kind: FileKind },
    /// Not a regular file: a FIFO, a device, a folder or a socket (`what`), reached through a
    /// link to `target` when there was one.
    NotRegular {
        path: PathBuf,
        what: &'static str,
        target: Option<PathBuf>,
    },
    /// Larger than the kind's limit (`size` is at least what was seen).
    TooLarge {
        path: PathBuf,
        kind: FileKind,
        size: u64,
    },
    /// Opening or reading failed otherwise (a missing file is `Io` with `NotFound`: callers
    /// that treat absence as "empty" ask [`ReadError::is_missing`]).
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

impl ReadError {
    /// The file at fault.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Symlink { path, .. }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::Io { path, .. } => path,
        }
    }

    /// What is wrong, without the file's name (for callers whose message names it already).
    pub fn reason(&self) -> String {
        match self {
            ReadError::Symlink { kind, .. } => format!(
                "is a symbolic link; a {} is read only as a regular file, never through a link",
                kind.limit().what
            ),
            ReadError::NotRegular { what, target, .. } => {
                let via = target
                    .as_ref()
                    .map(|t| format!(" (a link to {})", t.display()))
                    .unwrap_or_default();
                format!("is {what}{via}, not a regular file; only regular files are read")
            }
            ReadError::TooLarge { kind, size, .. } => {
                let l = kind.limit();
                format!(
                    "is larger than {} (at least {size} bytes), the limit for a {}",
                    human(l.bytes),
                    l.what
                )
            }
            ReadError::Io { op, source, .. } => format!("{op} failed: {source}"),
        }
    }

    /// Whether the file is simply absent (callers often treat that as "empty").
    pub fn is_missing(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The shape of every other I/O error of this program.
            ReadError::Io { path, op, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            _ => write!(f, "{} {}", self.path().display(), self.reason()),
        }
    }
}

impl std::error::Error for ReadError {}

fn type_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for a bounded read: non-blocking, `O_NOFOLLOW` unless the kind follows links,
/// and only when the open descriptor is a regular file. Returns it with its size.
pub fn open(path: &Path, kind: FileKind) -> Result<(File, u64), ReadError> {
    let limit = kind.limit();
    let mut flags = nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC;
    if !limit.follow {
        flags |= nix::fcntl::OFlag::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|e| open_error(path, kind, e))?;
    let meta = file.metadata().map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        op: "stat",
        source,
    })?;
    if !meta.file_type().is_file() {
        let target = std::fs::symlink_metadata(path)
            .ok()
            .filter(|m| m.file_type().is_symlink())
            .and_then(|_| std::fs::read_link(path).ok());
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            what: type_name(meta.file_type()),
            target,
        });
    }
    Ok((file, meta.len()))
}

fn open_error(path: &Path, kind: FileKind, e: std::io::Error) -> ReadError {
    let path = path.to_path_buf();
    // O_NOFOLLOW on a link fails with ELOOP.
    if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32)
        && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return ReadError::Symlink { path, kind };
    }
    ReadError::Io {
        path,
        op: "read",
        source: e,
    }
}

/// The whole file, at most its kind's limit.
pub fn read(path: &Path, kind: FileKind) -> Result<Vec<u8>, ReadError> {
    let limit = kind.limit().bytes;
    let (file, size) = open(path, kind)?;
    let too_large = |size| ReadError::TooLarge {
        path: path.to_path_buf(),
        kind,
        size,
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            op: "read",
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(too_large(buf.len() as u64));
    }
    Ok(buf)
}

/// [`read`], with a missing file as `None`.
pub fn read_opt(path: &Path, kind: FileKind) -> Result<Option<Vec<u8>>, ReadError> {
    match read(path, kind) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The last `max` bytes of a file (at most its kind's limit), starting at a line boundary when
/// the file is longer: the bundle's logs never load a whole log. A missing file is empty.
pub fn read_tail(path: &Path, kind: FileKind, max: u64) -> Result<Vec<u8>, ReadError> {
    let max = max.min(kind.limit().bytes);
    let (mut file, size) = match open(path, kind) {
        Ok(f) => f,
        Err(e) if e.is_missing() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let io = |op| {
        move |source| ReadError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    };
    let start = size.saturating_sub(max);
    file.seek(SeekFrom::Start(start)).map_err(io("seek"))?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).map_err(io("read"))?;
    if start > 0 {
        // The first line is cut; drop it.
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                buf.drain(..=i);
            }
            None => buf.clear(),
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row() {
        for k in [
            FileKind::Config,
            FileKind::CaList,
            FileKind::Crl,
            FileKind::Certificate,
            FileKind::Key,
            FileKind::Snapshot,
            FileKind::Log,
            FileKind::Probes,
            FileKind::Intent,
            FileKind::Accounts,
        ] {
            assert_eq!(LIMITS.iter().filter(|l| l.kind == k).count(), 1, "{k:?}");
        }
        assert_eq!(human(8 * MIB), "8 MiB");
        assert_eq!(human(64 * KIB), "64 KiB");
    }

    #[test]
    fn fifo_device_folder_link_and_size_are_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("ca.pem");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read(&fifo, FileKind::CaList).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular { what: "a FIFO", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("ca.pem"), "{e}");

        let zero = d.path().join("zero.pem");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read(&zero, FileKind::CaList).unwrap_err();
        assert!(e.to_string().contains("a link to /dev/zero"), "{e}");
        let e = read(&zero, FileKind::Config).unwrap_err();
        assert!(matches!(e, ReadError::Symlink { .. }), "{e}");

        let e = read(d.path(), FileKind::Certificate).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    what: "a folder",
                    ..
                }
            ),
            "{e}"
        );

        let big = d.path().join("big.key");
        std::fs::write(&big, vec![b'A'; 64 * 1024 + 1]).unwrap();
        let e = read(&big, FileKind::Key).unwrap_err();
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");

        let missing = read_opt(&d.path().join("nope"), FileKind::Crl).unwrap();
        assert!(missing.is_none());
    }

    #[test]
    fn tail_starts_at_a_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("events.log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &text).unwrap();
        let t = read_tail(&p, FileKind::Log, 100).unwrap();
        let t = String::from_utf8(t).unwrap();
        assert!(t.ends_with("line 999\n"), "{t}");
        assert!(t.starts_with("line "), "{t}");
        assert!(t.len() <= 100);
        assert_eq!(
            read_tail(&p, FileKind::Log, 1 << 20).unwrap(),
            text.as_bytes()
        );
    }
}
