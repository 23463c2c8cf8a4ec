//! Locked viewer keys as files beside the recordings, so that end-to-end
//! recordings survive a lost or damaged index like every other recording does.
//!
//! The index's `e2e_viewers` rows are what the daemon reads; these files are their
//! durable copy (`crate::e2e` keeps both equal and restores the rows from the files
//! after an index rebuild). Each file holds nothing that opens without the viewer's
//! passphrase or recovery key: the private key inside is locked exactly as in the
//! index row.
//!
//! Layout: `<data_dir>/viewers/<viewer id>.plv` (the viewer id is the public key's
//! 16-hex-digit fingerprint), mode 0600 in a 0700 directory:
//! ```text
//! magic "PLVIEWER" (8) ‖ version 1 (1) ‖ user id (u64 BE) ‖ enrolled (i64 BE, µs)
//! ‖ locked viewer key (`LockedViewerKey::to_bytes`, 205 bytes)
//! ```
//! The user id and time are not authenticated: whoever can write the data directory
//! could attach a locked key to another account, which still opens only with that
//! key's own passphrase or recovery key. The public key is authenticated by the
//! locked key itself (an unlock checks that the opened private key matches it).
//!
//! Writing is crash-safe: `<id>.plv.new` (exclusive create, 0600, fsynced), renamed
//! over `<id>.plv`, directory fsynced; so a file is whole or absent. Removal
//! overwrites the file with zeros before unlinking it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::crypto::{sync_dir, write_new_key_file};
use super::e2e::{LockedViewerKey, ViewerId};
use super::{create_private_dir, read_dir, StoreError};

const MAGIC: &[u8; 8] = b"PLVIEWER";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 8 + 1 + 8 + 8;
pub(super) const EXTENSION: &str = "plv";

/// A viewer key as saved on disk: whose it is, since when, and the locked key.
#[derive(Debug)]
pub struct SavedViewer {
    /// The index's user id of the viewer (a plain number: the store knows no users).
    pub user: u64,
    pub enrolled_micros: i64,
    pub key: LockedViewerKey,
}

impl SavedViewer {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 205);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.user.to_be_bytes());
        out.extend_from_slice(&self.enrolled_micros.to_be_bytes());
        out.extend_from_slice(&self.key.to_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<SavedViewer, StoreError> {
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC || bytes[8] != VERSION {
            return Err(StoreError::ViewerKeyInvalid {
                reason: "not a viewer key file of a known version".into(),
            });
        }
        let u64_at = |at: usize| bytes[at..at + 8].try_into().expect("8 bytes");
        Ok(SavedViewer {
            user: u64::from_be_bytes(u64_at(9)),
            enrolled_micros: i64::from_be_bytes(u64_at(17)),
            key: LockedViewerKey::from_bytes(&bytes[HEADER_LEN..])?,
        })
    }
}

fn path_of(dir: &Path, viewer: ViewerId) -> PathBuf {
    dir.join(format!("{viewer}.{EXTENSION}"))
}

/// Saves (or replaces) the file of `saved`'s viewer key.
pub(super) fn save(dir: &Path, saved: &SavedViewer) -> Result<(), StoreError> {
    create_private_dir(dir)?;
    let path = path_of(dir, saved.key.public_key().id());
    let tmp = path.with_extension(format!("{EXTENSION}.new"));
    match fs::remove_file(&tmp) {
        Ok(()) => {
            tracing::warn!(path = %tmp.display(), "removed a leftover partial viewer key file")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io("remove stale viewer key file", &tmp, e)),
    }
    write_new_key_file(&tmp, saved.to_bytes())?;
    fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename viewer key file", &path, e))?;
    sync_dir(dir)
}

/// Overwrites and removes `viewer`'s file; a missing file (or directory) is done.
pub(super) fn remove(dir: &Path, viewer: ViewerId) -> Result<(), StoreError> {
    let path = path_of(dir, viewer);
    let len = match fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("stat viewer key file", &path, e)),
    };
    let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&zeros)?;
            f.sync_all()
        })
        .map_err(|e| StoreError::io("overwrite viewer key file", &path, e))?;
    fs::remove_file(&path).map_err(|e| StoreError::io("remove viewer key file", &path, e))?;
    sync_dir(dir)
}

/// Every readable viewer key file. One that does not parse is logged and skipped
/// (and left in place for a person to look at): the others must still come back.
pub(super) fn list(dir: &Path) -> Result<Vec<SavedViewer>, StoreError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for path in read_dir(dir)? {
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let parsed = fs::read(&path)
            .map_err(|e| StoreError::io("read viewer key file", &path, e))
            .and_then(|bytes| SavedViewer::from_bytes(&bytes));
        match parsed {
            Ok(saved) => found.push(saved),
            Err(e) => tracing::error!(path = %path.display(), "unreadable viewer key file: {e}"),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::e2e::KdfParams;

    fn saved(user: u64) -> (SavedViewer, crate::store::e2e::RecoveryKey) {
        let quick = KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        let (key, recovery) = LockedViewerKey::generate_with("pass", quick).expect("key");
        let saved = SavedViewer {
            user,
            enrolled_micros: 42,
            key,
        };
        (saved, recovery)
    }

    #[test]
    fn a_saved_viewer_key_lists_back_unlocks_and_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let viewers = dir.path().join("viewers");
        assert!(list(&viewers).expect("none yet").is_empty());
        let (one, recovery) = saved(7);
        save(&viewers, &one).expect("save");
        save(&viewers, &one).expect("saving again replaces");
        fs::write(viewers.join("junk.plv"), b"not a key").expect("write junk");
        let back = list(&viewers).expect("list");
        assert_eq!(back.len(), 1, "the junk file is skipped");
        assert_eq!((back[0].user, back[0].enrolled_micros), (7, 42));
        assert_eq!(back[0].key, one.key);
        back[0].key.unlock_with_recovery(&recovery).expect("unlock");
        remove(&viewers, one.key.public_key().id()).expect("remove");
        remove(&viewers, one.key.public_key().id()).expect("twice is fine");
        assert!(list(&viewers).expect("list").is_empty());
    }
}
