//! Failed-login counting and lockout, per account name and per client address, in memory.
//! Pure logic over a clock the caller passes in (milliseconds since the epoch), so the rules
//! are tested without waiting. An account's lockout is also written to `config/accounts` by
//! the caller ([`super::Accounts::verify`]), so it outlasts a restart; an address's is not.

use std::collections::{HashMap, VecDeque};

use super::Lockout;

/// Most keys (names and addresses) tracked at once: past it, entries with nothing left to
/// count are dropped first, then the oldest. A flood of made-up names costs bounded memory.
const MAX_KEYS: usize = 4096;

/// Failures of one key within the window, and when its lockout ends.
#[derive(Debug, Default, Clone)]
struct Failures {
    times: VecDeque<u64>,
    until: u64,
}

impl Failures {
    fn forget_before(&mut self, since: u64) {
        while self.times.front().is_some_and(|&t| t < since) {
            self.times.pop_front();
        }
    }
}

/// Which key kinds a failure is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Name,
    Addr,
}

/// The counters of every account name and client address seen failing.
#[derive(Debug, Default)]
pub struct Throttle {
    keys: HashMap<(Kind, String), Failures>,
}

/// A failure's effect on the account's own lockout, for the caller to persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted; no new lockout.
    Counted,
    /// This failure locked the account out until the given time (ms since the epoch).
    AccountLocked { until: u64 },
}

fn key(kind: Kind, s: &str) -> (Kind, String) {
    (kind, s.to_lowercase())
}

impl Throttle {
    /// Milliseconds left of a lockout of `name` or of `from` at `now`, if either is locked.
    pub fn locked(&self, name: &str, from: &str, now: u64) -> Option<u64> {
        [key(Kind::Name, name), key(Kind::Addr, from)]
            .iter()
            .filter_map(|k| self.keys.get(k))
            .filter(|f| f.until > now)
            .map(|f| f.until - now)
            .max()
    }

    /// Milliseconds left of a lockout of the name `name` alone.
    pub fn locked_name(&self, name: &str, now: u64) -> Option<u64> {
        self.keys
            .get(&key(Kind::Name, name))
            .filter(|f| f.until > now)
            .map(|f| f.until - now)
    }

    /// Records a failed login of `name` from `from` at `now`.
    pub fn fail(&mut self, name: &str, from: &str, now: u64, rule: &Lockout) -> Outcome {
        self.prune(now, rule);
        let window = rule.window.as_millis() as u64;
        let duration = rule.duration.as_millis() as u64;
        let mut outcome = Outcome::Counted;
        for k in [key(Kind::Name, name), key(Kind::Addr, from)] {
            let kind = k.0;
            let f = self.keys.entry(k).or_default();
            f.forget_before(now.saturating_sub(window));
            f.times.push_back(now);
            if f.times.len() >= rule.attempts.max(1) as usize {
                f.until = now.saturating_add(duration);
                f.times.clear();
                if kind == Kind::Name {
                    outcome = Outcome::AccountLocked { until: f.until };
                }
            }
        }
        outcome
    }

    /// A good login of `name`: its failures are forgotten. The address keeps its count (one
    /// good account must not reset the guessing budget of an address).
    pub fn succeed(&mut self, name: &str) {
        self.keys.remove(&key(Kind::Name, name));
    }

    /// Ends the lockout and failures of `name` (an administrator's unlock or new password).
    pub fn clear(&mut self, name: &str) {
        self.keys.remove(&key(Kind::Name, name));
    }

    /// Takes over a lockout read from the accounts file (a restart, another process).
    pub fn lock_until(&mut self, name: &str, until: u64) {
        let f = self.keys.entry(key(Kind::Name, name)).or_default();
        f.until = f.until.max(until);
    }

    fn prune(&mut self, now: u64, rule: &Lockout) {
        // Room for the two keys a failure adds.
        if self.keys.len() + 2 <= MAX_KEYS {
            return;
        }
        let since = now.saturating_sub(rule.window.as_millis() as u64);
        self.keys.retain(|_, f| {
            f.forget_before(since);
            f.until > now || !f.times.is_empty()
        });
        while self.keys.len() + 2 > MAX_KEYS {
            let oldest = self
                .keys
                .iter()
                .min_by_key(|(_, f)| f.times.back().copied().unwrap_or(f.until))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.keys.remove(&k),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule() -> Lockout {
        Lockout {
            attempts: 3,
            window: Duration::from_secs(60),
            duration: Duration::from_secs(600),
        }
    }

    #[test]
    fn locks_the_account_after_attempts_within_the_window() {
        let mut t = Throttle::default();
        let r = rule();
        assert_eq!(t.fail("alice", "10.0.0.1", 1_000, &r), Outcome::Counted);
        assert_eq!(t.fail("Alice", "10.0.0.2", 2_000, &r), Outcome::Counted);
        assert_eq!(t.locked("alice", "10.0.0.3", 2_500), None);
        assert_eq!(
            t.fail("ALICE", "10.0.0.3", 3_000, &r),
            Outcome::AccountLocked { until: 603_000 }
        );
        // Locked whatever the address, case-insensitively, until the duration is over.
        assert_eq!(t.locked("alice", "10.9.9.9", 4_000), Some(599_000));
        assert_eq!(t.locked("alice", "10.9.9.9", 603_000), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut t = Throttle::default();
        let r = rule();
        t.fail("bob", "a", 0, &r);
        t.fail("bob", "b", 30_000, &r);
        // The first failure is older than the 60 s window at 61 s.
        assert_eq!(t.fail("bob", "c", 61_000, &r), Outcome::Counted);
        assert_eq!(t.locked("bob", "d", 61_001), None);
        assert!(matches!(
            t.fail("bob", "e", 62_000, &r),
            Outcome::AccountLocked { .. }
        ));
    }

    #[test]
    fn locks_an_address_that_tries_many_names() {
        let mut t = Throttle::default();
        let r = rule();
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(
                t.fail(n, "192.0.2.7", i as u64, &r),
                Outcome::Counted,
                "no single name reached the limit"
            );
        }
        // A name never tried before, from that address: refused.
        assert!(t.locked("carol", "192.0.2.7", 10).is_some());
        assert_eq!(t.locked("carol", "192.0.2.8", 10), None);
    }

    #[test]
    fn success_forgets_the_name_but_not_the_address() {
        let mut t = Throttle::default();
        let r = rule();
        t.fail("dave", "x", 0, &r);
        t.fail("dave", "x", 1, &r);
        t.succeed("dave");
        t.fail("dave", "y", 2, &r);
        assert_eq!(t.locked("dave", "z", 3), None, "name count restarted");
        // Address x has two failures; one more from it locks it.
        t.fail("erin", "x", 4, &r);
        assert!(t.locked("frank", "x", 5).is_some());
    }

    #[test]
    fn clear_and_persisted_lockouts() {
        let mut t = Throttle::default();
        t.lock_until("gina", 50_000);
        assert_eq!(t.locked("gina", "h", 10_000), Some(40_000));
        t.clear("gina");
        assert_eq!(t.locked("gina", "h", 10_000), None);
    }

    #[test]
    fn memory_is_bounded_under_a_flood_of_names() {
        let mut t = Throttle::default();
        let r = rule();
        for i in 0..(MAX_KEYS as u64 * 3) {
            t.fail(&format!("n{i}"), &format!("a{i}"), i, &r);
        }
        assert!(t.keys.len() <= MAX_KEYS);
    }
}
