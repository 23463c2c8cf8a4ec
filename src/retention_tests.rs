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
        let (mut entry, writer) = self.open_recording(camera, start, size);
        entry.end_micros = start + 1_000_000;
        entry.frames = 10;
        entry.bytes = writer.finish().expect("finish").file_len;
        entry.state = RecordingState::Finished;
        self.index.put_recording(&entry).expect("index");
        entry.id
    }

    /// A recording still being written: `size` bytes sealed and written to its file
    /// (not finished), its entry open with 0 bytes, as the recorder leaves it until
    /// it finishes. Keep the writer while the file should stay open.
    fn open_recording(
        &self,
        camera: &str,
        start: i64,
        size: usize,
    ) -> (RecordingEntry, crate::store::RecordingWriter) {
        let camera: CameraId = camera.parse().expect("name");
        let new = NewRecording {
            id: RecordingId::random(),
            camera: camera.clone(),
            start_micros: start,
            trigger: Trigger::Continuous,
        };
        let (mut writer, wrapped_key) = self.store.create_recording(&new).expect("create");
        writer.write_all(&vec![7u8; size]).expect("write");
        writer.flush().expect("flush");
        let entry = RecordingEntry {
            id: new.id,
            camera,
            start_micros: start,
            end_micros: start,
            frames: 0,
            bytes: 0,
            trigger: Trigger::Continuous,
            wrapped_key,
            state: RecordingState::Open,
            durable_len: None,
        };
        self.index.put_recording(&entry).expect("index");
        (entry, writer)
    }

    /// One pass at `now` with a byte cap of `max_bytes`.
    fn enforce_capped(&self, now: i64, max_bytes: u64) -> RetentionReport {
        let mut policy = self.policy();
        policy.max_bytes = Some(max_bytes);
        enforce(
            &self.store,
            &self.index,
            &policy,
            now,
            &Roomy,
            self.dir.path(),
        )
        .expect("enforce")
    }

    /// A share link's copy of recording `id` (link `link`); returns its size.
    fn share(&self, camera: &str, id: RecordingId, link: u64) -> u64 {
        let key = crate::store::crypto::MasterKey::for_share_link(
            &[5u8; crate::store::crypto::SHARE_SECRET_LEN],
        );
        self.store
            .copy_for_share(&camera.parse().expect("name"), id, link, &key)
            .expect("share")
    }

    /// A closed event of `camera` at `start` (1 s) holding `recording`, with a
    /// sealed thumbnail of `size` bytes; returns the thumbnail file's size.
    fn event_with_thumbnail(
        &self,
        camera: &str,
        event: EventId,
        (recording, start): (RecordingId, i64),
        size: usize,
    ) -> u64 {
        let camera: CameraId = camera.parse().expect("name");
        self.store
            .write_thumbnail(&camera, event, start, &vec![0xffu8; size])
            .expect("thumbnail");
        self.index
            .put_event(&EventEntry {
                id: event,
                camera: camera.clone(),
                start_micros: start,
                end_micros: start + 1_000_000,
                triggers: vec![Trigger::Motion],
                peak_score: 0.5,
                score_curve: vec![],
                has_thumbnail: true,
                recordings: vec![recording],
                open: false,
            })
            .expect("event");
        self.store.thumbnail_len(&camera, event).expect("stat")
    }

    fn file_len(&self, camera: &str, id: RecordingId) -> u64 {
        std::fs::metadata(self.path(camera, id))
            .expect("stat")
            .len()
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

    /// One pass at `now` keeping 10 % free on a disk whose free percentage is
    /// `free(recordings listed)`.
    fn enforce_low_space(
        &self,
        now: i64,
        free: impl Fn(u64) -> u64 + Send + Sync,
    ) -> Result<RetentionReport, RetentionError> {
        let mut policy = self.policy();
        policy.min_free_percent = 10;
        let disk = FreeByRecordings(&self.index, free);
        enforce(
            &self.store,
            &self.index,
            &policy,
            now,
            &disk,
            self.dir.path(),
        )
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

/// A disk of 100 units whose free space depends on how many recordings the index
/// still lists.
struct FreeByRecordings<'a, F>(&'a Index, F);
impl<F: Fn(u64) -> u64 + Send + Sync> DiskSpace for FreeByRecordings<'_, F> {
    fn space(&self, _: &Path) -> std::io::Result<Space> {
        let n = self.0.all_recordings().map(|v| v.len()).unwrap_or(0) as u64;
        Ok(Space {
            total: 100,
            available: (self.1)(n),
        })
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
    let report = f.enforce_capped(now, 25_000);
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
    // Frees 5 % per remaining finished recording deleted: starts 2 % free.
    let report = f
        .enforce_low_space(now, |recordings| 12 - 5 * recordings)
        .expect("enforce");
    assert_eq!(report.for_space, vec![a]);
    assert_eq!(f.ids(), vec![b], "the open recording survives");
    assert!(
        report.still_over.is_some(),
        "still short of space, and it says so"
    );
}

/// A store that cannot be measured (here `thumbnails/` a link to itself: ELOOP, as an
/// EIO from a failing card would be) must not stop the pass: the oldest recording
/// still goes for space, by the index's figures.
#[test]
fn a_store_that_cannot_be_measured_still_frees_space() {
    let f = fixture();
    let now = 100 * DAY;
    let a = f.recording("door", now - 50_000_000, 100);
    let b = f.recording("door", now - 40_000_000, 100);
    let thumbnails = f.dir.path().join("data/thumbnails");
    let _ = std::fs::remove_dir_all(&thumbnails);
    std::os::unix::fs::symlink(&thumbnails, &thumbnails).expect("link loop");
    // 2 % free until one recording is gone.
    let report = f
        .enforce_low_space(now, |recordings| if recordings >= 2 { 2 } else { 50 })
        .expect("the pass goes on without the store's figures");
    assert_eq!(report.for_space, vec![a]);
    assert_eq!(f.ids(), vec![b]);
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

/// A recording being written has 0 bytes in its entry until it finishes; its
/// file's size on disk counts against the cap all the same.
#[test]
fn an_open_recording_counts_against_the_byte_cap_by_its_size_on_disk() {
    let f = fixture();
    let now = 100 * DAY;
    let a = f.recording("door", now - 50_000_000, 10_000);
    let b = f.recording("yard", now - 40_000_000, 10_000);
    let (open, _writer) = f.open_recording("door", now - 1_000_000, 10_000);
    let open = open.id;
    let open_len = f.file_len("door", open);
    assert!(
        open_len > 10_000,
        "the open file holds its bytes: {open_len}"
    );
    let report = f.enforce_capped(now, 25_000);
    assert_eq!(report.for_space, vec![a], "≈30 kB stored, the oldest goes");
    assert_eq!(f.ids().len(), 2);
    assert!(f.ids().contains(&b) && f.ids().contains(&open));
    assert!(report.still_over.is_none());
}

/// A share copy is the owner's and stays; it counts, so an older recording makes
/// room for it.
#[test]
fn a_share_copy_counts_against_the_byte_cap_and_is_kept() {
    let f = fixture();
    let now = 100 * DAY;
    let a = f.recording("door", now - 50_000_000, 10_000);
    let b = f.recording("door", now - 40_000_000, 10_000);
    assert!(f.share("door", b, 1) > 10_000);
    let report = f.enforce_capped(now, 25_000);
    assert_eq!(report.for_space, vec![a]);
    assert_eq!(f.ids(), vec![b]);
    assert!(f.store.share_path(1).exists(), "the share copy stays");
    assert!(report.still_over.is_none());
}

/// Thumbnails count, and deleting a recording frees its event's thumbnail too: the
/// pass stops as soon as that is enough, without measuring everything again.
#[test]
fn thumbnails_count_against_the_byte_cap_and_go_with_their_events() {
    let f = fixture();
    let now = 100 * DAY;
    let (start_a, start_c) = (now - 50_000_000, now - 30_000_000);
    let a = f.recording("door", start_a, 5_000);
    let b = f.recording("door", now - 40_000_000, 5_000);
    let c = f.recording("door", start_c, 5_000);
    let thumb_a = f.event_with_thumbnail("door", EventId(1), (a, start_a), 10_000);
    let thumb_c = f.event_with_thumbnail("door", EventId(3), (c, start_c), 10_000);
    let (len_a, len_b, len_c) = (
        f.file_len("door", a),
        f.file_len("door", b),
        f.file_len("door", c),
    );
    assert!(thumb_a > len_a, "each thumbnail is bigger than a recording");
    let before = usage(&f.store, &f.index).expect("usage");
    assert_eq!(
        before,
        Usage {
            finished: len_a + len_b + len_c,
            open: 0,
            shares: 0,
            thumbnails: thumb_a + thumb_c,
        }
    );
    // Room for everything but `a` and its thumbnail: the recordings alone fit.
    let report = f.enforce_capped(now, len_b + len_c + thumb_c + 100);
    assert_eq!(report.for_space, vec![a], "a's thumbnail went with it");
    assert_eq!(report.freed_bytes, len_a + thumb_a);
    assert_eq!(f.ids(), vec![b, c]);
    let door: CameraId = "door".parse().expect("name");
    assert_eq!(f.store.thumbnail_len(&door, EventId(1)).expect("stat"), 0);
    assert_eq!(
        f.store.thumbnail_len(&door, EventId(3)).expect("stat"),
        thumb_c
    );
    assert!(report.still_over.is_none());
}

/// Over the cap with only what retention may not delete left (a recording being
/// written, a share copy): it says so, with the figures by kind.
#[test]
fn still_over_names_the_share_copies_and_the_open_recording_left() {
    let f = fixture();
    let now = 100 * DAY;
    let a = f.recording("door", now - 50_000_000, 10_000);
    let share_len = f.share("door", a, 1);
    let (open, _writer) = f.open_recording("door", now - 1_000_000, 10_000);
    let open = open.id;
    let open_len = f.file_len("door", open);
    let report = f.enforce_capped(now, 1_000);
    assert_eq!(report.for_space, vec![a]);
    assert_eq!(f.ids(), vec![open]);
    assert!(f.store.share_path(1).exists());
    let problem = report
        .still_over
        .expect("still over the cap, and it says so");
    for figure in [
        format!("{} bytes stored", share_len + open_len),
        "finished recordings 0,".to_owned(),
        format!("recordings being written {open_len},"),
        format!("share copies {share_len},"),
        "thumbnails 0".to_owned(),
        "a cap of 1000 bytes".to_owned(),
        "nothing finished is left to delete".to_owned(),
        "share copies stay until their links are removed".to_owned(),
    ] {
        assert!(problem.contains(&figure), "{figure:?} in {problem:?}");
    }
}
