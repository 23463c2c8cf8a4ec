//! The dashboard (a tile per camera with its state, and links to the recordings of
//! removed cameras) and the live view page.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{blocking, frame_for, RECENT_ALERT_MICROS};
use crate::auth::policy::{self, Action, Object};
use crate::camera::ConnectionState;
use crate::index::Index;
use crate::model::CameraId;
use crate::web::extract::{FullSession, Path};
use crate::web::view::{date_time, render, Frame};
use crate::web::{WebError, WebState};

pub struct Tile {
    pub id: String,
    /// The newest event thumbnail's event id, if any this week.
    pub thumbnail: Option<String>,
    pub state: &'static str,
    pub detail: String,
}

pub struct RecentAlert {
    pub when: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    frame: Frame,
    tiles: Vec<Tile>,
    recent_alerts: Vec<RecentAlert>,
    can_delete_everything: bool,
    /// Live view and recordings (a support helper sees only camera health).
    can_watch: bool,
    can_diagnose: bool,
    /// Cameras removed with their recordings kept, that still have some and whose
    /// recordings this user may list.
    removed_cameras: Vec<String>,
}

#[derive(Template)]
#[template(path = "live.html")]
struct LivePage {
    frame: Frame,
    camera: String,
}

pub async fn dashboard(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ViewCameras, Object::System)?;
    let cameras = state.registry.all();
    // Whoever may not see recordings sees no thumbnails either (they are video).
    let can_watch = cameras.first().is_none_or(|c| {
        policy::allowed(
            &session.principal(),
            Action::ListRecordings,
            Object::Camera(c.id()),
        )
    });
    let (index, ids, now) = (
        state.index.clone(),
        cameras.iter().map(|c| c.id().clone()).collect::<Vec<_>>(),
        state.clock.now_micros(),
    );
    let thumbnails = blocking(move || {
        if !can_watch {
            return Ok(vec![None; ids.len()]);
        }
        ids.iter()
            .map(|id| Ok(super::events::latest_thumbnail(&index, id, now)?))
            .collect::<Result<Vec<_>, WebError>>()
    })
    .await?;
    let tiles = cameras
        .iter()
        .zip(thumbnails)
        .map(|(camera, thumbnail)| {
            let status = camera.status();
            let detail = match &status.state {
                ConnectionState::Error(text) => text.clone(),
                ConnectionState::Unauthorized => {
                    "the camera refused the user name or password".into()
                }
                _ => format!("since {}", date_time(status.since_micros)),
            };
            Tile {
                id: camera.id().to_string(),
                thumbnail: thumbnail.map(|t| t.to_string()),
                state: status.state.label(),
                detail,
            }
        })
        .collect();
    let (auth, user, now) = (
        state.auth.clone(),
        session.0.user.id,
        state.clock.now_micros(),
    );
    let recent_alerts = blocking(move || {
        Ok(auth
            .alerts(user)?
            .into_iter()
            .filter(|a| now - a.time_micros < RECENT_ALERT_MICROS)
            .take(3)
            .map(|a| RecentAlert {
                when: date_time(a.time_micros),
                message: a.message,
            })
            .collect())
    })
    .await?;
    let (index, principal) = (state.index.clone(), session.principal());
    let removed_cameras = blocking(move || removed_with_recordings(&index, &principal)).await?;
    render(&Dashboard {
        frame: frame_for(&state, &session.0).await?,
        tiles,
        recent_alerts,
        removed_cameras,
        can_delete_everything: policy::allowed(
            &session.principal(),
            Action::DeleteEverything,
            Object::System,
        ),
        can_watch,
        can_diagnose: policy::allowed(
            &session.principal(),
            Action::ViewDiagnostics,
            Object::System,
        ),
    })
}

/// The cameras removed with their recordings kept that `principal` may list and that
/// still have a recording: without a link from the dashboard their day pages would
/// be found only by typing the URL. (A removed camera is forgotten once its last
/// recording is deleted, but not at once when that happens one recording at a time,
/// hence the look at its recordings.)
fn removed_with_recordings(
    index: &Index,
    principal: &policy::Principal,
) -> Result<Vec<String>, WebError> {
    let mut out = Vec::new();
    for (id, _) in index.retired_cameras()? {
        if !policy::allowed(principal, Action::ListRecordings, Object::Camera(&id)) {
            continue;
        }
        if index.camera_has_recording(&id)? {
            out.push(id.to_string());
        }
    }
    Ok(out)
}

/// Parses a camera id from a path and checks that the camera exists.
pub fn known_camera(state: &WebState, raw: &str) -> Result<CameraId, WebError> {
    let id: CameraId = raw
        .parse()
        .map_err(|_| WebError::NotFound("no such camera".into()))?;
    if state.registry.get(&id).is_none() {
        return Err(WebError::NotFound(format!("camera {id}")));
    }
    Ok(id)
}

/// Parses a camera id from a path and checks that it has recordings to show: a
/// camera that exists, or one removed with its recordings kept (which are still
/// listed and can be deleted).
pub async fn recorded_camera(state: &WebState, raw: &str) -> Result<CameraId, WebError> {
    let id: CameraId = raw
        .parse()
        .map_err(|_| WebError::NotFound("no such camera".into()))?;
    if state.registry.get(&id).is_some() {
        return Ok(id);
    }
    let (index, camera) = (state.index.clone(), id.clone());
    if blocking(move || Ok(index.is_retired_camera(&camera)?)).await? {
        Ok(id)
    } else {
        Err(WebError::NotFound(format!("camera {id}")))
    }
}

pub async fn live_page(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
) -> Result<Response, WebError> {
    let camera = known_camera(&state, &camera)?;
    session.require(Action::LiveView, Object::Camera(&camera))?;
    render(&LivePage {
        frame: frame_for(&state, &session.0).await?,
        camera: camera.to_string(),
    })
}
