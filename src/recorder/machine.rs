//! What the recorder thread decides frame by frame: record or not, start, roll over,
//! stop, and the events around it.
//!
//! - `continuous`: always record; triggers only make events.
//! - `events`: keep a pre-roll ring of the last `pre_roll` seconds (from a keyframe)
//!   in memory; a trigger starts a recording from the ring's first frame, and it
//!   stops `post_roll` after the last trigger. Overlapping triggers extend one event.
//! - `off`: no recorder exists (the daemon does not spawn one).
//!
//! A roll-over happens at the first keyframe after `rollover`; the frame that closes a
//! file is the first of the next, so nothing is lost or duplicated at the joint. An
//! event spanning files lists them all.
//!
//! Times here are on the frames' clock (the camera's timeline placed on the wall
//! clock by ingest), not the host's: an event's end is compared with frame times, so
//! when the two clocks disagree the host's "now" is moved onto the frames' clock by
//! the offset seen at the latest frame ([`Recorder::frame_now`]). A camera clock that
//! drifted from the host's then cannot end an event before its first frame.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};

use super::event::{OpenEvent, Thumbnail};
use super::ring::{FrameRing, Pushed, MAX_RING_BYTES, MAX_RING_FRAMES};
use super::segment::{OpenRecording, Unfinished};
use super::{EventNotice, EventPhase};
use crate::camera::CameraHandle;
use crate::clock::Clock;
use crate::config::{RecordingConfig, RecordingMode};
use crate::error_chain::chain;
use crate::index::{Index, RecordingEntry, RecordingState};
use crate::model::{CameraId, Frame, RecordingId, Trigger, TIMESCALE};
use crate::store::{NewRecording, Store, StoreError};

/// How much longer than the pre-roll the ring keeps, because a trigger may be heard
/// after the moment it refers to (motion is confirmed up to two GOPs late).
pub const TRIGGER_DELAY_ALLOWANCE: Duration = Duration::from_secs(4);

/// Below this, a frame's wall time minus the host's clock is delivery and batching
/// delay (frames are taken in [`GATHER`](super::GATHER) batches) plus the drift the
/// camera timeline allows, not a different clock: the host's clock is used as is,
/// since the offset would shorten every post-roll by that delay.
pub const FRAME_CLOCK_TOLERANCE: Duration = Duration::from_secs(2);

/// A motion analysis result, as the motion worker reports it.
#[derive(Debug)]
pub struct MotionUpdate {
    pub score: f32,
    pub active: bool,
    /// Wall time (µs) the motion began, when this update starts it; the pre-roll
    /// reaches back from there rather than from when the update arrives.
    pub started_micros: Option<i64>,
    /// A JPEG of this frame, offered when it might be the event's best picture.
    pub thumbnail: Option<Vec<u8>>,
}

pub struct Recorder {
    pub camera: CameraId,
    pub mode: RecordingMode,
    pub pre_roll: Duration,
    pub post_roll: Duration,
    pub store: Arc<Store>,
    pub index: Index,
    pub settings: RecordingConfig,
    pub clock: Arc<dyn Clock>,
    /// Where problems are shown (a full disk); `None` in unit tests.
    pub handle: Option<Arc<CameraHandle>>,
    /// Asks retention to run now (a write failed, probably for lack of space).
    pub retention_kick: Option<Arc<Notify>>,
    /// Where events are announced; `None` in unit tests.
    pub notices: Option<broadcast::Sender<EventNotice>>,
    pub open: Option<OpenRecording>,
    pub event: Option<OpenEvent>,
    pub preroll: FrameRing,
    /// Whether the pre-roll ring has hit its memory cap yet (logged once).
    pub preroll_capped: bool,
    /// The last recording problem shown, to log a repeated failure only once.
    pub problem: Option<String>,
    /// The latest frame's wall time minus the host's clock when it came (µs).
    pub frame_offset: i64,
    /// The store's end-to-end viewers generation the open recording was sealed
    /// under: when the viewers change (end-to-end mode turned on or off, a viewer
    /// added or removed) the recording rolls over at the next keyframe, so video
    /// captured after the change is sealed as the change says, not minutes later.
    pub sealed_generation: u64,
}

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

impl Recorder {
    pub fn new(
        camera: CameraId,
        mode: RecordingMode,
        store: Arc<Store>,
        index: Index,
        settings: RecordingConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Recorder {
            camera,
            mode,
            pre_roll: Duration::from_secs(5),
            post_roll: Duration::from_secs(10),
            store,
            index,
            settings,
            clock,
            handle: None,
            retention_kick: None,
            notices: None,
            open: None,
            event: None,
            preroll: FrameRing::default(),
            preroll_capped: false,
            problem: None,
            frame_offset: 0,
            sealed_generation: 0,
        }
    }

    /// Now, on the frames' clock (see the module doc and [`FRAME_CLOCK_TOLERANCE`]).
    pub fn frame_now(&self) -> i64 {
        let now = self.clock.now_micros();
        if self.frame_offset.abs() > micros(FRAME_CLOCK_TOLERANCE) {
            now.saturating_add(self.frame_offset)
        } else {
            now
        }
    }

    /// A trigger about the moment `at_micros` on the frames' clock (now if `None`):
    /// record from a pre-roll before it until `duration` after it, plus the post-roll.
    pub fn on_trigger(&mut self, kind: Trigger, at_micros: Option<i64>, duration: Duration) {
        let now = self.frame_now();
        let at = at_micros.map_or(now, |at| at.min(now));
        let until = now.max(at + micros(duration)) + micros(self.post_roll);
        match self.event.as_mut() {
            Some(event) => {
                let joined = !event.entry.triggers.contains(&kind);
                event.extend(kind, until);
                // A new kind of trigger is saved at once: the index shows it before
                // anyone is told.
                if event.take_save() || joined {
                    let _ = self.index.put_event(&event.entry);
                }
                if joined {
                    let entry = event.entry.clone();
                    tracing::info!(camera = %self.camera, event = %entry.id, trigger = %kind, "camera {}: {kind} joined the open event", self.camera);
                    self.announce(EventPhase::Joined(kind), &entry, at);
                }
            }
            None => {
                self.trim_preroll_to(at - micros(self.pre_roll));
                let mut event =
                    OpenEvent::new(self.camera.clone(), kind, at - micros(self.pre_roll), until);
                if let Some(open) = &self.open {
                    event.add_recording(open.entry.id);
                    if self.mode == RecordingMode::Events {
                        event.entry.start_micros = open.entry.start_micros;
                    }
                } else if let Some(first) = self.preroll.front() {
                    event.entry.start_micros = first.wall_micros;
                }
                tracing::info!(camera = %self.camera, event = %event.entry.id, trigger = %kind, "camera {}: event started ({kind})", self.camera);
                self.save_event(&event);
                self.announce(EventPhase::Started, &event.entry, event.entry.start_micros);
                self.event = Some(event);
            }
        }
    }

    /// A motion analysis result: active motion triggers like anything else.
    pub fn on_motion(&mut self, update: MotionUpdate) {
        if update.active {
            self.on_trigger(Trigger::Motion, update.started_micros, Duration::ZERO);
        }
        let now = self.frame_now();
        if let Some(event) = self.event.as_mut() {
            let thumbnail = update.thumbnail.map(|jpeg| Thumbnail {
                jpeg,
                sealed_to: self.store.recipients(),
            });
            event.add_score(now, update.score, thumbnail);
        }
    }

    /// Whether a frame at `wall_micros` is to be recorded, and under which trigger.
    pub fn wanted(&self, wall_micros: i64) -> Option<Trigger> {
        match self.mode {
            RecordingMode::Off => None,
            RecordingMode::Continuous => Some(Trigger::Continuous),
            RecordingMode::Events => match &self.event {
                Some(event) if wall_micros < event.until_micros => {
                    event.entry.triggers.first().copied()
                }
                _ => None,
            },
        }
    }

    pub fn on_frame(&mut self, frame: Arc<Frame>) {
        self.frame_offset = frame.wall_micros.saturating_sub(self.clock.now_micros());
        if let Some(open) = &self.open {
            if !open.accepts(&frame) {
                let next = (frame.session == open.session).then_some(frame.pts);
                self.close(next, "the stream changed");
            }
        }
        if self
            .event
            .as_ref()
            .is_some_and(|e| frame.wall_micros >= e.until_micros)
        {
            self.close_event(frame.wall_micros);
        }
        let Some(trigger) = self.wanted(frame.wall_micros) else {
            if self.open.is_some() {
                self.close_into_preroll(Some(frame.pts), "post-roll over");
            }
            if self.mode == RecordingMode::Events {
                self.keep_preroll(frame);
            }
            return;
        };
        let viewers_changed = self.sealed_generation != self.store.recipients_generation();
        match self.open.as_mut() {
            Some(open)
                if frame.is_key
                    && (viewers_changed || open.age_at(&frame) >= self.settings.rollover) =>
            {
                let why = if viewers_changed {
                    "the end-to-end viewers changed"
                } else {
                    "roll-over"
                };
                self.close(Some(frame.pts), why);
                self.start(vec![frame], trigger);
            }
            Some(open) => {
                if let Err(e) = open.push(frame) {
                    self.fail(e);
                }
            }
            None => {
                // Through the ring, so the recording starts at a keyframe; in
                // continuous mode the ring is empty and this waits for a keyframe.
                // (The ring was cut back to the trigger's pre-roll when it came.)
                self.keep_preroll(frame);
                if !self.preroll.is_empty() {
                    let frames = self.preroll.take_all();
                    self.start(frames, trigger);
                }
            }
        }
    }

    /// Frames were lost upstream: neither the open recording nor the pre-roll may
    /// join across the hole (a later recording would play the frames after it as if
    /// they followed on, from a keyframe before it).
    pub fn on_gap(&mut self) {
        self.close(None, "frames were lost upstream");
        self.preroll.clear();
    }

    /// Keeps the last `pre_roll` (plus the trigger delay allowance) of frames,
    /// always starting at a keyframe, and never more than the ring's memory caps
    /// (timestamps alone do not bound it: see [`MAX_RING_BYTES`]).
    fn keep_preroll(&mut self, frame: Arc<Frame>) {
        let keep =
            micros(self.pre_roll + TRIGGER_DELAY_ALLOWANCE) * i64::from(TIMESCALE) / 1_000_000;
        let horizon = frame.pts - keep;
        if self.preroll.push(frame) == Pushed::Capped && !self.preroll_capped {
            self.preroll_capped = true;
            tracing::warn!(camera = %self.camera, "camera {}: the pre-roll reached its memory cap ({MAX_RING_FRAMES} frames or {} MiB) without a later keyframe old enough to drop; its oldest frames were dropped (does the camera send keyframes and advancing timestamps?)", self.camera, MAX_RING_BYTES / (1024 * 1024));
        }
        self.preroll.drop_groups_before(|f| f.pts <= horizon);
    }

    /// A recording about to start for a trigger: start at the last keyframe at or
    /// before `from_micros`, not earlier.
    fn trim_preroll_to(&mut self, from_micros: i64) {
        self.preroll
            .drop_groups_before(|f| f.wall_micros <= from_micros);
    }

    /// Starts a recording with `frames` (the first a keyframe) under `trigger`.
    fn start(&mut self, frames: Vec<Arc<Frame>>, trigger: Trigger) {
        let Some(first) = frames.first().cloned() else {
            return;
        };
        let new = NewRecording {
            id: RecordingId::random(),
            camera: self.camera.clone(),
            start_micros: first.wall_micros,
            trigger,
        };
        // Read before the file is created: a change racing with it then rolls over
        // once more than needed, never once too few.
        let generation = self.store.recipients_generation();
        let (writer, wrapped_key) = match self.store.create_recording(&new) {
            Ok(created) => created,
            Err(e) => {
                return self.report_problem(format!("cannot start a recording: {}", chain(&e)))
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
            durable_len: None,
        };
        // The file is durable before its entry exists (the store fsynced both).
        if let Err(e) = self
            .index
            .put_recording(&entry)
            .and_then(|()| self.index.flush())
        {
            tracing::error!(camera = %self.camera, recording = %new.id, "cannot index a new recording (check --repair adopts the file): {e}");
        }
        let mut open =
            match OpenRecording::start(entry, writer, &first, self.settings.sync_interval) {
                Ok(open) => open,
                Err(e) => {
                    // Nothing of the video reached the file: without this, every
                    // keyframe would leave another `Open` entry and header-only file.
                    self.discard(new.id);
                    return self.report_problem(format!("cannot start a recording: {}", chain(&e)));
                }
            };
        for frame in frames.into_iter().skip(1) {
            if let Err(e) = open.push(frame) {
                self.open = Some(open);
                return self.fail(e);
            }
        }
        tracing::info!(camera = %self.camera, recording = %new.id, %trigger, "camera {}: recording started ({})", self.camera, new.id);
        if let Some(event) = self.event.as_mut() {
            event.add_recording(new.id);
            if event.entry.recordings.len() == 1 && self.mode == RecordingMode::Events {
                event.entry.start_micros = new.start_micros;
            }
        }
        if let Some(event) = &self.event {
            self.save_event(event);
        }
        self.open = Some(open);
        self.sealed_generation = generation;
        self.clear_problem();
    }

    /// Makes written video durable if the sync interval has passed; ends an event whose
    /// time is up even when no frame arrives (a camera that went quiet).
    pub fn tick(&mut self) {
        if let Some(open) = self.open.as_mut() {
            if open.needs_sync() {
                if let Err(e) = open.sync() {
                    self.fail(e);
                }
            }
        }
        let now = self.frame_now();
        if self
            .event
            .as_ref()
            .is_some_and(|e| now >= e.until_micros + micros(self.settings.sync_interval))
        {
            self.close_event(now);
            if self.mode == RecordingMode::Events {
                self.close_into_preroll(None, "post-roll over");
            }
        }
    }

    pub fn close(&mut self, next_pts: Option<i64>, why: &str) {
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
            Err((e, unfinished)) => {
                tracing::error!(camera = %self.camera, recording = %id, "cannot finish recording: {}", chain(&e));
                self.salvage(*unfinished);
            }
        }
    }

    /// Closes a recording at the end of an event, handing its current keyframe group
    /// to the pre-roll ring (empty while recording). Without it the frames up to the
    /// next keyframe could not be kept (a ring starts at a keyframe), and a trigger
    /// soon after would start its recording there, leaving a stretch in no file. The
    /// group is in both files then: decoding needs its keyframe.
    fn close_into_preroll(&mut self, next_pts: Option<i64>, why: &str) {
        let group = self
            .open
            .as_ref()
            .map(OpenRecording::current_group)
            .unwrap_or_default();
        self.close(next_pts, why);
        self.preroll.clear();
        for frame in group {
            self.preroll.push(frame);
        }
    }

    /// Closes the open event at `end_micros`, sealing its best thumbnail.
    pub fn close_event(&mut self, end_micros: i64) {
        let Some(event) = self.event.take() else {
            return;
        };
        let end = end_micros.min(event.until_micros);
        let (mut entry, thumbnail) = event.close(end);
        if let Some(picture) = thumbnail {
            if let Err(e) = self.store.write_thumbnail_taken_under(
                &self.camera,
                entry.id,
                entry.start_micros,
                &picture.jpeg,
                &picture.sealed_to,
            ) {
                tracing::warn!(camera = %self.camera, event = %entry.id, "cannot save the event's thumbnail: {}", chain(&e));
                entry.has_thumbnail = false;
            }
        }
        if let Err(e) = self
            .index
            .put_event(&entry)
            .and_then(|()| self.index.flush())
        {
            tracing::error!(camera = %self.camera, event = %entry.id, "cannot save the event: {e}");
        }
        tracing::info!(camera = %self.camera, event = %entry.id, "camera {}: event finished ({})", self.camera, entry.id);
        self.announce(EventPhase::Finished, &entry, entry.end_micros);
    }

    /// Tells listeners about an event the index now holds. Having no listener is
    /// normal (nobody has the event stream open).
    fn announce(&self, phase: EventPhase, event: &crate::index::EventEntry, at_micros: i64) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(EventNotice {
                phase,
                event: event.clone(),
                at_micros,
            });
        }
    }

    fn save_event(&self, event: &OpenEvent) {
        if let Err(e) = self.index.put_event(&event.entry) {
            tracing::error!(camera = %self.camera, event = %event.entry.id, "cannot save the event: {e}");
        }
    }

    /// A write or sync failed (most often: the disk is full). Keep what the last
    /// successful sync made durable, ask retention to make room, show the problem,
    /// and try again at the next keyframe. Nothing already acknowledged is touched.
    pub fn fail(&mut self, e: StoreError) {
        let Some(open) = self.open.take() else { return };
        let unfinished = open.unfinished();
        drop(open);
        let id = unfinished.entry.id;
        self.report_problem(format!("recording {id} stopped: {}", chain(&e)));
        self.salvage(unfinished);
    }

    /// Cuts a failed recording back to its last sealed chunk (to its last successful
    /// sync if a write or sync failed) and finishes its entry; `unfinished.entry` is
    /// the entry as far as frames are kept. A file that cannot be cut back is left
    /// `Open`, its entry naming the length start-up recovery cuts it to.
    fn salvage(&mut self, unfinished: Unfinished) {
        let Unfinished {
            entry: mut written,
            cut_to,
        } = unfinished;
        let id = written.id;
        let path = self.store.recording_path(&self.camera, id);
        if let Some(len) = cut_to {
            if let Err(e) = self.store.cut_back(&self.camera, id, len) {
                // Start-up recovery would keep all that authenticates, which may
                // come from the page cache only: it gets the length to cut to.
                written.durable_len = Some(len);
                let saved = self
                    .index
                    .put_recording(&written)
                    .and_then(|()| self.index.flush());
                let saved =
                    saved.map_or_else(|e| format!("; cannot save it: {e}"), |()| String::new());
                tracing::error!(camera = %self.camera, recording = %id, "recording left for start-up recovery to cut back to {len} bytes{saved}: {}", chain(&e));
                return;
            }
        }
        match self.store.recover_and_describe(&self.camera, id) {
            // Nothing of it reached the disk: no recording to keep. (An end-to-end
            // file cannot be read here; the frame count says what was written.)
            Err(StoreError::EmptyRecording { .. }) => self.discard(id),
            Err(StoreError::EndToEnd { .. }) if written.frames == 0 => self.discard(id),
            Ok(described) => {
                if let Err(e) = self
                    .index
                    .put_recording(&described.to_entry())
                    .and_then(|()| self.index.flush())
                {
                    tracing::error!(camera = %self.camera, recording = %id, "cannot finish index entry (start-up recovery will): {e}");
                }
            }
            // End-to-end: the daemon cannot read the file back (nor seal its final
            // chunk), so it is kept as written and marked finished, as start-up
            // recovery does (`check::recovery::finish_open`); left `Open`, retention would skip
            // it and nobody could delete or play it until a restart.
            Err(StoreError::EndToEnd { .. }) => {
                written.bytes = std::fs::metadata(&path).map_or(written.bytes, |m| m.len());
                written.state = RecordingState::Finished;
                if let Err(e) = self
                    .index
                    .put_recording(&written)
                    .and_then(|()| self.index.flush())
                {
                    tracing::error!(camera = %self.camera, recording = %id, "cannot finish index entry (start-up recovery will): {e}");
                }
            }
            Err(e) => {
                tracing::error!(camera = %self.camera, recording = %id, "recording left for start-up recovery: {}", chain(&e))
            }
        }
    }

    /// Removes a recording none of whose video reached the disk.
    fn discard(&self, id: RecordingId) {
        let removed = self
            .store
            .shred(&self.camera, id)
            .map_err(|e| e.to_string())
            .and_then(|()| self.index.remove_recording(id).map_err(|e| e.to_string()));
        if let Err(e) = removed {
            tracing::error!(camera = %self.camera, recording = %id, "empty recording left for start-up recovery: {e}");
        }
    }

    fn report_problem(&mut self, text: String) {
        if let Some(kick) = &self.retention_kick {
            kick.notify_one();
        }
        if self.problem.as_deref() != Some(text.as_str()) {
            tracing::error!(camera = %self.camera, "camera {}: {text}; retention asked to free space", self.camera);
        }
        if let Some(handle) = &self.handle {
            handle.set_recording_problem(Some(text.clone()), self.clock.now_micros());
        }
        self.problem = Some(text);
    }

    fn clear_problem(&mut self) {
        if self.problem.take().is_some() {
            tracing::info!(camera = %self.camera, "camera {}: recording again", self.camera);
            if let Some(handle) = &self.handle {
                handle.set_recording_problem(None, self.clock.now_micros());
            }
        }
    }
}
