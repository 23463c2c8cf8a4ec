//! A camera's recordings by local day (newest first, with the day's SVG timeline), the
//! player page, and deletion (one recording, a camera's, everything), each permanent
//! through `retention`'s crypto-shredding; a camera's or everything also revokes the
//! share links to that footage (`deletion`).

use askama::Template;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use jiff::civil::Date;
use serde::Deserialize;

use super::account::confirm_password;
use super::cameras::recorded_camera;
use super::data::DestroyForm;
use super::events::{self, EventRow};
use super::{audit, blocking, frame_for, see_other};
use crate::auth::policy::{self, Action, Object, Principal};
use crate::deletion;
use crate::index::{AuditKind, RecordingEntry, RecordingState};
use crate::model::{CameraId, RecordingId};
use crate::retention;
use crate::web::extract::{Client, CsrfForm, FullSession, Path, Query};
use crate::web::view::{self, render, Frame, Span};
use crate::web::{WebError, WebState};

pub struct Row {
    pub id: String,
    pub time: String,
    pub duration: String,
    pub trigger: String,
    pub playable: bool,
}

#[derive(Template)]
#[template(path = "recordings.html")]
struct DayPage {
    frame: Frame,
    camera: String,
    day: String,
    prev_day: String,
    next_day: Option<String>,
    timeline: String,
    events: Vec<EventRow>,
    rows: Vec<Row>,
    can_delete: bool,
    can_share: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "player.html")]
struct PlayerPage {
    frame: Frame,
    id: String,
    /// Media fragment to start at (`#t=12`), from `?t=`.
    start: String,
    camera: String,
    when: String,
    day: String,
    duration: String,
    trigger: String,
    can_delete: bool,
    can_share: bool,
    can_list: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "delete_everything.html")]
struct DeleteEverythingPage {
    frame: Frame,
    csrf: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct DayQuery {
    day: Option<String>,
}

fn trigger_label(e: &RecordingEntry) -> String {
    e.trigger.as_str().replace('_', " ")
}

pub async fn day(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
    Query(q): Query<DayQuery>,
) -> Result<Response, WebError> {
    let camera = recorded_camera(&state, &camera).await?;
    session.require(Action::ListRecordings, Object::Camera(&camera))?;
    let today = view::day_of(state.clock.now_micros())
        .ok_or_else(|| WebError::Internal("the clock is out of range".into()))?;
    let day: Date = match q.day.as_deref() {
        None | Some("") => today,
        Some(d) => d
            .parse()
            .map_err(|_| WebError::BadRequest("day must be YYYY-MM-DD".into()))?,
    };
    let (start, end) =
        view::day_bounds(day).ok_or_else(|| WebError::BadRequest("day out of range".into()))?;
    let (index, cam) = (state.index.clone(), camera.clone());
    let now = state.clock.now_micros();
    let (mut entries, day_events, event_rows) = blocking(move || {
        let recordings = index.camera_recordings(&cam, start, end)?;
        let day_events = index.camera_events(&cam, start, end)?;
        let rows = events::rows(&index, &day_events, now)?;
        Ok((recordings, day_events, rows))
    })
    .await?;
    entries.retain(|e| e.state != RecordingState::Deleting);
    let mut spans: Vec<Span> = entries
        .iter()
        .map(|e| Span {
            start_micros: e.start_micros,
            end_micros: if e.state == RecordingState::Open {
                now
            } else {
                e.end_micros
            },
            href: format!("/recordings/{}", e.id),
            event: false,
        })
        .collect();
    spans.extend(day_events.iter().map(|e| Span {
        start_micros: e.start_micros,
        end_micros: if e.open { now } else { e.end_micros },
        href: format!("#event-{}", e.id),
        event: true,
    }));
    entries.reverse();
    let rows = entries
        .iter()
        .map(|e| Row {
            id: e.id.to_string(),
            time: view::time_of_day(e.start_micros),
            duration: view::duration(e.end_micros - e.start_micros),
            trigger: trigger_label(e),
            playable: e.state == RecordingState::Finished,
        })
        .collect();
    let next = day.tomorrow().ok().filter(|n| *n <= today);
    render(&DayPage {
        frame: frame_for(&state, &session.0).await?,
        camera: camera.to_string(),
        day: day.to_string(),
        prev_day: day
            .yesterday()
            .map_or_else(|_| day.to_string(), |d| d.to_string()),
        next_day: next.map(|d| d.to_string()),
        timeline: view::timeline_svg(start, end, &spans),
        events: event_rows,
        rows,
        can_delete: policy::allowed(
            &session.principal(),
            Action::DeleteRecording,
            Object::Recording(&camera),
        ),
        can_share: policy::allowed(
            &session.principal(),
            Action::ShareRecording,
            Object::Recording(&camera),
        ),
        csrf: session.0.entry.csrf.clone(),
    })
}

/// The index entry of a recording named in a path, or 404.
/// The recording a path names, for `session`. A support helper is refused any
/// recording outside their grant before the look-up, so they cannot even tell which
/// ids exist; everyone else may list all recordings anyway.
pub async fn entry_of(
    state: &WebState,
    session: &FullSession,
    raw: &str,
) -> Result<RecordingEntry, WebError> {
    let id: RecordingId = raw
        .parse()
        .map_err(|_| WebError::NotFound("no such recording".into()))?;
    if let Principal::Support { recordings, .. } = session.principal() {
        if !recordings.contains(&id) {
            tracing::warn!(user = %session.0.user.id, recording = %id, "support access: recording outside the grant");
            return Err(WebError::Forbidden);
        }
    }
    let index = state.index.clone();
    blocking(move || Ok(index.get_recording(id)?))
        .await?
        .filter(|e| e.state != RecordingState::Deleting)
        .ok_or_else(|| WebError::NotFound(format!("recording {id}")))
}

#[derive(Deserialize)]
pub struct PlayerQuery {
    t: Option<u32>,
}

pub async fn player(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    Query(q): Query<PlayerQuery>,
    method: Method,
) -> Result<Response, WebError> {
    let entry = entry_of(&state, &session, &id).await?;
    session.require(
        Action::PlayRecording,
        Object::ThisRecording(&entry.camera, entry.id),
    )?;
    // An end-to-end recording while this session is locked: "unlock to view".
    crate::web::playback::viewer_for(&state, &session, &entry).await?;
    // `HEAD` (which axum answers with this handler) shows nothing: it is not a view.
    if method != Method::HEAD {
        crate::web::playback::audit_recording(&state, &session, &entry, AuditKind::RecordingViewed)
            .await?;
    }
    render(&PlayerPage {
        frame: frame_for(&state, &session.0).await?,
        id: entry.id.to_string(),
        start: q.t.map_or_else(String::new, |t| format!("#t={t}")),
        camera: entry.camera.to_string(),
        when: view::date_time(entry.start_micros),
        day: view::day_of(entry.start_micros).map_or_else(String::new, |d| d.to_string()),
        duration: view::duration(entry.end_micros - entry.start_micros),
        trigger: trigger_label(&entry),
        can_delete: policy::allowed(
            &session.principal(),
            Action::DeleteRecording,
            Object::Recording(&entry.camera),
        ),
        can_share: policy::allowed(
            &session.principal(),
            Action::ShareRecording,
            Object::Recording(&entry.camera),
        ),
        can_list: policy::allowed(
            &session.principal(),
            Action::ListRecordings,
            Object::Camera(&entry.camera),
        ),
        csrf: session.0.entry.csrf.clone(),
    })
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn delete_one(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    let entry = entry_of(&state, &session, &id).await?;
    session.require(
        Action::DeleteRecording,
        Object::ThisRecording(&entry.camera, entry.id),
    )?;
    let (store, index, rid) = (state.store.clone(), state.index.clone(), entry.id);
    blocking(move || {
        retention::delete_recording(&store, &index, rid)
            .map_err(|e| WebError::Internal(format!("deleting recording {rid}: {e}")))
    })
    .await?;
    state.layouts.forget(entry.id);
    tracing::info!(user = %session.0.user.id, recording = %entry.id, "recording deleted from the web UI");
    let subject = format!("recording {} of camera {}", entry.id, entry.camera);
    audit(&state, &session.0, AuditKind::RecordingDeleted, subject).await?;
    let day = view::day_of(entry.start_micros).map_or_else(String::new, |d| d.to_string());
    Ok(see_other(
        &format!("/cameras/{}/recordings?day={day}", entry.camera),
        &[],
    ))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    confirm: String,
}

pub async fn delete_camera(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<Response, WebError> {
    let camera = recorded_camera(&state, &camera).await?;
    session.require(Action::DeleteCameraRecordings, Object::Camera(&camera))?;
    if form.confirm.trim() != camera.as_str() {
        return Err(WebError::BadRequest(
            "the confirmation does not match".into(),
        ));
    }
    let n = delete_camera_and_links(&state, &camera).await?;
    tracing::info!(user = %session.0.user.id, camera = %camera, recordings = n.recordings, links = n.links, "camera's recordings deleted from the web UI");
    let subject = format!(
        "{} recording(s) of camera {camera}; {} share link(s) revoked",
        n.recordings, n.links
    );
    audit(
        &state,
        &session.0,
        AuditKind::CameraRecordingsDeleted,
        subject,
    )
    .await?;
    Ok(see_other(&format!("/cameras/{camera}/recordings"), &[]))
}

/// Deletes `camera`'s finished recordings and revokes its share links (for this
/// page and for removing a camera with its recordings).
pub(super) async fn delete_camera_and_links(
    state: &WebState,
    camera: &CameraId,
) -> Result<deletion::Deleted, WebError> {
    let (store, index, shares, cam) = (
        state.store.clone(),
        state.index.clone(),
        state.shares.clone(),
        camera.clone(),
    );
    let n = blocking(move || {
        deletion::delete_camera(&store, &index, &shares, &cam)
            .map_err(|e| WebError::Internal(format!("deleting camera {cam}'s recordings: {e}")))
    })
    .await?;
    state.layouts.clear();
    Ok(n)
}

/// What must be typed to delete everything.
pub const DELETE_EVERYTHING_CONFIRMATION: &str = "delete everything";

pub async fn delete_everything_page(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::DeleteEverything, Object::System)?;
    delete_everything_form(&state, &session, StatusCode::OK, None).await
}

async fn delete_everything_form(
    state: &WebState,
    session: &FullSession,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let mut r = render(&DeleteEverythingPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        error,
    })?;
    *r.status_mut() = status;
    Ok(r)
}

/// `POST /delete-everything`: the typed phrase and the owner's password again (see
/// [`DestroyForm`]), then every recording of every camera is shredded.
pub async fn delete_everything(
    State(state): State<WebState>,
    session: FullSession,
    Client(client): Client,
    CsrfForm(form): CsrfForm<DestroyForm>,
) -> Result<Response, WebError> {
    session.require(Action::DeleteEverything, Object::System)?;
    if form.confirm.trim().to_lowercase() != DELETE_EVERYTHING_CONFIRMATION {
        let why = format!("Type “{DELETE_EVERYTHING_CONFIRMATION}” exactly to confirm.");
        return delete_everything_form(&state, &session, StatusCode::BAD_REQUEST, Some(why)).await;
    }
    let confirmed = confirm_password(
        &state,
        &session.0,
        &client,
        form.password,
        "a deletion of all recordings",
    )
    .await?;
    if let Err((status, why)) = confirmed {
        return delete_everything_form(&state, &session, status, Some(why)).await;
    }
    let (store, index, shares) = (
        state.store.clone(),
        state.index.clone(),
        state.shares.clone(),
    );
    let n = blocking(move || {
        deletion::delete_everything(&store, &index, &shares)
            .map_err(|e| WebError::Internal(format!("deleting everything: {e}")))
    })
    .await?;
    state.layouts.clear();
    tracing::warn!(user = %session.0.user.id, recordings = n.recordings, links = n.links, "all recordings deleted from the web UI");
    let subject = format!(
        "{} recording(s) of every camera; {} share link(s) revoked",
        n.recordings, n.links
    );
    audit(&state, &session.0, AuditKind::EverythingDeleted, subject).await?;
    Ok(see_other("/", &[]))
}
