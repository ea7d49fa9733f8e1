//! Local administrator accounts for the HTTPS plane: names, access levels (read-write,
//! read-only, disabled) and argon2id password hashes in `ROOT/config/accounts` (0600), with
//! login throttling and lockout. SSH users keep their Unix-group roles; this room is only for the
//! web, API and WebSocket front ends.
//!
//! It knows no HTTP, no engine and no terminal: a front end asks it whether a name and password
//! are good, from which client address, and maps the access level to its own role (and checks
//! the account's `web`/`api` flags for its kind of access). Auditing is the caller's: this room
//! has no notion of who asks.
//!
//! Lockout: failed logins are counted per account name and per client address (in memory,
//! shared by the clones of one [`Accounts`]); [`Lockout::attempts`] failures within
//! [`Lockout::window`] lock that name, or that address, for [`Lockout::duration`]. A locked
//! login is refused before any hashing, so a flood costs no CPU. An account's lockout is also
//! written into the file, so it survives an agent restart; an address's lockout and the
//! counts below the limit do not.
//!
//! A login that verified is remembered for a minute (an HMAC tag, never the password; see
//! `recent`), so an API client that sends HTTP Basic with every request pays for argon2id
//! once a minute. A failure is never remembered and always costs a full verification.

// Input from a user, a file or a peer is never unwrapped here: it gets an error value.
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod file;
pub mod password;
mod recent;
mod throttle;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use crate::parse::mask::{is_secret, mask_secrets, MASK};

/// Most accounts (the product numbers them `AdminAccountId: <1..15>`).
pub const MAX_ACCOUNTS: usize = 15;
/// Longest account name, in characters (the product's `Name: <S: 0, 25>`).
pub const MAX_NAME: usize = 25;
/// Password length bounds, in characters (the product: at most 65; no blank passwords).
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 65;
/// Password verifications run at once; more callers wait for a turn (each takes ~30 ms and
/// 19 MiB: a burst of logins must not take every core or much memory).
const MAX_HASHING: usize = 2;

/// An account's access level; the product's words are `ReadWrite`, `ReadOnly` and
/// `AccountDisabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    #[serde(rename = "AccountDisabled")]
    Disabled,
}

impl Access {
    /// The product's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadWrite => "ReadWrite",
            Access::ReadOnly => "ReadOnly",
            Access::Disabled => "AccountDisabled",
        }
    }

    /// The level for a product word (as the schema canonicalises it).
    pub fn from_word(w: &str) -> Option<Access> {
        match w {
            "ReadWrite" => Some(Access::ReadWrite),
            "ReadOnly" => Some(Access::ReadOnly),
            "AccountDisabled" => Some(Access::Disabled),
            _ => None,
        }
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account as front ends see it: never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub access: Access,
    /// May log in to the web pages.
    pub web: bool,
    /// May use getxml/putxml and the WebSocket.
    pub api: bool,
}

/// The lockout rule, from `xConfiguration Administration Lockout` ([`lockout_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub attempts: u32,
    pub window: Duration,
    pub duration: Duration,
}

impl Default for Lockout {
    /// The schema's defaults: 5 failures in 300 s lock for 600 s.
    fn default() -> Lockout {
        Lockout {
            attempts: 5,
            window: Duration::from_secs(300),
            duration: Duration::from_secs(600),
        }
    }
}

/// The lockout rule a configuration holds (one place reads the schema's leaves).
pub fn lockout_from(cfg: &crate::store::Config) -> Lockout {
    let l = cfg.administration().lockout();
    Lockout {
        attempts: u32::from(l.attempts()),
        window: Duration::from_secs(u64::from(l.window())),
        duration: Duration::from_secs(u64::from(l.duration())),
    }
}

/// `xConfiguration Administration TimeOut`: how long a web session may stay idle; `None`
/// when it never ends (0).
pub fn session_idle_timeout(cfg: &crate::store::Config) -> Option<Duration> {
    let min = u64::from(cfg.administration().time_out());
    (min > 0).then(|| Duration::from_secs(min * 60))
}

/// A change of an existing account ([`Accounts::modify`]); `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct Modify {
    pub password: Option<String>,
    pub access: Option<Access>,
    pub web: Option<bool>,
    pub api: Option<bool>,
    /// Ends a lockout (a new password does too).
    pub unlock: bool,
}

/// Failures of the accounts file and of account changes; each message says what and where.
#[derive(Debug)]
#[non_exhaustive]
pub enum AccountError {
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    /// The file was refused before it was read (a link, not a regular file, too large).
    Read(crate::bounded::ReadError),
    /// The file does not hold what this program writes.
    Corrupt {
        path: PathBuf,
        why: String,
    },
    Exists {
        name: String,
    },
    NotFound {
        name: String,
    },
    NoSuchId {
        id: usize,
        count: usize,
    },
    Full,
    BadName {
        name: String,
        why: &'static str,
    },
    BadPassword {
        why: String,
    },
    /// Hashing failed (no entropy for the salt, a parameter error).
    Hash(String),
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountError::Io { path, op, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            AccountError::Read(e) => write!(f, "{e}"),
            AccountError::Corrupt { path, why } => {
                write!(f, "{} is not an accounts file: {why}", path.display())
            }
            AccountError::Exists { name } => write!(f, "an account named '{name}' exists"),
            AccountError::NotFound { name } => write!(f, "no account is named '{name}'"),
            AccountError::NoSuchId { id, count } => write!(
                f,
                "there is no account {id}: {count} account(s) exist (xCommand AdminAccountList)"
            ),
            AccountError::Full => write!(f, "{MAX_ACCOUNTS} accounts exist, the most there can be"),
            AccountError::BadName { name, why } => write!(f, "account name '{name}' {why}"),
            AccountError::BadPassword { why } => write!(f, "password refused: {why}"),
            AccountError::Hash(e) => write!(f, "cannot hash the password: {e}"),
        }
    }
}

impl std::error::Error for AccountError {}

/// Why a login was refused.
#[derive(Debug)]
pub enum LoginError {
    /// Unknown name or wrong password: one answer for both.
    Wrong,
    /// Too many failures for this name or from this address; refused whatever the password.
    LockedOut { seconds_left: u64 },
    /// The name and password are right, but the account is `AccountDisabled`.
    Disabled,
    /// The accounts file cannot be read.
    Unavailable(AccountError),
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginError::Wrong => write!(f, "wrong name or password"),
            LoginError::LockedOut { seconds_left } => write!(
                f,
                "locked out after repeated failed logins; try again in {seconds_left} s"
            ),
            LoginError::Disabled => write!(f, "this account is disabled"),
            LoginError::Unavailable(e) => write!(f, "logins are unavailable: {e}"),
        }
    }
}

impl std::error::Error for LoginError {}

/// What [`Accounts::verify`] knows before hashing.
enum Quick {
    Decided(Result<Account, LoginError>),
    /// The accounts as read, and the time (ms since the epoch) of the lockout checks.
    NeedsHash(Arc<Vec<file::Stored>>, u64),
}

/// State shared by the clones of one [`Accounts`].
#[derive(Debug, Default)]
struct Shared {
    cache: Mutex<Option<(file::Stamp, Arc<Vec<file::Stored>>)>>,
    throttle: Mutex<throttle::Throttle>,
    recent: Mutex<recent::Recent>,
    hashing: Mutex<usize>,
    turn: Condvar,
}

/// The accounts of one ROOT. Cheap to clone; clones share the cache and the lockout state.
#[derive(Debug, Clone)]
pub struct Accounts {
    path: PathBuf,
    shared: Arc<Shared>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// A name as given, safe to show (control characters made visible).
fn shown(name: &str) -> String {
    crate::peer_text::PeerText::new(name).into_string()
}

fn public(s: &file::Stored) -> Account {
    Account {
        name: s.name.clone(),
        access: s.access,
        web: s.web,
        api: s.api,
    }
}

/// Checks an account name: 1 to 25 letters, digits, `.`, `_`, `-`, `@`.
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let bad = |why| {
        Err(AccountError::BadName {
            name: shown(name),
            why,
        })
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.chars().count() > MAX_NAME {
        return bad("is longer than 25 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return bad("may hold only letters, digits and . _ - @");
    }
    Ok(())
}

/// Checks a new password's length (8 to 65 characters) and that it holds no control character.
pub fn check_password(pw: &str) -> Result<(), AccountError> {
    let n = pw.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(AccountError::BadPassword {
            why: format!("it has {n} characters; {MIN_PASSWORD} to {MAX_PASSWORD} are needed"),
        });
    }
    if pw.chars().any(char::is_control) {
        return Err(AccountError::BadPassword {
            why: "it holds a control character".into(),
        });
    }
    Ok(())
}

impl Accounts {
    /// The accounts of `root` (`ROOT/config/accounts`); the file is read now (so a broken one
    /// is reported at once, and a too-open mode narrowed) and again whenever it changed.
    pub fn open(root: &Path) -> Result<Accounts, AccountError> {
        let a = Accounts {
            path: root.join("config").join("accounts"),
            shared: Arc::default(),
        };
        a.current()?;
        Ok(a)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored accounts, re-read when the file changed since the last read.
    fn current(&self) -> Result<Arc<Vec<file::Stored>>, AccountError> {
        let now = file::stamp(&self.path);
        let mut cache = self.shared.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(s), Some((cs, v))) = (now, cache.as_ref()) {
            if s == *cs {
                return Ok(v.clone());
            }
        }
        let v = Arc::new(file::load(&self.path)?);
        // The stamp taken before the read: a write during it makes the next call read again.
        match now {
            Some(s) => *cache = Some((s, v.clone())),
            None => *cache = None,
        }
        Ok(v)
    }

    /// Changes the file under its lock: `f` gets the accounts as stored now.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut Vec<file::Stored>) -> Result<T, AccountError>,
    ) -> Result<T, AccountError> {
        let _lock = file::lock(&self.path)?;
        let mut list = file::load(&self.path)?;
        let out = f(&mut list)?;
        file::save(&self.path, &list)?;
        Ok(out)
    }

    /// Checks `name` and `password` from client address `from`. Blocking (argon2id, ~30 ms):
    /// front ends call it in `spawn_blocking`. The lockout is checked before any hashing; an
    /// unknown name costs one dummy verification, so it answers like a wrong password.
    pub fn verify(
        &self,
        name: &str,
        password: &str,
        from: &str,
        lockout: &Lockout,
    ) -> Result<Account, LoginError> {
        match self.decide_without_hashing(name, password, from) {
            Quick::Decided(r) => r,
            Quick::NeedsHash(list, now) => {
                self.verify_hashing(name, password, from, lockout, &list, now)
            }
        }
    }

    /// [`Accounts::verify`] when it answers without hashing: a locked name or address, an
    /// unreadable file, or a login remembered a moment ago (`recent`). `None`: the answer
    /// needs argon2id; call [`Accounts::verify`] on a blocking thread. Costs a `stat` of the
    /// file and two short locks, so an async front end may call it inline.
    pub fn verify_remembered(
        &self,
        name: &str,
        password: &str,
        from: &str,
    ) -> Option<Result<Account, LoginError>> {
        match self.decide_without_hashing(name, password, from) {
            Quick::Decided(r) => Some(r),
            Quick::NeedsHash(..) => None,
        }
    }

    /// The part of [`Accounts::verify`] before any hashing.
    fn decide_without_hashing(&self, name: &str, password: &str, from: &str) -> Quick {
        let now = now_ms();
        if let Some(left) = self.throttle().locked(name, from, now) {
            return Quick::Decided(Err(locked(left)));
        }
        let list = match self.current() {
            Ok(l) => l,
            Err(e) => return Quick::Decided(Err(LoginError::Unavailable(e))),
        };
        let found = list.iter().find(|a| same_name(&a.name, name));
        if let Some(a) = found.filter(|a| a.locked_until > now) {
            self.throttle().lock_until(&a.name, a.locked_until);
            return Quick::Decided(Err(locked(a.locked_until - now)));
        }
        let t = std::time::Instant::now();
        match found {
            Some(a) if self.recent().holds(name, password, &a.hash, t) => {
                Quick::Decided(self.succeeded(name, password, a, None))
            }
            _ => Quick::NeedsHash(list, now),
        }
    }

    /// The part of [`Accounts::verify`] that hashes (`list` as read at `now`).
    fn verify_hashing(
        &self,
        name: &str,
        password: &str,
        from: &str,
        lockout: &Lockout,
        list: &[file::Stored],
        now: u64,
    ) -> Result<Account, LoginError> {
        let found = list.iter().find(|a| same_name(&a.name, name));
        let t = std::time::Instant::now();
        let good = {
            let _turn = self.hashing_turn();
            match found {
                Some(a) => password::matches(password, &a.hash),
                None => {
                    password::dummy_verify(password);
                    false
                }
            }
        };
        let Some(a) = found.filter(|_| good) else {
            self.recent().forget(name);
            let outcome = self.throttle().fail(name, from, now, lockout);
            if let (throttle::Outcome::AccountLocked { until }, Some(a)) = (outcome, found) {
                // Best effort: the in-memory lockout holds even when the file cannot be written.
                let _ = self.persist_lock(&a.name, until);
            }
            return Err(LoginError::Wrong);
        };
        self.succeeded(name, password, a, Some(t))
    }

    /// A good password for `a`: refused when the account is disabled, else the failure count
    /// is cleared and (`verified_at`: it was just hashed) the login remembered.
    fn succeeded(
        &self,
        name: &str,
        password: &str,
        a: &file::Stored,
        verified_at: Option<std::time::Instant>,
    ) -> Result<Account, LoginError> {
        if a.access == Access::Disabled {
            return Err(LoginError::Disabled);
        }
        self.throttle().succeed(name);
        if let Some(t) = verified_at {
            self.recent().put(name, password, &a.hash, t);
        }
        Ok(public(a))
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, recent::Recent> {
        self.shared.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, throttle::Throttle> {
        self.shared
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for one of [`MAX_HASHING`] turns; the turn ends when the guard drops.
    fn hashing_turn(&self) -> HashingTurn<'_> {
        let mut n = self
            .shared
            .hashing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while *n >= MAX_HASHING {
            n = self.shared.turn.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += 1;
        HashingTurn(&self.shared)
    }

    fn persist_lock(&self, name: &str, until: u64) -> Result<(), AccountError> {
        self.change(|list| {
            if let Some(a) = list.iter_mut().find(|a| same_name(&a.name, name)) {
                a.locked_until = until;
            }
            Ok(())
        })
    }

    /// Adds an account with web and API access.
    pub fn add(&self, name: &str, password: &str, access: Access) -> Result<(), AccountError> {
        self.add_with(name, password, access, true, true)
    }

    /// Adds an account; the password is hashed before the file is locked.
    pub fn add_with(
        &self,
        name: &str,
        password: &str,
        access: Access,
        web: bool,
        api: bool,
    ) -> Result<(), AccountError> {
        check_name(name)?;
        check_password(password)?;
        let hash = password::hash(password).map_err(AccountError::Hash)?;
        self.change(|list| {
            if let Some(a) = list.iter().find(|a| same_name(&a.name, name)) {
                return Err(AccountError::Exists {
                    name: a.name.clone(),
                });
            }
            if list.len() >= MAX_ACCOUNTS {
                return Err(AccountError::Full);
            }
            list.push(file::Stored {
                name: name.to_string(),
                access,
                web,
                api,
                hash,
                locked_until: 0,
            });
            Ok(())
        })
    }

    /// Deletes the account named `name` (case-insensitive).
    pub fn delete(&self, name: &str) -> Result<(), AccountError> {
        self.change(|list| {
            let i = list
                .iter()
                .position(|a| same_name(&a.name, name))
                .ok_or_else(|| AccountError::NotFound { name: shown(name) })?;
            list.remove(i);
            Ok(())
        })?;
        self.throttle().clear(name);
        Ok(())
    }

    /// Deletes account number `id` (1-based, as [`Accounts::list`] orders them); returns its name.
    pub fn delete_id(&self, id: usize) -> Result<String, AccountError> {
        let name = self.change(|list| {
            if id == 0 || id > list.len() {
                return Err(AccountError::NoSuchId {
                    id,
                    count: list.len(),
                });
            }
            Ok(list.remove(id - 1).name)
        })?;
        self.throttle().clear(&name);
        Ok(name)
    }

    /// Changes an existing account; returns it as it is now.
    pub fn modify(&self, name: &str, m: &Modify) -> Result<Account, AccountError> {
        let hash = match &m.password {
            Some(pw) => {
                check_password(pw)?;
                Some(password::hash(pw).map_err(AccountError::Hash)?)
            }
            None => None,
        };
        let unlock = m.unlock || hash.is_some();
        let acc = self.change(|list| {
            let a = list
                .iter_mut()
                .find(|a| same_name(&a.name, name))
                .ok_or_else(|| AccountError::NotFound { name: shown(name) })?;
            if let Some(h) = hash {
                a.hash = h;
            }
            if let Some(x) = m.access {
                a.access = x;
            }
            if let Some(w) = m.web {
                a.web = w;
            }
            if let Some(x) = m.api {
                a.api = x;
            }
            if unlock {
                a.locked_until = 0;
            }
            Ok(public(a))
        })?;
        if unlock {
            self.throttle().clear(name);
        }
        Ok(acc)
    }

    /// Every account, in file order (the order of `AdminAccountId`).
    pub fn list(&self) -> Result<Vec<Account>, AccountError> {
        Ok(self.current()?.iter().map(public).collect())
    }

    /// Seconds left of `name`'s lockout (0 when it is not locked): the file's record, or what
    /// this process counted.
    pub fn locked_seconds(&self, name: &str) -> Result<u64, AccountError> {
        let now = now_ms();
        let file = self
            .current()?
            .iter()
            .find(|a| same_name(&a.name, name))
            .map(|a| a.locked_until.saturating_sub(now))
            .unwrap_or(0);
        let mem = self.throttle().locked_name(name, now).unwrap_or(0);
        Ok(file.max(mem).div_ceil(1000))
    }
}

/// The leaves of `xStatus Administrator Account [n]` (never a hash); none when the file cannot
/// be read (the error shows at the account commands).
pub fn status_values(root: &Path) -> Vec<(String, String)> {
    let Ok(a) = Accounts::open(root) else {
        return Vec::new();
    };
    let Ok(list) = a.list() else {
        return Vec::new();
    };
    let yes_no = |b: bool| if b { "Yes" } else { "No" }.to_string();
    let mut out = Vec::new();
    for (i, acc) in list.iter().enumerate() {
        let at = |leaf: &str| format!("Administrator Account {} {leaf}", i + 1);
        let locked = a.locked_seconds(&acc.name).unwrap_or(0) > 0;
        out.push((at("Name"), acc.name.clone()));
        out.push((at("Access"), acc.access.as_str().to_string()));
        out.push((at("WebAccess"), yes_no(acc.web)));
        out.push((at("APIAccess"), yes_no(acc.api)));
        out.push((
            at("LockedOut"),
            if locked { "True" } else { "False" }.into(),
        ));
    }
    out
}

fn locked(ms_left: u64) -> LoginError {
    LoginError::LockedOut {
        seconds_left: ms_left.div_ceil(1000).max(1),
    }
}

/// One verification's turn ([`Accounts::hashing_turn`]).
struct HashingTurn<'a>(&'a Shared);

impl Drop for HashingTurn<'_> {
    fn drop(&mut self) {
        let mut n = self.0.hashing.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.0.turn.notify_one();
    }
}

#[cfg(test)]
mod tests;
