//! What many modules' tests start from: a fresh store and index on a real disk.

use crate::index::Index;
use crate::store::Store;

/// A fresh store (data and keys) and its index in a temporary directory; the
/// directory lives as long as the first element is kept.
pub(crate) fn store_and_index() -> (tempfile::TempDir, Store, Index) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let store = Store::open_or_create(&data, &dir.path().join("keys")).expect("store");
    let index = Index::open(&Store::index_dir(&data)).expect("index");
    (dir, store, index)
}

/// An index entry of recording `id` (camera `porch`) that names no real data: one
/// frame, one byte, no key slot.
pub(crate) fn placeholder_entry(
    id: crate::model::RecordingId,
    state: crate::index::RecordingState,
) -> crate::index::RecordingEntry {
    crate::index::RecordingEntry {
        id,
        camera: "porch".parse().expect("name"),
        start_micros: 1,
        end_micros: 2,
        frames: 1,
        bytes: 1,
        trigger: crate::model::Trigger::Motion,
        wrapped_key: String::new(),
        state,
        durable_len: None,
    }
}

/// Event `event` holding only recording `id`, with a thumbnail (`b"a jpeg"`, sealed
/// as the store's recipients say).
pub(crate) fn event_of(
    store: &Store,
    index: &Index,
    camera: &crate::model::CameraId,
    id: crate::model::RecordingId,
    event: u64,
) {
    use crate::index::EventEntry;
    use crate::model::{EventId, Trigger};
    store
        .write_thumbnail(camera, EventId(event), 1, b"a jpeg")
        .expect("thumbnail");
    index
        .put_event(&EventEntry {
            id: EventId(event),
            camera: camera.clone(),
            start_micros: 1,
            end_micros: 2,
            triggers: vec![Trigger::Motion],
            peak_score: 0.5,
            score_curve: vec![128],
            has_thumbnail: true,
            recordings: vec![id],
            open: false,
        })
        .expect("event");
}

/// A finished recording `id` of camera `porch` holding `b"some video"` (not a
/// playable video), sealed as the store's recipients say, with its finished entry.
pub(crate) fn finished_recording(store: &Store, index: &Index, id: crate::model::RecordingId) {
    use crate::index::RecordingState;
    let mut entry = placeholder_entry(id, RecordingState::Finished);
    let (mut writer, wrapped_key) = store
        .create_recording(&crate::store::NewRecording {
            id,
            camera: entry.camera.clone(),
            start_micros: entry.start_micros,
            trigger: entry.trigger,
        })
        .expect("create");
    writer.write_all(b"some video").expect("write");
    entry.bytes = writer.finish().expect("finish").file_len;
    entry.wrapped_key = wrapped_key;
    index.put_recording(&entry).expect("index");
}
