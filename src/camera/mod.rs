//! The camera registry: which cameras exist, what state each is in, and the hub each
//! one's frames are published on.
//!
//! The registry is the one place other modules (recorder, later web) learn about
//! cameras; it owns no sockets itself. Ingest tasks (`ingest.rs`, the only user of
//! `retina`) write a camera's state and publish its frames; readers subscribe, and take
//! frames at once through a forwarder (`forward.rs`) into a queue of their own, bounded
//! in frames and bytes, so that the hub never holds frames for a slow reader.

mod backoff;
pub(crate) mod forward;
pub mod guard;
pub mod ingest;
pub mod onvif_media;
mod timeline;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;

pub use backoff::Backoff;

use crate::config::CameraConfig;
use crate::model::{CameraId, Frame};

/// Frames kept for slow subscribers. Small on purpose: a slot holds its frame until
/// every subscriber has read it or it is overwritten (≈ 64 × 20 KB at 1080p/4 Mbit/s ≈
/// 1.3 MB, but 64 × 32 MiB from a hostile camera), and a subscriber that falls this
/// far behind is told it lagged rather than stalling the camera. Hence a subscriber
/// reads at once (the snapshot's wait for a keyframe does nothing else) or through
/// [`forward::forward`], which never lets frames wait here.
const HUB_CAPACITY: usize = 64;

/// A camera's connection state as other modules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Streaming,
    /// The camera refused the credentials; retried slowly.
    Unauthorized,
    /// Anything else: unreachable, stalled, malformed stream. The text is safe to show
    /// (it never contains credentials).
    Error(String),
}

impl ConnectionState {
    pub fn label(&self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Streaming => "streaming",
            ConnectionState::Unauthorized => "unauthorized",
            ConnectionState::Error(_) => "error",
        }
    }
}

/// State plus when it began and when the next retry is due.
#[derive(Clone, Debug)]
pub struct CameraStatus {
    pub state: ConnectionState,
    pub since_micros: i64,
    /// Consecutive failed attempts since the last good stream.
    pub failures: u32,
    /// Why recording is not happening although it should (a full disk, or motion
    /// detection that cannot analyse the stream, so no event is recorded), and since
    /// when; `None` when all is well. The recorder's problem comes first.
    pub recording_problem: Option<(String, i64)>,
}

/// Which of a camera's streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// Recorded and watched live.
    Main,
    /// Lower resolution, analysed for motion.
    Sub,
}

/// One registered camera: its configuration, live status and frame hubs.
pub struct CameraHandle {
    pub config: CameraConfig,
    status: RwLock<CameraStatus>,
    /// Set by the motion feed; shown as the recording problem when the recorder has
    /// none (kept apart so that neither clears the other's).
    motion_problem: RwLock<Option<(String, i64)>>,
    frames: broadcast::Sender<Arc<Frame>>,
    sub_frames: broadcast::Sender<Arc<Frame>>,
}

impl CameraHandle {
    fn new(config: CameraConfig, now_micros: i64) -> Self {
        let (frames, _) = broadcast::channel(HUB_CAPACITY);
        let (sub_frames, _) = broadcast::channel(HUB_CAPACITY);
        CameraHandle {
            config,
            status: RwLock::new(CameraStatus {
                state: ConnectionState::Connecting,
                since_micros: now_micros,
                failures: 0,
                recording_problem: None,
            }),
            motion_problem: RwLock::new(None),
            frames,
            sub_frames,
        }
    }

    pub fn id(&self) -> &CameraId {
        &self.config.id
    }

    pub fn status(&self) -> CameraStatus {
        let mut status = match self.status.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if status.recording_problem.is_none() {
            status.recording_problem = match self.motion_problem.read() {
                Ok(p) => p.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
        }
        status
    }

    /// Records a state change (the `since` time only moves when the state changes).
    pub fn set_state(&self, state: ConnectionState, failures: u32, now_micros: i64) {
        let mut s = match self.status.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if s.state != state {
            s.since_micros = now_micros;
            s.state = state;
        }
        s.failures = failures;
    }

    /// Shows (or clears) a recording problem, such as a full disk.
    pub fn set_recording_problem(&self, problem: Option<String>, now_micros: i64) {
        let mut s = match self.status.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        s.recording_problem = problem.map(|text| (text, now_micros));
    }

    /// Shows (or clears) a motion detection problem, such as a sub stream that cannot
    /// be decoded: in events mode the camera then records nothing.
    pub fn set_motion_problem(&self, problem: Option<String>, now_micros: i64) {
        let mut p = match self.motion_problem.write() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        *p = problem.map(|text| (text, now_micros));
    }

    /// Subscribes to this camera's main-stream frames from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.frames.subscribe()
    }

    /// Subscribes to the frames motion detection analyses: the sub stream when the
    /// camera has one, else the main stream.
    pub fn subscribe_analysis(&self) -> broadcast::Receiver<Arc<Frame>> {
        if self.config.sub_url.is_some() {
            self.sub_frames.subscribe()
        } else {
            self.frames.subscribe()
        }
    }

    pub(crate) fn publish(&self, stream: StreamKind, frame: Arc<Frame>) {
        // No subscriber (mode `off` and nobody watching) is normal, not an error.
        let _ = match stream {
            StreamKind::Main => self.frames.send(frame),
            StreamKind::Sub => self.sub_frames.send(frame),
        };
    }
}

/// Why a new camera may not take `id` while a removed camera of that name has kept
/// recordings (see `Index::keeps_recordings_of_removed_camera`), and the way out: the
/// dashboard links to them, and their page deletes them.
pub fn kept_recordings_refusal(id: &CameraId) -> String {
    format!(
        "recordings of a removed camera named {id} are kept; choose another name, or \
         delete them first (Recordings of removed cameras, on the dashboard)"
    )
}

/// All cameras, by id.
#[derive(Clone, Default)]
pub struct CameraRegistry {
    cameras: Arc<RwLock<BTreeMap<CameraId, Arc<CameraHandle>>>>,
}

impl CameraRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a camera (replacing one with the same id) and returns its handle.
    pub fn add(&self, config: CameraConfig, now_micros: i64) -> Arc<CameraHandle> {
        let handle = Arc::new(CameraHandle::new(config, now_micros));
        let mut map = match self.cameras.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.insert(handle.id().clone(), handle.clone());
        handle
    }

    /// Removes a camera (its tasks are stopped by whoever started them).
    pub fn remove(&self, id: &CameraId) -> Option<Arc<CameraHandle>> {
        let mut map = match self.cameras.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.remove(id)
    }

    pub fn get(&self, id: &CameraId) -> Option<Arc<CameraHandle>> {
        let map = match self.cameras.read() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<CameraHandle>> {
        let map = match self.cameras.read() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.values().cloned().collect()
    }
}
