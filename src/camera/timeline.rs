//! A camera's clock, kept monotonic for everyone downstream.
//!
//! Cameras reset their RTP clock without ending the RTSP session (an NTP step, an
//! encoder restart, firmware bugs). Passed on as is, a jump backwards makes the
//! recorder hold frames until time "catches up" again, the pre-roll buffer grow by
//! the size of the jump and events land at the wrong wall time. So a jump larger than
//! any honest reordering or network burst is cut out here: the frame is placed one
//! frame interval after the previous one and later frames follow from there. Video is
//! never dropped for it; only the camera's claimed time is corrected.
//!
//! A camera's clock also runs a little fast or slow (100 ppm is 8.6 s a day), and
//! frames are placed on the wall clock as the time at PLAY plus their timestamp, so
//! without a correction they drift away from the host's clock for as long as the
//! session lasts, and everything that compares the two (the recorder's post-roll)
//! goes wrong. So the timeline is slewed back whenever it is more than [`MAX_DRIFT`]
//! away from the host's clock (measured from the first frame's arrival): by at most
//! [`SLEW_PPM`] of each frame's duration, like moonfire-nvr, which outruns any honest
//! crystal and keeps frames monotonic and contiguous (no jump, no gap, no overlap).
//! The rate is never raised: when the host's clock itself steps (NTP at boot) the
//! distance can be hours, and a faster slew would play every recording visibly fast
//! or slow until it is made up; at 500 ppm nobody can tell. A camera clock off by more
//! than that drifts on, more slowly; the recorder compares event deadlines on the
//! frames' clock, so it still records.

use crate::model::TIMESCALE;

/// Further back than this is a clock jump, not B-frame reordering (which is a few
/// frames at most).
const MAX_BACKWARDS: i64 = TIMESCALE as i64;
/// Further ahead than the wall clock moved, by more than this, is a clock jump; less
/// is a burst of late frames or a short gap in the camera's own capture.
const MAX_AHEAD_OF_WALL: i64 = 10 * TIMESCALE as i64;
/// Frame interval assumed before two frames have been seen (30 fps).
const DEFAULT_STEP: i64 = TIMESCALE as i64 / 30;
/// How far the timeline may run from the host's clock before it is slewed back:
/// more than network jitter and a frame burst after a short stall.
pub const MAX_DRIFT: i64 = TIMESCALE as i64;
/// Correction per unit of camera time while beyond [`MAX_DRIFT`] (parts per million).
const SLEW_PPM: i64 = 500;

/// Where a frame lands on the corrected timeline.
#[derive(Debug, PartialEq, Eq)]
pub struct Placed {
    /// Presentation time in [`TIMESCALE`] units since the session's first frame.
    pub pts: i64,
    /// Set when the camera's clock jumped at this frame: by how much, in [`TIMESCALE`]
    /// units (negative = backwards), so the caller can say so in the log.
    pub jumped: Option<i64>,
}

/// The corrected timeline of one RTSP session.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Camera time that maps to corrected time 0 (moves at every jump).
    base: Option<i64>,
    /// Corrected time and wall clock (µs) of the previous frame.
    last: Option<(i64, i64)>,
    /// Last plausible frame interval, used to place the frame after a jump.
    step: i64,
    /// Wall clock (µs) when the first frame arrived: corrected time 0.
    anchor_wall: Option<i64>,
    /// Slew earned but not yet applied, in millionths of a [`TIMESCALE`] tick.
    slew_credit: i64,
}

impl Timeline {
    /// Places a frame given the camera's timestamp (any origin, [`TIMESCALE`] units)
    /// and the wall clock (µs) when it arrived.
    pub fn place(&mut self, camera_pts: i64, wall_micros: i64) -> Placed {
        let base = *self.base.get_or_insert(camera_pts);
        let pts = camera_pts - base;
        let Some((last_pts, last_wall)) = self.last else {
            self.last = Some((pts, wall_micros));
            self.anchor_wall = Some(wall_micros);
            return Placed { pts, jumped: None };
        };
        let step = pts - last_pts;
        let wall_step = (wall_micros - last_wall).max(0) * i64::from(TIMESCALE) / 1_000_000;
        if step < -MAX_BACKWARDS || step > wall_step + MAX_AHEAD_OF_WALL {
            let interval = if self.step > 0 {
                self.step
            } else {
                DEFAULT_STEP
            };
            let placed = last_pts + interval;
            self.base = Some(base + (pts - placed));
            self.last = Some((placed, wall_micros));
            return Placed {
                pts: placed,
                jumped: Some(step),
            };
        }
        if step > 0 && step <= MAX_BACKWARDS {
            self.step = step;
        }
        let pts = pts - self.slew(step, pts, wall_micros);
        self.last = Some((pts, wall_micros));
        Placed { pts, jumped: None }
    }

    /// How much to take off a frame's time (and every later frame's) to bring the
    /// timeline back toward the host's clock; see the module doc.
    fn slew(&mut self, step: i64, pts: i64, wall_micros: i64) -> i64 {
        let anchor = self.anchor_wall.unwrap_or(wall_micros);
        let host = (wall_micros - anchor) * i64::from(TIMESCALE) / 1_000_000;
        let drift = pts - host;
        let excess = drift.abs() - MAX_DRIFT;
        if excess <= 0 || step <= 0 {
            self.slew_credit = 0;
            return 0;
        }
        self.slew_credit += step.min(MAX_BACKWARDS) * SLEW_PPM;
        let correction = (self.slew_credit / 1_000_000).min(excess);
        // What the cap left unused is not saved up: a later frame must not take a
        // correction as large as its own duration.
        self.slew_credit = (self.slew_credit - correction * 1_000_000).min(999_999);
        if let Some(base) = self.base.as_mut() {
            *base += correction * drift.signum();
        }
        correction * drift.signum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: i64 = 3000; // 30 fps at 90 kHz
    const FRAME_US: i64 = 33_333;

    fn feed(t: &mut Timeline, camera: &[i64]) -> Vec<Placed> {
        camera
            .iter()
            .enumerate()
            .map(|(i, &c)| t.place(c, 1_000_000_000 + i as i64 * FRAME_US))
            .collect()
    }

    #[test]
    fn a_steady_clock_passes_through_from_zero() {
        let mut t = Timeline::default();
        let placed = feed(&mut t, &[500_000, 503_000, 506_000]);
        let pts: Vec<i64> = placed.iter().map(|p| p.pts).collect();
        assert_eq!(pts, [0, 3000, 6000]);
        assert!(placed.iter().all(|p| p.jumped.is_none()));
    }

    #[test]
    fn a_jump_backwards_continues_one_frame_later_and_is_reported() {
        let mut t = Timeline::default();
        let back = 10 * 90_000;
        let camera = [0, FRAME, 2 * FRAME, 3 * FRAME - back, 4 * FRAME - back];
        let placed = feed(&mut t, &camera);
        let pts: Vec<i64> = placed.iter().map(|p| p.pts).collect();
        assert_eq!(pts, [0, FRAME, 2 * FRAME, 3 * FRAME, 4 * FRAME]);
        assert_eq!(placed[3].jumped, Some(FRAME - back));
        assert_eq!(placed[4].jumped, None);
    }

    #[test]
    fn a_jump_far_ahead_of_the_wall_clock_is_cut_out() {
        let mut t = Timeline::default();
        let ahead = 3600 * 90_000;
        let placed = feed(&mut t, &[0, FRAME, 2 * FRAME + ahead, 3 * FRAME + ahead]);
        let pts: Vec<i64> = placed.iter().map(|p| p.pts).collect();
        assert_eq!(pts, [0, FRAME, 2 * FRAME, 3 * FRAME]);
        assert!(placed[2].jumped.is_some());
    }

    #[test]
    fn a_real_gap_that_the_wall_clock_also_saw_is_kept() {
        let mut t = Timeline::default();
        assert_eq!(t.place(0, 0).pts, 0);
        // Five seconds without frames, on both clocks: a camera that stopped capturing.
        let later = t.place(5 * 90_000, 5_000_000);
        assert_eq!(
            later,
            Placed {
                pts: 5 * 90_000,
                jumped: None
            }
        );
    }

    /// Frames `ppm` fast (per 1e6) for `seconds` at 30 fps, arriving on time by the
    /// host's clock: the largest distance from the host's clock, in ticks, over the
    /// last simulated hour; and that every frame came after the one before.
    fn run_fast_camera(ppm: i64, seconds: i64) -> (i64, bool) {
        let mut t = Timeline::default();
        let frames = seconds * 30;
        let mut last = -1;
        let mut in_order = true;
        let mut worst_late = 0;
        for i in 0..frames {
            let camera = i * FRAME * (1_000_000 + ppm) / 1_000_000;
            let wall = 1_000_000_000 + i * 1_000_000 / 30;
            let placed = t.place(camera, wall);
            in_order &= placed.pts > last && placed.jumped.is_none();
            last = placed.pts;
            if i >= frames - 3600 * 30 {
                let host = i * FRAME;
                worst_late = worst_late.max((placed.pts - host).abs());
            }
        }
        (worst_late, in_order)
    }

    #[test]
    fn a_camera_clock_100_ppm_fast_stays_within_a_second_of_the_host_for_a_day() {
        let (drift, in_order) = run_fast_camera(100, 24 * 3600);
        assert!(in_order, "frames stay in order, with no jump");
        assert!(
            drift <= MAX_DRIFT + FRAME,
            "{drift} ticks off the host's clock"
        );
    }

    /// The host's clock steps an hour ahead (NTP at boot): the timeline follows, but
    /// no frame's duration changes by more than the slew rate.
    #[test]
    fn a_host_clock_step_bends_frame_durations_by_at_most_500_ppm() {
        let mut t = Timeline::default();
        let mut last = None;
        for i in 0..20_000i64 {
            let step_ahead = if i >= 1000 { 3600 * 1_000_000 } else { 0 };
            let placed = t.place(i * FRAME, 1_000_000_000 + i * FRAME_US + step_ahead);
            if let Some(last) = last {
                let duration: i64 = placed.pts - last;
                assert!(
                    (duration - FRAME).abs() <= FRAME * SLEW_PPM / 1_000_000 + 1,
                    "frame {i} lasts {duration} ticks"
                );
            }
            last = Some(placed.pts);
        }
    }

    #[test]
    fn small_reordering_is_not_a_jump() {
        let mut t = Timeline::default();
        let placed = feed(&mut t, &[0, 2 * FRAME, FRAME, 3 * FRAME]);
        assert!(placed.iter().all(|p| p.jumped.is_none()));
        assert_eq!(placed[2].pts, FRAME);
    }
}
