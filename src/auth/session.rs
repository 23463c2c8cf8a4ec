//! Session ids and lifetimes (pure functions; the clock's time is an argument).
//!
//! A session id is 256 bits from the OS CSPRNG, hex in the cookie; the index keeps
//! only its SHA-256, so reading the index does not let anyone in. A fresh id is made
//! at every change of login stage (password accepted, second factor accepted).

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::index::{SessionEntry, SessionStage};

/// How long a half-finished login (password accepted, code not yet entered) lasts.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// `last_seen` is written at most this often (it bounds idle-timeout precision and
/// spares the SD card a write per request).
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// A new random session id (64 hex characters).
pub fn new_id() -> String {
    random_hex(32)
}

pub fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("the OS random number generator is available");
    hex::encode(raw)
}

/// The index key of a session id. Ids that are not 64 hex digits hash like any other
/// string and simply match nothing.
pub fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Idle and absolute limits of full sessions.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub idle: Duration,
    pub max: Duration,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Whether a session is still valid at `now`.
pub fn is_live(entry: &SessionEntry, now: i64, limits: Lifetimes) -> bool {
    let (idle, max) = match entry.stage {
        SessionStage::Full => (limits.idle, limits.max),
        SessionStage::SecondFactor | SessionStage::Enrolment => {
            (PENDING_LIFETIME, PENDING_LIFETIME)
        }
    };
    now >= entry.created_micros
        && now - entry.last_seen_micros < micros(idle)
        && now - entry.created_micros < micros(max)
}

/// Whether a session is within its whole lifetime at `now` (`session_max`, or the
/// pending limit), whatever its idle time: what a bounded transfer it started (a
/// download, the export of everything) still needs, so that a reader pausing longer
/// than the idle limit between two pieces does not fail it part-way.
pub fn within_lifetime(entry: &SessionEntry, now: i64, limits: Lifetimes) -> bool {
    let max = match entry.stage {
        SessionStage::Full => limits.max,
        SessionStage::SecondFactor | SessionStage::Enrolment => PENDING_LIFETIME,
    };
    now >= entry.created_micros && now - entry.created_micros < micros(max)
}

/// Whether `last_seen` is old enough to be worth writing again.
pub fn needs_touch(entry: &SessionEntry, now: i64) -> bool {
    now - entry.last_seen_micros >= micros(TOUCH_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::UserId;

    const MIN: i64 = 60_000_000;

    fn entry(stage: SessionStage) -> SessionEntry {
        SessionEntry {
            user: UserId(1),
            stage,
            created_micros: 0,
            last_seen_micros: 0,
            csrf: String::new(),
            ip: String::new(),
            user_agent: String::new(),
            device: String::new(),
            last_ip: None,
            pending_totp: None,
        }
    }

    const LIMITS: Lifetimes = Lifetimes {
        idle: Duration::from_secs(30 * 60),
        max: Duration::from_secs(12 * 3600),
    };

    #[test]
    fn idle_timeout_ends_an_unused_session() {
        let mut e = entry(SessionStage::Full);
        assert!(is_live(&e, 29 * MIN, LIMITS));
        assert!(!is_live(&e, 30 * MIN, LIMITS));
        e.last_seen_micros = 20 * MIN;
        assert!(is_live(&e, 49 * MIN, LIMITS));
    }

    #[test]
    fn absolute_timeout_ends_even_a_busy_session() {
        let mut e = entry(SessionStage::Full);
        e.last_seen_micros = 12 * 60 * MIN - 1;
        assert!(is_live(&e, 12 * 60 * MIN - 1, LIMITS));
        e.last_seen_micros = 12 * 60 * MIN;
        assert!(!is_live(&e, 12 * 60 * MIN, LIMITS));
    }

    #[test]
    fn pending_logins_expire_after_ten_minutes() {
        let e = entry(SessionStage::SecondFactor);
        assert!(is_live(&e, 9 * MIN, LIMITS));
        assert!(!is_live(&e, 10 * MIN, LIMITS));
        assert!(!is_live(&entry(SessionStage::Enrolment), 11 * MIN, LIMITS));
    }

    #[test]
    fn ids_are_256_bit_and_keys_are_hashes() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert_ne!(id, new_id());
        assert_ne!(key_of(&id).to_vec(), hex::decode(&id).expect("hex"));
    }
}
