//! The login flows: creating the owner with the setup code, password, second factor
//! (TOTP or a recovery code) and TOTP enrolment. Every failure is counted by
//! [`super::throttle`] under the account name and the address, and logged in one fixed
//! format a fail2ban filter can match:
//!
//! ```text
//! authentication failure for "NAME" from ADDRESS: REASON
//! ```
//!
//! (NAME is escaped; REASON is `password`, `code`, `reset code`, `setup code` or
//! `throttled`.)

use sha2::{Digest, Sha256};

use super::attempts::{AttemptPass, TooManyWaiting};
use super::throttle::{self, Verdict};
use super::{
    password, recovery, session, setup, totp, Auth, AuthError, ClientInfo, Issued, Session,
};
use crate::audit::Actor;
use crate::index::{
    AlertKind, AuditKind, Role, SessionStage, SupportGrant, TotpEntry, UpdateError, UserEntry,
    UserId,
};
use crate::store::Store;

/// Why an enrolment was not stored.
#[derive(Clone, Copy)]
enum EnrolRefusal {
    /// Enrolled meanwhile (another tab): this login step is over.
    AlreadyEnrolled,
    /// The owner's re-enrolment code was missing, wrong or expired.
    ResetCode,
    /// The owner reset two-step verification before it came with a one-time code
    /// ([`UserEntry::two_step_reset`]): only another reset lets the user enrol.
    NoResetCode,
}

/// Known devices remembered per user.
const MAX_KNOWN_DEVICES: usize = 32;

fn device_hash(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

fn log_failure(name: &str, client: &ClientInfo, reason: &str) {
    let name: String = name.chars().take(64).collect();
    tracing::warn!(target: "porchlight::auth", "authentication failure for {name:?} from {}: {reason}", client.ip);
}

/// Characters that change how a name is shown without showing themselves: zero-width
/// spaces and joiners, direction marks, bidi embeddings, overrides and isolates, the
/// byte-order mark and the soft hyphen. An invitee could use them to pass as someone
/// else in the user list and the activity log.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}' | '\u{00AD}')
}

fn valid_username(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 64 || name.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(AuthError::Invalid(
            "A user name is 1 to 64 characters, without control or invisible characters.".into(),
        ));
    }
    Ok(name.to_owned())
}

fn valid_email(email: &str) -> Result<Option<String>, AuthError> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'))
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if ok {
        Ok(Some(email.to_owned()))
    } else {
        Err(AuthError::Invalid("That is not a mail address.".into()))
    }
}

impl Auth {
    /// The throttling keys an attempt for `name` from `client` is counted under.
    pub(super) fn throttle_keys(
        &self,
        name: &str,
        user: Option<&UserEntry>,
        client: &ClientInfo,
    ) -> [String; 2] {
        let device = client.device.as_deref().map(device_hash);
        let account = match (user, device) {
            (Some(u), Some(d)) if u.known_devices.contains(&d) => {
                format!("dev:{}:{d}", u.id)
            }
            _ => throttle::account_key(name),
        };
        [account, throttle::address_key(client.ip)]
    }

    fn throttle_check(&self, keys: &[String; 2]) -> Result<Verdict, AuthError> {
        let now = self.now();
        let a = throttle::check(&self.inner.index.get_throttle(&keys[0])?, now);
        let b = throttle::check(&self.inner.index.get_throttle(&keys[1])?, now);
        Ok(throttle::worst(a, b))
    }

    pub(super) fn refuse_if_throttled(
        &self,
        name: &str,
        keys: &[String; 2],
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        match self.throttle_check(keys)? {
            Verdict::Allow => Ok(()),
            Verdict::Wait { until_micros } => {
                log_failure(name, client, "throttled");
                Err(AuthError::Throttled {
                    until_micros,
                    blocked: false,
                })
            }
            Verdict::Blocked { until_micros } => {
                log_failure(name, client, "throttled");
                Err(AuthError::Throttled {
                    until_micros,
                    blocked: true,
                })
            }
        }
    }

    /// Waits until no other attempt on `keys` is being checked (see [`super::attempts`]);
    /// the pass returned must be held until this attempt's outcome is recorded.
    pub(super) async fn enter_attempt(
        &self,
        name: &str,
        keys: &[String; 2],
        client: &ClientInfo,
    ) -> Result<AttemptPass, AuthError> {
        match self.inner.attempts.enter(keys).await {
            Ok(pass) => Ok(pass),
            Err(TooManyWaiting) => {
                log_failure(name, client, "throttled (attempts queued)");
                Err(AuthError::Throttled {
                    until_micros: self.now() + 1_000_000,
                    blocked: false,
                })
            }
        }
    }

    pub(super) fn count_failure(
        &self,
        name: &str,
        keys: &[String; 2],
        client: &ClientInfo,
        reason: &str,
    ) -> Result<(), AuthError> {
        log_failure(name, client, reason);
        let account = self
            .inner
            .index
            .find_user(name)
            .ok()
            .flatten()
            .map(|u| u.id);
        let actor = Actor {
            user: account,
            name: name.to_owned(),
            address: Some(client.ip),
        };
        self.inner
            .audit
            .record(AuditKind::LoginFailed, &actor, reason);
        let now = self.now();
        for (key, policy, what) in [
            (&keys[0], throttle::ACCOUNT, "account"),
            (&keys[1], throttle::ADDRESS, "address"),
        ] {
            let mut entry = self.inner.index.get_throttle(key)?;
            let blocked = throttle::on_failure(&mut entry, now, policy);
            self.inner.index.put_throttle(key, &entry)?;
            if blocked {
                let subject = if what == "account" {
                    format!(
                        "the account {:?}",
                        name.chars().take(64).collect::<String>()
                    )
                } else {
                    format!("the address {}", client.ip)
                };
                self.inner.audit.record(
                    AuditKind::LoginBlocked,
                    &actor,
                    format!(
                        "{subject} for {} minutes after {} failures",
                        policy.block_for_secs / 60,
                        entry.failures
                    ),
                );
                self.login_blocked(format!(
                    "Logins for {subject} are blocked for {} minutes after {} failed attempts (last from {}).",
                    policy.block_for_secs / 60,
                    entry.failures,
                    client.ip
                ));
            }
        }
        self.inner.index.flush()?;
        Ok(())
    }

    /// Tells the owners of a key's first block, unless they were told of one within
    /// the hour ([`throttle::BlockAlerts`]); then the block is counted and mentioned in
    /// the next alert. Every block is in the activity log either way.
    fn login_blocked(&self, message: String) {
        let told = self
            .inner
            .block_alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .offer(self.now());
        match told {
            None => tracing::info!("login block not alerted: the owners were told within the hour"),
            Some(None) => self.raise_to_owners(AlertKind::LoginBlocked, message),
            Some(Some(held)) => self.raise_to_owners(
                AlertKind::LoginBlocked,
                format!(
                    "{message} Also {} other account name(s) or address(es) blocked since {}.",
                    held.count,
                    crate::clock::rfc3339(held.since_micros)
                ),
            ),
        }
    }

    pub(super) fn clear_failures(&self, keys: &[String; 2]) -> Result<(), AuthError> {
        for key in keys {
            self.inner.index.put_throttle(key, &Default::default())?;
        }
        Ok(())
    }

    /// Removes login-throttle entries whose failures are forgotten (a quiet day, no
    /// block left); returns how many. Run by the web server's expiry task, so keys
    /// tried once (made-up names, IPv6 /64s) do not pile up in the index.
    pub fn expire_throttles(&self) -> Result<usize, AuthError> {
        let now = self.now();
        let n = self
            .inner
            .index
            .remove_throttles_where(|e| throttle::is_forgotten(e, now))?;
        Ok(n)
    }

    /// A new account from what its person typed (checked; the password hashed off
    /// the runtime), not yet stored and without TOTP, which is enrolled next.
    pub(super) async fn new_account(
        &self,
        username: &str,
        new_password: String,
        email: &str,
        role: Role,
        support: Option<SupportGrant>,
    ) -> Result<UserEntry, AuthError> {
        let username = valid_username(username)?;
        let email = valid_email(email)?;
        if let Some(why) = password::weakness(&new_password, &[&username]) {
            return Err(AuthError::WeakPassword(why));
        }
        Ok(UserEntry {
            id: UserId::random(),
            username,
            role,
            support,
            password_hash: self.inner.hashing.hash(new_password).await?,
            email,
            totp: None,
            recovery_codes: Vec::new(),
            created_micros: self.now(),
            known_devices: Vec::new(),
            reenrolment: None,
        })
    }

    /// Creates the owner account with the setup code; the session returned must enrol
    /// TOTP next.
    pub async fn setup_owner(
        &self,
        code: &str,
        username: &str,
        new_password: String,
        email: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let Some(expected) = self.setup_code() else {
            return Err(AuthError::SetupDone);
        };
        // Per address: a key shared by everyone would let any stranger block the
        // setup for good; the code's 60 bits need no global limit.
        let keys = [
            format!("setup:{}", throttle::address_key(client.ip)),
            throttle::address_key(client.ip),
        ];
        let _attempt = self.enter_attempt("(setup)", &keys, client).await?;
        let (typed, k, c) = (code.to_owned(), keys.clone(), client.clone());
        self.off_thread(move |auth| {
            auth.refuse_if_throttled("(setup)", &k, &c)?;
            if !setup::matches(&expected, &typed) {
                auth.count_failure("(setup)", &k, &c, "setup code")?;
                return Err(AuthError::BadSetupCode);
            }
            Ok(())
        })
        .await?;
        let user = self
            .new_account(username, new_password, email, Role::Owner, None)
            .await?;
        let client = client.clone();
        self.off_thread(move |auth| {
            auth.create_owner_once(|| Ok(auth.inner.index.create_user(&user)?))?;
            auth.clear_failures(&keys)?;
            auth.inner.audit.record(
                AuditKind::OwnerCreated,
                &Actor::user(user.id, &user.username, Some(client.ip)),
                format!("owner account {:?}", user.username),
            );
            tracing::info!(user = %user.id, "owner account created; two-step verification enrolment next");
            auth.start_session(user.id, SessionStage::Enrolment, &client)
        })
        .await
    }

    /// The device cookie to set (if the browser had none) and its hash.
    pub(super) fn device_of(&self, client: &ClientInfo) -> (Option<String>, String) {
        match &client.device {
            Some(d) => (None, device_hash(d)),
            None => {
                let d = session::random_hex(32);
                let h = device_hash(&d);
                (Some(d), h)
            }
        }
    }

    /// First step: the password. Unknown accounts cost the same hash and get the same
    /// answer as a wrong password.
    pub async fn login(
        &self,
        username: &str,
        pass: String,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let name = username.trim().to_owned();
        let (n, c) = (name.clone(), client.clone());
        let (user, keys) = self
            .off_thread(move |auth| {
                let user = if n.is_empty() || n.chars().count() > 64 {
                    None
                } else {
                    auth.inner.index.find_user(&n)?
                };
                let keys = auth.throttle_keys(&n, user.as_ref(), &c);
                Ok((user, keys))
            })
            .await?;
        let _attempt = self.enter_attempt(&name, &keys, client).await?;
        let (n, k, c) = (name.clone(), keys.clone(), client.clone());
        self.off_thread(move |auth| auth.refuse_if_throttled(&n, &k, &c))
            .await?;
        let ok = self
            .inner
            .hashing
            .verify(user.as_ref().map(|u| u.password_hash.clone()), pass)
            .await?;
        let client = client.clone();
        self.off_thread(move |auth| {
            let Some(user) = user.filter(|_| ok) else {
                auth.count_failure(&name, &keys, &client, "password")?;
                return Err(AuthError::InvalidCredentials);
            };
            let stage = if user.totp.is_some() {
                SessionStage::SecondFactor
            } else {
                SessionStage::Enrolment
            };
            let issued = auth.start_session(user.id, stage, &client)?;
            tracing::info!(user = %user.id, ip = %client.ip, "password accepted; second factor next");
            Ok(issued)
        })
        .await
    }

    /// Runs index work (reads, writes, fsyncs) on a blocking thread.
    pub(super) async fn off_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Auth) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let auth = self.clone();
        tokio::task::spawn_blocking(move || f(&auth))
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?
    }

    /// Second step: a TOTP code (refused if its step was used before) or a recovery
    /// code (spent).
    pub async fn second_factor(
        &self,
        current: &Session,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        if current.entry.stage != SessionStage::SecondFactor {
            return Err(AuthError::WrongStage);
        }
        let user = &current.user;
        let keys = self.throttle_keys(&user.username, Some(user), client);
        let _attempt = self.enter_attempt(&user.username, &keys, client).await?;
        let (s, code, c) = (current.clone(), code.to_owned(), client.clone());
        self.off_thread(move |auth| auth.check_second_factor(&s, &code, &c, &keys))
            .await
    }

    fn check_second_factor(
        &self,
        current: &Session,
        code: &str,
        client: &ClientInfo,
        keys: &[String; 2],
    ) -> Result<Issued, AuthError> {
        let user = &current.user;
        self.refuse_if_throttled(&user.username, keys, client)?;
        let now_secs = u64::try_from(self.now() / 1_000_000).unwrap_or(0);
        let digits = code.chars().filter(|c| !c.is_whitespace()).count() == totp::DIGITS;
        let store = &self.inner.store;
        let accepted: Result<(), UpdateError<()>> = self.inner.index.update_user(user.id, |u| {
            if digits {
                let t = u.totp.as_mut().ok_or(())?;
                let last = (t.last_step > 0).then_some(t.last_step);
                let secret = open_seed(store, &t.secret_sealed).ok_or(())?;
                t.last_step = totp::verify(&secret, code, now_secs, last).ok_or(())?;
            } else {
                let i = recovery::find(&u.recovery_codes, code).ok_or(())?;
                u.recovery_codes[i].used = true;
            }
            Ok(())
        });
        match accepted {
            Ok(()) => {}
            Err(UpdateError::Refused(())) | Err(UpdateError::NoSuchUser) => {
                self.count_failure(&user.username, keys, client, "code")?;
                return Err(AuthError::InvalidCode);
            }
            Err(UpdateError::Index(e)) => return Err(e.into()),
        }
        if !digits {
            tracing::warn!(user = %user.id, "logged in with a recovery code");
            self.inner.audit.record(
                AuditKind::RecoveryCodeUsed,
                &Actor::user(user.id, &user.username, Some(client.ip)),
                "a recovery code was spent to log in",
            );
        }
        self.complete_login(current, client, keys)
    }

    /// The secret to show during enrolment (made once per pending session).
    pub fn enrolment_secret(&self, current: &Session) -> Result<String, AuthError> {
        if current.entry.stage != SessionStage::Enrolment {
            return Err(AuthError::WrongStage);
        }
        if let Some(sealed) = &current.entry.pending_totp {
            return open_seed(&self.inner.store, sealed).ok_or(AuthError::WrongStage);
        }
        let secret = totp::new_secret();
        let sealed = self
            .inner
            .store
            .seal_secret(TOTP_PURPOSE, secret.as_bytes())?;
        if !self
            .inner
            .index
            .set_pending_totp(&current.key, Some(sealed))?
        {
            return Err(AuthError::WrongStage);
        }
        Ok(secret)
    }

    /// Confirms enrolment with a code from the new authenticator and, after the owner
    /// reset the account's two-step verification, the owner's one-time re-enrolment
    /// code (`reset_code`, ignored otherwise); returns the full session and the ten
    /// recovery codes (shown once, stored hashed).
    pub async fn finish_enrolment(
        &self,
        current: &Session,
        code: &str,
        reset_code: &str,
        client: &ClientInfo,
    ) -> Result<(Issued, Vec<String>), AuthError> {
        if current.entry.stage != SessionStage::Enrolment || current.user.totp.is_some() {
            return Err(AuthError::WrongStage);
        }
        let user = &current.user;
        let keys = self.throttle_keys(&user.username, Some(user), client);
        let _attempt = self.enter_attempt(&user.username, &keys, client).await?;
        let (s, c) = (current.clone(), client.clone());
        let codes = (code.to_owned(), reset_code.to_owned());
        self.off_thread(move |auth| auth.check_enrolment(&s, (&codes.0, &codes.1), &c, &keys))
            .await
    }

    fn check_enrolment(
        &self,
        current: &Session,
        (code, reset_code): (&str, &str),
        client: &ClientInfo,
        keys: &[String; 2],
    ) -> Result<(Issued, Vec<String>), AuthError> {
        let Some(sealed) = current.entry.pending_totp.clone() else {
            return Err(AuthError::WrongStage);
        };
        let secret = open_seed(&self.inner.store, &sealed).ok_or(AuthError::WrongStage)?;
        let user = &current.user;
        self.refuse_if_throttled(&user.username, keys, client)?;
        let now_secs = u64::try_from(self.now() / 1_000_000).unwrap_or(0);
        let Some(step) = totp::verify(&secret, code, now_secs, None) else {
            self.count_failure(&user.username, keys, client, "code")?;
            return Err(AuthError::InvalidCode);
        };
        let (codes, stored) = recovery::generate();
        let now = self.now();
        let enrolled: Result<(), UpdateError<EnrolRefusal>> =
            self.inner.index.update_user(user.id, |u| {
                if u.totp.is_some() {
                    return Err(EnrolRefusal::AlreadyEnrolled);
                }
                // After the owner's reset the password alone does not enrol: the owner's
                // one-time code must come too, and is used up with the enrolment.
                match &u.reenrolment {
                    Some(pending) => {
                        let live = now < pending.expires_micros;
                        if !live
                            || recovery::find(std::slice::from_ref(&pending.code), reset_code)
                                .is_none()
                        {
                            return Err(EnrolRefusal::ResetCode);
                        }
                    }
                    // Reset before the code existed: there is none to give.
                    None if u.two_step_reset() => return Err(EnrolRefusal::NoResetCode),
                    None => {}
                }
                u.reenrolment = None;
                u.totp = Some(TotpEntry {
                    secret_sealed: sealed.clone(),
                    last_step: step,
                });
                u.recovery_codes = stored.clone();
                Ok(())
            });
        match enrolled {
            Ok(()) => {}
            Err(UpdateError::Refused(EnrolRefusal::ResetCode)) => {
                self.count_failure(&user.username, keys, client, "reset code")?;
                return Err(AuthError::InvalidCode);
            }
            Err(UpdateError::Refused(EnrolRefusal::NoResetCode)) => {
                tracing::warn!(user = %user.id, "enrolment refused: reset before one-time codes existed");
                return Err(AuthError::Invalid(
                    "Your two-step verification was reset, and setting it up again needs a one-time code from the owner. Ask the owner to reset your two-step verification again (Users, Reset two-step) and give you the code it shows.".into(),
                ));
            }
            Err(UpdateError::Index(e)) => return Err(e.into()),
            Err(_) => return Err(AuthError::WrongStage),
        }
        tracing::info!(user = %user.id, "two-step verification enrolled");
        self.inner.audit.record(
            AuditKind::TwoFactorEnrolled,
            &Actor::user(user.id, &user.username, Some(client.ip)),
            "authenticator app enrolled, ten recovery codes issued",
        );
        let issued = self.complete_login(current, client, keys)?;
        Ok((issued, codes))
    }

    /// Both factors passed: forget failures, replace the pending session by a full one
    /// with a new id, and alert on a device the account has not logged in from. If the
    /// pending session is gone ("log out all", a password change, expiry while the
    /// code was checked), the login is refused: its removal is the check.
    fn complete_login(
        &self,
        current: &Session,
        client: &ClientInfo,
        keys: &[String; 2],
    ) -> Result<Issued, AuthError> {
        if !self.inner.index.remove_session(&current.key)? {
            tracing::warn!(user = %current.user.id, "login not completed: its pending session was ended meanwhile");
            return Err(AuthError::WrongStage);
        }
        self.clear_failures(keys)?;
        let device = current.entry.device.clone();
        let user = &current.user;
        let first_device = user.known_devices.is_empty();
        let is_new = !user.known_devices.contains(&device);
        if is_new {
            let d = device.clone();
            let r: Result<(), UpdateError<()>> = self.inner.index.update_user(user.id, |u| {
                if !u.known_devices.contains(&d) {
                    u.known_devices.push(d.clone());
                    let excess = u.known_devices.len().saturating_sub(MAX_KNOWN_DEVICES);
                    u.known_devices.drain(..excess);
                }
                Ok(())
            });
            if let Err(UpdateError::Index(e)) = r {
                return Err(e.into());
            }
        }
        if is_new && !first_device {
            self.raise(
                user.id,
                AlertKind::NewDevice,
                format!(
                    "New login to your Porchlight account from {} at address {}. If this was not you, open Devices and choose Remove all, then change your password.",
                    super::device::describe(&client.user_agent),
                    client.ip
                ),
            );
        }
        let session_id = self.new_session(user.id, SessionStage::Full, client, device)?;
        tracing::info!(user = %user.id, ip = %client.ip, "login complete");
        self.inner.audit.record(
            AuditKind::LoginOk,
            &Actor::user(user.id, &user.username, Some(client.ip)),
            super::device::describe(&client.user_agent),
        );
        Ok(Issued {
            session_id,
            stage: SessionStage::Full,
            device_cookie: None,
        })
    }
}

/// What TOTP seeds are sealed for (bound into the sealing, see `Store::seal_secret`).
pub const TOTP_PURPOSE: &str = "totp seed";

/// Opens a sealed TOTP seed (base32). A seed that does not open (another master key)
/// is logged and treated as a wrong code, never as a pass.
pub(super) fn open_seed(store: &Store, sealed: &str) -> Option<String> {
    match store.open_secret(TOTP_PURPOSE, sealed) {
        Ok(plain) => String::from_utf8(plain.to_vec()).ok(),
        Err(e) => {
            tracing::error!("a TOTP seed cannot be opened: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_step_cannot_finish_a_login_ended_by_log_out_all() {
        let f = crate::auth::tests::fixture();
        let secret = totp::new_secret();
        let mut user = crate::auth::tests::user_entry(UserId(7), "alice", Role::Shared, None);
        user.totp = Some(TotpEntry {
            secret_sealed: f
                .auth
                .inner
                .store
                .seal_secret(TOTP_PURPOSE, secret.as_bytes())
                .expect("seal"),
            last_step: 0,
        });
        f.index.create_user(&user).expect("user");
        let now = f.auth.now();
        let id = crate::auth::tests::put_half_done_session(&f, user.id, SessionStage::SecondFactor);
        let client = ClientInfo {
            ip: "192.0.2.1".parse().expect("ip"),
            user_agent: "test".into(),
            device: None,
        };
        let pending = f.auth.session(&id, client.ip).expect("get").expect("live");
        f.index.remove_user_sessions(user.id).expect("log out all");
        let code =
            totp::code_at(&secret, u64::try_from(now / 1_000_000).expect("time")).expect("code");
        let done = f.auth.second_factor(&pending, &code, &client).await;
        assert!(matches!(done, Err(AuthError::WrongStage)), "{done:?}");
        let left = f.index.all_sessions().expect("sessions");
        assert!(
            left.iter().all(|(_, e)| e.user != user.id),
            "no session made"
        );
    }

    #[tokio::test]
    async fn failures_with_made_up_names_are_removed_by_the_expiry_pass() {
        let f = crate::auth::tests::fixture();
        let client = ClientInfo {
            ip: "2001:db8:1:2::7".parse().expect("ip"),
            user_agent: "test".into(),
            device: None,
        };
        let name = "n".repeat(15_000);
        let refused = f.auth.login(&name, "wrong".into(), &client).await;
        assert!(
            matches!(refused, Err(AuthError::InvalidCredentials)),
            "{refused:?}"
        );
        let keys = f.auth.throttle_keys(&name, None, &client);
        assert!(
            keys[0].len() < 100,
            "account key of {} bytes",
            keys[0].len()
        );
        assert_eq!(f.index.get_throttle(&keys[0]).expect("get").failures, 1);
        assert_eq!(f.auth.expire_throttles().expect("expire"), 0, "not yet");
        f.clock
            .advance_micros(throttle::FORGET_AFTER_MICROS + 1_000_000);
        assert_eq!(f.auth.expire_throttles().expect("expire"), 2);
        for key in &keys {
            assert_eq!(f.index.get_throttle(key).expect("get"), Default::default());
        }
    }

    #[test]
    fn user_names_with_invisible_or_direction_characters_are_refused() {
        assert_eq!(valid_username("  Alice ").expect("valid"), "Alice");
        assert!(
            valid_username("Zoë Ødegård").is_ok(),
            "letters of any script"
        );
        for bad in [
            "ow\u{200B}ner",
            "owner\u{200F}",
            "\u{202E}renwo",
            "owner\u{2066}x\u{2069}",
            "\u{FEFF}owner",
            "own\u{00AD}er",
            "own\ner",
        ] {
            assert!(valid_username(bad).is_err(), "{bad:?}");
        }
    }
}
