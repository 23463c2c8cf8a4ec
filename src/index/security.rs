//! Login throttling counters and security alerts in the index.
//!
//! - `throttle`: a key such as `acct:alice` or `addr:192.0.2.7` → JSON
//!   [`ThrottleEntry`]. Kept in sled so a restart does not hand an attacker fresh
//!   guesses.
//! - `alerts`: user id (u64 BE) ‖ time (i64 BE, sign flipped) ‖ 4 random bytes → JSON
//!   [`AlertEntry`], so one prefix scan lists a user's alerts in time order.

use serde::{Deserialize, Serialize};

use super::users::UserId;
use super::{Index, IndexError};

/// Failed-login bookkeeping for one account or address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleEntry {
    /// Failures since the last success (or since they were forgotten).
    pub failures: u32,
    pub last_failure_micros: i64,
    /// No attempt is looked at before this time.
    pub not_before_micros: i64,
    /// Whether `not_before` is a block (as opposed to a short delay).
    pub blocked: bool,
    /// Whether the owners were told of this key's block (only its first is news).
    #[serde(default)]
    pub block_told: bool,
}

/// Alerts kept per user: the newest. An attacker who can raise alerts (failed logins
/// from many addresses) must not grow the index without bound.
pub const ALERTS_KEPT: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A login completed from a browser this account had not used before.
    NewDevice,
    /// Logins for this account, or from an address, were blocked after failures.
    LoginBlocked,
    /// Someone accepted an invitation and is now a shared user.
    NewSharedUser,
    /// The owner granted support access.
    SupportGranted,
    /// The user's password was changed.
    PasswordChanged,
    /// A share link (a copy of a recording anyone with the link can watch) was made.
    ShareCreated,
    /// A shared user deleted their own account.
    AccountDeleted,
    /// The user's two-step verification was set up again, or reset by the owner.
    TwoFactorChanged,
    /// The right password was entered but the two-step code never was.
    SecondStepNotCompleted,
    /// An API token for a linked service was made (it lives until revoked).
    TokenCreated,
    /// The user's end-to-end passphrase was changed.
    E2ePassphraseChanged,
    /// The user made a new end-to-end recovery key (the old one stopped working).
    E2eRecoveryKeyReplaced,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEntry {
    pub time_micros: i64,
    pub kind: AlertKind,
    /// Plain text shown in the UI and mailed.
    pub message: String,
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> IndexError {
    IndexError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    }
}

impl Index {
    pub fn get_throttle(&self, key: &str) -> Result<ThrottleEntry, IndexError> {
        match self.db.open_tree("throttle")?.get(key.as_bytes())? {
            None => Ok(ThrottleEntry::default()),
            Some(v) => serde_json::from_slice(&v).map_err(|e| corrupt(key, e)),
        }
    }

    pub fn put_throttle(&self, key: &str, entry: &ThrottleEntry) -> Result<(), IndexError> {
        let tree = self.db.open_tree("throttle")?;
        if *entry == ThrottleEntry::default() {
            tree.remove(key.as_bytes())?;
        } else {
            let value = serde_json::to_vec(entry).map_err(|e| corrupt(key, e))?;
            tree.insert(key.as_bytes(), value)?;
        }
        Ok(())
    }

    /// Removes the throttle entries `forgotten` says can go; returns how many. An entry
    /// changed meanwhile (a new failure) is kept.
    pub fn remove_throttles_where(
        &self,
        forgotten: impl Fn(&ThrottleEntry) -> bool,
    ) -> Result<usize, IndexError> {
        let tree = self.db.open_tree("throttle")?;
        let mut n = 0;
        for kv in tree.iter() {
            let (k, v) = kv?;
            let entry: ThrottleEntry = match serde_json::from_slice(&v) {
                Ok(entry) => entry,
                Err(e) => {
                    // Left for `get_throttle` to report on use; one bad entry must not
                    // stop the others from going.
                    tracing::warn!(key = %String::from_utf8_lossy(&k), "unreadable throttle entry: {e}");
                    continue;
                }
            };
            if forgotten(&entry) && tree.compare_and_swap(&k, Some(&v), None::<&[u8]>)?.is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn add_alert(&self, user: UserId, alert: &AlertEntry) -> Result<(), IndexError> {
        let mut key = user.0.to_be_bytes().to_vec();
        key.extend_from_slice(&((alert.time_micros as u64) ^ (1 << 63)).to_be_bytes());
        let mut salt = [0u8; 4];
        getrandom::fill(&mut salt).expect("the OS random number generator is available");
        key.extend_from_slice(&salt);
        let value = serde_json::to_vec(alert).map_err(|e| corrupt("alerts", e))?;
        let tree = self.db.open_tree("alerts")?;
        tree.insert(key, value)?;
        // Keys sort oldest first within the user's prefix.
        let prefix = user.0.to_be_bytes();
        let excess = tree.scan_prefix(prefix).count().saturating_sub(ALERTS_KEPT);
        for kv in tree.scan_prefix(prefix).take(excess) {
            let (k, _) = kv?;
            tree.remove(k)?;
        }
        Ok(())
    }

    /// Removes every alert of `user` (their account is gone); returns how many.
    pub fn remove_user_alerts(&self, user: UserId) -> Result<usize, IndexError> {
        let tree = self.db.open_tree("alerts")?;
        let mut n = 0;
        for kv in tree.scan_prefix(user.0.to_be_bytes()) {
            let (k, _) = kv?;
            tree.remove(k)?;
            n += 1;
        }
        Ok(n)
    }

    /// A user's alerts, newest first.
    pub fn user_alerts(&self, user: UserId) -> Result<Vec<AlertEntry>, IndexError> {
        let mut out = Vec::new();
        for kv in self
            .db
            .open_tree("alerts")?
            .scan_prefix(user.0.to_be_bytes())
        {
            let (_, v) = kv?;
            out.push(serde_json::from_slice(&v).map_err(|e| corrupt("alerts", e))?);
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_entries_persist_and_reset_to_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = ThrottleEntry {
            failures: 3,
            last_failure_micros: 5,
            not_before_micros: 9,
            blocked: false,
            block_told: true,
        };
        {
            let index = Index::open(dir.path()).expect("open");
            index.put_throttle("acct:a", &e).expect("put");
            index.flush().expect("flush");
        }
        let index = Index::open(dir.path()).expect("reopen");
        assert_eq!(index.get_throttle("acct:a").expect("get"), e);
        index
            .put_throttle("acct:a", &ThrottleEntry::default())
            .expect("reset");
        assert_eq!(
            index.get_throttle("acct:a").expect("get"),
            ThrottleEntry::default()
        );
    }

    #[test]
    fn alerts_are_per_user_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let alert = |t| AlertEntry {
            time_micros: t,
            kind: AlertKind::NewDevice,
            message: format!("at {t}"),
        };
        index.add_alert(UserId(1), &alert(10)).expect("add");
        index.add_alert(UserId(1), &alert(20)).expect("add");
        index.add_alert(UserId(2), &alert(15)).expect("add");
        let times: Vec<i64> = index
            .user_alerts(UserId(1))
            .expect("list")
            .iter()
            .map(|a| a.time_micros)
            .collect();
        assert_eq!(times, vec![20, 10]);
    }

    #[test]
    fn only_the_newest_alerts_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        for t in 0..(ALERTS_KEPT as i64 + 5) {
            let alert = AlertEntry {
                time_micros: t,
                kind: AlertKind::LoginBlocked,
                message: String::new(),
            };
            index.add_alert(UserId(1), &alert).expect("add");
        }
        let alerts = index.user_alerts(UserId(1)).expect("list");
        assert_eq!(alerts.len(), ALERTS_KEPT);
        assert_eq!(alerts[0].time_micros, ALERTS_KEPT as i64 + 4, "newest kept");
        assert_eq!(alerts[ALERTS_KEPT - 1].time_micros, 5, "oldest dropped");
    }
}
