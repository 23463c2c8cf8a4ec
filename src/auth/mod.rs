//! Accounts, logins and sessions: passwords (Argon2id), mandatory TOTP with recovery
//! codes, the one-time setup code, server-side sessions, login throttling, security
//! alerts, API tokens of linked services ([`token`]), and the authorisation rules
//! ([`policy`]).
//!
//! Pure logic lives in the submodules and takes the time as an argument; [`Auth`] ties
//! it to the index (the only place anything is stored) and the [`Clock`]. Nothing here
//! knows about HTTP: the web layer hands in what the client sent ([`ClientInfo`]) and
//! turns [`Issued`] into cookies. Secrets (passwords, TOTP seeds, session ids, codes)
//! never appear in a log line or an error; the setup code's single log line is the one
//! deliberate exception.

mod attempts;
pub mod device;
mod flows;
pub mod invite;
pub mod password;
mod password_change;
pub mod policy;
mod recent;
pub mod recovery;
pub mod session;
pub mod setup;
pub mod throttle;
pub mod token;
pub mod totp;
mod two_step;
mod unfinished;

pub use flows::TOTP_PURPOSE;
pub use password_change::PasswordConfirmed;
pub use two_step::{Reenrolled, ResetCode};

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::audit::{Actor, Audit};
use crate::clock::Clock;
use crate::index::{
    AlertEntry, AlertKind, AuditKind, Index, IndexError, Role, SessionEntry, SessionStage,
    UserEntry, UserId,
};
use crate::store::{Store, StoreError};
use password::PasswordHashing;
use policy::Principal;
pub use session::Lifetimes;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Deliberately the same for an unknown account and a wrong password.
    #[error("wrong user name or password")]
    InvalidCredentials,
    #[error("wrong code")]
    InvalidCode,
    #[error("wrong setup code")]
    BadSetupCode,
    /// Unknown, used and expired invitations look the same.
    #[error("this invitation is not valid")]
    BadInvitation,
    #[error("too many failed attempts")]
    Throttled { until_micros: i64, blocked: bool },
    #[error("the owner account already exists")]
    SetupDone,
    #[error("{0}")]
    WeakPassword(String),
    #[error("{0}")]
    Invalid(String),
    #[error("this step of the login has expired; start again")]
    WrongStage,
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Sealing(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the client presented, as far as authentication cares.
#[derive(Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: String,
    /// The device cookie's value, if the browser sent one.
    pub device: Option<String>,
}

impl std::fmt::Debug for ClientInfo {
    /// Leaves out the device cookie's value (whether there was one is enough).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInfo")
            .field("ip", &self.ip)
            .field("user_agent", &self.user_agent)
            .field("has_device_cookie", &self.device.is_some())
            .finish()
    }
}

/// A session just created: the web layer sets these as cookies.
pub struct Issued {
    pub session_id: String,
    pub stage: SessionStage,
    /// A new device cookie for a browser that had none.
    pub device_cookie: Option<String>,
}

impl std::fmt::Debug for Issued {
    /// Leaves out the session id and device cookie: either lets its holder in.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("stage", &self.stage)
            .field("new_device_cookie", &self.device_cookie.is_some())
            .finish_non_exhaustive()
    }
}

/// A live session and its user, found from a cookie. Its `Debug` shows no secret
/// (the entry's and user's leave theirs out; `key` is the id's hash).
#[derive(Clone, Debug)]
pub struct Session {
    pub key: [u8; 32],
    pub entry: SessionEntry,
    pub user: UserEntry,
}

impl Session {
    /// Who this session acts as: only a full login is a user.
    pub fn principal(&self) -> Principal {
        match (self.entry.stage, self.user.role) {
            (SessionStage::Full, Role::Support) => Principal::Support {
                id: self.user.id,
                recordings: self
                    .user
                    .support
                    .as_ref()
                    .map(|g| g.recordings.clone())
                    .unwrap_or_default(),
            },
            (SessionStage::Full, role) => Principal::User {
                id: self.user.id,
                role,
            },
            _ => Principal::Anonymous,
        }
    }

    /// A short public handle of the session (not its id), for "log out this device".
    pub fn handle(&self) -> String {
        hex::encode(self.key)
    }
}

/// A support account without a grant is treated as expired: deny by default.
fn support_expired(user: &UserEntry, now: i64) -> bool {
    user.support
        .as_ref()
        .is_none_or(|g| now >= g.expires_micros)
}

/// The audit actor of a logged-in session, at the address of the request it acts
/// in, not where it logged in nor what the index holds: [`Auth::session`] hands back
/// the session with that request's address as its last one, whether or not it was
/// written to the index (see [`recent`]).
pub fn session_actor(session: &Session) -> Actor {
    Actor::user(
        session.user.id,
        &session.user.username,
        session.entry.last_address().parse().ok(),
    )
}

/// A security alert for the mailer (or anything else that wants to know).
#[derive(Clone, Debug)]
pub struct AlertNotice {
    pub user: UserId,
    pub alert: AlertEntry,
}

/// A logged-in device as the Devices page shows it.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub handle: String,
    pub description: String,
    /// Where it logged in.
    pub ip: String,
    /// Where it was last used.
    pub last_ip: String,
    pub first_seen_micros: i64,
    pub last_seen_micros: i64,
    pub this_device: bool,
}

/// The authentication service. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    index: Index,
    /// Seals TOTP seeds under the master key: they must not rest in clear in sled.
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    hashing: PasswordHashing,
    lifetimes: Lifetimes,
    data_dir: PathBuf,
    /// The setup code while no owner exists.
    setup_code: Mutex<Option<String>>,
    /// One guess at a time per throttling key.
    attempts: attempts::AttemptGate,
    /// Which addresses each session's use was written from lately.
    written: recent::Written,
    /// When users were last told of a login left at its second step.
    unfinished_alerted: unfinished::Alerted,
    /// When the owners were last told of a login block, and what was held back since.
    block_alerts: Mutex<throttle::BlockAlerts>,
    alerts: Option<mpsc::UnboundedSender<AlertNotice>>,
    audit: Audit,
}

impl Auth {
    /// Starts the service. With no owner yet, makes a setup code, writes it to
    /// `data_dir/setup-code` (0600) and logs it once.
    pub fn new(
        index: Index,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        lifetimes: Lifetimes,
        data_dir: PathBuf,
        alerts: Option<mpsc::UnboundedSender<AlertNotice>>,
    ) -> Result<Auth, AuthError> {
        let has_owner = index.all_users()?.iter().any(|u| u.role == Role::Owner);
        let setup_code = if has_owner {
            setup::remove_file(&data_dir);
            None
        } else {
            let code = setup::new_code();
            let path = setup::write_file(&data_dir, &code).map_err(|e| {
                AuthError::Internal(format!("cannot write the setup code file: {e}"))
            })?;
            tracing::warn!(
                "no owner account yet: open the web UI and enter the one-time setup code {code} (also in {})",
                path.display()
            );
            Some(code)
        };
        Ok(Auth {
            inner: Arc::new(Inner {
                audit: Audit::new(index.clone(), clock.clone()),
                index,
                store,
                clock,
                hashing: PasswordHashing::new()?,
                lifetimes,
                data_dir,
                setup_code: Mutex::new(setup_code),
                attempts: Default::default(),
                unfinished_alerted: Default::default(),
                written: Default::default(),
                block_alerts: Default::default(),
                alerts,
            }),
        })
    }

    /// The audit log, for the actions the web layer carries out itself.
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    pub fn now(&self) -> i64 {
        self.inner.clock.now_micros()
    }

    /// Whether the owner account still has to be created.
    pub fn needs_setup(&self) -> bool {
        self.setup_code().is_some()
    }

    fn setup_code(&self) -> Option<String> {
        match self.inner.setup_code.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs `create` (which makes the owner account, or returns false if one exists)
    /// while holding the setup code, and spends the code if it made the owner: of two
    /// setups racing, the second finds the code gone and creates nobody.
    fn create_owner_once(
        &self,
        create: impl FnOnce() -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        let mut code = self
            .inner
            .setup_code
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if code.is_none() || !create()? {
            return Err(AuthError::SetupDone);
        }
        *code = None;
        setup::remove_file(&self.inner.data_dir);
        Ok(())
    }

    /// The live session a cookie value names, if any, used by a request from `from`:
    /// what it does is logged from there, and the Devices page shows it as where the
    /// session was last seen. Expired sessions are removed (and are not failed
    /// logins: nothing is counted).
    pub fn session(&self, id: &str, from: IpAddr) -> Result<Option<Session>, AuthError> {
        self.live_session(session::key_of(id), Some(from))
    }

    /// The session under `key` if it is still live, read afresh (its user's current
    /// rights), without counting as a use: responses that stay open (live view, the
    /// notices stream) ask this to end with their session, and an open page must not
    /// keep an idle session alive.
    pub fn still_live(&self, key: &[u8; 32]) -> Result<Option<Session>, AuthError> {
        self.live_session(*key, None)
    }

    /// The session under `key` for a bounded transfer it started (a download, the
    /// export of everything), asked before each piece: as [`Self::still_live`], but
    /// without the idle limit, and each piece is a use (`last_seen` moves, at most
    /// once a minute, keeping the address). Under [`Self::still_live`] any transfer
    /// longer than `session_idle` failed part-way and logged its owner out. Unlike an
    /// open page (live view), which would keep an unattended session alive for ever,
    /// a transfer ends by itself once its bytes are sent, and the person who started
    /// it is waiting for it; the idle limit counts from its last piece. Logging out,
    /// "log out all", a password change elsewhere, the user's removal and
    /// `session_max` still end it. Removes nothing: a session found dead here is
    /// removed by its next request, as ever.
    pub fn still_open(&self, key: &[u8; 32]) -> Result<Option<Session>, AuthError> {
        let Some(mut entry) = self.inner.index.get_session(key)? else {
            return Ok(None);
        };
        let now = self.now();
        if !session::within_lifetime(&entry, now, self.inner.lifetimes) {
            return Ok(None);
        }
        let Some(user) = self.inner.index.get_user(entry.user)? else {
            return Ok(None);
        };
        if user.role == Role::Support && support_expired(&user, now) {
            return Ok(None);
        }
        if session::needs_touch(&entry, now) {
            // A session ended meanwhile stays ended: the update keeps an absent key absent.
            entry.last_seen_micros = now;
            self.inner
                .index
                .touch_session(key, now, entry.last_address())?;
        }
        Ok(Some(Session {
            key: *key,
            entry,
            user,
        }))
    }

    /// `from`: the address of a request using the session (a use: it moves
    /// `last_seen`); `None` only asks.
    fn live_session(
        &self,
        key: [u8; 32],
        from: Option<IpAddr>,
    ) -> Result<Option<Session>, AuthError> {
        let Some(mut entry) = self.inner.index.get_session(&key)? else {
            return Ok(None);
        };
        let now = self.now();
        if !session::is_live(&entry, now, self.inner.lifetimes) {
            self.inner.index.remove_session(&key)?;
            self.unfinished_login(&entry);
            return Ok(None);
        }
        let Some(user) = self.inner.index.get_user(entry.user)? else {
            self.inner.index.remove_session(&key)?;
            return Ok(None);
        };
        if user.role == Role::Support && support_expired(&user, now) {
            self.end_support(&user)?;
            return Ok(None);
        }
        if let Some(from) = from {
            // A new address is written at once (it is what Devices shows), any at
            // most once a minute ([`recent`]). The session handed back names this
            // request's address either way: what it does is logged from there.
            let written = &self.inner.written;
            let at_once = written.write_at_once(&key, entry.last_address(), from, now);
            entry.last_ip = Some(from.to_string());
            if at_once || session::needs_touch(&entry, now) {
                entry.last_seen_micros = now;
                self.inner
                    .index
                    .touch_session(&key, now, entry.last_address())?;
                written.note(&key, from, now);
            }
        }
        Ok(Some(Session { key, entry, user }))
    }

    /// Removes a support account whose time is up, as any account is removed (its
    /// sessions, tokens, alerts and preferences go too, flushed).
    fn end_support(&self, user: &UserEntry) -> Result<(), AuthError> {
        let (sessions, _tokens) = self.remove_account(user)?;
        tracing::info!(user = %user.id, sessions, "support access expired");
        self.inner.audit.record(
            AuditKind::UserRemoved,
            &Actor {
                user: Some(user.id),
                name: "expiry".into(),
                address: None,
            },
            format!("support access of {:?} expired", user.username),
        );
        Ok(())
    }

    /// Removes every support account whose time is up; returns how many.
    pub fn expire_support(&self) -> Result<usize, AuthError> {
        let now = self.now();
        let mut n = 0;
        for user in self.inner.index.all_users()? {
            if user.role == Role::Support && support_expired(&user, now) {
                self.end_support(&user)?;
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn logout(&self, session: &Session) -> Result<(), AuthError> {
        self.inner.index.remove_session(&session.key)?;
        self.unfinished_login(&session.entry);
        tracing::info!(user = %session.user.id, "logged out");
        self.inner.audit.record(
            AuditKind::Logout,
            &session_actor(session),
            device::describe(&session.entry.user_agent),
        );
        Ok(())
    }

    /// Every logged-in device of the session's user, most recently used first.
    pub fn devices(&self, current: &Session) -> Result<Vec<DeviceInfo>, AuthError> {
        let mut out: Vec<DeviceInfo> = self
            .inner
            .index
            .all_sessions()?
            .into_iter()
            .filter(|(_, e)| e.user == current.user.id && e.stage == SessionStage::Full)
            .filter(|(_, e)| session::is_live(e, self.now(), self.inner.lifetimes))
            .map(|(key, e)| DeviceInfo {
                handle: hex::encode(key),
                description: device::describe(&e.user_agent),
                ip: e.ip.clone(),
                last_ip: e.last_address().to_owned(),
                first_seen_micros: e.created_micros,
                last_seen_micros: e.last_seen_micros,
                this_device: key == current.key,
            })
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse(d.last_seen_micros));
        Ok(out)
    }

    /// Ends one of the current user's sessions by its handle; its key, or `None` if
    /// no such session of theirs.
    pub fn logout_device(
        &self,
        current: &Session,
        handle: &str,
    ) -> Result<Option<[u8; 32]>, AuthError> {
        let user = current.user.id;
        let Some(key) = hex::decode(handle)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
        else {
            return Ok(None);
        };
        match self.inner.index.get_session(&key)? {
            Some(e) if e.user == user => {
                self.inner.index.remove_session(&key)?;
                tracing::info!(user = %user, "device logged out");
                self.inner.audit.record(
                    AuditKind::DeviceLoggedOut,
                    &session_actor(current),
                    format!(
                        "{} at {}",
                        device::describe(&e.user_agent),
                        e.last_address()
                    ),
                );
                Ok(Some(key))
            }
            _ => Ok(None),
        }
    }

    /// Ends every session of the current user, this one included.
    pub fn logout_all(&self, current: &Session) -> Result<usize, AuthError> {
        let user = current.user.id;
        let n = self.inner.index.remove_user_sessions(user)?;
        tracing::info!(user = %user, sessions = n, "all devices logged out");
        self.inner.audit.record(
            AuditKind::AllDevicesLoggedOut,
            &session_actor(current),
            format!("{n} session(s) ended"),
        );
        Ok(n)
    }

    pub fn alerts(&self, user: UserId) -> Result<Vec<AlertEntry>, AuthError> {
        Ok(self.inner.index.user_alerts(user)?)
    }

    /// Records an alert for `user` and hands it to the mailer.
    fn raise(&self, user: UserId, kind: AlertKind, message: String) {
        let alert = AlertEntry {
            time_micros: self.now(),
            kind,
            message,
        };
        tracing::warn!(user = %user, kind = ?kind, "security alert: {}", alert.message);
        if let Err(e) = self.inner.index.add_alert(user, &alert) {
            tracing::error!(user = %user, "cannot store a security alert: {e}");
        }
        if let Some(tx) = &self.inner.alerts {
            let _ = tx.send(AlertNotice { user, alert });
        }
    }

    /// A security alert to `user` from outside this module (their end-to-end
    /// passphrase changed): shown and mailed like every alert.
    pub fn notice_to_user(&self, user: UserId, kind: AlertKind, message: String) {
        self.raise(user, kind, message);
    }

    /// A security notice to every owner from outside this module (a share link was
    /// made): shown and mailed like every alert, whatever anyone's preferences.
    pub fn notice_to_owners(&self, kind: AlertKind, message: String) {
        self.raise_to_owners(kind, message);
    }

    /// Alerts every owner.
    fn raise_to_owners(&self, kind: AlertKind, message: String) {
        match self.inner.index.all_users() {
            Ok(users) => {
                for u in users.iter().filter(|u| u.role == Role::Owner) {
                    self.raise(u.id, kind, message.clone());
                }
            }
            Err(e) => tracing::error!("cannot list owners for an alert: {e}"),
        }
    }

    /// A new session at `stage` for `user`; a browser without a device cookie gets
    /// one (what "known devices" and login alerts go by).
    fn start_session(
        &self,
        user: UserId,
        stage: SessionStage,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let (device_cookie, device_hash) = self.device_of(client);
        let session_id = self.new_session(user, stage, client, device_hash)?;
        Ok(Issued {
            session_id,
            stage,
            device_cookie,
        })
    }

    /// Writes a new session and makes it durable before the browser gets its cookie.
    fn new_session(
        &self,
        user: UserId,
        stage: SessionStage,
        client: &ClientInfo,
        device_hash: String,
    ) -> Result<String, AuthError> {
        let id = session::new_id();
        let now = self.now();
        let entry = SessionEntry {
            user,
            stage,
            created_micros: now,
            last_seen_micros: now,
            csrf: session::random_hex(32),
            ip: client.ip.to_string(),
            last_ip: None,
            user_agent: client.user_agent.chars().take(512).collect(),
            device: device_hash,
            pending_totp: None,
        };
        self.inner
            .index
            .put_session(&session::key_of(&id), &entry)?;
        self.inner.index.flush()?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::SimulatedClock;
    use crate::index::{NotificationPrefs, SupportGrant};

    /// A user with no password, two-step or address: enough for the rules here.
    pub(super) fn user_entry(
        id: UserId,
        name: &str,
        role: Role,
        support: Option<SupportGrant>,
    ) -> UserEntry {
        UserEntry {
            id,
            username: name.into(),
            role,
            password_hash: String::new(),
            email: None,
            totp: None,
            recovery_codes: Vec::new(),
            created_micros: 0,
            known_devices: Vec::new(),
            support,
            reenrolment: None,
        }
    }

    /// An [`Auth`] on a fresh store and index with one owner, at a simulated time.
    pub(super) struct Fixture {
        pub _dir: tempfile::TempDir,
        pub auth: Auth,
        pub index: Index,
        pub clock: SimulatedClock,
        pub owner: UserId,
    }

    pub(super) fn fixture() -> Fixture {
        let (dir, store, index) = crate::testutil::store_and_index();
        let owner = UserId(42);
        index
            .create_user(&user_entry(owner, "owner", Role::Owner, None))
            .expect("user");
        let clock = SimulatedClock::new(1_000_000_000_000);
        let lifetimes = Lifetimes {
            idle: Duration::from_secs(3600),
            max: Duration::from_secs(86400),
        };
        let auth = Auth::new(
            index.clone(),
            Arc::new(store),
            Arc::new(clock.clone()),
            lifetimes,
            dir.path().join("data"),
            None,
        )
        .expect("auth");
        Fixture {
            _dir: dir,
            auth,
            index,
            clock,
            owner,
        }
    }

    /// Stores a login of `user` at a step before the full session (from 192.0.2.1,
    /// device "d") and returns its id.
    pub(super) fn put_half_done_session(f: &Fixture, user: UserId, stage: SessionStage) -> String {
        let now = f.auth.now();
        let id = session::new_id();
        let entry = SessionEntry {
            user,
            stage,
            created_micros: now,
            last_seen_micros: now,
            csrf: String::new(),
            ip: "192.0.2.1".into(),
            last_ip: None,
            user_agent: "test".into(),
            device: "d".into(),
            pending_totp: None,
        };
        f.index
            .put_session(&session::key_of(&id), &entry)
            .expect("session");
        id
    }

    /// `{:?}` of what carries a secret (a log line, a panic message) shows none.
    #[test]
    fn debug_output_shows_no_secret() {
        let secrets = [
            "SESSIONID0123",
            "DEVICECOOKIE0123",
            "PASSWORDHASH0123",
            "RECOVERYHASH0123",
            "RECOVERYSALT0123",
            "TOTPSEALED0123",
            "CSRFTOKEN0123",
            "PENDINGSEED0123",
            "DEVICEHASH0123",
        ];
        let issued = Issued {
            session_id: secrets[0].into(),
            stage: SessionStage::Full,
            device_cookie: Some(secrets[1].into()),
        };
        let client = ClientInfo {
            ip: IpAddr::from([192, 0, 2, 1]),
            user_agent: "test".into(),
            device: Some(secrets[1].into()),
        };
        let mut user = user_entry(UserId(1), "owner", Role::Owner, None);
        user.password_hash = secrets[2].into();
        user.recovery_codes = vec![crate::index::RecoveryCodeEntry {
            salt: secrets[4].into(),
            hash: secrets[3].into(),
            used: false,
        }];
        user.totp = Some(crate::index::TotpEntry {
            secret_sealed: secrets[5].into(),
            last_step: 0,
        });
        user.known_devices = vec![secrets[8].into()];
        let session = Session {
            key: [7; 32],
            entry: SessionEntry {
                user: UserId(1),
                stage: SessionStage::Full,
                created_micros: 0,
                last_seen_micros: 0,
                csrf: secrets[6].into(),
                ip: "192.0.2.1".into(),
                last_ip: None,
                user_agent: "test".into(),
                device: secrets[8].into(),
                pending_totp: Some(secrets[7].into()),
            },
            user,
        };
        let printed = [
            format!("{issued:?}"),
            format!("{client:?}"),
            format!("{session:?}"),
            format!("{:?}", session.user),
            format!("{:?}", session.entry),
        ];
        for text in &printed {
            for secret in secrets {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        assert!(printed[2].contains("owner") && printed[2].contains("192.0.2.1"));
    }

    #[test]
    fn expired_support_leaves_no_alerts_or_preferences_behind() {
        let Fixture {
            _dir,
            auth,
            index,
            clock,
            owner,
        } = fixture();
        let grant = SupportGrant {
            expires_micros: auth.now() + 3_600_000_000,
            recordings: Vec::new(),
            granted_by: owner,
        };
        let helper = UserId(2);
        index
            .create_user(&user_entry(helper, "helper", Role::Support, Some(grant)))
            .expect("helper");
        let alert = AlertEntry {
            time_micros: 5,
            kind: AlertKind::NewDevice,
            message: "new login".into(),
        };
        index.add_alert(helper, &alert).expect("alert");
        let prefs = NotificationPrefs {
            email: true,
            ..Default::default()
        };
        index.put_notification_prefs(helper, &prefs).expect("prefs");
        assert_eq!(auth.expire_support().expect("expire"), 0, "not yet");
        clock.advance_micros(3_601_000_000);
        assert_eq!(auth.expire_support().expect("expire"), 1);
        assert!(index.get_user(helper).expect("get").is_none());
        assert!(index.user_alerts(helper).expect("alerts").is_empty());
        assert!(!index.notification_prefs(helper).expect("prefs").email);
    }
}
