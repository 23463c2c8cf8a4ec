//! Live view: the camera's H.264 as fragmented MP4 over a WebSocket, into the browser's
//! Media Source Extensions (`web/static/live.js`).
//!
//! Protocol: one text message `{"codec": "avc1.…", "width": …, "height": …}`, then a
//! binary init segment (`ftyp`+`moov`, the recorder's own [`init_segment`]), then one
//! binary `moof`+`mdat` per frame, starting at a keyframe. Each frame is sent as soon
//! as the camera delivers it and the socket takes it (its duration is the previous
//! frame's, corrected by the next fragment's decode time), so the server adds no
//! latency beyond a socket write. Frames wait for a slow client in a queue of its own
//! (`live/feed.rs`: at most 64 frames and 8 MiB), never in the camera's hub; a client
//! too slow to keep up loses frames up to the next keyframe. When the camera
//! reconnects (a new timeline) the socket is closed and the page reconnects.
//!
//! While the socket is open, every [`RETRIGGER`] the session that opened it is asked
//! again whether it may still watch this camera; if not (logged out, "log out all",
//! expired, rights withdrawn) the socket is closed with code [`SESSION_ENDED`].
//! Otherwise the daemon's live-view hook is called, which keeps a "live view"
//! recording going for cameras in `events` mode.
//!
//! The client sends nothing but close, ping and pong frames, so messages and frames
//! from it are limited to [`MAX_CLIENT_MESSAGE`] (axum's default of 64 MiB would be
//! read and thrown away); a bigger one ends the socket. A viewer silent for
//! [`viewer::PING_AFTER`] is sent a ping (browsers answer it by themselves); one that
//! answers nothing within [`viewer::ANSWER_WITHIN`], or does not take a message within
//! that time (a peer gone without closing: lid shut, Wi-Fi lost), is taken as gone and
//! its socket dropped, which frees its places in the connection limits. A session
//! holds at most [`MAX_PER_SESSION`] live views at once (a wall of cameras fits; a
//! loop does not).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::extract::{still_allowed, FullSession, Path};
use super::headers::same_origin;
use super::pages::cameras::known_camera;
use super::{WebError, WebState};
use crate::auth::policy::{Action, Object};
use crate::camera::CameraHandle;
use crate::model::{CameraId, Frame, VideoParams, TIMESCALE};
use crate::store::mp4::{fragment, init_segment, Sample, TrackParams};
use feed::Feed;
use viewer::{Gone, Viewer, PATIENCE};

mod feed;
mod viewer;

/// How often an open live view re-triggers the recorder.
pub const RETRIGGER: Duration = Duration::from_secs(5);
/// The close code that tells `live.js` not to reconnect: the session may no longer watch.
pub const SESSION_ENDED: u16 = 4001;
/// The close code for a stream that restarted (new connection to the camera, new
/// parameters, or the camera's settings saved): `live.js` reconnects.
pub const STREAM_RESTARTED: u16 = 4000;
/// Frame duration assumed before two frames were seen (30 fps).
const DEFAULT_DURATION: u32 = TIMESCALE / 30;
/// The largest message or frame read from a viewer (close reasons and pings fit).
pub const MAX_CLIENT_MESSAGE: usize = 4096;
/// Live views one session may have open at once.
pub const MAX_PER_SESSION: usize = 8;

pub async fn live_socket(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, WebError> {
    let camera = known_camera(&state, &camera)?;
    session.require(Action::LiveView, Object::Camera(&camera))?;
    // Browsers send Origin on WebSocket handshakes; another site's page must not be
    // able to open one with our cookie (cross-site WebSocket hijacking).
    if !same_origin(&headers) {
        return Err(WebError::CrossSite);
    }
    let handle = state
        .registry
        .get(&camera)
        .ok_or_else(|| WebError::NotFound(format!("camera {camera}")))?;
    let key = session.0.key;
    let Some(slot) = state.live_sockets.acquire(key) else {
        tracing::warn!(user = %session.0.user.id, camera = %camera, "live view refused: the session has {MAX_PER_SESSION} open");
        return Err(WebError::TooMany(format!(
            "{MAX_PER_SESSION} live views open in this session"
        )));
    };
    tracing::info!(user = %session.0.user.id, camera = %camera, "live view opened");
    Ok(ws
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            stream(socket, handle, state, key).await;
            drop(slot);
        }))
}

/// The timeline of one viewer's stream.
struct Timeline {
    session: u64,
    params: Arc<VideoParams>,
    base_pts: i64,
    last_pts: i64,
    last_duration: u32,
    sequence: u32,
}

fn start_messages(frame: &Frame) -> Option<(String, Vec<u8>)> {
    let p = &frame.params;
    let track = TrackParams {
        sample_entry: p.sample_entry.clone(),
        width: p.width,
        height: p.height,
        timescale: TIMESCALE,
    };
    let init = init_segment(&track).ok()?;
    let info = serde_json::json!({ "codec": p.codec, "width": p.width, "height": p.height });
    Some((info.to_string(), init))
}

async fn stream(socket: WebSocket, camera: Arc<CameraHandle>, state: WebState, session: [u8; 32]) {
    let mut viewer = Viewer::new(socket, PATIENCE);
    let id = camera.id().clone();
    let mut frames = Feed::start(id.clone(), camera.subscribe(), state.shutdown.clone());
    let mut shutdown = state.shutdown.clone();
    (state.live_view)(&id);
    let mut retrigger = tokio::time::interval(RETRIGGER);
    retrigger.tick().await;
    let mut timeline: Option<Timeline> = None;
    loop {
        let queued = tokio::select! {
            f = frames.next() => match f {
                Some(f) => f,
                None => break,
            },
            heard = viewer.listen() => match heard {
                Ok(()) => continue,
                Err(gone) => {
                    ended(&id, &gone);
                    break;
                }
            },
            _ = retrigger.tick() => {
                if !still_allowed(&state, session, Action::LiveView, Object::Camera(&id)).await {
                    tracing::info!(camera = %id, "live view: the session may no longer watch");
                    viewer.close(SESSION_ENDED, "session ended").await;
                    break;
                }
                // Saving the camera's settings (or removing it) replaces its handle; this
                // one then never sends again, and re-triggering would record for nobody.
                let current = state.registry.get(&id);
                if !current.is_some_and(|c| Arc::ptr_eq(&c, &camera)) {
                    tracing::info!(camera = %id, "live view: the camera was changed or removed");
                    viewer.close(STREAM_RESTARTED, "camera changed").await;
                    break;
                }
                (state.live_view)(&id);
                continue;
            }
            _ = super::stopped(&mut shutdown) => break,
        };
        // Held (with its share of the queue's budget) until it has been sent.
        let frame = &queued.frame;
        if let Some(t) = &timeline {
            if t.session != frame.session || t.params != frame.params {
                viewer.close(STREAM_RESTARTED, "stream restarted").await;
                break;
            }
        }
        let t = match timeline.as_mut() {
            Some(t) => t,
            None => {
                let Some((info, init)) = start_messages(frame) else {
                    tracing::warn!(camera = %id, "live view: the camera's parameters cannot be put in MP4");
                    break;
                };
                let sent = match viewer.send(Message::Text(info.into())).await {
                    Ok(()) => viewer.send(Message::Binary(init.into())).await,
                    Err(gone) => Err(gone),
                };
                if let Err(gone) = sent {
                    ended(&id, &gone);
                    break;
                }
                timeline.insert(Timeline {
                    session: frame.session,
                    params: frame.params.clone(),
                    base_pts: frame.pts,
                    last_pts: frame.pts,
                    last_duration: DEFAULT_DURATION,
                    sequence: 0,
                })
            }
        };
        if frame.pts > t.last_pts {
            let delta = u32::try_from(frame.pts - t.last_pts).unwrap_or(u32::MAX);
            t.last_duration = delta.clamp(1, 2 * TIMESCALE);
        }
        t.last_pts = frame.pts;
        t.sequence = t.sequence.wrapping_add(1);
        let decode_time = u64::try_from(frame.pts - t.base_pts).unwrap_or(0);
        let sample = Sample {
            duration: t.last_duration,
            is_sync: frame.is_key,
            data: frame.data.clone(),
        };
        let Ok(fragment) = fragment(t.sequence, decode_time, &[sample]) else {
            continue;
        };
        if let Err(gone) = viewer.send(Message::Binary(fragment.into())).await {
            ended(&id, &gone);
            break;
        }
    }
    tracing::info!(camera = %id, "live view closed");
}

/// Logs why the viewer's socket ended: a viewer given up on at info, the rest at debug.
fn ended(camera: &CameraId, gone: &Gone) {
    match gone {
        Gone::Silent(_) | Gone::Stuck(_) => {
            tracing::info!(%camera, "live view: {gone}; taken as gone")
        }
        Gone::Closed | Gone::Failed(_) => tracing::debug!(%camera, "live view: {gone}"),
    }
}
