//! The web layer's one error type and the one place it becomes a status code.
//! Clients get a generic page; the detail (camera, recording id, cause) goes to the
//! log, never to the client, and never holds a secret.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::auth::AuthError;
use crate::export::ExportError;
use crate::index::IndexError;
use crate::recorder::TriggerError;
use crate::share::ShareError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The server could not start (certificate, listener).
    #[error("web UI cannot start: {0}")]
    Start(String),
    /// Not logged in (or the session expired): go to the login page.
    #[error("login required")]
    LoginRequired,
    /// A half-finished login: this page is where it continues.
    #[error("continue at {0}")]
    Continue(&'static str),
    /// The API's answer to a missing, unknown or revoked token (never a redirect).
    #[error("API token missing, unknown or revoked")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    #[error("cross-site request refused")]
    CrossSite,
    #[error("form token missing or wrong")]
    Csrf,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body too large")]
    TooLarge,
    /// The path exists but not for this method (a GET on a form's POST-only
    /// address); axum adds the `Allow` header naming the methods that do work.
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("range not satisfiable (length {len})")]
    RangeNotSatisfiable { len: u64 },
    /// The request is valid but the thing is in the wrong state (a camera that does
    /// not record).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Try again soon (a recorder too busy to take a trigger).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A per-session or per-client limit is reached (open live views).
    #[error("too many: {0}")]
    TooMany(String),
    /// Refused without a look until the client's block ends (too many bad API
    /// tokens from its address); answered with `Retry-After`.
    #[error("blocked for {retry_after_secs} s more")]
    SlowDown { retry_after_secs: u64 },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Share(#[from] ShareError),
    /// An end-to-end encrypted recording asked for by a session that has not
    /// unlocked its viewer key (or whose unlock timed out).
    #[error("end-to-end encrypted recording {0}: the session is locked")]
    Locked(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    /// The one mapping from error kinds to HTTP status codes.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::LoginRequired | WebError::Continue(_) => StatusCode::SEE_OTHER,
            WebError::Unauthenticated => StatusCode::UNAUTHORIZED,
            WebError::Forbidden | WebError::CrossSite | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            WebError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Locked(_) => StatusCode::LOCKED,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::TooMany(_) | WebError::SlowDown { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Auth(a) => match a {
                AuthError::InvalidCredentials
                | AuthError::InvalidCode
                | AuthError::BadSetupCode
                | AuthError::BadInvitation => StatusCode::UNAUTHORIZED,
                AuthError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                AuthError::SetupDone => StatusCode::NOT_FOUND,
                AuthError::WeakPassword(_) | AuthError::Invalid(_) => StatusCode::BAD_REQUEST,
                AuthError::WrongStage => StatusCode::SEE_OTHER,
                AuthError::Index(_) | AuthError::Sealing(_) | AuthError::Internal(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            WebError::Share(s) => match s {
                ShareError::NotFound
                | ShareError::NoSuchRecording(_)
                | ShareError::NoSuchEvent(_) => StatusCode::NOT_FOUND,
                ShareError::Throttled { .. } | ShareError::TooManyViewers { .. } => {
                    StatusCode::TOO_MANY_REQUESTS
                }
                ShareError::NotFinished(_)
                | ShareError::EventNotFinished(_)
                | ShareError::Invalid(_)
                | ShareError::Export(
                    ExportError::MixedParameters { .. }
                    | ExportError::NothingInSpan { .. }
                    | ExportError::NotFinished(_),
                ) => StatusCode::BAD_REQUEST,
                ShareError::Index(_) | ShareError::Store(_) | ShareError::Export(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            WebError::Start(_)
            | WebError::Index(_)
            | WebError::Store(_)
            | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Adds the headers an error carries besides its status and body:
    /// `Content-Range` for an unsatisfiable range, `Retry-After` for a block.
    pub fn add_headers(&self, response: &mut Response) {
        let value = match self {
            WebError::RangeNotSatisfiable { len } => {
                Some((header::CONTENT_RANGE, format!("bytes */{len}")))
            }
            WebError::SlowDown { retry_after_secs } => {
                Some((header::RETRY_AFTER, retry_after_secs.to_string()))
            }
            _ => None,
        };
        if let Some((name, value)) = value {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
    }

    fn location(&self) -> Option<&'static str> {
        match self {
            WebError::LoginRequired | WebError::Auth(AuthError::WrongStage) => Some("/login"),
            WebError::Continue(to) => Some(to),
            _ => None,
        }
    }
}

impl From<TriggerError> for WebError {
    fn from(e: TriggerError) -> WebError {
        match e {
            TriggerError::NoSuchCamera(_) => WebError::NotFound(e.to_string()),
            TriggerError::NotRecording(_) => WebError::Conflict(e.to_string()),
            TriggerError::Busy(_) => WebError::Unavailable(e.to_string()),
        }
    }
}

impl WebError {
    /// Logs the detail at a level fitting the status (server faults are errors,
    /// refusals warnings, the rest debug; a busy recorder is not a fault).
    pub fn log(&self) {
        let status = self.status();
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!("web: {self}");
        } else if status == StatusCode::FORBIDDEN {
            tracing::warn!("web: refused: {self}");
        } else {
            tracing::debug!("web: {self}");
        }
    }
}

/// What a client is told for a status: generic, never the detail.
pub fn public_text(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Not found.",
        StatusCode::FORBIDDEN => "This is not allowed.",
        StatusCode::BAD_REQUEST => "The request was not understood.",
        StatusCode::RANGE_NOT_SATISFIABLE => "Range not satisfiable.",
        StatusCode::PAYLOAD_TOO_LARGE => "The request is too large.",
        StatusCode::METHOD_NOT_ALLOWED => "This address does not take that kind of request.",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts; wait and try again.",
        StatusCode::UNAUTHORIZED => "Not accepted.",
        StatusCode::CONFLICT => "Not possible in the current state.",
        StatusCode::SERVICE_UNAVAILABLE => "Busy; try again shortly.",
        StatusCode::LOCKED => {
            "This recording is end-to-end encrypted: unlock to view it, with your \
             end-to-end passphrase or recovery key."
        }
        _ => "Something went wrong; the details are in the daemon's log.",
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        self.log();
        let mut response = if let Some(to) = self.location() {
            let mut r = status.into_response();
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static(to));
            r
        } else {
            let text = public_text(status);
            let page = format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} · Porchlight</title>\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                 <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"narrow\">\
                 <h1>{code}</h1><p>{text}</p>{unlock}<p><a href=\"/\">Back to Porchlight</a></p></main></body></html>",
                code = status.as_u16(),
                unlock = if status == StatusCode::LOCKED {
                    "<p><a href=\"/end-to-end\" id=\"unlock-to-view\">Unlock to view</a></p>"
                } else {
                    ""
                }
            );
            (status, Html(page)).into_response()
        };
        self.add_headers(&mut response);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_statuses_and_bodies_hide_details() {
        assert_eq!(WebError::Csrf.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            WebError::Auth(AuthError::Throttled {
                until_micros: 0,
                blocked: true
            })
            .status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        let r = WebError::Internal("secret path /var/x".into()).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = WebError::LoginRequired.into_response();
        assert_eq!(r.headers()["location"], "/login");
        let r = WebError::RangeNotSatisfiable { len: 10 }.into_response();
        assert_eq!(r.headers()["content-range"], "bytes */10");
        let r = WebError::SlowDown {
            retry_after_secs: 42,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "42");
    }
}
