//! The recorder: decides when a camera's frames are written, and writes them.
//!
//! Each recorded camera gets a dedicated OS thread (file writes and fsyncs block, and
//! must never stall the async runtime that serves cameras and the web UI) fed by a
//! small async forwarder from the camera's frame hub. What to record is an input: the
//! camera's mode plus triggers and motion updates sent through [`RecorderHandle`], so
//! motion detection, the doorbell API and live view plug in without touching the
//! writing loop (`machine.rs` decides, `segment.rs` writes, `event.rs` keeps events).
//!
//! Durable order per recording (see `store` and `index`): the store creates and fsyncs
//! the file, then the `Open` entry is written and flushed; at the end the entry becomes
//! `Finished`. A crash in between leaves an `Open` entry that start-up recovery
//! finishes from the file.
//!
//! Frames lost before reaching this thread (a lagging or full queue) close the current
//! recording at that point instead of silently joining across the gap.

mod event;
mod machine;
pub mod motion_feed;
mod segment;

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify};

pub use machine::MotionUpdate;

use crate::camera::CameraHandle;
use crate::clock::Clock;
use crate::config::RecordingConfig;
use crate::index::Index;
use crate::model::{CameraId, Frame, Trigger};
use crate::store::Store;
use machine::Recorder;

/// Inputs queued for one camera's recorder.
const QUEUE_LEN: usize = 256;

enum RecorderInput {
    Frame(Arc<Frame>),
    /// Frames were lost upstream: do not join across this point.
    Gap,
    /// Record (at least) `duration` from now, plus the post-roll.
    Trigger {
        kind: Trigger,
        duration: Duration,
    },
    Motion(MotionUpdate),
}

/// Where a recorder's inputs are sent from (the daemon, live view, the motion
/// worker). Cheap to clone; the recorder finishes once every sender is gone.
#[derive(Clone)]
pub struct RecorderSender {
    tx: SyncSender<RecorderInput>,
}

impl RecorderSender {
    /// Asks the recorder to record for `duration` from now, plus the camera's
    /// post-roll (doorbell, API, live view). Returns false if the recorder is gone
    /// or too busy to take it.
    pub fn trigger(&self, kind: Trigger, duration: Duration) -> bool {
        self.tx
            .try_send(RecorderInput::Trigger { kind, duration })
            .is_ok()
    }

    /// Passes on a motion analysis result (dropped if the recorder is too busy).
    pub fn motion(&self, update: MotionUpdate) -> bool {
        self.tx.try_send(RecorderInput::Motion(update)).is_ok()
    }
}

/// Handle to a running recorder thread.
pub struct RecorderHandle {
    camera: CameraId,
    sender: Option<RecorderSender>,
    thread: Option<JoinHandle<()>>,
}

impl RecorderHandle {
    pub fn camera(&self) -> &CameraId {
        &self.camera
    }

    pub fn sender(&self) -> Option<RecorderSender> {
        self.sender.clone()
    }

    /// See [`RecorderSender::trigger`].
    pub fn trigger(&self, kind: Trigger, duration: Duration) -> bool {
        self.sender
            .as_ref()
            .is_some_and(|s| s.trigger(kind, duration))
    }

    /// Waits for the recorder to finish its open recording after shutdown began
    /// (the forwarder and other senders drop theirs on shutdown).
    pub fn join(mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(camera = %self.camera, "recorder thread panicked");
            }
        }
    }
}

/// Starts recording `camera` according to its configuration. Must be called inside
/// a tokio runtime (the forwarder is a task).
pub fn spawn(
    camera: Arc<CameraHandle>,
    store: Arc<Store>,
    index: Index,
    settings: RecordingConfig,
    clock: Arc<dyn Clock>,
    retention_kick: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<RecorderHandle> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_LEN);
    let id = camera.id().clone();
    tokio::spawn(forward(camera.subscribe(), tx.clone(), shutdown));
    let mut recorder = Recorder::new(
        id.clone(),
        camera.config.mode,
        store,
        index,
        settings,
        clock,
    );
    recorder.pre_roll = camera.config.pre_roll;
    recorder.post_roll = camera.config.post_roll;
    recorder.handle = Some(camera);
    recorder.retention_kick = Some(retention_kick);
    let thread = std::thread::Builder::new()
        .name(format!("rec-{id}"))
        .spawn(move || run(&mut recorder, rx))?;
    Ok(RecorderHandle {
        camera: id,
        sender: Some(RecorderSender { tx }),
        thread: Some(thread),
    })
}

fn run(recorder: &mut Recorder, rx: mpsc::Receiver<RecorderInput>) {
    let tick = recorder.settings.sync_interval / 2;
    loop {
        match rx.recv_timeout(tick) {
            Ok(RecorderInput::Frame(frame)) => recorder.on_frame(frame),
            Ok(RecorderInput::Gap) => recorder.close(None, "frames were lost upstream"),
            Ok(RecorderInput::Trigger { kind, duration }) => {
                recorder.on_trigger(kind, None, duration)
            }
            Ok(RecorderInput::Motion(update)) => recorder.on_motion(update),
            Err(RecvTimeoutError::Timeout) => recorder.tick(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let now = recorder.clock.now_micros();
    recorder.close_event(now);
    recorder.close(None, "shutting down");
}

/// Moves frames from the hub to the recorder thread without ever blocking the runtime.
async fn forward(
    mut frames: broadcast::Receiver<Arc<Frame>>,
    tx: SyncSender<RecorderInput>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut gap = false;
    loop {
        let frame = tokio::select! {
            r = frames.recv() => r,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(lost = n, "recorder fell behind the camera; {n} frames lost");
                gap = true;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        if gap {
            match tx.try_send(RecorderInput::Gap) {
                Ok(()) => gap = false,
                Err(TrySendError::Full(_)) => continue,
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        match tx.try_send(RecorderInput::Frame(frame)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => gap = true,
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
    // Dropping `tx` (with the handle's clone) lets the thread drain and finish.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimulatedClock;
    use crate::config::RecordingMode;
    use crate::index::RecordingState;
    use crate::model::VideoParams;
    use crate::store::mp4::testutil::encode_test_stream;

    /// Real x264 frames (3 s, keyframe every 10) through a recorder that rolls over
    /// every second: every frame lands in exactly one file, and each file starts
    /// exactly where the previous one ended.
    #[test]
    fn roll_over_loses_and_duplicates_no_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stream = encode_test_stream(dir.path());
        let store = Arc::new(
            Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
                .expect("store"),
        );
        let index = Index::open(&dir.path().join("index")).expect("index");
        let camera: CameraId = "cam".parse().expect("name");
        let settings = RecordingConfig {
            rollover: Duration::from_secs(1),
            sync_interval: Duration::from_secs(2),
        };
        let clock = Arc::new(SimulatedClock::new(0));
        let mut recorder = Recorder::new(
            camera.clone(),
            RecordingMode::Continuous,
            store.clone(),
            index.clone(),
            settings,
            clock,
        );
        let params = Arc::new(VideoParams {
            codec: "avc1".into(),
            width: stream.track.width,
            height: stream.track.height,
            sample_entry: stream.track.sample_entry.clone(),
        });
        let start = 1_800_000_000_000_000;
        let mut pts = 0i64;
        for sample in &stream.samples {
            recorder.on_frame(Arc::new(Frame {
                session: 1,
                pts,
                wall_micros: start + pts * 1_000_000 / i64::from(crate::model::TIMESCALE),
                is_key: sample.is_sync,
                data: sample.data.clone(),
                params: params.clone(),
            }));
            pts += i64::from(sample.duration);
        }
        recorder.close(Some(pts), "test end");

        let entries = index.all_recordings().expect("entries");
        assert_eq!(entries.len(), 3, "3 s at a 1 s roll-over: {entries:?}");
        assert_eq!(
            entries.iter().map(|e| e.frames).sum::<u64>(),
            stream.samples.len() as u64
        );
        assert_eq!(entries[0].start_micros, start);
        for pair in entries.windows(2) {
            assert_eq!(
                pair[0].end_micros, pair[1].start_micros,
                "files join exactly"
            );
        }
        let mut total = 0;
        for entry in &entries {
            assert_eq!(entry.state, RecordingState::Finished);
            let mut reader = store.open_recording(&camera, entry.id).expect("open");
            let parsed = reader.parse().expect("parse");
            assert!(parsed.samples[0].is_sync, "each file starts at a keyframe");
            assert_eq!(parsed.samples.len() as u64, entry.frames);
            for s in &parsed.samples {
                let mut data = vec![0; s.size as usize];
                crate::store::mp4::ReadAt::read_exact_at(&mut reader, s.offset, &mut data)
                    .expect("read");
                assert_eq!(
                    data, stream.samples[total].data,
                    "frame {total} is byte-identical"
                );
                total += 1;
            }
        }
    }

    #[test]
    fn events_mode_records_only_while_triggered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = SimulatedClock::new(1_000_000);
        let store = Arc::new(
            Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
                .expect("store"),
        );
        let index = Index::open(&dir.path().join("index")).expect("index");
        let settings = RecordingConfig {
            rollover: Duration::from_secs(600),
            sync_interval: Duration::from_secs(2),
        };
        let mut recorder = Recorder::new(
            "cam".parse().expect("name"),
            RecordingMode::Events,
            store,
            index,
            settings,
            Arc::new(clock.clone()),
        );
        recorder.post_roll = Duration::ZERO;
        assert_eq!(recorder.wanted(1_000_000), None);
        recorder.on_trigger(Trigger::External, None, Duration::from_secs(10));
        assert_eq!(recorder.wanted(5_000_000), Some(Trigger::External));
        assert_eq!(recorder.wanted(11_000_000), None, "10 s after the trigger");
        recorder.mode = RecordingMode::Off;
        assert_eq!(recorder.wanted(5_000_000), None, "off never records");
    }
}

#[cfg(test)]
mod preroll_tests {
    use super::*;
    use crate::clock::SimulatedClock;
    use crate::config::RecordingMode;
    use crate::model::{VideoParams, TIMESCALE};
    use crate::store::mp4::testutil::encode_test_stream;

    /// Events mode with 1 s pre-roll: a 0.5 s trigger at 2.0 s records from the
    /// keyframe at 1.0 s to 2.5 s, as one event holding that one recording.
    #[test]
    fn a_trigger_records_from_the_preroll_keyframe_until_the_post_roll_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stream = encode_test_stream(dir.path());
        let store = Arc::new(
            Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
                .expect("store"),
        );
        let index = Index::open(&dir.path().join("index")).expect("index");
        let clock = SimulatedClock::new(0);
        let settings = RecordingConfig {
            rollover: Duration::from_secs(600),
            sync_interval: Duration::from_secs(2),
        };
        let mut recorder = Recorder::new(
            "cam".parse().expect("name"),
            RecordingMode::Events,
            store,
            index.clone(),
            settings,
            Arc::new(clock.clone()),
        );
        recorder.pre_roll = Duration::from_secs(1);
        recorder.post_roll = Duration::from_millis(300);
        let params = Arc::new(VideoParams {
            codec: "avc1".into(),
            width: stream.track.width,
            height: stream.track.height,
            sample_entry: stream.track.sample_entry.clone(),
        });
        let start = 1_800_000_000_000_000;
        for (i, sample) in stream.samples.iter().enumerate() {
            let pts = i as i64 * 9000;
            let wall = start + pts * 1_000_000 / i64::from(TIMESCALE);
            if i == 20 {
                clock.advance_micros(wall - clock.now_micros());
                recorder.on_trigger(Trigger::External, None, Duration::from_millis(200));
                assert!(
                    index.all_events().expect("events")[0].open,
                    "an open event is visible at once"
                );
            }
            recorder.on_frame(Arc::new(Frame {
                session: 1,
                pts,
                wall_micros: wall,
                is_key: sample.is_sync,
                data: sample.data.clone(),
                params: params.clone(),
            }));
        }
        let recordings = index.all_recordings().expect("recordings");
        assert_eq!(recordings.len(), 1, "{recordings:?}");
        let r = &recordings[0];
        assert_eq!(
            r.start_micros,
            start + 1_000_000,
            "starts at the keyframe a pre-roll before"
        );
        assert_eq!(
            r.frames, 15,
            "frames 10..25: 1 s of pre-roll, 0.2 s trigger, 0.3 s post-roll"
        );
        assert_eq!(r.trigger, Trigger::External);
        let events = index.all_events().expect("events");
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert!(!e.open);
        assert_eq!(e.recordings, vec![r.id]);
        assert_eq!(
            (e.start_micros, e.end_micros),
            (start + 1_000_000, start + 2_500_000)
        );
        assert_eq!(e.triggers, vec![Trigger::External]);
    }
}
