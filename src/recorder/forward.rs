//! Moving frames from a camera's broadcast hub to a worker thread's bounded queue.
//!
//! The recorder and the motion feed each run on their own thread behind a bounded
//! queue; the hub must never wait for them. So frames are offered with `try_send`, and
//! when a worker falls behind (its queue full, or the hub lagging past it) the frames
//! in between are dropped and the worker is told so by a gap marker before the next
//! frame it gets: it must not join the stream across a hole.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::model::Frame;

/// What a worker's queue carries besides its own inputs.
pub(super) trait FrameInput {
    fn frame(frame: Arc<Frame>) -> Self;
    /// Frames were lost before the next one.
    fn gap() -> Self;
}

/// Forwards `frames` to `tx` until shutdown, the hub closing, or the worker going away.
/// `worker` names it in the warning logged when it falls behind.
pub(super) async fn forward<T: FrameInput>(
    worker: &'static str,
    mut frames: broadcast::Receiver<Arc<Frame>>,
    tx: SyncSender<T>,
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
        if gap {
            match tx.try_send(T::gap()) {
                Ok(()) => gap = false,
                Err(TrySendError::Full(_)) => continue,
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        match tx.try_send(T::frame(frame)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => gap = true,
            Err(TrySendError::Disconnected(_)) => break,
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
        fn frame(frame: Arc<Frame>) -> Self {
            Seen::Frame(frame.pts)
        }
        fn gap() -> Self {
            Seen::Gap
        }
    }

    fn frame(pts: i64) -> Arc<Frame> {
        Arc::new(Frame {
            session: 1,
            pts,
            wall_micros: pts,
            is_key: false,
            data: bytes::Bytes::new(),
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

    /// A worker that falls behind, first by the hub lagging past it and then by its
    /// own queue filling up, gets a gap marker before the first frame after each hole
    /// and never two frames with a hole between them.
    #[tokio::test(flavor = "current_thread")]
    async fn every_hole_is_marked_before_the_next_frame() {
        let (hub, frames) = broadcast::channel(4);
        let (tx, rx) = mpsc::sync_channel(2);
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(forward("test", frames, tx, shutdown));

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
        let (_hub, frames) = broadcast::channel::<Arc<Frame>>(4);
        let (tx, rx) = mpsc::sync_channel::<Seen>(2);
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(forward("test", frames, tx, shutdown));
        settle().await;
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        stop.send(true).expect("the forwarder listens");
        settle().await;
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}
