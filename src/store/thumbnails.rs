//! Event thumbnails: one JPEG per event, sealed like a recording (its own data key;
//! sealed to the viewers it was taken under in end-to-end mode), so a picture of the
//! front door is no easier to read at rest than the video it comes from. Once the
//! mode is off, a viewer migrates the thumbnails sealed to them back to the master
//! key along with the recordings (`migrate.rs`, driven by `crate::e2e::migrate_all`).

use std::path::PathBuf;

use super::e2e::{ViewerPublicKey, ViewerSecret};
use super::format::HeaderFields;
use super::{
    create_private_dir, end_to_end_at, file_name_as, read_dir, recover, Extra, RecordingWriter,
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
            self.open_checked(&self.thumbnail_path(camera, event), camera, event.0, viewer)?;
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

    /// Re-seals an event's end-to-end thumbnail under the master key, read with the
    /// unlocked `viewer`, exactly as a recording is migrated (`migrate.rs`: a copy
    /// renamed over it, the original's slots zeroed; a deletion meanwhile is not
    /// undone). Afterwards it reads like a thumbnail taken with the mode off.
    /// Returns false, changing nothing, for one already under the master key.
    pub fn migrate_thumbnail_to_master(
        &self,
        camera: &CameraId,
        event: EventId,
        viewer: &ViewerSecret,
    ) -> Result<bool, StoreError> {
        let path = self.thumbnail_path(camera, event);
        if !end_to_end_at(&path)? {
            return Ok(false);
        }
        self.migrate_file(&path, camera, event.0, viewer)?;
        tracing::info!(event = %event, camera = %camera, "end-to-end thumbnail migrated to the master key");
        Ok(true)
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;

    use super::*;
    use crate::store::format;
    use crate::store::writer::testing::quick_viewer;

    const JPEG: &[u8] = b"\xff\xd8\xff\xe0 the front door \xff\xd9";

    /// A thumbnail sealed to a viewer opens with the master key alone once migrated,
    /// and the old file's key slots are zeroed; one sealed to someone else, or under
    /// the master key already, is left as it was; one deleted is not brought back.
    #[test]
    fn a_migrated_thumbnail_opens_with_the_master_key_and_others_are_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
            .expect("store");
        let (mine, viewer) = quick_viewer("mine");
        let (theirs, _) = quick_viewer("theirs");
        let camera: CameraId = "porch".parse().expect("camera");
        let (sealed, foreign, plain, deleted) = (EventId(1), EventId(2), EventId(3), EventId(4));
        store
            .set_recipients(vec![mine.public_key().clone()])
            .expect("on");
        store
            .write_thumbnail(&camera, sealed, 5, JPEG)
            .expect("sealed to me");
        store
            .write_thumbnail(&camera, deleted, 5, JPEG)
            .expect("sealed to me");
        store
            .write_thumbnail_taken_under(&camera, foreign, 5, JPEG, &[theirs.public_key().clone()])
            .expect("sealed to them");
        store.set_recipients(Vec::new()).expect("off");
        store
            .write_thumbnail(&camera, plain, 5, JPEG)
            .expect("master key");
        let path = store.thumbnail_path(&camera, sealed);
        let old = fs::File::open(&path).expect("keep the old inode");
        assert!(matches!(
            store.read_thumbnail(&camera, sealed),
            Err(StoreError::EndToEnd { .. })
        ));

        assert!(store
            .migrate_thumbnail_to_master(&camera, sealed, &viewer)
            .expect("migrate"));
        assert_eq!(
            store.read_thumbnail(&camera, sealed).expect("master key"),
            JPEG
        );
        assert!(!path.with_extension("migrating").exists());
        let mut old_bytes = Vec::new();
        (&old).read_to_end(&mut old_bytes).expect("read old");
        let slots = format::key_slot_range(&old_bytes).expect("a version 2 header");
        assert!(old_bytes[slots].iter().all(|&b| b == 0), "old slots zeroed");
        assert!(!store
            .migrate_thumbnail_to_master(&camera, sealed, &viewer)
            .expect("twice: nothing to do"));

        let before = fs::read(store.thumbnail_path(&camera, foreign)).expect("read");
        assert!(matches!(
            store.migrate_thumbnail_to_master(&camera, foreign, &viewer),
            Err(StoreError::NotARecipient { .. })
        ));
        assert_eq!(
            fs::read(store.thumbnail_path(&camera, foreign)).expect("read"),
            before
        );
        let before = fs::read(store.thumbnail_path(&camera, plain)).expect("read");
        assert!(!store
            .migrate_thumbnail_to_master(&camera, plain, &viewer)
            .expect("already under the master key"));
        assert_eq!(
            fs::read(store.thumbnail_path(&camera, plain)).expect("read"),
            before
        );

        store.shred_thumbnail(&camera, deleted).expect("deleted");
        let gone = store.migrate_thumbnail_to_master(&camera, deleted, &viewer);
        assert!(gone.is_err_and(|e| e.is_not_found()));
        assert!(!store.thumbnail_path(&camera, deleted).exists());
        assert_eq!(store.list_thumbnails().expect("list").len(), 3);
    }
}
