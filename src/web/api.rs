//! The HTTP API for linked services (`/api/v1/...`): a doorbell trigger, the event
//! list, a server-sent-events stream of new events and a camera's current picture. Documented for users in the
//! README ("HTTP API for linked services").
//!
//! Only `Authorization: Bearer <token>` authenticates here. Cookies are ignored, so a
//! browser session (which a hostile page could ride) can never reach these routes;
//! that is also why they are outside the `Origin` check, which protects cookie-
//! authenticated forms. Every answer is JSON, errors included: 401 with
//! `WWW-Authenticate: Bearer` for a missing, unknown or revoked token, 403 for a
//! token without the scope, 429 with `Retry-After` for a minute to an address that
//! sent 10 bad or missing tokens within a minute (`api_throttle`). The token is never
//! logged: log lines name its id and name.
//!
//! Paths and query strings are read with the web layer's extractors taken as
//! `Result<_, WebError>`, so a malformed one is answered here as JSON (400), not
//! with the pages' HTML error.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRequestParts, OriginalUri, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::api_throttle::Log;
use super::client_addr::ClientAddr;
use super::extract::{Path, Query};
use super::pages::blocking;
use super::pages::snapshot::{camera_jpeg, jpeg_response, Source};
use super::{WebError, WebState};
use crate::auth::policy::{self, Action, Object};
use crate::auth::throttle::address_key;
use crate::index::{EventEntry, TokenEntry};
use crate::model::{CameraId, Trigger};
use crate::motion::snapshot;
use crate::recorder::{EventNotice, EventPhase};

/// Longest `Authorization` value looked at; a real token is 85 characters.
const MAX_TOKEN_CHARS: usize = 128;
/// Default and largest number of events `GET /api/v1/events` returns.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Default and longest recording a trigger asks for (plus the camera's pre- and
/// post-roll), in seconds.
const DEFAULT_TRIGGER_SECS: u64 = 10;
const MAX_TRIGGER_SECS: u64 = 300;
/// How often an idle event stream sends a comment, so proxies and clients see it
/// is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The API's routes, under `/api/v1`.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/cameras/{camera}/trigger", post(trigger))
        .route("/events", get(events))
        .route("/events/stream", get(stream))
        .route("/cameras/{camera}/snapshot.jpg", get(snapshot))
        // After every route: it applies to the routes registered before it.
        .method_not_allowed_fallback(|| async { ApiError(WebError::MethodNotAllowed) })
        .fallback(|| async { ApiError(WebError::NotFound("no such API route".into())) })
}

/// A [`WebError`] answered as JSON: the status from the one mapping, a generic
/// message, and `WWW-Authenticate: Bearer` on 401.
pub struct ApiError(pub WebError);

impl<E: Into<WebError>> From<E> for ApiError {
    fn from(e: E) -> ApiError {
        ApiError(e.into())
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: u16,
    message: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        self.0.log();
        let body = ErrorBody {
            error: status.as_u16(),
            message: super::error::public_text(status),
        };
        let mut response = (status, Json(body)).into_response();
        self.0.add_headers(&mut response);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"porchlight\""),
            );
        }
        response
    }
}

/// The linked service behind a request: a live token from the `Authorization`
/// header. Anything else (no header, another scheme, a cookie) is 401.
pub struct Bearer(pub TokenEntry);

impl Bearer {
    fn principal(&self) -> policy::Principal {
        policy::Principal::Token {
            id: self.0.id,
            scopes: self.0.scopes.clone(),
        }
    }

    /// Asks the authorisation rules; 403 unless allowed.
    fn require(&self, action: Action, object: Object<'_>) -> Result<(), ApiError> {
        if policy::allowed(&self.principal(), action, object) {
            Ok(())
        } else {
            tracing::warn!(token = %self.0.id, name = %self.0.name, ?action, ?object, "API: token lacks the scope");
            Err(ApiError(WebError::Forbidden))
        }
    }
}

/// The token in `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_CHARS)
        .then_some(token)
}

/// The path as the client sent it (a nested router sees it without `/api/v1`).
fn full_path(parts: &Parts) -> String {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.path().to_owned(), |u| u.path().to_owned())
}

/// The client's address as the bad-token throttle counts it (IPv6 by /64).
fn address_of(parts: &Parts) -> String {
    let ip = ClientAddr::of(&parts.extensions);
    address_key(ip).trim_start_matches("addr:").to_owned()
}

/// Logs a refusal as the throttle says: the first from an address, then at most
/// one line a minute with the count, so a guesser cannot flood the journal.
fn log_refusal(log: Log, address: &str, parts: &Parts, why: &str) {
    match log {
        Log::First => tracing::warn!(
            %address,
            path = %full_path(parts),
            "API: {why} (further refusals from this address are logged at most once a minute)"
        ),
        Log::Summary(count) => tracing::warn!(
            %address,
            count,
            "API: {count} token refusals from this address since the last line (now: {why})"
        ),
        Log::Quiet => {}
    }
}

/// Every bearer-token check passes here: an address blocked by
/// [`BadTokens`](super::api_throttle::BadTokens) is
/// refused (429, `Retry-After`) before its token is looked at; each bad or missing
/// token is counted against its address.
impl FromRequestParts<WebState> for Bearer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        let address = address_of(parts);
        let throttle = &state.bad_tokens;
        if let Some(blocked) = throttle.check(&address, state.clock.now_micros()) {
            log_refusal(
                blocked.log,
                &address,
                parts,
                "blocked after too many bad tokens",
            );
            return Err(ApiError(WebError::SlowDown {
                retry_after_secs: blocked.retry_after_secs,
            }));
        }
        let Some(raw) = bearer(parts).map(str::to_owned) else {
            let log = throttle.failed(&address, state.clock.now_micros());
            log_refusal(log, &address, parts, "no bearer token");
            return Err(ApiError(WebError::Unauthenticated));
        };
        let (auth, from) = (state.auth.clone(), ClientAddr::of(&parts.extensions));
        match blocking(move || Ok(auth.token(&raw, from)?)).await? {
            Some(entry) => Ok(Bearer(entry)),
            None => {
                let log = throttle.failed(&address, state.clock.now_micros());
                log_refusal(log, &address, parts, "unknown or revoked token refused");
                Err(ApiError(WebError::Unauthenticated))
            }
        }
    }
}

/// An event as the API shows it. Times are RFC 3339 (UTC).
#[derive(Serialize)]
pub struct ApiEvent {
    id: String,
    camera: String,
    /// `motion` if motion began it, else `trigger` (doorbell, API, live view).
    kind: &'static str,
    start: String,
    /// The end so far while `open` (it moves as the event goes on).
    end: String,
    open: bool,
    /// Every kind of trigger that contributed: `motion`, `external`, `live_view`.
    triggers: Vec<&'static str>,
    peak_score: f32,
    recordings: Vec<String>,
    has_thumbnail: bool,
}

fn rfc3339(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros).map_or_else(|_| String::new(), |t| t.to_string())
}

impl From<&EventEntry> for ApiEvent {
    fn from(e: &EventEntry) -> ApiEvent {
        ApiEvent {
            id: e.id.to_string(),
            camera: e.camera.to_string(),
            kind: kind_of(e),
            start: rfc3339(e.start_micros),
            end: rfc3339(e.end_micros),
            open: e.open,
            triggers: e.triggers.iter().map(|t| t.as_str()).collect(),
            peak_score: e.peak_score,
            recordings: e.recordings.iter().map(ToString::to_string).collect(),
            has_thumbnail: e.has_thumbnail,
        }
    }
}

/// The stream's event name: what began the event.
fn kind_of(e: &EventEntry) -> &'static str {
    match e.triggers.first() {
        Some(Trigger::Motion) => "motion",
        _ => "trigger",
    }
}

/// A camera name from a URL; an impossible name is 404 like an unknown one.
fn camera_from(raw: &str) -> Result<CameraId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError(WebError::NotFound(format!("no camera {raw:?}"))))
}

#[derive(Deserialize)]
pub struct TriggerQuery {
    seconds: Option<u64>,
}

#[derive(Serialize)]
struct Triggered {
    camera: String,
    seconds: u64,
    status: &'static str,
}

/// `POST /api/v1/cameras/{camera}/trigger[?seconds=N]`: the doorbell. Records from
/// the camera's pre-roll until `seconds` (default 10, at most 300) plus its post-roll
/// from now.
async fn trigger(
    State(state): State<WebState>,
    token: Bearer,
    camera: Result<Path<String>, WebError>,
    q: Result<Query<TriggerQuery>, WebError>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let Path(camera) = camera?;
    let camera = camera_from(&camera)?;
    token.require(Action::TriggerCamera, Object::Camera(&camera))?;
    let seconds = q.seconds.unwrap_or(DEFAULT_TRIGGER_SECS);
    if !(1..=MAX_TRIGGER_SECS).contains(&seconds) {
        return Err(ApiError(WebError::BadRequest(format!(
            "seconds must be 1–{MAX_TRIGGER_SECS}"
        ))));
    }
    (state.trigger)(&camera, Duration::from_secs(seconds))?;
    tracing::info!(token = %token.0.id, name = %token.0.name, camera = %camera, seconds, "API: camera triggered");
    let body = Triggered {
        camera: camera.to_string(),
        seconds,
        status: "accepted",
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /api/v1/cameras/{camera}/snapshot.jpg`: the camera's picture now, as JPEG
/// (scope `live:read`). The next keyframe of the main stream is decoded on its own,
/// so the answer takes up to one keyframe interval; 503 if the camera is not
/// streaming or sends no keyframe in time. Never cached.
async fn snapshot(
    State(state): State<WebState>,
    token: Bearer,
    camera: Result<Path<String>, WebError>,
) -> Result<Response, ApiError> {
    let Path(camera) = camera?;
    let camera = camera_from(&camera)?;
    token.require(Action::LiveView, Object::Camera(&camera))?;
    let jpeg = camera_jpeg(&state, &camera, Source::Main, snapshot::MAX_WIDTH).await?;
    tracing::info!(token = %token.0.id, name = %token.0.name, camera = %camera, bytes = jpeg.len(), "API: snapshot");
    Ok(jpeg_response(jpeg))
}

#[derive(Deserialize)]
pub struct EventsQuery {
    camera: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/events[?camera=&since=&limit=]`: the newest events first.
async fn events(
    State(state): State<WebState>,
    token: Bearer,
    q: Result<Query<EventsQuery>, WebError>,
) -> Result<Json<Vec<ApiEvent>>, ApiError> {
    token.require(Action::ReadEvents, Object::System)?;
    let Query(q) = q?;
    let camera = match &q.camera {
        Some(raw) => Some(camera_from(raw)?),
        None => None,
    };
    let since = match &q.since {
        Some(raw) => Some(
            raw.parse::<jiff::Timestamp>()
                .map_err(|e| WebError::BadRequest(format!("since: {e}")))?
                .as_microsecond(),
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError(WebError::BadRequest(format!(
            "limit must be 1–{MAX_LIMIT}"
        ))));
    }
    let index = state.index.clone();
    let rows = blocking(move || {
        Ok(index.newest_events(camera.as_ref(), since.unwrap_or(i64::MIN), limit)?)
    })
    .await?;
    Ok(Json(rows.iter().map(ApiEvent::from).collect()))
}

#[derive(Deserialize)]
pub struct StreamQuery {
    camera: Option<String>,
}

/// What the stream's loop carries from one message to the next.
struct Listener {
    rx: broadcast::Receiver<EventNotice>,
    state: WebState,
    token: TokenEntry,
    camera: Option<CameraId>,
    /// Every [`KEEP_ALIVE`] the token is asked about, so that a stream filtered to a
    /// quiet camera ends soon after revocation, not at that camera's next event.
    recheck: tokio::time::Interval,
}

/// Whether the listener's token still exists (revoked, or its user removed: no).
async fn token_live(l: &Listener) -> bool {
    let (index, id) = (l.state.index.clone(), l.token.id);
    let live = blocking(move || Ok(index.get_token(id)?.is_some()))
        .await
        .unwrap_or(false);
    if !live {
        tracing::info!(token = %l.token.id, "API: event stream ended: token revoked");
    }
    live
}

/// `GET /api/v1/events/stream[?camera=]`: server-sent events, one `event: motion` or
/// `event: trigger` message (data: the event as JSON, id: the event id) per event
/// that begins after connecting. Ends at shutdown, and at the next event or within
/// [`KEEP_ALIVE`] after the token is revoked.
async fn stream(
    State(state): State<WebState>,
    token: Bearer,
    q: Result<Query<StreamQuery>, WebError>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    token.require(Action::ReadEvents, Object::System)?;
    let Query(q) = q?;
    let camera = match &q.camera {
        Some(raw) => Some(camera_from(raw)?),
        None => None,
    };
    tracing::info!(token = %token.0.id, name = %token.0.name, "API: event stream opened");
    let mut recheck = tokio::time::interval(KEEP_ALIVE);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.reset();
    let listener = Listener {
        rx: state.events.subscribe(),
        state,
        token: token.0,
        camera,
        recheck,
    };
    let events = futures::stream::unfold(listener, |mut l| async move {
        let event = next_message(&mut l).await?;
        Some((Ok(event), l))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// The next message for a listener, or `None` when its stream is to end.
async fn next_message(l: &mut Listener) -> Option<Event> {
    let mut shutdown = l.state.shutdown.clone();
    loop {
        let notice = tokio::select! {
            n = l.rx.recv() => n,
            _ = l.recheck.tick() => {
                if !token_live(l).await {
                    return None;
                }
                continue;
            }
            _ = super::stopped(&mut shutdown) => return None,
        };
        let notice = match notice {
            Ok(n) => n,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(token = %l.token.id, lost = n, "API: event stream fell behind");
                return Some(Event::default().comment(format!("{n} events were missed")));
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        if notice.phase != EventPhase::Started
            || l.camera.as_ref().is_some_and(|c| *c != notice.event.camera)
        {
            continue;
        }
        // A revoked token (or a removed user's) gets nothing more.
        if !token_live(l).await {
            return None;
        }
        let body = ApiEvent::from(&notice.event);
        return match Event::default()
            .event(body.kind)
            .id(body.id.clone())
            .json_data(&body)
        {
            Ok(event) => Some(event),
            Err(e) => {
                tracing::error!("API: cannot encode an event: {e}");
                None
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventId, RecordingId};

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header_only() {
        let parts = |value: Option<&'static str>| {
            let mut b = axum::http::Request::builder().uri("/api/v1/events");
            if let Some(v) = value {
                b = b.header("authorization", v);
            }
            b.header("cookie", "__Host-porchlight=abc")
                .body(())
                .expect("request")
                .into_parts()
                .0
        };
        assert_eq!(bearer(&parts(Some("Bearer plt_x"))), Some("plt_x"));
        assert_eq!(bearer(&parts(Some("bearer  plt_x "))), Some("plt_x"));
        assert_eq!(bearer(&parts(Some("Basic dXNlcjpwdw=="))), None);
        assert_eq!(bearer(&parts(Some("Bearer "))), None);
        assert_eq!(bearer(&parts(None)), None, "a cookie is not a token");
        let long: &'static str = Box::leak(format!("Bearer {}", "a".repeat(200)).into_boxed_str());
        assert_eq!(bearer(&parts(Some(long))), None);
    }

    #[test]
    fn events_are_shown_with_rfc3339_times_and_their_kind() {
        let e = EventEntry {
            id: EventId(0xab),
            camera: "porch".parse().expect("name"),
            start_micros: 1_795_600_800_000_000,
            end_micros: 1_795_600_812_500_000,
            triggers: vec![Trigger::External, Trigger::Motion],
            peak_score: 0.5,
            score_curve: vec![],
            has_thumbnail: false,
            recordings: vec![RecordingId(1)],
            open: false,
        };
        let json = serde_json::to_value(ApiEvent::from(&e)).expect("json");
        assert_eq!(json["id"], "00000000000000ab");
        assert_eq!(json["kind"], "trigger");
        assert_eq!(json["start"], "2026-11-25T10:00:00Z");
        assert_eq!(json["end"], "2026-11-25T10:00:12.5Z");
        assert_eq!(json["triggers"][1], "motion");
        assert_eq!(json["recordings"][0], "0000000000000001");
    }
}
