//! The Control Centre: every privacy and security setting and its state on one page,
//! each with its action right there (or a link to the page that has it).
//!
//! The owner sees the whole house; a shared user sees their own account's part, and
//! everyone their data (download, and for a shared user account deletion). What
//! this version cannot do yet is listed as such rather than left out, so the page never
//! suggests a protection that is not there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{blocking, frame_for, RECENT_ALERT_MICROS};
use crate::auth::policy::{self, Action, Object};
use crate::clock;
use crate::config::{Config, RecordingMode, SmtpSecurity};
use crate::index::{AuditKind, AuditQuery, Role};
use crate::retention::{self, DiskSpace, FilesystemSpace, Usage};
use crate::web::extract::FullSession;
use crate::web::view::{self, render, Frame};
use crate::web::{WebError, WebState};

/// Settings fixed at start-up that the page reports (never a secret).
#[derive(Clone, Debug)]
pub struct SystemFacts {
    pub data_dir: PathBuf,
    /// The master key's fingerprint (16 hex digits).
    pub key_id: String,
    pub max_bytes: Option<u64>,
    pub min_free_percent: u8,
    /// `host:port (security)` of the mail relay, if mail is configured; the security
    /// in words (`STARTTLS`, `TLS`, `unencrypted`).
    pub mail_relay: Option<String>,
    /// Where the web UI listens: `address (HTTPS)`, and the plain-HTTP redirect's.
    pub listen: String,
    /// `[web] trusted_proxies`, comma-separated; empty when none (the default).
    pub trusted_proxies: String,
    /// The notification webhook's host, if one is configured.
    pub webhook_host: Option<String>,
    /// Where mDNS discovery asks and listens (`all interfaces`, `lo`), if it is on.
    pub discovery: Option<String>,
    pub session_idle: Duration,
    pub session_max: Duration,
    /// A certificate the owner supplied (else a self-signed one is used).
    pub user_certificate: bool,
}

impl SystemFacts {
    /// `bound`: the HTTPS and optional plain-HTTP addresses as bound (the configured
    /// port may be 0).
    pub fn of(
        config: &Config,
        key_id: String,
        user_certificate: bool,
        bound: (SocketAddr, Option<SocketAddr>),
    ) -> Self {
        SystemFacts {
            data_dir: config.data_dir.clone(),
            key_id,
            max_bytes: config.retention.max_bytes,
            min_free_percent: config.retention.min_free_percent,
            mail_relay: config
                .smtp
                .as_ref()
                .map(|s| format!("{}:{} ({})", s.host, s.port, security_words(s.security))),
            listen: match bound {
                (https, Some(http)) => {
                    format!("{https} (HTTPS) and {http} (plain HTTP, only redirecting to HTTPS)")
                }
                (https, None) => format!("{https} (HTTPS)"),
            },
            trusted_proxies: config
                .web
                .trusted_proxies
                .networks()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            webhook_host: config
                .notify
                .as_ref()
                .and_then(|n| n.webhook.host_str().map(str::to_owned)),
            discovery: config.discovery.enabled.then(|| {
                if config.discovery.interfaces.is_empty() {
                    "all interfaces".to_owned()
                } else {
                    config.discovery.interfaces.join(", ")
                }
            }),
            session_idle: config.web.session_idle,
            session_max: config.web.session_max,
            user_certificate,
        }
    }
}

/// How the mail relay's connection is protected, in words for the page.
fn security_words(security: SmtpSecurity) -> &'static str {
    match security {
        SmtpSecurity::Starttls => "STARTTLS",
        SmtpSecurity::Tls => "TLS",
        SmtpSecurity::None => "unencrypted",
    }
}

pub struct UserRow {
    pub name: String,
    pub role: &'static str,
    pub two_step: bool,
    pub recovery_codes_left: usize,
    pub email: String,
}

pub struct CameraRow {
    pub name: String,
    pub mode: &'static str,
    pub storage_days: u32,
    pub recordings: usize,
    pub size: String,
}

pub struct Line {
    pub when: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "control.html")]
struct ControlPage {
    frame: Frame,
    csrf: String,
    is_owner: bool,
    can_delete_account: bool,
    users: Vec<UserRow>,
    my_devices: usize,
    my_email: String,
    cameras: Vec<CameraRow>,
    used: String,
    disk_free: String,
    disk_total: String,
    max_bytes: String,
    min_free_percent: u8,
    facts: SystemFacts,
    /// The certificate served now (it may have been reloaded since start).
    certificate_fingerprint: String,
    session_idle: String,
    session_max: String,
    alerts: Vec<Line>,
    blocked: Vec<Line>,
    shares: usize,
    tokens: usize,
    /// Users with the shared role (neither the owner nor support helpers).
    shared_users: usize,
    /// Support helpers whose access has not expired, and support invitations pending.
    support: usize,
    /// End-to-end mode is on (new recordings sealed to viewers' keys).
    e2e_enabled: bool,
    /// This session holds its unlocked viewer key.
    e2e_unlocked: bool,
    /// Why recording times may be wrong (clock not synchronised, or behind the
    /// newest recording); empty when nothing says so.
    clock_warnings: Vec<String>,
}

/// `1.5 GB`, decimal units as disks are sold.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=999 => format!("{bytes} B"),
        1_000..=999_999 => format!("{:.1} kB", b / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}

/// What the store holds, as retention counts it against `max_bytes`.
fn used_words(usage: Usage) -> String {
    format!(
        "{} (recordings {}, share copies {}, thumbnails {})",
        size(usage.total()),
        size(usage.finished + usage.open),
        size(usage.shares),
        size(usage.thumbnails)
    )
}

fn mode_label(mode: RecordingMode) -> &'static str {
    match mode {
        RecordingMode::Off => "live view only",
        RecordingMode::Events => "on events",
        RecordingMode::Continuous => "continuous",
    }
}

pub async fn control_centre(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    let me = session.0.user.id;
    session.require(Action::ViewControlCentre, Object::User(me))?;
    let is_owner = policy::allowed(
        &session.principal(),
        Action::ViewControlCentre,
        Object::System,
    );
    let (auth, index, current) = (state.auth.clone(), state.index.clone(), session.0.clone());
    let cameras = state.registry.all();
    let facts = state.facts.clone();
    let now = state.clock.now_micros();
    let data_dir = facts.data_dir.clone();
    let share_service = state.shares.clone();
    let store = state.store.clone();
    let (
        users,
        my_devices,
        (recordings, usage),
        alerts,
        blocked,
        space,
        (shares, tokens),
        invited,
        sync,
    ) = blocking(move || {
        // As the support page does: helpers whose time is up are not counted.
        let (users, invited) = if is_owner {
            auth.expire_support()?;
            let invited = auth
                .invitations()?
                .into_iter()
                .filter(|i| i.role == Role::Support)
                .count();
            (index.all_users()?, invited)
        } else {
            (vec![current.user.clone()], 0)
        };
        let devices = auth.devices(&current)?.len();
        let recordings = if is_owner {
            // Counted as retention counts it against the cap.
            let usage = retention::usage(&store, &index)
                .map_err(|e| tracing::warn!("cannot measure what the store holds: {e}"))
                .ok();
            (index.all_recordings()?, usage)
        } else {
            (Vec::new(), None)
        };
        let alerts = auth.alerts(me)?;
        let blocked = if is_owner {
            auth.audit().list(AuditQuery {
                kind: Some(AuditKind::LoginBlocked),
                from_micros: Some(now - RECENT_ALERT_MICROS),
                limit: 20,
                ..Default::default()
            })?
        } else {
            Vec::new()
        };
        let space = FilesystemSpace.space(&data_dir).ok();
        let sync = clock::clock_sync(std::path::Path::new(clock::TIMESYNC_DIR));
        let shares = if is_owner {
            (share_service.list()?.len(), auth.tokens()?.len())
        } else {
            (0, 0)
        };
        Ok((
            users, devices, recordings, alerts, blocked, space, shares, invited, sync,
        ))
    })
    .await?;

    let camera_rows = if is_owner {
        cameras
            .iter()
            .map(|c| {
                let mine: Vec<_> = recordings.iter().filter(|r| &r.camera == c.id()).collect();
                CameraRow {
                    name: c.id().to_string(),
                    mode: mode_label(c.config.mode),
                    storage_days: c.config.storage_days,
                    recordings: mine.len(),
                    size: size(mine.iter().map(|r| r.bytes).sum()),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    // Read at each visit (two file checks), so the page is never staler than the log.
    let newest_start = recordings.iter().map(|r| r.start_micros).max();
    let clock_warnings = clock::sync_warning(sync)
        .map(str::to_owned)
        .into_iter()
        .chain(
            clock::behind_newest_recording(now, newest_start)
                .and(newest_start)
                .map(clock::behind_warning),
        )
        .collect();
    let my_email = session.0.user.email.clone().unwrap_or_default();
    let count = |role: Role| users.iter().filter(|u| u.role == role).count();
    let (shared_users, support) = (count(Role::Shared), count(Role::Support) + invited);
    let index = state.index.clone();
    let e2e_enabled = blocking(move || {
        crate::e2e::is_enabled(&index).map_err(|e| WebError::Internal(e.to_string()))
    })
    .await?;
    render(&ControlPage {
        clock_warnings,
        e2e_enabled,
        e2e_unlocked: state.unlocked.is_unlocked(&session.0.key, now),
        frame: frame_for(&state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        is_owner,
        can_delete_account: policy::allowed(
            &session.principal(),
            Action::DeleteOwnAccount,
            Object::User(me),
        ),
        users: users
            .into_iter()
            .map(|u| UserRow {
                name: u.username,
                role: u.role.label(),
                two_step: u.totp.is_some(),
                recovery_codes_left: u.recovery_codes.iter().filter(|c| !c.used).count(),
                email: u.email.unwrap_or_default(),
            })
            .collect(),
        my_devices,
        my_email,
        cameras: camera_rows,
        used: usage.map_or_else(|| "an unknown amount".into(), used_words),
        disk_free: space
            .as_ref()
            .map_or_else(|| "unknown".into(), |s| size(s.available)),
        disk_total: space
            .as_ref()
            .map_or_else(|| "unknown".into(), |s| size(s.total)),
        max_bytes: facts.max_bytes.map_or_else(|| "no cap".into(), size),
        min_free_percent: facts.min_free_percent,
        session_idle: view::duration(facts.session_idle.as_micros() as i64),
        session_max: view::duration(facts.session_max.as_micros() as i64),
        facts: (*facts).clone(),
        certificate_fingerprint: state.certificate.fingerprint().to_string(),
        alerts: alerts
            .into_iter()
            .filter(|a| now - a.time_micros < RECENT_ALERT_MICROS)
            .map(|a| Line {
                when: view::date_time(a.time_micros),
                text: a.message,
            })
            .collect(),
        blocked: blocked
            .into_iter()
            .map(|e| Line {
                when: view::date_time(e.time_micros),
                text: e.subject,
            })
            .collect(),
        shares,
        tokens,
        shared_users,
        support,
    })
}

#[cfg(test)]
mod tests {
    use super::{size, used_words, Usage};

    /// The page's figure is retention's: a recording being written, share copies
    /// and thumbnails count, as they do against the cap.
    #[test]
    fn the_used_figure_counts_what_the_cap_counts() {
        let usage = Usage {
            finished: 2_000_000,
            open: 500_000,
            shares: 1_000_000,
            thumbnails: 1_500,
        };
        assert_eq!(
            used_words(usage),
            "3.5 MB (recordings 2.5 MB, share copies 1.0 MB, thumbnails 1.5 kB)"
        );
    }

    #[test]
    fn sizes_are_decimal_and_short() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_500), "1.5 kB");
        assert_eq!(size(2_345_678), "2.3 MB");
        assert_eq!(size(64_000_000_000), "64.00 GB");
    }
}
