//! Whether a recording file is the one its name says. Every file authenticates only
//! itself, so a whole file copied or moved over another one's name is told apart by
//! its header's id and camera alone; see [`Store::status`] and `check`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::format::{self, HeaderFields, Tail};
use super::{names, regular, RecordingReader, Store, StoreError};
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
    /// of `holds_camera`, is a stray copy, safe to shred: that recording has its own
    /// file, under its own name, which is whole and another file. Whole means it
    /// names itself, ends with its final chunk and nothing after it, every chunk
    /// authenticates, and it is at least as long as this copy: a header alone says
    /// nothing of the video after it, and an own file cut short (a power cut, a
    /// partial restore) or rotted while a complete copy sits here would otherwise
    /// cost the video only the copy still holds. An end-to-end own file cannot be
    /// authenticated without a viewer's key, so its copy is never called stray. Not a
    /// hard link of this one either: shredding this one would shred that one's key
    /// too. Reads the own file in full: misnamed files are rare, so this is cheap
    /// enough for start-up recovery.
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
        if (&holds_camera, holds_id) == (camera, id) || !self.is_whole(&holds_camera, holds_id) {
            return false;
        }
        let stat = |path: &Path| fs::symlink_metadata(path);
        match (
            stat(&self.recording_path(camera, id)),
            stat(&self.recording_path(&holds_camera, holds_id)),
        ) {
            (Ok(this), Ok(own)) => {
                (this.dev(), this.ino()) != (own.dev(), own.ino()) && own.len() >= this.len()
            }
            _ => false,
        }
    }

    /// Whether the file named (`camera`, `id`) names itself, is sealed with the
    /// loaded master key, is finished with nothing after its final chunk and every
    /// chunk authenticates. Decrypts the whole file.
    fn is_whole(&self, camera: &CameraId, id: RecordingId) -> bool {
        match self.open_recording(camera, id) {
            Ok(RecordingReader { mut inner }) => {
                inner.tail() == Tail::Clean && inner.verify_all().is_ok()
            }
            Err(_) => false,
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
