//! Migrating event thumbnails back to the master key: the second half of
//! [`super::migrate_all`], with the same viewer and the same preconditions (the mode
//! is off), after the recordings.
//!
//! Goes by the index's events, as the recordings' half goes by its recordings: an
//! event that lists a thumbnail and is closed (an open one has none yet). A
//! thumbnail is re-sealed by `Store::migrate_thumbnail_to_master`, which undoes no
//! deletion racing it (see `store::migrate`); an event gone from the index once its
//! thumbnail is migrated has its new file shredded here, as a recording that
//! retention deleted meanwhile is. Nothing in the index changes: a thumbnail's key
//! lives only in its file.
//!
//! May call: index, store.

use super::{E2eError, MigrationCounts};
use crate::index::{EventEntry, Index};
use crate::store::e2e::ViewerSecret;
use crate::store::{Store, StoreError};

/// Re-seals every event thumbnail sealed to `viewer` under the master key, adding
/// to `counts`. A thumbnail that fails is logged and counted, and the run goes on;
/// only an index error stops it.
pub(super) fn migrate(
    index: &Index,
    store: &Store,
    viewer: &ViewerSecret,
    counts: &mut MigrationCounts,
) -> Result<(), E2eError> {
    for event in index.all_events()? {
        if !event.has_thumbnail || event.open {
            continue;
        }
        match store.migrate_thumbnail_to_master(&event.camera, event.id, viewer) {
            Ok(false) => {}
            Ok(true) if still_has_thumbnail(index, &event)? => counts.migrated += 1,
            // Its event was deleted meanwhile: the picture must not come back.
            Ok(true) => {
                if let Err(e) = store.shred_thumbnail(&event.camera, event.id) {
                    tracing::error!(event = %event.id, "cannot shred the migrated thumbnail of a deleted event: {e}");
                    counts.failed += 1;
                }
            }
            Err(StoreError::NotARecipient { .. }) => counts.not_mine += 1,
            // Deleted during its migration (the store did not bring it back), or
            // being deleted: retention shreds the thumbnail before it removes the
            // event. Not a failure of the migration; a file lost otherwise is
            // `check`'s to report.
            Err(e) if e.is_not_found() => {
                tracing::info!(event = %event.id, camera = %event.camera, "thumbnail gone during its migration (deleted meanwhile)");
            }
            Err(e) => {
                tracing::error!(event = %event.id, camera = %event.camera, "cannot migrate a thumbnail to the master key: {e}");
                counts.failed += 1;
            }
        }
    }
    Ok(())
}

/// Whether `event` is still in the index with its thumbnail (a deletion shreds the
/// thumbnail first, then removes the event).
fn still_has_thumbnail(index: &Index, event: &EventEntry) -> Result<bool, E2eError> {
    Ok(index
        .get_event(event.id)?
        .is_some_and(|now| now.has_thumbnail && now.camera == event.camera))
}

#[cfg(test)]
mod tests {
    use super::super::{migrate_all, MigrationReport};
    use super::*;
    use crate::model::{CameraId, EventId, RecordingId};
    use crate::store::writer::testing::quick_viewer;
    use crate::testutil::event_of;

    /// The thumbnails sealed to the viewer are migrated with the recordings, once
    /// the mode is off; one sealed to another viewer is counted and left; one whose
    /// event is gone is not migrated (and so not made readable).
    #[test]
    fn turning_off_and_migrating_reseals_the_viewers_thumbnails_only() {
        let (_dir, store, index) = crate::testutil::store_and_index();
        let (mine, viewer) = quick_viewer("mine");
        let (theirs, _) = quick_viewer("theirs");
        let camera: CameraId = "porch".parse().expect("camera");
        let recording = RecordingId(1);
        for (key, event) in [(&mine, 1), (&theirs, 2)] {
            store
                .set_recipients(vec![key.public_key().clone()])
                .expect("on");
            event_of(&store, &index, &camera, recording, event);
        }
        store
            .set_recipients(vec![mine.public_key().clone()])
            .expect("on");
        store
            .write_thumbnail(&camera, EventId(4), 5, b"no event")
            .expect("sealed to me");
        store.set_recipients(Vec::new()).expect("off");
        event_of(&store, &index, &camera, recording, 3);
        assert!(matches!(
            migrate_all(&index, &store, &viewer),
            Err(E2eError::StillOn)
        ));

        index.set_e2e_paused(true).expect("turned off");
        let running = store.one_migration().expect("no run yet");
        assert!(
            matches!(
                migrate_all(&index, &store, &viewer),
                Err(E2eError::MigrationRunning)
            ),
            "a second run is refused while one runs"
        );
        drop(running);
        let report = migrate_all(&index, &store, &viewer).expect("migrate");
        let expected = MigrationCounts {
            migrated: 1,
            not_mine: 1,
            failed: 0,
        };
        assert_eq!(
            report,
            MigrationReport {
                recordings: MigrationCounts::default(),
                thumbnails: expected,
            }
        );
        assert!(report
            .to_string()
            .contains("0 recording(s) and 1 thumbnail(s)"));
        for id in [1, 3] {
            let jpeg = store.read_thumbnail(&camera, EventId(id)).expect("read");
            assert_eq!(jpeg, b"a jpeg");
        }
        for id in [2, 4] {
            assert!(matches!(
                store.read_thumbnail(&camera, EventId(id)),
                Err(StoreError::EndToEnd { .. })
            ));
        }
    }

    /// Retention shreds a thumbnail before it removes the event: a migration in
    /// between finds the file gone and counts nothing, not a failure.
    #[test]
    fn a_thumbnail_shredded_before_its_event_is_removed_is_not_a_failure() {
        let (_dir, store, index) = crate::testutil::store_and_index();
        let (mine, viewer) = quick_viewer("mine");
        let camera: CameraId = "porch".parse().expect("camera");
        store
            .set_recipients(vec![mine.public_key().clone()])
            .expect("on");
        event_of(&store, &index, &camera, RecordingId(1), 1);
        store.set_recipients(Vec::new()).expect("off");
        store
            .shred_thumbnail(&camera, EventId(1))
            .expect("retention's first step");
        index.set_e2e_paused(true).expect("turned off");
        let report = migrate_all(&index, &store, &viewer).expect("migrate");
        assert_eq!(report.thumbnails, MigrationCounts::default());
    }
}
