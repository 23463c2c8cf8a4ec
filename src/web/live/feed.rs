//! The frames one live viewer is sent, taken from the camera's hub as they come.
//!
//! A viewer's socket may be slow for a long while (a message has 30 s to be written)
//! before it is given up on. Reading the hub only between writes let the hub keep every
//! frame such a viewer had not read yet: 64 frames, each up to the ingest size guard's
//! 32 MiB, so about 2 GiB held for one viewer of a hostile camera (and a session may
//! open 8). So a forwarder task (`camera::forward`, as for the recorder and motion
//! feed) takes each frame as it is published into this viewer's own queue, bounded in
//! frames and in bytes; when it is full, frames are dropped and the viewer resumes at
//! the next keyframe, as it did when the hub lagged past it.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::camera::forward::{forward, ByteBudget, FrameInput, QueuedBytes};
use crate::model::{CameraId, Frame};

/// Frames waiting for one viewer: as many as the hub kept for a slow viewer before, so
/// a viewer that falls behind skips to the next keyframe at the same point as it did
/// then, rather than drifting ever further behind the camera.
pub const QUEUE_FRAMES: usize = 64;

/// Bytes of the frames waiting for one viewer (8 MiB). Over 64 frames of a 4K camera
/// at 16 Mbit/s (about 4 MB), so for a real camera the frame count binds first and a
/// viewer sees what it did before; yet a hostile camera's huge frames pin at most this
/// much per viewer (64 MiB for a session's 8 views) where the hub pinned 2 GiB. A
/// single frame over it still goes through an empty queue (the size guard bounds it).
pub const QUEUE_BYTES: u64 = 8 * 1024 * 1024;

/// What the forwarder puts in the viewer's queue.
enum Fed {
    Frame(Arc<Frame>, QueuedBytes),
    /// Frames were dropped before the next one.
    Gap,
}

impl FrameInput for Fed {
    fn frame(frame: Arc<Frame>, charge: QueuedBytes) -> Self {
        Fed::Frame(frame, charge)
    }
    fn gap() -> Self {
        Fed::Gap
    }
}

/// A frame to send, with its share of the queue's byte budget: kept until it has been
/// sent, so that a frame being written to a slow socket still counts against the budget.
pub struct Queued {
    pub frame: Arc<Frame>,
    _charge: QueuedBytes,
}

/// One viewer's frames. Dropping it stops its forwarder, which lets go of the hub.
pub struct Feed {
    camera: CameraId,
    queue: mpsc::Receiver<Fed>,
    /// The next frame sent must be a keyframe: at the start, and after every hole.
    need_key: bool,
    forwarder: JoinHandle<()>,
}

impl Feed {
    /// Starts taking `frames` (a fresh subscription to `camera`'s hub) until shutdown.
    pub fn start(
        camera: CameraId,
        frames: broadcast::Receiver<Arc<Frame>>,
        shutdown: watch::Receiver<bool>,
    ) -> Feed {
        let (tx, queue) = mpsc::channel(QUEUE_FRAMES);
        let forwarder = tokio::spawn(forward(
            "live view",
            frames,
            tx,
            ByteBudget::new(QUEUE_BYTES),
            shutdown,
        ));
        Feed {
            camera,
            queue,
            need_key: true,
            forwarder,
        }
    }

    /// The next frame the viewer can take: a keyframe first, and after frames were
    /// lost, nothing up to the next keyframe. `None` once the hub closed or the daemon
    /// stops. Cancel-safe (it only waits on the queue), so it may sit in a `select!`.
    pub async fn next(&mut self) -> Option<Queued> {
        loop {
            match self.queue.recv().await? {
                Fed::Gap => {
                    tracing::debug!(camera = %self.camera, "live view client fell behind");
                    self.need_key = true;
                }
                Fed::Frame(frame, _) if self.need_key && !frame.is_key => {}
                Fed::Frame(frame, charge) => {
                    self.need_key = false;
                    return Some(Queued {
                        frame,
                        _charge: charge,
                    });
                }
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;

    use futures::FutureExt;

    use super::*;
    use crate::model::VideoParams;

    /// The hub's capacity in the daemon (`camera::HUB_CAPACITY`).
    const HUB: usize = 64;
    /// A frame size that lets the byte budget, not the frame count, bind.
    const FRAME_BYTES: usize = (QUEUE_BYTES / 32) as usize;
    /// A keyframe every this many frames.
    const GOP: i64 = 10;

    fn frame(pts: i64, bytes: usize) -> Arc<Frame> {
        Arc::new(Frame {
            session: 1,
            pts,
            wall_micros: pts,
            is_key: pts % GOP == 0,
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

    fn start(hub: &broadcast::Sender<Arc<Frame>>) -> (Feed, watch::Sender<bool>) {
        let (stop, shutdown) = watch::channel(false);
        let camera: CameraId = "porch".parse().expect("a valid id");
        (Feed::start(camera, hub.subscribe(), shutdown), stop)
    }

    /// The frames waiting for the viewer, taken without waiting.
    fn take(feed: &mut Feed) -> Vec<Arc<Frame>> {
        std::iter::from_fn(|| feed.next().now_or_never().flatten())
            .map(|q| q.frame)
            .collect()
    }

    /// A viewer that takes nothing (its socket stuck) while a camera sends big frames
    /// holds no more than its byte budget, in its queue and in the hub together; once
    /// it takes frames again it resumes at a keyframe, never across the hole.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stuck_viewer_holds_no_more_than_its_budget_and_resumes_at_a_keyframe() {
        let (hub, _) = broadcast::channel(HUB);
        let (mut feed, _stop) = start(&hub);
        let mut published: Vec<Weak<Frame>> = Vec::new();
        for pts in 0..3 * HUB as i64 {
            let f = frame(pts, FRAME_BYTES);
            published.push(Arc::downgrade(&f));
            hub.send(f).expect("the feed subscribes");
            settle().await;
            let held: usize = published
                .iter()
                .filter_map(Weak::upgrade)
                .map(|f| f.data.len())
                .sum();
            assert!(
                held as u64 <= QUEUE_BYTES,
                "after frame {pts}, {held} bytes are held for a viewer that reads nothing"
            );
        }

        // The frames taken now, then those the camera sends meanwhile.
        let mut seen = take(&mut feed);
        for pts in 3 * HUB as i64..4 * HUB as i64 {
            hub.send(frame(pts, FRAME_BYTES))
                .expect("the feed subscribes");
            settle().await;
            seen.extend(take(&mut feed));
        }
        let pts: Vec<i64> = seen.iter().map(|f| f.pts).collect();
        assert_eq!(pts.first(), Some(&0), "the queue kept the first frames");
        for pair in seen.windows(2) {
            assert!(
                pair[1].pts == pair[0].pts + 1 || pair[1].is_key,
                "frame {} follows {} across a hole: {pts:?}",
                pair[1].pts,
                pair[0].pts
            );
        }
        assert!(
            pts.contains(&(4 * HUB as i64 - 1)),
            "the viewer catches up: {pts:?}"
        );
    }

    /// A viewer that keeps up, or falls behind by less than its queue, gets every
    /// frame in order from the first keyframe, as when it read the hub itself.
    #[tokio::test(flavor = "current_thread")]
    async fn a_viewer_that_keeps_up_gets_every_frame_from_a_keyframe() {
        let (hub, _) = broadcast::channel(HUB);
        let (mut feed, _stop) = start(&hub);
        let mut seen = Vec::new();
        for pts in 5..3 * GOP {
            hub.send(frame(pts, 100)).expect("the feed subscribes");
            settle().await;
            seen.extend(take(&mut feed).iter().map(|f| f.pts));
        }
        // A burst as long as the queue, taken only afterwards.
        for pts in 3 * GOP..3 * GOP + QUEUE_FRAMES as i64 {
            hub.send(frame(pts, 100)).expect("the feed subscribes");
        }
        settle().await;
        seen.extend(take(&mut feed).iter().map(|f| f.pts));
        let expected: Vec<i64> = (GOP..3 * GOP + QUEUE_FRAMES as i64).collect();
        assert_eq!(seen, expected);
    }

    /// A closed viewer lets go of the hub at once, and the daemon's shutdown ends it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_feed_lets_go_of_the_hub_when_dropped_and_ends_at_shutdown() {
        let (hub, _) = broadcast::channel::<Arc<Frame>>(HUB);
        let (feed, _stop) = start(&hub);
        settle().await;
        assert_eq!(hub.receiver_count(), 1);
        drop(feed);
        settle().await;
        assert_eq!(
            hub.receiver_count(),
            0,
            "the forwarder stopped with the view"
        );

        let (mut feed, stop) = start(&hub);
        stop.send(true).expect("the forwarder listens");
        settle().await;
        assert!(feed.next().await.is_none(), "nothing more after shutdown");
    }
}
