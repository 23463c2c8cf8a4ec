//! The index: the only user of `sled`. Everything else calls the typed functions here
//! and never opens a tree.
//!
//! sled is beta, so the index is a cache of what the
//! recording files say about themselves: `porchlight check --rebuild-index` can always
//! recreate it from the files alone. Trees (schema version 1):
//!
//! - `meta`: `schema_version` → u32 BE.
//! - `recordings` + `recordings_ids`: [`RecordingEntry`] rows (see `table.rs` for the
//!   key layout: camera, then start time, then id).
//! - `events` + `events_ids`: [`EventEntry`] rows, same layout (`events.rs`).
//! - `audit`: the append-only audit log (`audit.rs`).
//! - `shares`: share links (`shares.rs`).
//! - `users`, `usernames`, `sessions`, `invitations`, `throttle`, `alerts`: accounts
//!   (`users.rs`, `sessions.rs`, `invitations.rs`, `security.rs`).
//! - `tokens`: API tokens of linked services, stored hashed (`tokens.rs`).
//! - `e2e_viewers`: end-to-end mode's viewer keys, private halves encrypted
//!   (`viewers.rs`).

mod audit;
mod cameras;
mod invitations;
mod prefs;
mod security;
mod sessions;
mod shares;
mod tokens;
mod users;
mod viewers;

use std::path::Path;
use std::sync::Arc;

pub mod events;
mod flusher;
mod table;

use serde::{Deserialize, Serialize};

pub use events::EventEntry;
use table::{Row, Table};

use crate::model::{CameraId, RecordingId, Trigger};
pub use audit::{AuditEntry, AuditKind, AuditQuery};
pub use cameras::{CameraEntry, CameraSettings, MaskRect, DEFAULT_STORAGE_DAYS, MAX_ZONES};
pub use invitations::InvitationEntry;
pub use prefs::{CameraPrefs, NotificationPrefs};
pub use security::{AlertEntry, AlertKind, ThrottleEntry};
pub use sessions::{SessionEntry, SessionStage};
pub use shares::{ShareEntry, ViewRefused};
pub use tokens::{Scope, TokenEntry, TokenId};
pub use users::{
    RecoveryCodeEntry, ReenrolmentCode, Role, SupportGrant, TotpEntry, UpdateError, UserEntry,
    UserId,
};
pub use viewers::ViewerKeyEntry;

const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index at {path} is in use by another process (is `porchlight serve` running? stop it first)")]
    Locked { path: String },
    #[error("index database error: {0}")]
    Database(#[from] sled::Error),
    #[error("index entry {key} is damaged: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("the index has schema version {found}, this porchlight understands {SCHEMA_VERSION}; rebuild it with `porchlight check --rebuild-index`")]
    SchemaVersion { found: u32 },
}

/// Where a recording is in its life. The durable orders are:
/// create file → fsync → entry `Open` → … → entry `Finished`; and for deletion
/// entry `Deleting` (wrapped key dropped) → file shredded → entry removed, so that a
/// crash at any point is finished by start-up recovery and never resurrects a
/// recording the user deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    Open,
    Finished,
    Deleting,
}

/// What the index knows about one recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingEntry {
    pub id: RecordingId,
    pub camera: CameraId,
    pub start_micros: i64,
    pub end_micros: i64,
    pub frames: u64,
    /// Size of the encrypted file on disk.
    pub bytes: u64,
    pub trigger: Trigger,
    /// The data key wrapped by the master key (hex); empty once deletion began.
    pub wrapped_key: String,
    pub state: RecordingState,
    /// Set only on an `Open` entry whose writer saw a write or sync fail and whose
    /// file could not be cut back then: the file's length at its last successful
    /// sync. What follows it may read back from the page cache without being on the
    /// disk, so start-up recovery cuts the file to this length before closing it.
    /// Written on that failure only, never per sync; absent from other rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_len: Option<u64>,
}

/// Handle to the open index. Cheap to clone.
#[derive(Clone)]
pub struct Index {
    db: sled::Db,
    /// Shared by the clones; ends with the last (see `flusher.rs`).
    _flusher: Arc<flusher::Flusher>,
    recordings: Table<RecordingEntry>,
    events: Table<EventEntry>,
}

impl Row for RecordingEntry {
    fn id(&self) -> u64 {
        self.id.0
    }
    fn camera(&self) -> &CameraId {
        &self.camera
    }
    fn start_micros(&self) -> i64 {
        self.start_micros
    }
}

impl Index {
    /// Opens (creating if needed) the index in `dir`.
    pub fn open(dir: &Path) -> Result<Index, IndexError> {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(flusher::SLED_FLUSHER_EVERY_MS))
            .open()
            .map_err(|e| match &e {
                sled::Error::Io(io) if io.to_string().contains("lock") => IndexError::Locked {
                    path: dir.display().to_string(),
                },
                _ => IndexError::Database(e),
            })?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema_version")? {
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| IndexError::Corrupt {
                        key: "meta/schema_version".into(),
                        reason: "not 4 bytes".into(),
                    })?;
                if found != SCHEMA_VERSION {
                    return Err(IndexError::SchemaVersion { found });
                }
            }
        }
        Ok(Index {
            recordings: Table::open(&db, "recordings")?,
            events: Table::open(&db, "events")?,
            _flusher: Arc::new(flusher::Flusher::start(db.clone()).map_err(sled::Error::Io)?),
            db,
        })
    }

    /// Inserts or replaces the entry for `entry.id`.
    pub fn put_recording(&self, entry: &RecordingEntry) -> Result<(), IndexError> {
        self.recordings.put(entry)
    }

    pub fn get_recording(&self, id: RecordingId) -> Result<Option<RecordingEntry>, IndexError> {
        self.recordings.get(id.0)
    }

    /// Replaces recording `id`'s entry by `change(current)` atomically (see
    /// [`table::Table::update`]): for a change that must not bring back an entry a
    /// deletion marked or removed in the meantime. Returns whether it was written.
    pub fn update_recording(
        &self,
        id: RecordingId,
        change: impl Fn(RecordingEntry) -> Option<RecordingEntry>,
    ) -> Result<bool, IndexError> {
        self.recordings.update(id.0, change)
    }

    /// Removes a recording's entry (no-op if absent).
    pub fn remove_recording(&self, id: RecordingId) -> Result<(), IndexError> {
        self.recordings.remove(id.0)
    }

    /// All recordings, ordered by camera then start time.
    pub fn all_recordings(&self) -> Result<Vec<RecordingEntry>, IndexError> {
        self.recordings.all()
    }

    /// One camera's recordings that overlap `[from, to)` (an open one always
    /// overlaps: its end is not known yet), by start time.
    pub fn camera_recordings(
        &self,
        camera: &CameraId,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Vec<RecordingEntry>, IndexError> {
        let mut rows = self.recordings.camera_until(camera, to_micros)?;
        rows.retain(|e| e.end_micros > from_micros || e.state == RecordingState::Open);
        Ok(rows)
    }

    /// Whether `camera` has at least one recording that is not being deleted (the
    /// dashboard asks this of every removed camera on each load). One seek to the
    /// camera's first recording; rows in `Deleting` (a deletion under way) are
    /// stepped over, so only those cost more.
    pub fn camera_has_recording(&self, camera: &CameraId) -> Result<bool, IndexError> {
        self.recordings
            .camera_has(camera, |e| e.state != RecordingState::Deleting)
    }

    /// Makes everything written so far durable. Called at the points the durable
    /// orders above require, not after every write (`flusher.rs` flushes the rest every 500 ms).
    pub fn flush(&self) -> Result<(), IndexError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(camera: &str, start: i64, id: u64) -> RecordingEntry {
        RecordingEntry {
            id: RecordingId(id),
            camera: camera.parse().expect("valid name"),
            start_micros: start,
            end_micros: start + 1_000_000,
            frames: 10,
            bytes: 1000,
            trigger: Trigger::Continuous,
            wrapped_key: "00".into(),
            state: RecordingState::Finished,
            durable_len: None,
        }
    }

    #[test]
    fn recordings_are_listed_by_camera_then_time_and_found_by_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        index.put_recording(&entry("b", 5, 1)).expect("put");
        index.put_recording(&entry("a", 7, 2)).expect("put");
        index.put_recording(&entry("a", -3, 3)).expect("put");
        let ids: Vec<u64> = index
            .all_recordings()
            .expect("all")
            .iter()
            .map(|e| e.id.0)
            .collect();
        assert_eq!(ids, vec![3, 2, 1]);
        assert_eq!(
            index.get_recording(RecordingId(2)).expect("get"),
            Some(entry("a", 7, 2))
        );
        let a: CameraId = "a".parse().expect("valid");
        // Each entry lasts 1 s: [-3 µs, 999 997 µs) and [7 µs, 1 000 007 µs).
        assert_eq!(index.camera_recordings(&a, 0, 100).expect("range").len(), 2);
        let late = index
            .camera_recordings(&a, 999_998, 2_000_000)
            .expect("range");
        assert_eq!(late.iter().map(|e| e.id.0).collect::<Vec<_>>(), vec![2]);
        assert!(index
            .camera_recordings(&a, -10, -5)
            .expect("range")
            .is_empty());
    }

    #[test]
    fn camera_has_recording_sees_only_that_cameras_live_recordings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let door: CameraId = "door".parse().expect("valid");
        let door2: CameraId = "door2".parse().expect("valid");
        let doo: CameraId = "doo".parse().expect("valid");
        assert!(!index.camera_has_recording(&door).expect("none"));
        // A neighbour whose name has "door" as a prefix is not "door".
        index.put_recording(&entry("door2", 5, 1)).expect("put");
        assert!(!index.camera_has_recording(&door).expect("neighbour only"));
        assert!(index.camera_has_recording(&door2).expect("door2"));
        assert!(!index.camera_has_recording(&doo).expect("a prefix of both"));
        index.put_recording(&entry("door", 7, 2)).expect("put");
        assert!(index.camera_has_recording(&door).expect("one"));
        // One being deleted does not count; a later live one behind it does.
        let mut deleting = entry("door", 7, 2);
        deleting.state = RecordingState::Deleting;
        index.put_recording(&deleting).expect("put");
        assert!(!index.camera_has_recording(&door).expect("only deleting"));
        index.put_recording(&entry("door", 9, 3)).expect("put");
        assert!(index
            .camera_has_recording(&door)
            .expect("deleting, then live"));
    }

    #[test]
    fn update_and_remove_keep_both_trees_in_step() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let mut e = entry("a", 5, 9);
        index.put_recording(&e).expect("put");
        e.frames = 99;
        index.put_recording(&e).expect("update");
        assert_eq!(index.all_recordings().expect("all").len(), 1);
        assert_eq!(
            index.get_recording(e.id).expect("get").map(|e| e.frames),
            Some(99)
        );
        index.remove_recording(e.id).expect("remove");
        assert_eq!(index.get_recording(e.id).expect("get"), None);
        assert!(index.all_recordings().expect("all").is_empty());
    }

    #[test]
    fn index_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let index = Index::open(dir.path()).expect("open");
            index.put_recording(&entry("a", 5, 9)).expect("put");
            index.flush().expect("flush");
        }
        let index = Index::open(dir.path()).expect("reopen");
        assert_eq!(index.all_recordings().expect("all").len(), 1);
    }
}
