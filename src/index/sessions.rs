//! Login sessions in the index: tree `sessions`, SHA-256 of the session id (32 bytes)
//! → JSON [`SessionEntry`]. The id itself (the cookie's value) is never stored, so a
//! copy of the index logs nobody in.

use serde::{Deserialize, Serialize};

use super::users::UserId;
use super::{Index, IndexError};

/// How far a session's login has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStage {
    /// Password accepted; a TOTP or recovery code is still needed.
    SecondFactor,
    /// Password accepted, no authenticator yet: enrolment is the only page open.
    Enrolment,
    /// Fully logged in.
    Full,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry {
    pub user: UserId,
    pub stage: SessionStage,
    pub created_micros: i64,
    pub last_seen_micros: i64,
    /// The anti-CSRF token every form of this session carries (hex).
    pub csrf: String,
    /// Where the login came from.
    pub ip: String,
    /// Where the session was last used from (kept as often as `last_seen`, and at
    /// once for an address not kept within the last minute: see `auth::recent`);
    /// `None` in sessions from before it was kept: `ip`.
    #[serde(default)]
    pub last_ip: Option<String>,
    pub user_agent: String,
    /// Hash of the device cookie of the browser that logged in.
    pub device: String,
    /// During enrolment: the secret shown to the user, not yet confirmed (base32).
    /// The seed offered during enrolment, sealed like the user's (hex).
    pub pending_totp: Option<String>,
}

impl std::fmt::Debug for SessionEntry {
    /// Leaves out the CSRF token, the device cookie's hash and the enrolment seed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEntry")
            .field("user", &self.user)
            .field("stage", &self.stage)
            .field("created_micros", &self.created_micros)
            .field("last_seen_micros", &self.last_seen_micros)
            .field("ip", &self.ip)
            .field("last_ip", &self.last_ip)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl SessionEntry {
    /// Where the session was last used from: the login's address until it is used.
    pub fn last_address(&self) -> &str {
        self.last_ip.as_deref().unwrap_or(&self.ip)
    }
}

/// Writes to the sessions tree seen since [`Index::watch_session_writes`].
#[cfg(test)]
pub struct SessionWrites(sled::Subscriber);

#[cfg(test)]
impl SessionWrites {
    /// How many writes (inserts, updates, removals) happened since the last call.
    pub fn count(&mut self) -> usize {
        let mut n = 0;
        while self.0.next_timeout(std::time::Duration::ZERO).is_ok() {
            n += 1;
        }
        n
    }
}

impl Index {
    fn sessions(&self) -> Result<sled::Tree, IndexError> {
        Ok(self.db.open_tree("sessions")?)
    }

    pub fn put_session(&self, key: &[u8; 32], entry: &SessionEntry) -> Result<(), IndexError> {
        let value = serde_json::to_vec(entry).map_err(|e| IndexError::Corrupt {
            key: "sessions".into(),
            reason: e.to_string(),
        })?;
        self.sessions()?.insert(key, value)?;
        Ok(())
    }

    pub fn get_session(&self, key: &[u8; 32]) -> Result<Option<SessionEntry>, IndexError> {
        match self.sessions()?.get(key)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| IndexError::Corrupt {
                    key: format!("sessions/{}", hex::encode(key)),
                    reason: e.to_string(),
                }),
        }
    }

    /// Moves a session's last-seen time and address, only if the session still
    /// exists: a log-out (or "Remove all") racing with a request must not be undone
    /// by this write.
    pub fn touch_session(
        &self,
        key: &[u8; 32],
        at_micros: i64,
        from: &str,
    ) -> Result<(), IndexError> {
        self.sessions()?.update_and_fetch(key, |old| {
            let old = old?;
            let Ok(mut entry) = serde_json::from_slice::<SessionEntry>(old) else {
                return Some(old.to_vec());
            };
            entry.last_seen_micros = at_micros;
            entry.last_ip = Some(from.to_owned());
            Some(serde_json::to_vec(&entry).unwrap_or_else(|_| old.to_vec()))
        })?;
        Ok(())
    }

    /// Sets the seed offered during (re-)enrolment, only if the session still exists
    /// (as [`Self::touch_session`]: a reset or "Remove all" racing with the page must
    /// not bring the session back). Returns whether it existed.
    pub fn set_pending_totp(
        &self,
        key: &[u8; 32],
        sealed: Option<String>,
    ) -> Result<bool, IndexError> {
        let after = self.sessions()?.update_and_fetch(key, |old| {
            let old = old?;
            let Ok(mut entry) = serde_json::from_slice::<SessionEntry>(old) else {
                return Some(old.to_vec());
            };
            entry.pending_totp = sealed.clone();
            Some(serde_json::to_vec(&entry).unwrap_or_else(|_| old.to_vec()))
        })?;
        Ok(after.is_some())
    }

    /// Counts the writes to the sessions tree from now on, for tests that keep the
    /// SD card's write budget.
    #[cfg(test)]
    pub fn watch_session_writes(&self) -> Result<SessionWrites, IndexError> {
        Ok(SessionWrites(
            self.sessions()?.watch_prefix(Vec::<u8>::new()),
        ))
    }

    /// Ends a session now; flushed, so a log-out survives a crash. Returns whether it
    /// was there (in the same step as the removal): a login finishing its second step
    /// must not go on when "log out all" or a password change ended it meanwhile.
    pub fn remove_session(&self, key: &[u8; 32]) -> Result<bool, IndexError> {
        let was = self.sessions()?.remove(key)?.is_some();
        self.db.flush()?;
        Ok(was)
    }

    /// Every session with its key. Damaged entries are skipped with a warning (a
    /// damaged session only logs someone out).
    pub fn all_sessions(&self) -> Result<Vec<([u8; 32], SessionEntry)>, IndexError> {
        let mut out = Vec::new();
        for kv in self.sessions()?.iter() {
            let (k, v) = kv?;
            let Ok(key) = <[u8; 32]>::try_from(k.as_ref()) else {
                continue;
            };
            match serde_json::from_slice(&v) {
                Ok(entry) => out.push((key, entry)),
                Err(e) => tracing::warn!("skipping damaged session entry: {e}"),
            }
        }
        Ok(out)
    }

    /// Removes every session of `user`; returns how many there were.
    pub fn remove_user_sessions(&self, user: UserId) -> Result<usize, IndexError> {
        let tree = self.sessions()?;
        let mut n = 0;
        for (key, entry) in self.all_sessions()? {
            if entry.user == user {
                tree.remove(key)?;
                n += 1;
            }
        }
        self.db.flush()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_stored_by_key_and_removed_per_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let entry = |user| SessionEntry {
            user: UserId(user),
            stage: SessionStage::Full,
            created_micros: 1,
            last_seen_micros: 2,
            csrf: "00".into(),
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            device: "d".into(),
            last_ip: None,
            pending_totp: None,
        };
        index.put_session(&[1; 32], &entry(1)).expect("put");
        index.put_session(&[2; 32], &entry(1)).expect("put");
        index.put_session(&[3; 32], &entry(2)).expect("put");
        assert_eq!(index.get_session(&[1; 32]).expect("get"), Some(entry(1)));
        index
            .touch_session(&[1; 32], 9, "192.0.2.1")
            .expect("touch");
        assert_eq!(
            index.get_session(&[1; 32]).expect("get").map(|e| (
                e.last_seen_micros,
                e.ip,
                e.last_ip
            )),
            Some((9, "127.0.0.1".into(), Some("192.0.2.1".into())))
        );
        assert_eq!(index.remove_user_sessions(UserId(1)).expect("remove"), 2);
        index
            .touch_session(&[1; 32], 10, "192.0.2.1")
            .expect("touch a removed session");
        assert_eq!(
            index.get_session(&[1; 32]).expect("get"),
            None,
            "touching does not bring a removed session back"
        );
        assert!(!index
            .set_pending_totp(&[2; 32], Some("seed".into()))
            .expect("set on a removed session"));
        assert_eq!(
            index.get_session(&[2; 32]).expect("get"),
            None,
            "nor does offering a seed"
        );
        assert!(index
            .set_pending_totp(&[3; 32], Some("seed".into()))
            .expect("set"));
        assert_eq!(
            index
                .get_session(&[3; 32])
                .expect("get")
                .and_then(|e| e.pending_totp),
            Some("seed".into())
        );
        assert_eq!(index.get_session(&[2; 32]).expect("get"), None);
        assert_eq!(index.all_sessions().expect("all").len(), 1);
    }
}
