//! First run, login (password, then TOTP or recovery code), TOTP enrolment, logout.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{anonymous_frame, blocking, see_other};
use crate::auth::{totp, AuthError, ClientInfo, Issued, PasswordConfirmed, Session};
use crate::index::SessionStage;
use crate::web::extract::{cookies, AnySession, Client, CsrfForm, Form};
use crate::web::view::{render, Frame};
use crate::web::{WebError, WebState};

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    frame: Frame,
    error: Option<String>,
    username: String,
    email: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    frame: Frame,
    error: Option<String>,
    username: String,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    frame: Frame,
    csrf: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    frame: Frame,
    csrf: String,
    secret: String,
    qr_svg: String,
    /// The owner reset this account's two-step verification: their one-time code is
    /// asked for too.
    needs_reset_code: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage {
    frame: Frame,
    codes: Vec<String>,
}

/// The status and message a failed step shows (never which part was wrong).
pub(super) fn failure(e: AuthError, now: i64) -> Result<(StatusCode, String), WebError> {
    let status = WebError::Auth(AuthError::InvalidCode).status();
    Ok(match e {
        AuthError::InvalidCredentials => (status, "Wrong user name or password.".into()),
        AuthError::InvalidCode => (status, "That code is not valid.".into()),
        AuthError::BadSetupCode => (status, "That setup code is not valid.".into()),
        AuthError::BadInvitation => (
            status,
            "This invitation is not valid: it was used, withdrawn or has expired. Ask for a new one."
                .into(),
        ),
        AuthError::Throttled {
            until_micros,
            blocked,
        } => {
            let secs = ((until_micros - now) / 1_000_000).max(1);
            let what = if blocked {
                "Too many failed attempts: logins are blocked for now."
            } else {
                "Too many failed attempts."
            };
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!("{what} Try again in {secs} s."),
            )
        }
        AuthError::WeakPassword(why) | AuthError::Invalid(why) => (StatusCode::BAD_REQUEST, why),
        other => return Err(WebError::Auth(other)),
    })
}

/// [`failure`] on a form of someone already logged in (their password or code asked
/// again): a wrong one is refused with 403, not 401, because the session stays.
pub(super) fn refused(e: AuthError, now: i64) -> Result<(StatusCode, String), WebError> {
    let (status, message) = failure(e, now)?;
    let status = if status == StatusCode::UNAUTHORIZED {
        StatusCode::FORBIDDEN
    } else {
        status
    };
    Ok((status, message))
}

/// The session's user's own password, typed again on a form that makes lasting access
/// (an invitation, support access, a share link), checked as the token form checks
/// it; or the status and message for that form's page: a missing or wrong password
/// is a 403 there, a throttled one a 429.
pub(super) async fn confirm_password(
    state: &WebState,
    session: &Session,
    client: &ClientInfo,
    password: String,
    what: &'static str,
) -> Result<Result<PasswordConfirmed, (StatusCode, String)>, WebError> {
    match state
        .auth
        .confirm_password(session, password, client, what)
        .await
    {
        Ok(confirmed) => Ok(Ok(confirmed)),
        Err(AuthError::InvalidCredentials) => Ok(Err((
            StatusCode::FORBIDDEN,
            format!("Wrong password: making {what} asks for your own password again."),
        ))),
        Err(e) => Ok(Err(refused(e, state.clock.now_micros())?)),
    }
}

pub(super) fn with_status(
    status: StatusCode,
    page: Result<Response, WebError>,
) -> Result<Response, WebError> {
    let mut r = page?;
    *r.status_mut() = status;
    Ok(r)
}

pub(super) fn issued_cookies(issued: &Issued) -> Vec<String> {
    let mut c = vec![cookies::session(&issued.session_id)];
    if let Some(d) = &issued.device_cookie {
        c.push(cookies::device(d));
    }
    c
}

/// The answer to a step that signs someone in (first-run setup, an accepted
/// invitation, login, the second factor): on to `next` with the new cookies, or the
/// form again, built by `again` from the page frame and what went wrong, with the
/// failure's status.
pub(super) fn signed_in<P: Template>(
    state: &WebState,
    result: Result<Issued, AuthError>,
    next: impl FnOnce(&Issued) -> &'static str,
    again: impl FnOnce(Frame, String) -> P,
) -> Result<Response, WebError> {
    match result {
        Ok(issued) => Ok(see_other(next(&issued), &issued_cookies(&issued))),
        Err(e) => {
            let (status, message) = failure(e, state.clock.now_micros())?;
            with_status(status, render(&again(anonymous_frame(state), message)))
        }
    }
}

fn next_step(stage: SessionStage) -> &'static str {
    match stage {
        SessionStage::Full => "/",
        SessionStage::Enrolment => "/enrol",
        SessionStage::SecondFactor => "/login/code",
    }
}

pub async fn setup_page(State(state): State<WebState>) -> Result<Response, WebError> {
    if !state.auth.needs_setup() {
        return Err(WebError::NotFound("setup is done".into()));
    }
    render(&SetupPage {
        frame: anonymous_frame(&state),
        error: None,
        username: String::new(),
        email: String::new(),
    })
}

#[derive(Deserialize)]
pub struct SetupForm {
    code: String,
    username: String,
    #[serde(default)]
    email: String,
    password: String,
}

pub async fn setup_submit(
    State(state): State<WebState>,
    Client(client): Client,
    Form(form): Form<SetupForm>,
) -> Result<Response, WebError> {
    if !state.auth.needs_setup() {
        return Err(WebError::NotFound("setup is done".into()));
    }
    let result = state
        .auth
        .setup_owner(
            &form.code,
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
        |frame, message| SetupPage {
            frame,
            error: Some(message),
            username: form.username,
            email: form.email,
        },
    )
}

pub async fn login_page(
    State(state): State<WebState>,
    AnySession(session): AnySession,
) -> Result<Response, WebError> {
    if state.auth.needs_setup() {
        return Ok(see_other("/setup", &[]));
    }
    if let Some(s) = session {
        return Ok(see_other(next_step(s.entry.stage), &[]));
    }
    render(&LoginPage {
        frame: anonymous_frame(&state),
        error: None,
        username: String::new(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

pub async fn login_submit(
    State(state): State<WebState>,
    Client(client): Client,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let result = state
        .auth
        .login(&form.username, form.password, &client)
        .await;
    signed_in(
        &state,
        result,
        |issued| next_step(issued.stage),
        |frame, message| LoginPage {
            frame,
            error: Some(message),
            username: form.username.chars().take(64).collect(),
        },
    )
}

pub async fn code_page(
    State(state): State<WebState>,
    AnySession(session): AnySession,
) -> Result<Response, WebError> {
    match session {
        Some(s) if s.entry.stage == SessionStage::SecondFactor => render(&CodePage {
            frame: anonymous_frame(&state),
            csrf: s.entry.csrf,
            error: None,
        }),
        Some(s) => Ok(see_other(next_step(s.entry.stage), &[])),
        None => Err(WebError::LoginRequired),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn code_submit(
    State(state): State<WebState>,
    AnySession(session): AnySession,
    Client(client): Client,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, WebError> {
    let Some(session) = session else {
        return Err(WebError::LoginRequired);
    };
    let result = state
        .auth
        .second_factor(&session, &form.code, &client)
        .await;
    if let Err(AuthError::WrongStage) = result {
        return Err(WebError::LoginRequired);
    }
    signed_in(
        &state,
        result,
        |_| "/",
        |frame, message| CodePage {
            frame,
            csrf: session.entry.csrf,
            error: Some(message),
        },
    )
}

pub(super) fn qr_svg(uri: &str) -> Result<String, WebError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| WebError::Internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    // Inline in the page: drop the XML declaration.
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_owned(),
        None => svg,
    })
}

/// Groups a base32 secret in fours for typing.
pub(super) fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn enrol_view(
    state: &WebState,
    session: Session,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (auth, s) = (state.auth.clone(), session.clone());
    let secret = blocking(move || Ok(auth.enrolment_secret(&s)?)).await?;
    let uri = totp::otpauth_uri(&secret, &session.user.username);
    render(&EnrolPage {
        frame: anonymous_frame(state),
        csrf: session.entry.csrf,
        secret: grouped(&secret),
        qr_svg: qr_svg(&uri)?,
        needs_reset_code: session.user.reenrolment.is_some(),
        error,
    })
}

pub async fn enrol_page(
    State(state): State<WebState>,
    AnySession(session): AnySession,
) -> Result<Response, WebError> {
    match session {
        Some(s) if s.entry.stage == SessionStage::Enrolment => enrol_view(&state, s, None).await,
        Some(s) => Ok(see_other(next_step(s.entry.stage), &[])),
        None => Err(WebError::LoginRequired),
    }
}

#[derive(Deserialize)]
pub struct EnrolForm {
    code: String,
    /// The owner's one-time code, asked for only after they reset two-step verification.
    #[serde(default)]
    reset_code: String,
}

pub async fn enrol_submit(
    State(state): State<WebState>,
    AnySession(session): AnySession,
    Client(client): Client,
    CsrfForm(form): CsrfForm<EnrolForm>,
) -> Result<Response, WebError> {
    let Some(session) = session else {
        return Err(WebError::LoginRequired);
    };
    match state
        .auth
        .finish_enrolment(&session, &form.code, &form.reset_code, &client)
        .await
    {
        Ok((issued, codes)) => {
            let mut r = render(&RecoveryPage {
                frame: anonymous_frame(&state),
                codes,
            })?;
            for c in issued_cookies(&issued) {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            Ok(r)
        }
        Err(AuthError::WrongStage) => Err(WebError::LoginRequired),
        Err(e) => {
            let (status, message) = failure(e, state.clock.now_micros())?;
            with_status(status, enrol_view(&state, session, Some(message)).await)
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(
    State(state): State<WebState>,
    AnySession(session): AnySession,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    if let Some(s) = session {
        // An unlocked end-to-end viewer key ends with the session.
        state.unlocked.lock(&s.key);
        let auth = state.auth.clone();
        blocking(move || Ok(auth.logout(&s)?)).await?;
    }
    Ok(see_other("/login", &[cookies::clear_session()]))
}
