//! Moving frames from a camera's broadcast hub to a consumer's bounded queue.
//!
//! A hub subscriber that does not read keeps every frame it has not read yet alive (up
//! to the hub's capacity, and a hostile camera's frames may each be tens of MiB). So
//! the recorder and the motion feed (each on its own thread) and every live viewer
//! (behind a socket that may be slow) are fed by a forwarder that reads the hub at
//! once and offers each frame to the consumer's queue without waiting; the hub never
//! waits for them, and never holds frames on their behalf. When a consumer falls
//! behind (its queue full, or the hub lagging past it) the frames in between are
//! dropped and the consumer is told so by a gap marker before the next frame it gets:
//! it must not join the stream across a hole.
//!
//! A queue is bounded in bytes as well as in frames. The frame count alone let a
//! hostile camera (valid access units of tens of MiB, each under the size guard's
//! limit, sent faster than the SD card takes them) fill a recorder's 256 places with
//! gigabytes, and the kernel's OOM killer then took every camera down with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::model::Frame;

/// What a consumer's queue carries besides its own inputs.
pub(crate) trait FrameInput {
    /// A frame, and its place in the queue's byte budget: the worker drops the charge
    /// once it has taken the frame out of the queue.
    fn frame(frame: Arc<Frame>, charge: QueuedBytes) -> Self;
    /// Frames were lost before the next one.
    fn gap() -> Self;
}

/// The bytes of the frames waiting in one consumer's queue, and their limit.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    queued: AtomicU64,
    limit: u64,
}

impl ByteBudget {
    pub(crate) fn new(limit: u64) -> Arc<ByteBudget> {
        Arc::new(ByteBudget {
            queued: AtomicU64::new(0),
            limit,
        })
    }

    /// Counts `bytes` as queued, unless that would pass the limit. An empty queue
    /// takes any frame, so a single frame larger than the budget is not lost for ever
    /// (the size guard bounds a frame on its own).
    fn charge(self: &Arc<Self>, bytes: u64) -> Option<QueuedBytes> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                let total = queued.saturating_add(bytes);
                (queued == 0 || total <= self.limit).then_some(total)
            })
            .ok()?;
        Some(QueuedBytes {
            budget: Arc::clone(self),
            bytes,
        })
    }

    #[cfg(test)]
    pub(crate) fn queued(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }
}

/// A queued frame's share of its queue's budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct QueuedBytes {
    budget: Arc<ByteBudget>,
    bytes: u64,
}

impl Drop for QueuedBytes {
    fn drop(&mut self) {
        self.budget.queued.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Why a queue did not take an item.
pub(crate) enum Refused {
    Full,
    /// The consumer is gone.
    Gone,
}

/// A bounded queue's sending end that answers at once: a worker thread's
/// [`SyncSender`], or a task's [`tokio::sync::mpsc::Sender`].
pub(crate) trait Queue<T> {
    fn offer(&self, item: T) -> Result<(), Refused>;
}

impl<T> Queue<T> for SyncSender<T> {
    fn offer(&self, item: T) -> Result<(), Refused> {
        self.try_send(item).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Refused::Full,
            mpsc::TrySendError::Disconnected(_) => Refused::Gone,
        })
    }
}

impl<T> Queue<T> for tokio::sync::mpsc::Sender<T> {
    fn offer(&self, item: T) -> Result<(), Refused> {
        use tokio::sync::mpsc::error::TrySendError;
        self.try_send(item).map_err(|e| match e {
            TrySendError::Full(_) => Refused::Full,
            TrySendError::Closed(_) => Refused::Gone,
        })
    }
}

/// Forwards `frames` to `tx` until shutdown, the hub closing, or the worker going away.
/// `worker` names it in the warning logged when it falls behind; `budget` bounds the
/// bytes of the frames waiting in its queue (a frame over it is dropped as if the
/// queue were full).
pub(crate) async fn forward<T: FrameInput>(
    worker: &'static str,
    mut frames: broadcast::Receiver<Arc<Frame>>,
    tx: impl Queue<T>,
    budget: Arc<ByteBudget>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut gap = false;
    loop {
        let frame = tokio::select! {
            r = frames.recv() => r,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(lost = n, "{worker} fell behind the camera; {n} frames lost");
                gap = true;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        // Charged first, so a frame over the budget costs no gap marker of its own.
        let bytes = u64::try_from(frame.data.len()).unwrap_or(u64::MAX);
        let Some(charge) = budget.charge(bytes) else {
            gap = true;
            continue;
        };
        if gap {
            match tx.offer(T::gap()) {
                Ok(()) => gap = false,
                Err(Refused::Full) => continue,
                Err(Refused::Gone) => break,
            }
        }
        match tx.offer(T::frame(frame, charge)) {
            Ok(()) => {}
            Err(Refused::Full) => gap = true,
            Err(Refused::Gone) => break,
        }
    }
    // Dropping `tx` lets the worker drain its queue and finish.
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{self, TryRecvError};

    use super::*;
    use crate::model::VideoParams;

    #[derive(Debug, PartialEq)]
    enum Seen {
        Frame(i64),
        Gap,
    }

    impl FrameInput for Seen {
        fn frame(frame: Arc<Frame>, _charge: QueuedBytes) -> Self {
            Seen::Frame(frame.pts)
        }
        fn gap() -> Self {
            Seen::Gap
        }
    }

    fn frame(pts: i64) -> Arc<Frame> {
        sized_frame(pts, 0)
    }

    fn sized_frame(pts: i64, bytes: usize) -> Arc<Frame> {
        Arc::new(Frame {
            session: 1,
            pts,
            wall_micros: pts,
            is_key: false,
            data: bytes::Bytes::from(vec![0; bytes]),
            params: Arc::new(VideoParams {
                codec: "avc1".into(),
                width: 16,
                height: 16,
                sample_entry: Vec::new(),
            }),
        })
    }

    /// Lets the forwarder (the only other task on this thread) take what is waiting.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn drain(rx: &mpsc::Receiver<Seen>) -> Vec<Seen> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    /// Spawns a forwarder from a hub of `hub_places` frames to a worker queue of
    /// `queue_places`, bounded by `budget`. Returns the hub, the worker's end and
    /// the shutdown switch; dropping the switch stops the forwarder, so a test keeps
    /// it until it means to.
    fn start<T: FrameInput + Send + 'static>(
        hub_places: usize,
        queue_places: usize,
        budget: Arc<ByteBudget>,
    ) -> (
        broadcast::Sender<Arc<Frame>>,
        mpsc::Receiver<T>,
        watch::Sender<bool>,
    ) {
        let (hub, frames) = broadcast::channel(hub_places);
        let (tx, rx) = mpsc::sync_channel(queue_places);
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(forward("test", frames, tx, budget, shutdown));
        (hub, rx, stop)
    }

    /// A worker that falls behind, first by the hub lagging past it and then by its
    /// own queue filling up, gets a gap marker before the first frame after each hole
    /// and never two frames with a hole between them.
    #[tokio::test(flavor = "current_thread")]
    async fn every_hole_is_marked_before_the_next_frame() {
        let (hub, rx, _stop) = start::<Seen>(4, 2, ByteBudget::new(u64::MAX));

        for pts in 0..10 {
            hub.send(frame(pts)).expect("a receiver");
        }
        settle().await;
        // 0–5 were overwritten in the hub; 7–9 found the queue full.
        assert_eq!(drain(&rx), [Seen::Gap, Seen::Frame(6)]);

        for pts in 10..12 {
            hub.send(frame(pts)).expect("a receiver");
        }
        settle().await;
        assert_eq!(drain(&rx), [Seen::Gap, Seen::Frame(10)]);

        drop(hub);
        settle().await;
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn shutdown_lets_the_worker_finish() {
        let (_hub, rx, stop) = start::<Seen>(4, 2, ByteBudget::new(u64::MAX));
        settle().await;
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        stop.send(true).expect("the forwarder listens");
        settle().await;
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    /// A queue's frames are bounded in bytes too: the frame that would pass the
    /// budget is dropped (and marked as a hole) while the queue still has places, and
    /// frames flow again once the worker has taken the queued ones.
    #[tokio::test(flavor = "current_thread")]
    async fn a_queue_full_in_bytes_drops_frames_like_a_full_queue() {
        /// What the worker holds: the frame and its charge, as a real worker does
        /// until it has taken the frame.
        struct Held {
            pts: i64,
            _charge: Option<QueuedBytes>,
        }
        impl FrameInput for Held {
            fn frame(frame: Arc<Frame>, charge: QueuedBytes) -> Self {
                Held {
                    pts: frame.pts,
                    _charge: Some(charge),
                }
            }
            fn gap() -> Self {
                Held {
                    pts: -1,
                    _charge: None,
                }
            }
        }
        const MIB: usize = 1024 * 1024;
        let budget = ByteBudget::new(5 * MIB as u64);
        let (hub, rx, _stop) = start::<Held>(16, 64, Arc::clone(&budget));

        for pts in 0..4 {
            hub.send(sized_frame(pts, 2 * MIB)).expect("a receiver");
        }
        settle().await;
        let held: Vec<Held> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let seen: Vec<i64> = held.iter().map(|h| h.pts).collect();
        // 0 and 1 fill 4 of the 5 MiB; 2 and 3 would pass it.
        assert_eq!(seen, [0, 1]);
        assert_eq!(budget.queued(), 4 * MIB as u64);
        drop(held);
        assert_eq!(
            budget.queued(),
            0,
            "taking the frames gives their bytes back"
        );

        hub.send(sized_frame(4, 2 * MIB)).expect("a receiver");
        settle().await;
        let seen: Vec<i64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|h| h.pts)
            .collect();
        assert_eq!(seen, [-1, 4], "a hole before the next frame");
    }

    /// A single frame larger than the whole budget still goes through an empty queue:
    /// the budget bounds what piles up, not what one frame may be.
    #[tokio::test(flavor = "current_thread")]
    async fn an_empty_queue_takes_a_frame_over_the_budget() {
        let (hub, rx, _stop) = start::<Seen>(4, 4, ByteBudget::new(10));
        hub.send(sized_frame(0, 100)).expect("a receiver");
        settle().await;
        assert_eq!(drain(&rx), [Seen::Frame(0)]);
    }
}
