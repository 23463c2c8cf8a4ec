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
/// Raw luma levels by which a grid cell's mean must move to count as re-lit.
pub const LIGHT_CELL_SHIFT: f32 = 10.0;
/// Share of grid cells that must move the same way for a global light change; a
/// person, even close, covers a few cells, a light switch nearly all of them.
pub const LIGHT_CELL_SHARE: f32 = 0.75;
const LIGHT_GRID: usize = 4;
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
    threshold: f32,
    width: usize,
    height: usize,
    /// `true` where ignored; rasterised at `width` x `height`.
    mask: Vec<bool>,
    unmasked: usize,
    /// Running average of the stretched, blurred frames; empty until the first frame.
    background: Vec<f32>,
    /// Previous frame's raw mean luma per grid cell (NaN where the cell is masked).
    cells: Vec<f32>,
    stretched: Vec<u8>,
    blurred: Vec<u8>,
    changed: Vec<bool>,
    parent: Vec<u32>,
    blob_size: Vec<u32>,
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
    /// A detector for frames of `width` x `height` (a frame of another size re-sizes it
    /// and restarts calibration, so this is only the expected size).
    pub fn new(settings: MotionSettings, width: u32, height: u32) -> Self {
        let threshold = f32::from(settings.pixel_threshold());
        let mut d = MotionDetector {
            settings,
            threshold,
            width: 0,
            height: 0,
            mask: Vec::new(),
            unmasked: 0,
            background: Vec::new(),
            cells: Vec::new(),
            stretched: Vec::new(),
            blurred: Vec::new(),
            changed: Vec::new(),
            parent: Vec::new(),
            blob_size: Vec::new(),
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
        self.mask = rasterise(&self.settings.zones, width as u32, height as u32);
        self.unmasked = self.mask.iter().filter(|&&m| !m).count();
        self.background.clear();
        self.cells.clear();
        self.stretched = vec![0; n];
        self.blurred = vec![0; n];
        self.changed = vec![false; n];
        self.parent = vec![0; n];
        self.blob_size = vec![0; n];
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
        let cells = self.cell_means(&frame.pixels);
        let relit = self.cells_relit(&cells);
        self.cells = cells;
        self.stretch(&frame.pixels);
        blur(&self.stretched, &mut self.blurred, w, h);

        if self.background.is_empty() || self.unmasked == 0 {
            // The first frame is the background as it is; no calibration period, so
            // motion already under way when the stream starts is seen from frame two.
            self.background = self.blurred.iter().map(|&v| f32::from(v)).collect();
            self.calibrating_since = None;
            let ev = self.step(frame, false, 0.0);
            return (Analysis::default(), ev);
        }

        let changed_count = self.threshold_diff();
        let changed_share = changed_count as f32 / self.unmasked as f32;
        let min_area = self.settings.min_area();
        let score = self.blob_score(min_area);
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
        let active = !light_change && !calibrating && score >= min_area;
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

    /// Mean raw luma of the unmasked pixels of each grid cell; NaN for a cell that is
    /// more than three-quarters masked, whose mean would hang on a few pixels.
    fn cell_means(&self, pixels: &[u8]) -> Vec<f32> {
        let (w, h) = (self.width, self.height);
        let mut sum = [0u64; LIGHT_GRID * LIGHT_GRID];
        let mut count = [0u32; LIGHT_GRID * LIGHT_GRID];
        let mut total = [0u32; LIGHT_GRID * LIGHT_GRID];
        for y in 0..h {
            let row = (y * LIGHT_GRID / h) * LIGHT_GRID;
            for x in 0..w {
                let cell = row + x * LIGHT_GRID / w;
                let i = y * w + x;
                total[cell] += 1;
                if !self.mask[i] {
                    sum[cell] += u64::from(pixels[i]);
                    count[cell] += 1;
                }
            }
        }
        (0..sum.len())
            .map(|c| {
                if count[c] > 0 && count[c] * 4 >= total[c] {
                    sum[c] as f32 / count[c] as f32
                } else {
                    f32::NAN
                }
            })
            .collect()
    }

    /// Whether most cells moved the same way by at least [`LIGHT_CELL_SHIFT`] since the
    /// previous frame.
    fn cells_relit(&self, cells: &[f32]) -> bool {
        if self.cells.len() != cells.len() {
            return false;
        }
        let (mut valid, mut up, mut down) = (0u32, 0u32, 0u32);
        for (&old, &new) in self.cells.iter().zip(cells) {
            if old.is_nan() || new.is_nan() {
                continue;
            }
            valid += 1;
            if new - old >= LIGHT_CELL_SHIFT {
                up += 1;
            } else if old - new >= LIGHT_CELL_SHIFT {
                down += 1;
            }
        }
        valid >= 4 && up.max(down) as f32 >= LIGHT_CELL_SHARE * valid as f32
    }

    /// Contrast stretch into `self.stretched`, percentiles from the unmasked pixels.
    fn stretch(&mut self, pixels: &[u8]) {
        let mut hist = [0u32; 256];
        for (&p, &m) in pixels.iter().zip(&self.mask) {
            if !m {
                hist[usize::from(p)] += 1;
            }
        }
        let n = self.unmasked.max(1) as u64;
        let percentile = |pct: u64| {
            let want = n * pct / 100;
            let mut seen = 0u64;
            for (v, &c) in hist.iter().enumerate() {
                seen += u64::from(c);
                if seen > want {
                    return v as i32;
                }
            }
            255
        };
        let (mut lo, mut hi) = (percentile(4), percentile(96));
        if hi - lo < MIN_STRETCH_RANGE {
            lo = (lo + hi - MIN_STRETCH_RANGE) / 2;
            hi = lo + MIN_STRETCH_RANGE;
        }
        let mut lut = [0u8; 256];
        for (v, out) in lut.iter_mut().enumerate() {
            *out = ((v as i32 - lo) * 255 / (hi - lo)).clamp(0, 255) as u8;
        }
        for (s, &p) in self.stretched.iter_mut().zip(pixels) {
            *s = lut[usize::from(p)];
        }
    }

    /// Marks unmasked pixels differing from the background by more than the threshold;
    /// returns how many.
    fn threshold_diff(&mut self) -> usize {
        let mut n = 0;
        for (((c, &b), &v), &m) in self
            .changed
            .iter_mut()
            .zip(&self.background)
            .zip(&self.blurred)
            .zip(&self.mask)
        {
            *c = !m && (f32::from(v) - b).abs() > self.threshold;
            n += usize::from(*c);
        }
        n
    }

    /// Groups changed pixels into blobs (union-find; pixels within two of each other,
    /// as a 3x3 dilation would join them) and returns the share of unmasked pixels in
    /// blobs of at least a quarter of the minimum area (3 pixels at the least).
    fn blob_score(&mut self, min_area: f32) -> f32 {
        let (w, h) = (self.width, self.height);
        let min_blob = ((min_area * self.unmasked as f32 / 4.0).ceil() as u32).max(3);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if !self.changed[i] {
                    continue;
                }
                self.parent[i] = i as u32;
                // Neighbours already visited: two rows above (x-2..=x+2), two to the left.
                for dy in 0..=2usize {
                    if dy > y {
                        break;
                    }
                    let (from, to) = if dy == 0 {
                        (x.saturating_sub(2), x)
                    } else {
                        (x.saturating_sub(2), (x + 3).min(w))
                    };
                    for nx in from..to {
                        let j = (y - dy) * w + nx;
                        if self.changed[j] {
                            union(&mut self.parent, i, j);
                        }
                    }
                }
            }
        }
        self.blob_size.fill(0);
        for i in 0..w * h {
            if self.changed[i] {
                let r = find(&mut self.parent, i);
                self.blob_size[r] += 1;
            }
        }
        let in_blobs: u64 = self
            .blob_size
            .iter()
            .filter(|&&s| s >= min_blob)
            .map(|&s| u64::from(s))
            .sum();
        in_blobs as f32 / self.unmasked.max(1) as f32
    }
}

fn find(parent: &mut [u32], mut i: usize) -> usize {
    while parent[i] as usize != i {
        let up = parent[parent[i] as usize];
        parent[i] = up; // path halving
        i = up as usize;
    }
    i
}

fn union(parent: &mut [u32], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        // The smaller index is the root: it was visited first, so it is initialised.
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        parent[hi] = lo as u32;
    }
}

/// 3x3 binomial blur (1 2 1 ⊗ 1 2 1 / 16), edges clamped.
fn blur(src: &[u8], dst: &mut [u8], w: usize, h: usize) {
    let mut rows = vec![0u16; w * h];
    for y in 0..h {
        let r = &src[y * w..(y + 1) * w];
        for x in 0..w {
            let l = r[x.saturating_sub(1)];
            let rr = r[(x + 1).min(w - 1)];
            rows[y * w + x] = u16::from(l) + 2 * u16::from(r[x]) + u16::from(rr);
        }
    }
    for y in 0..h {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            let v = rows[up * w + x] + 2 * rows[y * w + x] + rows[down * w + x];
            dst[y * w + x] = ((v + 8) / 16) as u8;
        }
    }
}
