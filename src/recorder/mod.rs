//! The recorder: decides when a camera's frames are written, and writes them.
//!
//! Each recorded camera gets a dedicated OS thread (file writes and fsyncs block, and
//! must never stall the async runtime that serves cameras and, later, the web UI) fed
//! by a small async forwarder from the camera's frame hub. What to record is an input:
//! the camera's mode plus triggers sent through [`RecorderHandle::trigger`], so motion
//! detection and the doorbell API plug in without touching the writing loop.
//!
//! Durable order per recording (see `store` and `index`): the store creates and fsyncs
//! the file, then the `Open` entry is written and flushed; at the end the entry becomes
//! `Finished`. A crash in between leaves an `Open` entry that start-up recovery
//! finishes from the file.
//!
//! Frames lost before reaching this thread (a lagging or full queue) close the current
//! recording at that point instead of silently joining across the gap.

mod segment;

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::camera::CameraHandle;
use crate::clock::Clock;
use crate::config::{RecordingConfig, RecordingMode};
use crate::index::{Index, RecordingEntry, RecordingState};
use crate::model::{CameraId, Frame, RecordingId, Trigger};
use crate::store::{NewRecording, Store};
use segment::OpenRecording;

/// Inputs queued for one camera's recorder.
const QUEUE_LEN: usize = 256;

enum RecorderInput {
    Frame(Arc<Frame>),
    /// Frames were lost upstream: do not join across this point.
    Gap,
    /// Record (at least) until `duration` after the next frame's time.
    Trigger {
        kind: Trigger,
        duration: Duration,
    },
}

/// Handle to a running recorder thread.
pub struct RecorderHandle {
    camera: CameraId,
    tx: Option<SyncSender<RecorderInput>>,
    thread: Option<JoinHandle<()>>,
}

impl RecorderHandle {
    /// Asks the recorder to record for `duration` from now (doorbell, API, live view).
    /// Returns false if the recorder is gone or too busy to take it.
    pub fn trigger(&self, kind: Trigger, duration: Duration) -> bool {
        self.tx.as_ref().is_some_and(|tx| {
            tx.try_send(RecorderInput::Trigger { kind, duration })
                .is_ok()
        })
    }

    /// Waits for the recorder to finish its open recording after shutdown began.
    pub fn join(mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(camera = %self.camera, "recorder thread panicked");
            }
        }
    }
}

/// Starts recording `camera` according to its mode. Must be called inside a tokio
/// runtime (the forwarder is a task).
pub fn spawn(
    camera: Arc<CameraHandle>,
    store: Arc<Store>,
    index: Index,
    settings: RecordingConfig,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<RecorderHandle> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_LEN);
    let id = camera.id().clone();
    tokio::spawn(forward(camera.subscribe(), tx.clone(), shutdown));
    let mut recorder = Recorder {
        camera: id.clone(),
        mode: camera.config.mode,
        store,
        index,
        settings,
        clock,
        open: None,
        triggered: None,
    };
    let thread = std::thread::Builder::new()
        .name(format!("rec-{id}"))
        .spawn(move || recorder.run(rx))?;
    Ok(RecorderHandle {
        camera: id,
        tx: Some(tx),
        thread: Some(thread),
    })
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

struct Recorder {
    camera: CameraId,
    mode: RecordingMode,
    store: Arc<Store>,
    index: Index,
    settings: RecordingConfig,
    clock: Arc<dyn Clock>,
    open: Option<OpenRecording>,
    /// Trigger kind and the wall time (µs) until which it asks for recording.
    triggered: Option<(Trigger, i64)>,
}

impl Recorder {
    fn run(&mut self, rx: mpsc::Receiver<RecorderInput>) {
        let tick = self.settings.sync_interval / 2;
        loop {
            match rx.recv_timeout(tick) {
                Ok(RecorderInput::Frame(frame)) => self.on_frame(frame),
                Ok(RecorderInput::Gap) => self.close(None, "frames were lost upstream"),
                Ok(RecorderInput::Trigger { kind, duration }) => self.on_trigger(kind, duration),
                Err(RecvTimeoutError::Timeout) => self.sync_if_due(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.close(None, "shutting down");
    }

    fn on_trigger(&mut self, kind: Trigger, duration: Duration) {
        let now = self.clock.now_micros();
        let until = now + duration.as_micros() as i64;
        self.triggered = match self.triggered {
            Some((k, old)) if old > until => Some((k, old)),
            Some((k, _)) => Some((k, until)),
            None => Some((kind, until)),
        };
    }

    /// The trigger a frame at `wall_micros` should be recorded under, if any.
    fn wanted(&self, wall_micros: i64) -> Option<Trigger> {
        match self.mode {
            RecordingMode::Off => None,
            RecordingMode::Continuous => Some(Trigger::Continuous),
            RecordingMode::Events => match self.triggered {
                Some((kind, until)) if wall_micros < until => Some(kind),
                _ => None,
            },
        }
    }

    fn on_frame(&mut self, frame: Arc<Frame>) {
        if let Some(open) = &self.open {
            if !open.accepts(&frame) {
                let next = (frame.session == open.session).then_some(frame.pts);
                self.close(next, "the stream changed");
            }
        }
        let Some(trigger) = self.wanted(frame.wall_micros) else {
            if self.open.is_some() {
                self.close(Some(frame.pts), "no longer triggered");
            }
            return;
        };
        match self.open.as_mut() {
            Some(open) if frame.is_key && open.age_at(&frame) >= self.settings.rollover => {
                self.close(Some(frame.pts), "roll-over");
                self.start(&frame, trigger);
            }
            Some(open) => {
                if let Err(e) = open.push(frame) {
                    self.fail(e);
                }
            }
            None if frame.is_key => self.start(&frame, trigger),
            None => {}
        }
    }

    fn start(&mut self, first: &Arc<Frame>, trigger: Trigger) {
        let new = NewRecording {
            id: RecordingId::random(),
            camera: self.camera.clone(),
            start_micros: first.wall_micros,
            trigger,
        };
        let (writer, wrapped_key) = match self.store.create_recording(&new) {
            Ok(created) => created,
            Err(e) => {
                tracing::error!(camera = %self.camera, recording = %new.id, "cannot start recording: {e:#}");
                return;
            }
        };
        let entry = RecordingEntry {
            id: new.id,
            camera: new.camera.clone(),
            start_micros: new.start_micros,
            end_micros: new.start_micros,
            frames: 0,
            bytes: 0,
            trigger,
            wrapped_key,
            state: RecordingState::Open,
        };
        // The file is durable before its entry exists (the store fsynced both).
        if let Err(e) = self
            .index
            .put_recording(&entry)
            .and_then(|()| self.index.flush())
        {
            tracing::error!(camera = %self.camera, recording = %new.id, "cannot index new recording (check --repair adopts the file): {e}");
        }
        match OpenRecording::start(entry, writer, first, self.settings.sync_interval) {
            Ok(open) => {
                tracing::info!(camera = %self.camera, recording = %new.id, %trigger, "camera {}: recording started ({})", self.camera, new.id);
                self.open = Some(open);
            }
            Err(e) => {
                tracing::error!(camera = %self.camera, recording = %new.id, "cannot start recording: {e:#}")
            }
        }
    }

    fn sync_if_due(&mut self) {
        if let Some(open) = self.open.as_mut() {
            if open.needs_sync() {
                if let Err(e) = open.sync() {
                    self.fail(e);
                }
            }
        }
    }

    fn close(&mut self, next_pts: Option<i64>, why: &str) {
        let Some(open) = self.open.take() else { return };
        let id = open.entry.id;
        match open.finish(next_pts) {
            Ok((entry, _)) => {
                if let Err(e) = self
                    .index
                    .put_recording(&entry)
                    .and_then(|()| self.index.flush())
                {
                    tracing::error!(camera = %self.camera, recording = %id, "cannot finish index entry (start-up recovery will): {e}");
                }
                tracing::info!(camera = %self.camera, recording = %id, frames = entry.frames, "camera {}: recording finished ({id}, {why})", self.camera);
            }
            Err(e) => {
                tracing::error!(camera = %self.camera, recording = %id, "cannot finish recording (start-up recovery will): {e}")
            }
        }
    }

    /// A write failed: drop the file handle (its entry stays `Open`, and recovery keeps
    /// every chunk that made it to disk) and start afresh at the next keyframe.
    fn fail(&mut self, e: crate::store::StoreError) {
        let id = self.open.take().map(|o| o.entry.id);
        tracing::error!(camera = %self.camera, recording = ?id.map(|i| i.to_string()), "recording write failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimulatedClock;
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
        let mut recorder = Recorder {
            camera: camera.clone(),
            mode: RecordingMode::Continuous,
            store: store.clone(),
            index: index.clone(),
            settings: RecordingConfig {
                rollover: Duration::from_secs(1),
                sync_interval: Duration::from_secs(2),
            },
            clock: Arc::new(SimulatedClock::new(0)),
            open: None,
            triggered: None,
        };
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
        let mut recorder = Recorder {
            camera: "cam".parse().expect("name"),
            mode: RecordingMode::Events,
            store,
            index,
            settings: RecordingConfig {
                rollover: Duration::from_secs(600),
                sync_interval: Duration::from_secs(2),
            },
            clock: Arc::new(clock.clone()),
            open: None,
            triggered: None,
        };
        assert_eq!(recorder.wanted(1_000_000), None);
        recorder.on_trigger(Trigger::External, Duration::from_secs(10));
        assert_eq!(recorder.wanted(5_000_000), Some(Trigger::External));
        assert_eq!(recorder.wanted(11_000_000), None, "10 s after the trigger");
        recorder.mode = RecordingMode::Off;
        assert_eq!(recorder.wanted(5_000_000), None, "off never records");
    }
}
