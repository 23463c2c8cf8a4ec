//! A size guard between retina and the camera: a loopback relay that watches the RTSP
//! framing of what the camera sends and cuts the connection when a message is larger
//! than any honest camera sends.
//!
//! Why: retina 0.4 buffers a whole RTSP message before parsing it and sets no limit
//! (its parser has `max_message_size`, but the client never sets it). A hostile or
//! broken camera that sends header lines forever, or declares a 4 GB body and streams
//! it, grew the daemon by hundreds of MB a second until the 10 s handshake timeout
//! (measured: 2–4 GB RSS, `tests/hostile.rs`). On a Raspberry Pi that is the OOM
//! killer taking every camera down with the one that misbehaves.
//!
//! How: ingest connects to the camera here first (so "unreachable" stays a plain
//! connect error), then hands retina a `rtsp://127.0.0.1:<relay port>/...` URL. Bytes
//! from the daemon go to the camera unchanged; bytes from the camera go through
//! [`FrameGuard`], a pure framing tracker (unit-tested and fuzzed) that allows a head of
//! at most [`MAX_HEAD_BYTES`] and a body of at most [`MAX_BODY_BYTES`]. Each interleaved
//! RTP frame is bounded by its 16-bit length, but retina's H.264 depacketizer joins
//! packets into one access unit without limit (a timestamp that never changes, or an
//! access unit ending in an SEI, which retina never lets end one), so the guard also
//! counts interleaved bytes since ingest last got a frame ([`FrameProgress`]) and cuts
//! past [`MAX_BYTES_BETWEEN_FRAMES`]. The relay accepts exactly one connection and
//! ends with the session (dropping [`Relay`] aborts it).
//!
//! The guard frames the stream exactly as retina's parser does (a line ends only at
//! CRLF; a bare LF is part of the line), otherwise a camera could send what the guard
//! counts as many small messages and retina buffers as one endless one.
//!
//! Invariants: no RTSP content is changed, only counted; memory per camera is at most
//! one 64 KiB copy buffer plus the head being checked.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest status line plus headers accepted from a camera. Real cameras send well
/// under 2 KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest body accepted (in practice an SDP of a few hundred bytes). Generous, so a
/// camera with a long SDP still connects.
pub const MAX_BODY_BYTES: u64 = 2 * 1024 * 1024;
/// Interleaved bytes (RTP and RTCP, headers included) accepted between two frames that
/// ingest gets out of retina. A 4K keyframe is a few MiB; 32 MiB leaves a wide margin
/// for any real camera and still stops a camera feeding one endless access unit long
/// before it hurts a Raspberry Pi.
pub const MAX_BYTES_BETWEEN_FRAMES: u64 = 32 * 1024 * 1024;

/// Interleaved bytes relayed since ingest last got a frame: the relay adds, ingest
/// resets on every frame. Shared because the two run in different tasks.
#[derive(Clone, Debug, Default)]
pub struct FrameProgress(Arc<AtomicU64>);

impl FrameProgress {
    /// Ingest got a whole frame: everything relayed before it is accounted for.
    pub fn frame_received(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Counts `bytes` more and returns the total since the last frame.
    fn add(&self, bytes: u64) -> u64 {
        self.0
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes)
    }
}

/// Why the guard cut a camera's connection. The text is safe to show and log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("the camera sent an RTSP header block over {limit} bytes")]
    HeadTooLong { limit: usize },
    #[error("the camera declared an RTSP body of {declared} bytes (limit {limit})")]
    BodyTooLarge { declared: u64, limit: u64 },
    #[error("the camera sent an unreadable Content-Length")]
    BadContentLength,
    #[error("the camera sent over {limit} bytes of RTP without completing a frame")]
    NoFrameWithin { limit: u64 },
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Between messages (CR/LF allowed, as retina allows them).
    Boundary,
    /// Inside the 4-byte `$ channel len` header of an interleaved frame.
    DataHeader { got: [u8; 4], n: usize },
    /// Inside a status line and headers. As in retina, a line ends only at CRLF (a
    /// bare LF is part of the line): `line_empty` says whether the current line has
    /// had no byte yet, `after_cr` whether the last byte was a CR.
    Head { line_empty: bool, after_cr: bool },
    /// Passing this many bytes of a body or interleaved frame.
    Skip(u64),
}

/// Tracks RTSP framing (messages and `$`-interleaved frames) across reads.
#[derive(Debug)]
pub struct FrameGuard {
    state: State,
    head: Vec<u8>,
    since_frame: FrameProgress,
}

impl Default for FrameGuard {
    fn default() -> Self {
        FrameGuard::new(FrameProgress::default())
    }
}

impl FrameGuard {
    /// A guard that counts interleaved bytes into `since_frame`.
    pub fn new(since_frame: FrameProgress) -> Self {
        FrameGuard {
            state: State::Boundary,
            head: Vec::new(),
            since_frame,
        }
    }

    /// Takes the next bytes from the camera; an error means the stream must be cut
    /// (the guard is then useless and should be dropped).
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), GuardError> {
        while let Some(&b) = input.first() {
            match &mut self.state {
                State::Boundary => match b {
                    b'$' => {
                        self.state = State::DataHeader {
                            got: [b'$', 0, 0, 0],
                            n: 1,
                        };
                        input = &input[1..];
                    }
                    b'\r' | b'\n' => input = &input[1..],
                    _ => {
                        self.head.clear();
                        self.state = State::Head {
                            line_empty: false,
                            after_cr: false,
                        };
                    }
                },
                State::DataHeader { got, n } => {
                    got[*n] = b;
                    *n += 1;
                    input = &input[1..];
                    if *n == 4 {
                        let len = u16::from_be_bytes([got[2], got[3]]);
                        self.state = State::Skip(u64::from(len));
                        if self.since_frame.add(4 + u64::from(len)) > MAX_BYTES_BETWEEN_FRAMES {
                            return Err(GuardError::NoFrameWithin {
                                limit: MAX_BYTES_BETWEEN_FRAMES,
                            });
                        }
                    }
                }
                State::Head {
                    line_empty,
                    after_cr,
                } => {
                    if self.head.len() >= MAX_HEAD_BYTES {
                        return Err(GuardError::HeadTooLong {
                            limit: MAX_HEAD_BYTES,
                        });
                    }
                    self.head.push(b);
                    input = &input[1..];
                    match b {
                        b'\n' if *after_cr && *line_empty => {
                            let body = content_length(&self.head)?;
                            self.head = Vec::new();
                            self.state = State::Skip(body);
                        }
                        b'\n' if *after_cr => {
                            *line_empty = true;
                            *after_cr = false;
                        }
                        // A CR alone is not a line's content (retina refuses it anyway).
                        b'\r' => *after_cr = true,
                        _ => {
                            *line_empty = false;
                            *after_cr = false;
                        }
                    }
                }
                State::Skip(remaining) => {
                    let n = input
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    *remaining -= n as u64;
                    input = &input[n..];
                    if *remaining == 0 {
                        self.state = State::Boundary;
                    }
                }
            }
            if let State::Skip(0) = self.state {
                self.state = State::Boundary;
            }
        }
        Ok(())
    }
}

/// The `Content-Length` of a finished head (0 if absent), within [`MAX_BODY_BYTES`].
/// Lines are split at CRLF only and the status line is skipped, as retina reads them,
/// so a `Content-Length:` hidden after a bare LF cannot set a body length retina does
/// not see. A repeated header is refused: retina joins repeats with ", " and fails.
fn content_length(head: &[u8]) -> Result<u64, GuardError> {
    let mut length = None;
    for line in crlf_lines(head).skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-length")
        {
            continue;
        }
        if length.is_some() {
            return Err(GuardError::BadContentLength);
        }
        let value = std::str::from_utf8(line[colon + 1..].trim_ascii())
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(GuardError::BadContentLength)?;
        length = Some(value);
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY_BYTES {
        return Err(GuardError::BodyTooLarge {
            declared: length,
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(length)
}

/// The lines of a head, split at CRLF only (a bare LF stays inside its line).
fn crlf_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = head;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match rest.windows(2).position(|w| w == b"\r\n") {
            Some(end) => (&rest[..end], &rest[end + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        Some(line)
    })
}

/// A running relay for one RTSP connection; dropping it closes both sides.
pub struct Relay {
    /// The camera URL with host and port pointing at the relay.
    pub url: url::Url,
    /// Reset by ingest on every frame it gets through this relay.
    pub since_frame: FrameProgress,
    tripped: Arc<Mutex<Option<GuardError>>>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Why the guard cut the connection, if it did.
    pub fn tripped(&self) -> Option<GuardError> {
        match self.tripped.lock() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to the camera and starts a relay for exactly one client connection.
pub async fn start(camera: &url::Url) -> std::io::Result<Relay> {
    let host = camera
        .host()
        .ok_or_else(|| std::io::Error::other("the camera URL has no host"))?;
    let upstream = TcpStream::connect(format!("{host}:{}", camera.port().unwrap_or(554))).await?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    let mut url = camera.clone();
    url.set_host(Some("127.0.0.1"))
        .map_err(std::io::Error::other)?;
    url.set_port(Some(port))
        .map_err(|()| std::io::Error::other("the camera URL cannot take a port"))?;
    let tripped = Arc::new(Mutex::new(None));
    let since_frame = FrameProgress::default();
    let guard = FrameGuard::new(since_frame.clone());
    let task = tokio::spawn(relay(listener, upstream, guard, tripped.clone()));
    Ok(Relay {
        url,
        since_frame,
        tripped,
        task,
    })
}

async fn relay(
    listener: TcpListener,
    upstream: TcpStream,
    mut guard: FrameGuard,
    tripped: Arc<Mutex<Option<GuardError>>>,
) {
    let Ok((client, _)) = listener.accept().await else {
        return;
    };
    drop(listener);
    let (mut client_r, mut client_w) = client.into_split();
    let (mut cam_r, mut cam_w) = upstream.into_split();
    let to_camera = tokio::io::copy(&mut client_r, &mut cam_w);
    let from_camera = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cam_r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Err(e) = guard.feed(&buf[..n]) {
                match tripped.lock() {
                    Ok(mut t) => *t = Some(e),
                    Err(poisoned) => *poisoned.into_inner() = Some(e),
                }
                return;
            }
            if client_w.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either side ending ends both: the halves drop here and close the sockets.
    tokio::select! {
        _ = to_camera => {}
        _ = from_camera => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normal_exchange_passes_in_any_split() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\nv=0\r\n");
        stream.extend_from_slice(b"\r\n$\x00\x00\x03abc");
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n$\x01\x00\x01z");
        for split in 1..stream.len() {
            let mut g = FrameGuard::default();
            for chunk in stream.chunks(split) {
                g.feed(chunk).expect("honest stream");
            }
            assert!(matches!(g.state, State::Boundary), "split {split}");
        }
    }

    #[test]
    fn endless_headers_are_cut_at_the_limit() {
        let mut g = FrameGuard::default();
        g.feed(b"RTSP/1.0 200 OK\r\n").expect("status line");
        let line = b"X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let err = (0..10_000)
            .find_map(|_| g.feed(line).err())
            .expect("cut eventually");
        assert_eq!(
            err,
            GuardError::HeadTooLong {
                limit: MAX_HEAD_BYTES
            }
        );
        assert!(g.head.len() <= MAX_HEAD_BYTES);
    }

    /// retina ends a line only at CRLF, so a camera that sends "\n\n" instead is still
    /// inside one unfinished status line for retina: the guard must count it as one.
    #[test]
    fn bare_lf_line_endings_do_not_end_a_head() {
        let mut g = FrameGuard::default();
        g.feed(b"RTSP/1.0 200 ").expect("status line start");
        let mut chunk = vec![b'a'; 1000];
        chunk.extend_from_slice(b"\n\n");
        let err = (0..10_000)
            .find_map(|_| g.feed(&chunk).err())
            .expect("cut eventually");
        assert_eq!(
            err,
            GuardError::HeadTooLong {
                limit: MAX_HEAD_BYTES
            }
        );
    }

    /// A `Content-Length` after a bare LF is inside the status line for retina, so it
    /// must not set the body the guard skips; a repeated one makes retina fail.
    #[test]
    fn content_length_is_read_from_crlf_lines_only_and_once() {
        let mut g = FrameGuard::default();
        g.feed(b"RTSP/1.0 200 OK\nContent-Length: 4000000000\r\nCSeq: 1\r\n\r\n")
            .expect("no real Content-Length");
        assert!(matches!(g.state, State::Boundary));
        let mut g = FrameGuard::default();
        assert_eq!(
            g.feed(b"RTSP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(GuardError::BadContentLength)
        );
    }

    /// Packets that never complete a frame (retina grows one access unit from them)
    /// are cut past the limit; the same bytes with frames between them pass.
    #[test]
    fn interleaved_bytes_without_a_frame_are_cut_at_the_limit() {
        let packet = [&b"$\x00\xea\x60"[..], &[0x55; 60_000]].concat();
        let packets_over_limit = MAX_BYTES_BETWEEN_FRAMES / packet.len() as u64 + 1;

        let since_frame = FrameProgress::default();
        let mut g = FrameGuard::new(since_frame.clone());
        for _ in 0..2 * packets_over_limit {
            g.feed(&packet).expect("a frame after every packet");
            since_frame.frame_received();
        }

        let mut g = FrameGuard::default();
        let err = (0..packets_over_limit)
            .find_map(|_| g.feed(&packet).err())
            .expect("cut before the limit is passed");
        assert_eq!(
            err,
            GuardError::NoFrameWithin {
                limit: MAX_BYTES_BETWEEN_FRAMES
            }
        );
    }

    #[test]
    fn a_huge_or_garbled_content_length_is_refused() {
        let mut g = FrameGuard::default();
        assert_eq!(
            g.feed(b"RTSP/1.0 200 OK\r\ncontent-LENGTH: 4000000000\r\n\r\n"),
            Err(GuardError::BodyTooLarge {
                declared: 4_000_000_000,
                limit: MAX_BODY_BYTES
            })
        );
        let mut g = FrameGuard::default();
        assert_eq!(
            g.feed(b"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Err(GuardError::BadContentLength)
        );
    }
}
