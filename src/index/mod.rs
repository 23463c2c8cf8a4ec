//! The index: the only user of `sled`. Everything else calls the typed functions here
//! and never opens a tree.
//!
//! sled is beta and fsyncs on its own schedule, so the index is a cache of what the
//! recording files say about themselves: `porchlight check --rebuild-index` can always
//! recreate it from the files alone. Trees and keys (schema version 1):
//!
//! - `meta`: `schema_version` → u32 BE.
//! - `recordings`: `camera ‖ 0x00 ‖ start (i64 BE, sign bit flipped so byte order is
//!   time order) ‖ id (u64 BE)` → JSON [`RecordingEntry`]. The key order gives "a
//!   camera's recordings by start time" as one range scan.
//! - `recording_ids`: id (u64 BE) → the `recordings` key, for look-ups by id.
//!
//! Both trees are changed in one sled transaction so they never disagree.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::model::{CameraId, RecordingId, Trigger};

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
}

/// Handle to the open index. Cheap to clone.
#[derive(Clone)]
pub struct Index {
    db: sled::Db,
    recordings: sled::Tree,
    recording_ids: sled::Tree,
}

fn recording_key(camera: &CameraId, start_micros: i64, id: RecordingId) -> Vec<u8> {
    let mut key = Vec::with_capacity(camera.as_str().len() + 17);
    key.extend_from_slice(camera.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(&((start_micros as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

fn camera_prefix(camera: &CameraId) -> Vec<u8> {
    let mut key = camera.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

fn decode(key: &[u8], value: &[u8]) -> Result<RecordingEntry, IndexError> {
    serde_json::from_slice(value).map_err(|e| IndexError::Corrupt {
        key: hex::encode(key),
        reason: e.to_string(),
    })
}

fn transaction_error(e: TransactionError<serde_json::Error>) -> IndexError {
    match e {
        TransactionError::Abort(e) => IndexError::Corrupt {
            key: "(transaction)".into(),
            reason: e.to_string(),
        },
        TransactionError::Storage(e) => IndexError::Database(e),
    }
}

impl Index {
    /// Opens (creating if needed) the index in `dir`.
    pub fn open(dir: &Path) -> Result<Index, IndexError> {
        let db = sled::Config::new().path(dir).open().map_err(|e| match &e {
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
            recordings: db.open_tree("recordings")?,
            recording_ids: db.open_tree("recording_ids")?,
            db,
        })
    }

    /// Inserts or replaces the entry for `entry.id`.
    pub fn put_recording(&self, entry: &RecordingEntry) -> Result<(), IndexError> {
        let key = recording_key(&entry.camera, entry.start_micros, entry.id);
        let value = serde_json::to_vec(entry).map_err(|e| IndexError::Corrupt {
            key: entry.id.to_string(),
            reason: e.to_string(),
        })?;
        let id_key = entry.id.0.to_be_bytes();
        (&self.recordings, &self.recording_ids)
            .transaction(|(recordings, ids)| {
                if let Some(old) = ids.get(id_key)? {
                    if old.as_ref() != key.as_slice() {
                        recordings.remove(old)?;
                    }
                }
                recordings.insert(key.as_slice(), value.as_slice())?;
                ids.insert(&id_key, key.as_slice())?;
                Ok::<_, ConflictableTransactionError<serde_json::Error>>(())
            })
            .map_err(transaction_error)
    }

    pub fn get_recording(&self, id: RecordingId) -> Result<Option<RecordingEntry>, IndexError> {
        let Some(key) = self.recording_ids.get(id.0.to_be_bytes())? else {
            return Ok(None);
        };
        match self.recordings.get(&key)? {
            Some(value) => decode(&key, &value).map(Some),
            None => Err(IndexError::Corrupt {
                key: id.to_string(),
                reason: "id points to a missing entry".into(),
            }),
        }
    }

    /// Removes a recording's entry (no-op if absent).
    pub fn remove_recording(&self, id: RecordingId) -> Result<(), IndexError> {
        let id_key = id.0.to_be_bytes();
        (&self.recordings, &self.recording_ids)
            .transaction(|(recordings, ids)| {
                if let Some(key) = ids.remove(&id_key)? {
                    recordings.remove(key)?;
                }
                Ok::<_, ConflictableTransactionError<serde_json::Error>>(())
            })
            .map_err(transaction_error)?;
        Ok(())
    }

    /// All recordings, ordered by camera then start time.
    pub fn all_recordings(&self) -> Result<Vec<RecordingEntry>, IndexError> {
        self.recordings
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// One camera's recordings that overlap `[from, to)`, by start time.
    pub fn camera_recordings(
        &self,
        camera: &CameraId,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Vec<RecordingEntry>, IndexError> {
        let mut out = Vec::new();
        for kv in self.recordings.scan_prefix(camera_prefix(camera)) {
            let (k, v) = kv?;
            let entry = decode(&k, &v)?;
            if entry.start_micros >= to_micros {
                break;
            }
            if entry.end_micros > from_micros || entry.state == RecordingState::Open {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Makes everything written so far durable. Called at the points the durable
    /// orders above require, not after every write (sled also flushes on its own).
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
