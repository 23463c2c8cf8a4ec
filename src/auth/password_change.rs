//! Changing one's password: the current one is checked (a wrong one counts as a
//! failed login), the new one must be strong, every *other* session of the user ends,
//! and the user gets a security notice (shown and mailed) — which, like every
//! security notice, cannot be turned off.

use super::attempts::AttemptPass;
use super::{password, session_actor, Auth, AuthError, ClientInfo, Session};
use crate::index::{AlertKind, AuditKind, UpdateError};

/// Proof that the session's user has just typed their own password again
/// ([`Auth::confirm_password`]): what making an invitation or granting support access
/// takes, so no caller can skip the check. Only this module makes one.
#[derive(Debug)]
pub struct PasswordConfirmed(());

impl Auth {
    /// Checks the logged-in user's own password before a change to their account: a
    /// throttled account or address is refused first, and a wrong password counts as
    /// a failed login (`what` names the attempt in the log). Returns the throttle keys
    /// to clear once the change is made, and the attempt's pass, to hold until a later
    /// failure of the same change (a wrong code) is recorded.
    ///
    /// A browser the user has logged in with before is counted under its device key,
    /// as at login: a stranger who got the account's name blocked must not stop the
    /// owner changing the password the alert told them to change.
    pub(super) async fn confirm_own_password(
        &self,
        current: &Session,
        password: String,
        client: &ClientInfo,
        what: &'static str,
    ) -> Result<([String; 2], AttemptPass), AuthError> {
        let user = &current.user;
        let keys = self.throttle_keys(&user.username, Some(user), client);
        let attempt = self.enter_attempt(&user.username, &keys, client).await?;
        let (k, c, name) = (keys.clone(), client.clone(), user.username.clone());
        self.off_thread(move |auth| auth.refuse_if_throttled(&name, &k, &c))
            .await?;
        let ok = self
            .inner
            .hashing
            .verify(Some(user.password_hash.clone()), password)
            .await?;
        if !ok {
            let (k, c, name) = (keys.clone(), client.clone(), user.username.clone());
            self.off_thread(move |auth| auth.count_failure(&name, &k, &c, what))
                .await?;
            return Err(AuthError::InvalidCredentials);
        }
        Ok((keys, attempt))
    }

    /// Checks the logged-in user's own password again before they make lasting access
    /// (an invitation, support access, a share link): each outlives "log out all" and
    /// a password change, so a borrowed or stolen session must not be enough. The same
    /// check, throttling and failed-login count as [`Auth::confirm_own_password`];
    /// on success the user's failures are cleared, as after a login.
    pub async fn confirm_password(
        &self,
        current: &Session,
        password: String,
        client: &ClientInfo,
        what: &'static str,
    ) -> Result<PasswordConfirmed, AuthError> {
        let (keys, _attempt) = self
            .confirm_own_password(current, password, client, what)
            .await?;
        self.off_thread(move |auth| auth.clear_failures(&keys))
            .await?;
        Ok(PasswordConfirmed(()))
    }

    pub async fn change_password(
        &self,
        current: &Session,
        old_password: String,
        new_password: String,
        client: &ClientInfo,
    ) -> Result<usize, AuthError> {
        let user = current.user.clone();
        let (keys, _attempt) = self
            .confirm_own_password(current, old_password, client, "password change")
            .await?;
        if let Some(why) = password::weakness(&new_password, &[&user.username]) {
            return Err(AuthError::WeakPassword(why));
        }
        let hash = self.inner.hashing.hash(new_password).await?;
        let (session, client) = (current.clone(), client.clone());
        self.off_thread(move |auth| {
            let changed: Result<(), UpdateError<()>> =
                auth.inner.index.update_user(session.user.id, |u| {
                    u.password_hash = hash.clone();
                    Ok(())
                });
            match changed {
                Ok(()) => {}
                Err(UpdateError::Index(e)) => return Err(e.into()),
                Err(_) => return Err(AuthError::WrongStage),
            }
            // Every other browser of this user must log in again with the new password.
            let mut ended = 0;
            for (key, entry) in auth.inner.index.all_sessions()? {
                if entry.user == session.user.id && key != session.key {
                    auth.inner.index.remove_session(&key)?;
                    ended += 1;
                }
            }
            auth.clear_failures(&keys)?;
            tracing::info!(user = %session.user.id, sessions = ended, "password changed");
            auth.inner.audit.record(
                AuditKind::PasswordChanged,
                &session_actor(&session),
                format!("{ended} other session(s) ended"),
            );
            auth.raise(
                session.user.id,
                AlertKind::PasswordChanged,
                format!(
                    "The password of your Porchlight account was changed from {} at address {}; {ended} other device(s) were logged out. If this was not you, use a recovery code to log in and change it again.",
                    super::device::describe(&client.user_agent),
                    client.ip
                ),
            );
            Ok(ended)
        })
        .await
    }
}
