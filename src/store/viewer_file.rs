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
//!
//! Re-locking (a new passphrase or recovery key, [`replace`]) writes and fsyncs the
//! `.new` file first, then overwrites the part of the old file that the change
//! retires with zeros in place (fsynced), then renames. A crash after the overwrite
//! leaves a whole `.new` beside an old file missing that part; [`list`] finishes such
//! a rename before reading, so the next start-up rolls forward to the new lock.

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
    remove_leftover(&tmp)?;
    write_new_key_file(&tmp, saved.to_bytes())?;
    fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename viewer key file", &path, e))?;
    sync_dir(dir)
}

/// Which lock of a viewer key a re-locking retires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relocked {
    Passphrase,
    Recovery,
}

/// Replaces the file of `saved`'s viewer key with `saved` after a re-locking, and
/// overwrites the retired lock of the old file (the passphrase or recovery part) in
/// place first, so the old lock is not left in the file system's free blocks for an
/// offline guesser. That overwrite is best effort: on flash (SD cards, SSDs) wear
/// levelling may write the zeros to new blocks and keep the old ones until erased,
/// and a copy-on-write file system (btrfs, ZFS) does the same; a failure to do it is
/// logged, not fatal, since the rename still retires the old file.
pub(super) fn replace(
    dir: &Path,
    saved: &SavedViewer,
    retired: Relocked,
) -> Result<(), StoreError> {
    create_private_dir(dir)?;
    let path = path_of(dir, saved.key.public_key().id());
    let tmp = path.with_extension(format!("{EXTENSION}.new"));
    remove_leftover(&tmp)?;
    write_new_key_file(&tmp, saved.to_bytes())?;
    let part = match retired {
        Relocked::Passphrase => LockedViewerKey::PASSPHRASE_PART,
        Relocked::Recovery => LockedViewerKey::RECOVERY_PART,
    };
    if let Err(e) = overwrite_in_place(&path, HEADER_LEN as u64 + part.start as u64, part.len()) {
        tracing::error!(
            path = %path.display(),
            "cannot overwrite the retired lock of a viewer key file in place (the file is \
             replaced anyway): {e}"
        );
    }
    fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename viewer key file", &path, e))?;
    sync_dir(dir)
}

fn overwrite_in_place(path: &Path, at: u64, len: usize) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(&vec![0u8; len])?;
    f.sync_all()
}

fn remove_leftover(tmp: &Path) -> Result<(), StoreError> {
    match fs::remove_file(tmp) {
        Ok(()) => {
            tracing::warn!(path = %tmp.display(), "removed a leftover partial viewer key file");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("remove stale viewer key file", tmp, e)),
    }
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
///
/// First finishes a re-locking a crash interrupted ([`replace`]): a `<id>.plv.new`
/// that parses as the key of its name is whole (it was fsynced before anything else
/// changed) and is the newer state, so it is renamed over `<id>.plv`. One that does
/// not parse is left for the next [`save`] or [`replace`] to remove.
pub(super) fn list(dir: &Path) -> Result<Vec<SavedViewer>, StoreError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    finish_interrupted(dir)?;
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

fn finish_interrupted(dir: &Path) -> Result<(), StoreError> {
    let mut finished = false;
    for tmp in read_dir(dir)? {
        let Some(name) = tmp.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(&format!(".{EXTENSION}.new")) else {
            continue;
        };
        let whole = fs::read(&tmp)
            .ok()
            .and_then(|bytes| SavedViewer::from_bytes(&bytes).ok())
            .is_some_and(|s| s.key.public_key().id().to_string() == stem);
        if whole {
            let path = dir.join(format!("{stem}.{EXTENSION}"));
            fs::rename(&tmp, &path)
                .map_err(|e| StoreError::io("finish renaming viewer key file", &path, e))?;
            tracing::warn!(path = %path.display(), "finished a viewer key change a crash interrupted");
            finished = true;
        }
    }
    if finished {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::e2e::KdfParams;

    const QUICK: KdfParams = KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn saved(user: u64) -> (SavedViewer, crate::store::e2e::RecoveryKey) {
        let (key, recovery) = LockedViewerKey::generate_with("pass", QUICK).expect("key");
        let saved = SavedViewer {
            user,
            enrolled_micros: 42,
            key,
        };
        (saved, recovery)
    }

    /// A passphrase change leaves no copy of the old passphrase lock in the old
    /// file's blocks (seen through a hard link made before the change, which keeps
    /// the old inode), nor in the new file; the recovery lock is carried over.
    #[test]
    fn a_new_passphrase_overwrites_the_old_lock_in_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let viewers = dir.path().join("viewers");
        let (one, _) = saved(7);
        save(&viewers, &one).expect("save");
        let path = path_of(&viewers, one.key.public_key().id());
        let old_inode = viewers.join("old inode");
        fs::hard_link(&path, &old_inode).expect("link");
        let old_bytes = one.key.to_bytes();
        let old_lock = &old_bytes[LockedViewerKey::PASSPHRASE_PART];

        let viewer = one.key.unlock_with_passphrase("pass").expect("unlock");
        let changed = SavedViewer {
            key: one
                .key
                .with_new_passphrase_with(&viewer, "new pass", QUICK)
                .expect("relock"),
            ..one
        };
        replace(&viewers, &changed, Relocked::Passphrase).expect("replace");

        let contains = |hay: &[u8]| hay.windows(old_lock.len()).any(|w| w == old_lock);
        let stale = fs::read(&old_inode).expect("old inode");
        assert!(!contains(&stale), "the old lock was overwritten in place");
        let at = HEADER_LEN + LockedViewerKey::PASSPHRASE_PART.start;
        assert!(stale[at..at + old_lock.len()].iter().all(|&b| b == 0));
        let now = fs::read(&path).expect("new file");
        assert!(!contains(&now));
        let recovery = &old_bytes[LockedViewerKey::RECOVERY_PART];
        assert!(now.windows(recovery.len()).any(|w| w == recovery), "kept");
        let back = list(&viewers).expect("list");
        assert_eq!(back.len(), 1);
        back[0].key.unlock_with_passphrase("new pass").expect("new");
        assert!(back[0].key.unlock_with_passphrase("pass").is_err());
    }

    /// A crash after the old lock was overwritten but before the rename: the next
    /// listing finishes the rename, so the whole new key is what comes back.
    #[test]
    fn an_interrupted_relocking_rolls_forward_when_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let viewers = dir.path().join("viewers");
        let (one, _) = saved(7);
        save(&viewers, &one).expect("save");
        let viewer = one.key.unlock_with_passphrase("pass").expect("unlock");
        let (relocked, recovery) = one.key.with_new_recovery(&viewer).expect("relock");
        let changed = SavedViewer {
            key: relocked,
            ..one
        };
        let path = path_of(&viewers, changed.key.public_key().id());
        let tmp = path.with_extension(format!("{EXTENSION}.new"));
        write_new_key_file(&tmp, changed.to_bytes()).expect("the .new file");
        let part = LockedViewerKey::RECOVERY_PART;
        overwrite_in_place(&path, (HEADER_LEN + part.start) as u64, part.len()).expect("zero");
        // A partial `.new` of another viewer is not renamed.
        fs::write(viewers.join("00112233aabbccdd.plv.new"), b"PLVIEW").expect("partial");

        let back = list(&viewers).expect("list");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].key, changed.key);
        back[0]
            .key
            .unlock_with_recovery(&recovery)
            .expect("new recovery");
        assert!(!tmp.exists());
        assert!(viewers.join("00112233aabbccdd.plv.new").exists());
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
