//! Changing two-step verification after enrolment:
//!
//! - **Re-enrolment** by the user themselves (a new phone, a seed that may have
//!   leaked): the current password *and* a current code from the old authenticator or
//!   a recovery code (a reset never bypasses the second factor, ASVS 6.4.3), and a code
//!   from the new authenticator to prove it was set up. The new seed replaces the old
//!   one in the same index update, so the old authenticator stops working at once, and
//!   ten new recovery codes replace the old ones. Every *other* session of the user
//!   ends, as after a password change (ASVS 7.4.3).
//! - **Reset** by the owner of another account (a shared user who lost their phone and
//!   their codes): the seed and recovery codes are deleted and every session of that
//!   user ends. The owner is shown a one-time re-enrolment code (once; stored salted
//!   and hashed like a recovery code; valid [`REENROLMENT_CODE_LIFETIME`]) to hand to
//!   the person: their next login goes from the password to enrolment, which also
//!   asks for that code. Without it the password alone would be a full login for
//!   whoever enrols first (someone who phished the password and then asked the owner
//!   for a reset). A wrong code counts as a failed login; an expired one needs another
//!   reset.
//!
//! Both are in the audit log as `two_factor_changed` and send the user the "two-step
//! verification changed" security notice (shown and mailed), which, like every
//! security notice, cannot be turned off. Wrong passwords and codes count as failed
//! logins.

use std::time::Duration;

use super::{recovery, session_actor, totp, Auth, AuthError, ClientInfo, Session};
use crate::index::{
    AlertKind, AuditKind, ReenrolmentCode, Role, SessionStage, TotpEntry, UpdateError, UserId,
};

/// How long the owner's re-enrolment code works: long enough to meet the person,
/// short enough that a forgotten code does not stay a way in.
pub const REENROLMENT_CODE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a confirmed re-enrolment gives back.
pub struct Reenrolled {
    /// The ten new recovery codes, shown once.
    pub codes: Vec<String>,
    /// How many other sessions of the user were ended.
    pub ended: usize,
}

/// What the owner is shown once after resetting someone's two-step verification.
pub struct ResetCode {
    /// The one-time re-enrolment code to hand over in person.
    pub code: String,
    /// Whose two-step verification was reset.
    pub username: String,
    pub expires_micros: i64,
}

/// Why the closure that swaps the seed refused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    OldFactor,
    NewCode,
}

impl Auth {
    /// The seed a logged-in user is offered to re-enrol with: made once per session
    /// and kept sealed in that session until it is confirmed or the session ends.
    pub fn reenrolment_secret(&self, current: &Session) -> Result<String, AuthError> {
        if current.entry.stage != SessionStage::Full {
            return Err(AuthError::WrongStage);
        }
        if let Some(sealed) = &current.entry.pending_totp {
            return super::flows::open_seed(&self.inner.store, sealed).ok_or(AuthError::WrongStage);
        }
        let secret = totp::new_secret();
        let sealed = self
            .inner
            .store
            .seal_secret(super::flows::TOTP_PURPOSE, secret.as_bytes())?;
        if !self
            .inner
            .index
            .set_pending_totp(&current.key, Some(sealed))?
        {
            return Err(AuthError::WrongStage);
        }
        Ok(secret)
    }

    /// Replaces the user's authenticator with the one offered by
    /// [`Self::reenrolment_secret`]. `old_code` is a code from the current authenticator
    /// or a recovery code; `new_code` one from the new authenticator.
    pub async fn reenrol(
        &self,
        current: &Session,
        pass: String,
        old_code: String,
        new_code: String,
        client: &ClientInfo,
    ) -> Result<Reenrolled, AuthError> {
        let user = current.user.clone();
        if current.entry.stage != SessionStage::Full || user.totp.is_none() {
            return Err(AuthError::WrongStage);
        }
        let (keys, _attempt) = self
            .confirm_own_password(current, pass, client, "two-step change")
            .await?;
        let (session, client) = (current.clone(), client.clone());
        self.off_thread(move |auth| auth.swap_seed(&session, &old_code, &new_code, &client, &keys))
            .await
    }

    fn swap_seed(
        &self,
        current: &Session,
        old_code: &str,
        new_code: &str,
        client: &ClientInfo,
        keys: &[String; 2],
    ) -> Result<Reenrolled, AuthError> {
        // The session as stored now: the page may have been opened in another tab.
        let Some(entry) = self.inner.index.get_session(&current.key)? else {
            return Err(AuthError::WrongStage);
        };
        let Some(sealed) = entry.pending_totp.clone() else {
            return Err(AuthError::WrongStage);
        };
        let store = &self.inner.store;
        let new_secret = super::flows::open_seed(store, &sealed).ok_or(AuthError::WrongStage)?;
        let now_secs = u64::try_from(self.now() / 1_000_000).unwrap_or(0);
        let old_is_totp = old_code.chars().filter(|c| !c.is_whitespace()).count() == totp::DIGITS;
        let (codes, stored) = recovery::generate();
        let swapped: Result<(), UpdateError<Refusal>> =
            self.inner.index.update_user(current.user.id, |u| {
                // The new app first: a refusal then leaves the old code unchecked, so a
                // code is never found good without being used up.
                let step =
                    totp::verify(&new_secret, new_code, now_secs, None).ok_or(Refusal::NewCode)?;
                let t = u.totp.as_ref().ok_or(Refusal::OldFactor)?;
                if old_is_totp {
                    let last = (t.last_step > 0).then_some(t.last_step);
                    let secret = super::flows::open_seed(store, &t.secret_sealed)
                        .ok_or(Refusal::OldFactor)?;
                    totp::verify(&secret, old_code, now_secs, last).ok_or(Refusal::OldFactor)?;
                } else {
                    recovery::find(&u.recovery_codes, old_code).ok_or(Refusal::OldFactor)?;
                }
                // Replacing the seed and the codes uses up the old code with them.
                u.totp = Some(TotpEntry {
                    secret_sealed: sealed.clone(),
                    last_step: step,
                });
                u.recovery_codes = stored.clone();
                Ok(())
            });
        let user = &current.user;
        match swapped {
            Ok(()) => {}
            Err(UpdateError::Refused(why)) => {
                let reason = match why {
                    Refusal::OldFactor => "code",
                    Refusal::NewCode => "new code",
                };
                self.count_failure(&user.username, keys, client, reason)?;
                return Err(AuthError::InvalidCode);
            }
            Err(UpdateError::NoSuchUser) => return Err(AuthError::WrongStage),
            Err(UpdateError::Index(e)) => return Err(e.into()),
        }
        // If the session itself was ended meanwhile it stays ended.
        self.inner.index.set_pending_totp(&current.key, None)?;
        let mut ended = 0;
        for (key, e) in self.inner.index.all_sessions()? {
            if e.user == user.id && key != current.key {
                self.inner.index.remove_session(&key)?;
                ended += 1;
            }
        }
        self.clear_failures(keys)?;
        let with = if old_is_totp {
            "a code from the old app"
        } else {
            "a recovery code"
        };
        tracing::info!(user = %user.id, sessions = ended, "two-step verification set up again");
        self.inner.audit.record(
            AuditKind::TwoFactorChanged,
            &session_actor(current),
            format!(
                "new authenticator app (confirmed with the password and {with}), ten new recovery codes; {ended} other session(s) ended"
            ),
        );
        self.raise(
            user.id,
            AlertKind::TwoFactorChanged,
            format!(
                "Two-step verification of your Porchlight account was set up again with a new authenticator app, from {} at address {}: codes from the old app and the old recovery codes no longer work, and {ended} other device(s) were logged out. If this was not you, someone has your password and your codes: tell the owner of this Porchlight at once.",
                super::device::describe(&client.user_agent),
                client.ip
            ),
        );
        Ok(Reenrolled { codes, ended })
    }

    /// The owner resets another account's two-step verification: its seed and
    /// recovery codes are deleted and every session of it ends; the user enrols again
    /// at their next login with the one-time re-enrolment code returned here (shown
    /// once to the owner, who hands it over in person). None if there is no such user.
    pub fn reset_two_step(
        &self,
        owner: &Session,
        id: UserId,
    ) -> Result<Option<ResetCode>, AuthError> {
        if owner.user.role != Role::Owner {
            return Err(AuthError::Invalid(
                "only the owner resets two-step verification".into(),
            ));
        }
        let Some(user) = self.inner.index.get_user(id)? else {
            return Ok(None);
        };
        if user.role == Role::Owner {
            return Err(AuthError::Invalid(
                "The owner sets up their own two-step verification again from their account (Devices), with their password and a code."
                    .into(),
            ));
        }
        let (code, stored) = recovery::one();
        let lifetime = i64::try_from(REENROLMENT_CODE_LIFETIME.as_micros()).unwrap_or(i64::MAX);
        let expires_micros = self.now().saturating_add(lifetime);
        let pending = ReenrolmentCode {
            code: stored,
            expires_micros,
        };
        let reset: Result<(), UpdateError<()>> = self.inner.index.update_user(id, |u| {
            u.totp = None;
            u.recovery_codes.clear();
            u.reenrolment = Some(pending.clone());
            Ok(())
        });
        match reset {
            Ok(()) => {}
            Err(UpdateError::Index(e)) => return Err(e.into()),
            Err(_) => return Ok(None),
        }
        let ended = self.inner.index.remove_user_sessions(id)?;
        tracing::info!(user = %id, sessions = ended, "two-step verification reset by the owner");
        self.inner.audit.record(
            AuditKind::TwoFactorChanged,
            &session_actor(owner),
            format!(
                "two-step verification of {:?} reset by the owner ({ended} session(s) ended; a one-time re-enrolment code valid {} days was issued to the owner, which they need to set it up again at their next login)",
                user.username,
                REENROLMENT_CODE_LIFETIME.as_secs() / 86_400
            ),
        );
        self.raise(
            id,
            AlertKind::TwoFactorChanged,
            format!(
                "{} reset two-step verification of your Porchlight account: your authenticator app and recovery codes no longer work and you were logged out everywhere. At your next login you set up an authenticator app again, with the one-time code {} gives you in person.",
                owner.user.username, owner.user.username
            ),
        );
        Ok(Some(ResetCode {
            code,
            username: user.username,
            expires_micros,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::super::tests::{fixture, user_entry};
    use super::super::{totp, AuthError, ClientInfo};
    use crate::index::{Role, SessionStage, UserId};

    /// Enrols `user` (stored as given) from a login at the enrolment step, with a
    /// right code from the new app and no owner's code.
    async fn enrol_with_password_alone(known_devices: Vec<String>) -> Result<(), AuthError> {
        let f = fixture();
        let mut user = user_entry(UserId(7), "alice", Role::Shared, None);
        user.known_devices = known_devices;
        f.index.create_user(&user).expect("user");
        let now = f.auth.now();
        let id = super::super::tests::put_half_done_session(&f, user.id, SessionStage::Enrolment);
        let ip = IpAddr::from([192, 0, 2, 1]);
        let s = f.auth.session(&id, ip).expect("get").expect("live");
        let secret = f.auth.enrolment_secret(&s).expect("secret");
        let s = f.auth.session(&id, ip).expect("get").expect("live");
        let code =
            totp::code_at(&secret, u64::try_from(now / 1_000_000).expect("time")).expect("code");
        let client = ClientInfo {
            ip,
            user_agent: "test".into(),
            device: None,
        };
        let done = f.auth.finish_enrolment(&s, &code, "", &client).await;
        let stored = f.index.get_user(user.id).expect("get").expect("user");
        assert_eq!(stored.totp.is_some(), done.is_ok());
        done.map(|_| ())
    }

    /// An account reset before the owner's one-time code existed has no code, no
    /// app and no recovery codes, like an invitee who never enrolled, but has logged
    /// in before: it must not enrol with the password alone.
    #[tokio::test]
    async fn an_account_reset_before_reset_codes_cannot_enrol_with_the_password_alone() {
        match enrol_with_password_alone(vec!["a device".into()]).await {
            Err(AuthError::Invalid(m)) => assert!(m.contains("reset your two-step"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        enrol_with_password_alone(Vec::new())
            .await
            .expect("an invitee who never enrolled does");
    }
}
