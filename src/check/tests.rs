//! Tests of `check`: the real store and index on a temporary disk.

use super::*;
use crate::index::{RecordingEntry, RecordingState};
use crate::model::CameraId;
use crate::model::{RecordingId, Trigger};
use crate::store::NewRecording;

use crate::testutil::{event_of, store_and_index as fixture};

/// Recording `id` of camera `porch` as a crash leaves it: `video` written and
/// synced, the index entry still open.
fn interrupted(store: &Store, index: &Index, id: RecordingId, video: &[u8]) -> CameraId {
    let camera: CameraId = "porch".parse().expect("name");
    let (mut writer, wrapped_key) = store
        .create_recording(&NewRecording {
            id,
            camera: camera.clone(),
            start_micros: 1,
            trigger: Trigger::Continuous,
        })
        .expect("create");
    if !video.is_empty() {
        writer.write_all(video).expect("write");
        writer.sync().expect("sync");
    }
    drop(writer);
    index
        .put_recording(&RecordingEntry {
            id,
            camera: camera.clone(),
            start_micros: 1,
            end_micros: 1,
            frames: 0,
            bytes: 0,
            trigger: Trigger::Continuous,
            wrapped_key,
            state: RecordingState::Open,
            durable_len: None,
        })
        .expect("index");
    camera
}

/// Recording `id` of camera `porch` with 12 frames of real fMP4 (the same fixture
/// the container tests use), its index entry `state`; `finish` seals its final chunk.
pub(super) fn recording(
    store: &Store,
    index: &Index,
    id: RecordingId,
    finish: bool,
    state: RecordingState,
) -> CameraId {
    use crate::store::mp4::testutil::{synthetic_samples, synthetic_track, write_recording};
    let camera: CameraId = "porch".parse().expect("name");
    let (video, _) = write_recording(&synthetic_track(), &synthetic_samples(12, 4), &[4, 8], 0);
    let (mut writer, wrapped_key) = store
        .create_recording(&NewRecording {
            id,
            camera: camera.clone(),
            start_micros: 1,
            trigger: Trigger::Continuous,
        })
        .expect("create");
    writer.write_all(&video).expect("write");
    let bytes = if finish {
        writer.finish().expect("finish").file_len
    } else {
        writer.sync().expect("sync");
        writer.file_len()
    };
    index
        .put_recording(&RecordingEntry {
            id,
            camera: camera.clone(),
            start_micros: 1,
            end_micros: 2,
            frames: 12,
            bytes,
            trigger: Trigger::Continuous,
            wrapped_key,
            state,
            durable_len: None,
        })
        .expect("index");
    camera
}

/// Flips one bit of the byte at `offset` from the end (1 = the last byte).
fn flip_from_end(path: &std::path::Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    let at = bytes.len() - offset;
    bytes[at] ^= 1;
    std::fs::write(path, &bytes).expect("write");
}

pub(super) fn readable(store: &Store, camera: &CameraId, id: RecordingId) -> bool {
    store
        .open_recording(camera, id)
        .and_then(|mut r| r.parse().map_err(|e| StoreError::Mp4(e.to_string())))
        .is_ok_and(|parsed| parsed.samples.len() == 12)
}

/// A crash damaged the final chunk of a recording the index still has open: the
/// chunk is sealed again (byte-identical) and the recording keeps every frame.
#[test]
fn an_open_recording_with_a_damaged_final_chunk_is_finished_at_recovery() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(44);
    let camera = recording(&store, &index, id, true, RecordingState::Open);
    let path = store.recording_path(&camera, id);
    let good = std::fs::read(&path).expect("read");
    flip_from_end(&path, 1);
    assert!(!readable(&store, &camera, id));

    let report = recover(&store, &index).expect("recover");
    assert!(report.findings.is_empty(), "{report}");
    let entry = index.get_recording(id).expect("get").expect("kept");
    assert_eq!((entry.state, entry.frames), (RecordingState::Finished, 12));
    assert!(readable(&store, &camera, id));
    assert_eq!(std::fs::read(&path).expect("read"), good);
    let again = compare(&store, &index, false).expect("check");
    assert!(again.findings.is_empty(), "{again}");
}

/// Bytes appended after the final chunk make the file unreadable: `check` says so
/// and `--repair` cuts them off.
#[test]
fn bytes_after_the_final_chunk_are_reported_and_trimmed_by_repair() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(45);
    let camera = recording(&store, &index, id, true, RecordingState::Finished);
    let path = store.recording_path(&camera, id);
    let good = std::fs::read(&path).expect("read");
    let mut bytes = good.clone();
    bytes.extend_from_slice(b"junk after the end");
    std::fs::write(&path, &bytes).expect("write");
    assert!(!readable(&store, &camera, id));

    let checked = compare(&store, &index, false).expect("check");
    assert!(
        checked.to_string().contains("after its final chunk"),
        "{checked}"
    );
    let repaired = compare(&store, &index, true).expect("repair");
    assert!(repaired.findings.is_empty(), "{repaired}");
    assert!(readable(&store, &camera, id));
    assert_eq!(std::fs::read(&path).expect("read"), good);
    let again = compare(&store, &index, false).expect("check");
    assert!(again.findings.is_empty(), "{again}");
}

/// An open recording whose first chunk does not authenticate holds nothing that
/// can be recovered: its entry ends (so that it can be deleted) and its file is
/// left exactly as it is.
#[test]
fn an_open_recording_with_nothing_recoverable_ends_and_keeps_its_file() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(46);
    let camera = recording(&store, &index, id, false, RecordingState::Open);
    let path = store.recording_path(&camera, id);
    let header_len = header_len(&path) as usize;
    let len = std::fs::metadata(&path).expect("stat").len() as usize;
    flip_from_end(&path, len - header_len - 20);
    let damaged = std::fs::read(&path).expect("read");

    let report = recover(&store, &index).expect("recover");
    assert!(
        report.to_string().contains("could not be recovered"),
        "{report}"
    );
    let entry = index.get_recording(id).expect("get").expect("kept");
    assert_eq!(entry.state, RecordingState::Finished);
    assert_eq!(std::fs::read(&path).expect("read"), damaged, "untouched");
    // Once ended, it can be deleted like any recording.
    assert!(crate::retention::delete_recording(&store, &index, id).expect("delete"));
    assert!(!path.exists());
}

/// The length of the header of the recording file at `path`.
fn header_len(path: &std::path::Path) -> u64 {
    let file = std::fs::File::open(path).expect("open");
    let (header, _) = crate::store::format::read_header(&file, path).expect("header");
    u64::from(header.header_len)
}

/// Saves `len` as the durable length of open recording `id`, as the daemon's
/// salvage does when it cannot cut a file back after a failed write or sync.
fn set_durable_len(index: &Index, id: RecordingId, len: u64) {
    let mut entry = index.get_recording(id).expect("get").expect("entry");
    entry.durable_len = Some(len);
    index.put_recording(&entry).expect("index");
}

/// The daemon could not cut a recording back after a failed sync and saved the
/// length of its last good sync on the open entry: `--repair` (start-up recovery)
/// cuts the file to it before closing it, although every chunk past it
/// authenticates. Here that is the header's length: no frame was durable, so the
/// recording goes.
#[test]
fn repair_cuts_an_open_recording_back_to_its_durable_length() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(47);
    let camera = recording(&store, &index, id, false, RecordingState::Open);
    let path = store.recording_path(&camera, id);
    set_durable_len(&index, id, header_len(&path));

    let report = compare(&store, &index, true).expect("repair");
    assert!(
        report.to_string().contains("before any video was written"),
        "{report}"
    );
    assert!(index.get_recording(id).expect("get").is_none());
    assert!(!path.exists());
}

/// The durable length is the recording's own: a file of another recording found
/// under its name is not cut to it (that would destroy the other's video).
#[test]
fn a_durable_length_never_cuts_another_recordings_file() {
    let (_dir, store, index) = fixture();
    let other = recording(
        &store,
        &index,
        RecordingId(48),
        true,
        RecordingState::Finished,
    );
    let id = RecordingId(49);
    let camera = recording(&store, &index, id, false, RecordingState::Open);
    let path = store.recording_path(&camera, id);
    let copied = std::fs::read(store.recording_path(&other, RecordingId(48))).expect("read");
    std::fs::write(&path, &copied).expect("a copy under the wrong name");
    set_durable_len(&index, id, header_len(&path));

    let report = recover(&store, &index).expect("recover");
    assert_eq!(std::fs::read(&path).expect("read"), copied, "{report}");
}

/// A crash right after a recording began: its file holds a header and no video.
#[test]
fn a_recording_interrupted_before_any_video_is_removed_at_recovery() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(42);
    let camera = interrupted(&store, &index, id, b"");
    let report = recover(&store, &index).expect("recover");
    assert!(report.findings.is_empty(), "{report}");
    assert!(
        report.to_string().contains("before any video was written"),
        "{report}"
    );
    assert!(index.get_recording(id).expect("get").is_none());
    assert!(!store.recording_path(&camera, id).exists());
    let again = compare(&store, &index, false).expect("check");
    assert!(again.findings.is_empty(), "{again}");
}

/// A crash during an end-to-end recording: recovery cannot open it, so it keeps
/// the file untouched and marks it finished (retention may then delete it).
#[test]
fn an_interrupted_end_to_end_recording_is_kept_and_marked_finished() {
    let (_dir, store, index) = fixture();
    enable_e2e(&store, &index);
    let id = RecordingId(43);
    let camera = interrupted(&store, &index, id, b"some video");
    let path = store.recording_path(&camera, id);
    let before = std::fs::read(&path).expect("read");
    let report = recover(&store, &index).expect("recover");
    assert!(report.findings.is_empty(), "{report}");
    assert!(
        report.to_string().contains("end-to-end encrypted"),
        "{report}"
    );
    let entry = index.get_recording(id).expect("get").expect("kept");
    assert_eq!(entry.state, RecordingState::Finished);
    assert_eq!(entry.bytes, before.len() as u64);
    assert_eq!(std::fs::read(&path).expect("read"), before, "untouched");
    // Checking finds nothing wrong, and a rebuilt index still lists it.
    let checked = compare(&store, &index, false).expect("check");
    assert!(checked.findings.is_empty(), "{checked}");
    index.remove_recording(id).expect("forget");
    let adopted = compare(&store, &index, true).expect("repair");
    assert!(adopted.to_string().contains("from its header"), "{adopted}");
    let rebuilt = rebuild(&store, &index).expect("rebuild");
    assert!(rebuilt.findings.is_empty(), "{rebuilt}");
    let entry = index.get_recording(id).expect("get").expect("rebuilt");
    assert_eq!((entry.camera, entry.start_micros), (camera, 1));
}

/// Marks recording `id` as the real delete path does just before it shreds: state
/// `Deleting`, its copy of the wrapped key dropped.
fn mark_deleting(index: &Index, id: RecordingId) {
    let mut entry = index.get_recording(id).expect("get").expect("indexed");
    entry.state = RecordingState::Deleting;
    entry.wrapped_key.clear();
    index.put_recording(&entry).expect("put");
}

/// A file whose header no longer parses cannot be shredded; start-up must not stop
/// for it: the deletion is finished by unlinking, and the problem is reported.
#[test]
fn a_deletion_whose_file_cannot_be_shredded_does_not_stop_recovery() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(47);
    let camera = recording(&store, &index, id, true, RecordingState::Finished);
    let path = store.recording_path(&camera, id);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[..8].fill(0);
    std::fs::write(&path, &bytes).expect("write");
    mark_deleting(&index, id);

    let report = recover(&store, &index).expect("recovery goes on");
    assert!(
        report.to_string().contains("could not be shredded"),
        "{report}"
    );
    assert!(!path.exists());
    assert!(index.get_recording(id).expect("get").is_none());
}

/// Rebuilding the index must not bring back a recording whose deletion a crash
/// interrupted: the deletion is finished first.
#[test]
fn rebuilding_the_index_finishes_an_interrupted_deletion() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(48);
    let camera = recording(&store, &index, id, true, RecordingState::Finished);
    let kept = RecordingId(49);
    recording(&store, &index, kept, true, RecordingState::Finished);
    mark_deleting(&index, id);

    let report = rebuild(&store, &index).expect("rebuild");
    assert!(report.findings.is_empty(), "{report}");
    assert!(index.get_recording(id).expect("get").is_none());
    assert!(!store.recording_path(&camera, id).exists());
    assert!(index.get_recording(kept).expect("get").is_some());
}

fn event_is_gone(store: &Store, index: &Index, camera: &CameraId, event: u64) -> bool {
    use crate::model::EventId;
    index.get_event(EventId(event)).expect("get").is_none()
        && store.read_thumbnail(camera, EventId(event)).is_err()
}

/// "An event goes with its last recording", also when a crash interrupted the
/// deletion and recovery finished it.
#[test]
fn an_event_goes_with_its_last_recording_when_recovery_finishes_the_deletion() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(50);
    let camera = recording(&store, &index, id, true, RecordingState::Finished);
    event_of(&store, &index, &camera, id, 7);
    assert!(!event_is_gone(&store, &index, &camera, 7));
    mark_deleting(&index, id);

    let report = recover(&store, &index).expect("recover");
    assert!(report.findings.is_empty(), "{report}");
    assert!(event_is_gone(&store, &index, &camera, 7));
}

/// The same when `check --repair` drops an entry whose file is gone.
#[test]
fn an_event_goes_with_its_last_recording_when_repair_drops_a_missing_file() {
    let (_dir, store, index) = fixture();
    let id = RecordingId(51);
    let camera = recording(&store, &index, id, true, RecordingState::Finished);
    event_of(&store, &index, &camera, id, 8);
    std::fs::remove_file(store.recording_path(&camera, id)).expect("remove");

    let report = compare(&store, &index, true).expect("repair");
    assert!(report.findings.is_empty(), "{report}");
    assert!(index.get_recording(id).expect("get").is_none());
    assert!(event_is_gone(&store, &index, &camera, 8));
}

/// A power cut while a file was being created leaves it empty or with part of its
/// header, and no index entry: `--repair` (and a rebuild) removes it. A file long
/// enough to hold a header that is not a recording is still left alone.
#[test]
fn files_too_short_to_hold_a_header_are_removed_by_repair() {
    let (_dir, store, index) = fixture();
    let camera: CameraId = "porch".parse().expect("name");
    let whole = RecordingId(52);
    recording(&store, &index, whole, true, RecordingState::Finished);
    let header: Vec<u8> = std::fs::read(store.recording_path(&camera, whole)).expect("read");
    let empty = store.recording_path(&camera, RecordingId(53));
    let torn = store.recording_path(&camera, RecordingId(54));
    let stranger = store.recording_path(&camera, RecordingId(55));
    std::fs::write(&empty, b"").expect("write");
    std::fs::write(&torn, &header[..130]).expect("write");
    std::fs::write(&stranger, [7u8; 300]).expect("write");

    let checked = compare(&store, &index, false).expect("check");
    assert_eq!(checked.findings.len(), 3, "{checked}");
    let repaired = compare(&store, &index, true).expect("repair");
    assert!(!empty.exists() && !torn.exists(), "{repaired}");
    assert!(stranger.exists(), "{repaired}");
    assert_eq!(repaired.findings.len(), 1, "{repaired}");

    std::fs::write(&empty, b"").expect("write");
    let rebuilt = rebuild(&store, &index).expect("rebuild");
    assert!(!empty.exists() && stranger.exists(), "{rebuilt}");
}

/// Started with another master key (a restored backup of the wrong key), recovery
/// leaves an open recording open, untouched: with the right key back it is finished.
#[test]
fn an_open_recording_stays_open_while_another_master_key_is_loaded() {
    let (dir, store, index) = fixture();
    let id = RecordingId(56);
    let camera = recording(&store, &index, id, false, RecordingState::Open);
    let path = store.recording_path(&camera, id);
    let before = std::fs::read(&path).expect("read");
    let wrong_key = Store::open_or_create(&dir.path().join("data"), &dir.path().join("other keys"))
        .expect("store with another key");

    let report = recover(&wrong_key, &index).expect("recover");
    assert!(report.to_string().contains("master key id"), "{report}");
    let entry = index.get_recording(id).expect("get").expect("kept");
    assert_eq!(entry.state, RecordingState::Open);
    assert_eq!(std::fs::read(&path).expect("read"), before, "untouched");

    let report = recover(&store, &index).expect("recover");
    assert!(report.findings.is_empty(), "{report}");
    let entry = index.get_recording(id).expect("get").expect("kept");
    assert_eq!((entry.state, entry.frames), (RecordingState::Finished, 12));
}

/// Free space is never the limit here; only the byte cap is.
struct Roomy;
impl crate::retention::DiskSpace for Roomy {
    fn space(&self, _: &std::path::Path) -> std::io::Result<crate::retention::Space> {
        Ok(crate::retention::Space {
            total: 1 << 40,
            available: 1 << 39,
        })
    }
}

#[test]
fn start_up_recovery_indexes_a_file_that_lost_its_entry_so_space_retention_takes_it_first() {
    use crate::retention::{enforce, RetentionPolicy};
    let (dir, store, index) = fixture();
    let (older, newer) = (RecordingId(1), RecordingId(2));
    recording(&store, &index, older, true, RecordingState::Finished);
    recording(&store, &index, newer, true, RecordingState::Finished);
    // The older one's entry was lost (a damaged index, a power cut before sled wrote).
    index.remove_recording(older).expect("remove");
    let one_file = index
        .get_recording(newer)
        .expect("get")
        .expect("entry")
        .bytes;

    let report = recover(&store, &index).expect("recover");
    assert!(
        report
            .to_string()
            .contains(&format!("indexed recording {older} from its file")),
        "{report}"
    );
    let entry = index
        .get_recording(older)
        .expect("get")
        .expect("indexed again");
    assert_eq!((entry.state, entry.frames), (RecordingState::Finished, 12));

    // Room for one recording: the older one goes, not the newer.
    let policy = RetentionPolicy {
        default_days: 36500,
        camera_days: Default::default(),
        max_bytes: Some(one_file),
        min_free_percent: 0,
        interval: std::time::Duration::from_secs(60),
    };
    let report = enforce(&store, &index, &policy, 3, &Roomy, dir.path()).expect("enforce");
    assert_eq!(report.for_space, vec![older]);
    assert!(index.get_recording(newer).expect("get").is_some());
}

/// A crash between a thumbnail or share copy and its entry (or a lost index) leaves
/// picture content no entry names: `check` reports it, recovery shreds it, except a
/// thumbnail whose event is there and was saved before the thumbnail was recorded.
#[test]
fn thumbnails_and_share_copies_without_entries_are_shredded_at_recovery() {
    use crate::model::EventId;
    let (dir, store, index) = fixture();
    let camera = recording(
        &store,
        &index,
        RecordingId(60),
        true,
        RecordingState::Finished,
    );
    event_of(&store, &index, &camera, RecordingId(60), 7);
    event_of(&store, &index, &camera, RecordingId(60), 8);
    index.remove_event(EventId(7)).expect("lose event 7");
    let mut closing = index.get_event(EventId(8)).expect("get").expect("event 8");
    closing.has_thumbnail = false;
    index
        .put_event(&closing)
        .expect("event 8 saved before its thumbnail");
    let shares = dir.path().join("data").join("shares");
    std::fs::create_dir_all(&shares).expect("shares dir");
    let copy = shares.join("00000000000000aa.plr");
    std::fs::write(&copy, [9u8; 300]).expect("a copy whose link is gone");

    let checked = compare(&store, &index, false).expect("check");
    assert_eq!(checked.findings.len(), 3, "{checked}");

    let report = recover(&store, &index).expect("recover");
    assert!(report.findings.is_empty(), "{report}");
    assert!(
        store.read_thumbnail(&camera, EventId(7)).is_err(),
        "{report}"
    );
    assert!(!copy.exists(), "{report}");
    let linked = index.get_event(EventId(8)).expect("get").expect("event 8");
    assert!(linked.has_thumbnail, "{report}");
    assert_eq!(
        store.read_thumbnail(&camera, EventId(8)).expect("kept"),
        b"a jpeg"
    );
    assert!(compare(&store, &index, false).expect("check").is_clean());
}

/// An older version removed a recording's entry before updating its events, so a
/// crash in between left events listing a recording that is gone: recovery drops it
/// from them, and an event left with none goes with its thumbnail.
#[test]
fn recovery_drops_recordings_that_are_gone_from_their_events() {
    use crate::model::EventId;
    let (_dir, store, index) = fixture();
    let (kept, gone) = (RecordingId(70), RecordingId(71));
    let camera = recording(&store, &index, kept, true, RecordingState::Finished);
    event_of(&store, &index, &camera, gone, 9);
    let mut both = index.get_event(EventId(9)).expect("get").expect("event 9");
    both.id = EventId(10);
    both.has_thumbnail = false;
    both.recordings = vec![kept, gone];
    index.put_event(&both).expect("event 10");

    let report = recover(&store, &index).expect("recover");
    assert!(report.findings.is_empty(), "{report}");
    assert!(event_is_gone(&store, &index, &camera, 9), "{report}");
    let left = index.get_event(EventId(10)).expect("get").expect("kept");
    assert_eq!(left.recordings, vec![kept], "{report}");
}

/// The schema-version error tells the user to rebuild the index, so a rebuild must
/// not need to open it: an index that cannot be opened is moved aside and the
/// recordings come back from their files.
#[test]
fn rebuilding_an_index_that_cannot_be_opened_sets_it_aside_and_keeps_every_recording() {
    let (dir, store, index) = fixture();
    let id = RecordingId(80);
    recording(&store, &index, id, true, RecordingState::Finished);
    index.flush().expect("flush");
    drop(index);
    let index_dir = Store::index_dir(&dir.path().join("data"));
    {
        let db = sled::open(&index_dir).expect("sled");
        db.open_tree("meta")
            .expect("meta")
            .insert("schema_version", &99u32.to_be_bytes())
            .expect("another version");
        db.flush().expect("flush");
    }
    assert!(matches!(
        Index::open(&index_dir),
        Err(IndexError::SchemaVersion { found: 99 })
    ));

    let (index, set_aside) = open_for_rebuild(&index_dir).expect("opened anew");
    let set_aside = set_aside.expect("reported");
    assert!(set_aside.contains("moved to"), "{set_aside}");
    let report = rebuild(&store, &index).expect("rebuild");
    assert!(report.findings.is_empty(), "{report}");
    let entry = index
        .get_recording(id)
        .expect("get")
        .expect("back from its file");
    assert_eq!(entry.frames, 12);
    let kept_aside = std::fs::read_dir(dir.path().join("data"))
        .expect("list")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.unreadable-")
        });
    assert!(kept_aside);
}

/// A file holding an init segment and no fragment has no frame: start-up, repair
/// and rebuild all remove it (a rebuild used to index it with 0 frames, which then
/// failed to export).
#[test]
fn a_file_without_a_frame_is_removed_by_every_path_alike() {
    let (_dir, store, index) = fixture();
    let init = crate::store::mp4::fragmented::init_segment(
        &crate::store::mp4::testutil::synthetic_track(),
    )
    .expect("init segment");
    let camera: CameraId = "porch".parse().expect("name");
    for (id, finish) in [(RecordingId(90), true), (RecordingId(91), false)] {
        let (mut writer, _) = store
            .create_recording(&NewRecording {
                id,
                camera: camera.clone(),
                start_micros: 1,
                trigger: Trigger::Continuous,
            })
            .expect("create");
        writer.write_all(&init).expect("write");
        if finish {
            writer.finish().expect("finish");
        } else {
            writer.sync().expect("sync");
        }
    }
    let report = rebuild(&store, &index).expect("rebuild");
    assert!(report.findings.is_empty(), "{report}");
    assert!(index.all_recordings().expect("all").is_empty(), "{report}");
    assert!(!store.recording_path(&camera, RecordingId(90)).exists());
    assert!(!store.recording_path(&camera, RecordingId(91)).exists());
}

/// A version 2 file made by someone who can write the data disk but not the key
/// directory (the viewer's public key, a data key of their own): start-up recovery,
/// `check --repair` and `check --rebuild-index` must not index it, and must say so.
#[test]
fn a_forged_end_to_end_file_is_never_indexed_and_is_reported() {
    use crate::store::format::HeaderFields;
    use crate::store::writer::testing::forge_e2e;
    let (_dir, store, index) = fixture();
    enable_e2e(&store, &index);
    let genuine = RecordingId(60);
    let camera = interrupted(&store, &index, genuine, b"real video");
    let forged = RecordingId(61);
    let path = store.recording_path(&camera, forged);
    for tag in [[0u8; 6], [9, 9, 9, 9, 9, 9]] {
        let fields = HeaderFields::new(forged.0, camera.as_str(), 5, "motion");
        forge_e2e(&path, &fields, &store.recipients(), b"forged video", tag);

        for report in [
            recover(&store, &index).expect("recover"),
            compare(&store, &index, true).expect("repair"),
            rebuild(&store, &index).expect("rebuild"),
        ] {
            assert!(
                index.get_recording(forged).expect("get").is_none(),
                "{report}"
            );
            assert!(
                report
                    .to_string()
                    .contains("not written by this Porchlight"),
                "{report}"
            );
        }
        assert!(path.exists(), "left untouched, like other foreign files");
        assert!(index.get_recording(genuine).expect("get").is_some());
        std::fs::remove_file(&path).expect("rm");
    }
}

/// `check --repair` does what the daemon does at start: old untagged end-to-end
/// files get their tag (once), then the marker.
#[test]
fn repair_tags_end_to_end_files_written_before_tags() {
    use crate::store::format::HeaderFields;
    use crate::store::writer::testing::forge_e2e;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "data_dir = \"{}\"\nkey_dir = \"{}\"\n",
        dir.path().join("data").display(),
        dir.path().join("keys").display()
    );
    let config = Config::parse(&dir.path().join("porchlight.toml"), &text).expect("config");
    let store = Store::open_or_create(&config.data_dir, &config.key_dir).expect("store");
    let index = Index::open(&Store::index_dir(&config.data_dir)).expect("index");
    enable_e2e(&store, &index);
    let camera: CameraId = "porch".parse().expect("name");
    let path = store.recording_path(&camera, RecordingId(70));
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let fields = HeaderFields::new(70, "porch", 5, "motion");
    forge_e2e(&path, &fields, &store.recipients(), b"old video", [0; 6]);
    std::fs::remove_file(config.key_dir.join("e2e-tags-v1")).expect("as before tags");
    drop((store, index));

    let report = run(&config, Mode::Repair).expect("repair");
    assert!(report.to_string().contains("from its header"), "{report}");
    assert!(config.key_dir.join("e2e-tags-v1").exists());
    assert_ne!(std::fs::read(&path).expect("read")[36..42], [0u8; 6]);
}

/// A test's action on a path (see [`between_status_and_indexing`]).
type PathHook = Box<dyn Fn(&std::path::Path)>;

/// One way of adopting files without an entry: recovery, repair or rebuild.
type AdoptingRun = fn(&Store, &Index) -> Result<Report, CheckError>;

thread_local! {
    /// What a test does between `status` checking a file and the file being indexed.
    static BETWEEN_STATUS_AND_INDEXING: std::cell::RefCell<Option<PathHook>> =
        const { std::cell::RefCell::new(None) };
}

/// The seam `adopt` and `rebuild` call right after [`Store::status`] (tests only).
pub(super) fn between_status_and_indexing(path: &std::path::Path) {
    BETWEEN_STATUS_AND_INDEXING.with(|hook| {
        if let Some(hook) = hook.borrow().as_ref() {
            hook(path);
        }
    });
}

/// An end-to-end file swapped for a forgery after its tag was checked, before its
/// entry is written: what gets indexed is the header that was checked (its start,
/// its key slot), never what a second read of the path would find.
#[test]
fn adoption_indexes_the_header_whose_tag_was_checked_not_a_swapped_file() {
    use crate::store::format::HeaderFields;
    use crate::store::writer::testing::forge_e2e;
    let (dir, store, index) = fixture();
    enable_e2e(&store, &index);
    let id = RecordingId(80);
    let camera = recording(&store, &index, id, true, RecordingState::Finished);
    let genuine = index.get_recording(id).expect("get").expect("entry");
    let path = store.recording_path(&camera, id);
    let genuine_bytes = std::fs::read(&path).expect("read");
    let forgery = dir.path().join("forged.plr");
    let recipients = store.recipients();
    let runs: [AdoptingRun; 3] = [recover, |s: &Store, i: &Index| compare(s, i, true), rebuild];
    for run in runs {
        std::fs::write(&path, &genuine_bytes).expect("put the genuine file back");
        index.remove_recording(id).expect("lose its entry");
        let (path, forgery, recipients) = (path.clone(), forgery.clone(), recipients.clone());
        BETWEEN_STATUS_AND_INDEXING.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move |checked: &std::path::Path| {
                if checked == path {
                    let fields = HeaderFields::new(id.0, "porch", 999_999, "motion");
                    forge_e2e(&forgery, &fields, &recipients, b"forged", [9; 6]);
                    std::fs::rename(&forgery, &path).expect("swap");
                }
            }))
        });
        let report = run(&store, &index);
        BETWEEN_STATUS_AND_INDEXING.with(|hook| hook.borrow_mut().take());
        let report = report.expect("run");
        let indexed = index.get_recording(id).expect("get").expect("adopted");
        assert_eq!(indexed.start_micros, genuine.start_micros, "{report}");
        assert_eq!(indexed.wrapped_key, genuine.wrapped_key, "{report}");
    }
}

/// Turns end-to-end mode on for the owner (user 1).
fn enable_e2e(store: &Store, index: &Index) {
    crate::e2e::enable(
        index,
        store,
        crate::index::UserId(1),
        "owner",
        "lantern orchard pebble 1987 quietly",
        "lantern orchard pebble 1987 quietly",
        0,
    )
    .expect("enable");
}
