//! Retry delays for camera connections, as a pure value so it is tested without
//! sleeping.

use std::time::{Duration, Instant};

/// A connection that streamed this long resets the back-off: the camera is healthy,
/// and its next hiccup deserves a quick retry.
pub const HEALTHY_STREAMING: Duration = Duration::from_secs(30);

/// How long one connection really streamed: from its first published keyframe to its
/// last frame. Connecting, the handshake and the stall that ended it do not count, or
/// a camera that streams 20 s and then freezes for a 10 s stall timeout would pass as
/// healthy every time and be retried at the first delay forever. Monotonic instants,
/// so a wall-clock step cannot make a session look long.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamedSpan {
    first_and_last_frame: Option<(Instant, Instant)>,
}

impl StreamedSpan {
    /// A frame was published at `at` (the first one is the keyframe).
    pub fn frame(&mut self, at: Instant) {
        let first = self.first_and_last_frame.map_or(at, |(first, _)| first);
        self.first_and_last_frame = Some((first, at));
    }

    /// Whether the connection streamed at least [`HEALTHY_STREAMING`].
    pub fn was_healthy(&self) -> bool {
        self.first_and_last_frame
            .is_some_and(|(first, last)| last.saturating_duration_since(first) >= HEALTHY_STREAMING)
    }
}

/// Exponential back-off: `first`, doubling up to `cap`.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// Connection trouble: first retry after 1 s, capped at 10 s, so a camera that
    /// reboots is back quickly but a dead one costs almost nothing.
    pub fn for_errors() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(10))
    }

    /// Rejected credentials: slow (5 s doubling to 5 min). Retrying fast would only
    /// fill the camera's log and may trip its own lock-out.
    pub fn for_unauthorized() -> Self {
        Backoff::new(Duration::from_secs(5), Duration::from_secs(300))
    }

    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.cap);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_backoff_starts_within_a_second_and_caps_at_ten() {
        let mut b = Backoff::for_errors();
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn streaming_then_a_stall_counts_only_the_streamed_time() {
        // Connected and handshaken at `start`; 20 s of frames at 10 fps from 5 s on,
        // then nothing until the 10 s stall timeout ends the connection.
        let start = Instant::now();
        let at = |tenth: u64| start + Duration::from_secs(5) + Duration::from_millis(100 * tenth);
        let mut span = StreamedSpan::default();
        for tenth in 0..=200 {
            span.frame(at(tenth));
        }
        assert!(!span.was_healthy(), "20 s streamed is not healthy");
        for tenth in 201..=300 {
            span.frame(at(tenth));
        }
        assert!(span.was_healthy(), "30 s streamed is healthy");
    }

    #[test]
    fn a_connection_without_frames_is_not_healthy() {
        assert!(!StreamedSpan::default().was_healthy());
    }

    #[test]
    fn unauthorized_backoff_grows_slowly() {
        let mut b = Backoff::for_unauthorized();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300]);
    }
}
