//! Share links in the index. Tree `shares`: link id (u64 BE) → JSON [`ShareEntry`].
//! The link's secret is never stored: only a one-way check value
//! (`store::crypto::share_check`), which opens nothing.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::users::UserId;
use super::{Index, IndexError};
use crate::model::{CameraId, EventId, RecordingId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareEntry {
    pub id: u64,
    /// The recording the copy was made from (an event's first one; it may be deleted
    /// since).
    pub recording: RecordingId,
    /// The event whose clip the copy is, when an event was shared rather than one
    /// recording. Absent in links made before events could be shared.
    #[serde(default)]
    pub event: Option<EventId>,
    pub camera: CameraId,
    pub start_micros: i64,
    pub end_micros: i64,
    pub created_by: UserId,
    pub created_by_name: String,
    pub created_micros: i64,
    pub expires_micros: i64,
    pub max_views: Option<u32>,
    pub views: u32,
    /// Hex of the secret's check value.
    pub check: String,
    pub bytes: u64,
}

impl ShareEntry {
    /// Whether the link still opens at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        now < self.expires_micros && self.max_views.is_none_or(|max| self.views < max)
    }
}

/// Why [`Index::count_share_view`] did not count a view.
#[derive(Debug)]
pub enum ViewRefused {
    Gone,
    Index(IndexError),
}

fn corrupt(e: impl std::fmt::Display) -> IndexError {
    IndexError::Corrupt {
        key: "shares".into(),
        reason: e.to_string(),
    }
}

impl Index {
    pub fn put_share(&self, entry: &ShareEntry) -> Result<(), IndexError> {
        let value = serde_json::to_vec(entry).map_err(corrupt)?;
        self.db
            .open_tree("shares")?
            .insert(entry.id.to_be_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn get_share(&self, id: u64) -> Result<Option<ShareEntry>, IndexError> {
        match self.db.open_tree("shares")?.get(id.to_be_bytes())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(corrupt),
        }
    }

    pub fn remove_share(&self, id: u64) -> Result<(), IndexError> {
        self.db.open_tree("shares")?.remove(id.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    pub fn all_shares(&self) -> Result<Vec<ShareEntry>, IndexError> {
        let mut out = Vec::new();
        for kv in self.db.open_tree("shares")?.iter() {
            let (_, v) = kv?;
            out.push(serde_json::from_slice(&v).map_err(corrupt)?);
        }
        Ok(out)
    }

    /// Counts one view if the link is live at `now` (atomically, so a view limit
    /// holds against parallel opens); returns the entry as it is after the count.
    pub fn count_share_view(&self, id: u64, now: i64) -> Result<ShareEntry, ViewRefused> {
        let tree = self
            .db
            .open_tree("shares")
            .map_err(|e| ViewRefused::Index(e.into()))?;
        let key = id.to_be_bytes();
        let result = tree.transaction(|tx| {
            let Some(value) = tx.get(key)? else {
                return Err(ConflictableTransactionError::Abort(None));
            };
            let mut entry: ShareEntry = serde_json::from_slice(&value)
                .map_err(|e| ConflictableTransactionError::Abort(Some(e.to_string())))?;
            if !entry.is_live(now) {
                return Err(ConflictableTransactionError::Abort(None));
            }
            entry.views += 1;
            let value = serde_json::to_vec(&entry)
                .map_err(|e| ConflictableTransactionError::Abort(Some(e.to_string())))?;
            tx.insert(&key, value)?;
            Ok(entry)
        });
        match result {
            Ok(entry) => Ok(entry),
            Err(TransactionError::Abort(None)) => Err(ViewRefused::Gone),
            Err(TransactionError::Abort(Some(e))) => Err(ViewRefused::Index(corrupt(e))),
            Err(TransactionError::Storage(e)) => Err(ViewRefused::Index(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64) -> ShareEntry {
        ShareEntry {
            id,
            recording: RecordingId(5),
            event: None,
            camera: "porch".parse().expect("name"),
            start_micros: 0,
            end_micros: 10,
            created_by: UserId(1),
            created_by_name: "owner".into(),
            created_micros: 0,
            expires_micros: 100,
            max_views: Some(2),
            views: 0,
            check: "00".into(),
            bytes: 1,
        }
    }

    #[test]
    fn views_are_counted_up_to_the_limit_and_not_after_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        index.put_share(&entry(1)).expect("put");
        assert_eq!(index.count_share_view(1, 5).expect("first").views, 1);
        assert_eq!(index.count_share_view(1, 6).expect("second").views, 2);
        assert!(matches!(
            index.count_share_view(1, 7),
            Err(ViewRefused::Gone)
        ));
        let mut unlimited = entry(2);
        unlimited.max_views = None;
        index.put_share(&unlimited).expect("put");
        assert!(index.count_share_view(2, 99).is_ok());
        assert!(matches!(
            index.count_share_view(2, 100),
            Err(ViewRefused::Gone)
        ));
        assert!(matches!(
            index.count_share_view(3, 0),
            Err(ViewRefused::Gone)
        ));
        index.remove_share(1).expect("remove");
        assert_eq!(index.all_shares().expect("all").len(), 1);
        assert!(index.get_share(1).expect("get").is_none());
    }
}
