//! Local administrator accounts for the HTTPS plane: names, access levels (read-write,
//! read-only, disabled) and argon2id password hashes in `ROOT/config/accounts` (0600), with
//! login throttling and lockout. SSH users keep their Unix-group roles; this room is only for the
//! web, API and WebSocket front ends.
//!
//! It knows no HTTP, no engine and no terminal: a front end asks it whether a name and password
//! are good, from which client address, and maps the access level to its own role.
