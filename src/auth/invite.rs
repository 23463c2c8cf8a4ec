//! Shared users: the owner invites with a one-time link (48 hours), the invitee picks
//! a name and password and then enrols TOTP like everyone; the owner can remove a
//! shared user, which ends every session of theirs at once.
//!
//! The invitation's secret (256 bits, hex) is only ever in the link's fragment and in
//! the form the invitee posts; the index keeps its SHA-256. A secret with that much
//! entropy needs no salt or slow hash: nobody can guess one.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{
    session, session_actor, throttle, Auth, AuthError, ClientInfo, Issued, PasswordConfirmed,
    Session,
};
use crate::audit::Actor;
use crate::index::{
    AlertKind, AuditKind, InvitationEntry, Role, SessionStage, SupportGrant, UserEntry, UserId,
};
use crate::model::RecordingId;

/// How long an invitation can be used.
pub const INVITATION_LIFETIME: Duration = Duration::from_secs(48 * 3600);
/// Shortest and longest support access.
pub const SUPPORT_MIN: Duration = Duration::from_secs(3600);
pub const SUPPORT_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// An invitation as the owner's list shows it.
#[derive(Clone, Debug)]
pub struct PendingInvitation {
    /// Hex of the secret's hash: names the invitation without revealing it.
    pub handle: String,
    pub note: String,
    pub created_micros: i64,
    pub expires_micros: i64,
    pub role: Role,
}

fn hash_of(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.trim().as_bytes()).into()
}

impl Auth {
    /// Makes an invitation for a shared user; returns its secret, for the link
    /// (shown once). The account it makes outlives "log out all" and a password
    /// change, so the owner's password must have been typed again just now.
    pub fn invite(
        &self,
        owner: &Session,
        _confirmed: &PasswordConfirmed,
        note: &str,
    ) -> Result<String, AuthError> {
        let (secret, note) = self.new_invitation(owner, note, Role::Shared, None)?;
        self.inner.audit.record(
            AuditKind::UserInvited,
            &session_actor(owner),
            format!("invitation for {note:?}, valid 48 hours"),
        );
        Ok(secret)
    }

    /// Grants time-limited support access: an invitation that makes a support
    /// account, which may see camera health and diagnostics and the `recordings`
    /// ticked, until `lifetime` from now. Returns the invitation's secret. As for
    /// [`Auth::invite`], the owner's password must have been typed again just now.
    pub fn grant_support(
        &self,
        owner: &Session,
        _confirmed: &PasswordConfirmed,
        helper: &str,
        lifetime: Duration,
        recordings: Vec<RecordingId>,
    ) -> Result<String, AuthError> {
        if lifetime < SUPPORT_MIN || lifetime > SUPPORT_MAX {
            return Err(AuthError::Invalid(
                "support access lasts between 1 hour and 7 days".into(),
            ));
        }
        let grant = SupportGrant {
            expires_micros: self.now() + lifetime.as_micros() as i64,
            recordings,
            granted_by: owner.user.id,
        };
        let ticked = grant.recordings.len();
        let hours = lifetime.as_secs() / 3600;
        let (secret, helper) = self.new_invitation(owner, helper, Role::Support, Some(grant))?;
        self.inner.audit.record(
            AuditKind::SupportGranted,
            &session_actor(owner),
            format!("support access for {helper:?}: {hours} hour(s), camera health and {ticked} recording(s)"),
        );
        self.raise_to_owners(
            AlertKind::SupportGranted,
            format!(
                "Support access was granted to {helper:?} for {hours} hour(s), with {ticked} recording(s). You can revoke it under Support access."
            ),
        );
        Ok(secret)
    }

    fn new_invitation(
        &self,
        owner: &Session,
        note: &str,
        role: Role,
        support: Option<SupportGrant>,
    ) -> Result<(String, String), AuthError> {
        if owner.user.role != Role::Owner {
            return Err(AuthError::Invalid("only the owner invites".into()));
        }
        let note: String = note
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        let secret = session::random_hex(32);
        let now = self.now();
        let mut expires_micros = now + INVITATION_LIFETIME.as_micros() as i64;
        if let Some(grant) = &support {
            expires_micros = expires_micros.min(grant.expires_micros);
        }
        let entry = InvitationEntry {
            created_by: owner.user.id,
            note: note.clone(),
            created_micros: now,
            expires_micros,
            role,
            support,
        };
        self.inner.index.put_invitation(&hash_of(&secret), &entry)?;
        Ok((secret, note))
    }

    /// Pending invitations, dropping expired ones.
    pub fn invitations(&self) -> Result<Vec<PendingInvitation>, AuthError> {
        let now = self.now();
        let mut out = Vec::new();
        for (hash, entry) in self.inner.index.all_invitations()? {
            if entry.expires_micros <= now {
                self.inner.index.take_invitation(&hash)?;
                continue;
            }
            out.push(PendingInvitation {
                handle: hex::encode(hash),
                note: entry.note,
                created_micros: entry.created_micros,
                expires_micros: entry.expires_micros,
                role: entry.role,
            });
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.created_micros));
        Ok(out)
    }

    /// Withdraws a pending invitation by its handle; false if there was none.
    pub fn revoke_invitation(&self, owner: &Session, handle: &str) -> Result<bool, AuthError> {
        let Some(hash) = hex::decode(handle)
            .ok()
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
        else {
            return Ok(false);
        };
        let Some(entry) = self.inner.index.take_invitation(&hash)? else {
            return Ok(false);
        };
        self.inner.audit.record(
            AuditKind::InvitationRevoked,
            &session_actor(owner),
            format!("invitation for {:?}", entry.note),
        );
        Ok(true)
    }

    /// Creates a shared user from an invitation; the session returned must enrol
    /// TOTP next. A wrong, used or expired invitation counts as a failed login.
    pub async fn accept_invitation(
        &self,
        secret: &str,
        username: &str,
        new_password: String,
        email: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let hash = hash_of(secret);
        // Per address: a key shared by everyone would let any stranger block every
        // invitation; a 256-bit secret needs no global limit.
        let keys = [
            format!("invitation:{}", throttle::address_key(client.ip)),
            throttle::address_key(client.ip),
        ];
        let _attempt = self.enter_attempt("(invitation)", &keys, client).await?;
        let (k, c) = (keys.clone(), client.clone());
        let invitation = self
            .off_thread(move |auth| {
                auth.refuse_if_throttled("(invitation)", &k, &c)?;
                match auth.inner.index.get_invitation(&hash)? {
                    Some(e) if e.expires_micros > auth.now() => Ok(e),
                    _ => {
                        auth.count_failure("(invitation)", &k, &c, "invitation")?;
                        Err(AuthError::BadInvitation)
                    }
                }
            })
            .await?;
        let user = self
            .new_account(
                username,
                new_password,
                email,
                invitation.role,
                invitation.support,
            )
            .await?;
        let client = client.clone();
        self.off_thread(move |auth| {
            if !auth.inner.index.create_user(&user)? {
                return Err(AuthError::Invalid("That user name is taken; choose another.".into()));
            }
            // Taken only now, so a taken name does not use the invitation up; if two
            // requests raced with it, the loser's account goes again.
            let Some(invitation) = auth.inner.index.take_invitation(&hash)? else {
                auth.inner.index.remove_user(user.id)?;
                return Err(AuthError::BadInvitation);
            };
            auth.clear_failures(&keys)?;
            let actor = Actor::user(user.id, &user.username, Some(client.ip));
            auth.inner.audit.record(
                AuditKind::InvitationAccepted,
                &actor,
                format!("shared user {:?} (invitation for {:?})", user.username, invitation.note),
            );
            auth.raise_to_owners(
                AlertKind::NewSharedUser,
                format!(
                    "{:?} accepted an invitation and is now a {} (from address {}). If you did not invite them, remove them under Users.",
                    user.username,
                    user.role.label(),
                    client.ip
                ),
            );
            tracing::info!(user = %user.id, "shared user created from an invitation; two-step enrolment next");
            auth.start_session(user.id, SessionStage::Enrolment, &client)
        })
        .await
    }

    /// Removes a shared user: every session of theirs ends at once. The owner cannot
    /// be removed. False if there was no such shared user.
    pub fn remove_user(&self, owner: &Session, id: UserId) -> Result<bool, AuthError> {
        if owner.user.role != Role::Owner {
            return Err(AuthError::Invalid("only the owner removes users".into()));
        }
        let Some(user) = self.inner.index.get_user(id)? else {
            return Ok(false);
        };
        if user.role == Role::Owner {
            return Err(AuthError::Invalid("the owner cannot be removed".into()));
        }
        let (sessions, tokens) = self.remove_account(&user)?;
        tracing::info!(user = %id, sessions, "shared user removed");
        self.inner.audit.record(
            AuditKind::UserRemoved,
            &session_actor(owner),
            format!(
                "shared user {:?} ({sessions} session(s) ended, {tokens} token(s) revoked)",
                user.username
            ),
        );
        Ok(true)
    }

    /// A shared user deletes their own account: every session of theirs ends at once
    /// (this one included), their tokens, alerts and notification choices go with it,
    /// and every owner gets an alert. The owner and support helpers cannot do this.
    /// The audit entries they left stay (the owner's record of what happened).
    pub fn delete_own_account(&self, session: &Session) -> Result<(), AuthError> {
        let user = &session.user;
        if user.role != Role::Shared {
            return Err(AuthError::Invalid(
                "only a shared user can delete their own account".into(),
            ));
        }
        let (sessions, tokens) = self.remove_account(user)?;
        tracing::info!(user = %user.id, sessions, "shared user deleted their own account");
        self.inner.audit.record(
            AuditKind::AccountDeleted,
            &session_actor(session),
            format!(
                "shared user {:?} deleted their own account ({sessions} session(s) ended, {tokens} token(s) revoked)",
                user.username
            ),
        );
        self.raise_to_owners(
            AlertKind::AccountDeleted,
            format!(
                "{:?} deleted their shared account; they can no longer log in.",
                user.username
            ),
        );
        Ok(())
    }

    /// Removes an account that is not the owner's: sessions and tokens first (from
    /// then on nothing of theirs is accepted), then the user, their alerts and their
    /// notification choices. Returns (sessions ended, tokens revoked).
    pub(crate) fn remove_account(&self, user: &UserEntry) -> Result<(usize, usize), AuthError> {
        if user.role == Role::Owner {
            return Err(AuthError::Invalid("the owner cannot be removed".into()));
        }
        let index = &self.inner.index;
        let sessions = index.remove_user_sessions(user.id)?;
        let tokens = index.remove_user_tokens(user.id)?;
        // From now on new recordings are not sealed to their end-to-end key.
        crate::e2e::remove_viewer(index, &self.inner.store, user.id)
            .map_err(|e| AuthError::Internal(format!("end-to-end viewer key: {e}")))?;
        index.remove_user(user.id)?;
        index.remove_user_alerts(user.id)?;
        index.remove_notification_prefs(user.id)?;
        index.flush()?;
        Ok((sessions, tokens))
    }
}
