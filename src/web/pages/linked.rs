//! The Linked services page (owner only): API tokens for integrations such as Home
//! Assistant or a doorbell button — list them with their scopes and times, make one
//! (its token is shown once, on the page that answers the form, and never again) and
//! revoke any one of them at once. Making one asks for the owner's password again
//! and alerts every owner: a token never expires, and outlives a password change and
//! "log out all".

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{blocking, frame_for, see_other};
use crate::auth::policy::{Action, Object};
use crate::index::{AuditKind, Scope, TokenEntry, TokenId};
use crate::web::extract::{Client, CsrfForm, FullSession};
use crate::web::view::{date_time, render, Frame};
use crate::web::{WebError, WebState};

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
}

pub struct ScopeChoice {
    pub value: &'static str,
    pub what: &'static str,
}

#[derive(Template)]
#[template(path = "linked_services.html")]
struct LinkedPage {
    frame: Frame,
    csrf: String,
    tokens: Vec<TokenRow>,
    scopes: Vec<ScopeChoice>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "linked_created.html")]
struct CreatedPage {
    frame: Frame,
    name: String,
    scopes: String,
    token: String,
}

fn what(scope: Scope) -> &'static str {
    match scope {
        Scope::EventsRead => "read events, and follow them as they happen",
        Scope::LiveRead => "watch live video",
        Scope::TriggerWrite => "trigger a camera's recording (a doorbell)",
    }
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn row(t: &TokenEntry) -> TokenRow {
    TokenRow {
        id: t.id.to_string(),
        name: t.name.clone(),
        scopes: scope_list(&t.scopes),
        created: date_time(t.created_micros),
        last_used: t.last_used_micros.map_or_else(|| "never".into(), date_time),
    }
}

/// The page, with an optional complaint about the form just sent.
async fn list(
    state: &WebState,
    session: &FullSession,
    error: Option<String>,
) -> Result<Response, WebError> {
    let auth = state.auth.clone();
    let tokens = blocking(move || Ok(auth.tokens()?)).await?;
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = render(&LinkedPage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        tokens: tokens.iter().map(row).collect(),
        scopes: Scope::ALL
            .into_iter()
            .map(|s| ScopeChoice {
                value: s.as_str(),
                what: what(s),
            })
            .collect(),
        error,
    })?;
    Ok((status, page).into_response())
}

pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ManageLinkedServices, Object::System)?;
    list(&state, &session, None).await
}

/// `name`, `password` (the owner's own, again) and any number of `scope` fields
/// (checkboxes), so the form is read as pairs rather than a struct.
pub async fn create(
    State(state): State<WebState>,
    session: FullSession,
    Client(client): Client,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    session.require(Action::ManageLinkedServices, Object::System)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (name, password) = (field("name"), field("password"));
    let mut scopes = Vec::new();
    for (_, v) in fields.iter().filter(|(k, _)| k == "scope") {
        let scope = v
            .parse::<Scope>()
            .map_err(|()| WebError::BadRequest(format!("unknown scope {v:?}")))?;
        scopes.push(scope);
    }
    let created = match state
        .auth
        .create_token_confirmed(&session.0, password, &client, &name, &scopes)
        .await
    {
        Ok(made) => Ok(made),
        // A wrong password: refused, but the session stays (as on Password).
        Err(e) => Err(super::account::refused(e, state.clock.now_micros())?),
    };
    match created {
        Ok((entry, token)) => {
            let subject = format!(
                "linked service {:?} ({})",
                entry.name,
                scope_list(&entry.scopes)
            );
            super::audit(&state, &session.0, AuditKind::TokenCreated, subject).await?;
            render(&CreatedPage {
                frame: frame_for(&state, &session.0).await?,
                name: entry.name.clone(),
                scopes: scope_list(&entry.scopes),
                token,
            })
        }
        Err((status, why)) => {
            let mut page = list(&state, &session, Some(why)).await?;
            *page.status_mut() = status;
            Ok(page)
        }
    }
}

#[derive(serde::Deserialize)]
pub struct RevokeForm {
    token: String,
}

pub async fn revoke(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<Response, WebError> {
    session.require(Action::ManageLinkedServices, Object::System)?;
    let id: TokenId = form
        .token
        .parse()
        .map_err(|()| WebError::NotFound("no such linked service".into()))?;
    let (auth, user) = (state.auth.clone(), session.0.user.id);
    if !blocking(move || Ok(auth.revoke_token(user, id)?)).await? {
        return Err(WebError::NotFound(format!("no linked service {id}")));
    }
    let subject = format!("linked service {id}");
    super::audit(&state, &session.0, AuditKind::TokenRevoked, subject).await?;
    Ok(see_other("/linked-services", &[]))
}
