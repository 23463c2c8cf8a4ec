//! Master-key rotation, the store's part: the new key's file, and re-wrapping each
//! file's data key in place. The index copies and sealed secrets are the caller's
//! (`crate::rotate`), which runs the steps in this durable order:
//!
//! 1. [`KeyRotation::begin`]: the new key is written to `master.key.rotating.tmp`
//!    (mode 0600, fsynced), renamed to `master.key.rotating`, and the directory is
//!    fsynced. From then on [`MasterKey::load`] refuses with
//!    [`StoreError::RotationInterrupted`], so nothing (daemon, `check`, `export`)
//!    silently uses one key while files are under both.
//! 2. [`KeyRotation::rewrap`] for each recording and thumbnail: the data key is
//!    unwrapped with the old key and wrapped with the new one, and the key slot
//!    (bytes 34..121: key id ‖ nonce prefix, unchanged ‖ wrapped key) is rewritten
//!    in one write and fsynced. The slot is outside `header_hash` (see `format`), so
//!    no chunk changes: the video bytes are never touched. An end-to-end file's
//!    header tag (bytes 36..42, also outside `header_hash`) is checked under the old
//!    key and rewritten under the new one the same way (see `e2e_tag`).
//! 3. The caller updates the index's copies and re-seals secrets
//!    ([`KeyRotation::reseal_secret`]), then flushes the index.
//! 4. [`KeyRotation::finish`]: `master.key.rotating` is renamed over `master.key`
//!    and the directory fsynced.
//!
//! A crash anywhere is finished by running the rotation again: step 1 picks up the
//! existing `master.key.rotating`; step 2 skips a file already under the new key
//! (for an end-to-end file: whose tag already matches the new key);
//! step 3 keeps a secret that already opens with the new key. Before the rename the
//! old key is still `master.key`, after it no file or secret needs the old key.
//!
//! No reader ever needs to accept a tag under either key: while
//! `master.key.rotating` exists every `MasterKey::load` refuses, so nothing but the
//! rotation itself opens a file, and it knows both keys.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::crypto::{
    e2e_tags_marker_exists, fill_random, KeyId, MasterKey, KEY_LEN, MASTER_KEY_FILE,
};
use super::e2e_tag::{self, TagState};
use super::error::StoreError;
use super::format::{self, KeySlot, KEY_ID_OFFSET, WRAPPED_KEY_OFFSET};
use super::key_dir::KeyDir;
use super::{read_dir, EXTENSION, RECORDINGS_DIR, THUMBNAILS_DIR, THUMBNAIL_EXTENSION};

/// The new key while a rotation is unfinished; its presence stops every other use.
pub const ROTATING_KEY_FILE: &str = "master.key.rotating";
/// Where the new key is written before it is renamed to [`ROTATING_KEY_FILE`], so
/// that file is never half-written.
const ROTATING_TMP_FILE: &str = "master.key.rotating.tmp";

/// Fails with [`StoreError::RotationInterrupted`] if a rotation is unfinished.
pub(super) fn refuse_if_rotating(dir: &KeyDir) -> Result<(), StoreError> {
    let path = dir.join(ROTATING_KEY_FILE);
    match dir.exists(ROTATING_KEY_FILE) {
        Ok(true) => Err(StoreError::RotationInterrupted { path }),
        Ok(false) => Ok(()),
        Err(e) => Err(StoreError::io(
            "look for an unfinished key rotation",
            &path,
            e,
        )),
    }
}

/// What [`KeyRotation::rewrap`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrap {
    /// Was under the old key; now under the new one (for an end-to-end file: its
    /// header tag, as the master key never wrapped its data key).
    Rewrapped,
    /// Already under the new key (a rotation run before a crash got to it).
    AlreadyNew,
    /// Its key slot is zeroed (an interrupted deletion): nothing to re-wrap.
    Shredded,
}

/// A file's outcome with what its header says, for the caller's index update.
#[derive(Clone, Debug)]
pub struct Rewrapped {
    pub status: Rewrap,
    /// The recording id in the header (an event id for a thumbnail).
    pub id: u64,
    /// The key slot as the index keeps it (hex), as it is on disk now.
    pub key_slot_hex: String,
}

/// A rotation in progress: the old key (still `master.key`) and the new one.
pub struct KeyRotation {
    data_dir: PathBuf,
    /// Opened and checked once by `begin`: `finish` renames in the directory the
    /// keys were loaded from, even if `key_dir` names another one by then.
    key_dir: KeyDir,
    old: MasterKey,
    new: MasterKey,
    resumed: bool,
}

impl KeyRotation {
    /// Step 1: loads the old key and the new key of an unfinished rotation, or makes
    /// and durably stores a new key. The caller must hold the index lock (no daemon).
    pub fn begin(data_dir: &Path, key_dir: &Path) -> Result<KeyRotation, StoreError> {
        let dir = KeyDir::open(key_dir)?;
        let old = MasterKey::load_key_file(&dir, MASTER_KEY_FILE)?;
        // As `MasterKey::load` would: untagged end-to-end files pass only until the
        // marker says they were all tagged.
        old.set_accepts_untagged_e2e(!e2e_tags_marker_exists(&dir)?);
        let (new, resumed) = match MasterKey::load_key_file(&dir, ROTATING_KEY_FILE) {
            Ok(key) => (key, true),
            Err(StoreError::MasterKeyMissing { .. }) => (Self::create_new_key(&dir)?, false),
            Err(e) => return Err(e),
        };
        if new.id() == old.id() {
            return Err(StoreError::MasterKeyInvalid {
                path: dir.join(ROTATING_KEY_FILE),
                reason: "it is the same key as master.key".into(),
            });
        }
        Ok(KeyRotation {
            data_dir: data_dir.to_owned(),
            key_dir: dir,
            old,
            new,
            resumed,
        })
    }

    /// Writes a new key next to the old one. It gets the old key file's owner and
    /// group, so that a rotation run as root leaves a key the daemon's user can read.
    fn create_new_key(dir: &KeyDir) -> Result<MasterKey, StoreError> {
        use std::os::unix::fs::MetadataExt;
        let old = dir
            .stat(MASTER_KEY_FILE)
            .map_err(|e| StoreError::io("stat master key", &dir.join(MASTER_KEY_FILE), e))?;
        let tmp = dir.join(ROTATING_TMP_FILE);
        match dir.remove(ROTATING_TMP_FILE) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove stale key file", &tmp, e)),
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut())?;
        let file = dir.write_new(ROTATING_TMP_FILE, bytes.as_ref())?;
        let written = file
            .metadata()
            .map_err(|e| StoreError::io("stat key file", &tmp, e))?;
        if (written.uid(), written.gid()) != (old.st_uid, old.st_gid) {
            std::os::unix::fs::fchown(&file, Some(old.st_uid), Some(old.st_gid))
                .map_err(|e| StoreError::io("give the new key the old key's owner", &tmp, e))?;
        }
        drop(file);
        let rotating = dir.join(ROTATING_KEY_FILE);
        dir.rename(ROTATING_TMP_FILE, ROTATING_KEY_FILE)
            .map_err(|e| StoreError::io("rename key file", &rotating, e))?;
        dir.sync()?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// Whether this run picked up a rotation a crash interrupted.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    pub fn old_id(&self) -> KeyId {
        self.old.id()
    }

    pub fn new_id(&self) -> KeyId {
        self.new.id()
    }

    /// Every `recordings/<camera>/<id>.plr` file.
    pub fn recording_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        files_under(&self.data_dir.join(RECORDINGS_DIR), EXTENSION)
    }

    /// Every `thumbnails/<camera>/<event>.plt` file.
    pub fn thumbnail_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        files_under(&self.data_dir.join(THUMBNAILS_DIR), THUMBNAIL_EXTENSION)
    }

    /// Step 2 for one file. A version 1 file under a key that is neither the old nor
    /// the new one fails with `KeyMismatch` and is not changed.
    pub fn rewrap(&self, path: &Path) -> Result<Rewrapped, StoreError> {
        rewrap_file(path, &self.old, &self.new)
    }

    /// Step 3 for one secret (hex, as `Store::seal_secret` makes it): `None` if it
    /// already opens with the new key, else the secret sealed under the new key.
    pub fn reseal_secret(
        &self,
        purpose: &str,
        sealed_hex: &str,
    ) -> Result<Option<String>, StoreError> {
        let refused = || StoreError::SecretUnseal {
            purpose: purpose.to_owned(),
        };
        let sealed = hex::decode(sealed_hex).map_err(|_| refused())?;
        if self.new.open_secret(purpose, &sealed).is_ok() {
            return Ok(None);
        }
        let clear = self.old.open_secret(purpose, &sealed)?;
        Ok(Some(hex::encode(self.new.seal_secret(purpose, &clear)?)))
    }

    /// Step 4: the new key replaces the old one. Returns the new key's id.
    pub fn finish(self) -> Result<KeyId, StoreError> {
        let path = self.key_dir.join(MASTER_KEY_FILE);
        self.key_dir
            .rename(ROTATING_KEY_FILE, MASTER_KEY_FILE)
            .map_err(|e| StoreError::io("rename key file", &path, e))?;
        self.key_dir.sync()?;
        Ok(self.new.id())
    }
}

/// `<dir>/<camera>/*.<extension>`, sorted; a missing `dir` has none.
fn files_under(dir: &Path, extension: &str) -> Result<Vec<PathBuf>, StoreError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for camera_dir in read_dir(dir)? {
        if !camera_dir.is_dir() {
            continue;
        }
        for file in read_dir(&camera_dir)? {
            if file.extension().and_then(|e| e.to_str()) == Some(extension) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

/// Re-wraps one file's data key from `old` to `new` in place (see the module doc).
pub(super) fn rewrap_file(
    path: &Path,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Rewrapped, StoreError> {
    let file = super::regular::open_regular(
        path,
        super::regular::Access::ReadWrite,
        "open for key rotation",
    )?;
    let (header, raw) = format::read_header(&file, path)?;
    let id = header.fields.recording_id;
    let done = |status, slot: &KeySlot| Rewrapped {
        status,
        id,
        key_slot_hex: slot.to_hex(),
    };
    if header.key.is_shredded() {
        return Ok(done(Rewrap::Shredded, &header.key));
    }
    let (key_id, wrapped) = match &header.key {
        KeySlot::Recipients(_) => {
            let status = retag_file(&file, path, &raw, id, old, new)?;
            return Ok(done(status, &header.key));
        }
        KeySlot::Master { key_id, wrapped } => (*key_id, wrapped),
    };
    if key_id == new.id() {
        return Ok(done(Rewrap::AlreadyNew, &header.key));
    }
    if key_id != old.id() {
        return Err(StoreError::KeyMismatch {
            path: path.to_owned(),
            recording_id: id,
            file_key_id: key_id,
            loaded_key_id: old.id(),
        });
    }
    let camera = &header.fields.camera;
    let data_key = old
        .unwrap_data_key(wrapped, id, camera)
        .map_err(|_| StoreError::KeyUnwrap {
            recording_id: id,
            camera: camera.clone(),
            path: Some(path.to_owned()),
        })?;
    let rewrapped = new.wrap_data_key(&data_key, id, camera)?;
    // Key id, nonce prefix (unchanged) and wrapped key are contiguous: one write of
    // 87 bytes inside the first sector, so a crash leaves the old slot or the new one.
    let start = KEY_ID_OFFSET as usize;
    let end = WRAPPED_KEY_OFFSET as usize + rewrapped.as_bytes().len();
    let mut slot = raw[start..end].to_vec();
    slot[..KeyId::LEN].copy_from_slice(&new.id().to_bytes());
    slot[WRAPPED_KEY_OFFSET as usize - start..].copy_from_slice(rewrapped.as_bytes());
    file.write_all_at(&slot, KEY_ID_OFFSET)
        .map_err(|e| StoreError::io("rewrite key slot", path, e))?;
    file.sync_data()
        .map_err(|e| StoreError::io("fsync", path, e))?;
    Ok(done(
        Rewrap::Rewrapped,
        &KeySlot::Master {
            key_id: new.id(),
            wrapped: rewrapped,
        },
    ))
}

/// Step 2 for an end-to-end file: its header tag (see `e2e_tag`) is rewritten
/// under the new key, the counterpart of re-wrapping a version 1 key slot. A tag
/// already under the new key means an earlier run got here (`AlreadyNew`); an
/// all-zero tag is tagged only while the old key still accepts untagged files; a
/// tag under neither key fails with `NotAuthentic` and the file is not changed.
fn retag_file(
    file: &fs::File,
    path: &Path,
    raw: &[u8],
    id: u64,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Rewrap, StoreError> {
    if e2e_tag::state(raw, new) == TagState::Valid {
        return Ok(Rewrap::AlreadyNew);
    }
    e2e_tag::check(path, raw, id, old)?;
    e2e_tag::retag(file, path, raw, new)?;
    Ok(Rewrap::Rewrapped)
}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
