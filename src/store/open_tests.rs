//! Opening recordings by (camera, id) through the `Store`, and where their files go.
use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys")).expect("store");
    (dir, store)
}

/// A finished recording of camera `camera`; returns its id.
fn record(store: &Store, camera: &CameraId) -> RecordingId {
    let id = RecordingId::random();
    let (mut writer, _) = store
        .create_recording(&NewRecording {
            id,
            camera: camera.clone(),
            start_micros: 1,
            trigger: Trigger::Motion,
        })
        .expect("create");
    writer.write_all(b"some video").expect("write");
    writer.finish().expect("finish");
    id
}

/// Every file authenticates by itself, so a whole file copied over another one's
/// name would be served as that recording; the header's id and camera say which
/// recording it really is.
#[test]
fn a_recording_file_swapped_for_another_is_refused() {
    let (_dir, store) = store();
    let porch: CameraId = "porch".parse().expect("name");
    let garage: CameraId = "garage".parse().expect("name");
    let a = record(&store, &porch);
    let b = record(&store, &porch);
    let c = record(&store, &garage);
    assert!(store.open_recording(&porch, a).is_ok());

    let a_path = store.recording_path(&porch, a);
    fs::copy(store.recording_path(&porch, b), &a_path).expect("swap");
    let err = store.open_recording(&porch, a).err().expect("refused");
    assert!(
        err.to_string().contains(&format!("holds recording {b}")),
        "{err}"
    );

    fs::copy(store.recording_path(&garage, c), &a_path).expect("swap");
    let err = store.open_recording(&porch, a).err().expect("refused");
    assert!(err.to_string().contains("garage"), "{err}");
    assert!(store.open_recording(&porch, b).is_ok());
}

/// Directories are created on demand (and, out of sight of a test, made durable
/// in their parent): a recording and a thumbnail of a new camera land in theirs.
#[test]
fn files_of_a_new_camera_get_their_directories() {
    let (dir, store) = store();
    let camera: CameraId = "shed".parse().expect("name");
    let id = record(&store, &camera);
    assert!(store.recording_path(&camera, id).is_file());
    store
        .write_thumbnail(&camera, EventId(3), 1, b"jpeg")
        .expect("thumbnail");
    assert_eq!(
        store.read_thumbnail(&camera, EventId(3)).expect("read"),
        b"jpeg"
    );
    assert!(dir.path().join("data/thumbnails/shed").is_dir());
}

/// A whole file copied over another recording's name is a stray copy (safe to
/// shred) only while the recording's own file is whole and at least as long: one
/// recovered after a cut, finished and authenticating but shorter, holds less video
/// than the copy, which may then be the only whole copy.
#[test]
fn a_copy_is_stray_only_while_the_own_file_is_whole_and_as_long() {
    let (_dir, store) = store();
    let porch: CameraId = "porch".parse().expect("name");
    let (a, b) = (RecordingId(1), RecordingId(2));
    let (mut writer, _) = store
        .create_recording(&NewRecording {
            id: a,
            camera: porch.clone(),
            start_micros: 1,
            trigger: Trigger::Motion,
        })
        .expect("create");
    let chunk = format::DEFAULT_CHUNK_SIZE as usize;
    writer.write_all(&vec![7u8; 3 * chunk]).expect("write");
    writer.finish().expect("finish");
    let (a_path, b_path) = (
        store.recording_path(&porch, a),
        store.recording_path(&porch, b),
    );
    fs::copy(&a_path, &b_path).expect("copy A over B");
    assert!(store.is_stray_copy(&porch, b, "porch", a));

    let len = fs::metadata(&a_path).expect("stat").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&a_path)
        .and_then(|f| f.set_len(len - chunk as u64 / 2))
        .expect("cut A inside its last video chunk");
    recover::recover(&a_path, &store.master).expect("recover A");
    assert!(store.open_recording(&porch, a).is_ok(), "A is whole again");
    assert!(!store.is_stray_copy(&porch, b, "porch", a), "but shorter");
}
