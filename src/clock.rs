//! Time as an input. Retention by age, session timeouts and link expiry ask a
//! [`Clock`] for the time instead of calling the system clock, so tests can move time
//! forward without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Wall-clock time source, in microseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_micros(&self) -> i64;
}

/// The host's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        let now = time::OffsetDateTime::now_utc();
        (now.unix_timestamp_nanos() / 1_000) as i64
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Clone, Debug, Default)]
pub struct SimulatedClock(Arc<AtomicI64>);

impl SimulatedClock {
    pub fn new(start_micros: i64) -> Self {
        SimulatedClock(Arc::new(AtomicI64::new(start_micros)))
    }
    pub fn advance_micros(&self, delta: i64) {
        self.0.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for SimulatedClock {
    fn now_micros(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats Unix microseconds as RFC 3339 in UTC (what the CLI prints and parses).
pub fn rfc3339(micros: i64) -> String {
    let nanos = i128::from(micros) * 1_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{micros}us"))
}

/// Parses RFC 3339 (e.g. `2026-11-26T10:00:00Z` or with an offset) to Unix microseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_microseconds() {
        let micros = 1_795_000_000_123_456;
        assert_eq!(parse_rfc3339(&rfc3339(micros)), Some(micros));
    }

    #[test]
    fn simulated_clock_moves_only_when_told() {
        let clock = SimulatedClock::new(10);
        assert_eq!(clock.now_micros(), 10);
        clock.advance_micros(5);
        assert_eq!(clock.now_micros(), 15);
    }
}
