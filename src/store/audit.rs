//! `audit.log` (JSON lines) and its side file `.audit.tail`, which says which generation the
//! last writer claimed and where its records end, so the next writer finds the highest claimed
//! generation by reading only what was appended since, not the whole log. Certificate changes
//! tag their records with the id of their change (`change`); the marker [`CHANGE_ROLLED_BACK`]
//! with that id cancels them, as [`ROLLED_BACK`] cancels a generation's.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{io_err, StoreError};

/// One line of `audit.log` (JSON lines).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub time: String,
    pub generation: u64,
    pub user: String,
    pub from: String,
    pub session: String,
    pub path: String,
    pub old: String,
    pub new: String,
    /// `applied`, or `refused: <why>` for an attempt a role did not allow.
    #[serde(default = "applied")]
    pub result: String,
    /// The id of the certificate change this record belongs to (several files changed as one,
    /// see `certs::files::journal`); empty (and not written) for every other record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub change: String,
}

/// The `result` of a marker saying a generation's records never reached `xconf.txt`.
pub const ROLLED_BACK: &str = "rolled back: the writer stopped before its rename";

/// The `result` of a marker saying the certificate change with the marker's `change` id never
/// landed: its records were written first, then the writer stopped (or failed) before the files
/// were replaced, and the next start rolled it back.
pub const CHANGE_ROLLED_BACK: &str = "rolled back: the certificate change did not land";

fn applied() -> String {
    "applied".into()
}

/// Appends records and syncs them: for writers outside this room (certificate changes) that
/// must have their records durable before they touch anything.
pub fn append_records(path: &Path, recs: &[AuditRecord]) -> Result<u64, StoreError> {
    append(path, recs)
}

/// The records from byte `start` of the log on (a certificate change's own records, written
/// after that point), empty when the log is missing.
pub fn records_from(path: &Path, start: u64) -> Vec<AuditRecord> {
    File::open(path)
        .ok()
        .and_then(|mut f| read_from(&mut f, start))
        .map(|b| parse_lines(&b))
        .unwrap_or_default()
}

/// Appends records and syncs them; returns the offset just past them.
pub(super) fn append(path: &Path, recs: &[AuditRecord]) -> Result<u64, StoreError> {
    let mut buf = String::new();
    for r in recs {
        if let Ok(s) = serde_json::to_string(r) {
            buf.push_str(&s);
            buf.push('\n');
        }
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path, "open"))?;
    f.write_all(buf.as_bytes())
        .map_err(io_err(path, "append to"))?;
    f.sync_data().map_err(io_err(path, "fsync"))?;
    // With O_APPEND the offset is the end of this write, even when a note landed just before.
    f.stream_position().map_err(io_err(path, "seek in"))
}

fn parse_lines(bytes: &[u8]) -> Vec<AuditRecord> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<AuditRecord>(l).ok())
        .collect()
}

fn read_from(f: &mut File, start: u64) -> Option<Vec<u8>> {
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// Records the generation a writer claimed and the end of its records. Not synced: after a power
/// loss it may be stale or torn, which [`claimed_from_tail`] detects (it then reads further back).
pub(super) fn write_tail(tail: &Path, generation: u64, end: u64) -> io::Result<()> {
    super::write_side(tail, &format!("{generation} {end}\n"))
}

/// The highest generation claimed by an `applied` record, from the side file and the records
/// appended after the point it names. `None` when the side file is missing or does not match
/// the log (then the caller scans).
fn claimed_from_tail(f: &mut File, len: u64, tail: &Path) -> Option<u64> {
    let text = fs::read_to_string(tail).ok()?;
    let mut it = text.split_whitespace();
    let generation: u64 = it.next()?.parse().ok()?;
    let end: u64 = it.next()?.parse().ok()?;
    if end > len || end == 0 {
        return None;
    }
    // The record just before `end` must be the claimed generation's, applied.
    let back = end.min(64 * 1024);
    let before = read_from(f, end - back)?;
    let before = &before[..back as usize];
    let body = before.strip_suffix(b"\n")?;
    let last = body.rsplit(|&b| b == b'\n').next()?;
    let rec: AuditRecord = serde_json::from_slice(last).ok()?;
    if rec.generation != generation || rec.result != "applied" {
        return None;
    }
    let after = read_from(f, end)?;
    let newer = parse_lines(&after)
        .iter()
        .filter(|r| r.result == "applied")
        .map(|r| r.generation)
        .max();
    Some(newer.map_or(generation, |n| n.max(generation)))
}

/// The highest generation of an `applied` record. Notes (certificate changes, a migration) are
/// `applied` too, stamped with the generation current when they were made, so they may follow
/// a crashed writer's records: the highest one counts, not the last. Read from the side file
/// and what follows it; without a usable side file, from the tail of the log, or the whole log
/// when the tail does not reach back before the current generation (`current`), where a
/// crashed writer's records could hide.
pub(super) fn last_applied_generation(log: &Path, tail: &Path, current: u64) -> Option<u64> {
    let mut f = File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    if let Some(found) = claimed_from_tail(&mut f, len, tail) {
        return Some(found);
    }
    let mut start = len.saturating_sub(64 * 1024);
    loop {
        let recs = parse_lines(&read_from(&mut f, start)?);
        if start > 0 && !recs.iter().any(|r| r.generation < current) {
            start = 0;
            continue;
        }
        return recs
            .iter()
            .filter(|r| r.result == "applied")
            .map(|r| r.generation)
            .max();
    }
}

/// The audit records of changes that reached generation `current`, newest last.
pub(super) fn history(
    log: &Path,
    current: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let bytes = match fs::read(log) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(log, "read")(e)),
    };
    let all = parse_lines(&bytes);
    let rolled_back: std::collections::HashSet<u64> = all
        .iter()
        .filter(|r| r.result == ROLLED_BACK)
        .map(|r| r.generation)
        .collect();
    let dropped_changes: std::collections::HashSet<String> = all
        .iter()
        .filter(|r| r.result == CHANGE_ROLLED_BACK)
        .map(|r| r.change.clone())
        .collect();
    let mut recs: Vec<AuditRecord> = all
        .into_iter()
        .filter(|r| r.result != ROLLED_BACK && r.result != CHANGE_ROLLED_BACK)
        .filter(|r| r.change.is_empty() || !dropped_changes.contains(&r.change))
        .filter(|r| {
            r.result != "applied"
                || (r.generation <= current && !rolled_back.contains(&r.generation))
        })
        .collect();
    if recs.len() > limit {
        recs.drain(..recs.len() - limit);
    }
    Ok(recs)
}

/// How many refused attempts of one user are written whole per [`REFUSED_WINDOW`]; the rest of
/// the window's attempts become one counted record.
pub const REFUSED_BURST: u32 = 10;
/// The interval of [`REFUSED_BURST`], in seconds.
pub const REFUSED_WINDOW: u64 = 60;
/// How much of the log's end is read to count a user's recent refusals made by other processes
/// (bounded: the cost does not grow with the log).
const REFUSED_TAIL: u64 = 32 * 1024;

/// Rate limit of refused-attempt records, per user: within a window the first
/// [`REFUSED_BURST`] records (counting those other processes just wrote, from the log's tail)
/// are appended whole; later ones are only counted, and the count is appended as one record
/// (`refused: <why> (N more attempts since <time>)`) when the user's next attempt falls in a new
/// window or the limiter is dropped (the session ends). So a read-only user cannot grow the log,
/// nor the work of the next admin write, faster than a few records a minute per session, and
/// no attempt goes uncounted.
#[derive(Debug, Default)]
pub struct RefusedLimiter {
    path: Option<std::path::PathBuf>,
    users: std::collections::HashMap<String, Window>,
}

#[derive(Debug)]
struct Window {
    start: u64,
    written: u32,
    suppressed: u64,
    /// The first attempt counted and not written (its record stands for all of them).
    first: Option<AuditRecord>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RefusedLimiter {
    pub fn new(path: &Path) -> RefusedLimiter {
        RefusedLimiter {
            path: Some(path.to_path_buf()),
            users: Default::default(),
        }
    }

    /// Records one refused attempt (`rec.result` starts with `refused`), written or counted.
    pub fn refused(&mut self, rec: AuditRecord) -> Result<(), StoreError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let now = unix_now();
        let fresh = self
            .users
            .get(&rec.user)
            .is_none_or(|w| now >= w.start + REFUSED_WINDOW);
        if fresh {
            if let Some(old) = self.users.remove(&rec.user) {
                flush_window(&path, old)?;
            }
            let recent = recent_refusals(&path, &rec.user, now.saturating_sub(REFUSED_WINDOW));
            self.users.insert(
                rec.user.clone(),
                Window {
                    start: now,
                    written: recent,
                    suppressed: 0,
                    first: None,
                },
            );
        }
        let Some(w) = self.users.get_mut(&rec.user) else {
            return Ok(());
        };
        if w.written < REFUSED_BURST {
            w.written += 1;
            return append(&path, &[rec]).map(drop);
        }
        w.suppressed += 1;
        w.first.get_or_insert(rec);
        Ok(())
    }

    /// Appends the counted records of every window that has attempts not yet written.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        for (_, w) in self.users.drain() {
            flush_window(&path, w)?;
        }
        Ok(())
    }
}

impl Drop for RefusedLimiter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn flush_window(path: &Path, w: Window) -> Result<(), StoreError> {
    let Some(mut rec) = w.first else {
        return Ok(());
    };
    rec.result = format!(
        "{} ({} attempts counted, not written, since {}; at most {REFUSED_BURST} written per {REFUSED_WINDOW} s)",
        rec.result, w.suppressed, rec.time
    );
    append(path, &[rec]).map(drop)
}

/// Refused records of `user` in the log's last [`REFUSED_TAIL`] bytes stamped at or after
/// `since` (Unix seconds).
fn recent_refusals(path: &Path, user: &str, since: u64) -> u32 {
    let Ok(mut f) = File::open(path) else {
        return 0;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let Some(bytes) = read_from(&mut f, len.saturating_sub(REFUSED_TAIL)) else {
        return 0;
    };
    // Same format as the records' (`now_rfc3339`), so the strings compare as the times do.
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let since = i64::try_from(since)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default();
    let n = parse_lines(&bytes)
        .iter()
        .filter(|r| r.user == user && r.result.starts_with("refused"))
        .filter(|r| r.time.as_str() >= since.as_str())
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod refused_tests {
    use super::*;

    fn rec(user: &str) -> AuditRecord {
        AuditRecord {
            time: super::super::now_rfc3339(),
            generation: 1,
            user: user.into(),
            from: "local".into(),
            session: "1".into(),
            path: "SIP TLS Port".into(),
            old: String::new(),
            new: "5070".into(),
            result: "refused: read-only role".into(),
            change: String::new(),
        }
    }

    fn lines(p: &Path) -> Vec<AuditRecord> {
        parse_lines(&fs::read(p).unwrap_or_default())
    }

    #[test]
    fn a_flood_is_a_burst_and_one_counted_record_and_other_processes_see_it() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("audit.log");
        let mut l = RefusedLimiter::new(&log);
        for _ in 0..20_000 {
            l.refused(rec("mallory")).unwrap();
        }
        l.refused(rec("bob")).unwrap();
        assert_eq!(lines(&log).len(), REFUSED_BURST as usize + 1);
        drop(l);
        let all = lines(&log);
        assert_eq!(all.len(), REFUSED_BURST as usize + 2);
        let counted = all.last().unwrap();
        assert_eq!(counted.user, "mallory");
        assert!(
            counted
                .result
                .starts_with("refused: read-only role (19990 attempts counted"),
            "{}",
            counted.result
        );
        // A new process in the same minute: the burst is spent, its attempts are counted.
        let mut again = RefusedLimiter::new(&log);
        again.refused(rec("mallory")).unwrap();
        assert_eq!(lines(&log).len(), REFUSED_BURST as usize + 2);
        drop(again);
        let all = lines(&log);
        assert!(all.last().unwrap().result.contains("(1 attempts counted"));
    }
}
