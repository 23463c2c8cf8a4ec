//! One open recording: turns frames into fMP4 fragments and writes them through the
//! store's sealed writer.
//!
//! A frame's duration is only known when the next frame arrives, so the last frame is
//! always held back. A fragment is closed at every keyframe, and earlier when the held
//! frames span [`MAX_HELD`] (or the sync interval, if shorter), so at most about a
//! half-second of video is ever only in the daemon's memory: that bounds what a crash
//! (`kill -9`, the OOM killer) can take, since written bytes survive the process in
//! the page cache. A power cut can also take what was written but not yet fsynced,
//! up to one more sync interval. A fragment may therefore start with a non-key frame;
//! only the first fragment of a file must start with one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ring::FrameRing;
use crate::index::{RecordingEntry, RecordingState};
use crate::model::{Frame, VideoParams, TIMESCALE};
use crate::store::mp4::{self, Sample, TrackParams};
use crate::store::{FinishedFile, RecordingWriter, StoreError};

/// Durations outside (0, 10 s] mean the camera's clock jumped; such a frame gets the
/// previous frame's duration so the file's timeline stays monotonic and playable.
const MAX_FRAME_DURATION: i64 = 10 * TIMESCALE as i64;
/// Duration assumed for a frame whose successor never came (end of stream).
const FALLBACK_DURATION: u32 = TIMESCALE / 10;
/// The most video held in memory before it is written out (see the module doc).
pub const MAX_HELD: Duration = Duration::from_millis(500);
/// Most frames held whatever their timestamps say: [`MAX_HELD`] is measured in the
/// camera's time, which may stand still or run backwards, and then only a keyframe
/// would write the held frames out (a camera that sends none would grow them without
/// end). Half a second is 30 frames at 60 fps.
const MAX_HELD_FRAMES: usize = 256;
/// Most bytes held, for the same reason: half a second at 8 Mbit/s is 0.5 MB, and a
/// single keyframe rarely passes 2 MB.
const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// What is left of a recording whose writing failed, for the recorder's salvage.
#[derive(Debug)]
pub struct Unfinished {
    /// The entry as far as the file is to be kept (frames, end time).
    pub entry: RecordingEntry,
    /// Cut the file back to this length before closing it: a write or sync failed,
    /// and what was written after the last good sync may be missing from the disk
    /// however well it reads back (see `store::writer`). `None`: keep all that
    /// authenticates.
    pub cut_to: Option<u64>,
}

pub struct OpenRecording {
    pub entry: RecordingEntry,
    writer: RecordingWriter,
    /// [`written_entry`](Self::written_entry) as of the last successful sync.
    synced: RecordingEntry,
    pub params: Arc<VideoParams>,
    pub session: u64,
    first_pts: i64,
    held: Vec<Arc<Frame>>,
    held_bytes: usize,
    /// Whether the held frames hit a cap rather than [`MAX_HELD`] yet (logged once).
    held_capped: bool,
    /// The frames since the last keyframe: where a pre-roll ring starts again when
    /// this recording ends mid-group (see [`current_group`](Self::current_group)).
    group: FrameRing,
    sequence: u32,
    decode_time: u64,
    last_duration: u32,
    last_sync: Instant,
    unsynced: bool,
    sync_interval: Duration,
}

impl OpenRecording {
    /// Starts a recording whose first frame is `first` (a keyframe).
    pub fn start(
        entry: RecordingEntry,
        mut writer: RecordingWriter,
        first: &Arc<Frame>,
        sync_interval: Duration,
    ) -> Result<OpenRecording, StoreError> {
        let params = first.params.clone();
        let track = TrackParams {
            sample_entry: params.sample_entry.clone(),
            width: params.width,
            height: params.height,
            timescale: TIMESCALE,
        };
        let init = mp4::init_segment(&track).map_err(|e| StoreError::Mp4(e.to_string()))?;
        writer.write_all(&init)?;
        let mut group = FrameRing::default();
        group.push(first.clone());
        Ok(OpenRecording {
            synced: entry.clone(),
            entry,
            writer,
            session: first.session,
            params,
            first_pts: first.pts,
            held: vec![first.clone()],
            held_bytes: first.data.len(),
            held_capped: false,
            group,
            sequence: 1,
            decode_time: 0,
            last_duration: FALLBACK_DURATION,
            last_sync: Instant::now(),
            unsynced: true,
            sync_interval,
        })
    }

    /// Whether `frame` can continue this file (same connection, same parameters).
    pub fn accepts(&self, frame: &Frame) -> bool {
        frame.session == self.session
            && (Arc::ptr_eq(&frame.params, &self.params) || *frame.params == *self.params)
    }

    /// Time covered from the first frame to `frame`.
    pub fn age_at(&self, frame: &Frame) -> Duration {
        let ticks = (frame.pts - self.first_pts).max(0) as u64;
        Duration::from_micros(ticks * 1_000_000 / u64::from(TIMESCALE))
    }

    /// Appends a frame that [`accepts`](Self::accepts) said belongs here.
    pub fn push(&mut self, frame: Arc<Frame>) -> Result<(), StoreError> {
        if frame.is_key {
            self.write_held(Some(frame.pts))?;
            self.group.clear();
        }
        self.group.push(frame.clone());
        self.held_bytes += frame.data.len();
        self.held.push(frame);
        let span = self.held.last().map_or(0, |l| l.pts) - self.held.first().map_or(0, |f| f.pts);
        let hold = self.sync_interval.min(MAX_HELD);
        let held_long_enough = span >= (hold.as_micros() as i64) * i64::from(TIMESCALE) / 1_000_000;
        let capped = self.held.len() >= MAX_HELD_FRAMES || self.held_bytes >= MAX_HELD_BYTES;
        if capped && !held_long_enough && !self.held_capped {
            self.held_capped = true;
            tracing::warn!(camera = %self.entry.camera, recording = %self.entry.id, frames = self.held.len(), bytes = self.held_bytes, "recording {}: {} frames were held without the camera's timestamps advancing {} ms; writing them out anyway (does the camera send advancing timestamps?)", self.entry.id, self.held.len(), hold.as_millis());
        }
        if held_long_enough || capped {
            // Write all but the newest frame, whose duration is still unknown.
            let newest = self.held.pop().expect("just pushed");
            let next_pts = newest.pts;
            self.write_held(Some(next_pts))?;
            self.held_bytes = newest.data.len();
            self.held.push(newest);
        }
        if self.unsynced && self.last_sync.elapsed() >= self.sync_interval {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes everything written so far durable (called on a timer too).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.unsynced {
            self.writer.sync()?;
            self.unsynced = false;
            self.synced = self.written_entry();
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    pub fn needs_sync(&self) -> bool {
        self.unsynced && self.last_sync.elapsed() >= self.sync_interval
    }

    /// The frames from the last keyframe on (empty if the group outgrew the ring's
    /// caps): the frames after them cannot be decoded without them.
    pub fn current_group(&self) -> Vec<Arc<Frame>> {
        self.group.to_vec()
    }

    /// What to keep of this recording now that writing it failed: what was written
    /// (the index needs it when the file cannot be read back here), or only what was
    /// synced if a write or sync failed.
    pub fn unfinished(&self) -> Unfinished {
        if self.writer.io_failed() {
            Unfinished {
                entry: self.synced.clone(),
                cut_to: Some(self.writer.synced_len()),
            }
        } else {
            Unfinished {
                entry: self.written_entry(),
                cut_to: None,
            }
        }
    }

    /// The entry as far as written frames go (what survives a crash of the daemon).
    fn written_entry(&self) -> RecordingEntry {
        let mut entry = self.entry.clone();
        entry.end_micros =
            entry.start_micros + (self.decode_time * 1_000_000 / u64::from(TIMESCALE)) as i64;
        entry
    }

    /// Writes the held frames and closes the file; `next_pts` is the time of the frame
    /// that follows (the keyframe that starts the next file at a roll-over), so the
    /// last frame's duration is exact and no frame is lost or duplicated at the joint.
    ///
    /// The video is synced before the final chunk is sealed, so a power cut during
    /// the closing fsync cannot leave a final chunk on the disk after data that never
    /// reached it, and a failure of that fsync leaves all the video known durable.
    /// On failure, what to salvage comes with the error (boxed: errors stay small).
    pub fn finish(
        mut self,
        next_pts: Option<i64>,
    ) -> Result<(RecordingEntry, FinishedFile), (StoreError, Box<Unfinished>)> {
        if let Err(e) = self.write_held(next_pts).and_then(|()| self.sync()) {
            return Err((e, Box::new(self.unfinished())));
        }
        let unfinished = Box::new(Unfinished {
            entry: self.synced.clone(),
            cut_to: Some(self.writer.synced_len()),
        });
        let finished = self.writer.finish().map_err(|e| (e, unfinished))?;
        let mut entry = self.entry;
        entry.end_micros =
            entry.start_micros + (self.decode_time * 1_000_000 / u64::from(TIMESCALE)) as i64;
        entry.bytes = finished.file_len;
        entry.state = RecordingState::Finished;
        Ok((entry, finished))
    }

    fn write_held(&mut self, next_pts: Option<i64>) -> Result<(), StoreError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let mut samples = Vec::with_capacity(self.held.len());
        for (i, frame) in self.held.iter().enumerate() {
            let following = self.held.get(i + 1).map(|f| f.pts).or(next_pts);
            let duration = match following.map(|n| n - frame.pts) {
                Some(d) if d > 0 && d <= MAX_FRAME_DURATION => d as u32,
                _ => self.last_duration,
            };
            self.last_duration = duration;
            samples.push(Sample {
                duration,
                is_sync: frame.is_key,
                data: frame.data.clone(),
            });
        }
        let fragment = mp4::fragment(self.sequence, self.decode_time, &samples)
            .map_err(|e| StoreError::Mp4(e.to_string()))?;
        self.writer.write_all(&fragment)?;
        // Out of the daemon's memory at once (a partial chunk), durable at the next sync.
        self.writer.flush()?;
        self.sequence += 1;
        self.decode_time += samples.iter().map(|s| u64::from(s.duration)).sum::<u64>();
        self.entry.frames += samples.len() as u64;
        self.held.clear();
        self.held_bytes = 0;
        self.unsynced = true;
        Ok(())
    }
}

#[cfg(test)]
impl OpenRecording {
    /// The store's writer, for tests that make it fail.
    pub(super) fn writer_for_tests(&mut self) -> &mut RecordingWriter {
        &mut self.writer
    }
}
