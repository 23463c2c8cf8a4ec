//! Unlocked end-to-end viewer keys, held in memory per login session and nowhere
//! else: never written, logged or sent. A key is dropped — and its bytes wiped
//! (`ViewerSecret` zeroises on drop) — when its session locks or logs out, and after
//! [`DEFAULT_IDLE`] without use (checked on every use and by a periodic sweep).
//!
//! A playback in progress holds its own reference until its response ends, so a lock
//! takes effect for every request after it; the bytes go when the last one finishes.
//! A session ended elsewhere (another device's "log out", a password or two-step
//! change, a reset by the owner, support time running out) can no longer make a
//! request to use its key; the handlers that end sessions lock what they can name, and
//! the periodic sweep drops every key whose session is gone, so those bytes go within
//! one sweep whichever way the session ended.
//! The process does not `mlock` these pages: on a machine with swap a key can reach
//! the swap device (the README's threat model says so).
//!
//! Time is an input (`now_micros`), so timeouts are tested without sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::index::UserId;
use crate::store::e2e::ViewerSecret;

/// How long an unlocked key stays in memory without being used.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);

struct Held {
    user: UserId,
    viewer: Arc<ViewerSecret>,
    last_used_micros: i64,
}

/// The unlocked keys, by session. Cheap to clone.
#[derive(Clone)]
pub struct Unlocked {
    held: Arc<Mutex<HashMap<[u8; 32], Held>>>,
    idle_micros: i64,
}

impl Unlocked {
    pub fn new(idle: Duration) -> Unlocked {
        Unlocked {
            held: Arc::default(),
            idle_micros: i64::try_from(idle.as_micros()).unwrap_or(i64::MAX),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `viewer` for `session` (replacing what it held).
    pub fn put(&self, session: [u8; 32], user: UserId, viewer: ViewerSecret, now_micros: i64) {
        self.map().insert(
            session,
            Held {
                user,
                viewer: Arc::new(viewer),
                last_used_micros: now_micros,
            },
        );
    }

    /// The session's key if it is unlocked and was used within the idle time (which
    /// this use restarts); an idle one is dropped here.
    pub fn get(&self, session: &[u8; 32], now_micros: i64) -> Option<Arc<ViewerSecret>> {
        let mut map = self.map();
        let held = map.get_mut(session)?;
        if now_micros - held.last_used_micros >= self.idle_micros {
            map.remove(session);
            return None;
        }
        held.last_used_micros = now_micros;
        Some(held.viewer.clone())
    }

    /// Whether the session is unlocked now (does not count as a use).
    pub fn is_unlocked(&self, session: &[u8; 32], now_micros: i64) -> bool {
        self.map()
            .get(session)
            .is_some_and(|h| now_micros - h.last_used_micros < self.idle_micros)
    }

    /// Drops the session's key; true if it held one.
    pub fn lock(&self, session: &[u8; 32]) -> bool {
        self.map().remove(session).is_some()
    }

    /// Drops every key `user` unlocked (their account or sessions ended).
    pub fn lock_user(&self, user: UserId) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, h| h.user != user);
        before - map.len()
    }

    /// Drops every key `user` unlocked in a session other than `keep` (their other
    /// sessions just ended).
    pub fn lock_user_except(&self, user: UserId, keep: &[u8; 32]) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|session, h| h.user != user || session == keep);
        before - map.len()
    }

    /// Drops every key idle for the idle time, and every key whose session
    /// `session_alive` says has ended (an error counts as ended); returns how many.
    pub fn sweep(
        &self,
        now_micros: i64,
        session_alive: impl Fn(&[u8; 32]) -> Result<bool, String>,
    ) -> usize {
        let (idle, sessions): (usize, Vec<[u8; 32]>) = {
            let mut map = self.map();
            let before = map.len();
            map.retain(|_, h| now_micros - h.last_used_micros < self.idle_micros);
            (before - map.len(), map.keys().copied().collect())
        };
        // Asked without the lock held: each answer reads the index.
        let ended: Vec<[u8; 32]> = sessions
            .into_iter()
            .filter(|s| !matches!(session_alive(s), Ok(true)))
            .collect();
        let mut map = self.map();
        let before = map.len();
        map.retain(|session, _| !ended.contains(session));
        idle + before - map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::e2e::LockedViewerKey;

    fn viewer() -> ViewerSecret {
        let (locked, recovery) = LockedViewerKey::generate_with(
            "a passphrase for the test",
            crate::store::e2e::KdfParams {
                memory_kib: 8 * 1024,
                iterations: 1,
                parallelism: 1,
            },
        )
        .expect("generate");
        locked.unlock_with_recovery(&recovery).expect("unlock")
    }

    #[test]
    fn a_key_lives_until_lock_or_idle_timeout_and_use_restarts_the_clock() {
        let unlocked = Unlocked::new(Duration::from_secs(900));
        let (a, b) = ([1u8; 32], [2u8; 32]);
        unlocked.put(a, UserId(1), viewer(), 0);
        assert!(unlocked.get(&b, 0).is_none(), "another session has nothing");
        assert!(unlocked.get(&a, 899_000_000).is_some());
        // That use restarted the idle clock.
        assert!(unlocked.get(&a, 1_700_000_000).is_some());
        assert!(!unlocked.is_unlocked(&a, 1_700_000_000 + 900_000_000));
        assert!(
            unlocked.get(&a, 1_700_000_000 + 900_000_000).is_none(),
            "idle: gone"
        );
        assert!(!unlocked.lock(&a), "already dropped");

        unlocked.put(a, UserId(1), viewer(), 0);
        assert!(unlocked.lock(&a));
        assert!(unlocked.get(&a, 1).is_none());

        unlocked.put(a, UserId(1), viewer(), 0);
        unlocked.put(b, UserId(2), viewer(), 500_000_000);
        assert_eq!(unlocked.sweep(900_000_000, |_| Ok(true)), 1);
        assert!(unlocked.is_unlocked(&b, 900_000_000));
        assert_eq!(unlocked.lock_user(UserId(2)), 1);
        assert!(!unlocked.is_unlocked(&b, 900_000_000));
    }

    #[test]
    fn the_sweep_drops_keys_whose_session_ended_and_lock_user_except_keeps_one() {
        let unlocked = Unlocked::new(Duration::from_secs(900));
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        unlocked.put(a, UserId(1), viewer(), 0);
        unlocked.put(b, UserId(1), viewer(), 0);
        unlocked.put(c, UserId(2), viewer(), 0);
        let swept = unlocked.sweep(1, |s| match s[0] {
            1 => Ok(true),
            2 => Ok(false),
            _ => Err("index unreadable".into()),
        });
        assert_eq!(swept, 2, "an ended session and an unknown answer both lock");
        assert!(unlocked.is_unlocked(&a, 1));
        assert!(!unlocked.is_unlocked(&b, 1));
        assert!(!unlocked.is_unlocked(&c, 1));

        unlocked.put(b, UserId(1), viewer(), 0);
        unlocked.put(c, UserId(2), viewer(), 0);
        assert_eq!(unlocked.lock_user_except(UserId(1), &a), 1);
        assert!(
            unlocked.is_unlocked(&a, 1),
            "the session that made the change"
        );
        assert!(!unlocked.is_unlocked(&b, 1));
        assert!(unlocked.is_unlocked(&c, 1), "another user's");
    }
}
