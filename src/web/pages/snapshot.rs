//! Camera snapshots: the owner's `/cameras/{camera}/snapshot.jpg`, the picture ignore
//! zones are drawn on, and (through [`camera_jpeg`]) the API's `snapshot.jpg` for
//! integrations (scope `live:read`).
//!
//! A snapshot is the next keyframe the running camera task receives, decoded on a
//! blocking thread with a decoder of its own; nothing is stored or cached. A camera
//! that is (re)connecting is waited for, since saving its settings restarts it and the
//! settings page asks for its picture right after; one that is failing (refused
//! credentials, unreachable) answers 503 as soon as that is known. At most
//! [`MAX_DECODING`] decode at a time, so a burst of requests cannot take the CPU the
//! recorders need.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Semaphore;

use super::blocking;
use super::cameras::known_camera;
use crate::auth::policy::{Action, Object};
use crate::camera::ConnectionState;
use crate::model::CameraId;
use crate::motion::snapshot::keyframe_jpeg;
use crate::web::extract::{FullSession, Path};
use crate::web::{WebError, WebState};

/// How long to wait for a keyframe: cameras send one every 1-4 s, some less often.
const KEYFRAME_WAIT: Duration = Duration::from_secs(12);
/// How often a wait looks whether the camera has failed meanwhile.
const STATE_CHECK: Duration = Duration::from_millis(250);
/// The zone snapshot's largest width: enough to place zones, small to send.
pub const SNAPSHOT_WIDTH: u32 = 640;
/// Snapshots decoded at once, across all cameras and callers.
const MAX_DECODING: usize = 2;
static DECODING: Semaphore = Semaphore::const_new(MAX_DECODING);

/// Which of a camera's streams to picture.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// The recorded stream: what integrations want.
    Main,
    /// The stream motion detection analyses (the sub stream when there is one).
    Analysed,
}

/// The camera's next keyframe of `stream` as a JPEG at most `max_width` wide.
/// NotFound for a camera the daemon does not run, Unavailable when it is failing
/// or sends no keyframe in time.
pub async fn camera_jpeg(
    state: &WebState,
    id: &CameraId,
    stream: Source,
    max_width: u32,
) -> Result<Vec<u8>, WebError> {
    let handle = state
        .registry
        .get(id)
        .ok_or_else(|| WebError::NotFound(format!("camera {id}")))?;
    let unavailable = || WebError::Unavailable(format!("camera {id} sends no picture now"));
    let may_stream = || {
        matches!(
            handle.status().state,
            ConnectionState::Streaming | ConnectionState::Connecting
        )
    };
    if !may_stream() {
        return Err(unavailable());
    }
    let mut frames = match stream {
        Source::Main => handle.subscribe(),
        Source::Analysed => handle.subscribe_analysis(),
    };
    let keyframe = tokio::time::timeout(KEYFRAME_WAIT, async {
        let mut check = tokio::time::interval(STATE_CHECK);
        loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Ok(f) if f.is_key => return Some(f),
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                },
                _ = check.tick() => {
                    if !may_stream() {
                        return None;
                    }
                }
            }
        }
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(unavailable)?;
    drop(frames);
    let _permit = DECODING
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let what = id.clone();
    blocking(move || {
        keyframe_jpeg(
            &keyframe.params.sample_entry,
            &keyframe.data,
            keyframe.pts,
            max_width,
        )
        .map_err(|e| WebError::Internal(format!("camera {what}'s snapshot: {e}")))
    })
    .await
}

/// A JPEG answer that no cache keeps.
pub fn jpeg_response(jpeg: Vec<u8>) -> Response {
    let mut r = jpeg.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub async fn snapshot(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
) -> Result<Response, WebError> {
    session.require(Action::ManageCameras, Object::System)?;
    let id = known_camera(&state, &camera)?;
    let jpeg = camera_jpeg(&state, &id, Source::Analysed, SNAPSHOT_WIDTH).await?;
    Ok(jpeg_response(jpeg))
}
