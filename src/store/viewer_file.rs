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
//! Re-locking (a new passphrase or recovery key, [`replace`]) has the index row as
//! its commit point: `.new` written and fsynced (directory too), then the caller's
//! row, then the retired part of the old file zeroed in place and the rename. At
//! start-up [`settle`] renames a leftover `.new` in if the row holds its locks
//! (committed) and removes it otherwise (rolled back).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::crypto::{sync_dir, write_new_key_file};
use super::e2e::{LockedViewerKey, ViewerId};
use super::regular::{open_regular, read_regular, Access};
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

/// Replaces the file of `saved`'s viewer key with `saved` after a re-locking, with
/// `commit` (the caller's index row write) as the commit point in between:
///
/// 1. `<id>.plv.new` written and fsynced, and the directory fsynced, so the new file
///    is durable before anything depends on it;
/// 2. `commit()`; if it fails the `.new` file is removed and nothing else changed
///    (roll back: the old file and the old secrets stand);
/// 3. only then the retired lock of the old file (the passphrase or recovery part)
///    is overwritten with zeros in place, so it is not left in the file system's
///    free blocks for an offline guesser, and the `.new` file is renamed over it.
///
/// A crash before step 2 leaves a `.new` that the index row does not match; one
/// after leaves a `.new` equal to the row: [`settle`] tells them apart. The zeroing
/// waits for the commit so that an interrupted change never leaves an old file with
/// a lock missing while the row still has it. It is best effort: on flash (SD cards,
/// SSDs) wear levelling may keep the old blocks until erased, and a copy-on-write
/// file system (btrfs, ZFS) does the same. Failures after the commit are logged,
/// not returned: the row already holds the new locks (and a new recovery key must
/// still be shown), and the next start-up finishes the rename.
pub(super) fn replace<E: From<StoreError>>(
    dir: &Path,
    saved: &SavedViewer,
    retired: Relocked,
    commit: impl FnOnce() -> Result<(), E>,
) -> Result<(), E> {
    create_private_dir(dir)?;
    let path = path_of(dir, saved.key.public_key().id());
    let tmp = path.with_extension(format!("{EXTENSION}.new"));
    remove_leftover(&tmp)?;
    write_new_key_file(&tmp, saved.to_bytes())?;
    sync_dir(dir)?;
    if let Err(e) = commit() {
        if let Err(rm) = fs::remove_file(&tmp) {
            tracing::error!(path = %tmp.display(), "cannot remove an uncommitted viewer key file: {rm}");
        }
        return Err(e);
    }
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
    let renamed = fs::rename(&tmp, &path)
        .map_err(|e| StoreError::io("rename viewer key file", &path, e))
        .and_then(|()| sync_dir(dir));
    if let Err(e) = renamed {
        tracing::error!("a committed viewer key change is finished at the next start-up: {e}");
    }
    Ok(())
}

fn overwrite_in_place(path: &Path, at: u64, len: usize) -> Result<(), StoreError> {
    use std::os::unix::fs::FileExt;
    let f = open_regular(path, Access::Write, "open viewer key file")?;
    f.write_all_at(&vec![0u8; len], at)
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::io("overwrite viewer key file", path, e))
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
    let mut file = open_regular(&path, Access::Write, "open viewer key file")?;
    file.write_all(&zeros)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io("overwrite viewer key file", &path, e))?;
    fs::remove_file(&path).map_err(|e| StoreError::io("remove viewer key file", &path, e))?;
    sync_dir(dir)
}

/// Every readable viewer key file. One that does not parse is logged and skipped
/// (and left in place for a person to look at): the others must still come back.
/// A re-locking a crash interrupted is not looked at here: see [`settle`].
pub(super) fn list(dir: &Path) -> Result<Vec<SavedViewer>, StoreError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for path in read_dir(dir)? {
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let parsed = read_regular(&path, "read viewer key file")
            .and_then(|bytes| SavedViewer::from_bytes(&bytes));
        match parsed {
            Ok(saved) => found.push(saved),
            Err(e) => tracing::error!(path = %path.display(), "unreadable viewer key file: {e}"),
        }
    }
    Ok(found)
}

/// Whether the old file at `path` is missing, or has a lock part overwritten with
/// zeros, which [`replace`] does only after its commit point.
fn shows_a_commit(path: &Path) -> bool {
    let Ok(bytes) = read_regular(path, "read viewer key file") else {
        return !path.exists();
    };
    [
        LockedViewerKey::PASSPHRASE_PART,
        LockedViewerKey::RECOVERY_PART,
    ]
    .into_iter()
    .any(|part| {
        bytes
            .get(HEADER_LEN + part.start..HEADER_LEN + part.end)
            .is_some_and(|lock| lock.iter().all(|&b| b == 0))
    })
}

/// Settles the re-lockings a crash interrupted ([`replace`]): each `<id>.plv.new`
/// that parses as the key of its name is whole (fsynced, directory too, before the
/// commit). If `committed` says the index row holds its locks, the change passed its
/// commit point and the file is renamed over `<id>.plv` (roll forward); otherwise it
/// is removed and the old file stands (roll back: the user's old passphrase and
/// recovery key keep working, and no recovery key nobody was shown comes in). One
/// that does not parse is left for the next [`save`] or [`replace`] to remove.
///
/// The old file itself can show the commit when the index cannot (it was lost and
/// has no rows): a lock part all zeros is zeroed only after the commit, and without
/// an old file (a [`save`] interrupted) there is nothing to roll back to; either way
/// the `.new` comes in. Returns what it did, one line each.
pub(super) fn settle(
    dir: &Path,
    committed: impl Fn(&SavedViewer) -> bool,
) -> Result<Vec<String>, StoreError> {
    let mut done = Vec::new();
    if !dir.is_dir() {
        return Ok(done);
    }
    for tmp in read_dir(dir)? {
        let Some(name) = tmp.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(&format!(".{EXTENSION}.new")) else {
            continue;
        };
        let Some(new) = read_regular(&tmp, "read viewer key file")
            .ok()
            .and_then(|bytes| SavedViewer::from_bytes(&bytes).ok())
            .filter(|s| s.key.public_key().id().to_string() == stem)
        else {
            continue;
        };
        let path = dir.join(format!("{stem}.{EXTENSION}"));
        if committed(&new) || shows_a_commit(&path) {
            fs::rename(&tmp, &path)
                .map_err(|e| StoreError::io("finish renaming viewer key file", &path, e))?;
            done.push(format!("finished a committed change of viewer key {stem}"));
        } else {
            fs::remove_file(&tmp)
                .map_err(|e| StoreError::io("remove uncommitted viewer key file", &tmp, e))?;
            done.push(format!(
                "rolled back an uncommitted change of viewer key {stem}"
            ));
        }
    }
    if !done.is_empty() {
        sync_dir(dir)?;
    }
    Ok(done)
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
        replace(&viewers, &changed, Relocked::Passphrase, committed).expect("replace");

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

    fn committed() -> Result<(), StoreError> {
        Ok(())
    }

    /// `one` re-locked under a new recovery key, and that key.
    fn relocked(one: &SavedViewer) -> (SavedViewer, crate::store::e2e::RecoveryKey) {
        let viewer = one.key.unlock_with_passphrase("pass").expect("unlock");
        let (key, recovery) = one.key.with_new_recovery(&viewer).expect("relock");
        let changed = SavedViewer {
            key,
            user: one.user,
            enrolled_micros: one.enrolled_micros,
        };
        (changed, recovery)
    }

    /// The commit (the index row) fails: the old file is as it was (its retired
    /// lock not zeroed: the user's old recovery key must keep working) and no `.new`
    /// is left behind.
    #[test]
    fn a_failed_commit_leaves_the_old_file_whole_and_no_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let viewers = dir.path().join("viewers");
        let (one, old_recovery) = saved(7);
        save(&viewers, &one).expect("save");
        let path = path_of(&viewers, one.key.public_key().id());
        let before = fs::read(&path).expect("read");
        let (changed, _) = relocked(&one);
        let failed = replace(&viewers, &changed, Relocked::Recovery, || {
            Err(StoreError::ViewerKeyInvalid {
                reason: "the index refused".into(),
            })
        });
        assert!(failed.is_err());
        assert_eq!(fs::read(&path).expect("read"), before, "old file untouched");
        assert!(!path.with_extension(format!("{EXTENSION}.new")).exists());
        let back = list(&viewers).expect("list");
        back[0]
            .key
            .unlock_with_recovery(&old_recovery)
            .expect("old recovery key");
    }

    /// A crash left a whole `.new` and the index was lost: [`settle`] renames it in
    /// when the old file shows the commit (a zeroed lock) and removes it otherwise,
    /// leaving the old file and its secrets. (With the index, `committed` decides:
    /// `e2e::tests`.)
    #[test]
    fn an_interrupted_relocking_rolls_forward_only_if_committed() {
        for commit in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let viewers = dir.path().join("viewers");
            let (one, old_recovery) = saved(7);
            save(&viewers, &one).expect("save");
            let (changed, recovery) = relocked(&one);
            let path = path_of(&viewers, changed.key.public_key().id());
            let tmp = path.with_extension(format!("{EXTENSION}.new"));
            write_new_key_file(&tmp, changed.to_bytes()).expect("the .new file");
            if commit {
                let part = LockedViewerKey::RECOVERY_PART;
                overwrite_in_place(&path, (HEADER_LEN + part.start) as u64, part.len())
                    .expect("zero");
            }
            // A partial `.new` of another viewer is left alone.
            fs::write(viewers.join("00112233aabbccdd.plv.new"), b"PLVIEW").expect("partial");

            // The index does not say (lost): the zeroed lock in the old file does.
            let done = settle(&viewers, |_| false).expect("settle");
            assert_eq!(done.len(), 1, "{done:?}");
            let back = list(&viewers).expect("list");
            assert_eq!(back.len(), 1);
            if commit {
                assert_eq!(back[0].key, changed.key);
                back[0].key.unlock_with_recovery(&recovery).expect("new");
            } else {
                assert_eq!(back[0].key, one.key);
                back[0]
                    .key
                    .unlock_with_recovery(&old_recovery)
                    .expect("old");
            }
            assert!(!tmp.exists());
            assert!(viewers.join("00112233aabbccdd.plv.new").exists());
        }
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
