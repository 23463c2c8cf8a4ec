//! Time as an input. Retention by age, session timeouts and link expiry ask a
//! [`Clock`] for the time instead of calling the system clock, so tests can move time
//! forward without sleeping.
//!
//! It also says whether that time can be trusted. A Raspberry Pi has no real-time
//! clock: without network time it starts from the time saved at the last shutdown
//! (fake-hwclock), so recordings get wrong times and retention decides by them.
//! Waiting for a synchronised clock (`time-sync.target` with a waiting service)
//! would block a LAN-only house without NTP for ever, so the daemon records anyway
//! and says so: [`watch_sync`] logs each change, and the Control Centre shows it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Whether the system clock is known to follow network time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockSync {
    Synchronised,
    /// systemd-timesyncd runs but has not synchronised the clock since boot.
    NotSynchronised,
    /// Nothing here says (timesyncd is not running: chrony or ntpd may be, or none).
    Unknown,
}

/// systemd-timesyncd's runtime directory (`RuntimeDirectory=` of its unit, so it
/// exists while it runs); it creates `synchronized` in it at its first
/// synchronisation after boot (systemd 239 and later). Read, not the kernel's
/// `adjtimex` state: that needs an `unsafe` call, and this crate forbids them.
/// /run is readable under the unit's `ProtectSystem=strict`.
pub const TIMESYNC_DIR: &str = "/run/systemd/timesync";

/// The sync state from what is in `dir` (normally [`TIMESYNC_DIR`]).
pub fn clock_sync(dir: &Path) -> ClockSync {
    decide_sync(dir.is_dir(), dir.join("synchronized").exists())
}

/// The decision itself: timesyncd's directory without its flag file means it has
/// tried and not (yet) reached a time server; no directory means nobody here says.
pub fn decide_sync(timesyncd_runs: bool, synchronized_flag: bool) -> ClockSync {
    match (timesyncd_runs, synchronized_flag) {
        (_, true) => ClockSync::Synchronised,
        (true, false) => ClockSync::NotSynchronised,
        (false, false) => ClockSync::Unknown,
    }
}

/// What the owner reads about a sync state (`None` when all is well).
pub fn sync_warning(sync: ClockSync) -> Option<&'static str> {
    match sync {
        ClockSync::Synchronised => None,
        ClockSync::NotSynchronised => Some(
            "The clock is not synchronised: recording times may be wrong \
             (systemd-timesyncd has not reached a time server since this machine started).",
        ),
        ClockSync::Unknown => Some(
            "Whether the clock is synchronised cannot be read here (systemd-timesyncd is \
             not running; chrony or ntpd may be keeping it right). Without network time, \
             recording times may be wrong.",
        ),
    }
}

/// A recording may start this far after "now" before the clock counts as having gone
/// back (a recording's start is taken from this same clock, so only a step back puts
/// it in the future; the margin absorbs a small NTP correction).
pub const CLOCK_BACK_MARGIN_MICROS: i64 = 60_000_000;

/// How far `now` is behind the newest recording's start, if it is behind by more
/// than [`CLOCK_BACK_MARGIN_MICROS`]: the clock has gone back (a stale clock after a
/// restart without network time), and recordings made now sort before older ones.
pub fn behind_newest_recording(now_micros: i64, newest_start_micros: Option<i64>) -> Option<i64> {
    let behind = newest_start_micros?.saturating_sub(now_micros);
    (behind > CLOCK_BACK_MARGIN_MICROS).then_some(behind)
}

/// What the owner reads when [`behind_newest_recording`] finds the clock behind.
pub fn behind_warning(newest_start_micros: i64) -> String {
    format!(
        "The clock is behind the newest recording, which starts at {}: it has gone back, \
         so the times of new recordings are wrong, and retention deletes by those times.",
        rfc3339(newest_start_micros)
    )
}

/// Remembers the last sync state seen, so that a change is logged once (not at
/// every check).
#[derive(Debug, Default)]
pub struct SyncLog {
    last: Mutex<Option<ClockSync>>,
}

impl SyncLog {
    /// Records `now`; returns it if it differs from the state seen before (the first
    /// state counts as a change unless it is [`ClockSync::Synchronised`]).
    pub fn changed(&self, now: ClockSync) -> Option<ClockSync> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let before = last.replace(now);
        match before {
            None if now == ClockSync::Synchronised => None,
            Some(b) if b == now => None,
            _ => Some(now),
        }
    }
}

/// Checks the sync state in `dir` now and every `every`, and logs each change: a
/// warning while the clock is not (known to be) synchronised, info when it becomes so.
pub async fn watch_sync(dir: PathBuf, every: Duration) {
    let log = SyncLog::default();
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let check = dir.clone();
        let sync = tokio::task::spawn_blocking(move || clock_sync(&check))
            .await
            .unwrap_or(ClockSync::Unknown);
        match (log.changed(sync), sync_warning(sync)) {
            (None, _) => {}
            (Some(_), Some(warning)) => tracing::warn!("{warning}"),
            (Some(_), None) => tracing::info!("the clock is synchronised with network time"),
        }
    }
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
    fn sync_is_decided_from_timesyncd_and_its_flag() {
        assert_eq!(decide_sync(true, true), ClockSync::Synchronised);
        assert_eq!(decide_sync(true, false), ClockSync::NotSynchronised);
        assert_eq!(decide_sync(false, false), ClockSync::Unknown);
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(clock_sync(&dir.path().join("absent")), ClockSync::Unknown);
        assert_eq!(clock_sync(dir.path()), ClockSync::NotSynchronised);
        std::fs::write(dir.path().join("synchronized"), b"").expect("flag");
        assert_eq!(clock_sync(dir.path()), ClockSync::Synchronised);
        assert!(sync_warning(ClockSync::Synchronised).is_none());
        let unsynced = sync_warning(ClockSync::NotSynchronised).expect("a warning");
        assert!(unsynced.starts_with("The clock is not synchronised: recording times may be wrong"));
        assert!(sync_warning(ClockSync::Unknown)
            .expect("a warning")
            .contains("cannot be read"));
    }

    #[test]
    fn a_change_of_sync_state_is_logged_once() {
        let log = SyncLog::default();
        assert_eq!(
            log.changed(ClockSync::Synchronised),
            None,
            "all well at start"
        );
        assert_eq!(
            log.changed(ClockSync::NotSynchronised),
            Some(ClockSync::NotSynchronised)
        );
        assert_eq!(log.changed(ClockSync::NotSynchronised), None);
        assert_eq!(
            log.changed(ClockSync::Synchronised),
            Some(ClockSync::Synchronised)
        );
        let log = SyncLog::default();
        assert_eq!(
            log.changed(ClockSync::Unknown),
            Some(ClockSync::Unknown),
            "said at start"
        );
        assert_eq!(log.changed(ClockSync::Unknown), None);
    }

    #[test]
    fn a_clock_behind_the_newest_recording_has_gone_back() {
        let now = 1_795_000_000_000_000;
        assert_eq!(behind_newest_recording(now, None), None, "no recording yet");
        assert_eq!(
            behind_newest_recording(now, Some(now - 3_600_000_000)),
            None
        );
        assert_eq!(
            behind_newest_recording(now, Some(now + CLOCK_BACK_MARGIN_MICROS)),
            None,
            "within the margin"
        );
        let day = 86_400_000_000;
        assert_eq!(behind_newest_recording(now, Some(now + day)), Some(day));
        assert!(behind_warning(now + day).contains(&rfc3339(now + day)));
    }

    #[test]
    fn simulated_clock_moves_only_when_told() {
        let clock = SimulatedClock::new(10);
        assert_eq!(clock.now_micros(), 10);
        clock.advance_micros(5);
        assert_eq!(clock.now_micros(), 15);
    }
}
