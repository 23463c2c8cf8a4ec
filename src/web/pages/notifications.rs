//! Notifications: each user's preferences (which cameras and kinds, quiet hours, mail,
//! webhook) and the server-sent-events stream the open pages listen on
//! (`notify.js`), which carries only that user's notices.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use futures::Stream;
use tokio::sync::{broadcast, watch};

use super::{blocking, frame_for};
use crate::auth::policy::{Action, Object};
use crate::index::{CameraPrefs, NotificationPrefs, UserId};
use crate::notifications::UiNotice;
use crate::web::extract::{still_allowed, CsrfForm, FullSession};
use crate::web::view::{render, Frame};
use crate::web::{stopped, WebError, WebState};

const KEEP_ALIVE: Duration = Duration::from_secs(20);

pub struct CameraRow {
    pub name: String,
    pub motion: bool,
    pub doorbell: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct PrefsPage {
    frame: Frame,
    csrf: String,
    cameras: Vec<CameraRow>,
    quiet_start: String,
    quiet_end: String,
    email: bool,
    has_address: bool,
    mail_configured: bool,
    webhook: bool,
    webhook_configured: bool,
    saved: bool,
}

fn hh_mm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// `HH:MM` → minutes after midnight.
fn parse_hh_mm(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

async fn prefs_page(
    state: &WebState,
    session: &FullSession,
    saved: bool,
) -> Result<Response, WebError> {
    let (index, user) = (state.index.clone(), session.0.user.id);
    let prefs = blocking(move || Ok(index.notification_prefs(user)?)).await?;
    render(&PrefsPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        cameras: state
            .registry
            .all()
            .iter()
            .map(|c| {
                let p = prefs.camera(c.id());
                CameraRow {
                    name: c.id().to_string(),
                    motion: p.motion,
                    doorbell: p.doorbell,
                }
            })
            .collect(),
        quiet_start: hh_mm(prefs.quiet_start_minute),
        quiet_end: hh_mm(prefs.quiet_end_minute),
        email: prefs.email,
        has_address: session.0.user.email.is_some(),
        mail_configured: state.facts.mail_relay.is_some(),
        webhook: prefs.webhook,
        webhook_configured: state.facts.webhook_host.is_some(),
        saved,
    })
}

pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(
        Action::ManageOwnNotifications,
        Object::User(session.0.user.id),
    )?;
    prefs_page(&state, &session, false).await
}

/// Checkboxes `motion` and `doorbell` (value: the camera), `quiet_start`,
/// `quiet_end` (`HH:MM`), `email`, `webhook`.
pub async fn save(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user: UserId = session.0.user.id;
    session.require(Action::ManageOwnNotifications, Object::User(user))?;
    let ticked = |name: &str, camera: &str| fields.iter().any(|(k, v)| k == name && v == camera);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let mut prefs = NotificationPrefs::default();
    for camera in state.registry.all() {
        let name = camera.id().as_str();
        prefs.cameras.insert(
            camera.id().clone(),
            CameraPrefs {
                motion: ticked("motion", name),
                doorbell: ticked("doorbell", name),
            },
        );
    }
    let bad = || WebError::BadRequest("quiet hours are HH:MM".into());
    prefs.quiet_start_minute = parse_hh_mm(field("quiet_start")).ok_or_else(bad)?;
    prefs.quiet_end_minute = parse_hh_mm(field("quiet_end")).ok_or_else(bad)?;
    prefs.email = field("email") == "on";
    prefs.webhook = field("webhook") == "on";
    let index = state.index.clone();
    blocking(move || Ok(index.put_notification_prefs(user, &prefs)?)).await?;
    prefs_page(&state, &session, true).await
}

/// What the notices stream carries from one message to the next.
struct Listener {
    rx: broadcast::Receiver<UiNotice>,
    shutdown: watch::Receiver<bool>,
    session: [u8; 32],
    user: UserId,
    state: WebState,
}

/// This user's notices as server-sent events (`event: notice`, JSON data), until the
/// daemon stops or, at the next notice, the session has ended (logged out, expired,
/// removed). A page that falls behind misses notices, never blocks anyone.
pub async fn stream(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let user = session.0.user.id;
    session.require(Action::ManageOwnNotifications, Object::User(user))?;
    let listener = Listener {
        rx: state.notifications.subscribe(),
        shutdown: state.shutdown.clone(),
        session: session.0.key,
        user,
        state,
    };
    let events = futures::stream::unfold(listener, |mut l| async move {
        loop {
            let next = tokio::select! {
                n = l.rx.recv() => n,
                () = stopped(&mut l.shutdown) => return None,
            };
            match next {
                Ok(UiNotice {
                    user: to,
                    title,
                    link,
                }) if to == l.user => {
                    let object = Object::User(l.user);
                    let action = Action::ManageOwnNotifications;
                    if !still_allowed(&l.state, l.session, action, object).await {
                        return None;
                    }
                    let data = serde_json::json!({ "title": title, "link": link }).to_string();
                    let event = Event::default().event("notice").data(data);
                    return Some((Ok(event), l));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_are_read_and_written_as_hh_mm() {
        assert_eq!(parse_hh_mm("22:30"), Some(22 * 60 + 30));
        assert_eq!(parse_hh_mm("07:05"), Some(7 * 60 + 5));
        assert_eq!(parse_hh_mm("24:00"), None);
        assert_eq!(parse_hh_mm("12:60"), None);
        assert_eq!(parse_hh_mm("noon"), None);
        assert_eq!(hh_mm(22 * 60 + 30), "22:30");
    }
}
