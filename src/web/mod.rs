//! The HTTPS plane: the router, sessions and CSRF, getxml/putxml, jsxapi's WebSocket and the
//! server-rendered pages. Every request goes through the same engine, schema, roles and audit as
//! the shell; this room holds only what HTTP needs (routes, cookies, headers, documents in and
//! out). The agent owns the TCP listener and hands each accepted connection the current
//! generation's TLS configuration.
//!
//! It knows no terminal and opens no listener of its own choosing.

pub mod api;
pub mod pages;
pub mod server;
pub mod ws;
