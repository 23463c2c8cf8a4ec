//! Whether a recording file is the one its name says. Every file authenticates only
//! itself, so a whole file copied or moved over another one's name is told apart by
//! its header's id and camera alone; see [`Store::status`] and `check`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::format::{self, HeaderFields};
use super::{names, regular, FileStatus, Store, StoreError};
use crate::model::{CameraId, RecordingId};

impl Store {
    /// Refuses ([`StoreError::WrongRecording`]) the file named (`camera`, `id`) if
    /// its header names another recording. Reads the header only.
    pub(super) fn check_name(&self, camera: &CameraId, id: RecordingId) -> Result<(), StoreError> {
        let path = self.recording_path(camera, id);
        let file = regular::open_regular_read(&path, "open")?;
        let (header, _) = format::read_header(&file, &path)?;
        check_fields(&header.fields, &path, camera, id.0)
    }

    /// Whether the misnamed file (`camera`, `id`), which holds recording `holds_id`
    /// of `holds_camera`, is a stray copy: that recording has its own file, under
    /// its own name, which names itself and is another file. Not a hard link of this
    /// one: shredding this one would then shred that one's key too.
    pub fn is_stray_copy(
        &self,
        camera: &CameraId,
        id: RecordingId,
        holds_camera: &str,
        holds_id: RecordingId,
    ) -> bool {
        let Ok(holds_camera) = holds_camera.parse::<CameraId>() else {
            return false;
        };
        if (&holds_camera, holds_id) == (camera, id)
            || !matches!(
                self.status(&holds_camera, holds_id),
                FileStatus::Readable | FileStatus::EndToEnd(_)
            )
        {
            return false;
        }
        let inode = |path: &Path| fs::symlink_metadata(path).map(|m| (m.dev(), m.ino()));
        match (
            inode(&self.recording_path(camera, id)),
            inode(&self.recording_path(&holds_camera, holds_id)),
        ) {
            (Ok(this), Ok(own)) => this != own,
            _ => false,
        }
    }
}

/// [`StoreError::WrongRecording`] unless `fields` name `id` of `camera`.
pub(super) fn check_fields(
    fields: &HeaderFields,
    path: &Path,
    camera: &CameraId,
    id: u64,
) -> Result<(), StoreError> {
    if names(fields, camera, id) {
        return Ok(());
    }
    Err(StoreError::WrongRecording {
        path: path.to_owned(),
        expected_id: id,
        expected_camera: camera.as_str().to_owned(),
        found_id: fields.recording_id,
        found_camera: fields.camera.clone(),
    })
}
