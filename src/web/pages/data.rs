//! Data rights pages (issue 5): every user's "Your data" page and personal-data JSON
//! download, a shared user deleting their own account, and the owner's archive of
//! everything and "erase all data". The work itself is in [`crate::data_rights`].

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::account::confirm_password;
use super::{audit, blocking, frame_for, see_other};
use crate::auth::policy::{self, Action, Object};
use crate::data_rights;
use crate::index::{AuditKind, AuditQuery};
use crate::web::extract::{cookies, still_allowed_blocking, Client, CsrfForm, FullSession};
use crate::web::playback::{blocking_body, StillAllowed};
use crate::web::view::{self, render, Frame};
use crate::web::{WebError, WebState};

/// What a shared user types to delete their account.
pub const DELETE_ACCOUNT_CONFIRMATION: &str = "delete my account";
/// What the owner types to erase all data.
pub const ERASE_CONFIRMATION: &str = "erase all data";

#[derive(Template)]
#[template(path = "my_data.html")]
struct MyDataPage {
    frame: Frame,
    csrf: String,
    name: String,
    role: &'static str,
    devices: usize,
    audit_entries: usize,
    alerts: usize,
    can_delete_account: bool,
    is_owner: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "erase_all.html")]
struct ErasePage {
    frame: Frame,
    csrf: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

/// A form that destroys everything (erase all data, delete all recordings): the typed
/// phrase, and the owner's own password again, as for making lasting access. A
/// borrowed or stolen session must not be enough to destroy the footage, nor (erase)
/// the activity log that would show who did it.
#[derive(Deserialize)]
pub struct DestroyForm {
    #[serde(default)]
    pub(super) confirm: String,
    #[serde(default)]
    pub(super) password: String,
}

fn typed(form: &ConfirmForm, expected: &str) -> bool {
    form.confirm.trim().to_lowercase() == expected
}

async fn my_data_page(
    state: &WebState,
    session: &FullSession,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (auth, index, s) = (state.auth.clone(), state.index.clone(), session.0.clone());
    let (devices, audit_entries, alerts) = blocking(move || {
        let entries = index.audit_entries(&AuditQuery {
            user: Some(s.user.id),
            limit: usize::MAX,
            ..Default::default()
        })?;
        Ok((
            auth.devices(&s)?.len(),
            entries.len(),
            auth.alerts(s.user.id)?.len(),
        ))
    })
    .await?;
    let principal = session.principal();
    let me = session.0.user.id;
    let page = render(&MyDataPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        name: session.0.user.username.clone(),
        role: session.0.user.role.label(),
        devices,
        audit_entries,
        alerts,
        can_delete_account: policy::allowed(&principal, Action::DeleteOwnAccount, Object::User(me)),
        is_owner: policy::allowed(&principal, Action::ExportEverything, Object::System),
        error: error.clone(),
    })?;
    Ok(if error.is_some() {
        with_status(StatusCode::BAD_REQUEST, page)
    } else {
        page
    })
}

fn with_status(status: StatusCode, mut r: Response) -> Response {
    *r.status_mut() = status;
    r
}

/// `GET /my-data`: what the download contains, and (a shared user) delete account.
pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::DownloadOwnData, Object::User(session.0.user.id))?;
    my_data_page(&state, &session, None).await
}

fn attachment(mut r: Response, content_type: &'static str, file_name: &str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /my-data.json`: the user's personal data. `HEAD` gets the headers only and
/// is not logged (axum answers it with this handler).
pub async fn download(
    State(state): State<WebState>,
    session: FullSession,
    method: Method,
) -> Result<Response, WebError> {
    session.require(Action::DownloadOwnData, Object::User(session.0.user.id))?;
    let name = format!(
        "porchlight-my-data-{}.json",
        view::file_stamp(state.clock.now_micros())
    );
    if method == Method::HEAD {
        return Ok(attachment(Response::default(), "application/json", &name));
    }
    let (auth, index, s) = (state.auth.clone(), state.index.clone(), session.0.clone());
    let json = blocking(move || {
        let data = data_rights::personal_data(&auth, &index, &s)
            .map_err(|e| WebError::Internal(format!("personal data of {}: {e}", s.user.id)))?;
        serde_json::to_vec_pretty(&data)
            .map_err(|e| WebError::Internal(format!("personal data JSON: {e}")))
    })
    .await?;
    audit(
        &state,
        &session.0,
        AuditKind::PersonalDataDownloaded,
        "their personal data (JSON)".into(),
    )
    .await?;
    Ok(attachment(json.into_response(), "application/json", &name))
}

/// `POST /my-data/delete-account`: a shared user deletes their own account, with the
/// typed confirmation. Every session of theirs ends, this one included.
pub async fn delete_account(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<Response, WebError> {
    session.require(Action::DeleteOwnAccount, Object::User(session.0.user.id))?;
    if !typed(&form, DELETE_ACCOUNT_CONFIRMATION) {
        let why = format!("Type “{DELETE_ACCOUNT_CONFIRMATION}” exactly to confirm.");
        return my_data_page(&state, &session, Some(why)).await;
    }
    let (auth, s) = (state.auth.clone(), session.0.clone());
    blocking(move || Ok(auth.delete_own_account(&s)?)).await?;
    state.unlocked.lock_user(session.0.user.id);
    Ok(see_other("/login", &[cookies::clear_session()]))
}

/// `GET /export-everything.tar`: the owner's archive of all data and every finished
/// recording as MP4, streamed. `HEAD` gets the headers only: not logged, nothing made.
pub async fn export_everything(
    State(state): State<WebState>,
    session: FullSession,
    method: Method,
) -> Result<Response, WebError> {
    session.require(Action::ExportEverything, Object::System)?;
    let now = state.clock.now_micros();
    let name = format!("porchlight-everything-{}.tar", view::file_stamp(now));
    if method == Method::HEAD {
        return Ok(attachment(Response::default(), "application/x-tar", &name));
    }
    audit(
        &state,
        &session.0,
        AuditKind::EverythingExported,
        "archive of all data and recordings".into(),
    )
    .await?;
    tracing::info!(user = %session.0.user.id, "archive of everything requested");
    let (store, index) = (state.store.clone(), state.index.clone());
    let viewer = state.unlocked.get(&session.0.key, now);
    // Like a download, the archive stops when the owner's session ends mid-way.
    let (auth, key) = (state.auth.clone(), session.0.key);
    let allowed: StillAllowed = Arc::new(move || {
        still_allowed_blocking(&auth, key, Action::ExportEverything, Object::System)
    });
    let body = blocking_body("archive of everything".into(), Some(allowed), move |out| {
        data_rights::write_everything(&store, &index, now, out, viewer).map(|summary| {
            tracing::info!(
                recordings = summary.recordings,
                thumbnails = summary.thumbnails,
                failed = summary.failed,
                "archive of everything written"
            );
        })
    });
    Ok(attachment(Response::new(body), "application/x-tar", &name))
}

async fn erase_page(
    state: &WebState,
    session: &FullSession,
    error: Option<String>,
) -> Result<Response, WebError> {
    render(&ErasePage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        error,
    })
}

/// `GET /erase-all-data`: what erasing does, and the form.
pub async fn erase_all_page(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::EraseEverything, Object::System)?;
    erase_page(&state, &session, None).await
}

/// `POST /erase-all-data`: erases everything but the owner's account (keys first).
pub async fn erase_all(
    State(state): State<WebState>,
    session: FullSession,
    Client(client): Client,
    CsrfForm(form): CsrfForm<DestroyForm>,
) -> Result<Response, WebError> {
    session.require(Action::EraseEverything, Object::System)?;
    if form.confirm.trim().to_lowercase() != ERASE_CONFIRMATION {
        let why = format!("Type “{ERASE_CONFIRMATION}” exactly to confirm.");
        let page = erase_page(&state, &session, Some(why)).await?;
        return Ok(with_status(StatusCode::BAD_REQUEST, page));
    }
    let confirmed = confirm_password(
        &state,
        &session.0,
        &client,
        form.password,
        "an erasure of all data",
    )
    .await?;
    if let Err((status, why)) = confirmed {
        let page = erase_page(&state, &session, Some(why)).await?;
        return Ok(with_status(status, page));
    }
    let (store, index, shares, auth, owner) = (
        state.store.clone(),
        state.index.clone(),
        state.shares.clone(),
        state.auth.clone(),
        session.0.clone(),
    );
    blocking(move || {
        data_rights::erase_all(&store, &index, &shares, &auth, &owner)
            .map_err(|e| WebError::Internal(format!("erasing all data: {e}")))
    })
    .await?;
    state.layouts.clear();
    Ok(see_other("/activity", &[]))
}
