//! Audit entries written once per session, client address, recording and kind
//! ([`AuditedOnce`]).
//!
//! Watching a recording is many requests: the player page, then the video element's
//! `Range` requests (a seek is another), and a download may be resumed from any
//! byte. Each of them gives access to the recording, so none may go unlogged (a
//! download resumed at byte 1 is the whole file but one byte), yet logging each one
//! would flood the activity log. So the first of them within [`EXPIRY_MICROS`] writes the
//! entry and the rest are known to be covered by it. From another address (the
//! session's cookie taken elsewhere) they are not: the entry names where it was
//! used from, so a new address writes its own. Memory only, bounded by
//! [`CAPACITY`]: after a restart, or when the set is full of recent entries, an entry
//! may be written again, never left out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::index::AuditKind;
use crate::model::RecordingId;

/// How long one entry covers the same session's further requests: an hour, about a
/// long sitting in front of the player.
pub const EXPIRY_MICROS: i64 = 3_600_000_000;
/// Remembered entries at most (~96 bytes each).
pub const CAPACITY: usize = 4096;

type Key = ([u8; 32], Option<IpAddr>, RecordingId, AuditKind);

/// What was logged recently, by (session key, client address, recording, kind), with
/// when. The address is the one the entry names (`None`: none known).
#[derive(Default)]
pub struct AuditedOnce {
    logged: Mutex<HashMap<Key, i64>>,
}

impl AuditedOnce {
    /// Whether an entry for `(session, from, recording, kind)` is due at `now` (none
    /// in the last [`EXPIRY_MICROS`]); if so, it is counted as written from now on.
    pub fn first(
        &self,
        session: [u8; 32],
        from: Option<IpAddr>,
        recording: RecordingId,
        kind: AuditKind,
        now: i64,
    ) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        let key = (session, from, recording, kind);
        if logged
            .get(&key)
            .is_some_and(|at| now.saturating_sub(*at) < EXPIRY_MICROS)
        {
            return false;
        }
        if logged.len() >= CAPACITY && !logged.contains_key(&key) {
            logged.retain(|_, at| now.saturating_sub(*at) < EXPIRY_MICROS);
            if logged.len() >= CAPACITY {
                // Forgetting the oldest only means it may be logged again.
                if let Some(oldest) = logged.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                    logged.remove(&oldest);
                }
            }
        }
        logged.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEWED: AuditKind = AuditKind::RecordingViewed;

    fn home() -> Option<IpAddr> {
        "203.0.113.1".parse().ok()
    }

    #[test]
    fn an_entry_is_due_once_per_session_address_recording_and_kind_until_it_expires() {
        let once = AuditedOnce::default();
        let (a, b, r, at) = ([1; 32], [2; 32], RecordingId(7), home());
        assert!(once.first(a, at, r, VIEWED, 0));
        assert!(!once.first(a, at, r, VIEWED, 10));
        assert!(once.first(b, at, r, VIEWED, 10), "another session");
        assert!(
            once.first(a, at, RecordingId(8), VIEWED, 10),
            "another recording"
        );
        assert!(
            once.first(a, at, r, AuditKind::RecordingDownloaded, 10),
            "another kind"
        );
        assert!(!once.first(a, at, r, VIEWED, EXPIRY_MICROS - 1));
        assert!(once.first(a, at, r, VIEWED, EXPIRY_MICROS), "expired");
    }

    /// The same cookie used from elsewhere (taken, or the owner's phone leaving home)
    /// is logged again with where it is used from, and again when it comes back.
    #[test]
    fn the_same_session_from_another_address_is_due_again() {
        let once = AuditedOnce::default();
        let (s, r, at) = ([1; 32], RecordingId(7), home());
        let elsewhere = "198.51.100.7".parse().ok();
        assert!(once.first(s, at, r, VIEWED, 0));
        assert!(once.first(s, elsewhere, r, VIEWED, 10), "another address");
        assert!(!once.first(s, elsewhere, r, VIEWED, 20));
        assert!(!once.first(s, at, r, VIEWED, 30), "home is still covered");
    }

    #[test]
    fn a_full_set_forgets_rather_than_refuses() {
        let once = AuditedOnce::default();
        let at = home();
        for i in 0..CAPACITY as u64 {
            assert!(once.first([0; 32], at, RecordingId(i), VIEWED, i as i64));
        }
        assert!(once.first([9; 32], at, RecordingId(0), VIEWED, 5_000));
        assert!(once.logged.lock().expect("lock").len() <= CAPACITY);
        // The oldest was forgotten: it is due again, not silently dropped.
        assert!(once.first([0; 32], at, RecordingId(0), VIEWED, 5_001));
    }
}
