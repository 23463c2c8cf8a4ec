//! Adding a camera (owner only): from the discovered list (URL and name prefilled) or
//! by URL. For a camera found by ONVIF, "Ask the camera for its streams" fills both
//! URLs from its answer (`onvif_streams.rs`). "Test connection" runs DESCRIBE, SETUP and PLAY once and shows the codec,
//! picture size, frame rate and a snapshot; "Save" seals the credentials with the
//! master key, stores the camera in the index (with its optional sub stream and
//! storage period) and starts it at once (it also starts at every boot).
//!
//! Credentials are never sent back to the browser (not even after a test: the form
//! asks for them again) and never logged; only `rtsp://` URLs without credentials in
//! them are accepted; the name is a camera id (`a-z 0-9 - _`) and escaped anyway.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::camera_form::{self, StreamFields, Streams};
use super::test_connection::{discovered_streams, probe_text, snapshot_url, Found};
use super::{audit, blocking, frame_for, onvif_streams, see_other};
use crate::auth::policy::{Action, Object};
use crate::camera::ingest;
use crate::config::CameraConfig;
use crate::index::{AuditKind, CameraEntry};
use crate::model::CameraId;
use crate::web::extract::{CsrfForm, FullSession, Path, Query};
use crate::web::view::{render, Frame};
use crate::web::{WebError, WebState};

pub(super) const MODES: [(&str, &str); 3] = [
    ("events", "Record events (motion, doorbell, live view)"),
    ("continuous", "Record all the time"),
    ("off", "Live view only"),
];

#[derive(Template)]
#[template(path = "adopt.html")]
struct AdoptPage {
    frame: Frame,
    csrf: String,
    name: String,
    url: String,
    sub_url: String,
    storage_days: String,
    /// Value, label, selected.
    modes: Vec<(&'static str, &'static str, bool)>,
    /// The RTSP URLs announced on the LAN (mDNS), offered for both stream fields: a
    /// camera that announces each of its streams lets the owner pick the sub stream.
    streams: Vec<String>,
    /// What "Test connection" found.
    probe: Option<Found>,
    error: Option<String>,
    /// The ONVIF entry (endpoint address) the form came from, and its device-service
    /// URL; both empty when it did not come from one still listed.
    onvif: String,
    onvif_device: String,
}

#[derive(Deserialize)]
pub struct Prefill {
    #[serde(default)]
    url: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    sub_url: String,
    /// The discovered ONVIF entry's endpoint address.
    #[serde(default)]
    onvif: String,
}

/// The form. `action` is `test` or `save` (the button pressed).
#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(flatten)]
    stream: StreamFields,
    /// Days recordings are kept; blank is 30.
    #[serde(default)]
    storage_days: String,
    #[serde(default)]
    action: String,
    /// The discovered ONVIF entry's endpoint address (hidden field), if any.
    #[serde(default)]
    onvif: String,
}

/// A validated form.
struct Checked {
    id: CameraId,
    storage_days: u32,
    stream: Streams,
}

fn check(form: &AddForm) -> Result<Checked, String> {
    let id: CameraId = form
        .name
        .trim()
        .parse()
        .map_err(|e: crate::model::BadCameraName| e.to_string())?;
    Ok(Checked {
        id,
        storage_days: camera_form::storage_days(&form.storage_days)?,
        stream: form.stream.check()?,
    })
}

/// What the form shows back after a test or a refusal: everything but the
/// credentials.
#[derive(Default)]
struct Shown<'a> {
    name: &'a str,
    url: &'a str,
    sub_url: &'a str,
    mode: &'a str,
    storage_days: &'a str,
    onvif: &'a str,
}

impl<'a> Shown<'a> {
    fn of(form: &'a AddForm) -> Self {
        Shown {
            name: &form.name,
            url: &form.stream.url,
            sub_url: &form.stream.sub_url,
            mode: &form.stream.mode,
            storage_days: &form.storage_days,
            onvif: &form.onvif,
        }
    }
}

async fn show(
    state: &WebState,
    session: &FullSession,
    form: &Shown<'_>,
    probe: Option<Found>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = render(&AdoptPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        name: form.name.to_owned(),
        url: form.url.to_owned(),
        sub_url: form.sub_url.to_owned(),
        storage_days: if form.storage_days.trim().is_empty() {
            crate::index::DEFAULT_STORAGE_DAYS.to_string()
        } else {
            form.storage_days.to_owned()
        },
        modes: MODES
            .iter()
            .map(|(v, l)| {
                (
                    *v,
                    *l,
                    *v == form.mode || (form.mode.is_empty() && *v == "events"),
                )
            })
            .collect(),
        streams: discovered_streams(state),
        probe,
        error,
        onvif_device: onvif_streams::device_url(state, form.onvif)
            .map(|u| u.to_string())
            .unwrap_or_default(),
        onvif: form.onvif.to_owned(),
    })?;
    Ok((status, page).into_response())
}

pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
    Query(prefill): Query<Prefill>,
) -> Result<Response, WebError> {
    session.require(Action::ManageCameras, Object::System)?;
    let shown = Shown {
        name: &prefill.name,
        url: &prefill.url,
        sub_url: &prefill.sub_url,
        onvif: &prefill.onvif,
        ..Shown::default()
    };
    show(&state, &session, &shown, None, None).await
}

pub async fn submit(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<AddForm>,
) -> Result<Response, WebError> {
    session.require(Action::ManageCameras, Object::System)?;
    let shown = Shown::of(&form);
    let checked = match check(&form) {
        Ok(c) => c,
        Err(e) => return show(&state, &session, &shown, None, Some(e)).await,
    };
    match form.action.as_str() {
        "test" => {
            let probed = ingest::probe(
                &checked.stream.url,
                checked.stream.username.as_deref(),
                checked.stream.password.as_deref(),
            )
            .await;
            match probed {
                Ok(p) => {
                    let snapshot = snapshot_url(p.keyframe).await;
                    let found = Found {
                        text: probe_text(&p.encoding, p.size, p.codec.as_deref(), p.frame_rate),
                        snapshot,
                    };
                    show(&state, &session, &shown, Some(found), None).await
                }
                Err(e) => {
                    let text = format!("The camera did not answer as expected: {e}");
                    show(&state, &session, &shown, None, Some(text)).await
                }
            }
        }
        "onvif" => {
            let s = &checked.stream;
            match onvif_streams::ask(
                &state,
                &form.onvif,
                s.username.as_deref(),
                s.password.as_deref(),
            )
            .await
            {
                Ok(uris) => {
                    let main = uris[0].to_string();
                    let sub = uris.get(1).map(|u| u.to_string()).unwrap_or_default();
                    let found = Found {
                        text: format!("The camera gave {} stream URL(s).", uris.len()),
                        snapshot: None,
                    };
                    let shown = Shown {
                        url: &main,
                        sub_url: &sub,
                        ..shown
                    };
                    show(&state, &session, &shown, Some(found), None).await
                }
                Err(e) => show(&state, &session, &shown, None, Some(e)).await,
            }
        }
        "save" => {
            let _change = state.camera_changes.lock().await;
            save(&state, &session, checked, shown).await
        }
        _ => Err(WebError::BadRequest("unknown action".into())),
    }
}

async fn save(
    state: &WebState,
    session: &FullSession,
    c: Checked,
    shown: Shown<'_>,
) -> Result<Response, WebError> {
    if state.registry.get(&c.id).is_some() {
        let e = format!("a camera named {} already exists", c.id);
        return show(state, session, &shown, None, Some(e)).await;
    }
    // A new camera of a removed camera's name would take over the recordings kept
    // from it: its storage period would apply to them (and delete evidence kept for
    // longer), and removing it with its recordings would delete them too.
    let (index, id) = (state.index.clone(), c.id.clone());
    if blocking(move || Ok(index.keeps_recordings_of_removed_camera(&id)?)).await? {
        let e = crate::camera::kept_recordings_refusal(&c.id);
        return show(state, session, &shown, None, Some(e)).await;
    }
    let (store, index) = (state.store.clone(), state.index.clone());
    let settings = crate::index::CameraSettings {
        storage_days: c.storage_days,
        ..Default::default()
    };
    let (user_purpose, password_purpose) = CameraEntry::purposes(&c.id);
    let seal = move |v: &Option<String>, purpose: &str| {
        v.as_ref()
            .map(|clear| store.seal_secret(purpose, clear.as_bytes()))
            .transpose()
            .map_err(|e| WebError::Internal(format!("sealing camera credentials: {e}")))
    };
    let s = c.stream;
    let entry = CameraEntry {
        id: c.id.clone(),
        url: s.url.to_string(),
        sub_url: s.sub_url.as_ref().map(|u| u.to_string()),
        mode: s.mode,
        sealed_username: seal(&s.username, &user_purpose)?,
        sealed_password: seal(&s.password, &password_purpose)?,
        added_micros: state.clock.now_micros(),
        added_by: session.0.user.id,
        settings: settings.clone(),
    };
    let added = blocking(move || Ok(index.add_camera(&entry)?)).await?;
    if !added {
        let e = format!("a camera named {} already exists", c.id);
        return show(state, session, &shown, None, Some(e)).await;
    }
    let camera = CameraConfig::adopted(c.id.clone(), s.url, s.username, s.password, s.mode)
        .with_sub_url(s.sub_url)
        .with_settings(&settings);
    if let Err(e) = (state.add_camera)(camera) {
        tracing::error!(camera = %c.id, "camera {} saved but not started: {e}", c.id);
        return Err(WebError::Conflict(format!(
            "camera {} is saved and starts with the daemon, but not now: {e}",
            c.id
        )));
    }
    tracing::info!(camera = %c.id, "camera {} added from the web UI", c.id);
    audit(state, &session.0, AuditKind::CameraAdded, c.id.to_string()).await?;
    Ok(see_other("/", &[]))
}

/// The removal form: the camera's name typed again, and what becomes of its
/// recordings (`keep` or `delete`).
#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    recordings: String,
}

/// Removes a camera added in the web UI: stops it (finishing its open recording),
/// forgets it and its sealed credentials, and keeps or deletes its recordings.
/// Cameras from the configuration file are removed there.
pub async fn remove(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Result<Response, WebError> {
    session.require(Action::ManageCameras, Object::System)?;
    let id: CameraId = camera
        .parse()
        .map_err(|_| WebError::NotFound("no such camera".into()))?;
    if form.confirm.trim() != id.as_str() {
        return Err(WebError::BadRequest(
            "the confirmation does not match".into(),
        ));
    }
    let delete = match form.recordings.as_str() {
        "keep" => false,
        "delete" => true,
        _ => {
            return Err(WebError::BadRequest(
                "keep or delete the recordings?".into(),
            ))
        }
    };
    let _change = state.camera_changes.lock().await;
    let (index, cam, now) = (state.index.clone(), id.clone(), state.clock.now_micros());
    // Kept recordings keep the camera's storage period and stay listed (a retired
    // camera), rather than falling to the default period out of sight.
    let removed = blocking(move || {
        Ok(if delete {
            index.remove_camera(&cam)?
        } else {
            index.retire_camera(&cam, now)?
        })
    })
    .await?;
    if removed.is_none() {
        return Err(if state.registry.get(&id).is_some() {
            WebError::Conflict(format!(
                "camera {id} is in the configuration file: remove it there"
            ))
        } else {
            WebError::NotFound("no such camera".into())
        });
    }
    (state.remove_camera)(id.clone()).await;
    let mut subject = format!("camera {id}, recordings kept");
    if delete {
        let n = super::recordings::delete_camera_and_links(&state, &id).await?;
        subject = format!(
            "camera {id} and its {} recording(s); {} share link(s) revoked",
            n.recordings, n.links
        );
    }
    tracing::info!(camera = %id, delete, "camera {id} removed from the web UI");
    audit(&state, &session.0, AuditKind::CameraRemoved, subject).await?;
    Ok(see_other("/", &[]))
}
