//! Retention and deletion on a real store and sled index in a temp dir: storage
//! periods, the disk cap, crash-safe deletion and events.

use super::*;
use crate::index::{EventEntry, RecordingEntry};
use crate::model::Trigger;
use crate::store::NewRecording;

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    index: Index,
}

const DAY: i64 = MICROS_PER_DAY;

fn fixture() -> Fixture {
    let (dir, store, index) = crate::testutil::store_and_index();
    Fixture { dir, store, index }
}

impl Fixture {
    /// A real sealed recording of `size` bytes starting at `start`, lasting 1 s.
    fn recording(&self, camera: &str, start: i64, size: usize) -> RecordingId {
        let camera: CameraId = camera.parse().expect("name");
        let new = NewRecording {
            id: RecordingId::random(),
            camera: camera.clone(),
            start_micros: start,
            trigger: Trigger::Continuous,
        };
        let (mut writer, wrapped_key) = self.store.create_recording(&new).expect("create");
        writer.write_all(&vec![7u8; size]).expect("write");
        let finished = writer.finish().expect("finish");
        self.index
            .put_recording(&RecordingEntry {
                id: new.id,
                camera,
                start_micros: start,
                end_micros: start + 1_000_000,
                frames: 10,
                bytes: finished.file_len,
                trigger: Trigger::Continuous,
                wrapped_key,
                state: RecordingState::Finished,
                durable_len: None,
            })
            .expect("index");
        new.id
    }

    fn path(&self, camera: &str, id: RecordingId) -> PathBuf {
        self.store
            .recording_path(&camera.parse().expect("name"), id)
    }

    fn ids(&self) -> Vec<RecordingId> {
        self.index
            .all_recordings()
            .expect("all")
            .iter()
            .map(|e| e.id)
            .collect()
    }

    fn policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            default_days: 30,
            camera_days: HashMap::new(),
            max_bytes: None,
            min_free_percent: 0,
            interval: Duration::from_secs(60),
        }
    }
}

/// A filesystem that always has plenty of room.
struct Roomy;
impl DiskSpace for Roomy {
    fn space(&self, _: &Path) -> std::io::Result<Space> {
        Ok(Space {
            total: 100,
            available: 90,
        })
    }
}

#[test]
fn recordings_expire_per_camera_storage_period() {
    let f = fixture();
    let now = 100 * DAY;
    let old_door = f.recording("door", now - 8 * DAY, 100);
    let new_door = f.recording("door", now - 6 * DAY, 100);
    let old_yard = f.recording("yard", now - 8 * DAY, 100);
    let mut policy = f.policy();
    policy.camera_days.insert("door".parse().expect("name"), 7);
    let report = enforce(&f.store, &f.index, &policy, now, &Roomy, f.dir.path()).expect("enforce");
    assert_eq!(report.expired, vec![old_door]);
    assert!(!f.path("door", old_door).exists(), "the file is gone");
    assert_eq!(f.ids().len(), 2);
    assert!(
        f.ids().contains(&new_door) && f.ids().contains(&old_yard),
        "yard keeps 30 days"
    );
}

#[test]
fn a_camera_added_in_the_web_ui_keeps_its_own_storage_period() {
    let f = fixture();
    let now = 100 * DAY;
    let old_porch = f.recording("porch", now - 4 * DAY, 100);
    let new_porch = f.recording("porch", now - 2 * DAY, 100);
    let old_yard = f.recording("yard", now - 4 * DAY, 100);
    let mut entry = crate::index::CameraEntry {
        id: "porch".parse().expect("name"),
        url: "rtsp://192.0.2.1/main".into(),
        sub_url: None,
        mode: crate::config::RecordingMode::Events,
        sealed_username: None,
        sealed_password: None,
        added_micros: 0,
        added_by: crate::index::UserId(1),
        settings: crate::index::CameraSettings {
            storage_days: 3,
            ..Default::default()
        },
    };
    f.index.add_camera(&entry).expect("add");
    let report =
        enforce(&f.store, &f.index, &f.policy(), now, &Roomy, f.dir.path()).expect("enforce");
    assert_eq!(report.expired, vec![old_porch], "porch keeps 3 days");
    assert_eq!(f.ids().len(), 2, "yard keeps the default 30 days");
    assert!(f.ids().contains(&new_porch) && f.ids().contains(&old_yard));
    // A change applies at the next pass; the config file wins for its cameras.
    entry.settings.storage_days = 1;
    f.index.update_camera(&entry).expect("update");
    let mut policy = f.policy();
    policy
        .camera_days
        .insert("porch".parse().expect("name"), 30);
    let report = enforce(&f.store, &f.index, &policy, now, &Roomy, f.dir.path()).expect("enforce");
    assert!(report.expired.is_empty(), "configured 30 days win");
    let report =
        enforce(&f.store, &f.index, &f.policy(), now, &Roomy, f.dir.path()).expect("enforce");
    assert_eq!(report.expired, vec![new_porch], "now 1 day");
}

#[test]
fn over_the_byte_cap_the_oldest_go_first_across_cameras() {
    let f = fixture();
    let now = 100 * DAY;
    let a = f.recording("door", now - 50_000_000, 10_000);
    let b = f.recording("yard", now - 40_000_000, 10_000);
    let c = f.recording("door", now - 30_000_000, 10_000);
    let d = f.recording("yard", now - 20_000_000, 10_000);
    let mut policy = f.policy();
    policy.max_bytes = Some(25_000);
    let report = enforce(&f.store, &f.index, &policy, now, &Roomy, f.dir.path()).expect("enforce");
    assert_eq!(report.for_space, vec![a, b]);
    assert_eq!(f.ids(), vec![c, d]);
    assert!(report.still_over.is_none());
}

#[test]
fn low_free_space_deletes_until_enough_is_free_and_never_an_open_recording() {
    let f = fixture();
    let now = 100 * DAY;
    let a = f.recording("door", now - 50_000_000, 100);
    let b = f.recording("door", now - 40_000_000, 100);
    let mut open = f.index.get_recording(b).expect("get").expect("exists");
    open.state = RecordingState::Open;
    f.index.put_recording(&open).expect("put");
    /// Frees 5 % per remaining finished recording deleted: starts 2 % free.
    struct Shrinking<'a>(&'a Index);
    impl DiskSpace for Shrinking<'_> {
        fn space(&self, _: &Path) -> std::io::Result<Space> {
            let n = self.0.all_recordings().map(|v| v.len()).unwrap_or(0) as u64;
            Ok(Space {
                total: 100,
                available: 12 - 5 * n,
            })
        }
    }
    let mut policy = f.policy();
    policy.min_free_percent = 10;
    let report = enforce(
        &f.store,
        &f.index,
        &policy,
        now,
        &Shrinking(&f.index),
        f.dir.path(),
    )
    .expect("enforce");
    assert_eq!(report.for_space, vec![a]);
    assert_eq!(f.ids(), vec![b], "the open recording survives");
    assert!(
        report.still_over.is_some(),
        "still short of space, and it says so"
    );
}

#[test]
fn an_interrupted_deletion_is_finished_at_start_up_and_nothing_stays_readable() {
    let f = fixture();
    let id = f.recording("door", 0, 5000);
    // Crash right after the first durable step of a deletion.
    let mut entry = f.index.get_recording(id).expect("get").expect("exists");
    entry.state = RecordingState::Deleting;
    entry.wrapped_key.clear();
    f.index.put_recording(&entry).expect("put");
    let report = crate::check::recover(&f.store, &f.index).expect("recover");
    assert!(!report.actions.is_empty());
    assert!(!f.path("door", id).exists());
    assert!(f.ids().is_empty());
}

#[test]
fn deleting_an_event_takes_its_recordings_and_thumbnail() {
    let f = fixture();
    let camera: CameraId = "door".parse().expect("name");
    let r1 = f.recording("door", 0, 100);
    let r2 = f.recording("door", 1_000_000, 100);
    let keep = f.recording("door", 9_000_000, 100);
    let event = EventId(42);
    f.store
        .write_thumbnail(&camera, event, 0, b"\xff\xd8jpeg")
        .expect("thumbnail");
    assert_eq!(
        f.store.read_thumbnail(&camera, event).expect("read"),
        b"\xff\xd8jpeg"
    );
    f.index
        .put_event(&EventEntry {
            id: event,
            camera: camera.clone(),
            start_micros: 0,
            end_micros: 2_000_000,
            triggers: vec![Trigger::Motion],
            peak_score: 0.5,
            score_curve: vec![],
            has_thumbnail: true,
            recordings: vec![r1, r2],
            open: false,
        })
        .expect("event");
    assert!(delete_event(&f.store, &f.index, event).expect("delete"));
    assert_eq!(f.ids(), vec![keep]);
    assert!(f.index.get_event(event).expect("get").is_none());
    assert!(
        f.store.read_thumbnail(&camera, event).is_err(),
        "thumbnail shredded"
    );
}

#[test]
fn retention_removes_an_event_with_its_last_recording() {
    let f = fixture();
    let camera: CameraId = "door".parse().expect("name");
    let r1 = f.recording("door", 0, 100);
    f.index
        .put_event(&EventEntry {
            id: EventId(1),
            camera: camera.clone(),
            start_micros: 0,
            end_micros: 1_000_000,
            triggers: vec![Trigger::External],
            peak_score: 0.0,
            score_curve: vec![],
            has_thumbnail: false,
            recordings: vec![r1],
            open: false,
        })
        .expect("event");
    let report = enforce(
        &f.store,
        &f.index,
        &f.policy(),
        31 * DAY + 2_000_000,
        &Roomy,
        f.dir.path(),
    )
    .expect("enforce");
    assert_eq!(report.expired, vec![r1]);
    assert!(f.index.all_events().expect("events").is_empty());
}

#[test]
fn delete_everything_leaves_nothing_readable() {
    let f = fixture();
    let a = f.recording("door", 0, 100);
    let b = f.recording("yard", 0, 100);
    assert_eq!(delete_everything(&f.store, &f.index).expect("delete"), 2);
    assert!(f.ids().is_empty());
    assert!(!f.path("door", a).exists() && !f.path("yard", b).exists());
    assert!(matches!(delete_recording(&f.store, &f.index, a), Ok(false)));
}

#[test]
fn deleting_an_event_whose_roll_over_file_is_still_open_deletes_nothing() {
    let f = fixture();
    let camera: CameraId = "door".parse().expect("name");
    let finished = f.recording("door", 0, 100);
    let open = f.recording("door", 1_000_000, 100);
    let mut entry = f.index.get_recording(open).expect("get").expect("exists");
    entry.state = RecordingState::Open;
    f.index.put_recording(&entry).expect("put");
    let event = EventId(7);
    f.index
        .put_event(&EventEntry {
            id: event,
            camera,
            start_micros: 500_000,
            end_micros: 1_500_000,
            triggers: vec![Trigger::Motion],
            peak_score: 0.5,
            score_curve: vec![],
            has_thumbnail: false,
            recordings: vec![finished, open],
            open: false,
        })
        .expect("event");
    assert!(matches!(
        delete_event(&f.store, &f.index, event),
        Err(RetentionError::InProgress(r)) if r == open
    ));
    assert!(
        f.path("door", finished).exists(),
        "the finished part is kept"
    );
    assert_eq!(f.ids().len(), 2);
    assert!(f.index.get_event(event).expect("get").is_some());
}

#[test]
fn a_camera_removed_with_its_recordings_kept_keeps_its_storage_period() {
    let f = fixture();
    let now = 100 * DAY;
    let kept = f.recording("porch", now - 40 * DAY, 100);
    let id: CameraId = "porch".parse().expect("name");
    let entry = crate::index::CameraEntry {
        id: id.clone(),
        url: "rtsp://192.0.2.1/main".into(),
        sub_url: None,
        mode: crate::config::RecordingMode::Continuous,
        sealed_username: None,
        sealed_password: None,
        added_micros: 0,
        added_by: crate::index::UserId(1),
        settings: crate::index::CameraSettings {
            storage_days: 90,
            ..Default::default()
        },
    };
    f.index.add_camera(&entry).expect("add");
    f.index
        .retire_camera(&id, now)
        .expect("retire")
        .expect("it was there");
    let report =
        enforce(&f.store, &f.index, &f.policy(), now, &Roomy, f.dir.path()).expect("enforce");
    assert!(
        report.expired.is_empty(),
        "kept 90 days, not the default 30"
    );
    assert_eq!(f.ids(), vec![kept]);
    assert!(f.index.is_retired_camera(&id).expect("retired"));
    // Past 90 days it goes, and with its last recording the camera is forgotten.
    let report = enforce(
        &f.store,
        &f.index,
        &f.policy(),
        now + 51 * DAY,
        &Roomy,
        f.dir.path(),
    )
    .expect("enforce");
    assert_eq!(report.expired, vec![kept]);
    assert!(!f.index.is_retired_camera(&id).expect("retired"));
}

/// A thumbnail write that failed half-way (a full disk) leaves a partial file and an
/// event that records no thumbnail: removing the event removes the file too.
#[test]
fn an_event_takes_a_partly_written_thumbnail_it_does_not_record() {
    let f = fixture();
    let camera: CameraId = "door".parse().expect("name");
    let recording = f.recording("door", 0, 100);
    let event = EventId(43);
    let partial = f
        .dir
        .path()
        .join("data/thumbnails/door/000000000000002b.plt");
    std::fs::create_dir_all(partial.parent().expect("dir")).expect("mkdir");
    std::fs::write(&partial, b"PORCHLI").expect("a header cut short");
    f.index
        .put_event(&EventEntry {
            id: event,
            camera: camera.clone(),
            start_micros: 0,
            end_micros: 1_000_000,
            triggers: vec![Trigger::Motion],
            peak_score: 0.5,
            score_curve: vec![],
            has_thumbnail: false,
            recordings: vec![recording],
            open: false,
        })
        .expect("event");
    assert!(delete_event(&f.store, &f.index, event).expect("delete"));
    assert!(
        !partial.exists(),
        "the partial thumbnail went with its event"
    );
}
