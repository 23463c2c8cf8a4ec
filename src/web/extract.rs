//! Extractors: who the client is ([`Client`]), which session it holds
//! ([`FullSession`], [`AnySession`]), forms that must carry the session's CSRF
//! token ([`CsrfForm`]), and [`Form`], [`Query`] and [`Path`]: axum's, whose
//! rejections become [`WebError`]s. Cookies are read here and written by [`cookies`].
//!
//! Handlers take their input only through these: axum's own rejections answer in
//! plain text naming the deserializer ("Failed to deserialize form body: ..."), and
//! sometimes 415 or 422; ours answer every malformed input (a missing field, a
//! non-number, a wrong content type, a body that is not urlencoded, a path that is
//! not UTF-8) with 400 and the generic error page, or the API's JSON error, and log
//! the detail.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::audit_once::Subject;
use super::client_addr::ClientAddr;
use super::pages::blocking;
use super::{WebError, WebState};
use crate::auth::{policy, session_actor, ClientInfo, Session};
use crate::index::{AuditKind, Role, SessionStage};

pub const SESSION_COOKIE: &str = "__Host-porchlight";
pub const DEVICE_COOKIE: &str = "__Host-porchlight-device";

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_in(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

/// The value of cookie `name` in `Cookie` header values (the first occurrence counts):
/// `None` if absent, empty or longer than 128 bytes. Public so it can be fuzzed
/// (`tests/fuzz`); the result is always a non-empty slice of one header value.
pub fn cookie_in<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// `Set-Cookie` values.
pub mod cookies {
    use super::{DEVICE_COOKIE, SESSION_COOKIE};

    /// The session cookie: no `Max-Age` (it dies with the browser session; the server
    /// enforces idle and absolute timeouts anyway).
    pub fn session(id: &str) -> String {
        format!("{SESSION_COOKIE}={id}; Secure; HttpOnly; SameSite=Strict; Path=/")
    }

    pub fn clear_session() -> String {
        format!("{SESSION_COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    }

    /// The device cookie: recognises a browser that logged in before (new-device alerts,
    /// per-device throttling). 400 days, the most browsers keep.
    pub fn device(id: &str) -> String {
        format!("{DEVICE_COOKIE}={id}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=34560000")
    }
}

/// What the client presented: address (see [`ClientAddr`]), User-Agent, device cookie.
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, WebError> {
        let ip = ClientAddr::of(&parts.extensions);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(512)
            .collect();
        Ok(Client(ClientInfo {
            ip,
            user_agent,
            device: cookie(&parts.headers, DEVICE_COOKIE).map(str::to_owned),
        }))
    }
}

async fn lookup(parts: &mut Parts, state: &WebState) -> Result<Option<Session>, WebError> {
    if let Some(s) = parts.extensions.get::<Session>() {
        return Ok(Some(s.clone()));
    }
    let Some(id) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
        return Ok(None);
    };
    let (auth, from) = (state.auth.clone(), ClientAddr::of(&parts.extensions));
    let session = tokio::task::spawn_blocking(move || auth.session(&id, from))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))??;
    if let Some(s) = &session {
        parts.extensions.insert(s.clone());
    }
    Ok(session)
}

/// A fully logged-in session. Without one, pages redirect: to setup (no owner yet),
/// to the login, or to the pending step of a half-finished login (so TOTP enrolment
/// comes before any other page).
pub struct FullSession(pub Session);

impl FullSession {
    pub fn principal(&self) -> policy::Principal {
        self.0.principal()
    }

    /// Asks the authorisation rules; `Forbidden` unless allowed.
    pub fn require(
        &self,
        action: policy::Action,
        object: policy::Object<'_>,
    ) -> Result<(), WebError> {
        if policy::allowed(&self.principal(), action, object) {
            Ok(())
        } else {
            tracing::warn!(user = %self.0.user.id, ?action, ?object, "authorisation refused");
            Err(WebError::Forbidden)
        }
    }
}

impl FromRequestParts<WebState> for FullSession {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        match lookup(parts, state).await? {
            Some(s) if s.entry.stage == SessionStage::Full => {
                if s.user.role == Role::Support {
                    support_action(parts, state, &s).await;
                }
                Ok(FullSession(s))
            }
            Some(s) if s.entry.stage == SessionStage::Enrolment => {
                Err(WebError::Continue("/enrol"))
            }
            Some(_) => Err(WebError::Continue("/login/code")),
            None if state.auth.needs_setup() => Err(WebError::Continue("/setup")),
            None => Err(WebError::LoginRequired),
        }
    }
}

/// Writes what a support helper does to the owner's log: the path of the first
/// request of each kind (method and route) per session and address within
/// [`super::audit_once::EXPIRY_MICROS`] (see [`super::audit_once`]), so a helper's script
/// cannot grow the log, which is never pruned, at request rate.
async fn support_action(parts: &Parts, state: &WebState, s: &Session) {
    let actor = session_actor(s);
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or("(no route)", MatchedPath::as_str);
    let key = (
        s.key,
        actor.address,
        Subject::request(&format!("{} {route}", parts.method)),
        AuditKind::SupportAction,
    );
    let (log, what) = (
        state.auth.audit().clone(),
        format!("{} {}", parts.method, parts.uri.path()),
    );
    // A failed write is logged by `record_checked` and does not fail the request.
    let write = blocking(move || Ok(log.record_checked(AuditKind::SupportAction, &actor, what)));
    let now = state.clock.now_micros();
    let _ = state.audited_once.write_once(key, now, write).await;
}

/// Whether the session `key` may still do `action` on `object`: asked by responses
/// that stay open (live view, the notices stream), so that logging out, "log out all",
/// an expired session, a removed user or withdrawn rights also end what that session
/// had open. Not a use of the session (see [`crate::auth::Auth::still_live`]). An
/// index error counts as no: the page reconnects and is asked again.
pub async fn still_allowed(
    state: &WebState,
    key: [u8; 32],
    action: policy::Action,
    object: policy::Object<'_>,
) -> bool {
    let auth = state.auth.clone();
    let fresh = tokio::task::spawn_blocking(move || auth.still_live(&key))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    allowed_now(fresh, action, object)
}

/// [`still_allowed`] for a bounded body produced on a blocking thread (a download,
/// the export of everything), which asks before each piece it sends. Unlike an open
/// page it does not end when the session goes idle (see
/// [`crate::auth::Auth::still_open`]): a long transfer must be able to finish.
pub fn still_allowed_blocking(
    auth: &crate::auth::Auth,
    key: [u8; 32],
    action: policy::Action,
    object: policy::Object<'_>,
) -> bool {
    allowed_now(
        auth.still_open(&key).map_err(|e| e.to_string()),
        action,
        object,
    )
}

fn allowed_now(
    fresh: Result<Option<Session>, String>,
    action: policy::Action,
    object: policy::Object<'_>,
) -> bool {
    match fresh {
        Ok(Some(session)) => policy::allowed(&session.principal(), action, object),
        Ok(None) => false,
        Err(e) => {
            tracing::warn!("web: cannot check an open page's session: {e}");
            false
        }
    }
}

/// Any session, including a half-finished login.
pub struct AnySession(pub Option<Session>);

impl FromRequestParts<WebState> for AnySession {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        Ok(AnySession(lookup(parts, state).await?))
    }
}

/// Malformed input, as the one error type: 413 stays 413 (the body limit), every
/// other rejection is 400. `what` and axum's text go to the log only.
fn malformed(what: &str, status: StatusCode, detail: String) -> WebError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        WebError::TooLarge
    } else {
        WebError::BadRequest(format!("{what}: {detail}"))
    }
}

/// A form body (`application/x-www-form-urlencoded`), for the forms sent before a
/// session exists (setup, login, invitation, share link); [`CsrfForm`] otherwise.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = WebError;
    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(form)) => Ok(Form(form)),
            Err(e) => Err(malformed("form", e.status(), e.body_text())),
        }
    }
}

/// The query string, deserialized.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(Query(q)),
            Err(e) => Err(malformed("query", e.status(), e.body_text())),
        }
    }
}

/// The route's path parameters, deserialized (a parameter that is not UTF-8 once
/// percent-decoded is refused here).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(p)) => Ok(Path(p)),
            Err(e) => Err(malformed("path", e.status(), e.body_text())),
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`) whose `csrf` field must equal the
/// session's token. Use after a session extractor.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<WebState> for CsrfForm<T> {
    type Rejection = WebError;
    async fn from_request(req: Request, state: &WebState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let session = lookup(&mut parts, state).await?.ok_or(WebError::Csrf)?;
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(WebError::BadRequest("expected a form".into()));
        }
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| malformed("form", e.status(), e.body_text()))?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        let token = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_bytes())
            .unwrap_or_default();
        if token.is_empty() || !bool::from(token.ct_eq(session.entry.csrf.as_bytes())) {
            return Err(WebError::Csrf);
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        Ok(CsrfForm(form))
    }
}
