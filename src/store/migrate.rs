//! Migrating an end-to-end recording back to the master key (after the mode was
//! turned off): the video is copied, chunk by chunk, into a new version 1 file under
//! a fresh data key wrapped by the master key, which then replaces the original.
//! The data key cannot simply be re-wrapped in place: a version 2 header differs in
//! length and in what every chunk's associated data covers.
//!
//! Order, so that a crash at any point leaves one readable recording:
//! 1. the copy is written to `<id>.migrating` (ignored by the file listing) and
//!    fsynced;
//! 2. the original is opened, then the copy is renamed over its name and the
//!    directory fsynced — from here the name holds the new file;
//! 3. the original's recipient slots are zeroed through the still-open handle and
//!    fsynced, so its data key is gone from the disk (with the usual caveat of flash
//!    media keeping old sectors, see `recover::shred`).
//!
//! A leftover `<id>.migrating` of a crash before step 2 is removed by the next try.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;

use super::e2e::ViewerSecret;
use super::format::{self, HeaderFields};
use super::share::copy_plaintext;
use super::writer::sync_parent_dir;
use super::{RecordingWriter, Store, StoreError};
use crate::model::{CameraId, RecordingId};

/// What a migration changed, for the index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The new key slot (hex), as the index keeps it.
    pub wrapped_key: String,
    /// The new file's size.
    pub file_len: u64,
}

impl Store {
    /// Re-seals end-to-end recording `id` under the master key (see the module doc),
    /// reading it with the unlocked `viewer`. Fails without changing anything if
    /// the viewer is not a recipient or the recording is not end-to-end.
    pub fn migrate_to_master(
        &self,
        camera: &CameraId,
        id: RecordingId,
        viewer: &ViewerSecret,
    ) -> Result<Migrated, StoreError> {
        let path = self.recording_path(camera, id);
        if !self.is_end_to_end(camera, id)? {
            return Err(StoreError::InvalidArgument {
                field: "recording",
                reason: format!("recording {id} is not end-to-end encrypted"),
            });
        }
        let mut source = self.open_recording_as(camera, id, viewer)?;
        let header = source.inner.header().fields.clone();
        let temp = path.with_extension("migrating");
        match fs::remove_file(&temp) {
            Ok(()) => tracing::warn!(path = %temp.display(), "removed a leftover migration copy"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove stale migration copy", &temp, e)),
        }
        let fields = HeaderFields {
            chunk_size: header.chunk_size,
            ..HeaderFields::new(
                header.recording_id,
                header.camera.as_str(),
                header.start_unix_micros,
                header.trigger.as_str(),
            )
        };
        let (mut writer, wrapped) = RecordingWriter::create(&temp, &fields, &self.master)?;
        let copied = copy_plaintext(&mut source, &mut writer).and_then(|()| writer.finish());
        let finished = match copied {
            Ok(f) => f,
            Err(e) => {
                if let Err(rm) = fs::remove_file(&temp) {
                    tracing::warn!(path = %temp.display(), "cannot remove a failed migration copy: {rm}");
                }
                return Err(e);
            }
        };
        drop(source);
        let original = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("open for migration", &path, e))?;
        let mut prefix = [0u8; 36];
        let got = format::read_up_to(&original, &path, &mut prefix, 0)?;
        let slots = format::key_slot_range(&prefix[..got]).ok_or_else(|| StoreError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason: "the key slot moved during migration".into(),
        })?;
        fs::rename(&temp, &path).map_err(|e| StoreError::io("rename migration copy", &path, e))?;
        sync_parent_dir(&path)?;
        original
            .write_all_at(&vec![0u8; slots.len()], slots.start as u64)
            .and_then(|()| original.sync_data())
            .map_err(|e| StoreError::io("zero the old key slots", &path, e))?;
        tracing::info!(recording = %id, camera = %camera, "end-to-end recording migrated to the master key");
        Ok(Migrated {
            wrapped_key: hex::encode(wrapped.as_bytes()),
            file_len: finished.file_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Trigger;
    use crate::store::e2e::{KdfParams, LockedViewerKey};
    use crate::store::NewRecording;
    use std::io::Read;

    #[test]
    fn a_migrated_recording_opens_with_the_master_key_and_the_old_slots_are_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
            .expect("store");
        let (locked, recovery) = LockedViewerKey::generate_with(
            "a passphrase for the test",
            KdfParams {
                memory_kib: 8 * 1024,
                iterations: 1,
                parallelism: 1,
            },
        )
        .expect("generate");
        let viewer = locked.unlock_with_recovery(&recovery).expect("unlock");
        store
            .set_recipients(vec![locked.public_key().clone()])
            .expect("on");
        let camera: CameraId = "porch".parse().expect("camera");
        let id = RecordingId::random();
        let (mut w, _) = store
            .create_recording(&NewRecording {
                id,
                camera: camera.clone(),
                start_micros: 5,
                trigger: Trigger::Motion,
            })
            .expect("create");
        let video: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        w.write_all(&video).expect("write");
        w.finish().expect("finish");
        store.set_recipients(Vec::new()).expect("off");
        let path = store.recording_path(&camera, id);
        let old = fs::File::open(&path).expect("keep the old inode");

        let migrated = store
            .migrate_to_master(&camera, id, &viewer)
            .expect("migrate");
        assert!(!store.is_end_to_end(&camera, id).expect("header"));
        let mut reader = store
            .open_recording(&camera, id)
            .expect("the master key opens it")
            .inner
            .into_reader(crate::store::reader::TornFiles::Refuse)
            .expect("finished");
        let mut back = Vec::new();
        reader.read_to_end(&mut back).expect("read");
        assert_eq!(back, video);
        assert_eq!(migrated.file_len, fs::metadata(&path).expect("stat").len());
        assert_eq!(migrated.wrapped_key.len(), 144);
        assert!(!path.with_extension("migrating").exists());
        // The old file's slots were zeroed: nothing opens it any more.
        let mut old_bytes = Vec::new();
        (&old).read_to_end(&mut old_bytes).expect("read old");
        let slots = format::key_slot_range(&old_bytes).expect("a version 2 header");
        assert!(old_bytes[slots].iter().all(|&b| b == 0));
        // Twice is refused, not repeated.
        assert!(store.migrate_to_master(&camera, id, &viewer).is_err());
    }
}
