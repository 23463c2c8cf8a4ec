//! Users (the owner): who has an account, pending invitations, invite (with the
//! owner's password again: the account outlives "log out all"), remove, reset
//! someone's two-step verification; and
//! the public invitation page where an invitee creates their shared account.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::account::{confirm_password, signed_in, with_status};
use super::shares::host_of;
use super::{anonymous_frame, blocking, frame_for, see_other};
use crate::auth::policy::{Action, Object};
use crate::index::{Role, UserId};
use crate::web::extract::{Client, CsrfForm, Form, FullSession, Path};
use crate::web::view::{self, render, Frame};
use crate::web::{WebError, WebState};

pub struct UserRow {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub two_step: bool,
    /// Reset, and not enrolled again yet: the owner may issue another code (one lost
    /// or expired would otherwise leave only "Remove").
    pub reset_pending: bool,
    pub created: String,
    pub removable: bool,
}

pub struct InvitationRow {
    pub handle: String,
    pub note: String,
    pub created: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    frame: Frame,
    csrf: String,
    users: Vec<UserRow>,
    invitations: Vec<InvitationRow>,
    /// The link of an invitation just made (shown once).
    new_link: Option<String>,
    /// Why the invitation form was refused (a wrong password).
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    frame: Frame,
    error: Option<String>,
    username: String,
    email: String,
}

async fn users_page(
    state: &WebState,
    session: &FullSession,
    new_link: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (index, auth) = (state.index.clone(), state.auth.clone());
    let (users, invitations) =
        blocking(move || Ok((index.all_users()?, auth.invitations()?))).await?;
    let page = render(&UsersPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        users: users
            .into_iter()
            .map(|u| UserRow {
                reset_pending: u.two_step_reset(),
                id: u.id.to_string(),
                name: u.username,
                role: u.role.label(),
                two_step: u.totp.is_some(),
                created: view::date_time(u.created_micros),
                removable: u.role != Role::Owner,
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|i| InvitationRow {
                handle: i.handle,
                note: i.note,
                created: view::date_time(i.created_micros),
                expires: view::date_time(i.expires_micros),
            })
            .collect(),
        new_link,
        error,
    })?;
    Ok(super::shares::no_store(page))
}

pub async fn list(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ManageUsers, Object::System)?;
    users_page(&state, &session, None, None).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    note: String,
    /// The owner's own password, again: the account an invitation makes outlives
    /// "log out all" and a password change.
    #[serde(default)]
    password: String,
}

pub async fn invite(
    State(state): State<WebState>,
    session: FullSession,
    Client(client): Client,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<Response, WebError> {
    session.require(Action::ManageUsers, Object::System)?;
    let confirmed = match confirm_password(
        &state,
        &session.0,
        &client,
        form.password,
        "an invitation",
    )
    .await?
    {
        Ok(confirmed) => confirmed,
        Err((status, why)) => {
            return with_status(status, users_page(&state, &session, None, Some(why)).await)
        }
    };
    let (auth, owner) = (state.auth.clone(), session.0.clone());
    let secret = blocking(move || Ok(auth.invite(&owner, &confirmed, &form.note)?)).await?;
    let link = format!("https://{}/invite#{secret}", host_of(&headers));
    users_page(&state, &session, Some(link), None).await
}

#[derive(Deserialize)]
pub struct HandleForm {
    handle: String,
}

pub async fn revoke_invitation(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<HandleForm>,
) -> Result<Response, WebError> {
    session.require(Action::ManageUsers, Object::System)?;
    let (auth, owner) = (state.auth.clone(), session.0.clone());
    if !blocking(move || Ok(auth.revoke_invitation(&owner, &form.handle)?)).await? {
        return Err(WebError::NotFound("no such invitation".into()));
    }
    Ok(see_other("/users", &[]))
}

#[derive(Deserialize)]
pub struct Empty {}

/// A user id from a path (16 hex digits), or 404.
fn user_id(raw: &str) -> Result<UserId, WebError> {
    (raw.len() == 16)
        .then(|| u64::from_str_radix(raw, 16).ok())
        .flatten()
        .map(UserId)
        .ok_or_else(|| WebError::NotFound("no such user".into()))
}

/// The owner's one-time re-enrolment code after a reset (shown once).
#[derive(Template)]
#[template(path = "reset_code.html")]
struct ResetCodePage {
    frame: Frame,
    username: String,
    code: String,
    expires: String,
}

/// `POST /users/{id}/reset-two-step`: the user's authenticator and recovery codes are
/// deleted and their sessions end; the answer shows the owner, once, the one-time code
/// the user needs besides their password to enrol again.
pub async fn reset_two_step(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    session.require(Action::ManageUsers, Object::System)?;
    let id = user_id(&id)?;
    let (auth, owner) = (state.auth.clone(), session.0.clone());
    let Some(reset) = blocking(move || Ok(auth.reset_two_step(&owner, id)?)).await? else {
        return Err(WebError::NotFound("no such user".into()));
    };
    // Their sessions ended; so does any end-to-end key they had unlocked.
    state.unlocked.lock_user(id);
    let page = render(&ResetCodePage {
        frame: frame_for(&state, &session.0).await?,
        username: reset.username,
        code: reset.code,
        expires: view::date_time(reset.expires_micros),
    })?;
    Ok(super::shares::no_store(page))
}

pub async fn remove(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    session.require(Action::ManageUsers, Object::System)?;
    let id = user_id(&id)?;
    let (auth, owner) = (state.auth.clone(), session.0.clone());
    if !blocking(move || Ok(auth.remove_user(&owner, id)?)).await? {
        return Err(WebError::NotFound("no such user".into()));
    }
    // Their sessions are gone; so is any end-to-end key they had unlocked.
    state.unlocked.lock_user(id);
    Ok(see_other("/users", &[]))
}

pub async fn invite_page(State(state): State<WebState>) -> Result<Response, WebError> {
    render(&InvitePage {
        frame: anonymous_frame(&state),
        error: None,
        username: String::new(),
        email: String::new(),
    })
}

#[derive(Deserialize)]
pub struct AcceptForm {
    invitation: String,
    username: String,
    #[serde(default)]
    email: String,
    password: String,
}

pub async fn invite_submit(
    State(state): State<WebState>,
    Client(client): Client,
    Form(form): Form<AcceptForm>,
) -> Result<Response, WebError> {
    let result = state
        .auth
        .accept_invitation(
            &form.invitation,
            &form.username,
            form.password,
            &form.email,
            &client,
        )
        .await;
    signed_in(
        &state,
        result,
        |_| "/enrol",
        |frame, message| InvitePage {
            frame,
            error: Some(message),
            username: form.username,
            email: form.email,
        },
    )
}
