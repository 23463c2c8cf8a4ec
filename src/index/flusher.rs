//! The index's periodic flush, in place of sled's own.
//!
//! Why: sled 0.34's flusher thread fsyncs the database file every `flush_every_ms`
//! (500 ms by default) whether or not anything was written, and spawns an IO thread
//! for each round. On an idle daemon that is two fsyncs a second forever — wear on an
//! SD card — and, measured with one camera recording (`make bench-ingest`), about a
//! sixth of the daemon's context switches. `Db::flush` on the other hand returns at
//! once, without a system call, when nothing is pending.
//!
//! So the index keeps sled's flusher only for its segment clean-up, at
//! [`SLED_FLUSHER_EVERY_MS`], and this thread calls `Db::flush` every
//! [`FLUSH_EVERY`]: writes the code does not flush itself (audit rows, sessions,
//! preferences) are as durable as before, and nothing is written while nothing
//! changes. The writes whose order matters (recordings, deletions, accounts) still
//! flush explicitly where they are made.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often pending index writes are made durable: sled's own default.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// sled's flusher also garbage-collects log segments; once a minute is plenty for an
/// index written a few times a minute.
pub const SLED_FLUSHER_EVERY_MS: u64 = 60_000;

/// The flush thread. Dropped with the last clone of the index: it flushes once more
/// and ends, so the database can close (and be reopened) right after.
pub(super) struct Flusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(super) fn start(db: sled::Db) -> std::io::Result<Flusher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("index flush".into())
            .spawn(move || {
                // A full disk fails every round: say so once, and when it passes.
                let mut failing = false;
                loop {
                    let last = match stopped.recv_timeout(FLUSH_EVERY) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    match db.flush() {
                        Err(e) if !failing => {
                            tracing::error!("cannot flush the index (retrying every 500 ms): {e}");
                            failing = true;
                        }
                        Err(_) => {}
                        Ok(_) if failing => {
                            tracing::info!("the index is flushed again");
                            failing = false;
                        }
                        Ok(_) => {}
                    }
                    if last {
                        return;
                    }
                }
            })?;
        Ok(Flusher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the index flush thread panicked");
            }
        }
    }
}
