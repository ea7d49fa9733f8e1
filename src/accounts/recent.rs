//! Logins verified a moment ago, so that an API client sending HTTP Basic with every request
//! (getxml in a loop, 16 connections) costs one argon2id verification a minute, not one per
//! request. Only successes are kept, as an HMAC-SHA256 tag of name and password under a key
//! drawn at start (never the password), tied to the account's PHC string (a new password or a
//! deleted account drops it) and for [`KEEP`] at most. Failures always take the slow path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ring::hmac;

/// How long a verified login is remembered.
pub const KEEP: Duration = Duration::from_secs(60);
/// Most remembered logins (one per account name at most: 15 in practice).
const MAX: usize = 64;

#[derive(Debug)]
struct Entry {
    tag: hmac::Tag,
    phc: String,
    until: Instant,
}

/// The remembered logins of one [`super::Accounts`] and its clones.
#[derive(Debug)]
pub struct Recent {
    key: hmac::Key,
    by_name: HashMap<String, Entry>,
}

impl Default for Recent {
    fn default() -> Recent {
        let mut k = [0u8; 32];
        // Without entropy the key is still unknown outside this process's memory, and the
        // tag only ever short-cuts a password that verified.
        let _ = getrandom::fill(&mut k);
        Recent {
            key: hmac::Key::new(hmac::HMAC_SHA256, &k),
            by_name: HashMap::new(),
        }
    }
}

fn msg(name: &str, password: &str) -> Vec<u8> {
    let mut m = name.to_lowercase().into_bytes();
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    m
}

impl Recent {
    /// Whether `name` with `password` verified against `phc` within [`KEEP`].
    pub fn holds(&self, name: &str, password: &str, phc: &str, now: Instant) -> bool {
        self.by_name
            .get(&name.to_lowercase())
            .filter(|e| e.until > now && e.phc == phc)
            .is_some_and(|e| hmac::verify(&self.key, &msg(name, password), e.tag.as_ref()).is_ok())
    }

    /// Remembers a login that just verified.
    pub fn put(&mut self, name: &str, password: &str, phc: &str, now: Instant) {
        if self.by_name.len() >= MAX {
            self.by_name.retain(|_, e| e.until > now);
            if self.by_name.len() >= MAX {
                self.by_name.clear();
            }
        }
        let tag = hmac::sign(&self.key, &msg(name, password));
        self.by_name.insert(
            name.to_lowercase(),
            Entry {
                tag,
                phc: phc.to_string(),
                until: now + KEEP,
            },
        );
    }

    /// Forgets `name` (a failure, a change of the account).
    pub fn forget(&mut self, name: &str) {
        self.by_name.remove(&name.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_the_same_password_and_hash_for_a_while() {
        let mut r = Recent::default();
        let t = Instant::now();
        r.put("Ann", "pw-one-1", "$phc1", t);
        assert!(r.holds("ann", "pw-one-1", "$phc1", t));
        assert!(!r.holds("ann", "pw-one-2", "$phc1", t));
        assert!(!r.holds("ann", "pw-one-1", "$phc2", t), "password changed");
        assert!(!r.holds("ann", "pw-one-1", "$phc1", t + KEEP));
        r.forget("ANN");
        assert!(!r.holds("ann", "pw-one-1", "$phc1", t));
    }
}
