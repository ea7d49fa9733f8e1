//! Dumps: `xconf_dump` and `xstat_dump` in txt (the terminal lines) and XML (with the XSD in
//! `xconf/`). The txt configuration dump pipes back into `xsh` and restores exactly that
//! configuration, defaults included. The documents come from the engine's read views and are
//! printed by the renderers; `xCommand SystemUnit Dump` is registered here.

// Input from a user, a file or a peer is never unwrapped here: it gets an error value.
#![warn(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use crate::commands::{current_config, failed, ok, param};
use crate::engine::view::{config_items, status_items};
use crate::engine::{Call, CommandResult, Entry, Item};
use crate::error::ShellError;
use crate::render::{terminal, xml, DocKind};
use crate::store::Config;

/// The commands answered here: they write rendered documents, so they sit above the renderers.
pub const HANDLERS: &[Entry] = &[Entry::new("SystemUnit Dump", system_unit_dump).admin_only()];

/// `xCommand SystemUnit Dump Folder: ...`: the four dumps, written into the folder.
fn system_unit_dump(call: Call) -> Result<CommandResult, ShellError> {
    let folder = PathBuf::from(param(call.params, "Folder").unwrap_or("."));
    let cfg = current_config(&call)?;
    let host = crate::status::host_name(&cfg);
    let files = write_all(call.root, &cfg, &folder, &host, &file_timestamp()).map_err(|e| {
        failed(
            call.path,
            format!("cannot write dumps into {}: {e}", folder.display()),
        )
    })?;
    let fields = files
        .iter()
        .zip(1u32..)
        .map(|(f, i)| Item::instance("File", i, vec![Item::leaf("Path", f.display().to_string())]))
        .collect();
    Ok(ok(call.name, fields))
}

/// Every configuration leaf as `*c xConfiguration ...: "value"` lines.
pub fn config_txt(cfg: &Config) -> String {
    let items = config_items(cfg, &Default::default(), false);
    let mut s = String::with_capacity(crate::render::size_hint(&items));
    terminal::config(&items, &mut s);
    s
}

/// The configuration as an XML document (namespace, `item="N"`, `valueSpaceRef`).
pub fn config_xml(cfg: &Config) -> String {
    xml::document(
        DocKind::Configuration,
        &config_items(cfg, &Default::default(), true),
    )
}

/// Both configuration dumps, txt and XML, from one walk of the schema and values (what
/// `xCommand SystemUnit Dump` writes). Equal to `(config_txt(cfg), config_xml(cfg))`.
pub fn config_txt_xml(cfg: &Config) -> (String, String) {
    // The XML items carry `valueSpaceRef`s, which the terminal writer does not print.
    let items = config_items(cfg, &Default::default(), true);
    let mut txt = String::with_capacity(crate::render::size_hint(&items));
    terminal::config(&items, &mut txt);
    (txt, xml::document(DocKind::Configuration, &items))
}

/// Every status value as nested `*s` blocks.
pub fn status_txt(root: &Path, cfg: &Config) -> String {
    let mut s = String::new();
    terminal::status(&status_items(root, cfg, &Default::default()), &mut s);
    s
}

/// The status as an XML document.
pub fn status_xml(root: &Path, cfg: &Config) -> String {
    xml::document(
        DocKind::Status,
        &status_items(root, cfg, &Default::default()),
    )
}

/// The product's file-name timestamp: `2026-03-25_03_20_11` (UTC).
pub fn file_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day]_[hour]_[minute]_[second]");
    now.format(&fmt)
        .unwrap_or_else(|_| "0000-00-00_00_00_00".into())
}

/// A host name made safe for a file name (`[A-Za-z0-9._-]`, others become `_`).
pub fn file_host(host: &str) -> String {
    let s: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "localhost".into()
    } else {
        s
    }
}

/// Writes the four dump files into `folder`; returns their paths.
pub fn write_all(
    root: &Path,
    cfg: &Config,
    folder: &Path,
    host: &str,
    ts: &str,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(folder)?;
    let host = file_host(host);
    let (txt, xml) = config_txt_xml(cfg);
    let files = [
        (format!("xconf_dump_{host}_{ts}.txt"), txt),
        (format!("xconf_dump_{host}_{ts}.xml"), xml),
        (format!("xstat_dump_{host}_{ts}.txt"), status_txt(root, cfg)),
        (format!("xstat_dump_{host}_{ts}.xml"), status_xml(root, cfg)),
    ];
    let mut out = Vec::new();
    for (name, text) in files {
        let p = folder.join(name);
        // Through the one temp-file primitive: an exclusive, unpredictable temp name in the
        // folder, and a rename that replaces a planted symlink instead of following it.
        crate::store::write_file_atomic(&p, text.as_bytes(), 0o644)?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder another user can write to (`/tmp`): symlinks planted at the dump's names and at
    /// the temp names an older version used never make the dump write through them.
    #[test]
    fn planted_symlinks_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let folder = d.path().join("shared");
        std::fs::create_dir_all(&folder).unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let (host, ts) = ("node", "20261201T000000");
        let names = [
            format!("xconf_dump_{host}_{ts}.txt"),
            format!("xconf_dump_{host}_{ts}.xml"),
            format!("xstat_dump_{host}_{ts}.txt"),
            format!("xstat_dump_{host}_{ts}.xml"),
        ];
        for n in &names {
            std::os::unix::fs::symlink(&victim, folder.join(n)).unwrap();
            let old_tmp = format!(".{n}.tmp.{}", std::process::id());
            std::os::unix::fs::symlink(&victim, folder.join(old_tmp)).unwrap();
        }
        let written = write_all(&root, &Config::default(), &folder, host, ts).unwrap();
        assert_eq!(written.len(), 4);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        for p in &written {
            let m = std::fs::symlink_metadata(p).unwrap();
            assert!(m.file_type().is_file(), "{} is still a link", p.display());
        }
    }
}
