//! `porchlight serve` says at start when recording times may be wrong: a clock that
//! systemd-timesyncd has not synchronised, or whose state nothing here reports. The
//! state is this machine's (read from /run/systemd/timesync as the daemon reads it);
//! a synchronised machine is told nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Setup;

#[test]
fn serve_logs_an_unsynchronised_or_unknown_clock_once_at_start() {
    let setup = Setup::new(&[], "");
    let mut daemon = setup.start_daemon();
    daemon.wait_for_log("web UI listening on", 1, Duration::from_secs(30));
    let sync = porchlight::clock::clock_sync(Path::new(porchlight::clock::TIMESYNC_DIR));
    let warning = porchlight::clock::sync_warning(sync);
    if let Some(warning) = warning {
        daemon.wait_for_log(&warning[..40], 1, Duration::from_secs(10));
    }
    let log = daemon.log_text();
    daemon.stop();
    match warning {
        None => assert!(!log.contains("The clock is not synchronised"), "{log}"),
        Some(warning) => assert_eq!(
            log.lines().filter(|l| l.contains(&warning[..40])).count(),
            1,
            "{sync:?} is logged once at start:\n{log}"
        ),
    }
}
