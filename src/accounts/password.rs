//! argon2id hashes (PHC strings, argon2 0.6 defaults: m=19 MiB, t=2, p=1, random salt), the
//! dummy verification that makes an unknown name cost what a wrong password costs, and the
//! quick start's one-time password.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Characters of a generated password: no look-alikes (0/O/o, 1/l/I, 5/S, 2/Z, 8/B, u/v).
const ALPHABET: &[u8] = b"ACDEFGHJKLMNPQRTUVWXYabcdefghijkmnpqrstwxyz34679";

/// Length of a generated password: 20 characters of a 48-letter alphabet is 111 bits.
pub const ONE_TIME_LEN: usize = 20;

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `phc` (parameters come from the string). A
/// malformed string matches nothing.
pub fn matches(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Spends the time of one verification without an account, so that an unknown name answers
/// as late as a wrong password.
pub fn dummy_verify(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        let pw = one_time().unwrap_or_else(|_| "dummy-password-for-timing".into());
        hash(&pw).unwrap_or_default()
    });
    let _ = matches(password, phc);
}

/// A random password of [`ONE_TIME_LEN`] characters from [`ALPHABET`] (rejection sampling,
/// so every character is equally likely).
pub fn one_time() -> Result<String, getrandom::Error> {
    let n = ALPHABET.len();
    // The largest multiple of n below 256: bytes at or past it are drawn again.
    let cut = 256 - (256 % n);
    let mut out = String::with_capacity(ONE_TIME_LEN);
    let mut buf = [0u8; 64];
    while out.len() < ONE_TIME_LEN {
        getrandom::fill(&mut buf)?;
        for &b in &buf {
            if (b as usize) < cut && out.len() < ONE_TIME_LEN {
                out.push(ALPHABET[b as usize % n] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_match() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(matches("correct horse", &h));
        assert!(!matches("correct horsf", &h));
        assert!(!matches("correct horse", "not a phc string"));
        assert_ne!(hash("correct horse").unwrap(), h, "salted");
    }

    #[test]
    fn one_time_passwords_have_no_look_alikes() {
        let a = one_time().unwrap();
        let b = one_time().unwrap();
        assert_eq!(a.len(), ONE_TIME_LEN);
        assert_ne!(a, b);
        for c in "0O1lI5S2Z8Bouv".chars() {
            assert!(!ALPHABET.contains(&(c as u8)), "{c}");
        }
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
    }
}
