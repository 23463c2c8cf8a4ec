//! A camera's clock, kept monotonic for everyone downstream.
//!
//! Cameras reset their RTP clock without ending the RTSP session (an NTP step, an
//! encoder restart, firmware bugs). Passed on as is, a jump backwards makes the
//! recorder hold frames until time "catches up" again, the pre-roll buffer grow by
//! the size of the jump and events land at the wrong wall time. So a jump larger than
//! any honest reordering or network burst is cut out here: the frame is placed one
//! frame interval after the previous one and later frames follow from there. Video is
//! never dropped for it; only the camera's claimed time is corrected.

use crate::model::TIMESCALE;

/// Further back than this is a clock jump, not B-frame reordering (which is a few
/// frames at most).
const MAX_BACKWARDS: i64 = TIMESCALE as i64;
/// Further ahead than the wall clock moved, by more than this, is a clock jump; less
/// is a burst of late frames or a short gap in the camera's own capture.
const MAX_AHEAD_OF_WALL: i64 = 10 * TIMESCALE as i64;
/// Frame interval assumed before two frames have been seen (30 fps).
const DEFAULT_STEP: i64 = TIMESCALE as i64 / 30;

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
}

impl Timeline {
    /// Places a frame given the camera's timestamp (any origin, [`TIMESCALE`] units)
    /// and the wall clock (µs) when it arrived.
    pub fn place(&mut self, camera_pts: i64, wall_micros: i64) -> Placed {
        let base = *self.base.get_or_insert(camera_pts);
        let pts = camera_pts - base;
        let Some((last_pts, last_wall)) = self.last else {
            self.last = Some((pts, wall_micros));
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
        self.last = Some((pts, wall_micros));
        Placed { pts, jumped: None }
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

    #[test]
    fn small_reordering_is_not_a_jump() {
        let mut t = Timeline::default();
        let placed = feed(&mut t, &[0, 2 * FRAME, FRAME, 3 * FRAME]);
        assert!(placed.iter().all(|p| p.jumped.is_none()));
        assert_eq!(placed[2].pts, FRAME);
    }
}
