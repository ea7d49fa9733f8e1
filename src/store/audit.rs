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
