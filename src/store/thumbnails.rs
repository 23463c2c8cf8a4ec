//! Event thumbnails: one JPEG per event, sealed like a recording (its own data key;
//! sealed to the viewers it was taken under in end-to-end mode), so a picture of the
//! front door is no easier to read at rest than the video it comes from.

use std::path::PathBuf;

use super::e2e::{ViewerPublicKey, ViewerSecret};
use super::format::HeaderFields;
use super::reader::SealedReader;
use super::{
    check_identity, create_private_dir, file_name_as, read_dir, recover, Extra, RecordingWriter,
    Store, StoreError, THUMBNAIL_EXTENSION,
};
use crate::model::{CameraId, EventId};

impl Store {
    /// Every event thumbnail on disk, by camera and event (for `check`: the index
    /// says which events have one).
    pub fn list_thumbnails(&self) -> Result<Vec<(CameraId, EventId)>, StoreError> {
        let mut found = Vec::new();
        for camera_dir in read_dir(&self.thumbnails)? {
            let Some(camera) = file_name_as::<CameraId>(&camera_dir) else {
                continue;
            };
            if !camera_dir.is_dir() {
                continue;
            }
            for file in read_dir(&camera_dir)? {
                if file.extension().and_then(|e| e.to_str()) != Some(THUMBNAIL_EXTENSION) {
                    continue;
                }
                if let Some(event) = file.file_stem().and_then(|s| s.to_str()?.parse().ok()) {
                    found.push((camera.clone(), event));
                }
            }
        }
        Ok(found)
    }

    pub(super) fn thumbnail_path(&self, camera: &CameraId, event: EventId) -> PathBuf {
        self.thumbnails
            .join(camera.as_str())
            .join(format!("{event}.{THUMBNAIL_EXTENSION}"))
    }

    /// Seals an event's thumbnail (a JPEG) under a key of its own, like a recording:
    /// in end-to-end mode sealed to the viewers, so it follows the recordings' rule.
    pub fn write_thumbnail(
        &self,
        camera: &CameraId,
        event: EventId,
        start_micros: i64,
        jpeg: &[u8],
    ) -> Result<(), StoreError> {
        self.write_thumbnail_taken_under(camera, event, start_micros, jpeg, &[])
    }

    /// [`write_thumbnail`](Self::write_thumbnail) of a picture taken while
    /// end-to-end mode sealed to `taken_under` (empty: it was off): sealed to them,
    /// whatever the mode is now, so turning the mode off never unseals a picture
    /// taken while it was on.
    pub fn write_thumbnail_taken_under(
        &self,
        camera: &CameraId,
        event: EventId,
        start_micros: i64,
        jpeg: &[u8],
        taken_under: &[ViewerPublicKey],
    ) -> Result<(), StoreError> {
        create_private_dir(&self.thumbnails.join(camera.as_str()))?;
        let fields = HeaderFields::new(event.0, camera.as_str(), start_micros, "thumbnail");
        let path = self.thumbnail_path(camera, event);
        let recipients = if taken_under.is_empty() {
            self.recipients()
        } else {
            taken_under.to_vec()
        };
        let mut writer = if recipients.is_empty() {
            RecordingWriter::create(&path, &fields, &self.master)?.0
        } else {
            RecordingWriter::create_sealed_to(&path, &fields, &recipients, &self.master)?.0
        };
        writer.write_all(jpeg)?;
        writer.finish()?;
        Ok(())
    }

    /// Decrypts an event's thumbnail (one sealed to viewers fails with `EndToEnd`).
    pub fn read_thumbnail(&self, camera: &CameraId, event: EventId) -> Result<Vec<u8>, StoreError> {
        self.read_thumbnail_as(camera, event, None)
    }

    /// Decrypts an event's thumbnail, one sealed to viewers with the unlocked `viewer`.
    pub fn read_thumbnail_as(
        &self,
        camera: &CameraId,
        event: EventId,
        viewer: Option<&ViewerSecret>,
    ) -> Result<Vec<u8>, StoreError> {
        let mut reader =
            SealedReader::open_with(&self.thumbnail_path(camera, event), &self.master, viewer)?;
        check_identity(&reader, camera, event.0)?;
        reader.verify_complete()?;
        let mut jpeg = vec![0; reader.plaintext_len() as usize];
        let mut done = 0;
        while done < jpeg.len() {
            match reader.read_at(done as u64, &mut jpeg[done..])? {
                0 => break,
                n => done += n,
            }
        }
        jpeg.truncate(done);
        Ok(jpeg)
    }

    /// Crypto-shreds an event's thumbnail (missing counts as done). One whose header
    /// is too damaged to find its key slot in (a write cut short) is unlinked all the
    /// same: it must not outlive its event.
    pub fn shred_thumbnail(&self, camera: &CameraId, event: EventId) -> Result<(), StoreError> {
        recover::shred(&self.thumbnail_path(camera, event)).or_else(|shred_error| {
            tracing::warn!(camera = %camera, event = %event, "cannot shred a thumbnail, unlinking it: {shred_error}");
            self.unlink_extra(Extra::Thumbnail(camera.clone(), event))
        })
    }
}
