//! When a session's use is written to the index: the address and time a session was
//! last used from (what the Devices page shows as "Last seen from", and the idle
//! timeout goes by) cost an index write, and an SD card should not get one per
//! request.
//!
//! The same address is written at most once per [`session::TOUCH_INTERVAL`] (which
//! bounds the idle timeout's precision). A *new* address is written at once, so a
//! cookie used from somewhere else shows up on Devices straight away; "new" means
//! not written for this session within the last interval. So a client that
//! alternates between a few addresses (dual-stack, a carrier NAT that rotates its
//! addresses) costs one write per address per interval, not one per request, and
//! the stored address is always one the session was used from within an interval
//! of its last use (as precise as the stored time already was). At most
//! [`RECENT_ADDRESSES`] new addresses per session are written at once per interval:
//! beyond that (someone cycling through addresses) they wait for the next regular
//! write. The activity log does not depend on any of this: it takes each request's
//! own address (see [`super::session_actor`]).
//!
//! What was written when is kept in memory only: after a restart each address is
//! written once more.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use super::session;

/// How many addresses per session are remembered, and written at once, per interval.
pub const RECENT_ADDRESSES: usize = 4;

/// The addresses a session's use was written from lately, each with when (µs).
type Recent = Vec<(IpAddr, i64)>;

/// Per session key, what was written lately.
#[derive(Default)]
pub struct Written(Mutex<HashMap<[u8; 32], Recent>>);

fn interval() -> i64 {
    i64::try_from(session::TOUCH_INTERVAL.as_micros()).unwrap_or(i64::MAX)
}

/// Whether a use from `from` at `now` must be written at once: `stored` is the
/// address the index holds, `recent` what was written lately (oldest entries may be
/// stale). Pure, for the tests.
fn write_at_once(recent: &[(IpAddr, i64)], stored: &str, from: IpAddr, now: i64) -> bool {
    let fresh = |at: i64| now - at < interval();
    if stored == from.to_string() {
        return false;
    }
    if recent.iter().any(|&(ip, at)| ip == from && fresh(at)) {
        return false;
    }
    recent.iter().filter(|&&(_, at)| fresh(at)).count() < RECENT_ADDRESSES
}

impl Written {
    /// Whether a use of session `key` from `from` at `now` is to be written at once
    /// (apart from the once-per-interval write, which the caller decides).
    pub fn write_at_once(&self, key: &[u8; 32], stored: &str, from: IpAddr, now: i64) -> bool {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let recent = map.get(key).map(Vec::as_slice).unwrap_or_default();
        write_at_once(recent, stored, from, now)
    }

    /// Notes that session `key`'s use from `from` was written at `now`. Sessions with
    /// nothing written within the interval are forgotten here (a stale entry never
    /// holds a write back), so the map holds only sessions written lately.
    pub fn note(&self, key: &[u8; 32], from: IpAddr, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, recent| recent.iter().any(|&(_, at)| now - at < interval()));
        let recent = map.entry(*key).or_default();
        recent.retain(|&(ip, _)| ip != from);
        if recent.len() >= RECENT_ADDRESSES {
            if let Some(oldest) = (0..recent.len()).min_by_key(|&i| recent[i].1) {
                recent.swap_remove(oldest);
            }
        }
        recent.push((from, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{SessionEntry, SessionStage};

    const SEC: i64 = 1_000_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_new_address_is_written_at_once_a_recent_one_waits() {
        let w = Written::default();
        let key = [1; 32];
        let stored = ip(1).to_string();
        assert!(!w.write_at_once(&key, &stored, ip(1), 0), "the stored one");
        assert!(w.write_at_once(&key, &stored, ip(2), 0), "a new one");
        w.note(&key, ip(2), 0);
        let stored = ip(2).to_string();
        assert!(w.write_at_once(&key, &stored, ip(1), SEC), "the login's");
        w.note(&key, ip(1), SEC);
        let stored = ip(1).to_string();
        assert!(
            !w.write_at_once(&key, &stored, ip(2), 2 * SEC),
            "written lately"
        );
        assert!(
            w.write_at_once(&key, &stored, ip(2), 60 * SEC),
            "written over a minute ago"
        );
        assert!(
            w.write_at_once(&[2; 32], &stored, ip(2), 2 * SEC),
            "per session"
        );
    }

    #[test]
    fn cycling_through_addresses_writes_a_few_at_once_per_minute() {
        let w = Written::default();
        let key = [1; 32];
        let mut at_once = 0;
        for i in 0..40u8 {
            let now = i64::from(i) * SEC;
            if w.write_at_once(&key, "198.51.100.1", ip(i), now) {
                w.note(&key, ip(i), now);
                at_once += 1;
            }
        }
        assert_eq!(at_once, RECENT_ADDRESSES);
        assert!(w.write_at_once(&key, "198.51.100.1", ip(99), 60 * SEC));
    }

    /// A client alternating between two addresses used to cost an index write per
    /// request; now one per address per minute (counted on the sessions tree itself).
    #[test]
    fn alternating_addresses_do_not_write_the_index_per_request() {
        let f = crate::auth::tests::fixture();
        let (auth, index) = (&f.auth, &f.index);
        let id = session::new_id();
        let start = f.auth.now();
        let entry = SessionEntry {
            user: f.owner,
            stage: SessionStage::Full,
            created_micros: start,
            last_seen_micros: start,
            csrf: String::new(),
            ip: ip(1).to_string(),
            last_ip: None,
            user_agent: "test".into(),
            device: String::new(),
            pending_totp: None,
        };
        index
            .put_session(&session::key_of(&id), &entry)
            .expect("session");
        let mut writes = index.watch_session_writes().expect("watch");
        for i in 0..40 {
            f.clock.advance_micros(SEC);
            let from = ip(1 + i % 2);
            let s = auth.session(&id, from).expect("lookup").expect("live");
            assert_eq!(
                crate::auth::session_actor(&s).address,
                Some(from),
                "the activity log names each request's own address"
            );
        }
        let n = writes.count();
        assert_eq!(n, 2, "writes for 40 requests within a minute");
        let stored = index
            .get_session(&session::key_of(&id))
            .expect("get")
            .expect("session");
        assert!(
            [ip(1), ip(2)]
                .iter()
                .any(|a| stored.last_address() == a.to_string()),
            "{stored:?}"
        );
        auth.session(&id, ip(3)).expect("lookup").expect("live");
        assert_eq!(writes.count(), 1, "a new address is written at once");
        assert_eq!(
            index
                .get_session(&session::key_of(&id))
                .expect("get")
                .expect("session")
                .last_address(),
            ip(3).to_string()
        );
    }
}
