//! Retention and deletion: recordings disappear on schedule, permanently.
//!
//! Deletion is crypto-shredding in a crash-safe order: the index entry is marked
//! `Deleting` with its copy of the wrapped key dropped and flushed; then the store
//! zeroes the file's key block, unlinks it and fsyncs the directory; then the entry is
//! removed. A crash anywhere in between leaves nothing readable, and start-up recovery
//! (`check::recover`) finishes the job. An event disappears with the last recording
//! holding it, taking its sealed thumbnail along.
//!
//! Policy ([`RetentionPolicy`]): a storage period per camera (default 30 days), and a
//! cap for the whole store (an optional byte limit, and a minimum of free space on the
//! data filesystem, default 10 %). When over the cap the oldest finished recordings go
//! first, across cameras. A recording still being written is never deleted.
//! The task runs at start-up, every `interval`, and at once when kicked (a recorder
//! that hit a full disk kicks it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::index::{Index, IndexError, RecordingState};
use crate::model::{CameraId, EventId, RecordingId};
use crate::store::{Store, StoreError};

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("recording {0} is still being written; stop its camera's recording first")]
    InProgress(RecordingId),
    #[error("event {0} is still being recorded")]
    EventInProgress(EventId),
    #[error("cannot measure free space on {path}: {source}")]
    DiskSpace {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How long recordings are kept and how much space they may use.
#[derive(Clone, Debug)]
pub struct RetentionPolicy {
    pub default_days: u32,
    /// The storage periods of the cameras in the configuration file. Cameras added
    /// in the web UI carry theirs in the index (read at each pass, so a change applies
    /// at the next pass); a configured one wins over an index entry of the same name.
    pub camera_days: HashMap<CameraId, u32>,
    /// Total bytes all recordings may use, if limited.
    pub max_bytes: Option<u64>,
    /// Free space to keep on the data filesystem, in percent of its size.
    pub min_free_percent: u8,
    pub interval: Duration,
}

impl RetentionPolicy {
    /// `camera`'s storage period: configured, else from `added` (the web UI's
    /// cameras), else the default.
    fn days(&self, added: &HashMap<CameraId, u32>, camera: &CameraId) -> u32 {
        self.camera_days
            .get(camera)
            .or_else(|| added.get(camera))
            .copied()
            .unwrap_or(self.default_days)
    }
}

/// Size and free space of a filesystem, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Space {
    pub total: u64,
    pub available: u64,
}

/// Where free space comes from: the real filesystem, or a test's numbers.
pub trait DiskSpace: Send + Sync {
    fn space(&self, path: &Path) -> std::io::Result<Space>;
}

/// `statvfs` of the data directory's filesystem.
pub struct FilesystemSpace;

impl DiskSpace for FilesystemSpace {
    fn space(&self, path: &Path) -> std::io::Result<Space> {
        let s = rustix::fs::statvfs(path)?;
        Ok(Space {
            total: s.f_blocks.saturating_mul(s.f_frsize),
            available: s.f_bavail.saturating_mul(s.f_frsize),
        })
    }
}

/// What one retention pass did.
#[derive(Debug, Default)]
pub struct RetentionReport {
    pub expired: Vec<RecordingId>,
    /// Deleted to get under `max_bytes` or above `min_free_percent`.
    pub for_space: Vec<RecordingId>,
    pub freed_bytes: u64,
    pub events_deleted: usize,
    /// Still over the cap with nothing finished left to delete.
    pub still_over: Option<String>,
}

impl RetentionReport {
    pub fn is_empty(&self) -> bool {
        self.expired.is_empty()
            && self.for_space.is_empty()
            && self.events_deleted == 0
            && self.still_over.is_none()
    }
}

/// Deletes one recording for good. Returns false if it did not exist.
pub fn delete_recording(
    store: &Store,
    index: &Index,
    id: RecordingId,
) -> Result<bool, RetentionError> {
    Ok(delete_recording_sized(store, index, id)?.is_some())
}

/// Like [`delete_recording`], returning the bytes freed.
fn delete_recording_sized(
    store: &Store,
    index: &Index,
    id: RecordingId,
) -> Result<Option<u64>, RetentionError> {
    let Some(mut entry) = index.get_recording(id)? else {
        return Ok(None);
    };
    if entry.state == RecordingState::Open {
        return Err(RetentionError::InProgress(id));
    }
    entry.state = RecordingState::Deleting;
    entry.wrapped_key.clear();
    index.put_recording(&entry)?;
    index.flush()?;
    store.shred(&entry.camera, id)?;
    index.remove_recording(id)?;
    tracing::info!(camera = %entry.camera, recording = %id, "recording {id} deleted");
    forget_recording_in_events(store, index, &entry.camera, id)?;
    Ok(Some(entry.bytes))
}

/// Drops a deleted recording from its events; an event left with no recording goes
/// too (its thumbnail shredded).
fn forget_recording_in_events(
    store: &Store,
    index: &Index,
    camera: &CameraId,
    id: RecordingId,
) -> Result<usize, RetentionError> {
    let mut deleted = 0;
    for mut event in index.events_of_recording(camera, id)? {
        event.recordings.retain(|r| *r != id);
        if event.recordings.is_empty() && !event.open {
            remove_event_entry(store, index, camera, event.id, event.has_thumbnail)?;
            deleted += 1;
        } else {
            index.put_event(&event)?;
        }
    }
    Ok(deleted)
}

fn remove_event_entry(
    store: &Store,
    index: &Index,
    camera: &CameraId,
    id: EventId,
    thumbnail: bool,
) -> Result<(), RetentionError> {
    if thumbnail {
        store.shred_thumbnail(camera, id)?;
    }
    index.remove_event(id)?;
    tracing::info!(camera = %camera, event = %id, "event {id} deleted");
    Ok(())
}

/// Deletes an event: its thumbnail and every recording holding it. In continuous
/// mode those recordings hold other footage too (whole roll-over files).
pub fn delete_event(store: &Store, index: &Index, id: EventId) -> Result<bool, RetentionError> {
    let Some(event) = index.get_event(id)? else {
        return Ok(false);
    };
    if event.open {
        return Err(RetentionError::EventInProgress(id));
    }
    for recording in &event.recordings {
        delete_recording(store, index, *recording)?;
    }
    if index.get_event(id)?.is_some() {
        remove_event_entry(store, index, &event.camera, id, event.has_thumbnail)?;
    }
    index.flush()?;
    Ok(true)
}

/// Deletes every finished recording and event of one camera; returns how many
/// recordings went. One still being written is left (it is finished on its own).
pub fn delete_camera(
    store: &Store,
    index: &Index,
    camera: &CameraId,
) -> Result<usize, RetentionError> {
    let mut deleted = 0;
    for entry in index.camera_recordings(camera, i64::MIN, i64::MAX)? {
        if entry.state != RecordingState::Open && delete_recording(store, index, entry.id)? {
            deleted += 1;
        }
    }
    for event in index.camera_events(camera, i64::MIN, i64::MAX)? {
        if !event.open {
            remove_event_entry(store, index, camera, event.id, event.has_thumbnail)?;
        }
    }
    index.flush()?;
    Ok(deleted)
}

/// Deletes every finished recording and event of every camera.
pub fn delete_everything(store: &Store, index: &Index) -> Result<usize, RetentionError> {
    let mut cameras: Vec<CameraId> = index
        .all_recordings()?
        .into_iter()
        .map(|e| e.camera)
        .collect();
    cameras.extend(index.all_events()?.into_iter().map(|e| e.camera));
    cameras.sort();
    cameras.dedup();
    let mut deleted = 0;
    for camera in &cameras {
        deleted += delete_camera(store, index, camera)?;
    }
    Ok(deleted)
}

/// One retention pass at time `now_micros`.
pub fn enforce(
    store: &Store,
    index: &Index,
    policy: &RetentionPolicy,
    now_micros: i64,
    disk: &dyn DiskSpace,
    data_dir: &Path,
) -> Result<RetentionReport, RetentionError> {
    let mut report = RetentionReport::default();
    let added: HashMap<CameraId, u32> = index
        .cameras()?
        .into_iter()
        .map(|c| (c.id, c.settings.storage_days))
        .collect();
    let mut finished: Vec<_> = index
        .all_recordings()?
        .into_iter()
        .filter(|e| e.state == RecordingState::Finished)
        .collect();
    finished.sort_by_key(|e| (e.start_micros, e.id));

    // By age.
    let mut kept = Vec::with_capacity(finished.len());
    for entry in finished {
        let cutoff = now_micros - i64::from(policy.days(&added, &entry.camera)) * MICROS_PER_DAY;
        if entry.end_micros < cutoff {
            if let Some(bytes) = delete_recording_sized(store, index, entry.id)? {
                report.freed_bytes += bytes;
                report.expired.push(entry.id);
            }
        } else {
            kept.push(entry);
        }
    }
    for event in index.all_events()? {
        let cutoff = now_micros - i64::from(policy.days(&added, &event.camera)) * MICROS_PER_DAY;
        if !event.open && event.end_micros < cutoff {
            remove_event_entry(store, index, &event.camera, event.id, event.has_thumbnail)?;
            report.events_deleted += 1;
        }
    }

    // By space, oldest first across cameras.
    let mut oldest = kept.into_iter();
    loop {
        let used: u64 = index.all_recordings()?.iter().map(|e| e.bytes).sum();
        let space = disk
            .space(data_dir)
            .map_err(|source| RetentionError::DiskSpace {
                path: data_dir.to_owned(),
                source,
            })?;
        let over_bytes = policy.max_bytes.filter(|&max| used > max);
        let low_space = space.available.saturating_mul(100)
            < space
                .total
                .saturating_mul(u64::from(policy.min_free_percent));
        if over_bytes.is_none() && !low_space {
            break;
        }
        let Some(entry) = oldest.next() else {
            report.still_over = Some(format!(
                "recordings use {used} bytes and {} of {} bytes are free, but nothing finished is left to delete",
                space.available, space.total
            ));
            break;
        };
        if let Some(bytes) = delete_recording_sized(store, index, entry.id)? {
            report.freed_bytes += bytes;
            report.for_space.push(entry.id);
        }
    }
    index.flush()?;
    Ok(report)
}

/// Runs retention at start-up, every `policy.interval` and whenever `kick` is
/// notified, until `shutdown`. Errors are logged, never fatal: a retention problem
/// must not stop recording.
pub async fn run(
    store: Arc<Store>,
    index: Index,
    policy: RetentionPolicy,
    clock: Arc<dyn Clock>,
    data_dir: PathBuf,
    kick: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (store2, index2, policy2, dir2, now) = (
            store.clone(),
            index.clone(),
            policy.clone(),
            data_dir.clone(),
            clock.now_micros(),
        );
        let pass = tokio::task::spawn_blocking(move || {
            enforce(&store2, &index2, &policy2, now, &FilesystemSpace, &dir2)
        })
        .await;
        match pass {
            Ok(Ok(report)) if !report.is_empty() => {
                if let Some(problem) = &report.still_over {
                    tracing::error!("retention: {problem}");
                }
                tracing::info!(
                    expired = report.expired.len(),
                    for_space = report.for_space.len(),
                    events = report.events_deleted,
                    freed_bytes = report.freed_bytes,
                    "retention deleted {} recording(s)",
                    report.expired.len() + report.for_space.len()
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("retention pass failed: {e}"),
            Err(e) => tracing::error!("retention pass panicked: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(policy.interval) => {}
            _ = kick.notified() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
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
        let report =
            enforce(&f.store, &f.index, &policy, now, &Roomy, f.dir.path()).expect("enforce");
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
        let report =
            enforce(&f.store, &f.index, &policy, now, &Roomy, f.dir.path()).expect("enforce");
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
        let report =
            enforce(&f.store, &f.index, &policy, now, &Roomy, f.dir.path()).expect("enforce");
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
}
