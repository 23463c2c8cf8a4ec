//! The listeners: HTTPS (rustls; HTTP/2 when the client offers it, else HTTP/1.1)
//! serving the router, and an optional plain-HTTP listener that only redirects to HTTPS.
//!
//! Limits that protect a small machine: at most [`MAX_CONNECTIONS`] connections, and
//! [`MAX_PER_ADDRESS`] from one client address, so one client cannot take them all
//! (more are closed at once; an upgraded connection, live view's WebSocket, counts
//! until it closes). A trusted reverse proxy carries every client's connections, so
//! it has only the overall limit on connections; instead each client behind it may
//! have [`MAX_PER_ADDRESS`] requests in use at once, counted until the response has
//! been sent or, for a WebSocket, until the socket closes (more are answered 429
//! without reaching the router; see [`super::per_client`]). A TLS
//! handshake must finish in [`HANDSHAKE_TIMEOUT`], request headers must arrive within
//! [`HEADER_TIMEOUT`] and fit in [`MAX_HEADER_BYTES`] (hyper answers 431 beyond that;
//! over HTTP/2, a connection that has asked nothing by then is closed, and at most
//! [`MAX_STREAMS`] requests run at once); a request body must arrive whole within
//! [`BODY_TIMEOUT`] (408 and the connection closed; a body trickled a byte at a time
//! would otherwise hold its connection for ever) and is limited in the router (413).
//! On shutdown, open requests get [`SHUTDOWN_GRACE`] to finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::client_addr::ClientAddr;
use super::per_client::{HoldingIo, PerClient, UpgradeHold};
use super::slots::{Slot, Slots};
use crate::config::TrustedProxies;

pub const MAX_CONNECTIONS: usize = 256;
/// Connections at once from one address (a browser needs a few, plus live views);
/// behind a trusted proxy, requests in use at once from one client.
pub const MAX_PER_ADDRESS: usize = 32;
/// The time a request's whole body may take to arrive (bodies are at most 16 KiB).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(20);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Request line and headers together (hyper's minimum is 8 KiB).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Requests at once on one HTTP/2 connection (RFC 9113 advises no fewer than 100).
pub const MAX_STREAMS: u32 = 100;
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

fn http1_builder() -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(Some(HEADER_TIMEOUT))
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    b
}

/// HTTP/2 for browsers: at most [`MAX_STREAMS`] requests at once on a connection, the
/// same header limit as HTTP/1, and pings that notice a peer gone silent. WebSockets
/// (live view) stay on HTTP/1.1: no extended CONNECT is offered, so browsers open a
/// separate HTTP/1.1 connection for them.
fn http2_builder() -> http2::Builder<TokioExecutor> {
    let mut b = http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Some(KEEPALIVE_INTERVAL))
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    b
}

/// Drives `conn` until it ends; once the daemon stops, asks it to finish (`shut_down`)
/// and gives it [`SHUTDOWN_GRACE`].
async fn until_stopped<C, E>(
    conn: C,
    shut_down: impl FnOnce(Pin<&mut C>),
    stop: &mut watch::Receiver<bool>,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        _ = super::stopped(stop) => {
            shut_down(conn.as_mut());
            tokio::time::timeout(SHUTDOWN_GRACE, conn).await.unwrap_or(Ok(()))
        }
    }
}

/// Ends after `limit` if nothing was `asked` by then; otherwise never.
async fn silent_for(limit: Duration, asked: &AtomicBool) {
    tokio::time::sleep(limit).await;
    if asked.load(Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
}

/// HTTP/2 names the host in the `:authority` pseudo-header, not `Host`; the handlers
/// (origin checks, links written out) read `Host`, so it is set from the authority.
fn host_from_authority<B>(req: &mut hyper::Request<B>) {
    if req.version() != Version::HTTP_2 {
        return;
    }
    let authority = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(authority) = authority {
        req.headers_mut().insert(header::HOST, authority);
    }
}

/// The body did not arrive within [`BODY_TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {BODY_TIMEOUT:?}")]
struct BodyTimedOut;

/// Gives `req`'s body a deadline of [`BODY_TIMEOUT`] from now for all of it (a
/// per-read timeout would let a client trickle a byte at a time). Past it the body
/// fails and `late` turns true, so [`serve_request`] can answer 408.
fn with_deadline(req: hyper::Request<Incoming>, late: Arc<AtomicBool>) -> hyper::Request<Body> {
    req.map(|body| {
        if body.is_end_stream() {
            return Body::new(body);
        }
        let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
        let data = Body::new(body).into_data_stream();
        let timed = futures::stream::unfold(Some(data), move |data| {
            let late = late.clone();
            async move {
                let mut data = data?;
                match tokio::time::timeout_at(deadline, data.next()).await {
                    Ok(chunk) => chunk.map(|c| (c, Some(data))),
                    Err(_) => {
                        late.store(true, Ordering::Relaxed);
                        Some((Err(axum::Error::new(BodyTimedOut)), None))
                    }
                }
            }
        });
        Body::from_stream(timed)
    })
}

/// Runs `app` on `req` (its body under [`with_deadline`]); a request whose body came
/// too late is answered 408 and its connection closed, whatever the handler made of
/// the failed body.
async fn serve_request(app: Router, req: hyper::Request<Incoming>) -> Response {
    let late = Arc::new(AtomicBool::new(false));
    let http1 = req.version() < Version::HTTP_2;
    let req = with_deadline(req, late.clone());
    let response = match app.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if late.load(Ordering::Relaxed) {
        tracing::debug!("web: request body too slow; answered 408");
        let mut r = (StatusCode::REQUEST_TIMEOUT, "request body too slow").into_response();
        // HTTP/2 has no Connection header; there only this stream ends.
        if http1 {
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return r;
    }
    response
}

/// A connection's places in the limits: one of [`MAX_CONNECTIONS`] and, unless the
/// peer is a trusted proxy, one of [`MAX_PER_ADDRESS`] for its address; dropping it
/// frees them. Its connection's task holds it until the TLS handshake is done, then
/// the connection's I/O ([`HoldingIo`]): after an upgrade (live view's WebSocket)
/// hyper's connection future and the task end while the socket lives on, and it must
/// still count until it closes.
struct Places {
    _all: OwnedSemaphorePermit,
    _address: Option<Slot<IpAddr>>,
}

/// Serves `app` over TLS on `listener` until `shutdown` turns true. Each request
/// carries its [`ClientAddr`], resolved here from the peer and `trusted` proxies.
pub async fn run_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    trusted: Arc<TrustedProxies>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = Slots::<IpAddr>::new(MAX_PER_ADDRESS);
    let per_client = Arc::new(PerClient::new(MAX_PER_ADDRESS));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("web: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = super::stopped(&mut shutdown) => break,
        };
        // A trusted proxy carries every client's connections (a notices stream per
        // tab, a WebSocket per live view): only the overall limit applies to its
        // connections, and each client's requests through it are limited instead.
        let proxied = trusted.contains(peer.ip());
        let address_slot = if proxied {
            None
        } else {
            let Some(slot) = per_address.acquire(peer.ip().to_canonical()) else {
                tracing::warn!(%peer, "web: too many connections from {}; closing a new one", peer.ip());
                continue;
            };
            Some(slot)
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "web: too many connections; closing a new one");
            continue;
        };
        let places = Places {
            _all: permit,
            _address: address_slot,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let trusted = trusted.clone();
        let per_client = proxied.then(|| per_client.clone());
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let tls_stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "web: TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "web: TLS handshake timed out");
                        return;
                    }
                };
            // Browsers speak HTTP/2 when offered (ALPN): one connection carries all of
            // a browser's tabs, so each tab's notices stream no longer holds one of the
            // six connections per host HTTP/1.1 allows (the seventh tab would wait).
            let http2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let hold = UpgradeHold::default();
            let io = TokioIo::new(HoldingIo::new(tls_stream, (hold.clone(), places)));
            let asked = Arc::new(AtomicBool::new(false));
            let seen = asked.clone();
            let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
                seen.store(true, Ordering::Relaxed);
                // The one place the client's address is decided; a ClientAddr the
                // client tried to send does not exist (extensions are not headers).
                let client = ClientAddr::resolve(peer, req.headers(), &trusted);
                req.extensions_mut().insert(client);
                host_from_authority(&mut req);
                let app = app.clone();
                let (per_client, hold) = (per_client.clone(), hold.clone());
                async move {
                    let response = match per_client {
                        Some(limit) => limit.serve(client.0, &hold, serve_request(app, req)).await,
                        None => serve_request(app, req).await,
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let service = TowerToHyperService::new(service);
            let result = if http2 {
                let conn = http2_builder().serve_connection(io, service);
                tokio::select! {
                    r = until_stopped(conn, |c| c.graceful_shutdown(), &mut stop) => r,
                    // What HTTP/1's header timeout does for a connection that asks nothing.
                    () = silent_for(HEADER_TIMEOUT, &asked) => Ok(()),
                }
            } else {
                let conn = http1_builder()
                    .serve_connection(io, service)
                    .with_upgrades();
                until_stopped(conn, |c| c.graceful_shutdown(), &mut stop).await
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "web: connection ended: {e}");
            }
        });
    }
    drop(listener);
    // Connections finish their current request (at most SHUTDOWN_GRACE) on their own.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Serves redirects to `https://<host>:<https_port><path>` on `listener`.
pub async fn run_redirect(
    listener: TcpListener,
    https_port: u16,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = super::stopped(&mut shutdown) => break,
        };
        let local = stream.local_addr().ok();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let response = super::headers::redirect_to_https(&req, https_port, local);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = http1_builder().serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

/// The address a listener is bound to, for log lines and tests.
pub fn bound(listener: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}
