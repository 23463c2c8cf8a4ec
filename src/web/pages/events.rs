//! Events (spans of activity: motion, doorbell, live view) in the UI: their rows on a
//! camera's day page, their sealed thumbnails, and deleting one.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{audit, blocking, see_other};
use crate::auth::policy::{Action, Object, Principal};
use crate::index::{AuditKind, EventEntry, Index, IndexError, RecordingState};
use crate::model::{CameraId, EventId};
use crate::retention;
use crate::web::extract::{CsrfForm, FullSession, Path};
use crate::web::view;
use crate::web::{WebError, WebState};

/// One event as the day page lists it.
pub struct EventRow {
    pub id: String,
    pub time: String,
    pub duration: String,
    pub triggers: String,
    pub thumbnail: bool,
    /// Where to play it: its first recording, started at the event's moment.
    pub play: Option<String>,
}

/// Rows for `events` (newest first). Reads each event's first recording to know
/// where in it the event starts.
pub fn rows(index: &Index, events: &[EventEntry], now: i64) -> Result<Vec<EventRow>, IndexError> {
    let mut out = Vec::with_capacity(events.len());
    for e in events.iter().rev() {
        let mut play = None;
        if !e.open {
            if let Some(first) = e.recordings.first() {
                if let Some(r) = index.get_recording(*first)? {
                    if r.state == RecordingState::Finished {
                        let offset = ((e.start_micros - r.start_micros).max(0)) / 1_000_000;
                        play = Some(format!("/recordings/{}?t={offset}", r.id));
                    }
                }
            }
        }
        let end = if e.open { now } else { e.end_micros };
        let mut triggers: Vec<String> = e
            .triggers
            .iter()
            .map(|t| t.as_str().replace('_', " "))
            .collect();
        triggers.dedup();
        out.push(EventRow {
            id: e.id.to_string(),
            time: view::time_of_day(e.start_micros),
            duration: view::duration(end - e.start_micros),
            triggers: triggers.join(", "),
            thumbnail: e.has_thumbnail,
            play,
        });
    }
    Ok(out)
}

/// The newest event with a thumbnail of each camera in the last week, for the tiles.
pub fn latest_thumbnail(
    index: &Index,
    camera: &CameraId,
    now: i64,
) -> Result<Option<EventId>, IndexError> {
    const WEEK: i64 = 7 * 24 * 3600 * 1_000_000;
    Ok(index
        .camera_events(camera, now - WEEK, i64::MAX)?
        .iter()
        .rev()
        .find(|e| e.has_thumbnail)
        .map(|e| e.id))
}

/// The event a path names. A support helper never sees events (they are video), so
/// they are refused before the look-up and learn nothing about which ids exist.
pub(super) async fn event_of(
    state: &WebState,
    session: &FullSession,
    raw: &str,
) -> Result<EventEntry, WebError> {
    let id: EventId = raw
        .trim_end_matches(".jpg")
        .parse()
        .map_err(|_| WebError::NotFound("no such event".into()))?;
    if matches!(session.principal(), Principal::Support { .. }) {
        return Err(WebError::Forbidden);
    }
    let index = state.index.clone();
    blocking(move || Ok(index.get_event(id)?))
        .await?
        .ok_or_else(|| WebError::NotFound(format!("event {id}")))
}

/// `GET /events/{id}/thumbnail.jpg`: the decrypted JPEG.
pub async fn thumbnail(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let event = event_of(&state, &session, &id).await?;
    session.require(Action::ListRecordings, Object::Camera(&event.camera))?;
    if !event.has_thumbnail {
        return Err(WebError::NotFound(format!(
            "event {} has no thumbnail",
            event.id
        )));
    }
    let (store, camera, id) = (state.store.clone(), event.camera.clone(), event.id);
    let plain = blocking(move || match store.read_thumbnail(&camera, id) {
        Err(crate::store::StoreError::EndToEnd { .. }) => Ok(None),
        other => Ok(Some(other?)),
    })
    .await?;
    // Sealed to the viewers (end-to-end mode): only with this session's unlocked key.
    let jpeg = match plain {
        Some(jpeg) => jpeg,
        None => {
            let viewer = state
                .unlocked
                .get(&session.0.key, state.clock.now_micros())
                .ok_or_else(|| WebError::Locked(format!("thumbnail of event {}", event.id)))?;
            let store = state.store.clone();
            let jpeg = blocking(move || {
                Ok(store.read_thumbnail_as(&event.camera, event.id, Some(&viewer))?)
            })
            .await?;
            jpeg
        }
    };
    // Never kept by the browser past the response: a picture of someone at the door
    // must not stay in a shared computer's cache after logging out or after deletion.
    let mut r = jpeg.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(r)
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /events/{id}/delete`: the event, its thumbnail and the recordings holding it.
pub async fn delete(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    let event = event_of(&state, &session, &id).await?;
    session.require(Action::DeleteRecording, Object::Recording(&event.camera))?;
    let (store, index, eid) = (state.store.clone(), state.index.clone(), event.id);
    blocking(move || {
        retention::delete_event(&store, &index, eid).map_err(|e| match e {
            retention::RetentionError::EventInProgress(_)
            | retention::RetentionError::InProgress(_) => {
                WebError::BadRequest(format!("event {eid} is still being recorded"))
            }
            e => WebError::Internal(format!("deleting event {eid}: {e}")),
        })
    })
    .await?;
    for r in &event.recordings {
        state.layouts.forget(*r);
    }
    tracing::info!(user = %session.0.user.id, event = %event.id, "event deleted from the web UI");
    let subject = format!("event {} of camera {}", event.id, event.camera);
    audit(&state, &session.0, AuditKind::EventDeleted, subject).await?;
    let day = view::day_of(event.start_micros).map_or_else(String::new, |d| d.to_string());
    Ok(see_other(
        &format!("/cameras/{}/recordings?day={day}", event.camera),
        &[],
    ))
}
