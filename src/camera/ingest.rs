//! Ingest: one task per camera pulls the main stream over RTSP with `retina` (the only
//! module that uses it) and publishes frames on the camera's hub.
//!
//! Invariants:
//! - RTP over the RTSP TCP connection (interleaved), never UDP: it crosses NAT-less home
//!   Wi-Fi without loss reordering and needs no extra ports.
//! - Frames are published only from the first random-access point of a connection, as
//!   AVCC with parameter sets out of band (what MP4 wants); nothing is transcoded.
//! - Frame times come from the RTP clock, anchored to wall time once at PLAY, so a host
//!   clock step does not bend a recording's timeline.
//! - A connection stalls when no frame is published for `stall_timeout` (counted from
//!   PLAY until the first keyframe, then from the last frame); RTCP does not count.
//! - Any trouble ends the connection and the task retries forever with back-off
//!   (`Backoff::for_errors`, or the slow `for_unauthorized` when credentials are
//!   refused). One camera's trouble never touches another's task.
//! - Every connection runs through the size guard (`guard.rs`), a loopback relay that
//!   cuts a camera sending RTSP messages larger than any honest one: retina buffers a
//!   whole message without limit.
//! - Credentials are handed to retina out of band and never formatted into a URL, an
//!   error or a log line.
//!
//! `probe.rs` (a part of this module, so retina stays here) is "Test connection".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use retina::client::{Credentials, PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use tokio::sync::watch;

use super::backoff::StreamedSpan;
use super::guard::FrameProgress;
use super::{Backoff, CameraHandle, ConnectionState, StreamKind};
use crate::clock::Clock;
use crate::model::{Frame, VideoParams, TIMESCALE};

mod probe;
pub use probe::{probe, Probe, ProbeFrame};

/// How long DESCRIBE/SETUP/PLAY may take before the camera counts as unreachable.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Gives each connection a distinct number so a recorder never joins two timelines.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the camera refused the credentials")]
    Unauthorized,
    #[error("{step} timed out after {secs} s")]
    Timeout { step: &'static str, secs: u64 },
    #[error("no frames for {secs} s; the camera stalled")]
    Stalled { secs: u64 },
    #[error("no keyframe within {secs} s of PLAY")]
    NoKeyframe { secs: u64 },
    #[error("the camera ended the stream")]
    Ended,
    #[error("the camera offers no H.264 or H.265 video stream")]
    NoVideo,
    #[error("RTSP error: {0}")]
    Rtsp(String),
    #[error("cannot describe the video for MP4: {0}")]
    SampleEntry(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("connection cut: {0}")]
    Oversized(#[from] super::guard::GuardError),
}

impl IngestError {
    fn from_retina(e: retina::Error) -> IngestError {
        match e.status_code() {
            Some(401) | Some(403) => IngestError::Unauthorized,
            // retina's messages span lines (connection and packet context); the first
            // line is what a person needs, the rest goes to the debug log.
            _ => {
                tracing::debug!(error = %e, "full RTSP error");
                IngestError::Rtsp(e.to_string().lines().next().unwrap_or("").to_owned())
            }
        }
    }
}

/// Runs one camera stream until `shutdown` turns true. Never returns early on camera
/// errors. The main stream's state is the camera's state; the sub stream's trouble is
/// logged (motion detection then falls silent, recording carries on).
pub async fn run(
    camera: Arc<CameraHandle>,
    stream: StreamKind,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = camera.id().clone();
    let Some(url) = (match stream {
        StreamKind::Main => Some(camera.config.url.clone()),
        StreamKind::Sub => camera.config.sub_url.clone(),
    }) else {
        return;
    };
    let set_state = |state: ConnectionState, failures: u32| {
        if stream == StreamKind::Main {
            camera.set_state(state, failures, clock.now_micros());
        }
    };
    let mut errors = Backoff::for_errors();
    let mut unauthorized = Backoff::for_unauthorized();
    let mut failures: u32 = 0;
    loop {
        set_state(ConnectionState::Connecting, failures);
        let mut streamed = StreamedSpan::default();
        let result = tokio::select! {
            r = stream_once(&camera, stream, &url, &mut streamed, clock.as_ref()) => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        if streamed.was_healthy() {
            errors.reset();
            unauthorized.reset();
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let (state, delay) = match result {
            Err(IngestError::Unauthorized) => {
                (ConnectionState::Unauthorized, unauthorized.next_delay())
            }
            Err(e) => (ConnectionState::Error(e.to_string()), errors.next_delay()),
            Ok(()) => (
                ConnectionState::Error(IngestError::Ended.to_string()),
                errors.next_delay(),
            ),
        };
        tracing::warn!(
            camera = %id,
            stream = ?stream,
            state = state.label(),
            failures,
            retry_in_ms = delay.as_millis() as u64,
            "camera {id}: {}; retrying in {:.1} s",
            match &state { ConnectionState::Error(text) => text.as_str(), _ => "credentials refused" },
            delay.as_secs_f64(),
        );
        set_state(state, failures);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn with_timeout<T>(
    step: &'static str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, retina::Error>>,
) -> Result<T, IngestError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(IngestError::from_retina),
        Err(_) => Err(IngestError::Timeout {
            step,
            secs: limit.as_secs(),
        }),
    }
}

/// One connection through the size guard (`guard.rs`): a message too large for any
/// honest camera ends it with [`IngestError::Oversized`] instead of growing memory.
async fn stream_once(
    camera: &CameraHandle,
    stream: StreamKind,
    url: &url::Url,
    streamed: &mut StreamedSpan,
    clock: &dyn Clock,
) -> Result<(), IngestError> {
    guarded(url, |relayed, since_frame| async move {
        stream_session(camera, stream, &relayed, &since_frame, streamed, clock).await
    })
    .await
}

/// Runs `session` against the relay URL of a size guard connected to `url`; the
/// session reports each frame it gets to the guard's [`FrameProgress`].
async fn guarded<T, F, Fut>(url: &url::Url, session: F) -> Result<T, IngestError>
where
    F: FnOnce(url::Url, FrameProgress) -> Fut,
    Fut: std::future::Future<Output = Result<T, IngestError>>,
{
    let relay = match tokio::time::timeout(HANDSHAKE_TIMEOUT, super::guard::start(url)).await {
        Err(_) => {
            return Err(IngestError::Timeout {
                step: "connect",
                secs: HANDSHAKE_TIMEOUT.as_secs(),
            })
        }
        Ok(Err(e)) => return Err(IngestError::Connect(e.to_string())),
        Ok(Ok(relay)) => relay,
    };
    let result = session(relay.url.clone(), relay.since_frame.clone()).await;
    // Whatever retina made of the cut connection, the guard's reason is the real one.
    match relay.tripped() {
        Some(cut) => Err(IngestError::Oversized(cut)),
        None => result,
    }
}

/// Session options with the camera's credentials (out of band, never in the URL).
fn session_options(username: Option<&str>, password: Option<&str>) -> SessionOptions {
    let creds = username.map(|username| Credentials {
        username: username.to_owned(),
        password: password.unwrap_or_default().to_owned(),
    });
    SessionOptions::default()
        .creds(creds)
        .user_agent(format!("porchlight/{}", env!("CARGO_PKG_VERSION")))
}

/// DESCRIBE, then SETUP of the first H.264/H.265 stream (interleaved TCP, MP4 frame
/// format). Returns the session and that stream's index.
async fn describe_and_setup(
    url: &url::Url,
    options: SessionOptions,
) -> Result<(Session<retina::client::Described>, usize), IngestError> {
    let mut session = with_timeout(
        "DESCRIBE",
        HANDSHAKE_TIMEOUT,
        Session::describe(url.clone(), options),
    )
    .await?;
    let video = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"))
        .ok_or(IngestError::NoVideo)?;
    let setup = SetupOptions::default()
        .transport(Transport::default())
        .frame_format(FrameFormat::MP4);
    with_timeout("SETUP", HANDSHAKE_TIMEOUT, session.setup(video, setup)).await?;
    Ok((session, video))
}

/// DESCRIBE, SETUP the video stream, PLAY, publish frames until error.
async fn stream_session(
    camera: &CameraHandle,
    stream: StreamKind,
    url: &url::Url,
    since_frame: &FrameProgress,
    streamed: &mut StreamedSpan,
    clock: &dyn Clock,
) -> Result<(), IngestError> {
    let config = &camera.config;
    let options = session_options(config.username.as_deref(), config.password.as_deref());
    let (session, video) = describe_and_setup(url, options).await?;
    // The config module validated the value against the same four names.
    let initial_seq = config.rtp_initial_seq.parse().unwrap_or_default();
    let play = PlayOptions::default().initial_seq(initial_seq);
    let playing = with_timeout("PLAY", HANDSHAKE_TIMEOUT, session.play(play)).await?;
    let wall_at_play = clock.now_micros();
    let mut demuxed = playing.demuxed().map_err(IngestError::from_retina)?;
    let session_no = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let mut params: Option<Arc<VideoParams>> = None;
    let mut seen_key = false;
    let mut any_frame = false;
    let mut timeline = super::timeline::Timeline::default();
    // The stall clock restarts only on a published video frame: a frozen encoder behind
    // a server that still sends RTCP reports, or a camera that never sends a keyframe,
    // stalls just like a silent one.
    let mut stall_deadline = tokio::time::Instant::now() + config.stall_timeout;

    loop {
        let item = match tokio::time::timeout_at(stall_deadline, demuxed.next()).await {
            Err(_) if any_frame && !seen_key => {
                return Err(IngestError::NoKeyframe {
                    secs: config.stall_timeout.as_secs(),
                })
            }
            Err(_) => {
                return Err(IngestError::Stalled {
                    secs: config.stall_timeout.as_secs(),
                })
            }
            Ok(None) => return Ok(()),
            Ok(Some(item)) => item.map_err(IngestError::from_retina)?,
        };
        let CodecItem::VideoFrame(frame) = item else {
            continue;
        };
        since_frame.frame_received();
        any_frame = true;
        if frame.has_new_parameters() || params.is_none() {
            params = Some(Arc::new(video_params(&demuxed, video)?));
        }
        if !seen_key {
            if !frame.is_random_access_point() {
                continue;
            }
            seen_key = true;
            let p = params.as_deref().expect("set just above");
            tracing::info!(camera = %config.id, codec = %p.codec, width = p.width, height = p.height, "camera {}: streaming", config.id);
            if stream == StreamKind::Main {
                camera.set_state(ConnectionState::Streaming, 0, clock.now_micros());
            }
        }
        stall_deadline = tokio::time::Instant::now() + config.stall_timeout;
        streamed.frame(std::time::Instant::now());
        let ts = frame.timestamp();
        let rate = i64::from(ts.clock_rate().get());
        let camera_pts = ts.elapsed().saturating_mul(i64::from(TIMESCALE)) / rate;
        let placed = timeline.place(camera_pts, clock.now_micros());
        if let Some(by) = placed.jumped {
            let secs = by as f64 / f64::from(TIMESCALE);
            let way = if by < 0 { "backwards" } else { "forwards" };
            tracing::warn!(camera = %config.id, "camera {}: timestamps jumped {way} by {:.1} s; the recording continues on the daemon's timeline", config.id, secs.abs());
        }
        let pts = placed.pts;
        let frame = Frame {
            session: session_no,
            pts,
            wall_micros: wall_at_play + pts * 1_000_000 / i64::from(TIMESCALE),
            is_key: frame.is_random_access_point(),
            params: params.clone().expect("set above"),
            data: bytes::Bytes::from(frame.into_data()),
        };
        camera.publish(stream, Arc::new(frame));
    }
}

fn video_params(
    demuxed: &retina::client::Demuxed,
    stream: usize,
) -> Result<VideoParams, IngestError> {
    let Some(ParametersRef::Video(p)) = demuxed.streams().get(stream).and_then(|s| s.parameters())
    else {
        return Err(IngestError::SampleEntry(
            "no video parameters after a frame".into(),
        ));
    };
    let (width, height) = p.pixel_dimensions();
    let sample_entry = p
        .mp4_sample_entry()
        .build()
        .map_err(|e| IngestError::SampleEntry(e.to_string()))?;
    Ok(VideoParams {
        codec: p.rfc6381_codec().to_owned(),
        width,
        height,
        sample_entry,
    })
}
