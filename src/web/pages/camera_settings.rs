//! A camera's settings page (owner only), for cameras added in the web UI: URL,
//! credentials (blank keeps the stored ones, but only while the stream addresses keep
//! their scheme, host and port; they are never shown), recording mode,
//! sub-stream URL, motion detection, sensitivity and ignore zones (drawn on a snapshot
//! by `web/static/zones.js`, or typed as numbers without JavaScript), pre- and
//! post-roll, storage period. Saving restarts that camera's tasks alone (its open
//! recording is finished first); other cameras go on untouched.
//! Cameras from the configuration file are shown as such and changed there.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::camera_form::{self, format_zones, parse_zones, StreamFields, Streams};
use super::{audit, blocking, frame_for, see_other};
use crate::auth::policy::{Action, Object};
use crate::config::{CameraConfig, RecordingMode};
use crate::index::{AuditKind, CameraEntry, CameraSettings};
use crate::model::CameraId;
use crate::web::extract::{CsrfForm, FullSession, Path};
use crate::web::view::{render, Frame};
use crate::web::{WebError, WebState};

#[derive(Template)]
#[template(path = "camera_settings.html")]
struct SettingsPage {
    frame: Frame,
    csrf: String,
    name: String,
    /// `None`: the camera is from the configuration file.
    entry: Option<EntryView>,
    /// Why the last form was refused (it is shown again as typed).
    error: Option<String>,
}

/// The form's values: the stored ones, or those just refused (so numbers are text).
struct EntryView {
    url: String,
    sub_url: String,
    has_credentials: bool,
    /// Value, label, selected.
    modes: Vec<(&'static str, &'static str, bool)>,
    motion: bool,
    sensitivity: String,
    pre_roll: String,
    post_roll: String,
    storage_days: String,
    /// One rectangle a line, as [`parse_zones`] reads it.
    zones: String,
}

fn modes(selected: &str) -> Vec<(&'static str, &'static str, bool)> {
    super::adopt::MODES
        .iter()
        .map(|(v, l)| (*v, *l, selected == *v))
        .collect()
}

impl EntryView {
    fn of_entry(e: &CameraEntry) -> EntryView {
        EntryView {
            url: e.url.clone(),
            sub_url: e.sub_url.clone().unwrap_or_default(),
            has_credentials: e.sealed_username.is_some(),
            modes: modes(mode_name(e.mode)),
            motion: e.settings.motion,
            sensitivity: e.settings.sensitivity.to_string(),
            pre_roll: e.settings.pre_roll_secs.to_string(),
            post_roll: e.settings.post_roll_secs.to_string(),
            storage_days: e.settings.storage_days.to_string(),
            zones: format_zones(&e.settings.zones),
        }
    }

    /// A refused form as typed (never the credentials).
    fn of_form(f: &SettingsForm, has_credentials: bool) -> EntryView {
        EntryView {
            url: f.stream.url.clone(),
            sub_url: f.stream.sub_url.clone(),
            has_credentials,
            modes: modes(&f.stream.mode),
            motion: f.motion == "on",
            sensitivity: f.sensitivity.clone(),
            pre_roll: f.pre_roll.clone(),
            post_roll: f.post_roll.clone(),
            storage_days: f.storage_days.clone(),
            zones: f.zones.clone(),
        }
    }
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(flatten)]
    stream: StreamFields,
    #[serde(default)]
    motion: String,
    #[serde(default)]
    sensitivity: String,
    #[serde(default)]
    pre_roll: String,
    #[serde(default)]
    post_roll: String,
    #[serde(default)]
    storage_days: String,
    #[serde(default)]
    zones: String,
}

fn known(state: &WebState, camera: &str) -> Result<CameraId, WebError> {
    camera
        .parse()
        .ok()
        .filter(|id| state.registry.get(id).is_some())
        .ok_or_else(|| WebError::NotFound("no such camera".into()))
}

async fn entry_of(state: &WebState, id: &CameraId) -> Result<Option<CameraEntry>, WebError> {
    let (index, id) = (state.index.clone(), id.clone());
    blocking(move || Ok(index.cameras()?.into_iter().find(|c| c.id == id))).await
}

pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
) -> Result<Response, WebError> {
    session.require(Action::ManageCameras, Object::System)?;
    let id = known(&state, &camera)?;
    let entry = entry_of(&state, &id)
        .await?
        .map(|e| EntryView::of_entry(&e));
    show(&state, &session, &id, entry, None).await
}

async fn show(
    state: &WebState,
    session: &FullSession,
    id: &CameraId,
    entry: Option<EntryView>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = render(&SettingsPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        name: id.to_string(),
        entry,
        error,
    })?;
    Ok((status, page).into_response())
}

fn mode_name(mode: RecordingMode) -> &'static str {
    match mode {
        RecordingMode::Off => "off",
        RecordingMode::Events => "events",
        RecordingMode::Continuous => "continuous",
    }
}

fn number<T: std::str::FromStr + PartialOrd>(
    text: &str,
    range: std::ops::RangeInclusive<T>,
    what: &str,
) -> Result<T, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| format!("{what} is out of range"))
}

/// Why blank credentials are refused after an address change.
const NEW_ADDRESS: &str = "type the camera's credentials again when its address changes";

/// Where a stream URL sends credentials: scheme, host and port (554 when left out).
fn endpoint(url: &url::Url) -> (String, String, u16) {
    (
        url.scheme().to_ascii_lowercase(),
        url.host_str().unwrap_or_default().to_ascii_lowercase(),
        url.port().unwrap_or(554),
    )
}

/// Whether every address the new streams would send the stored credentials to already
/// received them (the old URL or sub-stream URL). Otherwise keeping them would let a
/// stolen owner session point the camera at its own host and read the password there
/// (RTSP Basic authentication sends it in clear); typing them again proves knowledge.
/// A stored URL that no longer parses counts as no address.
fn same_endpoints(old: &CameraEntry, new: &Streams) -> bool {
    let before: Vec<_> = std::iter::once(old.url.as_str())
        .chain(old.sub_url.as_deref())
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| endpoint(&u))
        .collect();
    std::iter::once(&new.url)
        .chain(new.sub_url.as_ref())
        .all(|u| before.contains(&endpoint(u)))
}

fn check(form: &SettingsForm) -> Result<(Streams, CameraSettings), String> {
    let stream = form.stream.check()?;
    let settings = CameraSettings {
        motion: form.motion == "on",
        sensitivity: number(&form.sensitivity, 1..=100, "the sensitivity")?,
        pre_roll_secs: number(&form.pre_roll, 0..=30, "the pre-roll")?,
        post_roll_secs: number(&form.post_roll, 0..=600, "the post-roll")?,
        zones: parse_zones(&form.zones)?,
        storage_days: camera_form::storage_days(&form.storage_days)?,
    };
    Ok((stream, settings))
}

pub async fn save(
    State(state): State<WebState>,
    session: FullSession,
    Path(camera): Path<String>,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> Result<Response, WebError> {
    session.require(Action::ManageCameras, Object::System)?;
    let _change = state.camera_changes.lock().await;
    let id = known(&state, &camera)?;
    let old = entry_of(&state, &id).await?;
    let (stream, settings) = match check(&form) {
        Ok(checked) => checked,
        Err(e) => {
            let view = old
                .as_ref()
                .map(|o| EntryView::of_form(&form, o.sealed_username.is_some()));
            return show(&state, &session, &id, view, Some(e)).await;
        }
    };
    let Some(old) = old else {
        return Err(WebError::Conflict(format!(
            "camera {id} is in the configuration file: change it there"
        )));
    };
    if stream.username.is_none() && old.sealed_username.is_some() && !same_endpoints(&old, &stream)
    {
        tracing::warn!(camera = %id, "camera {id}: new address with kept credentials refused");
        let view = EntryView::of_form(&form, true);
        return show(&state, &session, &id, Some(view), Some(NEW_ADDRESS.into())).await;
    }
    // Blank credentials keep the stored ones; new ones replace both.
    let (user_purpose, password_purpose) = CameraEntry::purposes(&id);
    let store = state.store.clone();
    let seal = |clear: &Option<String>, purpose: &str| {
        clear
            .as_ref()
            .map(|c| store.seal_secret(purpose, c.as_bytes()))
            .transpose()
            .map_err(|e| WebError::Internal(format!("sealing camera credentials: {e}")))
    };
    let (sealed_username, sealed_password) = if stream.username.is_none() {
        (old.sealed_username.clone(), old.sealed_password.clone())
    } else {
        (
            seal(&stream.username, &user_purpose)?,
            seal(&stream.password, &password_purpose)?,
        )
    };
    let open = |sealed: &Option<String>, purpose: &str| -> Result<Option<String>, WebError> {
        sealed
            .as_ref()
            .map(|hex| {
                let clear = store
                    .open_secret(purpose, hex)
                    .map_err(|e| WebError::Internal(format!("camera {id}'s credentials: {e}")))?;
                String::from_utf8(clear.to_vec())
                    .map_err(|_| WebError::Internal("credentials are not text".into()))
            })
            .transpose()
    };
    let Streams {
        url, sub_url, mode, ..
    } = stream;
    let config = CameraConfig::adopted(
        id.clone(),
        url.clone(),
        open(&sealed_username, &user_purpose)?,
        open(&sealed_password, &password_purpose)?,
        mode,
    )
    .with_sub_url(sub_url.clone())
    .with_settings(&settings);
    let entry = CameraEntry {
        url: url.to_string(),
        sub_url: sub_url.map(|u| u.to_string()),
        mode,
        sealed_username,
        sealed_password,
        settings,
        ..old
    };
    let index = state.index.clone();
    if !blocking(move || Ok(index.update_camera(&entry)?)).await? {
        // Removed since its entry was read: starting it again would leave it
        // recording with no entry, beyond the reach of the web UI.
        tracing::warn!(camera = %id, "camera {id}: settings not saved, it was removed meanwhile");
        return Err(WebError::NotFound(format!(
            "camera {id} was removed: its settings were not saved"
        )));
    }
    // Only this camera restarts.
    (state.remove_camera)(id.clone()).await;
    if let Err(e) = (state.add_camera)(config) {
        tracing::error!(camera = %id, "camera {id} changed but not restarted: {e}");
        return Err(WebError::Conflict(format!(
            "camera {id} is saved and starts with the daemon, but not now: {e}"
        )));
    }
    tracing::info!(camera = %id, "camera {id}'s settings changed from the web UI");
    audit(
        &state,
        &session.0,
        AuditKind::CameraChanged,
        format!("camera {id}"),
    )
    .await?;
    Ok(see_other("/", &[]))
}
