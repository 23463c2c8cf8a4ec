//! Sizes on disk of what the store holds, for retention's byte cap
//! (`retention::usage`). Metadata only: one `stat` per file (taken from the
//! directory entry where one is listed), never a read of a file's content, since
//! retention asks at every pass.

use std::fs;
use std::io;
use std::path::Path;

use super::{Store, StoreError};
use crate::model::{CameraId, EventId, RecordingId};

impl Store {
    /// A recording file's size on disk now; 0 if there is none. For one still being
    /// written, whose index entry says 0 bytes until it is finished.
    pub fn recording_file_len(
        &self,
        camera: &CameraId,
        id: RecordingId,
    ) -> Result<u64, StoreError> {
        file_len(&self.recording_path(camera, id))
    }

    /// An event thumbnail's size on disk; 0 if there is none. Taken before the
    /// thumbnail is shredded, to know what its deletion freed.
    pub fn thumbnail_len(&self, camera: &CameraId, event: EventId) -> Result<u64, StoreError> {
        file_len(&self.thumbnail_path(camera, event))
    }

    /// Bytes in every file under `thumbnails/` (a partly written one too: it takes
    /// room all the same).
    pub fn thumbnails_bytes(&self) -> Result<u64, StoreError> {
        dir_bytes(&self.thumbnails, 1)
    }

    /// Bytes in every file under `shares/` (none before the first share).
    pub fn share_copies_bytes(&self) -> Result<u64, StoreError> {
        dir_bytes(&self.shares, 0)
    }
}

/// A file's size, not following a symlink (the store makes none); missing is 0.
fn file_len(path: &Path) -> Result<u64, StoreError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(meta.len()),
        Ok(_) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StoreError::io("stat", path, e)),
    }
}

/// The sizes of the regular files in `dir` and, `depth` levels down, in its
/// subdirectories. A missing directory, or a file gone between the listing and its
/// `stat` (a deletion meanwhile), counts 0.
fn dir_bytes(dir: &Path, depth: u32) -> Result<u64, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    let mut total = 0u64;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list", dir, e))?;
        let kind = entry
            .file_type()
            .map_err(|e| StoreError::io("stat", &entry.path(), e))?;
        if kind.is_dir() && depth > 0 {
            total = total.saturating_add(dir_bytes(&entry.path(), depth - 1)?);
        } else if kind.is_file() {
            match entry.metadata() {
                Ok(meta) => total = total.saturating_add(meta.len()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("stat", &entry.path(), e)),
            }
        }
    }
    Ok(total)
}
