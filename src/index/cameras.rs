//! Cameras added from the web UI (next to those in the config file). Tree `cameras`:
//! camera id (UTF-8) → JSON [`CameraEntry`].
//!
//! Tree `retired_cameras`: camera id (UTF-8) → JSON [`Retired`], for a camera removed
//! with its recordings kept: they keep its storage period and stay listed.
//!
//! Credentials are stored only sealed by the master key (`Store::seal_secret`, hex),
//! with a purpose naming the camera so one camera's sealed password cannot be pasted
//! onto another; this module never sees them in clear.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::users::UserId;
use super::{Index, IndexError};
use crate::config::RecordingMode;
use crate::model::CameraId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraEntry {
    pub id: CameraId,
    /// Main stream, `rtsp://` without credentials.
    pub url: String,
    /// Optional lower-resolution stream analysed for motion (same credentials);
    /// `None`: motion is analysed on the main stream.
    #[serde(default)]
    pub sub_url: Option<String>,
    pub mode: RecordingMode,
    /// Sealed (hex) username and password; `None` for an open camera.
    pub sealed_username: Option<String>,
    pub sealed_password: Option<String>,
    pub added_micros: i64,
    pub added_by: UserId,
    /// Recording and motion settings (defaults for entries written before they
    /// existed).
    #[serde(default)]
    pub settings: CameraSettings,
}

/// The settings of a camera added from the web UI that the owner can change there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraSettings {
    pub motion: bool,
    /// 1-100, see `MotionSettings::sensitivity`.
    pub sensitivity: u8,
    pub pre_roll_secs: u64,
    pub post_roll_secs: u64,
    /// Parts of the picture where change never counts as motion.
    #[serde(default)]
    pub zones: Vec<MaskRect>,
    /// Recordings older than this many days are deleted by retention.
    #[serde(default = "default_storage_days")]
    pub storage_days: u32,
}

/// The storage period of a `[[camera]]` section without `storage_days`.
pub const DEFAULT_STORAGE_DAYS: u32 = 30;

fn default_storage_days() -> u32 {
    DEFAULT_STORAGE_DAYS
}

/// An ignored rectangle in thousandths of the picture's width and height (x to the
/// right, y down), so that it survives a change of resolution and compares exactly
/// (no floats in the index). `left < right`, `top < bottom`, all at most 1000:
/// checked by the web form that makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskRect {
    pub left: u16,
    pub top: u16,
    pub right: u16,
    pub bottom: u16,
}

/// Most zones per camera: enough for any real scene, bounded for the form.
pub const MAX_ZONES: usize = 16;

impl Default for CameraSettings {
    /// The same defaults as a `[[camera]]` section without those keys.
    fn default() -> Self {
        CameraSettings {
            motion: true,
            sensitivity: 50,
            pre_roll_secs: 5,
            post_roll_secs: 10,
            zones: Vec::new(),
            storage_days: DEFAULT_STORAGE_DAYS,
        }
    }
}

impl CameraEntry {
    /// The `Store::seal_secret` purposes of this camera's username and password.
    pub fn purposes(id: &CameraId) -> (String, String) {
        (
            format!("camera {id} username"),
            format!("camera {id} password"),
        )
    }
}

fn corrupt(e: impl std::fmt::Display) -> IndexError {
    IndexError::Corrupt {
        key: "cameras".into(),
        reason: e.to_string(),
    }
}

impl Index {
    /// Every camera added from the web UI, by id.
    pub fn cameras(&self) -> Result<Vec<CameraEntry>, IndexError> {
        self.db
            .open_tree("cameras")?
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(corrupt)
            })
            .collect()
    }

    /// Adds a camera; `Ok(false)` (nothing written) when one with its id exists.
    pub fn add_camera(&self, entry: &CameraEntry) -> Result<bool, IndexError> {
        let value = serde_json::to_vec(entry).map_err(corrupt)?;
        let added = self
            .db
            .open_tree("cameras")?
            .compare_and_swap(entry.id.as_str(), None::<&[u8]>, Some(value))?
            .is_ok();
        self.db.flush()?;
        Ok(added)
    }
}

impl Index {
    /// Replaces a camera's entry; `Ok(false)` (nothing written) if it has none.
    pub fn update_camera(&self, entry: &CameraEntry) -> Result<bool, IndexError> {
        let tree = self.db.open_tree("cameras")?;
        let value = serde_json::to_vec(entry).map_err(corrupt)?;
        let updated = tree
            .update_and_fetch(entry.id.as_str(), |old| old.map(|_| value.clone()))?
            .is_some();
        self.db.flush()?;
        Ok(updated)
    }

    /// Forgets a camera added from the web UI (its recordings are not touched);
    /// `None` if there was none by that id.
    pub fn remove_camera(&self, id: &CameraId) -> Result<Option<CameraEntry>, IndexError> {
        let old = self.db.open_tree("cameras")?.remove(id.as_str())?;
        self.db.flush()?;
        old.map(|v| serde_json::from_slice(&v).map_err(corrupt))
            .transpose()
    }
}

/// What is left of a camera removed with its recordings kept.
#[derive(Serialize, Deserialize)]
struct Retired {
    storage_days: u32,
    removed_micros: i64,
}

impl Index {
    /// Forgets a camera added from the web UI and its sealed credentials but keeps
    /// its storage period for the recordings it leaves (in one transaction, so that
    /// they never fall to the default period); `None` if there was none by that id.
    pub fn retire_camera(
        &self,
        id: &CameraId,
        now_micros: i64,
    ) -> Result<Option<CameraEntry>, IndexError> {
        let cameras = self.db.open_tree("cameras")?;
        let retired = self.db.open_tree("retired_cameras")?;
        let removed = (&cameras, &retired)
            .transaction(|(cameras, retired)| {
                let Some(old) = cameras.remove(id.as_str())? else {
                    return Ok(None);
                };
                let entry: CameraEntry = serde_json::from_slice(&old)
                    .map_err(|e| ConflictableTransactionError::Abort(corrupt(e)))?;
                let record = serde_json::to_vec(&Retired {
                    storage_days: entry.settings.storage_days,
                    removed_micros: now_micros,
                })
                .map_err(|e| ConflictableTransactionError::Abort(corrupt(e)))?;
                retired.insert(id.as_str(), record)?;
                Ok(Some(entry))
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => IndexError::Database(e),
                TransactionError::Abort(e) => e,
            })?;
        self.db.flush()?;
        Ok(removed)
    }

    /// The storage periods of cameras removed with their recordings kept.
    pub fn retired_cameras(&self) -> Result<Vec<(CameraId, u32)>, IndexError> {
        self.db
            .open_tree("retired_cameras")?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let id = std::str::from_utf8(&k)
                    .ok()
                    .and_then(|k| k.parse::<CameraId>().ok())
                    .ok_or_else(|| corrupt("a retired camera's id is not a camera name"))?;
                let retired: Retired = serde_json::from_slice(&v).map_err(corrupt)?;
                Ok((id, retired.storage_days))
            })
            .collect()
    }

    /// True if `id` was removed with its recordings kept (and they are not all gone).
    pub fn is_retired_camera(&self, id: &CameraId) -> Result<bool, IndexError> {
        Ok(self
            .db
            .open_tree("retired_cameras")?
            .contains_key(id.as_str())?)
    }

    /// Forgets a retired camera, once none of its recordings is left.
    pub fn forget_retired_camera(&self, id: &CameraId) -> Result<(), IndexError> {
        self.db.open_tree("retired_cameras")?.remove(id.as_str())?;
        Ok(())
    }

    /// True if `id` names a camera removed with its recordings kept that still has
    /// one. A new camera of that name would take them over (its storage period would
    /// apply to them, and removing it with its recordings would delete them too), so
    /// the callers refuse to add one. A retired camera with none left (deleted one by
    /// one, before retention's next pass forgets it) is forgotten here instead.
    pub fn keeps_recordings_of_removed_camera(&self, id: &CameraId) -> Result<bool, IndexError> {
        if !self.is_retired_camera(id)? {
            return Ok(false);
        }
        if self.camera_has_recording(id)? {
            return Ok(true);
        }
        self.forget_retired_camera(id)?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_cameras_persist_and_ids_are_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entry = CameraEntry {
            id: "porch".parse().expect("name"),
            url: "rtsp://192.0.2.1/main".into(),
            sub_url: Some("rtsp://192.0.2.1/sub".into()),
            mode: RecordingMode::Events,
            sealed_username: Some("00ff".into()),
            sealed_password: None,
            added_micros: 5,
            added_by: UserId(1),
            settings: CameraSettings::default(),
        };
        {
            let index = Index::open(dir.path()).expect("open");
            assert!(index.add_camera(&entry).expect("add"));
            assert!(!index.add_camera(&entry).expect("second add"));
        }
        let index = Index::open(dir.path()).expect("reopen");
        assert_eq!(index.cameras().expect("list"), vec![entry.clone()]);
        let mut changed = entry.clone();
        changed.settings.sensitivity = 90;
        changed.settings.storage_days = 7;
        changed.settings.zones.push(MaskRect {
            left: 0,
            top: 100,
            right: 500,
            bottom: 1000,
        });
        assert!(index.update_camera(&changed).expect("update"));
        assert_eq!(index.cameras().expect("list"), vec![changed.clone()]);
        assert_eq!(
            index.remove_camera(&entry.id).expect("remove"),
            Some(changed)
        );
        assert!(index.cameras().expect("list").is_empty());
    }

    /// An open camera in continuous mode, with the default settings.
    fn continuous(id: &CameraId) -> CameraEntry {
        CameraEntry {
            id: id.clone(),
            url: "rtsp://192.0.2.1/main".into(),
            sub_url: None,
            mode: RecordingMode::Continuous,
            sealed_username: None,
            sealed_password: None,
            added_micros: 0,
            added_by: UserId(1),
            settings: CameraSettings::default(),
        }
    }

    #[test]
    fn a_retired_camera_keeps_its_storage_period_until_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let id: CameraId = "porch".parse().expect("name");
        assert_eq!(index.retire_camera(&id, 1).expect("retire"), None);
        assert!(index.retired_cameras().expect("list").is_empty());
        let mut entry = continuous(&id);
        entry.settings.storage_days = 90;
        assert!(index.add_camera(&entry).expect("add"));
        assert_eq!(index.retire_camera(&id, 1).expect("retire"), Some(entry));
        assert!(index.cameras().expect("cameras").is_empty());
        assert_eq!(
            index.retired_cameras().expect("list"),
            vec![(id.clone(), 90)]
        );
        assert!(index.is_retired_camera(&id).expect("retired"));
        index.forget_retired_camera(&id).expect("forget");
        assert!(!index.is_retired_camera(&id).expect("retired"));
    }

    #[test]
    fn a_name_is_blocked_while_a_removed_camera_of_that_name_keeps_recordings() {
        use crate::index::{RecordingEntry, RecordingState};
        use crate::model::{RecordingId, Trigger};
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let id: CameraId = "porch".parse().expect("name");
        assert!(!index.keeps_recordings_of_removed_camera(&id).expect("free"));
        let entry = continuous(&id);
        assert!(index.add_camera(&entry).expect("add"));
        // A running camera is refused by the caller's own check, not this one.
        assert!(!index.keeps_recordings_of_removed_camera(&id).expect("live"));
        let recording = RecordingEntry {
            id: RecordingId(1),
            camera: id.clone(),
            start_micros: 0,
            end_micros: 1_000_000,
            frames: 10,
            bytes: 1000,
            trigger: Trigger::Continuous,
            wrapped_key: "00".into(),
            state: RecordingState::Finished,
            durable_len: None,
        };
        index.put_recording(&recording).expect("put");
        index.retire_camera(&id, 1).expect("retire");
        assert!(index.keeps_recordings_of_removed_camera(&id).expect("kept"));
        // Its last recording deleted before retention forgot it: the name is free.
        index.remove_recording(RecordingId(1)).expect("remove");
        assert!(!index
            .keeps_recordings_of_removed_camera(&id)
            .expect("emptied"));
        assert!(!index.is_retired_camera(&id).expect("forgotten"));
    }

    #[test]
    fn entries_written_before_zones_and_storage_period_read_with_defaults() {
        let old = r#"{"id":"porch","url":"rtsp://192.0.2.1/main","mode":"events",
            "sealed_username":null,"sealed_password":null,"added_micros":5,"added_by":1,
            "settings":{"motion":true,"sensitivity":40,"pre_roll_secs":5,"post_roll_secs":10}}"#;
        let entry: CameraEntry = serde_json::from_str(old).expect("old entry");
        assert_eq!(entry.sub_url, None);
        assert_eq!(entry.settings.sensitivity, 40);
        assert!(entry.settings.zones.is_empty());
        assert_eq!(entry.settings.storage_days, DEFAULT_STORAGE_DAYS);
    }
}
