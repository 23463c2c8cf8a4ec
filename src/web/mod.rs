//! The web UI: HTTPS server, pages, live view and playback. The only user of `axum`
//! and `askama`.
//!
//! [`app`] builds the router from a [`WebState`] (so tests can drive it) and
//! [`start`] binds the listeners and serves it next to the recorders. The web layer
//! calls services — [`crate::auth::Auth`], the index's typed functions, the store's
//! readers, the camera registry's frame hubs — and never reaches into a camera task or
//! a sled tree. Blocking work (sled, file reads, Argon2) runs on blocking threads, so a
//! request can never stall a camera.
//!
//! Routes (every page but setup/login needs a full login; every POST needs a
//! same-origin `Origin` and, once logged in, the session's CSRF token):
//!
//! | route | what |
//! |---|---|
//! | `GET/POST /setup` | create the owner with the one-time setup code |
//! | `GET/POST /login`, `/login/code` | password, then TOTP or recovery code |
//! | `GET/POST /enrol` | mandatory TOTP enrolment (QR as SVG), then recovery codes |
//! | `POST /logout` | end this session |
//! | `GET /` | dashboard: a tile per camera |
//! | `GET /cameras/{cam}/live`, `/cameras/{cam}/live.ws` | live view page, fMP4 over WebSocket |
//! | `GET /cameras/{cam}/recordings?day=` | a day's events and recordings and its SVG timeline |
//! | `GET /recordings/{id}`, `/recordings/{id}/video.mp4`, `/recordings/{id}/download` | player, Range stream, download |
//! | `GET /events/{id}/thumbnail.jpg` | an event's sealed thumbnail, decrypted |
//! | `POST /recordings/{id}/delete`, `/events/{id}/delete`, `/cameras/{cam}/delete`, `/delete-everything` | deletion |
//! | `GET /devices`, `POST /devices/logout`, `/devices/logout-all` | logged-in devices |
//! | `GET /alerts` | security alerts |
//! | `GET/POST /account/password` | change one's password (other devices logged out, a security notice) |
//! | `GET/POST /account/two-step` | set up one's two-step verification again (password + old code, new code; a security notice) |
//! | `GET/POST /notifications`, `GET /notifications/stream` | the user's event notification settings; their notices as server-sent events |
//! | `GET /support-access`, `POST /support-access/grant` | time-limited support access (owner); revoking is removing the account |
//! | `GET /cameras/discovered` | cameras announced on the LAN over mDNS or ONVIF (owner) |
//! | `GET/POST /cameras/add` | add a camera (owner): test the connection (codec, size, frame rate, snapshot), save, start at once |
//! | `GET/POST /cameras/{cam}/settings` | a camera added in the UI: URLs, credentials, mode, motion, sensitivity, ignore zones, pre/post-roll, storage period (owner); restarts that camera only |
//! | `GET /cameras/{cam}/snapshot.jpg` | the analysed stream's next keyframe as JPEG, to draw zones on (owner) |
//! | `POST /cameras/{cam}/remove` | remove a camera added in the UI (owner), keeping or deleting its recordings |
//! | `GET /diagnostics` | camera health, no video (owner and support) |
//! | `GET /users`, `POST /users/invite`, `/users/{id}/remove`, `/users/{id}/reset-two-step`, `/invitations/revoke` | shared users and invitations (owner); resetting a user's two-step verification |
//! | `GET/POST /invite` | accept an invitation (secret in the link's fragment, posted in the form) |
//! | `POST /recordings/{id}/share`, `/events/{id}/share`, `GET /shares`, `POST /shares/{link}/delete` | share links: make one (of a recording or an event's clip), list, unshare |
//! | `GET /s/{link}`, `POST /s/{link}/open`, `GET /s/{link}/video.mp4`, `/download` | a share link's public page (secret in the fragment), viewer cookie, its clip |
//! | `GET /control-centre` | every privacy and security setting and its state |
//! | `GET /end-to-end`, `POST /end-to-end/enable`, `/end-to-end/unlock`, `/end-to-end/lock`, `/end-to-end/disable`, `/end-to-end/migrate`, `/end-to-end/passphrase`, `/end-to-end/recovery-key` | end-to-end mode: turn on (owner; recovery key shown once) or enrol one's own passphrase, unlock this session's viewer key, lock it, turn it off or back on (owner, with the passphrase), migrate sealed recordings to the master key once off (owner, unlocked), change one's passphrase (with it or the recovery key), make a new recovery key (with the passphrase; shown once) |
//! | `GET /my-data`, `/my-data.json`, `POST /my-data/delete-account` | the user's data: what it holds, its JSON download; a shared user deletes their account |
//! | `GET /export-everything.tar` | the owner's streamed archive: `data.json` and every recording as MP4 |
//! | `GET/POST /erase-all-data` | the owner erases everything but their account, keys first |
//! | `GET /activity?user=&kind=&day=` | the audit log (the owner: everyone's; others: their own) |
//! | `GET/POST /linked-services`, `POST /linked-services/revoke` | API tokens (owner only) |
//! | `GET /static/{file}` | CSS and JS, embedded in the binary |
//!
//! The API for linked services (`api.rs`) takes only `Authorization: Bearer` tokens,
//! never cookies, and answers in JSON; it is therefore outside the `Origin` check:
//!
//! | route | scope | what |
//! |---|---|---|
//! | `POST /api/v1/cameras/{cam}/trigger` | `trigger:write` | the doorbell: record now |
//! | `GET /api/v1/events` | `events:read` | recent events (`camera`, `since`, `limit`) |
//! | `GET /api/v1/events/stream` | `events:read` | server-sent events as events begin |
//! | `GET /api/v1/cameras/{cam}/snapshot.jpg` | `live:read` | the camera's picture now (its next keyframe as JPEG) |

mod api;
mod api_throttle;
mod assets;
mod audit_once;
mod certificate;
mod client_addr;
mod error;
mod extract;
mod headers;
mod live;
mod pages;
mod per_client;
mod playback;
mod server;
mod slots;
mod tls;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use client_addr::{forwarded_client, MAX_HOPS};
pub use error::WebError;
pub use extract::cookie_in;

use crate::auth::{Auth, Lifetimes};
use crate::camera::CameraRegistry;
use crate::clock::Clock;
use crate::config::Config;
use crate::discovery::Discovery;
use crate::index::Index;
use crate::model::CameraId;
use crate::recorder::{EventNotice, TriggerError};
use crate::share::Shares;
use crate::store::Store;

/// Largest request body: forms are small; nothing is uploaded.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Called when someone opens (and, every few seconds, keeps open) a camera's live view:
/// the daemon starts a "live view" recording if the camera records on events.
pub type LiveViewHook = Arc<dyn Fn(&CameraId) + Send + Sync>;

/// The API's doorbell: asks the camera's recorder to record `duration` from now plus
/// its pre- and post-roll (an external trigger).
pub type TriggerHook = Arc<dyn Fn(&CameraId, Duration) -> Result<(), TriggerError> + Send + Sync>;

/// Starts a camera added from the web UI at once (its ingest, recorder and motion
/// feed), as the daemon does at start; the error is safe to show.
pub type AddCameraHook =
    Arc<dyn Fn(crate::config::CameraConfig) -> Result<(), String> + Send + Sync>;

/// Stops a running camera's tasks (finishing its open recording) and forgets it;
/// `false` if it was not running.
pub type RemoveCameraHook =
    Arc<dyn Fn(CameraId) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub registry: CameraRegistry,
    pub store: Arc<Store>,
    pub index: Index,
    pub clock: Arc<dyn Clock>,
    pub auth: Auth,
    pub live_view: LiveViewHook,
    pub trigger: TriggerHook,
    /// The recorders' event news; the API's event stream subscribes here.
    pub events: broadcast::Sender<EventNotice>,
    /// The served certificate, whose fingerprint every page shows.
    pub certificate: Arc<certificate::ServedCertificate>,
    /// Send HSTS (only with a user-supplied certificate).
    pub hsts: bool,
    pub layouts: Arc<playback::LayoutCache>,
    /// Share links' copies' layouts, so a player's Range requests do not each read
    /// the whole copy; dropped on unshare.
    pub share_layouts: Arc<playback::LayoutCache<(u64, crate::share::CopyIdentity)>>,
    /// Turns true at shutdown; long-lived responses (live view) end then.
    pub shutdown: watch::Receiver<bool>,
    /// What the Control Centre reports about the configuration.
    pub facts: Arc<pages::control::SystemFacts>,
    pub shares: Shares,
    pub notifications: crate::notifications::Notifications,
    /// Cameras announced over mDNS or ONVIF; `None` when discovery is off.
    pub discovery: Option<Discovery>,
    pub add_camera: AddCameraHook,
    pub remove_camera: RemoveCameraHook,
    /// Held by adding, changing and removing a camera from the web UI for the whole
    /// change (index entry, then stopping and starting its tasks), so that a change
    /// racing another (two tabs) never restarts a camera whose entry was just
    /// removed. One lock for all cameras: these are rare owner actions, and a
    /// removal's wait for the recorder (at most a few seconds) may delay another.
    pub camera_changes: Arc<tokio::sync::Mutex<()>>,
    /// End-to-end viewer keys unlocked by sessions, in memory only.
    pub unlocked: crate::unlocked::Unlocked,
    /// Open live views per session key, at most [`live::MAX_PER_SESSION`] each.
    pub live_sockets: Arc<slots::Slots<[u8; 32]>>,
    /// Bad API tokens counted per address, for every bearer-token check.
    pub bad_tokens: Arc<api_throttle::BadTokens>,
    /// Which sessions' viewing and downloading of which recordings is already in the
    /// activity log, so a player's many range requests write one entry.
    pub audited_once: Arc<audit_once::AuditedOnce>,
    /// Share links opened (right secret) per client address: the bad-token
    /// throttle's counts, so one address opening links in a loop is refused (429)
    /// for a minute after [`api_throttle::LIMIT`] opens in a minute.
    pub share_opens: Arc<api_throttle::BadTokens>,
    /// Which share links' opens from which address are in the activity log this
    /// hour: one entry per link and address, not one per open.
    pub share_opens_audited: Arc<audit_once::AuditedOnce<pages::shares::OpenedKey>>,
}

/// The router: every route, the body limit, the Origin check (pages only: the API
/// takes no cookies) and the security headers.
pub fn app(state: WebState) -> Router {
    let pages = Router::new()
        .route("/", get(pages::cameras::dashboard))
        .route(
            "/setup",
            get(pages::account::setup_page).post(pages::account::setup_submit),
        )
        .route(
            "/login",
            get(pages::account::login_page).post(pages::account::login_submit),
        )
        .route(
            "/login/code",
            get(pages::account::code_page).post(pages::account::code_submit),
        )
        .route(
            "/enrol",
            get(pages::account::enrol_page).post(pages::account::enrol_submit),
        )
        .route("/logout", post(pages::account::logout))
        .route("/devices", get(pages::devices::devices))
        .route("/devices/logout", post(pages::devices::logout_one))
        .route("/devices/logout-all", post(pages::devices::logout_all))
        .route("/alerts", get(pages::devices::alerts))
        .route("/activity", get(pages::audit::audit_log))
        .route("/control-centre", get(pages::control::control_centre))
        .route("/end-to-end", get(pages::e2e::page))
        .route("/end-to-end/enable", post(pages::e2e::enable))
        .route("/end-to-end/unlock", post(pages::e2e::unlock))
        .route("/end-to-end/lock", post(pages::e2e::lock))
        .route("/end-to-end/disable", post(pages::e2e::disable))
        .route("/end-to-end/migrate", post(pages::e2e::migrate))
        .route(
            "/end-to-end/passphrase",
            post(pages::e2e::change_passphrase),
        )
        .route(
            "/end-to-end/recovery-key",
            post(pages::e2e::new_recovery_key),
        )
        .route("/my-data", get(pages::data::page))
        .route("/my-data.json", get(pages::data::download))
        .route("/my-data/delete-account", post(pages::data::delete_account))
        .route(
            "/export-everything.tar",
            get(pages::data::export_everything),
        )
        .route(
            "/erase-all-data",
            get(pages::data::erase_all_page).post(pages::data::erase_all),
        )
        .route(
            "/account/password",
            get(pages::password::page).post(pages::password::change),
        )
        .route(
            "/account/two-step",
            get(pages::two_step::page).post(pages::two_step::reenrol),
        )
        .route(
            "/notifications",
            get(pages::notifications::page).post(pages::notifications::save),
        )
        .route("/notifications/stream", get(pages::notifications::stream))
        .route("/support-access", get(pages::support::page))
        .route("/support-access/grant", post(pages::support::grant))
        .route("/diagnostics", get(pages::support::diagnostics))
        .route("/users", get(pages::users::list))
        .route("/users/invite", post(pages::users::invite))
        .route("/users/{id}/remove", post(pages::users::remove))
        .route(
            "/users/{id}/reset-two-step",
            post(pages::users::reset_two_step),
        )
        .route("/invitations/revoke", post(pages::users::revoke_invitation))
        .route(
            "/invite",
            get(pages::users::invite_page).post(pages::users::invite_submit),
        )
        .route("/recordings/{id}/share", post(pages::shares::create))
        .route("/shares", get(pages::shares::list))
        .route("/shares/{id}/delete", post(pages::shares::unshare))
        .route("/s/{link}", get(pages::shares::link_page))
        .route("/s/{link}/open", post(pages::shares::link_open))
        .route("/s/{link}/video.mp4", get(pages::shares::link_video))
        .route("/s/{link}/download", get(pages::shares::link_download))
        .route("/cameras/discovered", get(pages::discovered::list))
        .route(
            "/cameras/add",
            get(pages::adopt::page).post(pages::adopt::submit),
        )
        .route("/cameras/{camera}/live", get(pages::cameras::live_page))
        .route("/cameras/{camera}/live.ws", get(live::live_socket))
        .route("/cameras/{camera}/recordings", get(pages::recordings::day))
        .route("/cameras/{camera}/remove", post(pages::adopt::remove))
        .route(
            "/cameras/{camera}/snapshot.jpg",
            get(pages::snapshot::snapshot),
        )
        .route(
            "/cameras/{camera}/settings",
            get(pages::camera_settings::page).post(pages::camera_settings::save),
        )
        .route(
            "/cameras/{camera}/delete",
            post(pages::recordings::delete_camera),
        )
        .route("/recordings/{id}", get(pages::recordings::player))
        .route("/recordings/{id}/video.mp4", get(playback::video))
        .route("/recordings/{id}/download", get(playback::download))
        .route(
            "/recordings/{id}/delete",
            post(pages::recordings::delete_one),
        )
        .route("/events/{id}/thumbnail.jpg", get(pages::events::thumbnail))
        .route("/events/{id}/delete", post(pages::events::delete))
        .route("/events/{id}/share", post(pages::shares::create_for_event))
        .route(
            "/delete-everything",
            get(pages::recordings::delete_everything_page)
                .post(pages::recordings::delete_everything),
        )
        .route(
            "/linked-services",
            get(pages::linked::page).post(pages::linked::create),
        )
        .route("/linked-services/revoke", post(pages::linked::revoke))
        .route("/static/{file}", get(assets::serve))
        // After every route: it applies to the routes registered before it.
        .method_not_allowed_fallback(|| async { WebError::MethodNotAllowed })
        .fallback(|| async { WebError::NotFound("no such page".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(headers::check_origin));
    Router::new()
        .nest(
            "/api/v1",
            api::routes().layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::security_headers,
        ))
        .with_state(state)
}

/// Every few minutes deletes expired share links (and their copies), support
/// accounts whose time is up, logins left at their second step (telling their
/// user) and login-failure counters forgotten after a quiet day, so none outlives its expiry by more than that even if nobody looks. (All
/// are also refused at once on use after expiry.)
fn spawn_expiry(shares: Shares, auth: Auth, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stopped(&mut shutdown) => return,
                () = tokio::time::sleep(std::time::Duration::from_secs(300)) => {}
            }
            let (s, a) = (shares.clone(), auth.clone());
            let pass = tokio::task::spawn_blocking(move || {
                (
                    s.purge_expired(),
                    a.expire_support(),
                    a.expire_pending_logins(),
                    a.expire_throttles(),
                )
            })
            .await;
            match pass {
                Ok((links, support, pending, throttles)) => {
                    if let Err(e) = pending {
                        tracing::error!("cannot end unfinished logins: {e}");
                    }
                    match throttles {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(keys = n, "forgotten login failures removed"),
                        Err(e) => tracing::error!("cannot remove forgotten login failures: {e}"),
                    }
                    match links {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(links = n, "expired share links deleted"),
                        Err(e) => tracing::error!("cannot delete expired share links: {e}"),
                    }
                    if let Err(e) = support {
                        tracing::error!("cannot end expired support access: {e}");
                    }
                }
                Err(e) => tracing::error!("expiry task: {e}"),
            }
        }
    });
}

/// Every 30 s drops unlocked viewer keys whose idle time is up or whose session has
/// ended (however it ended), so a key left unlocked in a closed browser or a logged-out
/// session is wiped within half a minute.
fn spawn_unlock_sweep(
    unlocked: crate::unlocked::Unlocked,
    auth: Auth,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stopped(&mut shutdown) => return,
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
            let (unlocked, auth, now) = (unlocked.clone(), auth.clone(), clock.now_micros());
            let swept = tokio::task::spawn_blocking(move || {
                unlocked.sweep(now, |session| {
                    auth.still_live(session)
                        .map(|s| s.is_some())
                        .map_err(|e| e.to_string())
                })
            })
            .await;
            match swept {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    keys = n,
                    "end-to-end viewer keys locked (idle or session ended)"
                ),
                Err(e) => tracing::error!("unlocked-key sweep: {e}"),
            }
        }
    });
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// What the daemon gives the web UI.
pub struct Services {
    pub registry: CameraRegistry,
    pub store: Arc<Store>,
    pub index: Index,
    pub clock: Arc<dyn Clock>,
    pub live_view: LiveViewHook,
    pub trigger: TriggerHook,
    pub events: broadcast::Sender<EventNotice>,
    pub discovery: Option<Discovery>,
    pub add_camera: AddCameraHook,
    pub remove_camera: RemoveCameraHook,
}

/// The running UI.
pub struct Running {
    /// Where HTTPS is served (the real port when configured as 0).
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub fingerprint: String,
    reload: Arc<tokio::sync::Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Reads the HTTPS certificate files again and serves them if they changed (the
    /// daemon calls this on SIGHUP; see `certificate.rs`).
    pub fn reload_certificate(&self) {
        // Stores a wake-up if the task is busy reading: none is lost.
        self.reload.notify_one();
    }

    /// Waits for the listeners to finish after shutdown was signalled.
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Loads or makes the certificate, starts auth (setup code) and the mailer, binds the
/// listeners and serves until `shutdown` turns true.
pub async fn start(
    services: Services,
    config: &Config,
    shutdown: watch::Receiver<bool>,
) -> Result<Running, WebError> {
    let web = &config.web;
    let tls = tls::load(web, &config.data_dir)?;
    // Security alerts go to the notifications service, which shows, mails (through
    // the mailer when mail is set up) and posts them to the webhook.
    let mailer = config
        .smtp
        .clone()
        .map(|smtp| crate::mail::spawn(smtp, services.index.clone(), shutdown.clone()));
    let (alerts, alerts_rx) = tokio::sync::mpsc::unbounded_channel();
    let alerts = Some(alerts);
    let lifetimes = Lifetimes {
        idle: web.session_idle,
        max: web.session_max,
    };
    let (index, store, clock, data_dir) = (
        services.index.clone(),
        services.store.clone(),
        services.clock.clone(),
        config.data_dir.clone(),
    );
    let auth = tokio::task::spawn_blocking(move || {
        Auth::new(index, store, clock, lifetimes, data_dir, alerts)
    })
    .await
    .map_err(|e| WebError::Start(e.to_string()))??;
    let key_id = services.store.key_id();
    let notifications = crate::notifications::spawn(
        services.index.clone(),
        services.events.subscribe(),
        alerts_rx,
        mailer,
        config.smtp.clone(),
        config.notify.clone(),
        shutdown.clone(),
    );
    let shares = Shares::new(
        services.store.clone(),
        services.index.clone(),
        services.clock.clone(),
        auth.audit().clone(),
    );
    spawn_expiry(shares.clone(), auth.clone(), shutdown.clone());
    let unlocked = crate::unlocked::Unlocked::new(crate::unlocked::DEFAULT_IDLE);
    spawn_unlock_sweep(
        unlocked.clone(),
        auth.clone(),
        services.clock.clone(),
        shutdown.clone(),
    );
    // Bound first, so that the Control Centre shows the real addresses (port 0 in the
    // configuration means any free port).
    let listener = TcpListener::bind(web.listen)
        .await
        .map_err(|e| WebError::Start(format!("cannot listen on {}: {e}", web.listen)))?;
    let https = server::bound(&listener, web.listen);
    let http_listener = match web.http_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| WebError::Start(format!("cannot listen on {addr}: {e}")))
                .map(|l| (server::bound(&l, addr), l))?,
        ),
        None => None,
    };
    let state = WebState {
        registry: services.registry,
        store: services.store,
        index: services.index,
        clock: services.clock,
        auth,
        live_view: services.live_view,
        trigger: services.trigger,
        events: services.events,
        certificate: tls.served.clone(),
        hsts: tls.user_supplied,
        layouts: Arc::new(playback::LayoutCache::default()),
        share_layouts: Arc::new(playback::LayoutCache::default()),
        shutdown: shutdown.clone(),
        facts: Arc::new(pages::control::SystemFacts::of(
            config,
            key_id.to_string(),
            tls.user_supplied,
            (https, http_listener.as_ref().map(|(bound, _)| *bound)),
        )),
        shares,
        notifications,
        discovery: services.discovery,
        add_camera: services.add_camera,
        remove_camera: services.remove_camera,
        camera_changes: Arc::default(),
        unlocked,
        live_sockets: slots::Slots::new(live::MAX_PER_SESSION),
        bad_tokens: Arc::default(),
        audited_once: Arc::default(),
        share_opens: Arc::default(),
        share_opens_audited: Arc::default(),
    };
    let reload = Arc::new(tokio::sync::Notify::new());
    let mut tasks = vec![
        tokio::spawn(server::run_https(
            listener,
            tls.config.clone(),
            app(state),
            Arc::new(web.trusted_proxies.clone()),
            shutdown.clone(),
        )),
        tokio::spawn(certificate::keep_current(
            tls.served.clone(),
            web.clone(),
            config.data_dir.clone(),
            reload.clone(),
            shutdown.clone(),
        )),
    ];
    let mut http = None;
    if let Some((bound, listener)) = http_listener {
        http = Some(bound);
        tracing::info!("web: plain HTTP on http://{bound}/ redirects to HTTPS");
        tasks.push(tokio::spawn(server::run_redirect(
            listener,
            https.port(),
            shutdown,
        )));
    }
    tracing::info!(
        "web UI listening on https://{https}/ (certificate SHA-256 {})",
        tls.fingerprint
    );
    Ok(Running {
        https,
        http,
        fingerprint: tls.fingerprint,
        reload,
        tasks,
    })
}
