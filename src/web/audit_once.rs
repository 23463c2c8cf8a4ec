//! Audit entries written once per session, client address, subject (a recording, or a
//! kind of request) and kind ([`AuditedOnce`]).
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
//!
//! The same goes for opening a share link: each open from the same address within
//! the hour is one more viewer of that link, and one entry per link and address says
//! so (the link's view count on Shared videos counts every open). There the key is
//! the link and the address ([`crate::web::pages::shares::OpenedKey`]).
//!
//! A support helper's requests are logged the same way ([`Subject::Request`]): each
//! one is something done under support access, but a helper's script must not grow
//! the owner's log (never pruned) at request rate.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;

use crate::index::AuditKind;
use crate::model::RecordingId;

/// How long one entry covers the same session's further requests: an hour, about a
/// long sitting in front of the player.
pub const EXPIRY_MICROS: i64 = 3_600_000_000;
/// Remembered entries at most (~96 bytes each).
pub const CAPACITY: usize = 4096;

/// What an entry is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Recording(RecordingId),
    /// A kind of request: a hash of its method and route (the route's pattern, so a
    /// script walking ids or paths is one subject, and their number is bounded).
    Request(u64),
}

impl Subject {
    pub fn request(method_and_route: &str) -> Self {
        let mut h = std::hash::DefaultHasher::new();
        method_and_route.hash(&mut h);
        Subject::Request(h.finish())
    }
}

/// Whose access to what: (session key, client address, subject, kind). The
/// address is the one the entry names (`None`: none known).
pub type Key = ([u8; 32], Option<IpAddr>, Subject, AuditKind);

/// What was logged recently, by key ([`Key`] unless told otherwise), with when.
pub struct AuditedOnce<K = Key> {
    logged: Mutex<HashMap<K, i64>>,
}

impl<K> Default for AuditedOnce<K> {
    fn default() -> Self {
        AuditedOnce {
            logged: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> AuditedOnce<K> {
    /// Writes the entry for `key` with `write` (which answers whether the entry was
    /// written) if one is due at `now` (see [`first`](Self::first)). A write that
    /// fails is forgotten again: the next request writes it, instead of one failure
    /// leaving every request for an hour unlogged. Requests that come while the
    /// write is under way count it as written (so a player's burst of range
    /// requests still writes one entry); if it fails, they are not logged either.
    pub async fn write_once<E>(
        &self,
        key: K,
        now: i64,
        write: impl std::future::Future<Output = Result<bool, E>>,
    ) -> Result<(), E> {
        if !self.first(key.clone(), now) {
            return Ok(());
        }
        // Not written, or not known to be: forgotten, also on an error.
        let written = write.await;
        if !matches!(written, Ok(true)) {
            self.forget(&key, now);
        }
        written.map(|_| ())
    }

    /// Whether an entry for `key` is due at `now` (none in the last
    /// [`EXPIRY_MICROS`]); if so, it is counted as written from now on.
    pub fn first(&self, key: K, now: i64) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
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
                if let Some(oldest) = logged
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
                {
                    logged.remove(&oldest);
                }
            }
        }
        logged.insert(key, now);
        true
    }

    /// Undoes [`first`](Self::first)'s mark of `key` at `at`, unless a later one
    /// replaced it.
    fn forget(&self, key: &K, at: i64) {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.get(key) == Some(&at) {
            logged.remove(key);
        }
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
        let (a, b, r, at) = ([1; 32], [2; 32], Subject::Recording(RecordingId(7)), home());
        assert!(once.first((a, at, r, VIEWED), 0));
        assert!(!once.first((a, at, r, VIEWED), 10));
        assert!(once.first((b, at, r, VIEWED), 10), "another session");
        assert!(
            once.first((a, at, Subject::Recording(RecordingId(8)), VIEWED), 10),
            "another recording"
        );
        assert!(
            once.first((a, at, r, AuditKind::RecordingDownloaded), 10),
            "another kind"
        );
        assert!(!once.first((a, at, r, VIEWED), EXPIRY_MICROS - 1));
        assert!(once.first((a, at, r, VIEWED), EXPIRY_MICROS), "expired");
    }

    /// The same cookie used from elsewhere (taken, or the owner's phone leaving home)
    /// is logged again, with where it is used from.
    #[test]
    fn the_same_session_from_another_address_is_due_again() {
        let once = AuditedOnce::default();
        let (s, r, at) = ([1; 32], Subject::Recording(RecordingId(7)), home());
        let elsewhere = "198.51.100.7".parse().ok();
        assert!(once.first((s, at, r, VIEWED), 0));
        assert!(once.first((s, elsewhere, r, VIEWED), 10), "another address");
        assert!(!once.first((s, elsewhere, r, VIEWED), 20));
        assert!(!once.first((s, at, r, VIEWED), 30), "home is still covered");
    }

    #[test]
    fn a_full_set_forgets_rather_than_refuses() {
        let once = AuditedOnce::default();
        let at = home();
        for i in 0..CAPACITY as u64 {
            assert!(once.first(
                ([0; 32], at, Subject::Recording(RecordingId(i)), VIEWED),
                i as i64
            ));
        }
        assert!(once.first(
            ([9; 32], at, Subject::Recording(RecordingId(0)), VIEWED),
            5_000
        ));
        assert!(once.logged.lock().expect("lock").len() <= CAPACITY);
        // The oldest was forgotten: it is due again, not silently dropped.
        assert!(once.first(
            ([0; 32], at, Subject::Recording(RecordingId(0)), VIEWED),
            5_001
        ));
    }

    /// One failed write (`false`, or an error) does not stand for an hour of
    /// requests: the next one writes again, and once written, it is covered.
    #[tokio::test]
    async fn a_failed_write_is_tried_again_by_the_next_request() {
        let once = AuditedOnce::default();
        let key = ([1; 32], home(), Subject::Recording(RecordingId(7)), VIEWED);
        let writes = std::cell::Cell::new(0);
        // Counts the writes actually attempted (awaited), not the futures made.
        let write = |ok: Result<bool, ()>| {
            let writes = &writes;
            async move {
                writes.set(writes.get() + 1);
                ok
            }
        };
        assert_eq!(once.write_once(key, 0, write(Ok(false))).await, Ok(()));
        assert_eq!(once.write_once(key, 10, write(Err(()))).await, Err(()));
        assert_eq!(once.write_once(key, 20, write(Ok(true))).await, Ok(()));
        assert_eq!(writes.get(), 3, "each failure was tried again");
        assert_eq!(once.write_once(key, 30, write(Ok(true))).await, Ok(()));
        assert_eq!(writes.get(), 3, "covered once written");
    }

    /// Undoing a mark leaves a later one alone.
    #[test]
    fn forgetting_an_old_mark_keeps_a_newer_one() {
        let once = AuditedOnce::default();
        let key = ([1; 32], home(), Subject::Recording(RecordingId(7)), VIEWED);
        assert!(once.first(key, 0));
        once.forget(&key, 0);
        assert!(once.first(key, 10), "forgotten");
        once.forget(&key, 0);
        assert!(!once.first(key, 20), "the mark at 10 stays");
    }
}
