//! A run of frames that starts at a keyframe and fits in a bounded amount of memory:
//! the pre-roll ring of events mode, and the open recording's current keyframe group.
//!
//! Invariants: the first frame is a keyframe; all frames share one connection
//! (session) and one set of parameters, so a file started from them has one sample
//! entry that fits every frame; the ring never holds more than
//! [`MAX_RING_FRAMES`] frames or [`MAX_RING_BYTES`] bytes, whatever the camera's
//! timestamps and keyframe interval do.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::model::Frame;

/// Most bytes a ring holds. A real stream fits with room to spare: the longest
/// pre-roll (30 s) plus the trigger delay allowance (4 s) plus one keyframe group of
/// up to 10 s, at 8 Mbit/s, is 44 MB. Without a cap, a camera that sends one keyframe
/// and then only P-frames (or timestamps that never advance) grows the ring by its
/// whole bitrate (1.8 GB an hour at 4 Mbit/s) until the OOM killer stops every camera.
pub const MAX_RING_BYTES: usize = 64 * 1024 * 1024;
/// Most frames a ring holds: the same 44 s at 60 fps is 2,640. It also bounds the
/// scan for the next keyframe that runs at each frame.
pub const MAX_RING_FRAMES: usize = 4096;

/// Frames from a keyframe on (see the module doc).
#[derive(Debug, Default)]
pub struct FrameRing {
    frames: VecDeque<Arc<Frame>>,
    bytes: usize,
}

/// What [`FrameRing::push`] did beyond keeping the frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Kept, within the caps.
    Kept,
    /// Not kept: the ring is empty and the frame is not a keyframe.
    WaitingForKeyframe,
    /// Kept, but the caps dropped frames from the front (whole keyframe groups, or
    /// everything when a single group outgrew them).
    Capped,
}

impl FrameRing {
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn front(&self) -> Option<&Arc<Frame>> {
        self.frames.front()
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// Takes every frame out, oldest first.
    pub fn take_all(&mut self) -> Vec<Arc<Frame>> {
        self.bytes = 0;
        self.frames.drain(..).collect()
    }

    /// The frames, oldest first, leaving the ring as it is.
    pub fn to_vec(&self) -> Vec<Arc<Frame>> {
        self.frames.iter().cloned().collect()
    }

    /// Appends a frame. A new connection or new parameters start the ring afresh
    /// (from the first keyframe after the change): frames on either side of it cannot
    /// share a file, whose one sample entry comes from its first frame.
    pub fn push(&mut self, frame: Arc<Frame>) -> Pushed {
        if self.frames.back().is_some_and(|last| {
            last.session != frame.session
                || !(Arc::ptr_eq(&last.params, &frame.params) || *last.params == *frame.params)
        }) {
            self.clear();
        }
        if self.frames.is_empty() && !frame.is_key {
            return Pushed::WaitingForKeyframe;
        }
        self.bytes += frame.data.len();
        self.frames.push_back(frame);
        let mut pushed = Pushed::Kept;
        while self.frames.len() > MAX_RING_FRAMES || self.bytes > MAX_RING_BYTES {
            pushed = Pushed::Capped;
            match self.next_keyframe() {
                Some(next_key) => self.drop_front(next_key),
                None => self.clear(),
            }
        }
        pushed
    }

    /// Drops whole keyframe groups from the front while the next keyframe satisfies
    /// `old_enough`, so the ring always starts at a keyframe.
    pub fn drop_groups_before(&mut self, old_enough: impl Fn(&Frame) -> bool) {
        while let Some(next_key) = self.next_keyframe() {
            if old_enough(&self.frames[next_key]) {
                self.drop_front(next_key);
            } else {
                break;
            }
        }
    }

    /// Position of the first keyframe after the front.
    fn next_keyframe(&self) -> Option<usize> {
        self.frames
            .iter()
            .skip(1)
            .position(|f| f.is_key)
            .map(|i| i + 1)
    }

    fn drop_front(&mut self, count: usize) {
        for frame in self.frames.drain(..count) {
            self.bytes -= frame.data.len();
        }
    }
}
