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
//! The byte cap counts what the store keeps under the data directory ([`usage`]):
//! recordings (one being written by its size on disk so far), share copies and
//! thumbnails. Share copies are the owner's explicit shares and are never deleted
//! here; they count, so older recordings make room for them.
//! The task runs at start-up, every `interval`, and at once when kicked (a recorder
//! that hit a full disk kicks it).

use std::collections::{HashMap, HashSet};
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
    /// Total bytes the store may use, if limited: recordings, share copies and
    /// thumbnails ([`Usage`]).
    pub max_bytes: Option<u64>,
    /// Free space to keep on the data filesystem, in percent of its size.
    pub min_free_percent: u8,
    pub interval: Duration,
}

impl RetentionPolicy {
    /// `camera`'s storage period: configured, else from `added` (the web UI's
    /// cameras, and those removed with their recordings kept), else the default.
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

/// What the store keeps under the data directory, as counted against
/// [`RetentionPolicy::max_bytes`], in bytes. The sled index is left out: it is
/// not footage, deleting recordings does not shrink its files within a pass (sled
/// compacts when it will), and `min_free_percent` watches the filesystem as a whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Finished recordings (and ones being deleted), by their index entries'
    /// sizes: the recorder, recovery and migration all store the file's length
    /// there, so no `stat` per recording is needed at every pass.
    pub finished: u64,
    /// Recordings still being written, by their files' size now (their entries
    /// say 0 until they are finished).
    pub open: u64,
    /// Share links' copies, which retention never deletes.
    pub shares: u64,
    /// Event thumbnails.
    pub thumbnails: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.finished
            .saturating_add(self.open)
            .saturating_add(self.shares)
            .saturating_add(self.thumbnails)
    }

    /// Subtracts what one deletion freed.
    fn free(&mut self, freed: Freed) {
        self.finished = self.finished.saturating_sub(freed.recording);
        self.thumbnails = self.thumbnails.saturating_sub(freed.thumbnails);
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes stored: finished recordings {}, recordings being written {}, share copies {}, thumbnails {}",
            self.total(),
            self.finished,
            self.open,
            self.shares,
            self.thumbnails
        )
    }
}

/// Measures what the store keeps now: the index's recordings (a `stat` for each
/// one still open) and a `stat` per thumbnail and share copy.
pub fn usage(store: &Store, index: &Index) -> Result<Usage, RetentionError> {
    let mut usage = Usage {
        shares: store.share_copies_bytes()?,
        thumbnails: store.thumbnails_bytes()?,
        ..Usage::default()
    };
    for entry in index.all_recordings()? {
        if entry.state == RecordingState::Open {
            let len = store.recording_file_len(&entry.camera, entry.id)?;
            usage.open = usage.open.saturating_add(len);
        } else {
            usage.finished = usage.finished.saturating_add(entry.bytes);
        }
    }
    Ok(usage)
}

/// The usage the space pass goes by. A store that cannot be measured (EIO under
/// `thumbnails/` on a failing SD card, say) must not stop the pass, or
/// `min_free_percent` would stop freeing space just when the disk is in trouble: then
/// the index's finished recordings alone, and a warning.
fn usage_or_index_only(store: &Store, index: &Index) -> Result<Usage, RetentionError> {
    match usage(store, index) {
        Ok(usage) => Ok(usage),
        Err(RetentionError::Store(e)) => {
            tracing::warn!(
                "retention: cannot measure the store ({e}); going by the index's finished recordings alone"
            );
            let finished = index
                .all_recordings()?
                .iter()
                .filter(|e| e.state != RecordingState::Open)
                .map(|e| e.bytes)
                .fold(0u64, u64::saturating_add);
            Ok(Usage {
                finished,
                ..Usage::default()
            })
        }
        Err(e) => Err(e),
    }
}

/// What deleting one recording freed: its file and the thumbnails of the events
/// that went with it.
#[derive(Clone, Copy, Debug, Default)]
struct Freed {
    recording: u64,
    thumbnails: u64,
}

/// What one retention pass did.
#[derive(Debug, Default)]
pub struct RetentionReport {
    pub expired: Vec<RecordingId>,
    /// Deleted to get under `max_bytes` or above `min_free_percent`.
    pub for_space: Vec<RecordingId>,
    /// Recordings' and their events' thumbnails' bytes deleted.
    pub freed_bytes: u64,
    pub events_deleted: usize,
    /// Still over the cap with nothing finished left to delete: what is left, by
    /// kind (see [`Usage`]'s `Display`), and the free space.
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

/// Like [`delete_recording`], returning what it freed.
fn delete_recording_sized(
    store: &Store,
    index: &Index,
    id: RecordingId,
) -> Result<Option<Freed>, RetentionError> {
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
    // Its events first: a crash before the entry goes leaves the deletion to be
    // finished at the next start, never an event listing a recording that is gone.
    let thumbnails = forget_recording_in_events(store, index, &entry.camera, id)?;
    index.remove_recording(id)?;
    tracing::info!(camera = %entry.camera, recording = %id, "recording {id} deleted");
    Ok(Some(Freed {
        recording: entry.bytes,
        thumbnails,
    }))
}

/// Drops a deleted recording from its events; an event left with no recording goes
/// too (its thumbnail shredded). Returns the thumbnails' bytes freed.
fn forget_recording_in_events(
    store: &Store,
    index: &Index,
    camera: &CameraId,
    id: RecordingId,
) -> Result<u64, RetentionError> {
    let mut freed = 0;
    for mut event in index.events_of_recording(camera, id)? {
        event.recordings.retain(|r| *r != id);
        if event.recordings.is_empty() && !event.open {
            freed += remove_event_entry(store, index, camera, event.id)?;
        } else {
            index.put_event(&event)?;
        }
    }
    Ok(freed)
}

/// Removes an event and shreds its thumbnail, also one its entry does not record (a
/// write that failed half-way leaves a partial file behind). Returns the
/// thumbnail's size (0 if it cannot be measured: that only makes the byte cap's
/// count high until the next pass, never blocks a deletion).
fn remove_event_entry(
    store: &Store,
    index: &Index,
    camera: &CameraId,
    id: EventId,
) -> Result<u64, RetentionError> {
    let len = store.thumbnail_len(camera, id).unwrap_or_else(|e| {
        tracing::warn!(camera = %camera, event = %id, "cannot measure a thumbnail: {e}");
        0
    });
    store.shred_thumbnail(camera, id)?;
    index.remove_event(id)?;
    tracing::info!(camera = %camera, event = %id, "event {id} deleted");
    Ok(len)
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
    // All or nothing: in continuous mode an event can list the roll-over file still
    // being written, and finding that after shredding the others would leave the
    // event half deleted.
    for recording in &event.recordings {
        if let Some(entry) = index.get_recording(*recording)? {
            if entry.state == RecordingState::Open {
                return Err(RetentionError::InProgress(*recording));
            }
        }
    }
    for recording in &event.recordings {
        delete_recording(store, index, *recording)?;
    }
    if index.get_event(id)?.is_some() {
        remove_event_entry(store, index, &event.camera, id)?;
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
            remove_event_entry(store, index, camera, event.id)?;
        }
    }
    forget_emptied_retired_cameras(index)?;
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
    // A camera removed with its recordings kept leaves its period for them; one of
    // the same name added again since wins.
    let mut added: HashMap<CameraId, u32> = index.retired_cameras()?.into_iter().collect();
    added.extend(
        index
            .cameras()?
            .into_iter()
            .map(|c| (c.id, c.settings.storage_days)),
    );
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
            if let Some(freed) = delete_recording_sized(store, index, entry.id)? {
                report.freed_bytes += freed.recording + freed.thumbnails;
                report.expired.push(entry.id);
            }
        } else {
            kept.push(entry);
        }
    }
    for event in index.all_events()? {
        let cutoff = now_micros - i64::from(policy.days(&added, &event.camera)) * MICROS_PER_DAY;
        if !event.open && event.end_micros < cutoff {
            report.freed_bytes += remove_event_entry(store, index, &event.camera, event.id)?;
            report.events_deleted += 1;
        }
    }

    // By space, oldest first across cameras. Measured once, then each deletion's
    // bytes are subtracted: no rescan of the index or the disk per deletion.
    let mut used = usage_or_index_only(store, index)?;
    let mut oldest = kept.into_iter();
    loop {
        let space = disk
            .space(data_dir)
            .map_err(|source| RetentionError::DiskSpace {
                path: data_dir.to_owned(),
                source,
            })?;
        let over_bytes = policy.max_bytes.filter(|&max| used.total() > max);
        let low_space = space.available.saturating_mul(100)
            < space
                .total
                .saturating_mul(u64::from(policy.min_free_percent));
        if over_bytes.is_none() && !low_space {
            break;
        }
        let Some(entry) = oldest.next() else {
            let cap = policy.max_bytes.map_or_else(
                || "no cap".to_owned(),
                |max| format!("a cap of {max} bytes"),
            );
            let shares = if used.shares > 0 {
                " (share copies stay until their links are removed)"
            } else {
                ""
            };
            report.still_over = Some(format!(
                "{used} ({cap}); {} of {} bytes are free on the disk, but nothing finished is left to delete{shares}",
                space.available, space.total
            ));
            break;
        };
        match delete_recording_sized(store, index, entry.id)? {
            Some(freed) => {
                used.free(freed);
                report.freed_bytes += freed.recording + freed.thumbnails;
                report.for_space.push(entry.id);
            }
            // Deleted meanwhile (from the web UI): measure again rather than guess
            // whether the count had it.
            None => used = usage_or_index_only(store, index)?,
        }
    }
    forget_emptied_retired_cameras(index)?;
    index.flush()?;
    Ok(report)
}

/// Forgets the cameras removed with their recordings kept once none is left.
fn forget_emptied_retired_cameras(index: &Index) -> Result<(), RetentionError> {
    let retired = index.retired_cameras()?;
    if retired.is_empty() {
        return Ok(());
    }
    let recorded: HashSet<CameraId> = index
        .all_recordings()?
        .into_iter()
        .map(|e| e.camera)
        .collect();
    for (camera, _) in retired {
        if !recorded.contains(&camera) {
            index.forget_retired_camera(&camera)?;
        }
    }
    Ok(())
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
#[path = "retention_tests.rs"]
mod tests;
