//! `/cameras/{camera}/snapshot.jpg` (owner only): the camera's current picture, for
//! drawing ignore zones on. It is the stream motion detection analyses (the sub
//! stream when the camera has one), so what is drawn is what is masked; zones are
//! stored in fractions of the picture, so the size does not matter.
//!
//! The picture is the next keyframe the running camera task receives, decoded on a
//! blocking thread; nothing is stored. A camera that is not streaming answers 503 at
//! once rather than after the wait.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;

use super::blocking;
use super::cameras::known_camera;
use crate::auth::policy::{Action, Object};
use crate::camera::ConnectionState;
use crate::motion::snapshot::keyframe_jpeg;
use crate::web::extract::FullSession;
use crate::web::{WebError, WebState};

/// How long to wait for a keyframe: cameras send one every 1-4 s.
const KEYFRAME_WAIT: Duration = Duration::from_secs(6);
/// The snapshot's largest width: enough to place zones, small to send.
pub const SNAPSHOT_WIDTH: u32 = 640;

pub async fn snapshot(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
) -> Result<Response, WebError> {
    session.require(Action::ManageCameras, Object::System)?;
    let id = known_camera(&state, &camera)?;
    let handle = state
        .registry
        .get(&id)
        .ok_or_else(|| WebError::NotFound(format!("camera {id}")))?;
    let unavailable = || WebError::Unavailable(format!("camera {id} sends no picture now"));
    if handle.status().state != ConnectionState::Streaming {
        return Err(unavailable());
    }
    let mut frames = handle.subscribe_analysis();
    let keyframe = tokio::time::timeout(KEYFRAME_WAIT, async {
        loop {
            match frames.recv().await {
                Ok(f) if f.is_key => return Some(f),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(unavailable)?;
    let jpeg = blocking(move || {
        keyframe_jpeg(
            &keyframe.params.sample_entry,
            &keyframe.data,
            keyframe.pts,
            SNAPSHOT_WIDTH,
        )
        .map_err(|e| WebError::Internal(format!("camera {id}'s snapshot: {e}")))
    })
    .await?;
    let mut r = jpeg.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
