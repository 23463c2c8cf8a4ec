//! Share links in the UI: making one from a recording's page or an event's row (the
//! owner, who types their password again: a link outlives "log out all"), Shared
//! Video Management (list and unshare), and the public link page with its video.
//!
//! The public routes (`/s/{link}…`) need no account. The page itself is the same for
//! every link id, existing or not; its script posts the URL fragment's secret to
//! `/s/{link}/open`, which answers with a viewer cookie scoped to `/s/{link}`. The
//! video routes accept only that cookie and serve only that link's copy.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::events::event_of;
use super::recordings::entry_of;
use super::{anonymous_frame, blocking, frame_for, see_other};
use crate::auth::policy::{self, Action, Object, Principal};
use crate::auth::{session_actor, throttle, ClientInfo};
use crate::index::AlertKind;
use crate::model::{CameraId, EventId, RecordingId};
use crate::share::{parse_link_id, VIEWER_LIFETIME};
use crate::store::e2e::ViewerSecret;
use crate::store::mp4::ProgressiveMp4;
use crate::web::api_throttle::Log;
use crate::web::extract::{cookie, Client, CsrfForm, Form, FullSession, Path};
use crate::web::playback::{build_layout, mp4_response, requested_range, Opener, StillAllowed};
use crate::web::view::{self, render, Frame};
use crate::web::{WebError, WebState};

/// The viewer cookie (per link: its path is the link's).
pub const VIEWER_COOKIE: &str = "__Secure-porchlight-share";

#[derive(Deserialize)]
pub struct ShareForm {
    hours: String,
    #[serde(default)]
    views: String,
    /// The owner's own password, again: a link outlives "log out all" and a
    /// password change.
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "share_created.html")]
struct CreatedPage {
    frame: Frame,
    link: String,
    expires: String,
    views: String,
}

pub struct ShareRow {
    pub id: String,
    pub camera: String,
    pub when: String,
    pub duration: String,
    pub recording: String,
    /// The event whose clip is shared, or `None` for a single recording.
    pub event: Option<String>,
    pub created_by: String,
    pub created: String,
    pub expires: String,
    pub views: String,
}

/// The answer to a share form refused for its password: why, and the way back.
#[derive(Template)]
#[template(path = "share_refused.html")]
struct RefusedPage {
    frame: Frame,
    why: String,
    back: String,
}

#[derive(Template)]
#[template(path = "shares.html")]
struct SharesPage {
    frame: Frame,
    csrf: String,
    shares: Vec<ShareRow>,
}

#[derive(Template)]
#[template(path = "share_view.html")]
struct LinkPage {
    frame: Frame,
    link: String,
}

/// The host the owner's browser used, for writing the link out; anything odd in the
/// header is replaced (the page escapes it anyway).
pub(super) fn host_of(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("porchlight.local")
        .to_owned()
}

pub(super) fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The form's lifetime (hours) and view limit.
fn limits(form: &ShareForm) -> Result<(u64, Option<u32>), WebError> {
    let hours: u64 = match form.hours.trim() {
        h @ ("1" | "24" | "168" | "720") => h.parse().unwrap_or(168),
        _ => return Err(WebError::BadRequest("unknown link lifetime".into())),
    };
    let views = match form.views.trim() {
        "" => None,
        v => Some(
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| WebError::BadRequest("a view limit is 1 to 1000".into()))?,
        ),
    };
    Ok((hours, views))
}

/// What a link is to, for the owner's notice and the list.
enum What {
    Recording(RecordingId),
    Event(EventId),
}

/// The session's unlocked viewer key when what is shared holds an end-to-end
/// recording (423 while locked); `None` when nothing in it is end-to-end.
async fn viewer_of(
    state: &WebState,
    session: &FullSession,
    what: &What,
) -> Result<Option<Arc<ViewerSecret>>, WebError> {
    let ids = match what {
        What::Recording(r) => vec![*r],
        What::Event(e) => {
            let (index, e) = (state.index.clone(), *e);
            blocking(move || {
                Ok(index
                    .get_event(e)?
                    .map(|ev| ev.recordings)
                    .unwrap_or_default())
            })
            .await?
        }
    };
    let mut viewer = None;
    for id in ids {
        let index = state.index.clone();
        let Some(entry) = blocking(move || Ok(index.get_recording(id)?)).await? else {
            continue;
        };
        if let Some(v) = crate::web::playback::viewer_for(state, session, &entry).await? {
            viewer = Some(v);
        }
    }
    Ok(viewer)
}

/// Makes the link (a blocking copy), tells the owners, and answers with the page that
/// shows it once. The form is checked before the password (a mistake in it costs no
/// password attempt); a missing or wrong password makes nothing.
async fn make_link(
    state: &WebState,
    session: &FullSession,
    client: &ClientInfo,
    headers: &HeaderMap,
    what: What,
    camera: CameraId,
    form: ShareForm,
) -> Result<Response, WebError> {
    let (hours, views) = limits(&form)?;
    // End-to-end recordings are copied only by a session that has unlocked them.
    let viewer = viewer_of(state, session, &what).await?;
    let confirmed =
        super::account::confirm_password(state, &session.0, client, form.password, "a share link")
            .await?;
    if let Err((status, why)) = confirmed {
        let back = match what {
            What::Recording(r) => format!("/recordings/{r}"),
            What::Event(_) => format!("/cameras/{camera}/recordings"),
        };
        let page = render(&RefusedPage {
            frame: frame_for(state, &session.0).await?,
            why,
            back,
        })?;
        return super::account::with_status(status, Ok(page));
    }
    let (shares, actor, auth) = (
        state.shares.clone(),
        session_actor(&session.0),
        state.auth.clone(),
    );
    let created = blocking(move || {
        let lifetime = Duration::from_secs(hours * 3600);
        let viewer = viewer.as_deref();
        let (made, noun) = match what {
            What::Recording(r) => (
                shares.create_as(&actor, r, lifetime, views, viewer)?,
                "a recording",
            ),
            What::Event(e) => (
                shares.create_for_event(&actor, e, lifetime, views, viewer)?,
                "an event",
            ),
        };
        auth.notice_to_owners(
            AlertKind::ShareCreated,
            format!(
                "{} made a share link to {noun} of camera {camera}: anyone with the link can watch it for {hours} hour(s). Unshare it under Shared videos if that was not meant.",
                actor.name
            ),
        );
        Ok(made)
    })
    .await?;
    let expires = state.clock.now_micros() + (hours * 3600 * 1_000_000) as i64;
    let page = render(&CreatedPage {
        frame: frame_for(state, &session.0).await?,
        link: format!(
            "https://{}/s/{:016x}#{}",
            host_of(headers),
            created.id,
            created.secret.as_str()
        ),
        expires: view::date_time(expires),
        views: views.map_or_else(|| "unlimited".into(), |n| n.to_string()),
    })?;
    Ok(no_store(page))
}

/// `POST /recordings/{id}/share`: a link to one recording.
pub async fn create(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    Client(client): Client,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ShareForm>,
) -> Result<Response, WebError> {
    let entry = entry_of(&state, &session, &id).await?;
    session.require(
        Action::ShareRecording,
        Object::ThisRecording(&entry.camera, entry.id),
    )?;
    let what = What::Recording(entry.id);
    make_link(
        &state,
        &session,
        &client,
        &headers,
        what,
        entry.camera,
        form,
    )
    .await
}

/// `POST /events/{id}/share`: a link to an event's whole clip, however many
/// recordings it spans. Sharing copies recordings, so it is the same permission.
pub async fn create_for_event(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    Client(client): Client,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ShareForm>,
) -> Result<Response, WebError> {
    let event = event_of(&state, &session, &id).await?;
    session.require(Action::ShareRecording, Object::Recording(&event.camera))?;
    let what = What::Event(event.id);
    make_link(
        &state,
        &session,
        &client,
        &headers,
        what,
        event.camera,
        form,
    )
    .await
}

pub async fn list(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ManageShares, Object::System)?;
    let shares = state.shares.clone();
    let all = blocking(move || Ok(shares.list()?)).await?;
    render(&SharesPage {
        frame: frame_for(&state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        shares: all
            .into_iter()
            .map(|s| ShareRow {
                id: format!("{:016x}", s.id),
                camera: s.camera.to_string(),
                when: view::date_time(s.start_micros),
                duration: view::duration(s.end_micros - s.start_micros),
                recording: s.recording.to_string(),
                event: s.event.map(|e| e.to_string()),
                created_by: s.created_by_name,
                created: view::date_time(s.created_micros),
                expires: view::date_time(s.expires_micros),
                views: match s.max_views {
                    Some(m) => format!("{} of {m}", s.views),
                    None => s.views.to_string(),
                },
            })
            .collect(),
    })
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn unshare(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    session.require(Action::ManageShares, Object::System)?;
    let link = parse_link_id(&id).ok_or_else(|| WebError::NotFound("no such link".into()))?;
    let (shares, actor) = (state.shares.clone(), session_actor(&session.0));
    if !blocking(move || Ok(shares.unshare(link, &actor)?)).await? {
        return Err(WebError::NotFound("no such link".into()));
    }
    state.share_layouts.forget_if(|(l, _)| *l == link);
    Ok(see_other("/shares", &[]))
}

fn public(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex, nofollow"),
    );
    no_store(r)
}

pub async fn link_page(
    State(state): State<WebState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let link = parse_link_id(&id).ok_or_else(|| WebError::NotFound("no such link".into()))?;
    let page = render(&LinkPage {
        frame: anonymous_frame(&state),
        link: format!("{link:016x}"),
    })?;
    Ok(public(page))
}

#[derive(Deserialize)]
pub struct OpenForm {
    secret: String,
}

/// [`AuditedOnce`](crate::web::audit_once::AuditedOnce)'s key for share links
/// opened: the link, and the client address as the throttles count it (IPv6 by /64,
/// so hopping within one's own /64 writes no more entries).
pub type OpenedKey = (u64, String);

/// Logs a refusal of `address`'s opens as the throttle says: the first, then at
/// most a line a minute with the count.
fn log_open_refusal(log: Log, address: &str) {
    match log {
        Log::First => tracing::warn!(
            %address,
            "share links opened too often from this address; refused for a minute (further refusals logged at most once a minute)"
        ),
        Log::Summary(count) => tracing::warn!(
            %address,
            count,
            "{count} share link opens refused from this address since the last line"
        ),
        Log::Quiet => {}
    }
}

/// `POST /s/{link}/open`: the secret for a viewer cookie. Wrong secrets are
/// throttled by the share service; successful opens are counted per address too
/// (one address opening links in a loop gets 429 for a minute), and each link's
/// opens from one address are logged once an hour, not once each.
pub async fn link_open(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Client(client): Client,
    Form(form): Form<OpenForm>,
) -> Result<Response, WebError> {
    let link = parse_link_id(&id).ok_or_else(|| WebError::NotFound("no such link".into()))?;
    let address = throttle::address_key(client.ip);
    if let Some(blocked) = state.share_opens.check(&address, state.clock.now_micros()) {
        log_open_refusal(blocked.log, &address);
        return Err(WebError::SlowDown {
            retry_after_secs: blocked.retry_after_secs,
        });
    }
    let (shares, ip) = (state.shares.clone(), client.ip);
    let opened = blocking(move || Ok(shares.open(link, &form.secret, ip)?)).await?;
    // Counted as the bad-token throttle counts bad tokens: LIMIT a minute.
    let now = state.clock.now_micros();
    state.share_opens.failed(&address, now);
    let (shares, view) = (state.shares.clone(), opened.view);
    let write = blocking(move || Ok(shares.log_view(&view, ip)));
    state
        .share_opens_audited
        .write_once((link, address), now, write)
        .await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    let cookie = format!(
        "{VIEWER_COOKIE}={}; Secure; HttpOnly; SameSite=Strict; Path=/s/{link:016x}; Max-Age={}",
        opened.token,
        VIEWER_LIFETIME.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(public(r))
}

/// The link a request may watch: its viewer cookie must be for the link in its path.
fn viewer(state: &WebState, headers: &HeaderMap, id: &str) -> Result<(u64, String), WebError> {
    let link = parse_link_id(id).ok_or_else(|| WebError::NotFound("no such link".into()))?;
    let token = cookie(headers, VIEWER_COOKIE)
        .map(str::to_owned)
        .ok_or_else(|| WebError::NotFound("no viewer cookie".into()))?;
    let holder = match state.shares.viewer_link(&token) {
        Some(l) => Principal::LinkHolder { link: l },
        None => Principal::Anonymous,
    };
    if !policy::allowed(&holder, Action::WatchSharedClip, Object::Share(link)) {
        return Err(WebError::NotFound("no such link".into()));
    }
    Ok((link, token))
}

async fn clip(
    state: WebState,
    headers: HeaderMap,
    id: String,
    download: bool,
) -> Result<Response, WebError> {
    let (link, token) = viewer(&state, &headers, &id)?;
    let (shares, t) = (state.shares.clone(), token.clone());
    let entry =
        blocking(move || shares.get(link)?.ok_or(WebError::NotFound("gone".into()))).await?;
    let shares = state.shares.clone();
    let open: Opener = std::sync::Arc::new(move || Ok(shares.reader(link, &t)?));
    let what = format!("share link {link:016x}");
    let mp4 = share_layout(&state, link, &token, open.clone(), what.clone()).await?;
    let range = requested_range(&headers, mp4.len())?;
    let file_name = download.then(|| {
        format!(
            "{}_{}.mp4",
            entry.camera,
            view::file_stamp(entry.start_micros)
        )
    });
    // Unsharing or expiry ends a response already streaming, not only the next one.
    let (shares, t) = (state.shares.clone(), token);
    let allowed: StillAllowed = std::sync::Arc::new(move || shares.viewer_link(&t) == Some(link));
    Ok(public(mp4_response(
        open,
        Some(allowed),
        what,
        mp4,
        range,
        file_name,
    )))
}

/// The layout of `link`'s copy, cached by link and file identity: a player sends
/// many Range requests, and building the layout reads every fragment header,
/// which for small fragments is the whole copy. The viewer is checked first, as
/// opening the copy would.
async fn share_layout(
    state: &WebState,
    link: u64,
    token: &str,
    open: Opener,
    what: String,
) -> Result<Arc<ProgressiveMp4>, WebError> {
    if state.shares.viewer_link(token) != Some(link) {
        return Err(WebError::NotFound(format!("{what}: not a viewer")));
    }
    let shares = state.shares.clone();
    let key = (
        link,
        blocking(move || Ok(shares.copy_identity(link)?)).await?,
    );
    if let Some(l) = state.share_layouts.get(&key) {
        return Ok(l);
    }
    let built = build_layout(open, what).await?;
    state.share_layouts.put(key, built.clone());
    Ok(built)
}

pub async fn link_video(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    clip(state, headers, id, false).await
}

pub async fn link_download(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    clip(state, headers, id, true).await
}
