//! Retry delays for camera connections, as a pure value so it is tested without
//! sleeping.

use std::time::Duration;

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
    fn unauthorized_backoff_grows_slowly() {
        let mut b = Backoff::for_unauthorized();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300]);
    }
}
