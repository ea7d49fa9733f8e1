//! The line editor's history file: `ROOT/history/<uid>/history.txt`, one line per entry, in a
//! folder the user owns (mode 0700) inside the root's sticky `history/` folder.
//!
//! Every step goes through a file descriptor and never follows a symlink (`O_NOFOLLOW`,
//! `openat` from the folder's descriptor), and the folder and file must belong to the real uid:
//! another user who planted a link or a folder of their own in the shared `history/` folder
//! gets a refused history, not a session that reads or writes where the link points. This room
//! knows files and a uid; what a line means is the editor's.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use nix::unistd::Uid;

/// The history file's name inside the user's folder.
pub const FILE_NAME: &str = "history.txt";

/// The most of a history file that is read back (its tail): a huge file costs a bounded read.
const MAX_READ: u64 = 1 << 20;

/// Why a session runs without its history file; each names the path.
#[derive(Debug)]
#[non_exhaustive]
pub enum HistoryError {
    /// A system call on the path failed (a symlink in the way shows as `ELOOP`/`ENOTDIR`).
    Io {
        path: PathBuf,
        op: &'static str,
        source: Errno,
    },
    /// The folder or file is not the user's own, or not what it should be.
    NotOwn { path: PathBuf, why: String },
}

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistoryError::Io { path, op, source } => {
                write!(f, "cannot {op} {}: {}", path.display(), source.desc())
            }
            HistoryError::NotOwn { path, why } => {
                write!(f, "history {} refused: {why}", path.display())
            }
        }
    }
}

impl std::error::Error for HistoryError {}

/// An open history file, appended to after every line.
#[derive(Debug)]
pub struct History {
    file: File,
    path: PathBuf,
}

/// The folder of `uid`'s history under `root`.
pub fn folder(root: &Path, uid: Uid) -> PathBuf {
    root.join("history").join(uid.to_string())
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(Errno) -> HistoryError + 'a {
    move |source| HistoryError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Checks that `fd` is a `kind` owned by `uid` and not open to others; narrows its mode to
/// `mode` when it is wider (the user's own object, so only the user loses access).
fn check_own(
    fd: &OwnedFd,
    path: &Path,
    uid: Uid,
    kind: SFlag,
    mode: u32,
) -> Result<(), HistoryError> {
    let st = fstat(fd).map_err(io(path, "stat"))?;
    let not_own = |why: String| HistoryError::NotOwn {
        path: path.to_path_buf(),
        why,
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != kind {
        return Err(not_own("not a regular folder or file".into()));
    }
    if st.st_uid != uid.as_raw() {
        return Err(not_own(format!(
            "owned by uid {}, not by this user (uid {uid})",
            st.st_uid
        )));
    }
    if st.st_mode & 0o7777 != mode {
        fchmod(fd, Mode::from_bits_truncate(mode)).map_err(io(path, "chmod"))?;
    }
    Ok(())
}

/// Opens (creating as needed) `uid`'s history under `root`; returns it with the lines it holds,
/// oldest first. `root/history` must exist (the root's preparation makes it).
pub fn open_history(root: &Path, uid: Uid) -> Result<(History, Vec<String>), HistoryError> {
    let base = root.join("history");
    let base_fd = open(
        &base,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io(&base, "open"))?;
    let name = uid.to_string();
    let dir = base.join(&name);
    match mkdirat(&base_fd, name.as_str(), Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(io(&dir, "create")(e)),
    }
    let dir_fd = openat(
        &base_fd,
        name.as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io(&dir, "open"))?;
    check_own(&dir_fd, &dir, uid, SFlag::S_IFDIR, 0o700)?;
    let path = dir.join(FILE_NAME);
    let fd = openat(
        &dir_fd,
        FILE_NAME,
        OFlag::O_RDWR
            | OFlag::O_CREAT
            | OFlag::O_APPEND
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_CLOEXEC,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .map_err(io(&path, "open"))?;
    check_own(&fd, &path, uid, SFlag::S_IFREG, 0o600)?;
    let mut file = File::from(fd);
    let lines = read_tail(&mut file).map_err(|e| HistoryError::Io {
        path: path.clone(),
        op: "read",
        source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })?;
    Ok((History { file, path }, lines))
}

fn read_tail(f: &mut File) -> io::Result<Vec<String>> {
    use std::io::{Seek, SeekFrom};
    let len = f.metadata()?.len();
    let start = len.saturating_sub(MAX_READ);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(MAX_READ).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        // The first line read is probably the end of a longer one.
        lines.remove(0);
    }
    Ok(lines.into_iter().filter(|l| !l.trim().is_empty()).collect())
}

impl History {
    /// Appends one entry (a line break inside it would make two, so none is kept).
    pub fn append(&mut self, line: &str) -> io::Result<()> {
        let mut s: String = line.chars().filter(|&c| c != '\n' && c != '\r').collect();
        s.push('\n');
        self.file.write_all(s.as_bytes())
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("history")).unwrap();
        d
    }

    #[test]
    fn lines_come_back_and_the_folder_is_private() {
        let d = root();
        let uid = nix::unistd::getuid();
        {
            let (mut h, lines) = open_history(d.path(), uid).unwrap();
            assert!(lines.is_empty());
            h.append("xStatus SystemUnit").unwrap();
            h.append("xConfiguration SIP\nTLS").unwrap();
        }
        let (_, lines) = open_history(d.path(), uid).unwrap();
        assert_eq!(lines, ["xStatus SystemUnit", "xConfiguration SIPTLS"]);
        let dir = folder(d.path(), uid);
        let m = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(m & 0o7777, 0o700);
        let m = std::fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o7777, 0o600);
    }

    #[test]
    fn a_planted_folder_link_is_refused_and_its_target_untouched() {
        let d = root();
        let victim = d.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        let uid = nix::unistd::getuid();
        symlink(&victim, folder(d.path(), uid)).unwrap();
        let e = open_history(d.path(), uid).unwrap_err();
        assert!(matches!(e, HistoryError::Io { .. }), "{e}");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    }

    #[test]
    fn a_planted_file_link_is_refused_and_its_target_untouched() {
        let d = root();
        let victim = d.path().join("xconf.txt");
        std::fs::write(&victim, "keep\n").unwrap();
        let uid = nix::unistd::getuid();
        let dir = folder(d.path(), uid);
        std::fs::create_dir(&dir).unwrap();
        symlink(&victim, dir.join(FILE_NAME)).unwrap();
        let e = open_history(d.path(), uid).unwrap_err();
        assert!(e.to_string().contains(FILE_NAME), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    }

    #[test]
    fn a_wide_open_folder_of_ones_own_is_narrowed() {
        let d = root();
        let uid = nix::unistd::getuid();
        let dir = folder(d.path(), uid);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        open_history(d.path(), uid).unwrap();
        let m = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(m & 0o7777, 0o700);
    }
}
