//! Logins that got past the password but never completed the second step.
//!
//! A correct password followed by no valid code is the one sign that someone else
//! knows the password (ASVS 6.3.5, "MFA not completed"), so the account's user is told
//! when such a login ends unfinished: its time ran out, it was logged out, or it was
//! found expired on use. That includes a login stopped at enrolment of an account
//! whose two-step verification the owner reset (enrolment there needs the owner's
//! one-time code, so the password alone is the same sign). One alert per user per
//! [`QUIET_AFTER_ALERT`], so someone who holds the password cannot turn it into a
//! mail flood.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::{device, session, Auth, AuthError};
use crate::index::{AlertKind, SessionEntry, SessionStage, UserId};

/// After an unfinished-login alert, further ones for the same user wait this long.
pub const QUIET_AFTER_ALERT: Duration = Duration::from_secs(15 * 60);

/// When each user was last told (µs); in memory, so a restart may tell once more.
#[derive(Default)]
pub struct Alerted(Mutex<HashMap<UserId, i64>>);

impl Auth {
    /// Tells the user of `entry` (a login waiting for its second step that just ended
    /// without it), unless they were told within [`QUIET_AFTER_ALERT`].
    pub(super) fn unfinished_login(&self, entry: &SessionEntry) {
        let reset_enrolment = || {
            self.inner
                .index
                .get_user(entry.user)
                .ok()
                .flatten()
                .is_some_and(|u| u.two_step_reset())
        };
        let pending = match entry.stage {
            SessionStage::SecondFactor => true,
            SessionStage::Enrolment => reset_enrolment(),
            _ => false,
        };
        if !pending {
            return;
        }
        let now = self.now();
        let quiet = i64::try_from(QUIET_AFTER_ALERT.as_micros()).unwrap_or(i64::MAX);
        {
            let mut last = self
                .inner
                .unfinished_alerted
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.get(&entry.user).is_some_and(|t| now - t < quiet) {
                return;
            }
            last.insert(entry.user, now);
        }
        self.raise(
            entry.user,
            AlertKind::SecondStepNotCompleted,
            format!(
                "Your password was entered correctly from {} ({}), but the login was not \
                 completed with a two-step code. If this was not you, someone knows your \
                 password: change it.",
                entry.ip,
                device::describe(&entry.user_agent)
            ),
        );
    }

    /// Ends every login whose second step was not done in time, telling its user;
    /// returns how many. Run by the web server's expiry task.
    pub fn expire_pending_logins(&self) -> Result<usize, AuthError> {
        let now = self.now();
        let mut n = 0;
        for (key, entry) in self.inner.index.all_sessions()? {
            let half_done = matches!(
                entry.stage,
                SessionStage::SecondFactor | SessionStage::Enrolment
            );
            if half_done && !session::is_live(&entry, now, self.inner.lifetimes) {
                self.inner.index.remove_session(&key)?;
                self.unfinished_login(&entry);
                n += 1;
            }
        }
        Ok(n)
    }
}
