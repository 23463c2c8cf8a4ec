//! End-to-end mode in the UI: its page (state, the owner's turn-on form, unlock and
//! lock for this session), the one-time recovery key, and the audit entries.
//!
//! The passphrase and recovery key arrive in POST bodies only, are never logged or
//! echoed back, and the unlocked key is kept by [`crate::unlocked::Unlocked`] for this
//! session alone. Unlock attempts are throttled per user by `e2e::unlock`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::account::with_status;
use super::{audit, blocking, frame_for, see_other};
use crate::auth::policy::{self, Action, Object};
use crate::e2e::{self, E2eError, Secret};
use crate::index::{AlertKind, AuditKind};
use crate::store::e2e::RecoveryKey;
use crate::web::extract::{CsrfForm, FullSession};
use crate::web::view::{render, Frame};
use crate::web::{WebError, WebState};

#[derive(Template)]
#[template(path = "e2e.html")]
struct E2ePage {
    frame: Frame,
    csrf: String,
    enabled: bool,
    /// Turned off after being on: viewer keys remain for what was sealed.
    paused: bool,
    /// The owner may turn the mode on (it was never on, or every key is gone).
    can_enable: bool,
    /// The owner (a viewer) may turn it off, or back on, with their passphrase.
    can_turn_off: bool,
    can_resume: bool,
    /// This user may enrol a passphrase of their own (the mode is on, they have none).
    can_enrol: bool,
    /// This user has a viewer key (can unlock).
    is_viewer: bool,
    unlocked: bool,
    idle_minutes: u64,
    error: Option<String>,
    /// Where to go after unlocking (a recording's page), if not here.
    next: String,
}

#[derive(Template)]
#[template(path = "e2e_recovery.html")]
struct RecoveryPage {
    frame: Frame,
    recovery_key: String,
    qr_svg: String,
    /// A replacement for an existing recovery key (not the first, at enrolment).
    renewed: bool,
}

impl RecoveryPage {
    /// The page that shows `recovery` once, as text and as a QR code.
    async fn show(
        state: &WebState,
        session: &FullSession,
        recovery: &RecoveryKey,
        renewed: bool,
    ) -> Result<Response, WebError> {
        let text = recovery.to_text();
        render(&RecoveryPage {
            frame: frame_for(state, &session.0).await?,
            qr_svg: super::account::qr_svg(&text)?,
            recovery_key: text.to_string(),
            renewed,
        })
    }
}

async fn page_with(
    state: &WebState,
    session: &FullSession,
    error: Option<String>,
    next: String,
) -> Result<Response, WebError> {
    let (index, user) = (state.index.clone(), session.0.user.id);
    let enabled = blocking(move || {
        let map = |e: E2eError| WebError::Internal(e.to_string());
        Ok((
            e2e::is_enabled(&index).map_err(map)?,
            e2e::is_viewer(&index, user).map_err(map)?,
            e2e::has_viewers(&index).map_err(map)?,
        ))
    })
    .await;
    let (enabled, is_viewer, has_viewers) = enabled?;
    let paused = has_viewers && !enabled;
    let owner = policy::allowed(&session.principal(), Action::EnableEndToEnd, Object::System);
    render(&E2ePage {
        frame: frame_for(state, &session.0).await?,
        csrf: session.0.entry.csrf.clone(),
        enabled,
        paused,
        can_enable: !enabled && !paused && owner,
        can_turn_off: enabled && owner && is_viewer,
        can_resume: paused && owner && is_viewer,
        can_enrol: enabled
            && !is_viewer
            && policy::allowed(
                &session.principal(),
                Action::EnrolOwnViewerKey,
                Object::User(session.0.user.id),
            ),
        is_viewer,
        unlocked: state
            .unlocked
            .is_unlocked(&session.0.key, state.clock.now_micros()),
        idle_minutes: crate::unlocked::DEFAULT_IDLE.as_secs() / 60,
        error,
        next,
    })
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only a path of this site (never `//host` or a URL) is followed after unlocking.
/// Whitespace and control characters are refused too: browsers drop tabs and
/// newlines from URLs, which would turn `/<TAB>/host` into `//host`.
fn safe_next(next: &str) -> String {
    if next.starts_with('/')
        && !next.starts_with("//")
        && next.chars().all(|c| c.is_ascii_graphic() && c != '\\')
    {
        next.to_owned()
    } else {
        String::new()
    }
}

pub async fn page(
    State(state): State<WebState>,
    session: FullSession,
    crate::web::extract::Query(q): crate::web::extract::Query<NextQuery>,
) -> Result<Response, WebError> {
    session.require(Action::UnlockOwnViewerKey, Object::User(session.0.user.id))?;
    page_with(&state, &session, None, safe_next(&q.next)).await
}

/// Secrets from a form go straight into a buffer wiped on drop (the request body
/// they were parsed from is axum's and is not wiped: best effort).
fn zeroizing<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

#[derive(Deserialize)]
pub struct EnableForm {
    #[serde(default, deserialize_with = "zeroizing")]
    passphrase: Zeroizing<String>,
    #[serde(default, deserialize_with = "zeroizing")]
    repeat: Zeroizing<String>,
    /// Set by the "turn back on" form: the owner's existing key, no new one.
    #[serde(default)]
    resume: String,
}

pub async fn enable(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<EnableForm>,
) -> Result<Response, WebError> {
    // Off: turning it on is the owner's. On: anyone with an account may enrol a
    // passphrase of their own and become a recipient of new recordings.
    let index = state.index.clone();
    let on =
        blocking(move || e2e::is_enabled(&index).map_err(|e| WebError::Internal(e.to_string())))
            .await?;
    if on {
        session.require(Action::EnrolOwnViewerKey, Object::User(session.0.user.id))?;
    } else {
        session.require(Action::EnableEndToEnd, Object::System)?;
    }
    if form.passphrase.trim().is_empty() {
        return missing(&state, &session, "Choose a passphrase.").await;
    }
    if !on && !form.resume.is_empty() {
        return switch(state, session, form.passphrase, true).await;
    }
    let (index, store) = (state.index.clone(), state.store.clone());
    let (user, name, now) = (
        session.0.user.id,
        session.0.user.username.clone(),
        state.clock.now_micros(),
    );
    let enabled = blocking(move || {
        let add = if on { e2e::enrol } else { e2e::enable };
        Ok(add(
            &index,
            &store,
            user,
            &name,
            &form.passphrase,
            &form.repeat,
            now,
        ))
    })
    .await?;
    let recovery = match enabled {
        Ok(key) => key,
        Err(
            e @ (E2eError::WeakPassphrase(_)
            | E2eError::Mismatch
            | E2eError::AlreadyEnabled
            | E2eError::TooManyViewers),
        ) => {
            let status = if matches!(e, E2eError::AlreadyEnabled | E2eError::TooManyViewers) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            return with_status(
                status,
                page_with(&state, &session, Some(e.to_string()), String::new()).await,
            );
        }
        Err(e) => return Err(WebError::Internal(e.to_string())),
    };
    let subject = if on {
        "a viewer key of their own: new recordings are sealed to it too"
    } else {
        "new recordings are sealed to the viewers' keys"
    };
    audit(
        &state,
        &session.0,
        AuditKind::EndToEndEnabled,
        subject.into(),
    )
    .await?;
    RecoveryPage::show(&state, &session, &recovery, false).await
}

#[derive(Deserialize)]
pub struct UnlockForm {
    #[serde(default, deserialize_with = "zeroizing")]
    secret: Zeroizing<String>,
    #[serde(default)]
    next: String,
}

pub async fn unlock(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<UnlockForm>,
) -> Result<Response, WebError> {
    let user = session.0.user.id;
    session.require(Action::UnlockOwnViewerKey, Object::User(user))?;
    let next = safe_next(&form.next);
    let typed = Zeroizing::new(form.secret.trim().to_owned());
    if typed.is_empty() {
        return with_status(
            StatusCode::BAD_REQUEST,
            page_with(
                &state,
                &session,
                Some("Type your passphrase or recovery key.".into()),
                next,
            )
            .await,
        );
    }
    let (index, now) = (state.index.clone(), state.clock.now_micros());
    let opened =
        blocking(move || Ok(e2e::unlock(&index, Some(user), &Secret::guess(typed), now))).await?;
    match opened {
        Ok(viewer) => {
            state.unlocked.put(session.0.key, user, viewer, now);
            audit(
                &state,
                &session.0,
                AuditKind::EndToEndUnlocked,
                "this session".into(),
            )
            .await?;
            Ok(see_other(
                if next.is_empty() {
                    "/end-to-end"
                } else {
                    &next
                },
                &[],
            ))
        }
        Err(e) => {
            let status = match &e {
                E2eError::WrongSecret => {
                    audit(
                        &state,
                        &session.0,
                        AuditKind::EndToEndUnlockFailed,
                        "wrong passphrase or recovery key".into(),
                    )
                    .await?;
                    StatusCode::UNAUTHORIZED
                }
                E2eError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                E2eError::NotEnabled => StatusCode::CONFLICT,
                _ => return Err(WebError::Internal(e.to_string())),
            };
            with_status(
                status,
                page_with(&state, &session, Some(e.to_string()), next).await,
            )
        }
    }
}

#[derive(Deserialize)]
pub struct DisableForm {
    #[serde(default, deserialize_with = "zeroizing")]
    passphrase: Zeroizing<String>,
}

/// `POST /end-to-end/disable`: the owner turns the mode off for new recordings,
/// proving their passphrase (a stolen session alone cannot).
pub async fn disable(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<DisableForm>,
) -> Result<Response, WebError> {
    session.require(Action::EnableEndToEnd, Object::System)?;
    if form.passphrase.trim().is_empty() {
        return missing(&state, &session, "Type your passphrase to turn it off.").await;
    }
    switch(state, session, form.passphrase, false).await
}

/// Turns the mode off (`on` false) or back on with the session user's passphrase.
async fn switch(
    state: WebState,
    session: FullSession,
    passphrase: Zeroizing<String>,
    on: bool,
) -> Result<Response, WebError> {
    let (index, store) = (state.index.clone(), state.store.clone());
    let (user, now) = (session.0.user.id, state.clock.now_micros());
    let switched = blocking(move || {
        // Trimmed as the unlock form trims it.
        let secret = Secret::guess(Zeroizing::new(passphrase.trim().to_owned()));
        Ok(if on {
            e2e::turn_back_on(&index, &store, user, &secret, now)
        } else {
            e2e::turn_off(&index, &store, user, &secret, now)
        })
    })
    .await?;
    match switched {
        Ok(()) => {
            let (kind, subject) = if on {
                (AuditKind::EndToEndEnabled, "turned back on")
            } else {
                (
                    AuditKind::EndToEndDisabled,
                    "new recordings are wrapped by the master key again",
                )
            };
            audit(&state, &session.0, kind, subject.into()).await?;
            Ok(see_other("/end-to-end", &[]))
        }
        Err(e) => {
            let status = match &e {
                E2eError::WrongSecret => StatusCode::UNAUTHORIZED,
                E2eError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                E2eError::NotEnabled | E2eError::AlreadyEnabled => StatusCode::CONFLICT,
                _ => return Err(WebError::Internal(e.to_string())),
            };
            with_status(
                status,
                page_with(&state, &session, Some(e.to_string()), String::new()).await,
            )
        }
    }
}

#[derive(Deserialize)]
pub struct ChangePassphraseForm {
    /// The current passphrase or the recovery key.
    #[serde(default, deserialize_with = "zeroizing")]
    current: Zeroizing<String>,
    #[serde(default, deserialize_with = "zeroizing")]
    passphrase: Zeroizing<String>,
    #[serde(default, deserialize_with = "zeroizing")]
    repeat: Zeroizing<String>,
}

/// `POST /end-to-end/passphrase`: a viewer re-locks their own key under a new
/// passphrase, proving the current passphrase or the recovery key (throttled like an
/// unlock). The key itself stays, so everything sealed to it still opens; other
/// sessions of this user that had it unlocked are locked (whoever used the old
/// passphrase there must now know the new one).
pub async fn change_passphrase(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<ChangePassphraseForm>,
) -> Result<Response, WebError> {
    let user = session.0.user.id;
    session.require(Action::UnlockOwnViewerKey, Object::User(user))?;
    let current = Zeroizing::new(form.current.trim().to_owned());
    if current.is_empty() || form.passphrase.trim().is_empty() {
        let why = "Type your current passphrase (or recovery key) and a new passphrase.";
        return missing(&state, &session, why).await;
    }
    let (index, store) = (state.index.clone(), state.store.clone());
    let (name, now) = (session.0.user.username.clone(), state.clock.now_micros());
    let current = Secret::guess(current);
    let by = match current {
        Secret::Passphrase(_) => "the current passphrase",
        Secret::RecoveryKey(_) => "the recovery key",
    };
    let changed = blocking(move || {
        Ok(e2e::change_passphrase(
            &index,
            &store,
            user,
            &name,
            &current,
            &form.passphrase,
            &form.repeat,
            now,
        ))
    })
    .await?;
    if let Err(e) = changed {
        return refused(&state, &session, e).await;
    }
    relocked(
        &state,
        &session,
        AuditKind::EndToEndPassphraseChanged,
        format!("end-to-end passphrase changed (proved with {by})"),
        AlertKind::E2ePassphraseChanged,
        "The end-to-end passphrase of your Porchlight account was changed. If this was not you, unlock with your recovery key, change the passphrase again and make a new recovery key.",
    )
    .await?;
    Ok(see_other("/end-to-end", &[]))
}

#[derive(Deserialize)]
pub struct NewRecoveryForm {
    #[serde(default, deserialize_with = "zeroizing")]
    passphrase: Zeroizing<String>,
}

/// `POST /end-to-end/recovery-key`: a viewer replaces their recovery key (lost, or
/// seen by someone), proving the current passphrase; the new one is shown once, as
/// at enrolment, and the old one stops opening the key.
pub async fn new_recovery_key(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(form): CsrfForm<NewRecoveryForm>,
) -> Result<Response, WebError> {
    let user = session.0.user.id;
    session.require(Action::UnlockOwnViewerKey, Object::User(user))?;
    if form.passphrase.trim().is_empty() {
        return missing(
            &state,
            &session,
            "Type your passphrase to make a new recovery key.",
        )
        .await;
    }
    let (index, store, now) = (
        state.index.clone(),
        state.store.clone(),
        state.clock.now_micros(),
    );
    let made = blocking(move || {
        Ok(e2e::new_recovery_key(
            &index,
            &store,
            user,
            &form.passphrase,
            now,
        ))
    })
    .await?;
    let recovery = match made {
        Ok(key) => key,
        Err(e) => return refused(&state, &session, e).await,
    };
    relocked(
        &state,
        &session,
        AuditKind::EndToEndRecoveryKeyReplaced,
        "new end-to-end recovery key made; the old one no longer works".into(),
        AlertKind::E2eRecoveryKeyReplaced,
        "A new end-to-end recovery key was made for your Porchlight account; the old one no longer works. If this was not you, change your end-to-end passphrase and make a new recovery key.",
    )
    .await?;
    RecoveryPage::show(&state, &session, &recovery, true).await
}

/// After a re-locking: other sessions of this user lose their unlocked key, and the
/// change is audited and alerted (a stolen session that knew the old secret must
/// not go unnoticed).
async fn relocked(
    state: &WebState,
    session: &FullSession,
    kind: AuditKind,
    subject: String,
    alert: AlertKind,
    message: &str,
) -> Result<(), WebError> {
    let user = session.0.user.id;
    state.unlocked.lock_user_except(user, &session.0.key);
    audit(state, &session.0, kind, subject).await?;
    let (auth, message) = (state.auth.clone(), message.to_owned());
    blocking(move || {
        auth.notice_to_user(user, alert, message);
        Ok(())
    })
    .await
}

/// 400 and the page again, saying which field a form left empty.
async fn missing(state: &WebState, session: &FullSession, why: &str) -> Result<Response, WebError> {
    with_status(
        StatusCode::BAD_REQUEST,
        page_with(state, session, Some(why.into()), String::new()).await,
    )
}

/// The page again with why a passphrase change or a new recovery key was refused;
/// a wrong secret is audited as a failed unlock (it is counted as one).
async fn refused(
    state: &WebState,
    session: &FullSession,
    e: E2eError,
) -> Result<Response, WebError> {
    let status = match &e {
        E2eError::WrongSecret => {
            audit(
                state,
                &session.0,
                AuditKind::EndToEndUnlockFailed,
                "wrong passphrase or recovery key".into(),
            )
            .await?;
            StatusCode::UNAUTHORIZED
        }
        E2eError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        E2eError::WeakPassphrase(_) | E2eError::Mismatch => StatusCode::BAD_REQUEST,
        E2eError::NotEnabled => StatusCode::CONFLICT,
        _ => return Err(WebError::Internal(e.to_string())),
    };
    with_status(
        status,
        page_with(state, session, Some(e.to_string()), String::new()).await,
    )
}

/// `POST /end-to-end/migrate`: once the mode is off, the owner's unlocked session
/// re-seals the recordings and event thumbnails it can open under the master key;
/// what it did goes to the activity log.
pub async fn migrate(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    session.require(Action::EnableEndToEnd, Object::System)?;
    let index = state.index.clone();
    let paused = blocking(move || Ok(index.e2e_paused()?)).await?;
    if !paused {
        return Err(WebError::BadRequest(E2eError::StillOn.to_string()));
    }
    let viewer = state
        .unlocked
        .get(&session.0.key, state.clock.now_micros())
        .ok_or_else(|| WebError::Locked("migration".into()))?;
    let (index, store) = (state.index.clone(), state.store.clone());
    let report = blocking(move || {
        e2e::migrate_all(&index, &store, &viewer).map_err(|e| match e {
            E2eError::MigrationRunning => WebError::Conflict(e.to_string()),
            e => WebError::Internal(e.to_string()),
        })
    })
    .await?;
    state.layouts.clear();
    audit(
        &state,
        &session.0,
        AuditKind::EndToEndMigrated,
        report.to_string(),
    )
    .await?;
    Ok(see_other("/end-to-end", &[]))
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn lock(
    State(state): State<WebState>,
    session: FullSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    session.require(Action::UnlockOwnViewerKey, Object::User(session.0.user.id))?;
    if state.unlocked.lock(&session.0.key) {
        audit(
            &state,
            &session.0,
            AuditKind::EndToEndLocked,
            "this session".into(),
        )
        .await?;
    }
    Ok(see_other("/end-to-end", &[]))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_of_this_site_are_followed_after_unlocking() {
        assert_eq!(safe_next("/recordings/00ab"), "/recordings/00ab");
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "recordings/1",
        ] {
            assert_eq!(safe_next(bad), "", "{bad:?}");
        }
    }
}
