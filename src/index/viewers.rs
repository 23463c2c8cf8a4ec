//! End-to-end mode's viewer keys. Tree `e2e_viewers`: user id (u64 BE) → JSON
//! [`ViewerKeyEntry`]. A row holds a viewer's public key and its private key
//! *encrypted* (under the viewer's passphrase and recovery key, see `store::e2e`); the
//! index never sees a private key in clear. While the tree has rows (and sealing is
//! not paused, tree `e2e_settings`), new recordings are sealed to every row's public
//! key.

use serde::{Deserialize, Serialize};

use super::users::UserId;
use super::{Index, IndexError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerKeyEntry {
    /// `store::e2e::LockedViewerKey::to_bytes`, hex.
    pub locked_key: String,
    /// When this viewer became a recipient of new recordings.
    pub enrolled_micros: i64,
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> IndexError {
    IndexError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    }
}

impl Index {
    /// Adds or replaces `user`'s viewer key.
    pub fn put_viewer_key(&self, user: UserId, entry: &ViewerKeyEntry) -> Result<(), IndexError> {
        let value = serde_json::to_vec(entry).map_err(|e| corrupt("e2e_viewers", e))?;
        self.db
            .open_tree("e2e_viewers")?
            .insert(user.0.to_be_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn viewer_key(&self, user: UserId) -> Result<Option<ViewerKeyEntry>, IndexError> {
        match self
            .db
            .open_tree("e2e_viewers")?
            .get(user.0.to_be_bytes())?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt("e2e_viewers", e)),
        }
    }

    /// Every viewer key, by user id.
    pub fn viewer_keys(&self) -> Result<Vec<(UserId, ViewerKeyEntry)>, IndexError> {
        let mut out = Vec::new();
        for kv in self.db.open_tree("e2e_viewers")?.iter() {
            let (k, v) = kv?;
            let id = <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt("e2e_viewers", "key is not 8 bytes"))?;
            let entry = serde_json::from_slice(&v).map_err(|e| corrupt("e2e_viewers", e))?;
            out.push((UserId(id), entry));
        }
        Ok(out)
    }

    /// Removes `user`'s viewer key (no-op if absent): new recordings stop being
    /// sealed to it.
    pub fn remove_viewer_key(&self, user: UserId) -> Result<(), IndexError> {
        self.db
            .open_tree("e2e_viewers")?
            .remove(user.0.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }
}

impl Index {
    /// Turns sealing new recordings off (`true`) or on again, keeping every viewer
    /// key (recordings sealed while it was on must stay openable). Tree
    /// `e2e_settings`, key `paused`; absent means not paused.
    pub fn set_e2e_paused(&self, paused: bool) -> Result<(), IndexError> {
        let tree = self.db.open_tree("e2e_settings")?;
        if paused {
            tree.insert("paused", &[1u8])?;
        } else {
            tree.remove("paused")?;
        }
        self.db.flush()?;
        Ok(())
    }

    pub fn e2e_paused(&self) -> Result<bool, IndexError> {
        Ok(self.db.open_tree("e2e_settings")?.get("paused")?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_keys_persist_list_and_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entry = ViewerKeyEntry {
            locked_key: "01ab".into(),
            enrolled_micros: 5,
        };
        {
            let index = Index::open(dir.path()).expect("open");
            assert!(index.viewer_keys().expect("list").is_empty());
            index.put_viewer_key(UserId(7), &entry).expect("put");
            index.put_viewer_key(UserId(3), &entry).expect("put");
        }
        let index = Index::open(dir.path()).expect("reopen");
        let ids: Vec<u64> = index
            .viewer_keys()
            .expect("list")
            .iter()
            .map(|(u, _)| u.0)
            .collect();
        assert_eq!(ids, [3, 7]);
        assert_eq!(index.viewer_key(UserId(7)).expect("get"), Some(entry));
        index.remove_viewer_key(UserId(7)).expect("remove");
        assert_eq!(index.viewer_key(UserId(7)).expect("get"), None);
        assert_eq!(index.viewer_keys().expect("list").len(), 1);
    }
}
