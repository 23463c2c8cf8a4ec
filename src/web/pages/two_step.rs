//! Setting up one's own two-step verification again (`/account/two-step`): the new
//! seed as a QR code like at enrolment, confirmed with the current password, a code
//! from the old app (or a recovery code) and a code from the new app; then the new
//! recovery codes, once. The rules and the security notice are `auth::two_step`'s.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::account::{grouped, qr_svg, refused, with_status};
use super::{blocking, frame_for};
use crate::auth::policy::{Action, Object};
use crate::auth::{totp, AuthError};
use crate::web::extract::{Client, CsrfForm, FullSession};
use crate::web::view::{render, Frame};
use crate::web::{WebError, WebState};

#[derive(Template)]
#[template(path = "two_step.html")]
struct TwoStepPage {
    frame: Frame,
    csrf: String,
    secret: String,
    qr_svg: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "two_step_done.html")]
struct DonePage {
    frame: Frame,
    codes: Vec<String>,
    ended: usize,
}

async fn page_with(
    state: &WebState,
    session: &FullSession,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (auth, s) = (state.auth.clone(), session.0.clone());
    let secret = blocking(move || Ok(auth.reenrolment_secret(&s)?)).await?;
    let uri = totp::otpauth_uri(&secret, &session.0.user.username);
    let page = render(&TwoStepPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        secret: grouped(&secret),
        qr_svg: qr_svg(&uri)?,
        error,
    })?;
    Ok(super::shares::no_store(page))
}

pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ChangeOwnTwoStep, Object::User(session.0.user.id))?;
    page_with(&state, &session, None).await
}

#[derive(Deserialize)]
pub struct ReenrolForm {
    password: String,
    /// From the current app, or a recovery code.
    old_code: String,
    /// From the new app.
    new_code: String,
}

pub async fn reenrol(
    State(state): State<WebState>,
    session: FullSession,
    Client(client): Client,
    CsrfForm(form): CsrfForm<ReenrolForm>,
) -> Result<Response, WebError> {
    session.require(Action::ChangeOwnTwoStep, Object::User(session.0.user.id))?;
    let result = state
        .auth
        .reenrol(
            &session.0,
            form.password,
            form.old_code,
            form.new_code,
            &client,
        )
        .await;
    match result {
        Ok(done) => {
            // The other sessions ended: so do the end-to-end keys they had unlocked.
            state
                .unlocked
                .lock_user_except(session.0.user.id, &session.0.key);
            let page = render(&DonePage {
                frame: frame_for(&state, &session.0).await?,
                codes: done.codes,
                ended: done.ended,
            })?;
            Ok(super::shares::no_store(page))
        }
        Err(AuthError::WrongStage) => Err(WebError::BadRequest(
            "this page is out of date; open it again".into(),
        )),
        Err(e) => {
            // A wrong password or code: refused, but the session stays.
            let (status, message) = refused(e, state.clock.now_micros())?;
            with_status(status, page_with(&state, &session, Some(message)).await)
        }
    }
}
