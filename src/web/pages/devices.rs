//! The Devices page (every logged-in browser of the user, log out one or all) and the
//! security alerts page.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::{blocking, frame_for, see_other};
use crate::auth::policy::{Action, Object};
use crate::web::extract::{cookies, CsrfForm, FullSession};
use crate::web::view::{date_time, render, Frame};
use crate::web::{WebError, WebState};

pub struct DeviceRow {
    pub handle: String,
    pub description: String,
    /// Where it logged in.
    pub ip: String,
    /// Where it was last used.
    pub last_ip: String,
    pub first_seen: String,
    pub last_seen: String,
    pub this_device: bool,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    frame: Frame,
    csrf: String,
    devices: Vec<DeviceRow>,
}

pub struct AlertRow {
    pub when: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    frame: Frame,
    alerts: Vec<AlertRow>,
}

pub async fn devices(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ManageOwnDevices, Object::User(session.0.user.id))?;
    let (auth, s) = (state.auth.clone(), session.0.clone());
    let list = blocking(move || Ok(auth.devices(&s)?)).await?;
    let devices = list
        .into_iter()
        .map(|d| DeviceRow {
            handle: d.handle,
            description: d.description,
            ip: d.ip,
            last_ip: d.last_ip,
            first_seen: date_time(d.first_seen_micros),
            last_seen: date_time(d.last_seen_micros),
            this_device: d.this_device,
        })
        .collect();
    render(&DevicesPage {
        frame: frame_for(&state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        devices,
    })
}

#[derive(Deserialize)]
pub struct DeviceForm {
    device: String,
}

pub async fn logout_one(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<DeviceForm>,
) -> Result<Response, WebError> {
    let user = session.0.user.id;
    session.require(Action::ManageOwnDevices, Object::User(user))?;
    let own = form.device == session.0.handle();
    let (auth, current) = (state.auth.clone(), session.0.clone());
    let ended = blocking(move || Ok(auth.logout_device(&current, &form.device)?)).await?;
    let Some(ended) = ended else {
        return Err(WebError::NotFound("no such device".into()));
    };
    // Its unlocked end-to-end viewer key goes with it, as at logout.
    state.unlocked.lock(&ended);
    if own {
        Ok(see_other("/login", &[cookies::clear_session()]))
    } else {
        Ok(see_other("/devices", &[]))
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout_all(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    let user = session.0.user.id;
    session.require(Action::ManageOwnDevices, Object::User(user))?;
    let (auth, current) = (state.auth.clone(), session.0.clone());
    blocking(move || Ok(auth.logout_all(&current)?)).await?;
    state.unlocked.lock_user(user);
    Ok(see_other("/login", &[cookies::clear_session()]))
}

pub async fn alerts(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    let user = session.0.user.id;
    session.require(Action::ViewOwnAlerts, Object::User(user))?;
    let auth = state.auth.clone();
    let list = blocking(move || Ok(auth.alerts(user)?)).await?;
    render(&AlertsPage {
        frame: frame_for(&state, &session.0).await?,
        alerts: list
            .into_iter()
            .map(|a| AlertRow {
                when: date_time(a.time_micros),
                message: a.message,
            })
            .collect(),
    })
}
