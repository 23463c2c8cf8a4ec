//! Support access (the owner grants a helper time-limited access, typing their
//! password again: it outlives "log out all") and the diagnostics page (camera
//! health, no video) that owners and helpers see.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::account::{confirm_password, with_status};
use super::shares::{host_of, no_store};
use super::{blocking, frame_for};
use crate::auth::policy::{Action, Object};
use crate::camera::ConnectionState;
use crate::index::{RecordingState, Role};
use crate::model::RecordingId;
use crate::web::extract::{Client, CsrfForm, FullSession};
use crate::web::view::{self, render, Frame};
use crate::web::{WebError, WebState};

/// Recordings offered for ticking, newest first.
const OFFERED_RECORDINGS: usize = 40;
/// The lifetimes offered, in hours (1 hour to 7 days).
const HOURS: [u64; 5] = [1, 4, 24, 72, 168];

pub struct GrantRow {
    pub id: String,
    pub name: String,
    pub expires: String,
    pub recordings: usize,
    /// An accepted grant (an account), or a pending invitation (its handle).
    pub pending: Option<String>,
}

pub struct RecordingChoice {
    pub id: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "support_access.html")]
struct SupportPage {
    frame: Frame,
    csrf: String,
    grants: Vec<GrantRow>,
    recordings: Vec<RecordingChoice>,
    hours: Vec<u64>,
    new_link: Option<String>,
    /// Why the grant form was refused (a wrong password).
    error: Option<String>,
}

pub struct CameraHealth {
    pub name: String,
    pub mode: String,
    pub state: &'static str,
    pub detail: String,
    pub since: String,
    pub failures: u32,
    pub problem: String,
}

#[derive(Template)]
#[template(path = "diagnostics.html")]
struct DiagnosticsPage {
    frame: Frame,
    version: &'static str,
    cameras: Vec<CameraHealth>,
    disk: String,
    recordings: usize,
    /// For a helper: the recordings the owner ticked.
    granted: Vec<RecordingChoice>,
    expires: Option<String>,
}

fn label(camera: &str, start: i64, end: i64) -> String {
    format!(
        "{camera}, {} ({})",
        view::date_time(start),
        view::duration(end - start)
    )
}

async fn support_page(
    state: &WebState,
    session: &FullSession,
    new_link: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (index, auth) = (state.index.clone(), state.auth.clone());
    let (users, pending, mut recordings) = blocking(move || {
        auth.expire_support()?;
        Ok((
            index.all_users()?,
            auth.invitations()?,
            index.all_recordings()?,
        ))
    })
    .await?;
    let mut grants: Vec<GrantRow> = users
        .into_iter()
        .filter(|u| u.role == Role::Support)
        .map(|u| GrantRow {
            id: u.id.to_string(),
            name: u.username,
            expires: u
                .support
                .as_ref()
                .map_or_else(String::new, |g| view::date_time(g.expires_micros)),
            recordings: u.support.as_ref().map_or(0, |g| g.recordings.len()),
            pending: None,
        })
        .collect();
    grants.extend(
        pending
            .into_iter()
            .filter(|i| i.role == Role::Support)
            .map(|i| GrantRow {
                id: String::new(),
                name: i.note,
                expires: view::date_time(i.expires_micros),
                recordings: 0,
                pending: Some(i.handle),
            }),
    );
    recordings.retain(|r| r.state == RecordingState::Finished);
    recordings.sort_by_key(|r| std::cmp::Reverse(r.start_micros));
    let page = render(&SupportPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        grants,
        recordings: recordings
            .iter()
            .take(OFFERED_RECORDINGS)
            .map(|r| RecordingChoice {
                id: r.id.to_string(),
                label: label(r.camera.as_str(), r.start_micros, r.end_micros),
            })
            .collect(),
        hours: HOURS.to_vec(),
        new_link,
        error,
    })?;
    Ok(no_store(page))
}

pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ManageSupport, Object::System)?;
    support_page(&state, &session, None, None).await
}

/// `helper`, `hours`, `password` (the owner's own, again: the helper's account
/// outlives "log out all" and a password change) and any number of `recording`
/// fields (checkboxes). The form is checked before the password: a mistake in it
/// costs no password attempt.
pub async fn grant(
    State(state): State<WebState>,
    session: FullSession,
    Client(client): Client,
    headers: HeaderMap,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    session.require(Action::ManageSupport, Object::System)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let helper = field("helper").to_owned();
    if helper.trim().is_empty() {
        return Err(WebError::BadRequest("name the helper".into()));
    }
    let hours: u64 = field("hours")
        .parse()
        .ok()
        .filter(|h| HOURS.contains(h))
        .ok_or_else(|| WebError::BadRequest("unknown duration".into()))?;
    let mut ticked = Vec::new();
    for (_, v) in fields.iter().filter(|(k, _)| k == "recording") {
        let id: RecordingId = v
            .parse()
            .map_err(|_| WebError::BadRequest("unknown recording".into()))?;
        ticked.push(id);
    }
    let password = field("password").to_owned();
    let confirmed =
        match confirm_password(&state, &session.0, &client, password, "support access").await? {
            Ok(confirmed) => confirmed,
            Err((status, why)) => {
                return with_status(
                    status,
                    support_page(&state, &session, None, Some(why)).await,
                )
            }
        };
    let (auth, index, owner) = (state.auth.clone(), state.index.clone(), session.0.clone());
    let secret = blocking(move || {
        for id in &ticked {
            if index.get_recording(*id)?.is_none() {
                return Err(WebError::BadRequest(format!("no recording {id}")));
            }
        }
        let lifetime = Duration::from_secs(hours * 3600);
        Ok(auth.grant_support(&owner, &confirmed, &helper, lifetime, ticked)?)
    })
    .await?;
    let link = format!("https://{}/invite#{secret}", host_of(&headers));
    support_page(&state, &session, Some(link), None).await
}

pub async fn diagnostics(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ViewDiagnostics, Object::System)?;
    let cameras = state
        .registry
        .all()
        .iter()
        .map(|c| {
            let s = c.status();
            CameraHealth {
                name: c.id().to_string(),
                mode: format!("{:?}", c.config.mode).to_lowercase(),
                state: s.state.label(),
                detail: match &s.state {
                    ConnectionState::Error(text) => text.clone(),
                    _ => String::new(),
                },
                since: view::date_time(s.since_micros),
                failures: s.failures,
                problem: s
                    .recording_problem
                    .as_ref()
                    .map_or_else(String::new, |(text, at)| {
                        format!("{text} (since {})", view::date_time(*at))
                    }),
            }
        })
        .collect();
    let grant = session.0.user.support.clone();
    let (index, data_dir) = (state.index.clone(), state.facts.data_dir.clone());
    let (recordings, granted, space) = blocking(move || {
        let all = index.all_recordings()?;
        let granted = match &grant {
            Some(g) => all
                .iter()
                .filter(|r| g.recordings.contains(&r.id))
                .map(|r| RecordingChoice {
                    id: r.id.to_string(),
                    label: label(r.camera.as_str(), r.start_micros, r.end_micros),
                })
                .collect(),
            None => Vec::new(),
        };
        use crate::retention::DiskSpace;
        let space = crate::retention::FilesystemSpace.space(&data_dir).ok();
        Ok((all.len(), granted, space))
    })
    .await?;
    render(&DiagnosticsPage {
        frame: frame_for(&state, &session.0).await?,
        version: env!("CARGO_PKG_VERSION"),
        cameras,
        disk: space.map_or_else(
            || "unknown".into(),
            |s| {
                format!(
                    "{} free of {}",
                    super::control::size(s.available),
                    super::control::size(s.total)
                )
            },
        ),
        recordings,
        granted,
        expires: session
            .0
            .user
            .support
            .as_ref()
            .map(|g| view::date_time(g.expires_micros)),
    })
}
