//! xsh: an xConfiguration-compatible shell and a hot-reloading TLS agent for the 2026
//! client-auth EKU sunset. The binaries are thin; the rooms below hold the work.
#![forbid(unsafe_code)]
pub mod agent;
pub mod certs;
pub mod certs_status;
pub mod cli;
pub mod commands;
pub mod diag;
pub mod dump;
pub mod error;
pub mod parse;
pub mod render;
pub mod root;
pub mod schema;
pub mod shell;
pub mod status;
pub mod store;
