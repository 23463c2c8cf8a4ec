//! `check`, rebuild and start-up recovery against a whole recording file copied over
//! another one's name: its header, not its name, says which recording it holds.

use super::tests::{readable, recording};
use super::*;
use crate::index::RecordingState;
use crate::model::CameraId;

/// Recordings A and B of camera `porch`, then A's file copied over B's name.
fn a_copied_over_b(store: &Store, index: &Index) -> (CameraId, RecordingId, RecordingId) {
    let (a, b) = (RecordingId(1), RecordingId(2));
    let camera = recording(store, index, a, true, RecordingState::Finished);
    recording(store, index, b, true, RecordingState::Finished);
    std::fs::copy(
        store.recording_path(&camera, a),
        store.recording_path(&camera, b),
    )
    .expect("copy A over B");
    (camera, a, b)
}

/// `check` names the file and both recordings; a rebuild never indexes A from B's
/// file, and shreds that stray copy (A has its own file), so that deleting A later
/// leaves no readable copy of it.
#[test]
fn a_recording_copied_over_another_name_is_reported_and_never_indexed_twice() {
    let (_dir, store, index) = crate::testutil::store_and_index();
    let (camera, a, b) = a_copied_over_b(&store, &index);
    let b_path = store.recording_path(&camera, b);
    let a_key = index.get_recording(a).expect("get").expect("A").wrapped_key;

    let report = compare(&store, &index, false).expect("check");
    let named = format!("{} holds recording {a}", b_path.display());
    assert!(
        report.findings.iter().any(|f| f.contains(&named)),
        "{report}"
    );

    let report = rebuild(&store, &index).expect("rebuild");
    assert!(!b_path.exists(), "the stray copy is shredded: {report}");
    assert!(index.get_recording(b).expect("get").is_none(), "{report}");
    let entry = index.get_recording(a).expect("get").expect("A kept");
    assert_eq!(entry.wrapped_key, a_key);
    assert!(readable(&store, &camera, a));
    assert_eq!(index.all_recordings().expect("all").len(), 1, "{report}");
}

/// B's entry was lost with A's copy under its name (as an older rebuild left it),
/// then A was deleted: start-up recovery must not index the copy as A again (an
/// entry pointing at a shredded path, and A's video readable from B's file). With
/// A's own file gone the copy may be the only one, so it is reported, not shredded.
#[test]
fn start_up_recovery_never_brings_a_deleted_recording_back_from_a_copy() {
    let (_dir, store, index) = crate::testutil::store_and_index();
    let (camera, a, b) = a_copied_over_b(&store, &index);
    index.remove_recording(b).expect("lose B's entry");
    assert!(crate::retention::delete_recording(&store, &index, a).expect("delete A"));

    let report = recover(&store, &index).expect("recover");
    assert!(index.get_recording(a).expect("get").is_none(), "{report}");
    assert!(index.all_recordings().expect("all").is_empty(), "{report}");
    let b_path = store.recording_path(&camera, b);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.contains(&format!("{} holds recording {a}", b_path.display()))),
        "{report}"
    );
    assert!(b_path.exists(), "left for a person: {report}");
}

/// With A's own file there, start-up recovery shreds the stray copy under B's name
/// (B's entry lost) — but never a hard link to A's own file, whose key it shares.
#[test]
fn start_up_recovery_shreds_a_stray_copy_but_not_a_hard_link() {
    let (_dir, store, index) = crate::testutil::store_and_index();
    let (camera, a, b) = a_copied_over_b(&store, &index);
    let (a_path, b_path) = (
        store.recording_path(&camera, a),
        store.recording_path(&camera, b),
    );
    index.remove_recording(b).expect("lose B's entry");
    let report = recover(&store, &index).expect("recover");
    assert!(!b_path.exists(), "{report}");
    assert!(readable(&store, &camera, a));

    std::fs::hard_link(&a_path, &b_path).expect("link");
    let report = recover(&store, &index).expect("recover");
    assert!(b_path.exists(), "{report}");
    assert!(readable(&store, &camera, a), "{report}");
    assert!(index.get_recording(b).expect("get").is_none(), "{report}");
}

/// `check --repair` with B's entry still there: the stray copy under B's name is
/// shredded and B's entry (whose video the copy had overwritten) goes with it.
#[test]
fn repair_shreds_a_stray_copy_under_an_indexed_name() {
    let (_dir, store, index) = crate::testutil::store_and_index();
    let (camera, a, b) = a_copied_over_b(&store, &index);
    let report = compare(&store, &index, true).expect("repair");
    assert!(!store.recording_path(&camera, b).exists(), "{report}");
    assert!(index.get_recording(b).expect("get").is_none(), "{report}");
    assert!(readable(&store, &camera, a), "{report}");
    assert!(
        report.actions.iter().any(|a| a.contains("stray copy")),
        "{report}"
    );
}

/// How A's own file is damaged while a complete copy of it sits under B's name.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Cut in the middle of its video chunk (a power cut, a partial restore).
    CutMidChunk,
    /// One bit flipped inside its video chunk (bit rot): its header still reads.
    FlippedBit,
}

/// A copied over B's name, then A's own file damaged: B's entry lost (`lose_b`), or
/// still there. Returns B's file as it was (a complete copy of A).
fn a_copied_over_b_then_a_damaged(
    store: &Store,
    index: &Index,
    damage: Damage,
    lose_b: bool,
) -> (CameraId, RecordingId, RecordingId, Vec<u8>) {
    let (camera, a, b) = a_copied_over_b(store, index);
    if lose_b {
        index.remove_recording(b).expect("lose B's entry");
    }
    let a_path = store.recording_path(&camera, a);
    let len = std::fs::metadata(&a_path).expect("stat").len();
    // Half way is inside the one video chunk: the header and the final chunk are
    // small next to 12 frames of video.
    match damage {
        Damage::CutMidChunk => std::fs::OpenOptions::new()
            .write(true)
            .open(&a_path)
            .and_then(|f| f.set_len(len / 2))
            .expect("cut A"),
        Damage::FlippedBit => {
            let mut bytes = std::fs::read(&a_path).expect("read A");
            bytes[len as usize / 2] ^= 1;
            std::fs::write(&a_path, &bytes).expect("write A");
        }
    }
    assert!(!readable(store, &camera, a), "{damage:?} must break A");
    let copy = std::fs::read(store.recording_path(&camera, b)).expect("read B");
    (camera, a, b, copy)
}

/// B's file still holds `copy` and `report` names it as holding `a`, left untouched.
fn assert_copy_kept_and_reported(
    b_path: &std::path::Path,
    copy: &[u8],
    a: RecordingId,
    report: &Report,
    case: &str,
) {
    let kept = std::fs::read(b_path).ok();
    assert_eq!(kept.as_deref(), Some(copy), "{case}: {report}");
    let named = format!("{} holds recording {a}", b_path.display());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.contains(&named) && f.contains("left untouched")),
        "{case}: {report}"
    );
}

/// With A's own file cut short or rotted, the copy under B's name may be the only
/// whole copy of A's video: start-up recovery must not shred it because A's header
/// still reads. It is left as it is and reported.
#[test]
fn start_up_recovery_keeps_a_complete_copy_when_the_own_file_is_damaged() {
    for damage in [Damage::CutMidChunk, Damage::FlippedBit] {
        let (_dir, store, index) = crate::testutil::store_and_index();
        let (camera, a, b, copy) = a_copied_over_b_then_a_damaged(&store, &index, damage, true);
        let b_path = store.recording_path(&camera, b);

        let report = recover(&store, &index).expect("recover");
        assert_copy_kept_and_reported(&b_path, &copy, a, &report, &format!("{damage:?}"));
        assert!(index.get_recording(b).expect("get").is_none(), "{report}");
    }
}

/// `check --repair` (B's entry still there, or lost) recovers A's own file to what
/// authenticates, and leaves the complete copy under B's name, reported: A's own
/// file, shorter now, is no reason to call the copy stray either.
#[test]
fn repair_keeps_a_complete_copy_when_the_own_file_is_damaged() {
    for damage in [Damage::CutMidChunk, Damage::FlippedBit] {
        for lose_b in [false, true] {
            let (_dir, store, index) = crate::testutil::store_and_index();
            let (camera, a, b, copy) =
                a_copied_over_b_then_a_damaged(&store, &index, damage, lose_b);
            let b_path = store.recording_path(&camera, b);

            let report = compare(&store, &index, true).expect("repair");
            let case = format!("{damage:?}, B's entry lost: {lose_b}");
            assert_copy_kept_and_reported(&b_path, &copy, a, &report, &case);
            // Again, with A's own file recovered (or removed) by the first run.
            let again = compare(&store, &index, true).expect("repair again");
            let kept = std::fs::read(&b_path).ok();
            assert_eq!(kept.as_deref(), Some(&copy[..]), "{case}: {again}");
        }
    }
}
