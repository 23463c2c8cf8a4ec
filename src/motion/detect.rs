//! The motion detector: pure code on small luma frames, no video library.
//!
//! Per analysed frame (Frigate's proven pipeline, adapted):
//! 1. **Contrast stretch** of the unmasked pixels from their 4th–96th percentile to
//!    0–255, so a threshold means the same in a dull night scene as at noon, and a
//!    uniform brightness or gain change (auto-exposure) cancels out. The gain is capped
//!    ([`MIN_STRETCH_RANGE`]) so a flat, featureless picture does not turn its noise
//!    into "motion".
//! 2. **Blur** with a 3x3 binomial kernel (σ ≈ 0.85), against noise and compression
//!    artefacts; the decoder's box-averaged downscale has already smoothed a lot.
//! 3. **Difference** from a running-average background, per pixel, against a threshold
//!    derived from the sensitivity. The background is a time-based exponential average
//!    (time constant [`BACKGROUND_SECS`], Frigate's α = 0.01 at 5 fps) so it adapts at
//!    the same speed whether frames come at 25 fps or one per GOP in idle mode.
//! 4. **Blobs**: changed pixels within two pixels of each other form one blob (a 3x3
//!    dilation's worth of grouping); blobs smaller than a floor are noise and dropped.
//!    The score is the fraction of unmasked pixels in the remaining blobs; the frame is
//!    *active* when it reaches the sensitivity's minimum area.
//! 5. **Light changes** are not motion: when most of the picture's regions brighten or
//!    darken together ([`LIGHT_CELL_SHIFT`] on [`LIGHT_CELL_SHARE`] of a 4x4 grid), or
//!    more than [`LIGHT_FRACTION`] of the pixels change at once, the background is
//!    replaced by the current frame and the detector recalibrates (fast background, no
//!    active frames) until the picture is quiet again or [`CALIBRATION_MAX_SECS`] pass.
//! 6. **Hysteresis**: an event starts after `start_frames` consecutive active frames
//!    and ends once no frame has been active for `quiet_secs` of stream time.
//!
//! Everything is measured on the frames' presentation times, never the wall clock.

use tracing::debug;

use super::pixels::{self, Blobs, CellGrid};
use super::zones::{rasterise, Zone};
use super::MotionError;

/// Presentation-time ticks per second: the 90 kHz RTP clock of H.264/H.265, the same
/// as `model::TIMESCALE`.
pub const PTS_PER_SEC: i64 = 90_000;

/// Narrowest 4th–96th percentile spread that is stretched to full range: caps the
/// contrast gain at 255 / 32 ≈ 8x so sensor noise on a blank wall stays below threshold.
pub const MIN_STRETCH_RANGE: i32 = 32;
/// Background time constant: how long a change must persist to become "scenery" (a
/// parked car, a moved chair). 20 s matches Frigate's α = 0.01 per frame at 5 fps.
pub const BACKGROUND_SECS: f32 = 20.0;
/// Background time constant while calibrating (Frigate's α = 0.2 at 5 fps).
pub const CALIBRATION_SECS: f32 = 1.0;
/// Calibration lasts at least this long after a light change, so that a transition
/// spread over a few frames (IR filter, lamp warming up) is not taken for motion.
pub const CALIBRATION_MIN_SECS: f32 = 0.5;
/// …and at most this long, so that real motion during a transition is not ignored.
pub const CALIBRATION_MAX_SECS: f32 = 3.0;
/// Share of unmasked pixels changing at once that is taken as a lighting change, not
/// motion. Lower than Frigate's 0.8 because an IR/colour switch re-shades most of a
/// scene without moving its mean much; something filling 60 % of the view in a single
/// analysed frame has usually started an event already from the frames before.
pub const LIGHT_FRACTION: f32 = 0.6;
/// Share of the minimum area that must have changed since the previous analysed frame
/// for a frame to be active (see `MotionDetector::analyse`).
pub const MOVING_SHARE: f32 = 0.25;
/// Raw luma levels by which a grid cell's mean must move to count as re-lit.
pub const LIGHT_CELL_SHIFT: f32 = 10.0;
/// Share of grid cells that must move the same way for a global light change; a
/// person, even close, covers a few cells, a light switch nearly all of them.
pub const LIGHT_CELL_SHARE: f32 = 0.75;
/// Longest gap between analysed frames credited to the background average, so that a
/// stream that stalls does not jump the background to one frame.
const MAX_GAP_SECS: f32 = 10.0;
/// Jitter allowance for [`MotionDetector::due`]: a frame 10 % early still counts.
const DUE_SLACK: f32 = 0.9;

/// A small grayscale frame: row-major luma, `width * height` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrayFrame {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    /// Presentation time in [`PTS_PER_SEC`] ticks.
    pub pts: i64,
}

/// Per-camera settings. Defaults: sensitivity 50, no zones, 2 start frames, 5 quiet
/// seconds, 5 analysed frames per second.
#[derive(Clone, Debug, PartialEq)]
pub struct MotionSettings {
    /// 1 (only large, strong changes) to 100 (the faintest); see
    /// [`pixel_threshold`](Self::pixel_threshold) and [`min_area`](Self::min_area).
    pub sensitivity: u8,
    /// Areas to ignore.
    pub zones: Vec<Zone>,
    /// Consecutive active analysed frames needed to start an event: 2 filters one-frame
    /// glitches (a corrupt frame, an insect) at a cost of one frame's latency, which
    /// the recorder's pre-roll covers.
    pub start_frames: u32,
    /// Seconds of stream time without an active frame that end an event: long enough
    /// to bridge someone pausing at the door.
    pub quiet_secs: f32,
    /// Rate [`MotionDetector::due`] thins the frames to; 0 analyses every frame. 5 fps
    /// is Frigate's detect rate: enough for people and cars.
    pub max_fps: f32,
}

impl Default for MotionSettings {
    fn default() -> Self {
        MotionSettings {
            sensitivity: 50,
            zones: Vec::new(),
            start_frames: 2,
            quiet_secs: 5.0,
            max_fps: 5.0,
        }
    }
}

impl MotionSettings {
    /// Rejects settings out of range. The detector clamps instead of failing, so this
    /// is for the configuration layer, to tell the user.
    pub fn validate(&self) -> Result<(), MotionError> {
        let bad = |name, reason| Err(MotionError::InvalidSetting { name, reason });
        if !(1..=100).contains(&self.sensitivity) {
            return bad("sensitivity", "must be between 1 and 100");
        }
        if !(1..=100).contains(&self.start_frames) {
            return bad("start_frames", "must be between 1 and 100");
        }
        if !(self.quiet_secs.is_finite() && (0.0..=3600.0).contains(&self.quiet_secs)) {
            return bad("quiet_secs", "must be between 0 and 3600 seconds");
        }
        if !(self.max_fps.is_finite() && (0.0..=120.0).contains(&self.max_fps)) {
            return bad("max_fps", "must be between 0 (every frame) and 120");
        }
        for (i, zone) in self.zones.iter().enumerate() {
            zone.validate(i)?;
        }
        Ok(())
    }

    /// How far (0–255, after contrast stretch) a pixel must differ from the background
    /// to count as changed: 50 at sensitivity 1, 30 (Frigate's default) at 50, 10 at
    /// 100.
    pub fn pixel_threshold(&self) -> u8 {
        let s = self.sensitivity.clamp(1, 100);
        (10.0 + 0.4 * f32::from(100 - s)).round() as u8
    }

    /// Fraction of the unmasked picture that must change for a frame to be active:
    /// 0.2 % at sensitivity 50 (a person at ~15 m in a typical wide view), doubling
    /// every 25 steps down (0.78 % at 1) and halving every 25 up (0.05 % at 100).
    pub fn min_area(&self) -> f32 {
        let s = f32::from(self.sensitivity.clamp(1, 100));
        0.002 * 2f32.powf((50.0 - s) / 25.0)
    }

    fn quiet_ticks(&self) -> i64 {
        secs_to_ticks(self.quiet_secs.clamp(0.0, 3600.0))
    }
}

fn secs_to_ticks(secs: f32) -> i64 {
    (f64::from(secs) * PTS_PER_SEC as f64).round() as i64
}

fn ticks_to_secs(ticks: i64) -> f32 {
    (ticks as f64 / PTS_PER_SEC as f64) as f32
}

/// What one analysed frame showed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Analysis {
    /// Fraction (0–1) of the unmasked pixels that changed, in blobs large enough.
    pub score: f32,
    /// The frame counts towards an event: score ≥ the minimum area, no light change,
    /// not calibrating.
    pub active: bool,
    /// The lighting changed globally; the background was reset to this frame.
    pub light_change: bool,
    /// The background is still settling after a light change.
    pub calibrating: bool,
}

/// The start and end of a motion event, at presentation times of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MotionEvent {
    /// Emitted on the `start_frames`-th consecutive active frame; `pts` is the first
    /// of them, when the motion was first seen.
    Started { pts: i64 },
    /// Emitted on the first frame `quiet_secs` after the last active one (`pts`, the
    /// frame's own time), or by [`MotionDetector::finish`]. `last_motion_pts` is the
    /// last active frame's time: where the motion really stopped.
    Ended { pts: i64, last_motion_pts: i64 },
}

/// The most active frame of an event, for its thumbnail. The pts names the
/// full-resolution frame to thumbnail from the recording; the small gray copy is a
/// fallback.
#[derive(Clone, Debug, PartialEq)]
pub struct BestFrame {
    pub score: f32,
    pub frame: GrayFrame,
}

#[derive(Clone, Copy, Debug)]
struct OpenEvent {
    last_active: i64,
}

/// One camera's detector. Create one per stream session (a new session restarts the
/// pts clock); feed it frames in presentation order.
pub struct MotionDetector {
    settings: MotionSettings,
    /// [`MotionSettings::pixel_threshold`].
    threshold: u8,
    width: usize,
    height: usize,
    /// [`pixels::KEEP`] where a pixel counts, 0 where a zone ignores it; rasterised at
    /// `width` x `height`.
    keep: Vec<u8>,
    unmasked: usize,
    cell_grid: CellGrid,
    /// Running average of the stretched, blurred frames; empty until the first frame.
    background: Vec<f32>,
    /// Previous frame's raw mean luma per light-change grid cell (NaN where masked).
    cells: Vec<f32>,
    stretched: Vec<u8>,
    blur_rows: Vec<u16>,
    blurred: Vec<u8>,
    /// The previous analysed frame (stretched, blurred): what changed since then is
    /// what is moving now, as opposed to what merely differs from the background.
    previous: Vec<u8>,
    /// 1 where the current frame differs from the background.
    changed: Vec<u8>,
    blobs: Blobs,
    last_pts: Option<i64>,
    calibrating_since: Option<i64>,
    streak: u32,
    streak_start: i64,
    pending_best: Option<BestFrame>,
    event: Option<OpenEvent>,
    last_active: Option<i64>,
    best: Option<BestFrame>,
}

impl MotionDetector {
    /// A detector for frames of `width` x `height`. This is only the expected size: a
    /// frame of another size (the camera changed resolution) re-rasterises the zones and
    /// becomes the new background.
    pub fn new(settings: MotionSettings, width: u32, height: u32) -> Self {
        let threshold = settings.pixel_threshold();
        let mut d = MotionDetector {
            settings,
            threshold,
            width: 0,
            height: 0,
            keep: Vec::new(),
            unmasked: 0,
            cell_grid: CellGrid::new(&[], 0, 0),
            background: Vec::new(),
            cells: Vec::new(),
            stretched: Vec::new(),
            blur_rows: Vec::new(),
            blurred: Vec::new(),
            previous: Vec::new(),
            changed: Vec::new(),
            blobs: Blobs::default(),
            last_pts: None,
            calibrating_since: None,
            streak: 0,
            streak_start: 0,
            pending_best: None,
            event: None,
            last_active: None,
            best: None,
        };
        d.resize(width as usize, height as usize);
        d
    }

    pub fn settings(&self) -> &MotionSettings {
        &self.settings
    }

    fn resize(&mut self, width: usize, height: usize) {
        let n = width * height;
        self.width = width;
        self.height = height;
        let ignored = rasterise(&self.settings.zones, width as u32, height as u32);
        self.keep = pixels::keep_mask(&ignored);
        self.unmasked = ignored.iter().filter(|&&m| !m).count();
        self.cell_grid = CellGrid::new(&self.keep, width, height);
        self.background.clear();
        self.cells.clear();
        self.stretched = vec![0; n];
        self.blur_rows = vec![0; n];
        self.blurred = vec![0; n];
        self.changed = vec![0; n];
    }

    /// Whether a frame at `pts` should be analysed to keep to `max_fps`. Decoding every
    /// frame is unavoidable (they reference each other); analysing them all is not.
    pub fn due(&self, pts: i64) -> bool {
        let max_fps = self.settings.max_fps;
        match self.last_pts {
            Some(last) if max_fps > 0.0 && pts >= last => {
                ticks_to_secs(pts - last) >= DUE_SLACK / max_fps
            }
            _ => true,
        }
    }

    /// True when nothing has happened for `quiet_secs`: no open event, no active frame
    /// recently. The camera task uses it to put the decoder in idle mode.
    pub fn is_quiet(&self) -> bool {
        let recent = match (self.last_active, self.last_pts) {
            (Some(active), Some(now)) => now - active < self.settings.quiet_ticks(),
            _ => false,
        };
        self.event.is_none() && self.streak == 0 && !recent
    }

    /// Whether an event is open.
    pub fn in_event(&self) -> bool {
        self.event.is_some()
    }

    /// The most active frame of the open event, or else of the last one.
    pub fn best_frame(&self) -> Option<&BestFrame> {
        self.best.as_ref()
    }

    /// Ends an open event at the last analysed frame, e.g. when the stream stops.
    pub fn finish(&mut self) -> Option<MotionEvent> {
        let ev = self.event.take()?;
        self.streak = 0;
        Some(MotionEvent::Ended {
            pts: self.last_pts.unwrap_or(ev.last_active),
            last_motion_pts: ev.last_active,
        })
    }

    /// Analyses one frame; returns what it showed and the event it completes, if any.
    pub fn analyse(&mut self, frame: &GrayFrame) -> (Analysis, Option<MotionEvent>) {
        let (w, h, pts) = (frame.width as usize, frame.height as usize, frame.pts);
        if w == 0 || h == 0 || frame.pixels.len() != w * h {
            debug!(
                width = w,
                height = h,
                len = frame.pixels.len(),
                "motion: frame size does not match its pixels; not analysed"
            );
            let ev = self.step(frame, false, 0.0);
            return (Analysis::default(), ev);
        }
        if (w, h) != (self.width, self.height) {
            debug!(
                width = w,
                height = h,
                "motion: frame size changed; recalibrating"
            );
            self.resize(w, h);
        }
        let dt = match self.last_pts {
            Some(last) if pts < last => {
                debug!(
                    pts,
                    last, "motion: pts went backwards; restarting the clock"
                );
                if let Some(ev) = &mut self.event {
                    ev.last_active = pts;
                }
                self.last_active = self.last_active.map(|_| pts);
                0.0
            }
            Some(last) => ticks_to_secs(pts - last).min(MAX_GAP_SECS),
            None => 0.0,
        };
        let cells = self.cell_grid.means(&frame.pixels, &self.keep);
        let relit =
            pixels::cells_moved_together(&self.cells, &cells, LIGHT_CELL_SHIFT, LIGHT_CELL_SHARE);
        self.cells = cells;
        pixels::stretch(
            &frame.pixels,
            &self.keep,
            MIN_STRETCH_RANGE,
            &mut self.stretched,
        );
        pixels::blur(
            &self.stretched,
            &mut self.blur_rows,
            &mut self.blurred,
            w,
            h,
        );

        if self.background.is_empty() || self.unmasked == 0 {
            // The first frame becomes the background, and the detector calibrates
            // (fast background, no active frames) for 0.5–3 s: a camera's first
            // frame after connecting often differs slightly from the ones after it
            // (seen with GStreamer and cheap cameras), and a constant difference must
            // not be reported as motion for the 20 s the slow background would need.
            // Motion already under way is seen once calibration ends; the recorder's
            // pre-roll covers the delay.
            self.background = self.blurred.iter().map(|&v| f32::from(v)).collect();
            self.previous.clone_from(&self.blurred);
            self.calibrating_since = Some(frame.pts);
            let ev = self.step(frame, false, 0.0);
            return (Analysis::default(), ev);
        }

        let changed_count = pixels::threshold_diff(
            &self.blurred,
            &self.background,
            &self.keep,
            f32::from(self.threshold),
            &mut self.changed,
        );
        let unmasked = self.unmasked as f32;
        let changed_share = changed_count as f32 / unmasked;
        let min_area = self.settings.min_area();
        // Blobs under a quarter of the minimum area (3 pixels at least) are noise.
        let min_blob = ((min_area * unmasked / 4.0).ceil() as u32).max(3);
        let in_blobs = self.blobs.pixels_in_blobs(&self.changed, w, h, min_blob);
        let score = in_blobs as f32 / unmasked;
        let light_change = relit || changed_share > LIGHT_FRACTION;
        let calibrating = if light_change {
            debug!(
                pts,
                changed_share, relit, "motion: light change; recalibrating"
            );
            for (b, &v) in self.background.iter_mut().zip(&self.blurred) {
                *b = f32::from(v);
            }
            self.calibrating_since = Some(pts);
            true
        } else {
            if let Some(since) = self.calibrating_since {
                let elapsed = ticks_to_secs(pts.saturating_sub(since));
                if (elapsed >= CALIBRATION_MIN_SECS && score < min_area)
                    || elapsed >= CALIBRATION_MAX_SECS
                {
                    self.calibrating_since = None;
                }
            }
            let calibrating = self.calibrating_since.is_some();
            let tau = if calibrating {
                CALIBRATION_SECS
            } else {
                BACKGROUND_SECS
            };
            let alpha = 1.0 - (-dt / tau).exp();
            for (b, &v) in self.background.iter_mut().zip(&self.blurred) {
                *b += alpha * (f32::from(v) - *b);
            }
            calibrating
        };
        // Something newly in view that has stopped (a parked car, a square that came
        // to rest) still differs from the background until the background absorbs it
        // (BACKGROUND_SECS); it is not motion any more, so an active frame must also
        // have changed since the previous analysed one.
        let moving =
            pixels::changed_between(&self.blurred, &self.previous, &self.keep, self.threshold)
                as f32
                / unmasked;
        self.previous.clone_from(&self.blurred);
        let active =
            !light_change && !calibrating && score >= min_area && moving >= min_area * MOVING_SHARE;
        let ev = self.step(frame, active, score);
        let a = Analysis {
            score,
            active,
            light_change,
            calibrating,
        };
        (a, ev)
    }

    /// Hysteresis: counts active frames into an event and quiet time out of it.
    fn step(&mut self, frame: &GrayFrame, active: bool, score: f32) -> Option<MotionEvent> {
        let pts = frame.pts;
        self.last_pts = Some(pts);
        let better = |best: &Option<BestFrame>| best.as_ref().is_none_or(|b| score > b.score);
        if active {
            self.last_active = Some(pts);
            if let Some(ev) = &mut self.event {
                ev.last_active = pts;
                if better(&self.best) {
                    self.best = Some(BestFrame {
                        score,
                        frame: frame.clone(),
                    });
                }
                return None;
            }
            if self.streak == 0 {
                self.streak_start = pts;
                self.pending_best = None;
            }
            self.streak += 1;
            if better(&self.pending_best) {
                self.pending_best = Some(BestFrame {
                    score,
                    frame: frame.clone(),
                });
            }
            if self.streak >= self.settings.start_frames.max(1) {
                self.streak = 0;
                self.event = Some(OpenEvent { last_active: pts });
                self.best = self.pending_best.take();
                return Some(MotionEvent::Started {
                    pts: self.streak_start,
                });
            }
            return None;
        }
        self.streak = 0;
        self.pending_best = None;
        let ev = self.event?;
        if pts - ev.last_active >= self.settings.quiet_ticks() {
            self.event = None;
            return Some(MotionEvent::Ended {
                pts,
                last_motion_pts: ev.last_active,
            });
        }
        None
    }
}
