//! The API's defence against token guessing and log flooding: bad or missing bearer
//! tokens are counted per client address (IPv6 by /64, as the login throttle does),
//! and an address that sends [`LIMIT`] of them within [`WINDOW_MICROS`] is refused
//! with 429 for the next [`WINDOW_MICROS`] without its tokens being looked at, a good
//! one included (telling a good token apart would need the lookup the block saves,
//! and would let a guesser learn when it hit one).
//!
//! Logging: the first refusal from an address is logged; after that at most one line
//! per address per [`WINDOW_MICROS`], with the number of refusals since the previous
//! line. (The count is told with the address's next refusal after the minute, so
//! the last minute of a flood that stops is not told.)
//!
//! Pure logic: the time is an argument. The table is bounded: at most [`MAX_ADDRESSES`]
//! addresses are tracked, the least recently seen forgotten first. A good token does
//! not clear an address's count, so a guesser holding one low-scope token cannot use
//! it to reset the limit.

use std::collections::HashMap;
use std::sync::Mutex;

/// Bad or missing tokens from one address within [`WINDOW_MICROS`] before it is
/// blocked.
pub const LIMIT: u32 = 10;
/// The counting window, the length of a block and the least time between two log
/// lines about one address: a minute.
pub const WINDOW_MICROS: i64 = 60 * 1_000_000;
/// Most addresses tracked at once.
pub const MAX_ADDRESSES: usize = 4096;

/// What to log about a refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Log {
    /// The address's first refusal (or its first after a quiet spell): log it.
    First,
    /// A minute has passed since the address's last line: log this many refusals
    /// (this one included) since then.
    Summary(u32),
    /// Counted for the next summary; log nothing.
    Quiet,
}

/// A request from a blocked address: when to come back, and what to log.
#[derive(Debug, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after_secs: u64,
    pub log: Log,
}

#[derive(Clone, Copy)]
struct Entry {
    window_start: i64,
    failures: u32,
    blocked_until: i64,
    /// When the last line about this address was logged (`None`: never).
    logged_at: Option<i64>,
    /// Refusals since that line.
    unlogged: u32,
    last_seen: i64,
}

impl Entry {
    fn new(now: i64) -> Entry {
        Entry {
            window_start: now,
            failures: 0,
            blocked_until: i64::MIN,
            logged_at: None,
            unlogged: 0,
            last_seen: now,
        }
    }

    /// Nothing left to remember: not blocked, its window over, nothing untold.
    fn stale(&self, now: i64) -> bool {
        now >= self.blocked_until && now - self.window_start >= WINDOW_MICROS && self.unlogged == 0
    }

    /// Counts one refusal for the log and says what to log now.
    fn refusal(&mut self, now: i64) -> Log {
        self.last_seen = now;
        match self.logged_at {
            Some(at) if now - at < WINDOW_MICROS => {
                self.unlogged += 1;
                Log::Quiet
            }
            Some(_) if self.unlogged > 0 => {
                let count = self.unlogged + 1;
                (self.logged_at, self.unlogged) = (Some(now), 0);
                Log::Summary(count)
            }
            _ => {
                (self.logged_at, self.unlogged) = (Some(now), 0);
                Log::First
            }
        }
    }
}

/// Bad-token counts per address. Shared by every bearer-token check.
pub struct BadTokens {
    by_address: Mutex<HashMap<String, Entry>>,
}

impl Default for BadTokens {
    fn default() -> Self {
        BadTokens {
            by_address: Mutex::new(HashMap::new()),
        }
    }
}

impl BadTokens {
    /// Before a token is looked at: `Some` while `address` is blocked (the refusal is
    /// counted for the log).
    pub fn check(&self, address: &str, now: i64) -> Option<Blocked> {
        let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(address)?;
        if now >= entry.blocked_until {
            return None;
        }
        let wait = entry.blocked_until - now;
        Some(Blocked {
            retry_after_secs: u64::try_from((wait + 999_999) / 1_000_000)
                .unwrap_or(1)
                .max(1),
            log: entry.refusal(now),
        })
    }

    /// A bad or missing token from `address`: counts it (the [`LIMIT`]th within the
    /// window blocks the address) and says what to log.
    pub fn failed(&self, address: &str, now: i64) -> Log {
        let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(address) && map.len() >= MAX_ADDRESSES {
            make_room(&mut map, now);
        }
        let entry = map
            .entry(address.to_owned())
            .or_insert_with(|| Entry::new(now));
        if entry.stale(now) {
            *entry = Entry {
                logged_at: entry.logged_at,
                ..Entry::new(now)
            };
        }
        if now - entry.window_start >= WINDOW_MICROS {
            (entry.window_start, entry.failures) = (now, 0);
        }
        entry.failures += 1;
        if entry.failures >= LIMIT {
            entry.blocked_until = now + WINDOW_MICROS;
            // Counting starts afresh when the block ends.
            (entry.window_start, entry.failures) = (entry.blocked_until, 0);
        }
        entry.refusal(now)
    }

    /// How many addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.by_address
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Drops every stale entry, or if none is, the least recently seen one.
fn make_room(map: &mut HashMap<String, Entry>, now: i64) {
    map.retain(|_, e| !e.stale(now));
    if map.len() >= MAX_ADDRESSES {
        let oldest = map
            .iter()
            .min_by_key(|(_, e)| e.last_seen)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;

    #[test]
    fn the_tenth_bad_token_blocks_the_address_for_a_minute() {
        let t = BadTokens::default();
        for i in 0..LIMIT {
            assert_eq!(t.check("a", i as i64), None, "attempt {i} is looked at");
            t.failed("a", i as i64);
        }
        let blocked = t.check("a", 10).expect("blocked after the limit");
        assert_eq!(blocked.retry_after_secs, 60);
        assert_eq!(t.check("b", 10), None, "another address is not");
        assert!(t.check("a", 9 + 59 * SEC).is_some());
        assert_eq!(t.check("a", 9 + 60 * SEC), None, "the block ends");
        // Nine more are again allowed to be looked at.
        for i in 0..LIMIT - 1 {
            t.failed("a", 61 * SEC + i as i64);
        }
        assert_eq!(t.check("a", 62 * SEC), None);
    }

    #[test]
    fn failures_spread_over_more_than_a_minute_do_not_block() {
        let t = BadTokens::default();
        for i in 0..30 {
            t.failed("a", i * 7 * SEC);
            assert_eq!(t.check("a", i * 7 * SEC + 1), None, "failure {i}");
        }
    }

    #[test]
    fn the_first_refusal_is_logged_then_one_summary_a_minute() {
        let t = BadTokens::default();
        assert_eq!(t.failed("a", 0), Log::First);
        for i in 1..30 {
            let log = match t.check("a", i) {
                Some(b) => b.log,
                None => t.failed("a", i),
            };
            assert_eq!(log, Log::Quiet, "refusal {i}");
        }
        // A minute after the first line: one summary of the 29 since, plus this one.
        let b = t.check("a", 60 * SEC - 1).expect("still blocked");
        assert_eq!(b.log, Log::Quiet);
        assert_eq!(t.failed("a", 61 * SEC), Log::Summary(31));
        assert_eq!(t.failed("a", 62 * SEC), Log::Quiet);
        // After a quiet spell with nothing untold, the next refusal is a first again.
        let t = BadTokens::default();
        assert_eq!(t.failed("b", 0), Log::First);
        assert_eq!(t.failed("b", 10 * 60 * SEC), Log::First);
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_least_recently_seen() {
        let t = BadTokens::default();
        for i in 0..MAX_ADDRESSES + 10 {
            t.failed(&format!("addr:{i}"), i as i64);
        }
        assert_eq!(t.tracked(), MAX_ADDRESSES);
        // A blocked address seen recently is kept.
        for i in 0..LIMIT {
            t.failed("blocked", 1_000_000 + i as i64);
        }
        t.failed("one-more", 1_000_100);
        assert!(t.check("blocked", 1_000_200).is_some());
        assert_eq!(t.tracked(), MAX_ADDRESSES);
    }
}
