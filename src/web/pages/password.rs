//! Changing one's own password. Other browsers of the account are logged out and the
//! user gets a security notice (shown and mailed).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::account::{refused, with_status};
use super::frame_for;
use crate::auth::policy::{Action, Object};
use crate::web::extract::{Client, CsrfForm, FullSession};
use crate::web::view::{render, Frame};
use crate::web::{WebError, WebState};

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    frame: Frame,
    csrf: String,
    error: Option<String>,
    /// Set after a change: how many other devices were logged out.
    done: Option<usize>,
}

async fn page_with(
    state: &WebState,
    session: &FullSession,
    error: Option<String>,
    done: Option<usize>,
) -> Result<Response, WebError> {
    render(&PasswordPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        error,
        done,
    })
}

pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ChangeOwnPassword, Object::User(session.0.user.id))?;
    page_with(&state, &session, None, None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
}

pub async fn change(
    State(state): State<WebState>,
    session: FullSession,
    Client(client): Client,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, WebError> {
    session.require(Action::ChangeOwnPassword, Object::User(session.0.user.id))?;
    match state
        .auth
        .change_password(&session.0, form.current, form.new, &client)
        .await
    {
        Ok(ended) => {
            // The other sessions ended: so do the end-to-end keys they had unlocked.
            state
                .unlocked
                .lock_user_except(session.0.user.id, &session.0.key);
            page_with(&state, &session, None, Some(ended)).await
        }
        Err(e) => {
            // A wrong current password: refused, but the session stays.
            let (status, message) = refused(e, state.clock.now_micros())?;
            with_status(
                status,
                page_with(&state, &session, Some(message), None).await,
            )
        }
    }
}
