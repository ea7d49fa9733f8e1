//! The agent's logs with limits: a log file that never passes its size (the full file is
//! rotated to `.1`, `.2`, … and the oldest past the count deleted), and the window that lets a
//! few refused handshakes per interval through one by one and sums up the rest in one line.
//! Unauthenticated peers decide how often a refusal happens; they must not decide how much
//! of the disk that holds the configuration the logs take.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `Logging Rotation` and `Logging Refused`, as the generation in force has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Bytes a log may hold.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
    /// Refusals logged one by one per interval.
    pub refused_limit: u64,
    pub refused_interval: Duration,
}

impl Default for LogLimits {
    /// The schema's defaults (16 MiB, 4 files, 100 per 10 s), until the first generation is applied.
    fn default() -> Self {
        LogLimits {
            max_bytes: 16 * 1024 * 1024,
            keep: 4,
            refused_limit: 100,
            refused_interval: Duration::from_secs(10),
        }
    }
}

/// `path.N`.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Shifts `path` to `path.1` (and `.1` to `.2` …), deleting the one past `keep`. Only the last
/// rename must succeed: without it the full log stays in place and the caller would rotate again
/// and again.
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    let _ = std::fs::remove_file(rotated(path, keep));
    for n in (1..keep).rev() {
        let _ = std::fs::rename(rotated(path, n), rotated(path, n + 1));
    }
    std::fs::rename(path, rotated(path, 1))
}

/// The longest prefix of `bytes` that ends a line and fits in `room` bytes (0 when none does).
fn fitting(bytes: &[u8], room: u64) -> usize {
    let cap = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
    bytes[..cap]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

/// Appends whole lines to `path`, rotating first whenever the next line would take the file
/// past `limits.max_bytes`. The file is opened per call (a removed log is created again) with
/// `O_NOFOLLOW`: a link planted in place of a log must not make the agent write elsewhere.
pub fn append(path: &Path, mut bytes: &[u8], limits: &LogLimits) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            // Non-blocking: a FIFO planted in place of a log fails the open (no reader) instead
            // of stopping the agent; anything but a regular file is refused below.
            .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
            .open(path)
            .and_then(|f| {
                if f.metadata()?.is_file() {
                    Ok(f)
                } else {
                    Err(std::io::Error::other(format!(
                        "{} is not a regular file",
                        path.display()
                    )))
                }
            })
    };
    while !bytes.is_empty() {
        let mut f = open()?;
        let size = f.metadata()?.len();
        let mut n = fitting(bytes, limits.max_bytes.saturating_sub(size));
        if n == 0 {
            if size > 0 {
                drop(f);
                rotate(path, limits.keep)?;
                continue;
            }
            // One line longer than a whole log: it goes alone into a file of its own.
            n = bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| i + 1);
        }
        f.write_all(&bytes[..n])?;
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Refusals of the current interval.
#[derive(Debug)]
pub struct RefusedWindow {
    start: Instant,
    logged: u64,
    suppressed: u64,
    last: String,
}

impl Default for RefusedWindow {
    fn default() -> Self {
        RefusedWindow {
            start: Instant::now(),
            logged: 0,
            suppressed: 0,
            last: String::new(),
        }
    }
}

impl RefusedWindow {
    /// Counts one refusal; true when it may be logged one by one. `what` (peer and reason)
    /// is kept for the summary line.
    pub fn admit(&mut self, limits: &LogLimits, what: &str) -> bool {
        if self.logged < limits.refused_limit {
            self.logged += 1;
            return true;
        }
        self.suppressed += 1;
        self.last.clear();
        self.last.push_str(what);
        false
    }

    /// The summary of a finished interval (or of the one in progress when `now` is forced, at
    /// shutdown), once; the next interval starts.
    pub fn summary(&mut self, limits: &LogLimits, force: bool) -> Option<String> {
        let elapsed = self.start.elapsed();
        if !force && elapsed < limits.refused_interval {
            return None;
        }
        let out = (self.suppressed > 0).then(|| {
            format!(
                "{} more refused handshakes in the last {} s were not logged one by one (Logging Refused Limit {} per {} s); the last: {}",
                self.suppressed,
                elapsed.as_secs().max(1),
                limits.refused_limit,
                limits.refused_interval.as_secs(),
                self.last
            )
        });
        *self = RefusedWindow::default();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO in place of a log fails the append at once (it used to wait for a reader), and a
    /// rotation that cannot move the full log is an error, not an endless loop.
    #[test]
    fn a_fifo_or_a_stuck_rotation_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("events.log");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(append(&p, b"line\n", &LogLimits::default()).is_err());
        std::fs::remove_file(&p).unwrap();
        let limits = LogLimits {
            max_bytes: 10,
            keep: 1,
            ..LogLimits::default()
        };
        append(&p, b"0123456789\n", &limits).unwrap();
        // `.1` a folder with something in it: renaming the full log onto it fails.
        std::fs::create_dir_all(rotated(&p, 1).join("x")).unwrap();
        assert!(append(&p, b"more\n", &limits).is_err());
    }

    #[test]
    fn a_log_never_passes_its_size_and_keeps_count_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("events.log");
        let limits = LogLimits {
            max_bytes: 1000,
            keep: 2,
            ..LogLimits::default()
        };
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..10 {
            append(&p, line.repeat(7).as_bytes(), &limits).unwrap();
        }
        for f in [p.clone(), rotated(&p, 1), rotated(&p, 2)] {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len <= 1000 && len % 100 == 0, "{} holds {len}", f.display());
        }
        assert!(!rotated(&p, 3).exists());
    }

    #[test]
    fn refusals_past_the_limit_are_summed_up() {
        let limits = LogLimits {
            refused_limit: 2,
            ..LogLimits::default()
        };
        let mut w = RefusedWindow::default();
        let admitted = (0..10)
            .filter(|i| w.admit(&limits, &format!("peer {i}")))
            .count();
        assert_eq!(admitted, 2);
        assert_eq!(w.summary(&limits, false), None, "the interval is not over");
        let s = w.summary(&limits, true).unwrap();
        assert!(s.starts_with("8 more refused handshakes"), "{s}");
        assert!(s.ends_with("the last: peer 9"), "{s}");
        assert_eq!(w.summary(&limits, true), None);
    }
}
