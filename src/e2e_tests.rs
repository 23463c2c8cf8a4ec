//! Tests of end-to-end mode: turning it on and off, viewers, unlocking, relocking
//! and what start-up makes of viewer files.

use super::*;

const PASS: &str = "lantern orchard pebble 1987 quietly";

use crate::model::RecordingId;
use crate::testutil::store_and_index as fixture;

fn pass(text: &str) -> Secret {
    Secret::Passphrase(Zeroizing::new(text.to_owned()))
}

#[test]
fn a_seventeenth_viewer_is_refused_and_the_index_still_loads() {
    let (_dir, store, index) = fixture();
    enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    for n in 2..=MAX_RECIPIENTS as u64 {
        enrol(
            &index,
            &store,
            UserId(n),
            &format!("user{n}"),
            PASS,
            PASS,
            0,
        )
        .expect("enrol");
    }
    let last = MAX_RECIPIENTS as u64 + 1;
    assert!(matches!(
        enrol(&index, &store, UserId(last), "one too many", PASS, PASS, 0),
        Err(E2eError::TooManyViewers)
    ));
    assert_eq!(index.viewer_keys().expect("read").len(), MAX_RECIPIENTS);
    assert_eq!(load(&index, &store).expect("load"), MAX_RECIPIENTS);
}

/// An index written before enrolment was capped: the daemon still starts.
#[test]
fn more_viewers_than_slots_in_the_index_still_load_sealed_to_the_first() {
    let (_dir, store, index) = fixture();
    for n in 1..=MAX_RECIPIENTS as u64 + 1 {
        let (key, _) = LockedViewerKey::generate_with(PASS, FAST).expect("key");
        let entry = ViewerKeyEntry {
            locked_key: hex::encode(key.to_bytes()),
            enrolled_micros: 0,
        };
        index.put_viewer_key(UserId(n), &entry).expect("put");
    }
    assert_eq!(load(&index, &store).expect("load"), MAX_RECIPIENTS);
    assert_eq!(store.recipients().len(), MAX_RECIPIENTS);
}

/// Viewer rows written before viewer files existed get their files; a fresh
/// index gets the rows back from the files, and the recovery key unlocks.
#[test]
fn viewer_keys_are_saved_to_files_and_restored_into_an_empty_index() {
    let (dir, store, index) = fixture();
    let recovery = enable(&index, &store, UserId(1), "owner", PASS, PASS, 5).expect("enable");
    assert_eq!(store.saved_viewers().expect("list").len(), 1);
    let viewers = dir.path().join("data").join("viewers");
    std::fs::remove_dir_all(&viewers).expect("as before the files existed");
    let done = sync_saved_viewers(&index, &store).expect("sync");
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(sync_saved_viewers(&index, &store)
        .expect("again")
        .is_empty());

    let fresh = Index::open(&dir.path().join("new index")).expect("index");
    let done = sync_saved_viewers(&fresh, &store).expect("restore");
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(is_enabled(&fresh).expect("read"));
    let recovery = Secret::guess(Zeroizing::new(recovery.to_text().to_string()));
    unlock(&fresh, None, &recovery, 0).expect("the recovery key unlocks");
    unlock(&fresh, Some(UserId(1)), &pass(PASS), 0).expect("and the passphrase");

    assert!(remove_viewer(&fresh, &store, UserId(1)).expect("remove"));
    assert!(
        store.saved_viewers().expect("list").is_empty(),
        "file removed"
    );
}

#[test]
fn enabling_sets_the_store_recipients_and_survives_a_reload() {
    let (_dir, store, index) = fixture();
    assert!(!is_enabled(&index).expect("read"));
    let recovery = enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    assert_eq!(store.recipients().len(), 1);
    assert!(matches!(
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0),
        Err(E2eError::AlreadyEnabled)
    ));
    store.set_recipients(Vec::new()).expect("clear");
    assert_eq!(load(&index, &store).expect("load"), 1);
    assert_eq!(store.recipients().len(), 1);
    let viewer = unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("unlock");
    assert_eq!(viewer.public_key(), &store.recipients()[0]);
    let by_recovery = unlock(
        &index,
        None,
        &Secret::guess(Zeroizing::new(recovery.to_text().to_lowercase())),
        0,
    )
    .expect("recovery key unlocks");
    assert_eq!(by_recovery.public_key(), viewer.public_key());
}

#[test]
fn a_removed_viewer_is_not_a_recipient_of_recordings_made_after_removal() {
    use crate::model::{CameraId, RecordingId, Trigger};
    use crate::store::NewRecording;
    let (_dir, store, index) = fixture();
    const OTHER: &str = "velvet harbour compass 2231 slowly";
    assert!(matches!(
        enrol(&index, &store, UserId(2), "guest", OTHER, OTHER, 0),
        Err(E2eError::NotEnabled)
    ));
    enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    enrol(&index, &store, UserId(2), "guest", OTHER, OTHER, 0).expect("enrol");
    assert_eq!(store.recipients().len(), 2);
    let owner = unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("unlock");
    let guest = unlock(&index, Some(UserId(2)), &pass(OTHER), 0).expect("unlock");
    let camera: CameraId = "porch".parse().expect("camera");
    let record = || {
        let new = NewRecording {
            id: RecordingId::random(),
            camera: camera.clone(),
            start_micros: 0,
            trigger: Trigger::Motion,
        };
        let (mut w, _) = store.create_recording(&new).expect("create");
        w.write_all(b"video").expect("write");
        w.finish().expect("finish");
        new.id
    };
    let shared = record();
    for viewer in [&owner, &guest] {
        store
            .open_recording_as(&camera, shared, viewer)
            .expect("both are recipients");
    }

    assert!(remove_viewer(&index, &store, UserId(2)).expect("remove"));
    assert!(!remove_viewer(&index, &store, UserId(2)).expect("again"));
    assert_eq!(store.recipients(), vec![owner.public_key().clone()]);
    let after = record();
    store
        .open_recording_as(&camera, after, &owner)
        .expect("the owner still is");
    assert!(matches!(
        store.open_recording_as(&camera, after, &guest).err(),
        Some(StoreError::NotARecipient { .. })
    ));
    // Removing the last viewer turns the mode off for new recordings.
    assert!(remove_viewer(&index, &store, UserId(1)).expect("remove"));
    assert!(store.recipients().is_empty());
    assert!(!is_enabled(&index).expect("read"));
}

#[test]
fn turning_off_keeps_the_keys_and_needs_the_passphrase() {
    let (_dir, store, index) = fixture();
    enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    let key = store.recipients();
    assert!(matches!(
        turn_off(&index, &store, UserId(1), &pass("wrong guess"), 0),
        Err(E2eError::WrongSecret)
    ));
    assert_eq!(store.recipients(), key, "still on");
    turn_off(&index, &store, UserId(1), &pass(PASS), 0).expect("off");
    assert!(store.recipients().is_empty() && !is_enabled(&index).expect("read"));
    assert!(has_viewers(&index).expect("read"), "the keys stay");
    // A restart keeps it off; the key still unlocks what was sealed.
    assert_eq!(load(&index, &store).expect("load"), 0);
    unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("unlock");
    turn_back_on(&index, &store, UserId(1), &pass(PASS), 0).expect("on");
    assert_eq!(store.recipients(), key);
    assert!(matches!(
        turn_back_on(&index, &store, UserId(1), &pass(PASS), 0),
        Err(E2eError::AlreadyEnabled)
    ));
}

#[test]
fn weak_or_mismatched_passphrases_are_refused() {
    let (_dir, store, index) = fixture();
    for (a, b) in [
        ("password1", "password1"),
        (PASS, "something else entirely"),
    ] {
        assert!(enable(&index, &store, UserId(1), "owner", a, b, 0).is_err());
    }
    assert!(!is_enabled(&index).expect("read"));
    assert!(store.recipients().is_empty());
}

const NEW: &str = "copper meadow lantern 4410 gently";
/// Cheap Argon2 for keys made directly (not through `enable`).
const FAST: crate::store::e2e::KdfParams = crate::store::e2e::KdfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

/// User 1 ("owner") changes their passphrase.
fn change(
    index: &Index,
    store: &Store,
    current: &Secret,
    new: &str,
    repeated: &str,
) -> Result<(), E2eError> {
    change_passphrase(index, store, UserId(1), "owner", current, new, repeated, 0)
}

fn viewer_file(dir: &std::path::Path) -> Vec<u8> {
    let viewers = dir.join("data").join("viewers");
    let files: Vec<_> = std::fs::read_dir(&viewers)
        .expect("viewers")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read(&files[0]).expect("read")
}

#[test]
fn a_changed_passphrase_replaces_the_old_one_and_keeps_the_key() {
    let (dir, store, index) = fixture();
    let recovery = enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    let before = store.recipients();
    let file_before = viewer_file(dir.path());

    // A wrong current passphrase: refused, counted, nothing written.
    assert!(matches!(
        change(&index, &store, &pass("wrong"), NEW, NEW),
        Err(E2eError::WrongSecret)
    ));
    assert_eq!(index.get_throttle("e2e:1").expect("read").failures, 1);
    assert_eq!(viewer_file(dir.path()), file_before, "file unchanged");
    // A weak or mismatched new one: refused before the current one is tried.
    for (a, b) in [("password1", "password1"), (NEW, "something else")] {
        assert!(change(&index, &store, &pass(PASS), a, b).is_err());
    }
    assert_eq!(index.get_throttle("e2e:1").expect("read").failures, 1);

    change(&index, &store, &pass(PASS), NEW, NEW).expect("change");
    assert!(matches!(
        unlock(&index, Some(UserId(1)), &pass(PASS), 0),
        Err(E2eError::WrongSecret)
    ));
    let viewer = unlock(&index, Some(UserId(1)), &pass(NEW), 0).expect("new one");
    assert_eq!(vec![viewer.public_key().clone()], before, "same key");
    let recovery = Secret::guess(Zeroizing::new(recovery.to_text().to_string()));
    unlock(&index, Some(UserId(1)), &recovery, 0).expect("the recovery key still");
    // The file says the same as the index, and a restart's sync changes nothing.
    let saved = store.saved_viewers().expect("list");
    saved[0]
        .key
        .unlock_with_passphrase(NEW)
        .expect("file has the new lock");
    assert!(sync_saved_viewers(&index, &store).expect("sync").is_empty());

    // The recovery key may stand in for the forgotten passphrase.
    change(&index, &store, &recovery, PASS, PASS).expect("change with the recovery key");
    unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("unlocks");
}

#[test]
fn a_new_recovery_key_retires_the_old_one() {
    let (_dir, store, index) = fixture();
    let old = enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    let old_text = old.to_text();
    let old = Secret::guess(old_text.clone());
    let pass_text = Zeroizing::new(PASS.to_owned());
    let wrong = Zeroizing::new("wrong".to_owned());
    assert!(matches!(
        new_recovery_key(&index, &store, UserId(1), &wrong, 0),
        Err(E2eError::WrongSecret)
    ));
    let new = new_recovery_key(&index, &store, UserId(1), &pass_text, 0).expect("new");
    assert!(matches!(
        unlock(&index, Some(UserId(1)), &old, 0),
        Err(E2eError::WrongSecret)
    ));
    let new = Secret::guess(Zeroizing::new(new.to_text().to_string()));
    unlock(&index, Some(UserId(1)), &new, 0).expect("the new one unlocks");
    unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("and the passphrase");
    let saved = store.saved_viewers().expect("list");
    assert!(saved[0]
        .key
        .unlock_with_recovery(&RecoveryKey::parse(&old_text).expect("parse"))
        .is_err());
}

/// User 1's row, its key, and that key re-locked under `NEW` (cheaply).
fn relocked_row() -> impl Fn(&Index) -> (ViewerKeyEntry, LockedViewerKey, LockedViewerKey) {
    |index| {
        let row = index.viewer_key(UserId(1)).expect("read").expect("row");
        let key = locked(&row).expect("key");
        let viewer = key.unlock_with_passphrase(PASS).expect("unlock");
        let new = key
            .with_new_passphrase_with(&viewer, NEW, FAST)
            .expect("relock");
        (row, key, new)
    }
}

/// What a re-locking leaves beside the old file before its rename: the old
/// file's header with `key` (layout in `store::viewer_file`).
fn leave_new_file(dir: &std::path::Path, key: &LockedViewerKey) -> std::path::PathBuf {
    let viewers = dir.join("data").join("viewers");
    let id = key.public_key().id();
    let mut bytes = std::fs::read(viewers.join(format!("{id}.plv"))).expect("old file");
    bytes.truncate(25);
    bytes.extend_from_slice(&key.to_bytes());
    let tmp = viewers.join(format!("{id}.plv.new"));
    std::fs::write(&tmp, bytes).expect("write .new");
    tmp
}

/// A crash after a change's `.new` file was written but before its index row
/// (the commit point), or an index error there: the next start-up rolls back,
/// so the old passphrase works and the new one (never confirmed) does not; the
/// same with a lost index.
#[test]
fn a_change_interrupted_before_its_row_is_rolled_back() {
    for lost_index in [false, true] {
        let (dir, store, index) = fixture();
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let (row, key, new) = relocked_row()(&index);
        let tmp = leave_new_file(dir.path(), &new);
        let index = if lost_index {
            Index::open(&dir.path().join("new index")).expect("index")
        } else {
            index
        };
        let done = sync_saved_viewers(&index, &store).expect("sync");
        assert!(!done.is_empty(), "{done:?}");
        assert!(!tmp.exists(), "the uncommitted file is removed");
        let now = index.viewer_key(UserId(1)).expect("read").expect("row");
        assert_eq!(
            now, row,
            "the old row (lost index: restored from the old file)"
        );
        unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("the old passphrase");
        assert!(matches!(
            unlock(&index, Some(UserId(1)), &pass(NEW), 0),
            Err(E2eError::WrongSecret)
        ));
        assert_eq!(store.saved_viewers().expect("list")[0].key, key);
    }
}

/// A crash after the row was written (here also after the old file's retired
/// lock was zeroed): the next start-up finishes the rename.
#[test]
fn a_change_interrupted_after_its_row_is_rolled_forward() {
    let (dir, store, index) = fixture();
    enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    let (row, _, new) = relocked_row()(&index);
    let tmp = leave_new_file(dir.path(), &new);
    let entry = ViewerKeyEntry {
        locked_key: hex::encode(new.to_bytes()),
        ..row
    };
    index.put_viewer_key(UserId(1), &entry).expect("the row");
    let old = tmp.with_extension("");
    let mut bytes = std::fs::read(&old).expect("old");
    let part = LockedViewerKey::PASSPHRASE_PART;
    bytes[25 + part.start..25 + part.end].fill(0);
    std::fs::write(&old, bytes).expect("zeroed");

    let done = sync_saved_viewers(&index, &store).expect("sync");
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(!tmp.exists());
    assert_eq!(store.saved_viewers().expect("list")[0].key, new);
    unlock(&index, Some(UserId(1)), &pass(NEW), 0).expect("the new passphrase");
}

/// A file and a row of the same key with other locks: the row is the commit
/// point, so the file is written again from it (never the row from the file).
#[test]
fn a_file_that_differs_from_its_row_is_written_again_from_the_row() {
    let (_dir, store, index) = fixture();
    enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    let (row, key, new) = relocked_row()(&index);
    store
        .save_viewer(&SavedViewer {
            user: 1,
            enrolled_micros: row.enrolled_micros,
            key: new,
        })
        .expect("a file the row does not match");
    let done = sync_saved_viewers(&index, &store).expect("sync");
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(index.viewer_key(UserId(1)).expect("read"), Some(row));
    unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("the row's passphrase");
    assert_eq!(store.saved_viewers().expect("list")[0].key, key);
}

/// A shared user's account is removed while their passphrase change runs its
/// Argon2 (here: in the middle of `relock`'s change step): the change is
/// refused and neither row nor file comes back.
#[test]
fn a_viewer_removed_during_a_relocking_is_not_brought_back() {
    let (dir, store, index) = fixture();
    enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    let (_, _, new) = relocked_row()(&index);
    let relocked = relock(&index, &store, UserId(1), Relocked::Passphrase, |_| {
        assert!(remove_viewer(&index, &store, UserId(1)).expect("remove"));
        Ok((new, ()))
    });
    assert!(
        matches!(relocked, Err(E2eError::NotEnabled)),
        "{relocked:?}"
    );
    assert_eq!(index.viewer_key(UserId(1)).expect("read"), None);
    let viewers = dir.path().join("data").join("viewers");
    let left = std::fs::read_dir(&viewers).expect("dir").count();
    assert_eq!(left, 0, "no file and no .new");
    assert!(store.recipients().is_empty());
}

/// `remove_viewer` waits for a re-locking (or unlock) in progress: it takes
/// [`ONE_AT_A_TIME`]. Held here by the test for a moment.
#[test]
fn removing_a_viewer_waits_its_turn() {
    let (_dir, store, index) = fixture();
    enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    std::thread::scope(|scope| {
        let removal = scope.spawn(|| remove_viewer(&index, &store, UserId(1)));
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            index.viewer_key(UserId(1)).expect("read").is_some(),
            "not removed while a change holds the turn"
        );
        drop(turn);
        assert!(removal.join().expect("join").expect("remove"));
    });
    assert_eq!(index.viewer_key(UserId(1)).expect("read"), None);
}

/// Spaces around a new passphrase (a phone keyboard's trailing space) are
/// trimmed, as the web unlock trims what is typed, at turning on, at a change
/// and for a new recovery key.
#[test]
fn spaces_around_a_new_passphrase_are_trimmed_like_at_unlock() {
    let (_dir, store, index) = fixture();
    let spaced = format!(" {PASS} ");
    enable(&index, &store, UserId(1), "owner", &spaced, PASS, 0).expect("enable");
    unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("trimmed at turning on");
    let spaced = format!("{NEW} ");
    change(&index, &store, &pass(PASS), &spaced, &spaced).expect("change");
    unlock(&index, Some(UserId(1)), &pass(NEW), 0).expect("trimmed at a change");
    let typed = Zeroizing::new(format!("{NEW}  "));
    new_recovery_key(&index, &store, UserId(1), &typed, 0).expect("trimmed there too");
}

/// New passphrases need the stricter rule; one chosen under the login rule
/// before it existed still unlocks and may be changed.
#[test]
fn a_login_grade_passphrase_is_refused_when_new_but_an_old_one_still_works() {
    const LOGIN_GRADE: &str = "purple elephant";
    let (_dir, store, index) = fixture();
    assert!(crate::auth::password::weakness(LOGIN_GRADE, &["owner"]).is_none());
    assert!(matches!(
        enable(
            &index,
            &store,
            UserId(1),
            "owner",
            LOGIN_GRADE,
            LOGIN_GRADE,
            0
        ),
        Err(E2eError::WeakPassphrase(_))
    ));
    // As an older version stored it.
    let (key, _) = LockedViewerKey::generate_with(LOGIN_GRADE, FAST).expect("key");
    let entry = ViewerKeyEntry {
        locked_key: hex::encode(key.to_bytes()),
        enrolled_micros: 0,
    };
    index.put_viewer_key(UserId(1), &entry).expect("put");
    unlock(&index, Some(UserId(1)), &pass(LOGIN_GRADE), 0).expect("still unlocks");
    assert!(matches!(
        change(&index, &store, &pass(LOGIN_GRADE), LOGIN_GRADE, LOGIN_GRADE),
        Err(E2eError::WeakPassphrase(_))
    ));
    change(&index, &store, &pass(LOGIN_GRADE), NEW, NEW).expect("changed to a strong one");
}

#[test]
fn wrong_passphrases_are_throttled_and_a_right_one_waits_its_turn() {
    let (_dir, store, index) = fixture();
    enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
    let user = Some(UserId(1));
    let mut now = 1_000_000;
    for _ in 0..throttle::ACCOUNT.free {
        assert!(matches!(
            unlock(&index, user, &pass("wrong guess"), now),
            Err(E2eError::WrongSecret)
        ));
    }
    // The next failure starts a delay: even the right passphrase is refused
    // unlooked-at until it has passed.
    assert!(matches!(
        unlock(&index, user, &pass("wrong guess"), now),
        Err(E2eError::WrongSecret)
    ));
    assert!(matches!(
        unlock(&index, user, &pass(PASS), now),
        Err(E2eError::Throttled { .. })
    ));
    now += 61_000_000;
    unlock(&index, user, &pass(PASS), now).expect("after the delay");
    // Success cleared the counter.
    assert_eq!(
        index.get_throttle("e2e:1").expect("read"),
        Default::default()
    );
    // Another user's counter is separate; a user without a key has nothing.
    assert!(matches!(
        unlock(&index, Some(UserId(2)), &pass(PASS), now),
        Err(E2eError::NotEnabled)
    ));
}

/// What a test does between a recording's migration and the update of its entry.
type Hook = Option<Box<dyn Fn(RecordingId)>>;

thread_local! {
    /// Run by [`before_migrated_entry_is_saved`].
    static BEFORE_SAVE: std::cell::RefCell<Hook> =
        const { std::cell::RefCell::new(None) };
}

/// The seam in [`migrate_all`] between a file's migration and its entry's update.
pub(super) fn before_migrated_entry_is_saved(id: RecordingId) {
    BEFORE_SAVE.with(|hook| {
        if let Some(hook) = hook.borrow().as_ref() {
            hook(id)
        }
    });
}

/// Retention deletes a recording after its file was migrated, before its entry is
/// updated: the update must not bring the deleted recording back as finished.
#[test]
fn a_recording_deleted_during_its_migration_does_not_come_back() {
    let (_dir, store, index) = fixture();
    let store = std::sync::Arc::new(store);
    let index = std::sync::Arc::new(index);
    let (key, viewer) = crate::store::writer::testing::quick_viewer("mine");
    store
        .set_recipients(vec![key.public_key().clone()])
        .expect("on");
    let id = RecordingId(7);
    crate::testutil::finished_recording(&store, &index, id);
    store.set_recipients(Vec::new()).expect("off");
    index.set_e2e_paused(true).expect("turned off");

    let (s, i) = (store.clone(), index.clone());
    BEFORE_SAVE.with(|hook| {
        *hook.borrow_mut() = Some(Box::new(move |id| {
            assert!(crate::retention::delete_recording(&s, &i, id).expect("delete"));
        }))
    });
    let report = migrate_all(&index, &store, &viewer);
    BEFORE_SAVE.with(|hook| hook.borrow_mut().take());
    let report = report.expect("migrate");
    assert_eq!(report.recordings.migrated, 0, "{report}");
    assert!(index.get_recording(id).expect("get").is_none(), "{report}");
}
