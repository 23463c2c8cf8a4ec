//! Per-user notification preferences. Tree `prefs`: user id (u64 BE) → JSON
//! [`NotificationPrefs`]. A user without an entry gets the defaults.
//!
//! These cover event notifications only (motion, doorbell). Security notices (a new
//! device, blocked logins, a new shared user, support access) are not preferences:
//! they always go out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::users::UserId;
use super::{Index, IndexError};
use crate::model::CameraId;

/// What one camera's events notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraPrefs {
    pub motion: bool,
    pub doorbell: bool,
}

impl Default for CameraPrefs {
    fn default() -> Self {
        CameraPrefs {
            motion: true,
            doorbell: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPrefs {
    /// Cameras not listed use [`CameraPrefs::default`].
    #[serde(default)]
    pub cameras: BTreeMap<CameraId, CameraPrefs>,
    /// Local minutes after midnight; no event notification from `start` to `end`
    /// (which may wrap past midnight). Equal means no quiet hours.
    #[serde(default)]
    pub quiet_start_minute: u16,
    #[serde(default)]
    pub quiet_end_minute: u16,
    /// Mail event notifications (when mail is configured and the user has an address).
    #[serde(default)]
    pub email: bool,
    /// Send event notifications to the configured webhook.
    #[serde(default = "yes")]
    pub webhook: bool,
}

fn yes() -> bool {
    true
}

impl Default for NotificationPrefs {
    fn default() -> Self {
        NotificationPrefs {
            cameras: BTreeMap::new(),
            quiet_start_minute: 0,
            quiet_end_minute: 0,
            email: false,
            webhook: true,
        }
    }
}

impl NotificationPrefs {
    pub fn camera(&self, camera: &CameraId) -> CameraPrefs {
        self.cameras.get(camera).copied().unwrap_or_default()
    }

    /// Whether `minute` (local minutes after midnight) is in the quiet hours.
    pub fn is_quiet(&self, minute: u16) -> bool {
        let (start, end) = (self.quiet_start_minute, self.quiet_end_minute);
        match start.cmp(&end) {
            std::cmp::Ordering::Equal => false,
            std::cmp::Ordering::Less => (start..end).contains(&minute),
            std::cmp::Ordering::Greater => minute >= start || minute < end,
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> IndexError {
    IndexError::Corrupt {
        key: "prefs".into(),
        reason: e.to_string(),
    }
}

impl Index {
    pub fn notification_prefs(&self, user: UserId) -> Result<NotificationPrefs, IndexError> {
        match self.db.open_tree("prefs")?.get(user.0.to_be_bytes())? {
            None => Ok(NotificationPrefs::default()),
            Some(v) => serde_json::from_slice(&v).map_err(corrupt),
        }
    }

    pub fn put_notification_prefs(
        &self,
        user: UserId,
        prefs: &NotificationPrefs,
    ) -> Result<(), IndexError> {
        let value = serde_json::to_vec(prefs).map_err(corrupt)?;
        self.db
            .open_tree("prefs")?
            .insert(user.0.to_be_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn remove_notification_prefs(&self, user: UserId) -> Result<(), IndexError> {
        self.db.open_tree("prefs")?.remove(user.0.to_be_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_wrap_past_midnight_and_prefs_persist() {
        let mut p = NotificationPrefs {
            quiet_start_minute: 22 * 60,
            quiet_end_minute: 7 * 60,
            ..Default::default()
        };
        assert!(p.is_quiet(23 * 60) && p.is_quiet(0) && p.is_quiet(6 * 60 + 59));
        assert!(!p.is_quiet(7 * 60) && !p.is_quiet(12 * 60));
        p.quiet_start_minute = 9 * 60;
        p.quiet_end_minute = 17 * 60;
        assert!(p.is_quiet(12 * 60) && !p.is_quiet(8 * 60) && !p.is_quiet(17 * 60));
        p.quiet_end_minute = p.quiet_start_minute;
        assert!(!p.is_quiet(9 * 60), "equal means none");

        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        assert_eq!(
            index.notification_prefs(UserId(1)).expect("default"),
            NotificationPrefs::default()
        );
        let porch: CameraId = "porch".parse().expect("name");
        p.cameras.insert(
            porch.clone(),
            CameraPrefs {
                motion: false,
                doorbell: true,
            },
        );
        index.put_notification_prefs(UserId(1), &p).expect("put");
        let back = index.notification_prefs(UserId(1)).expect("get");
        assert!(!back.camera(&porch).motion && back.camera(&porch).doorbell);
        assert!(
            back.camera(&"other".parse().expect("name")).motion,
            "default"
        );
    }
}
