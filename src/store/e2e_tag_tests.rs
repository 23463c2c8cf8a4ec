//! End-to-end header tags on real files: forged files refused, legacy files tagged
//! once, the marker in the key directory.

use std::fs;
use std::path::Path;

use super::*;
use crate::model::{CameraId, RecordingId, Trigger};
use crate::store::crypto::E2E_TAGS_MARKER;
use crate::store::e2e::ViewerSecret;
use crate::store::e2e_file_tests::read_all;
use crate::store::format::HeaderFields;
use crate::store::writer::testing::{forge_e2e, pattern, quick_viewer};
use crate::store::{FileStatus, NewRecording};

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    camera: CameraId,
    secret: ViewerSecret,
}

impl Fixture {
    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn keys(&self) -> std::path::PathBuf {
        self.dir.path().join("keys")
    }
}

/// A store with end-to-end mode on for one viewer. `legacy`: the key directory
/// looks as it did before header tags (no marker), as after an upgrade.
fn fixture(legacy: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    drop(Store::open_or_create(&data, &keys).expect("create"));
    if legacy {
        fs::remove_file(keys.join(E2E_TAGS_MARKER)).expect("a new key writes the marker");
    }
    let store = Store::open(&data, &keys).expect("store");
    let (locked, secret) = quick_viewer("a long household passphrase");
    store
        .set_recipients(vec![locked.public_key().clone()])
        .expect("enable");
    Fixture {
        dir,
        store,
        camera: "porch".parse().expect("camera name"),
        secret,
    }
}

fn record(f: &Fixture, id: RecordingId) -> Vec<u8> {
    let (mut writer, _) = f
        .store
        .create_recording(&NewRecording {
            id,
            camera: f.camera.clone(),
            start_micros: 1_700_000_000_000_000,
            trigger: Trigger::Motion,
        })
        .expect("create");
    let plain = pattern(100_000, id.0);
    writer.write_all(&plain).expect("write");
    writer.finish().expect("finish");
    plain
}

/// What the attacker writes at `id`'s place: the viewer's public key, a data key
/// of their own, and `tag`.
fn forge(f: &Fixture, id: RecordingId, video: &[u8], tag: [u8; E2E_TAG_LEN]) -> std::path::PathBuf {
    let path = f.store.recording_path(&f.camera, id);
    fs::create_dir_all(path.parent().expect("camera dir")).expect("mkdir");
    let fields = HeaderFields::new(id.0, f.camera.as_str(), 1_700_000_000_000_000, "motion");
    forge_e2e(&path, &fields, &f.store.recipients(), video, tag);
    path
}

/// Opening `id` as the viewer, which must be refused as not authentic.
fn refused(f: &Fixture, id: RecordingId) -> StoreError {
    let err = f
        .store
        .open_recording_as(&f.camera, id, &f.secret)
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::NotAuthentic { .. }), "{err}");
    err
}

fn stored_tag(path: &Path) -> Vec<u8> {
    fs::read(path).expect("read")[36..42].to_vec()
}

#[test]
fn a_forged_file_swapped_in_for_a_real_recording_is_refused() {
    let f = fixture(false);
    let id = RecordingId(7);
    let genuine = record(&f, id);
    let path = f.store.recording_path(&f.camera, id);
    assert_ne!(stored_tag(&path), [0u8; 6], "new files are tagged");
    assert_eq!(
        read_all(
            f.store
                .open_recording_as(&f.camera, id, &f.secret)
                .expect("genuine")
        ),
        genuine
    );

    for tag in [[0u8; 6], [1, 2, 3, 4, 5, 6]] {
        fs::remove_file(&path).expect("rm");
        forge(&f, id, b"a video of the attacker's choosing", tag);
        let err = refused(&f, id);
        assert!(err.is_integrity_failure());
        let shown = err.to_string();
        assert!(shown.contains("not written by this Porchlight"), "{shown}");
        assert!(
            shown.contains("0000000000000007"),
            "names the recording: {shown}"
        );
        assert!(matches!(
            f.store.status(&f.camera, id),
            FileStatus::Foreign(_)
        ));
    }
}

#[test]
fn a_legacy_untagged_file_reads_before_and_after_it_is_tagged_once() {
    let f = fixture(true);
    let id = RecordingId(8);
    let video = pattern(50_000, 8);
    // What the writer made before tags existed: a zero tag.
    let path = forge(&f, id, &video, [0; 6]);
    let other = RecordingId(9);
    let new_video = record(&f, other);
    assert!(matches!(
        f.store.status(&f.camera, id),
        FileStatus::EndToEnd(_)
    ));
    let open = |id| f.store.open_recording_as(&f.camera, id, &f.secret);
    assert_eq!(read_all(open(id).expect("legacy file reads")), video);

    assert_eq!(f.store.tag_untagged_e2e_files().expect("tag"), 1);
    assert!(f.keys().join(E2E_TAGS_MARKER).exists());
    assert_ne!(stored_tag(&path), [0u8; 6]);
    assert_eq!(read_all(open(id).expect("tagged file reads")), video);
    assert_eq!(read_all(open(other).expect("new file reads")), new_video);
    // Once only: nothing left to do, and a new store reads both.
    assert_eq!(f.store.tag_untagged_e2e_files().expect("again"), 0);
    let reopened = Store::open(&f.data(), &f.keys()).expect("store");
    let opened = reopened
        .open_recording_as(&f.camera, id, &f.secret)
        .expect("tagged file reads");
    assert_eq!(read_all(opened), video);
}

#[test]
fn once_the_marker_exists_an_untagged_file_is_refused_and_never_tagged() {
    let f = fixture(false);
    let id = RecordingId(10);
    let path = forge(&f, id, b"forged", [0; 6]);
    let before = fs::read(&path).expect("read");
    refused(&f, id);
    assert_eq!(f.store.tag_untagged_e2e_files().expect("tag"), 0);
    assert_eq!(fs::read(&path).expect("read"), before, "left as it was");
}

#[test]
fn the_marker_is_written_even_when_a_file_cannot_be_tagged() {
    let f = fixture(true);
    forge(&f, RecordingId(11), b"legacy", [0; 6]);
    // Something the pass cannot tag under a recording's name: before, it held the
    // marker back, so zero tags stayed accepted for good.
    let blocker = f.store.recording_path(&f.camera, RecordingId(12));
    fs::create_dir_all(&blocker).expect("mkdir");
    assert_eq!(f.store.tag_untagged_e2e_files().expect("tag"), 1);
    assert!(f.keys().join(E2E_TAGS_MARKER).exists());
    assert!(!f.store.master.accepts_untagged_e2e());
    // A zero-tag file dropped in afterwards is refused, and never tagged.
    let planted = forge(&f, RecordingId(13), b"planted", [0; 6]);
    assert_eq!(f.store.tag_untagged_e2e_files().expect("tag"), 0);
    refused(&f, RecordingId(13));
    assert_eq!(
        crate::store::format::stored_e2e_tag(&fs::read(&planted).expect("read")),
        [0; 6]
    );
    // The file tagged by the pass stays readable.
    assert!(f
        .store
        .open_recording_as(&f.camera, RecordingId(11), &f.secret)
        .is_ok());
}

/// Share copies of end-to-end recordings are version 1 files under the link's key;
/// the source is opened as the sharer, so its tag is checked like any playback.
#[test]
fn a_share_copy_of_an_end_to_end_recording_works_and_one_of_a_forged_file_is_refused() {
    use crate::store::crypto::SHARE_SECRET_LEN;
    let f = fixture(false);
    let id = RecordingId(13);
    let video = record(&f, id);
    let key = MasterKey::for_share_link(&[5u8; SHARE_SECRET_LEN]);
    f.store
        .copy_for_share_as(&f.camera, id, 1, &key, Some(&f.secret))
        .expect("copy");
    assert_eq!(read_all(f.store.open_share(1, &key).expect("open")), video);

    let forged = RecordingId(14);
    forge(&f, forged, b"forged", [0; 6]);
    let err = f
        .store
        .copy_for_share_as(&f.camera, forged, 2, &key, Some(&f.secret))
        .expect_err("refused");
    assert!(matches!(err, StoreError::NotAuthentic { .. }), "{err}");
    assert!(!f.store.share_path(2).exists());
}

/// The key directory swapped for another after the store loaded its key (the
/// tagging pass can take minutes): the marker is written beside the key that was
/// loaded, never into the directory now at `key_dir`, which the checks at load
/// would have refused.
#[test]
fn the_marker_goes_beside_the_loaded_key_even_if_the_key_directory_was_swapped() {
    let f = fixture(true);
    let (checked, _) = crate::store::key_dir::tests::swap_in_decoy(&f.keys());
    assert_eq!(f.store.tag_untagged_e2e_files().expect("tag"), 0);
    assert!(checked.join(E2E_TAGS_MARKER).exists());
    assert!(
        !f.keys().join(E2E_TAGS_MARKER).exists(),
        "marker in the decoy"
    );
    assert!(!f.store.master.accepts_untagged_e2e());
}
