//! Audit entries written once per session, recording and kind ([`AuditedOnce`]).
//!
//! Watching a recording is many requests: the player page, then the video element's
//! `Range` requests (a seek is another), and a download may be resumed from any
//! byte. Each of them gives access to the recording, so none may go unlogged (a
//! download resumed at byte 1 is the whole file but one byte), yet logging each one
//! would flood the activity log. So the first of them within [`EXPIRY_MICROS`] writes the
//! entry and the rest are known to be covered by it. Memory only, bounded by
//! [`CAPACITY`]: after a restart, or when the set is full of recent entries, an entry
//! may be written again, never left out.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::index::AuditKind;
use crate::model::RecordingId;

/// How long one entry covers the same session's further requests: an hour, about a
/// long sitting in front of the player.
pub const EXPIRY_MICROS: i64 = 3_600_000_000;
/// Remembered entries at most (~64 bytes each).
pub const CAPACITY: usize = 4096;

type Key = ([u8; 32], RecordingId, AuditKind);

/// What was logged recently, by (session key, recording, kind), with when.
#[derive(Default)]
pub struct AuditedOnce {
    logged: Mutex<HashMap<Key, i64>>,
}

impl AuditedOnce {
    /// Whether an entry for `(session, recording, kind)` is due at `now` (none in the
    /// last [`EXPIRY_MICROS`]); if so, it is counted as written from now on.
    pub fn first(
        &self,
        session: [u8; 32],
        recording: RecordingId,
        kind: AuditKind,
        now: i64,
    ) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        let key = (session, recording, kind);
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

    #[test]
    fn an_entry_is_due_once_per_session_recording_and_kind_until_it_expires() {
        let once = AuditedOnce::default();
        let (a, b, r) = ([1; 32], [2; 32], RecordingId(7));
        assert!(once.first(a, r, VIEWED, 0));
        assert!(!once.first(a, r, VIEWED, 10));
        assert!(once.first(b, r, VIEWED, 10), "another session");
        assert!(
            once.first(a, RecordingId(8), VIEWED, 10),
            "another recording"
        );
        assert!(
            once.first(a, r, AuditKind::RecordingDownloaded, 10),
            "another kind"
        );
        assert!(!once.first(a, r, VIEWED, EXPIRY_MICROS - 1));
        assert!(once.first(a, r, VIEWED, EXPIRY_MICROS), "expired");
    }

    #[test]
    fn a_full_set_forgets_rather_than_refuses() {
        let once = AuditedOnce::default();
        for i in 0..CAPACITY as u64 {
            assert!(once.first([0; 32], RecordingId(i), VIEWED, i as i64));
        }
        assert!(once.first([9; 32], RecordingId(0), VIEWED, 5_000));
        assert!(once.logged.lock().expect("lock").len() <= CAPACITY);
        // The oldest was forgotten: it is due again, not silently dropped.
        assert!(once.first([0; 32], RecordingId(0), VIEWED, 5_001));
    }
}
