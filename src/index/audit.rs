//! The audit log: what people (and, later, tokens) did, append-only.
//!
//! Tree `audit`: time (i64 BE, sign flipped so it sorts) ‖ sled's monotonic id (u64
//! BE, so two entries in the same microsecond keep their order) → JSON
//! [`AuditEntry`]. There is deliberately no function here that changes or removes one
//! entry: nothing in the daemon can rewrite history, the owner included. The one
//! exception is [`Index::erase_audit_log`], the owner's "erase all data", which drops
//! the whole log and leaves a single entry saying so (never a selective edit).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::users::UserId;
use super::{Index, IndexError};

/// What happened. The names are stable: they are stored and used in filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    OwnerCreated,
    LoginOk,
    LoginFailed,
    LoginBlocked,
    RecoveryCodeUsed,
    TwoFactorEnrolled,
    Logout,
    DeviceLoggedOut,
    AllDevicesLoggedOut,
    RecordingViewed,
    RecordingDownloaded,
    RecordingDeleted,
    EventDeleted,
    CameraRecordingsDeleted,
    EverythingDeleted,
    ShareCreated,
    ShareViewed,
    ShareUnshared,
    UserInvited,
    InvitationAccepted,
    InvitationRevoked,
    UserRemoved,
    TokenCreated,
    TokenUsed,
    TokenRevoked,
    SupportGranted,
    /// A request made under support access (every one is logged).
    SupportAction,
    PasswordChanged,
    /// A user downloaded their personal data (`/my-data.json`).
    PersonalDataDownloaded,
    /// A shared user deleted their own account.
    AccountDeleted,
    /// The owner downloaded the archive of everything.
    EverythingExported,
    /// The owner erased all data; after it, the only entry left in the log.
    AllDataErased,
    /// A camera added from the web UI.
    CameraAdded,
    /// A camera added from the web UI removed (subject says if its recordings went too).
    CameraRemoved,
    /// A camera added from the web UI had its settings changed.
    CameraChanged,
    /// A user set up two-step verification again, or the owner reset another user's.
    TwoFactorChanged,
    /// End-to-end encryption was turned on (the subject names the viewer key).
    EndToEndEnabled,
    /// A viewer key was unlocked for a session (passphrase or recovery key).
    EndToEndUnlocked,
    /// A wrong passphrase or recovery key was given to unlock.
    EndToEndUnlockFailed,
    /// A session's unlocked viewer key was dropped by the Lock button.
    EndToEndLocked,
    /// End-to-end encryption was turned off for new recordings.
    EndToEndDisabled,
    /// Recordings sealed to viewers were re-sealed under the master key.
    EndToEndMigrated,
    /// A viewer's end-to-end passphrase was changed (never the passphrase itself).
    EndToEndPassphraseChanged,
    /// A viewer made a new recovery key; the old one no longer opens their key.
    EndToEndRecoveryKeyReplaced,
}

impl AuditKind {
    pub const ALL: [AuditKind; 44] = [
        AuditKind::OwnerCreated,
        AuditKind::LoginOk,
        AuditKind::LoginFailed,
        AuditKind::LoginBlocked,
        AuditKind::RecoveryCodeUsed,
        AuditKind::TwoFactorEnrolled,
        AuditKind::Logout,
        AuditKind::DeviceLoggedOut,
        AuditKind::AllDevicesLoggedOut,
        AuditKind::RecordingViewed,
        AuditKind::RecordingDownloaded,
        AuditKind::RecordingDeleted,
        AuditKind::EventDeleted,
        AuditKind::CameraRecordingsDeleted,
        AuditKind::EverythingDeleted,
        AuditKind::ShareCreated,
        AuditKind::ShareViewed,
        AuditKind::ShareUnshared,
        AuditKind::UserInvited,
        AuditKind::InvitationAccepted,
        AuditKind::InvitationRevoked,
        AuditKind::UserRemoved,
        AuditKind::TokenCreated,
        AuditKind::TokenUsed,
        AuditKind::TokenRevoked,
        AuditKind::SupportGranted,
        AuditKind::SupportAction,
        AuditKind::PasswordChanged,
        AuditKind::PersonalDataDownloaded,
        AuditKind::AccountDeleted,
        AuditKind::EverythingExported,
        AuditKind::AllDataErased,
        AuditKind::CameraAdded,
        AuditKind::CameraRemoved,
        AuditKind::CameraChanged,
        AuditKind::TwoFactorChanged,
        AuditKind::EndToEndEnabled,
        AuditKind::EndToEndUnlocked,
        AuditKind::EndToEndUnlockFailed,
        AuditKind::EndToEndLocked,
        AuditKind::EndToEndDisabled,
        AuditKind::EndToEndMigrated,
        AuditKind::EndToEndPassphraseChanged,
        AuditKind::EndToEndRecoveryKeyReplaced,
    ];

    /// The stored name, e.g. `login_failed`.
    pub fn name(self) -> &'static str {
        match self {
            AuditKind::OwnerCreated => "owner_created",
            AuditKind::LoginOk => "login_ok",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginBlocked => "login_blocked",
            AuditKind::RecoveryCodeUsed => "recovery_code_used",
            AuditKind::TwoFactorEnrolled => "two_factor_enrolled",
            AuditKind::Logout => "logout",
            AuditKind::DeviceLoggedOut => "device_logged_out",
            AuditKind::AllDevicesLoggedOut => "all_devices_logged_out",
            AuditKind::RecordingViewed => "recording_viewed",
            AuditKind::RecordingDownloaded => "recording_downloaded",
            AuditKind::RecordingDeleted => "recording_deleted",
            AuditKind::EventDeleted => "event_deleted",
            AuditKind::CameraRecordingsDeleted => "camera_recordings_deleted",
            AuditKind::EverythingDeleted => "everything_deleted",
            AuditKind::ShareCreated => "share_created",
            AuditKind::ShareViewed => "share_viewed",
            AuditKind::ShareUnshared => "share_unshared",
            AuditKind::UserInvited => "user_invited",
            AuditKind::InvitationAccepted => "invitation_accepted",
            AuditKind::InvitationRevoked => "invitation_revoked",
            AuditKind::UserRemoved => "user_removed",
            AuditKind::TokenCreated => "token_created",
            AuditKind::TokenUsed => "token_used",
            AuditKind::TokenRevoked => "token_revoked",
            AuditKind::SupportGranted => "support_granted",
            AuditKind::SupportAction => "support_action",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::PersonalDataDownloaded => "personal_data_downloaded",
            AuditKind::AccountDeleted => "account_deleted",
            AuditKind::EverythingExported => "everything_exported",
            AuditKind::AllDataErased => "all_data_erased",
            AuditKind::CameraAdded => "camera_added",
            AuditKind::CameraRemoved => "camera_removed",
            AuditKind::CameraChanged => "camera_changed",
            AuditKind::TwoFactorChanged => "two_factor_changed",
            AuditKind::EndToEndEnabled => "end_to_end_enabled",
            AuditKind::EndToEndUnlocked => "end_to_end_unlocked",
            AuditKind::EndToEndUnlockFailed => "end_to_end_unlock_failed",
            AuditKind::EndToEndLocked => "end_to_end_locked",
            AuditKind::EndToEndDisabled => "end_to_end_disabled",
            AuditKind::EndToEndMigrated => "end_to_end_migrated",
            AuditKind::EndToEndPassphraseChanged => "end_to_end_passphrase_changed",
            AuditKind::EndToEndRecoveryKeyReplaced => "end_to_end_recovery_key_replaced",
        }
    }

    pub fn from_name(name: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time_micros: i64,
    pub kind: AuditKind,
    /// Whose entry this is: the user who acted, or the account something was tried
    /// on (a failed login). A shared user sees the entries that carry their id.
    pub user: Option<UserId>,
    /// Who acted, as shown: a user name, or what was typed at a failed login.
    pub actor: String,
    /// What it was done to (a recording id, a camera, a device).
    pub subject: String,
    /// The client's address, when it came over the network.
    pub address: Option<String>,
}

/// Which entries to list.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only this user's entries.
    pub user: Option<UserId>,
    pub kind: Option<AuditKind>,
    /// Only entries with `from <= time < to`.
    pub from_micros: Option<i64>,
    pub to_micros: Option<i64>,
    /// At most this many, newest first.
    pub limit: usize,
}

fn time_key(micros: i64) -> [u8; 8] {
    ((micros as u64) ^ (1 << 63)).to_be_bytes()
}

impl Index {
    pub fn add_audit(&self, entry: &AuditEntry) -> Result<(), IndexError> {
        let mut key = time_key(entry.time_micros).to_vec();
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        let value = serde_json::to_vec(entry).map_err(|e| IndexError::Corrupt {
            key: "audit".into(),
            reason: e.to_string(),
        })?;
        self.db.open_tree("audit")?.insert(key, value)?;
        Ok(())
    }

    /// Drops every entry and leaves `last` (which says the log was erased) as the only
    /// one, flushed. Only the owner's "erase all data" calls this.
    pub fn erase_audit_log(&self, last: &AuditEntry) -> Result<usize, IndexError> {
        let tree = self.db.open_tree("audit")?;
        let dropped = tree.len();
        tree.clear()?;
        self.add_audit(last)?;
        self.db.flush()?;
        Ok(dropped)
    }

    /// Entries matching `query`, newest first.
    pub fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, IndexError> {
        let tree = self.db.open_tree("audit")?;
        let from = time_key(query.from_micros.unwrap_or(i64::MIN)).to_vec();
        let to = time_key(query.to_micros.unwrap_or(i64::MAX)).to_vec();
        let mut out = Vec::new();
        for kv in tree.range(from..to).rev() {
            if out.len() >= query.limit {
                break;
            }
            let (key, value) = kv?;
            let entry: AuditEntry =
                serde_json::from_slice(&value).map_err(|e| IndexError::Corrupt {
                    key: format!("audit/{}", hex::encode(&key)),
                    reason: e.to_string(),
                })?;
            if query.user.is_some_and(|u| entry.user != Some(u))
                || query.kind.is_some_and(|k| entry.kind != k)
            {
                continue;
            }
            out.push(entry);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: i64, kind: AuditKind, user: Option<u64>) -> AuditEntry {
        AuditEntry {
            time_micros: t,
            kind,
            user: user.map(UserId),
            actor: "someone".into(),
            subject: format!("at {t}"),
            address: None,
        }
    }

    #[test]
    fn entries_list_newest_first_and_filter_by_user_kind_and_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        // Negative times (before 1970) sort correctly too.
        for (t, kind, user) in [
            (-5, AuditKind::LoginOk, Some(1)),
            (10, AuditKind::LoginFailed, None),
            (20, AuditKind::RecordingDeleted, Some(1)),
            (20, AuditKind::LoginOk, Some(2)),
            (30, AuditKind::LoginOk, Some(1)),
        ] {
            index.add_audit(&entry(t, kind, user)).expect("add");
        }
        let times = |q: AuditQuery| -> Vec<(i64, AuditKind)> {
            index
                .audit_entries(&AuditQuery { limit: 100, ..q })
                .expect("list")
                .iter()
                .map(|e| (e.time_micros, e.kind))
                .collect()
        };
        assert_eq!(
            times(AuditQuery::default()),
            vec![
                (30, AuditKind::LoginOk),
                (20, AuditKind::LoginOk),
                (20, AuditKind::RecordingDeleted),
                (10, AuditKind::LoginFailed),
                (-5, AuditKind::LoginOk),
            ],
            "same-microsecond entries keep their order (newest first)"
        );
        assert_eq!(
            times(AuditQuery {
                user: Some(UserId(1)),
                kind: Some(AuditKind::LoginOk),
                ..Default::default()
            }),
            vec![(30, AuditKind::LoginOk), (-5, AuditKind::LoginOk)]
        );
        assert_eq!(
            times(AuditQuery {
                from_micros: Some(10),
                to_micros: Some(30),
                ..Default::default()
            }),
            vec![
                (20, AuditKind::LoginOk),
                (20, AuditKind::RecordingDeleted),
                (10, AuditKind::LoginFailed)
            ]
        );
        let limited = index
            .audit_entries(&AuditQuery {
                limit: 2,
                ..Default::default()
            })
            .expect("list");
        assert_eq!(limited.len(), 2);
    }

    #[test]
    fn erasing_the_log_leaves_only_the_entry_that_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        for t in 0..5 {
            index
                .add_audit(&entry(t, AuditKind::LoginOk, Some(1)))
                .expect("add");
        }
        let last = entry(9, AuditKind::AllDataErased, Some(1));
        assert_eq!(index.erase_audit_log(&last).expect("erase"), 5);
        let all = index
            .audit_entries(&AuditQuery {
                limit: 10,
                ..Default::default()
            })
            .expect("list");
        assert_eq!(all, vec![last]);
    }

    #[test]
    fn entries_survive_a_reopen_and_kind_names_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let index = Index::open(dir.path()).expect("open");
            index
                .add_audit(&entry(1, AuditKind::EverythingDeleted, Some(7)))
                .expect("add");
            index.flush().expect("flush");
        }
        let index = Index::open(dir.path()).expect("reopen");
        let all = index
            .audit_entries(&AuditQuery {
                limit: 10,
                ..Default::default()
            })
            .expect("list");
        assert_eq!(all, vec![entry(1, AuditKind::EverythingDeleted, Some(7))]);
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::from_name(kind.name()), Some(kind));
            let json = serde_json::to_string(&kind).expect("json");
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
    }
}
