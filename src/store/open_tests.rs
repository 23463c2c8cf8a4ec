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
