//! Requests at once per client behind a trusted reverse proxy.
//!
//! A trusted proxy carries every client's connections, so it is exempt from the
//! server's per-address connection limit; without a limit of its own, one client
//! could fill every connection the daemon allows with long-lived requests through
//! the proxy (notices and event streams, live views, slow downloads) and lock the
//! household out. So each request from a trusted proxy holds a [`Slot`] of its client
//! (the address [`super::client_addr::ClientAddr`] resolved) for as long as it is in
//! use, at most `max` at once; one more is answered 429 before it reaches the router.
//!
//! "In use" ends:
//! - for an ordinary response, when its body has been sent to the end, has failed, or
//!   was dropped (the client went away): the body carries the slot ([`HeldBody`]);
//! - for an upgrade (101; live view's WebSocket), when the upgraded connection ends:
//!   the slot moves into the connection's [`UpgradeHold`], which its I/O
//!   ([`HoldingIo`]) owns, and hyper hands that I/O to the upgraded connection and
//!   drops it with it. No handler has to carry a slot, so a new upgrade route cannot
//!   forget to.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::slots::{Slot, Slots};

/// Each client's requests in use at once, for requests from trusted proxies.
pub struct PerClient {
    max: usize,
    slots: Arc<Slots<IpAddr>>,
}

/// Where a connection keeps the slot of the request that upgraded it (at most one:
/// after a 101 the connection speaks another protocol).
#[derive(Clone, Default)]
pub struct UpgradeHold(Arc<Mutex<Option<Slot<IpAddr>>>>);

impl UpgradeHold {
    fn keep(&self, slot: Slot<IpAddr>) {
        // A poisoned lock only means another holder panicked; the Option stays valid.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(slot);
    }
}

impl PerClient {
    pub fn new(max: usize) -> PerClient {
        PerClient {
            max,
            slots: Slots::new(max),
        }
    }

    /// Runs `serve` (a request of `client` on the connection with `hold`) holding one
    /// of the client's slots until the request is no longer in use (see the module's
    /// documentation); when the client already has `max`, `serve` is never run and
    /// the answer is 429.
    pub async fn serve(
        &self,
        client: IpAddr,
        hold: &UpgradeHold,
        serve: impl Future<Output = Response>,
    ) -> Response {
        let client = client.to_canonical();
        let Some(slot) = self.slots.acquire(client) else {
            tracing::warn!(%client, "web: {} requests at once from {client} through the proxy; refusing another", self.max);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests at once from this client",
            )
                .into_response();
        };
        let response = serve.await;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            hold.keep(slot);
            return response;
        }
        response.map(|body| {
            Body::new(HeldBody {
                body,
                slot: Some(slot),
            })
        })
    }
}

/// A response body holding its request's slot until it ends, fails or is dropped.
struct HeldBody {
    body: Body,
    slot: Option<Slot<IpAddr>>,
}

impl HttpBody for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            // Sent to the end, or failed: the request no longer uses its slot, even if
            // hyper keeps the body a little longer.
            self.slot = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's I/O, owning `held`: what must live exactly as long as the
/// connection (its [`UpgradeHold`]; the server also puts the connection's places in
/// its connection limits here). hyper's connection future ends at an upgrade (101),
/// but the upgraded connection keeps the I/O and drops it when it closes, so only the
/// I/O knows when the connection is really gone.
pub struct HoldingIo<T, H> {
    io: T,
    _held: H,
}

impl<T, H> HoldingIo<T, H> {
    pub fn new(io: T, held: H) -> HoldingIo<T, H> {
        HoldingIo { io, _held: held }
    }
}

impl<T: AsyncRead + Unpin, H: Unpin> AsyncRead for HoldingIo<T, H> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin, H: Unpin> AsyncWrite for HoldingIo<T, H> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// A 200 whose body streams until `end` is dropped.
    fn streaming() -> (
        Response,
        futures::channel::mpsc::Sender<Result<Bytes, io::Error>>,
    ) {
        let (end, rx) = futures::channel::mpsc::channel(1);
        (Response::new(Body::from_stream(rx)), end)
    }

    async fn status(limit: &PerClient, client: &str) -> StatusCode {
        let hold = UpgradeHold::default();
        let ok = async { StatusCode::OK.into_response() };
        limit.serve(ip(client), &hold, ok).await.status()
    }

    #[tokio::test]
    async fn a_client_over_its_limit_is_refused_without_running_the_request() {
        let limit = PerClient::new(1);
        let hold = UpgradeHold::default();
        let (response, _end) = streaming();
        let held = limit
            .serve(ip("203.0.113.5"), &hold, async { response })
            .await;
        assert_eq!(held.status(), StatusCode::OK);

        let ran = AtomicBool::new(false);
        let refused = limit
            .serve(ip("203.0.113.5"), &hold, async {
                ran.store(true, Ordering::Relaxed);
                StatusCode::OK.into_response()
            })
            .await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(!ran.load(Ordering::Relaxed), "a refused request is not run");
        assert_eq!(
            status(&limit, "::ffff:203.0.113.5").await,
            StatusCode::TOO_MANY_REQUESTS,
            "an IPv4-mapped address is the same client"
        );
        assert_eq!(
            status(&limit, "203.0.113.6").await,
            StatusCode::OK,
            "another client is apart"
        );
        drop(held);
        assert_eq!(status(&limit, "203.0.113.5").await, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_slot_is_freed_when_the_body_has_been_sent_even_before_it_is_dropped() {
        let limit = PerClient::new(1);
        let hold = UpgradeHold::default();
        let (response, mut end) = streaming();
        let mut body = limit
            .serve(ip("203.0.113.5"), &hold, async { response })
            .await
            .into_body();
        end.try_send(Ok(Bytes::from_static(b"data")))
            .expect("room for one");
        let frame = futures::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(matches!(frame, Some(Ok(_))), "the data frame");
        assert_eq!(
            status(&limit, "203.0.113.5").await,
            StatusCode::TOO_MANY_REQUESTS,
            "held while the body is being sent"
        );
        drop(end);
        let frame = futures::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(frame.is_none(), "the end");
        assert_eq!(status(&limit, "203.0.113.5").await, StatusCode::OK);
        drop(body);
    }

    #[tokio::test]
    async fn an_upgraded_request_holds_its_slot_as_long_as_the_connection() {
        let limit = PerClient::new(1);
        let hold = UpgradeHold::default();
        let (server_side, mut client_side) = tokio::io::duplex(64);
        let mut io = HoldingIo::new(server_side, hold.clone());
        let upgraded = limit
            .serve(ip("2001:db8::5"), &hold, async {
                StatusCode::SWITCHING_PROTOCOLS.into_response()
            })
            .await;
        assert_eq!(upgraded.status(), StatusCode::SWITCHING_PROTOCOLS);
        // hyper drops the 101's (empty) body and the connection's service at once.
        drop(upgraded);
        drop(hold);
        assert_eq!(
            status(&limit, "2001:db8::5").await,
            StatusCode::TOO_MANY_REQUESTS,
            "the upgraded connection still holds the slot"
        );
        io.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        client_side.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping", "the I/O passes through");
        drop(io);
        assert_eq!(status(&limit, "2001:db8::5").await, StatusCode::OK);
    }
}
