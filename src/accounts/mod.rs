//! Local administrator accounts for the HTTPS plane: names, access levels (read-write,
//! read-only, disabled) and argon2id password hashes in `ROOT/config/accounts` (0600), with
//! login throttling and lockout. SSH users keep their Unix-group roles; this room is only for the
//! web, API and WebSocket front ends.
//!
//! It knows no HTTP, no engine and no terminal: a front end asks it whether a name and password
//! are good, from which client address, and maps the access level to its own role.

// PLACEHOLDER from branch s4-web so the web room builds before s4-accounts' `API:` commit:
// exactly TEAM4.md's signatures, every login refused. The accounts helper's file replaces it.

use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub access: Access,
    pub web: bool,
    pub api: bool,
}

#[derive(Debug, Clone)]
pub struct AccountError(pub String);

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub enum LoginError {
    Wrong,
    LockedOut { seconds_left: u64 },
    Disabled,
    Unavailable(AccountError),
}

#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub attempts: u32,
    pub window: Duration,
    pub duration: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct Accounts {}

impl Accounts {
    pub fn open(_root: &Path) -> Result<Accounts, AccountError> {
        Ok(Accounts {})
    }
    pub fn verify(
        &self,
        _name: &str,
        _password: &str,
        _from: &str,
        _lockout: &Lockout,
    ) -> Result<Account, LoginError> {
        Err(LoginError::Wrong)
    }
}

pub fn lockout_from(_cfg: &crate::store::Config) -> Lockout {
    Lockout {
        attempts: 5,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(60),
    }
}
