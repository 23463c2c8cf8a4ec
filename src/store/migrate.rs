//! Migrating end-to-end files back to the master key (after the mode was turned
//! off): a recording or an event thumbnail (`thumbnails.rs`) is copied, chunk by
//! chunk, into a new version 1 file under a fresh data key wrapped by the master
//! key, which then replaces the original. The data key cannot simply be re-wrapped
//! in place: a version 2 header differs in length and in what every chunk's
//! associated data covers. Both kinds go through [`Store::migrate_file`].
//!
//! Order, so that a crash at any point leaves one readable file:
//! 1. the copy is written to `<id>.migrating` (ignored by the file listings) and
//!    fsynced;
//! 2. the original is opened, then the copy is renamed over its name and the
//!    directory fsynced — from here the name holds the new file;
//! 3. the original's recipient slots are zeroed through the still-open handle and
//!    fsynced, so its data key is gone from the disk (with the usual caveat of flash
//!    media keeping old sectors, see `recover::shred`).
//!
//! A deletion racing the migration must not bring the file back, nor leave a key
//! on the disk. Steps 2 and 3 and every shred (`recover::shred`, open to unlink)
//! hold one lock (`recover::name_changes`), so a shred runs wholly before or wholly
//! after them. Before: no name is left to open, the copy is discarded and the
//! migration fails with `NotFound` (`StoreError::is_not_found`). After: the shred
//! finds the copy under the name and shreds that. (The slot check at step 3 is
//! kept as a second line of defence: it costs one read.)
//!
//! A leftover `<id>.migrating` of a crash before step 2 is shredded by the next try,
//! or at start-up ([`Store::discard_migration_leftovers`]).

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::e2e::ViewerSecret;
use super::format::{self, HeaderFields};
use super::recover;
use super::share::copy_plaintext;
use super::writer::sync_parent_dir;
use super::{RecordingReader, RecordingWriter, Store, StoreError};
use crate::model::{CameraId, RecordingId};

/// The extension of a migration's copy while it is being written.
const MIGRATING_EXTENSION: &str = "migrating";

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
        if !self.is_end_to_end(camera, id)? {
            return Err(StoreError::InvalidArgument {
                field: "recording",
                reason: format!("recording {id} is not end-to-end encrypted"),
            });
        }
        let migrated = self.migrate_file(&self.recording_path(camera, id), camera, id.0, viewer)?;
        tracing::info!(recording = %id, camera = %camera, "end-to-end recording migrated to the master key");
        Ok(migrated)
    }

    /// Re-seals the end-to-end file at `path` (a recording or a thumbnail, whose
    /// header must name `camera` and `id`) under the master key, reading it with
    /// `viewer`: the steps of the module doc. The caller has checked that the file
    /// is end-to-end.
    pub(super) fn migrate_file(
        &self,
        path: &Path,
        camera: &CameraId,
        id: u64,
        viewer: &ViewerSecret,
    ) -> Result<Migrated, StoreError> {
        let mut source = RecordingReader {
            inner: self.open_checked(path, camera, id, Some(viewer))?,
        };
        let header = source.inner.header().fields.clone();
        let temp = path.with_extension(MIGRATING_EXTENSION);
        // A leftover copy holds the video under a master-wrapped key: shredded, not
        // just unlinked.
        if temp.exists() {
            tracing::warn!(path = %temp.display(), "removing a leftover migration copy");
            discard_copy(&temp);
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
                discard_copy(&temp);
                return Err(e);
            }
        };
        drop(source);
        swap_in_copy(path, &temp)?;
        Ok(Migrated {
            wrapped_key: hex::encode(wrapped.as_bytes()),
            file_len: finished.file_len,
        })
    }
}

impl Store {
    /// The right to migrate files to the master key, or `None` while another run
    /// has it: a second run would take the first's half-written `.migrating` copies
    /// for a crash's leftovers and shred them under it.
    pub fn one_migration(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.migration.try_lock() {
            Ok(guard) => Some(guard),
            // A run that panicked left nothing to protect but its leftovers.
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Removes every `<id>.migrating` copy a crash or a failed migration left (see
    /// the module doc); returns their paths. Only while no migration runs: at
    /// start-up, or by `check --repair` with the daemon stopped.
    pub fn discard_migration_leftovers(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut removed = Vec::new();
        for top in [&self.recordings, &self.thumbnails] {
            for camera_dir in super::read_dir(top)? {
                if !camera_dir.is_dir() {
                    continue;
                }
                for file in super::read_dir(&camera_dir)? {
                    if file.extension().and_then(|e| e.to_str()) == Some(MIGRATING_EXTENSION) {
                        discard_copy(&file);
                        removed.push(file);
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// Puts the finished copy `temp` in the place of the original at `path` (steps 2
/// and 3 of the module doc). On an error before the rename, the copy is discarded:
/// it holds the video under a data key wrapped by the master key, which nothing
/// else would ever delete.
pub(super) fn swap_in_copy(path: &Path, temp: &Path) -> Result<(), StoreError> {
    // Until the original's slots are zeroed, no shred may run between our open and
    // our rename (see `recover::name_changes`); released before discarding a copy.
    let names = recover::name_changes();
    let original = match super::regular::open_regular(
        path,
        super::regular::Access::ReadWrite,
        "open for migration",
    ) {
        Ok(file) => file,
        Err(e) => {
            drop(names);
            discard_copy(temp);
            return Err(e);
        }
    };
    let mut prefix = [0u8; 36];
    let slots = format::read_up_to(&original, path, &mut prefix, 0).and_then(|got| {
        format::key_slot_range(&prefix[..got]).ok_or_else(|| StoreError::Corrupt {
            path: path.to_owned(),
            offset: 0,
            reason: "the key slot moved during migration".into(),
        })
    });
    let slots = match slots.and_then(|slots| {
        fs::rename(temp, path)
            .map(|()| slots)
            .map_err(|e| StoreError::io("rename migration copy", path, e))
    }) {
        Ok(slots) => slots,
        Err(e) => {
            drop(names);
            discard_copy(temp);
            return Err(e);
        }
    };
    sync_parent_dir(path)?;
    // Slots already zero: a deletion shredded the original after it was opened above
    // (see the module doc). The copy must not outlive it. (A failed read goes on to
    // the zeroing, which then reports the disk's error.)
    let mut old_slots = vec![0u8; slots.len()];
    let read = original.read_exact_at(&mut old_slots, slots.start as u64);
    if read.is_ok() && old_slots.iter().all(|&b| b == 0) {
        tracing::warn!(path = %path.display(), "deleted during its migration: the copy is shredded too");
        recover::shred_locked(path)?;
        return Err(StoreError::io(
            "migrate (deleted meanwhile)",
            path,
            io::ErrorKind::NotFound.into(),
        ));
    }
    original
        .write_all_at(&vec![0u8; slots.len()], slots.start as u64)
        .and_then(|()| original.sync_data())
        .map_err(|e| StoreError::io("zero the old key slots", path, e))
}

/// Removes a migration copy that will not be used, shredding its key slot first
/// (failures are logged: the caller is already reporting an error, and the next
/// migration or start-up removes a leftover copy).
pub(super) fn discard_copy(temp: &Path) {
    if let Err(e) = recover::shred(temp) {
        tracing::warn!(path = %temp.display(), "cannot shred a migration copy: {e}");
        match fs::remove_file(temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %temp.display(), "cannot remove a migration copy: {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Trigger;
    use crate::store::e2e::{KdfParams, LockedViewerKey};
    use crate::store::NewRecording;
    use std::io::Read;

    /// A finished recording of `video` sealed as the store's recipients say.
    fn finished_recording(
        store: &Store,
        camera: &CameraId,
        id: RecordingId,
        start: i64,
        video: &[u8],
    ) {
        let (mut w, _) = store
            .create_recording(&NewRecording {
                id,
                camera: camera.clone(),
                start_micros: start,
                trigger: Trigger::Motion,
            })
            .expect("create");
        w.write_all(video).expect("write");
        w.finish().expect("finish");
    }

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
        let video: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        finished_recording(&store, &camera, id, 5, &video);
        store.set_recipients(Vec::new()).expect("off");
        let path = store.recording_path(&camera, id);
        let old = fs::File::open(&path).expect("keep the old inode");
        // A copy left by an earlier crash holds video under a master-wrapped key: it
        // must be shredded, not just unlinked. Here it is a hard link to another
        // recording, so that its inode can be looked at afterwards.
        let other = RecordingId::random();
        finished_recording(&store, &camera, other, 6, b"other video");
        fs::hard_link(
            store.recording_path(&camera, other),
            path.with_extension(MIGRATING_EXTENSION),
        )
        .expect("a leftover copy");
        assert!(store.open_recording(&camera, other).is_ok());

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
        assert!(
            store.open_recording(&camera, other).is_err(),
            "the leftover copy's key slot was overwritten"
        );
        // The old file's slots were zeroed: nothing opens it any more.
        let mut old_bytes = Vec::new();
        (&old).read_to_end(&mut old_bytes).expect("read old");
        let slots = format::key_slot_range(&old_bytes).expect("a version 2 header");
        assert!(old_bytes[slots].iter().all(|&b| b == 0));
        // Twice is refused, not repeated.
        assert!(store.migrate_to_master(&camera, id, &viewer).is_err());
    }

    /// A deletion shreds a thumbnail (zeroes its slots, then unlinks it) while it is
    /// being migrated, its slots already zeroed when the copy is swapped in: the
    /// copy does not take its place, and nothing of either is left.
    #[test]
    fn a_thumbnail_shredded_during_its_migration_does_not_come_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
            .expect("store");
        let (locked, _) = crate::store::writer::testing::quick_viewer("a passphrase");
        let camera: CameraId = "porch".parse().expect("camera");
        let event = crate::model::EventId(9);
        store
            .write_thumbnail_taken_under(&camera, event, 5, b"jpeg", &[locked.public_key().clone()])
            .expect("sealed");
        let path = store.thumbnail_path(&camera, event);
        // The finished copy under the master key (a thumbnail of the mode off).
        let temp = finished_copy_for(&store, &camera, &path);
        // The first half of a shred: its key slots overwritten, not yet unlinked.
        let bytes = fs::read(&path).expect("read");
        let slots = format::key_slot_range(&bytes).expect("a version 2 header");
        let original = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        original
            .write_all_at(&vec![0u8; slots.len()], slots.start as u64)
            .expect("zero");

        let swapped = swap_in_copy(&path, &temp);
        assert!(swapped.is_err_and(|e| e.is_not_found()));
        assert!(
            !path.exists(),
            "the copy took the deleted thumbnail's place"
        );
        assert!(!temp.exists());
    }

    /// A finished migration copy (a thumbnail under the master key) beside `path`.
    fn finished_copy_for(store: &Store, camera: &CameraId, path: &Path) -> PathBuf {
        let temp = path.with_extension(MIGRATING_EXTENSION);
        let stand_in = crate::model::EventId(10);
        store
            .write_thumbnail(camera, stand_in, 5, b"jpeg")
            .expect("copy");
        fs::rename(store.thumbnail_path(camera, stand_in), &temp).expect("stand in for the copy");
        temp
    }

    /// A deletion's shred has opened the original when the migration wants to swap
    /// its copy in. Unserialised, the migration renamed the copy over the name and
    /// zeroed the original, and the shred then unlinked the copy with its key slot
    /// intact. Now the migration waits for the shred, finds no name, and the copy is
    /// shredded: no key of either is left.
    #[test]
    fn a_shred_racing_a_migration_never_unlinks_the_copy_with_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
            .expect("store");
        let camera: CameraId = "porch".parse().expect("camera");
        let event = crate::model::EventId(9);
        store
            .write_thumbnail(&camera, event, 5, b"jpeg")
            .expect("original");
        let path = store.thumbnail_path(&camera, event);
        let temp = finished_copy_for(&store, &camera, &path);
        // The copy's inode, to look at its key slot whatever name it ends under.
        let copy = fs::File::open(&temp).expect("open copy");
        let slots = format::key_slot_range(&fs::read(&temp).expect("read")).expect("header");

        let (swapped_tx, swapped_rx) = std::sync::mpsc::channel();
        let (p, t) = (path.clone(), temp.clone());
        recover::tests::on_shred_of(
            &path,
            Box::new(move || {
                let migration = std::thread::spawn(move || {
                    let result = swap_in_copy(&p, &t);
                    let _ = swapped_tx.send(());
                    result
                });
                // Serialised, the migration cannot finish while this shred runs:
                // give it a while, then let the shred go on.
                let _ = swapped_rx.recv_timeout(std::time::Duration::from_secs(2));
                drop(migration);
            }),
        );
        recover::shred(&path).expect("shred");
        // The migration thread (detached above) finishes once the shred is done.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while temp.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut slot = vec![1u8; slots.len()];
        copy.read_exact_at(&mut slot, slots.start as u64)
            .expect("read the copy's slot");
        assert!(
            slot.iter().all(|&b| b == 0),
            "the copy was unlinked with its key slot intact"
        );
        assert!(!path.exists() && !temp.exists());
    }

    #[test]
    fn a_migration_copy_that_cannot_be_swapped_in_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
            .expect("store");
        let camera: CameraId = "porch".parse().expect("camera");
        let id = RecordingId::random();
        finished_recording(&store, &camera, id, 5, b"video");
        // The copy is finished; the original's name now holds a directory, so the
        // original cannot be opened for the swap (root included).
        let path = store.recording_path(&camera, id);
        let temp = path.with_extension(MIGRATING_EXTENSION);
        fs::rename(&path, &temp).expect("stand in for the copy");
        fs::create_dir(&path).expect("directory");
        assert!(swap_in_copy(&path, &temp).is_err());
        assert!(!temp.exists(), "the copy was left behind");

        // A leftover of a crash is removed at start-up; recordings are not touched.
        let other = RecordingId::random();
        finished_recording(&store, &camera, other, 6, b"");
        let kept = store.recording_path(&camera, other);
        let leftover = kept.with_extension(MIGRATING_EXTENSION);
        fs::copy(&kept, &leftover).expect("copy");
        assert_eq!(
            store.discard_migration_leftovers().expect("discard"),
            vec![leftover.clone()]
        );
        assert!(!leftover.exists() && kept.exists());
    }
}
