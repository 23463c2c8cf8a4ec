//! The recorder: decides when a camera's frames are written, and writes them.
//!
//! Each recorded camera gets a dedicated OS thread (file writes and fsyncs block, and
//! must never stall the async runtime that serves cameras and the web UI) fed by a
//! small async forwarder from the camera's frame hub. What to record is an input: the
//! camera's mode plus triggers and motion updates sent through [`RecorderHandle`], so
//! motion detection, the doorbell API and live view plug in without touching the
//! writing loop (`machine.rs` decides, `segment.rs` writes, `event.rs` keeps events,
//! `camera::forward` moves frames in).
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
mod ring;
mod segment;

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch, Notify};

pub use machine::MotionUpdate;

use crate::camera::forward::{forward, ByteBudget, FrameInput, QueuedBytes};
use crate::camera::CameraHandle;
use crate::clock::Clock;
use crate::config::RecordingConfig;
use crate::index::{EventEntry, Index};
use crate::model::{CameraId, Frame, Trigger};
use crate::store::Store;
use machine::Recorder;

/// Inputs queued for one camera's recorder.
const QUEUE_LEN: usize = 256;
/// Bytes of frames queued for one camera's recorder: the queue only bridges the
/// recorder's stalls (an fsync on an SD card can take seconds), and 32 MiB is 13 s of
/// a 20 Mbit/s 4K stream.
const QUEUE_BYTES: u64 = 32 * 1024 * 1024;

enum RecorderInput {
    /// With its share of the queue's byte budget, given back once taken.
    Frame(Arc<Frame>, QueuedBytes),
    /// Frames were lost upstream: do not join across this point.
    Gap,
    /// Record (at least) `duration` from `sent`, plus the post-roll.
    Trigger {
        kind: Trigger,
        duration: Duration,
        sent: Instant,
    },
    Motion(MotionUpdate),
}

/// Why an external trigger was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TriggerError {
    #[error("no camera {0}")]
    NoSuchCamera(CameraId),
    #[error("camera {0} does not record (mode off)")]
    NotRecording(CameraId),
    #[error("camera {0}'s recorder is busy or stopped; try again")]
    Busy(CameraId),
}

/// Whether an event has just begun, just gained a trigger of a kind it did not have
/// (the doorbell pressed while the visitor's approach is being recorded as motion), or
/// just ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventPhase {
    Started,
    Joined(Trigger),
    Finished,
}

/// News of an event, as the index has just recorded it, for whoever listens (the
/// API's event stream). Sent on a broadcast channel: a listener that falls behind
/// loses notices, never the recorder's time.
#[derive(Clone, Debug)]
pub struct EventNotice {
    pub phase: EventPhase,
    pub event: EventEntry,
    /// When the news happened, on the frames' clock: the event's start (`Started`),
    /// the moment the trigger joined it (`Joined`: a doorbell pressed two minutes
    /// into motion is news of that moment, not of the motion's start), or its end.
    pub at_micros: i64,
}

/// How many notices a slow listener may fall behind before it loses some.
pub const EVENT_NOTICES: usize = 64;

/// What a recorder tells the rest of the daemon besides the index.
#[derive(Clone)]
pub struct Outlets {
    /// Asks retention to run now (a write failed, probably for lack of space).
    pub retention_kick: Arc<Notify>,
    /// Where events are announced as they start and end.
    pub events: broadcast::Sender<EventNotice>,
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
            .try_send(RecorderInput::Trigger {
                kind,
                duration,
                sent: Instant::now(),
            })
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
    outlets: Outlets,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<RecorderHandle> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_LEN);
    let id = camera.id().clone();
    tokio::spawn(forward(
        "recorder",
        camera.subscribe(),
        tx.clone(),
        ByteBudget::new(QUEUE_BYTES),
        shutdown,
    ));
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
    recorder.retention_kick = Some(outlets.retention_kick);
    recorder.notices = Some(outlets.events);
    let thread = std::thread::Builder::new()
        .name(format!("rec-{id}"))
        .spawn(move || run(&mut recorder, rx))?;
    Ok(RecorderHandle {
        camera: id,
        sender: Some(RecorderSender { tx }),
        thread: Some(thread),
    })
}

/// How long the recorder lets inputs gather after taking some. Frames wait in memory
/// until the next write anyway (`segment.rs` holds up to the sync interval), so
/// waking for each one buys nothing but wake-ups, which cost a small machine more than
/// the work they bring: with one 10 fps camera the thread woke 15 times a second, now
/// 5, and the daemon's CPU fell 4–9 % (`make bench-ingest`, A/B in BENCHMARKS.md).
/// Triggers wait as long, but keep the time they were sent (motion updates carry
/// theirs), and the pre-roll covers the wait.
const GATHER: Duration = Duration::from_millis(250);

fn run(recorder: &mut Recorder, rx: mpsc::Receiver<RecorderInput>) {
    let tick = recorder.settings.sync_interval / 2;
    loop {
        match rx.recv_timeout(tick) {
            Ok(input) => {
                handle(recorder, input);
                // Take what else is queued, then let the next ones gather.
                loop {
                    match rx.try_recv() {
                        Ok(input) => handle(recorder, input),
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => return finish(recorder),
                    }
                }
                std::thread::sleep(GATHER);
            }
            Err(RecvTimeoutError::Timeout) => recorder.tick(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    finish(recorder);
}

fn handle(recorder: &mut Recorder, input: RecorderInput) {
    match input {
        RecorderInput::Frame(frame, taken) => {
            drop(taken);
            recorder.on_frame(frame)
        }
        RecorderInput::Gap => recorder.on_gap(),
        RecorderInput::Trigger {
            kind,
            duration,
            sent,
        } => {
            // Timed from the press, not from when this thread got round to it.
            let waited = i64::try_from(sent.elapsed().as_micros()).unwrap_or(i64::MAX);
            let at = recorder.frame_now().saturating_sub(waited);
            recorder.on_trigger(kind, Some(at), duration)
        }
        RecorderInput::Motion(update) => recorder.on_motion(update),
    }
}

fn finish(recorder: &mut Recorder) {
    let now = recorder.frame_now();
    recorder.close_event(now);
    recorder.close(None, "shutting down");
}

impl FrameInput for RecorderInput {
    fn frame(frame: Arc<Frame>, charge: QueuedBytes) -> Self {
        RecorderInput::Frame(frame, charge)
    }
    fn gap() -> Self {
        RecorderInput::Gap
    }
}

#[cfg(test)]
mod tests;
