//! The viewer's end of a live-view socket: every message written to it has
//! [`ANSWER_WITHIN`] to be taken, and a viewer silent for [`PING_AFTER`] is pinged and
//! given up on if it does not answer within [`ANSWER_WITHIN`]; the caller then drops
//! the socket, which frees its places in the connection limits (`web::server`).
//! Generic over the socket, so that it is tested against an in-memory one.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;

/// Silence from a viewer after which it is pinged. A viewer whose peer vanished
/// without closing (lid shut, Wi-Fi gone: no FIN, no RST) otherwise held its socket,
/// and its places in the connection limits, until its session ended (up to 12 h) when
/// the camera sends nothing. Browsers answer pings in their network stack, even in a
/// background tab; a few bytes every 15 s cost a healthy view nothing.
pub const PING_AFTER: Duration = Duration::from_secs(15);
/// The time a viewer has to answer a ping (with anything), and any one message has to
/// be written to it. Generous: on a slow link the ping waits behind the video already
/// queued, and a frame that cannot be written in 30 s is far behind anyway; without
/// it, a write to a vanished peer blocked until the kernel gave up retransmitting
/// (about 15 min).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// How long a viewer may stay silent, and a message take to be written to it, before
/// its socket is given up; [`PATIENCE`] in the daemon, shorter in tests.
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    /// Silence after which the viewer is pinged.
    pub ping_after: Duration,
    /// The time a ping has to be answered, and a message to be written.
    pub answer_within: Duration,
}

pub const PATIENCE: Patience = Patience {
    ping_after: PING_AFTER,
    answer_within: ANSWER_WITHIN,
};

/// Why a viewer's socket ended.
#[derive(Debug, thiserror::Error)]
pub enum Gone {
    #[error("the viewer closed the socket")]
    Closed,
    #[error("the socket failed: {0}")]
    Failed(axum::Error),
    #[error("the viewer did not answer a ping within {0:?}")]
    Silent(Duration),
    #[error("a message could not be written within {0:?}")]
    Stuck(Duration),
}

/// The viewer's end of the socket: every write is given [`Patience::answer_within`],
/// and reading pings a silent viewer and gives up on one that does not answer.
pub struct Viewer<S> {
    socket: S,
    patience: Patience,
    /// When the viewer last said anything (or the socket opened).
    heard: Instant,
    /// When the ping not yet answered was queued.
    pinged: Option<Instant>,
    /// That ping is queued but its flush was cut short (the loop's `select!` took a
    /// frame): the next [`listen`](Self::listen) flushes it rather than queue another.
    ping_unflushed: bool,
}

impl<S> Viewer<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    pub fn new(socket: S, patience: Patience) -> Self {
        Viewer {
            socket,
            patience,
            heard: Instant::now(),
            pinged: None,
            ping_unflushed: false,
        }
    }

    pub async fn send(&mut self, message: Message) -> Result<(), Gone> {
        let limit = self.patience.answer_within;
        within(limit, self.socket.send(message), Gone::Stuck(limit)).await
    }

    /// Sends a close frame with `code`, if it can be written in time.
    pub async fn close(&mut self, code: u16, reason: &'static str) {
        let _ = self
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }

    /// Waits for the viewer to say something other than close, pinging it when it has
    /// been silent for [`Patience::ping_after`]; an error once it closed, failed, or
    /// left a ping unanswered (or unflushed) for [`Patience::answer_within`].
    /// Cancel-safe, as the loop's `select!` needs: a ping counts as sent once queued,
    /// so one whose flush a frame interrupted is flushed by the next call, not queued
    /// again (on a busy link that would be a ping per frame).
    pub async fn listen(&mut self) -> Result<(), Gone> {
        loop {
            let deadline = match self.pinged {
                None => self.heard + self.patience.ping_after,
                Some(at) => at + self.patience.answer_within,
            };
            if self.ping_unflushed {
                let left = deadline.saturating_duration_since(Instant::now());
                let silent = Gone::Silent(self.patience.answer_within);
                within(left, self.socket.flush(), silent).await?;
                self.ping_unflushed = false;
            }
            tokio::select! {
                // An answer already read counts before a deadline passed meanwhile:
                // the loop reads only between frames, and a frame may take long.
                biased;
                message = self.socket.next() => {
                    self.heard = Instant::now();
                    self.pinged = None;
                    return match message {
                        Some(Ok(Message::Close(_))) | None => Err(Gone::Closed),
                        Some(Err(e)) => Err(Gone::Failed(e)),
                        Some(Ok(_)) => Ok(()),
                    };
                }
                () = tokio::time::sleep_until(deadline) => {
                    if self.pinged.is_some() {
                        return Err(Gone::Silent(self.patience.answer_within));
                    }
                    let limit = self.patience.answer_within;
                    let ping = self.socket.feed(Message::Ping(Bytes::new()));
                    within(limit, ping, Gone::Stuck(limit)).await?;
                    self.pinged = Some(Instant::now());
                    self.ping_unflushed = true;
                }
            }
        }
    }
}

/// `step` if it completes within `limit`, else `late`.
async fn within(
    limit: Duration,
    step: impl std::future::Future<Output = Result<(), axum::Error>>,
    late: Gone,
) -> Result<(), Gone> {
    match tokio::time::timeout(limit, step).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Gone::Failed(e)),
        Err(_) => Err(late),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::channel::mpsc;

    use super::*;

    /// Short enough for a test; the answer time is ten pings long, so a viewer that
    /// answers is not given up on by a slow scheduler.
    const SHORT: Patience = Patience {
        ping_after: Duration::from_millis(50),
        answer_within: Duration::from_millis(500),
    };
    /// Far longer than any outcome here takes.
    const LONG: Duration = Duration::from_secs(20);

    /// The server's end of an in-memory socket: reads what the viewer says, writes
    /// into a channel of `room` messages the viewer reads (or does not).
    struct Pipe {
        from_viewer: mpsc::Receiver<Message>,
        to_viewer: mpsc::Sender<Message>,
    }

    /// The viewer's end: what it says and what it is sent.
    struct Peer {
        says: mpsc::Sender<Message>,
        hears: mpsc::Receiver<Message>,
    }

    fn pipe(room: usize) -> (Pipe, Peer) {
        let (says, from_viewer) = mpsc::channel(room);
        let (to_viewer, hears) = mpsc::channel(room);
        (
            Pipe {
                from_viewer,
                to_viewer,
            },
            Peer { says, hears },
        )
    }

    impl Stream for Pipe {
        type Item = Result<Message, axum::Error>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Pin::new(&mut self.from_viewer)
                .poll_next(cx)
                .map(|m| m.map(Ok))
        }
    }

    impl Sink<Message> for Pipe {
        type Error = axum::Error;
        fn poll_ready(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            Pin::new(&mut self.to_viewer)
                .poll_ready(cx)
                .map_err(axum::Error::new)
        }
        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
            Pin::new(&mut self.to_viewer)
                .start_send(item)
                .map_err(axum::Error::new)
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            Pin::new(&mut self.to_viewer)
                .poll_flush(cx)
                .map_err(axum::Error::new)
        }
        fn poll_close(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            Pin::new(&mut self.to_viewer)
                .poll_close(cx)
                .map_err(axum::Error::new)
        }
    }

    /// Listens as the live-view loop does, until the viewer is gone.
    async fn listen_until_gone(viewer: &mut Viewer<Pipe>) -> Gone {
        loop {
            if let Err(gone) = viewer.listen().await {
                return gone;
            }
        }
    }

    #[tokio::test]
    async fn a_viewer_that_stops_answering_is_pinged_then_given_up_on() {
        // The peer vanished: it neither reads nor says anything, nor closes.
        let (socket, mut peer) = pipe(8);
        let mut viewer = Viewer::new(socket, SHORT);
        let start = Instant::now();
        let gone = tokio::time::timeout(LONG, listen_until_gone(&mut viewer))
            .await
            .expect("a viewer that never answers is given up on");
        assert!(matches!(gone, Gone::Silent(_)), "{gone}");
        assert!(
            start.elapsed() >= SHORT.ping_after + SHORT.answer_within,
            "not before its ping had its time to be answered"
        );
        assert!(
            matches!(peer.hears.try_recv(), Ok(Message::Ping(_))),
            "it was pinged first"
        );
        assert!(
            peer.hears.try_recv().is_err(),
            "once: the unanswered ping is not repeated"
        );
        drop(peer.says);
    }

    #[tokio::test]
    async fn a_viewer_that_answers_pings_is_kept() {
        let (socket, peer) = pipe(8);
        let Peer {
            mut says,
            mut hears,
        } = peer;
        // A browser: each ping answered with a pong, nothing else said.
        let answering = tokio::spawn(async move {
            let mut pings = 0;
            while let Some(message) = hears.next().await {
                if let Message::Ping(payload) = message {
                    pings += 1;
                    if says.send(Message::Pong(payload)).await.is_err() {
                        break;
                    }
                }
            }
            pings
        });
        let mut viewer = Viewer::new(socket, SHORT);
        // Four times as long as a silent viewer is kept.
        let watched = 4 * (SHORT.ping_after + SHORT.answer_within);
        let outcome = tokio::time::timeout(watched, listen_until_gone(&mut viewer)).await;
        assert!(outcome.is_err(), "given up on: {}", outcome.expect("gone"));
        drop(viewer);
        let pings = answering.await.expect("the viewer's task");
        assert!(
            pings >= 4,
            "pinged whenever silent, answered each time: {pings}"
        );
    }

    #[tokio::test]
    async fn a_message_the_viewer_does_not_take_ends_the_socket() {
        // The peer vanished with the socket's buffers full: writes never complete.
        let (socket, peer) = pipe(0);
        let mut viewer = Viewer::new(socket, SHORT);
        let start = Instant::now();
        let gone = tokio::time::timeout(LONG, async {
            loop {
                if let Err(gone) = viewer
                    .send(Message::Binary(Bytes::from_static(b"moof")))
                    .await
                {
                    return gone;
                }
            }
        })
        .await
        .expect("a write that cannot complete is given up");
        assert!(matches!(gone, Gone::Stuck(_)), "{gone}");
        assert!(
            start.elapsed() >= SHORT.answer_within,
            "not before its time"
        );
        drop(peer);
    }

    #[tokio::test]
    async fn a_viewer_that_closes_is_gone() {
        let (socket, mut peer) = pipe(8);
        let mut viewer = Viewer::new(socket, SHORT);
        peer.says.send(Message::Close(None)).await.expect("close");
        let gone = tokio::time::timeout(LONG, listen_until_gone(&mut viewer))
            .await
            .expect("gone");
        assert!(matches!(gone, Gone::Closed), "{gone}");
    }

    /// A socket whose peer reads nothing and says nothing: messages are queued (and
    /// counted), a flush never completes.
    #[derive(Default)]
    struct Clogged {
        pings: usize,
    }

    impl Stream for Clogged {
        type Item = Result<Message, axum::Error>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Pending
        }
    }

    impl Sink<Message> for Clogged {
        type Error = axum::Error;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
            if matches!(item, Message::Ping(_)) {
                self.pings += 1;
            }
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_ping_whose_flush_is_cut_short_is_not_queued_again() {
        let mut viewer = Viewer::new(Clogged::default(), SHORT);
        // The loop's select! drops listen() for each frame while the ping's flush
        // waits; here a short timeout plays the frames.
        let _ = tokio::time::timeout(SHORT.ping_after * 2, viewer.listen()).await;
        for _ in 0..10 {
            let _ = tokio::time::timeout(Duration::from_millis(5), viewer.listen()).await;
        }
        assert_eq!(viewer.socket.pings, 1, "one ping, flushed on each call");
        let gone = tokio::time::timeout(LONG, viewer.listen())
            .await
            .expect("given up on");
        assert!(matches!(gone, Err(Gone::Silent(_))), "{gone:?}");
    }

    #[tokio::test]
    async fn an_answer_read_late_still_counts() {
        // The pong arrives while a long frame write keeps the loop from reading; by
        // the time it reads, the ping's deadline has passed too. 32 rounds: an
        // unbiased choice between the two would lose one of them.
        let quick = Patience {
            ping_after: Duration::from_millis(10),
            answer_within: Duration::from_millis(40),
        };
        for round in 0..32 {
            let (socket, mut peer) = pipe(8);
            let mut viewer = Viewer::new(socket, quick);
            let _ = tokio::time::timeout(quick.ping_after * 3, viewer.listen()).await;
            assert!(
                matches!(peer.hears.try_recv(), Ok(Message::Ping(_))),
                "round {round}: pinged"
            );
            peer.says
                .send(Message::Pong(Bytes::new()))
                .await
                .expect("pong");
            tokio::time::sleep(quick.answer_within + Duration::from_millis(20)).await;
            let heard = viewer.listen().await;
            assert!(heard.is_ok(), "round {round}: {heard:?}");
        }
    }
}
