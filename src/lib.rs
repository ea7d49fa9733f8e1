//! xsh: an xConfiguration-compatible shell and a hot-reloading TLS agent for the 2026
//! client-auth EKU sunset. The binaries are thin; the rooms below hold the work.
//!
//! # Layers
//!
//! From the ground up; a module imports (`use crate::…`, `crate::x::` paths) only from modules
//! of a lower rank, never sideways within its rank nor upwards. `tests/layers.rs` reads this
//! table and every import under `src/`, and fails on an import against it or on an import
//! circle. The crate root's own items (not modules) wire layers together and are for the
//! front ends only.
//!
//! | rank | layer | modules | holds |
//! |------|-------|---------|-------|
//! | 0 | schema/model | `error`, `schema`, `bounded` | errors as data; the data model read from `xconf/`; bounded, typed file reads |
//! | 0 | text | `peer_text` | text from peers, sanitised once where it enters |
//! | 1 | parse | `parse` | the command language: lines to requests (knows no disk) |
//! | 2 | configuration store | `store` | `ROOT/config/`: snapshot, transaction, audit |
//! | 3 | certificates | `certs` | X.509, the EKU policy, verifiers, the files in `ROOT/certs/` |
//! | 3 | accounts | `accounts` | local administrator accounts (argon2id, `ROOT/config/accounts`), login throttling and lockout |
//! | 4 | certificates | `certs_status`, `probe` | what the certificate files say in the status tree; the partner probe (a TLS client handshake per identity, its verdict and records) |
//! | 5 | status | `status` | the status tree's values: agent snapshot, configuration, certificates |
//! | 6 | engine | `engine`, `root` | a request + a context to a typed reply; preparing a ROOT |
//! | 7 | commands | `commands` | the engine's command handlers |
//! | 8 | renderers | `render` | terminal, XML and JSON text of replies and errors |
//! | 9 | documents | `dump` | configuration and status dumps, `xCommand SystemUnit Dump` |
//! | 10 | documents | `diag` | the diagnostic bundle, `xCommand DiagnosticLogging Collect` |
//! | 11 | front ends | `web` | the HTTPS plane: pages, getxml/putxml, jsxapi's WebSocket (no listener loop of its own choosing, no terminal) |
//! | 12 | front ends | `shell`, `agent`, `cli` | the terminal session; the TLS agent (no terminal; runs the HTTPS listener); the process flags |
#![forbid(unsafe_code)]
// Only a binary ends the process: a library call that exits skips every destructor (terminal
// restore, flushed logs, lock files).
#![warn(clippy::exit)]
pub mod accounts;
pub mod agent;
pub mod bounded;
pub mod certs;
pub mod certs_status;
pub mod cli;
pub mod commands;
pub mod diag;
pub mod dump;
pub mod engine;
pub mod error;
pub mod parse;
pub mod peer_text;
pub mod probe;
pub mod render;
pub mod root;
pub mod schema;
pub mod shell;
pub mod status;
pub mod store;
pub mod web;

use std::sync::OnceLock;

/// Every command handler of the crate, resolved against the schema once per process: the
/// engine layer's (`commands`) and those of the rooms above the renderers that write rendered
/// documents (`dump`, `diag`). The crate root wires them because no layer may import upwards.
pub fn handlers() -> &'static engine::Registry {
    static R: OnceLock<engine::Registry> = OnceLock::new();
    R.get_or_init(|| {
        engine::Registry::new(&[
            commands::HANDLERS,
            commands::certs::HANDLERS,
            commands::accounts::HANDLERS,
            dump::HANDLERS,
            diag::HANDLERS,
        ])
    })
}

#[cfg(test)]
mod tests {
    /// Every command of `xconf/schema.xconf` has exactly one handler, and every handler names a
    /// command of the schema.
    #[test]
    fn every_command_has_one_handler_and_every_handler_a_command() {
        let r = super::handlers();
        assert_eq!(
            r.unhandled(),
            Vec::<String>::new(),
            "commands without a handler"
        );
        assert_eq!(r.unknown(), &[] as &[&str], "handlers that name no command");
        assert_eq!(r.duplicate(), &[] as &[&str], "commands with two handlers");
    }

    /// The check above can fail: a handler for a misspelt command and a registry missing the
    /// certificate table are both found.
    #[test]
    fn registry_reports_missing_and_unknown_handlers() {
        use crate::engine::{Call, CommandResult, Entry, Registry};
        fn nothing(_: Call) -> Result<CommandResult, crate::error::ShellError> {
            Ok(crate::commands::ok("x", vec![]))
        }
        let bogus: &[Entry] = &[Entry::new("Security Certificates Server Uplaod", nothing)];
        let r = Registry::new(&[crate::commands::HANDLERS, bogus]);
        assert_eq!(r.unknown(), ["Security Certificates Server Uplaod"]);
        assert!(r
            .unhandled()
            .contains(&"Security Certificates Server Upload".to_string()));
    }
}
