//! A typed sled table keyed by camera and start time, with a secondary tree by id.
//!
//! Rows live in `<name>` under `camera ‖ 0x00 ‖ start (i64 BE, sign bit flipped so
//! byte order is time order) ‖ id (u64 BE)`, which makes "a camera's rows by time"
//! one range scan; `<name>_ids` maps id (u64 BE) → that key. Both trees change in one
//! transaction so they never disagree. Values are JSON: readable with any sled tool,
//! and tolerant of added fields.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::IndexError;
use crate::model::CameraId;

/// What a row must tell the table about itself.
pub trait Row: Serialize + DeserializeOwned {
    fn id(&self) -> u64;
    fn camera(&self) -> &CameraId;
    fn start_micros(&self) -> i64;
}

#[derive(Clone)]
pub struct Table<R> {
    rows: sled::Tree,
    ids: sled::Tree,
    _row: PhantomData<fn() -> R>,
}

fn row_key(camera: &CameraId, start_micros: i64, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(camera.as_str().len() + 17);
    key.extend_from_slice(camera.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(&((start_micros as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn camera_prefix(camera: &CameraId) -> Vec<u8> {
    let mut key = camera.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

fn storage(e: TransactionError<()>) -> IndexError {
    match e {
        TransactionError::Abort(()) => IndexError::Corrupt {
            key: "(transaction)".into(),
            reason: "aborted".into(),
        },
        TransactionError::Storage(e) => IndexError::Database(e),
    }
}

impl<R: Row> Table<R> {
    pub fn open(db: &sled::Db, name: &str) -> Result<Self, IndexError> {
        Ok(Table {
            rows: db.open_tree(name)?,
            ids: db.open_tree(format!("{name}_ids"))?,
            _row: PhantomData,
        })
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<R, IndexError> {
        serde_json::from_slice(value).map_err(|e| IndexError::Corrupt {
            key: hex::encode(key),
            reason: e.to_string(),
        })
    }

    /// Inserts or replaces the row with `row.id()` (its start may have changed).
    pub fn put(&self, row: &R) -> Result<(), IndexError> {
        let key = row_key(row.camera(), row.start_micros(), row.id());
        let value = serde_json::to_vec(row).map_err(|e| IndexError::Corrupt {
            key: format!("{:016x}", row.id()),
            reason: e.to_string(),
        })?;
        let id_key = row.id().to_be_bytes();
        (&self.rows, &self.ids)
            .transaction(|(rows, ids)| {
                if let Some(old) = ids.get(id_key)? {
                    if old.as_ref() != key.as_slice() {
                        rows.remove(old)?;
                    }
                }
                rows.insert(key.as_slice(), value.as_slice())?;
                ids.insert(&id_key, key.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(storage)
    }

    /// Replaces the row with id `id` by `change(current)`, in one transaction: no
    /// other write (a deletion) can come between reading the row and writing its
    /// new value. `change` answering `None`, or no such row, writes nothing; returns
    /// whether the row was written. `change` may run more than once (sled retries a
    /// transaction that conflicted).
    pub fn update(&self, id: u64, change: impl Fn(R) -> Option<R>) -> Result<bool, IndexError> {
        let id_key = id.to_be_bytes();
        (&self.rows, &self.ids)
            .transaction(|(rows, ids)| {
                let Some(old_key) = ids.get(id_key)? else {
                    return Ok(false);
                };
                let Some(value) = rows.get(&old_key)? else {
                    return Ok(false);
                };
                let row =
                    Self::decode(&old_key, &value).map_err(ConflictableTransactionError::Abort)?;
                let Some(new) = change(row) else {
                    return Ok(false);
                };
                let key = row_key(new.camera(), new.start_micros(), new.id());
                let value = serde_json::to_vec(&new).map_err(|e| {
                    ConflictableTransactionError::Abort(IndexError::Corrupt {
                        key: format!("{id:016x}"),
                        reason: e.to_string(),
                    })
                })?;
                if old_key.as_ref() != key.as_slice() {
                    rows.remove(old_key)?;
                }
                rows.insert(key.as_slice(), value.as_slice())?;
                ids.insert(&id_key, key.as_slice())?;
                Ok(true)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => IndexError::Database(e),
            })
    }

    pub fn get(&self, id: u64) -> Result<Option<R>, IndexError> {
        let Some(key) = self.ids.get(id.to_be_bytes())? else {
            return Ok(None);
        };
        match self.rows.get(&key)? {
            Some(value) => Self::decode(&key, &value).map(Some),
            None => Err(IndexError::Corrupt {
                key: format!("{id:016x}"),
                reason: "id points to a missing row".into(),
            }),
        }
    }

    /// Removes a row (no-op if absent).
    pub fn remove(&self, id: u64) -> Result<(), IndexError> {
        let id_key = id.to_be_bytes();
        (&self.rows, &self.ids)
            .transaction(|(rows, ids)| {
                if let Some(key) = ids.remove(&id_key)? {
                    rows.remove(key)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(storage)
    }

    /// Every row, by camera then start time.
    pub fn all(&self) -> Result<Vec<R>, IndexError> {
        self.rows
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Self::decode(&k, &v)
            })
            .collect()
    }

    /// The newest `limit` rows starting at or after `since_micros`, newest first, of
    /// one camera or of all. Reads about `limit` rows per camera rather than the
    /// whole table (an API client asking for the latest events every few seconds).
    pub fn newest(
        &self,
        camera: Option<&CameraId>,
        since_micros: i64,
        limit: usize,
    ) -> Result<Vec<R>, IndexError> {
        let prefixes = match camera {
            Some(c) => vec![camera_prefix(c)],
            None => self.camera_prefixes()?,
        };
        let mut out = Vec::new();
        for prefix in prefixes {
            for kv in self.rows.scan_prefix(&prefix).rev().take(limit) {
                let (k, v) = kv?;
                let row = Self::decode(&k, &v)?;
                if row.start_micros() < since_micros {
                    break;
                }
                out.push(row);
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse((r.start_micros(), r.id())));
        out.truncate(limit);
        Ok(out)
    }

    /// The `camera ‖ 0x00` prefix of every camera with rows, one seek per camera.
    fn camera_prefixes(&self) -> Result<Vec<Vec<u8>>, IndexError> {
        let mut prefixes = Vec::new();
        let mut from = Vec::new();
        while let Some(kv) = self.rows.range(from.as_slice()..).next() {
            let (key, _) = kv?;
            let Some(end) = key.iter().position(|&b| b == 0) else {
                return Err(IndexError::Corrupt {
                    key: hex::encode(&key),
                    reason: "no camera name in the key".into(),
                });
            };
            prefixes.push(key[..=end].to_vec());
            // Past every key of this camera: its name then 0x01 sorts after name ‖ 0x00 ‖ ….
            from = key[..end].to_vec();
            from.push(1);
        }
        Ok(prefixes)
    }

    /// Whether one camera has a row that `wanted` accepts. Reads the camera's rows in
    /// key order only until the first accepted one: a single seek when that is its
    /// first row, never the whole list just to learn that one exists.
    pub fn camera_has(
        &self,
        camera: &CameraId,
        wanted: impl Fn(&R) -> bool,
    ) -> Result<bool, IndexError> {
        for kv in self.rows.scan_prefix(camera_prefix(camera)) {
            let (k, v) = kv?;
            if wanted(&Self::decode(&k, &v)?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One camera's rows starting before `to_micros`, by start time; the caller
    /// filters by end (rows know their own end).
    pub fn camera_until(&self, camera: &CameraId, to_micros: i64) -> Result<Vec<R>, IndexError> {
        let mut out = Vec::new();
        for kv in self.rows.scan_prefix(camera_prefix(camera)) {
            let (k, v) = kv?;
            let row = Self::decode(&k, &v)?;
            if row.start_micros() >= to_micros {
                break;
            }
            out.push(row);
        }
        Ok(out)
    }
}
