//! Page handlers, one file per area. Each asks [`super::extract::FullSession::require`]
//! before touching anything, and does blocking work on blocking threads.

pub mod account;
pub mod adopt;
pub mod audit;
pub mod camera_form;
pub mod camera_settings;
pub mod cameras;
pub mod control;
pub mod data;
pub mod devices;
pub mod discovered;
pub mod e2e;
pub mod events;
pub mod linked;
pub mod notifications;
pub mod onvif_streams;
pub mod password;
pub mod recordings;
pub mod shares;
pub mod snapshot;
pub mod support;
pub mod test_connection;
pub mod two_step;
pub mod users;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::view::{Frame, Nav};
use super::{WebError, WebState};
use crate::auth::{session_actor, Session};
use crate::index::AuditKind;

/// Runs blocking work (sled, files) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Internal(format!("blocking task: {e}")))?
}

/// Appends to the audit log (a sled write) off the async threads, as the session's user.
pub async fn audit(
    state: &WebState,
    session: &Session,
    kind: AuditKind,
    subject: String,
) -> Result<(), WebError> {
    let (log, actor) = (state.auth.audit().clone(), session_actor(session));
    blocking(move || {
        log.record(kind, &actor, subject);
        Ok(())
    })
    .await
}

/// 303 See Other to `to`, with extra `Set-Cookie` headers.
pub fn see_other(to: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// Alerts worth a badge: those of the last 7 days.
pub const RECENT_ALERT_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// The page frame for a logged-in user (navigation with the alert count).
pub async fn frame_for(state: &WebState, session: &Session) -> Result<Frame, WebError> {
    let auth = state.auth.clone();
    let user = session.user.id;
    let now = state.clock.now_micros();
    let recent = blocking(move || {
        Ok(auth
            .alerts(user)?
            .iter()
            .filter(|a| now - a.time_micros < RECENT_ALERT_MICROS)
            .count())
    })
    .await?;
    Ok(Frame {
        nav: Nav::of(session, recent),
        fingerprint: state.certificate.fingerprint().to_string(),
    })
}

/// The page frame before login.
pub fn anonymous_frame(state: &WebState) -> Frame {
    Frame {
        nav: None,
        fingerprint: state.certificate.fingerprint().to_string(),
    }
}
