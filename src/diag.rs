//! The diagnostic bundle: what support asks for, in one `.tar.gz`, never a private key. File names
//! follow the product: `<kind>_<host>_<YYYY-MM-DD_HH_MM_SS>.<ext>`. The handshake log answers
//! "which certificate went out, and why did the zone fail?" without a packet capture.

// Input from a user, a file or a peer is never unwrapped here: it gets an error value.
#![warn(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::bounded::FileKind;
use crate::commands::{current_config, failed, ok, param};
use crate::engine::{Call, CommandResult, Entry, Item};
use crate::error::ShellError;
use crate::store::Config;

/// The commands answered here.
pub const HANDLERS: &[Entry] =
    &[Entry::new("DiagnosticLogging Collect", collect_command).admin_only()];

/// `xCommand DiagnosticLogging Collect Folder: ...`: the bundle, and the names inside it.
fn collect_command(call: Call) -> Result<CommandResult, ShellError> {
    let folder = PathBuf::from(
        param(call.params, "Folder")
            .map(str::to_string)
            .unwrap_or_else(|| call.root.join("diagnostics").display().to_string()),
    );
    let cfg = current_config(&call)?;
    let host = crate::status::host_name(&cfg);
    let (file, names) = collect(
        call.root,
        &cfg,
        &folder,
        &host,
        &crate::dump::file_timestamp(),
    )
    .map_err(|e| {
        failed(
            call.path,
            format!("cannot write the bundle into {}: {e}", folder.display()),
        )
    })?;
    let mut fields = vec![Item::leaf("Bundle", file.display().to_string())];
    fields.extend(
        names
            .into_iter()
            .zip(1u32..)
            .map(|(n, i)| Item::instance("File", i, vec![Item::leaf("Name", n)])),
    );
    Ok(ok(call.name, fields))
}

/// Names and contents of the bundle's files.
pub fn contents(root: &Path, cfg: &Config, host: &str, ts: &str) -> Vec<(String, Vec<u8>)> {
    let certs = root.join("certs");
    let status = root.join("status");
    let read = |p: PathBuf, kind| {
        bundled(crate::bounded::read_opt(&p, kind).map(Option::unwrap_or_default))
    };
    let tail_of =
        |p: PathBuf| bundled(crate::bounded::read_tail(&p, FileKind::Log, LOG_TAIL_BYTES));
    let mut files = vec![
        (
            format!("ca_{host}_{ts}.pem"),
            read(certs.join("ca.pem"), FileKind::CaList),
        ),
        (
            format!("client_{host}_{ts}.pem"),
            read(certs.join("client.pem"), FileKind::Certificate),
        ),
        (
            format!("server_{host}_{ts}.pem"),
            read(certs.join("server.pem"), FileKind::Certificate),
        ),
        (
            format!("xconf_dump_{host}_{ts}.txt"),
            crate::dump::config_txt(cfg).into_bytes(),
        ),
        (
            format!("xconf_dump_{host}_{ts}.xml"),
            crate::dump::config_xml(cfg).into_bytes(),
        ),
        (
            format!("xstat_dump_{host}_{ts}.txt"),
            crate::dump::status_txt(root, cfg).into_bytes(),
        ),
        (
            format!("xstat_dump_{host}_{ts}.xml"),
            crate::dump::status_xml(root, cfg).into_bytes(),
        ),
        (
            format!("loggingsnapshot_{host}_{ts}.txt"),
            tail(&tail_of(status.join("events.log")), 5000),
        ),
        (
            format!("handshakes_{host}_{ts}.log"),
            tail(&tail_of(status.join("handshakes.log")), 5000),
        ),
        // The last partner probe per address (bounded by the probe room; its handshakes are
        // in the handshake log above).
        (
            format!("probes_{host}_{ts}.json"),
            read(crate::probe::record::path(root), FileKind::Probes),
        ),
    ];
    // A certificate file is public, but a store someone filled by hand could hold a key too.
    for (_, bytes) in files.iter_mut() {
        *bytes = strip_private_keys(bytes);
    }
    files
}

/// How much of each log the bundle reads: its last MiB (about 2,000 handshake records), never
/// the whole file.
const LOG_TAIL_BYTES: u64 = 1024 * 1024;

/// A file's bytes for the bundle, or, when it was refused (a FIFO, too large, a planted link),
/// one line saying why: the bundle is still written, and says what it could not include.
fn bundled(r: Result<Vec<u8>, crate::bounded::ReadError>) -> Vec<u8> {
    r.unwrap_or_else(|e| format!("# not included: {e}\n").into_bytes())
}

/// The last `n` lines.
fn tail(bytes: &[u8], n: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = lines[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out.into_bytes()
}

/// Removes any PEM private-key block.
pub fn strip_private_keys(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("PRIVATE KEY-----") {
        return bytes.to_vec();
    }
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") && line.contains("PRIVATE KEY") {
            skipping = true;
            continue;
        }
        if skipping {
            if line.starts_with("-----END") {
                skipping = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

/// Writes `diagnostic_logging_<host>_<ts>.tar.gz` into `folder`; returns its path and the names inside.
pub fn collect(
    root: &Path,
    cfg: &Config,
    folder: &Path,
    host: &str,
    ts: &str,
) -> std::io::Result<(PathBuf, Vec<String>)> {
    std::fs::create_dir_all(folder)?;
    let host = &crate::dump::file_host(host);
    let files = contents(root, cfg, host, ts);
    let path = folder.join(format!("diagnostic_logging_{host}_{ts}.tar.gz"));
    let mut buf = Vec::new();
    {
        let gz = GzEncoder::new(&mut buf, Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in &files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            );
            h.set_cksum();
            tar.append_data(&mut h, name, bytes.as_slice())?;
        }
        let gz = tar.into_inner()?;
        gz.finish()?.flush()?;
    }
    crate::store::write_file_atomic(&path, &buf, 0o640)?;
    Ok((path, files.into_iter().map(|(n, _)| n).collect()))
}
