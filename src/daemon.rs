//! `porchlight serve`: opens the store and index, finishes what a crash left half
//! done, starts one ingest task (and, unless the mode is `off`, one recorder) per
//! camera plus the retention task, and stops cleanly on SIGTERM or SIGINT, finishing
//! open recordings and events. With `[discovery] enabled = true` it also listens for
//! cameras announced over mDNS (`crate::discovery`).
//!
//! [`start`] returns a [`Running`] daemon so integration tests (and the web layer)
//! can drive it in-process: send a trigger, read the cameras' state, stop it.

mod master_key;
mod web_ui;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify};

use crate::camera::{ingest, CameraRegistry, StreamKind};
use crate::check;
use crate::clock::{Clock, SystemClock};
use crate::config::{CameraConfig, Config, RecordingConfig, RecordingMode};
use crate::discovery::Discovery;
use crate::index::{CameraEntry, Index, IndexError};
use crate::model::{CameraId, Trigger};
use crate::recorder::{self, motion_feed, EventNotice, Outlets, RecorderHandle, RecorderSender};
use crate::retention::{self, RetentionPolicy};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Check(#[from] check::CheckError),
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
    #[error("a camera named {0} already exists")]
    CameraExists(CameraId),
    #[error("the daemon is stopping")]
    Stopping,
    #[error("end-to-end encryption: {0}")]
    EndToEnd(#[from] crate::e2e::E2eError),
    /// No master key, but data only the lost key opens (see `master_key`).
    #[error(
        "cannot start: {missing}, but {} already holds {found}. Is the disk holding \
         key_dir {} mounted? Restore master.key from your backup (the whole key_dir, with \
         the e2e-tags-v1 marker beside it); a new key would open none of this, so none \
         was created",
        .data_dir.display(), .key_dir.display()
    )]
    MasterKeyLost {
        missing: String,
        data_dir: std::path::PathBuf,
        key_dir: std::path::PathBuf,
        found: String,
    },
}

pub use crate::recorder::TriggerError;

/// How long shutdown waits for recorders to finish their files.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// A started daemon.
pub struct Running {
    pub registry: CameraRegistry,
    pub store: Arc<Store>,
    pub index: Index,
    pub clock: Arc<dyn Clock>,
    /// Cameras announced on the LAN; `None` when discovery is off or could not start.
    pub discovery: Option<Discovery>,
    recorders: Recorders,
    starter: CameraStarter,
    /// Every recorder announces its events here (see [`Running::subscribe_events`]).
    events: broadcast::Sender<EventNotice>,
    stop_tx: watch::Sender<bool>,
}

/// Opens everything and starts the cameras, recorders and retention.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Running, DaemonError> {
    // The index first: whether a missing master key may be created depends on it.
    let index = Index::open(&Store::index_dir(&config.data_dir))?;
    let store = Arc::new(master_key::open_store(&config, &index)?);
    // Viewer keys live in files too: a lost index gets them back, and an index
    // from before the files existed gets its files.
    for done in crate::e2e::sync_saved_viewers(&index, &store)? {
        tracing::info!("start-up recovery: {done}");
    }
    // End-to-end mode: seal new recordings to the viewers' keys from the first one.
    crate::e2e::load(&index, &store)?;
    let report = check::recover(&store, &index)?;
    if !report.is_empty() {
        tracing::info!("start-up recovery: {report}");
    }
    log_a_clock_behind_the_recordings(&index, clock.as_ref());
    tracing::info!(
        data_dir = %config.data_dir.display(),
        key_id = %store.key_id(),
        cameras = config.cameras.len(),
        "porchlight {} serving",
        env!("CARGO_PKG_VERSION")
    );

    let cameras = configured_cameras_to_start(&config, &index)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let retention_kick = Arc::new(Notify::new());
    let policy = RetentionPolicy {
        default_days: 30,
        camera_days: cameras
            .iter()
            .map(|c| (c.id.clone(), c.storage_days))
            .collect(),
        max_bytes: config.retention.max_bytes,
        min_free_percent: config.retention.min_free_percent,
        interval: config.retention.interval,
    };
    tokio::spawn(retention::run(
        store.clone(),
        index.clone(),
        policy,
        clock.clone(),
        config.data_dir.clone(),
        retention_kick.clone(),
        stop_rx.clone(),
    ));

    let (events, _) = broadcast::channel(recorder::EVENT_NOTICES);
    let outlets = Outlets {
        retention_kick: retention_kick.clone(),
        events: events.clone(),
    };
    let starter = CameraStarter {
        registry: CameraRegistry::new(),
        store: store.clone(),
        index: index.clone(),
        recording: config.recording.clone(),
        clock: clock.clone(),
        outlets,
        stop_rx: stop_rx.clone(),
        recorders: Arc::default(),
        stops: Arc::default(),
    };
    for camera in cameras {
        starter.start_camera(camera)?;
    }
    start_added_cameras(&starter);
    // Discovery is a convenience: if mDNS cannot start (no interface, sandbox), the
    // cameras still record and the page says discovery is off.
    let discovery = if config.discovery.enabled {
        match Discovery::start(&config.discovery, clock.clone(), stop_rx.clone()) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!("discovery: {e}; cameras can still be added by URL");
                None
            }
        }
    } else {
        None
    };
    Ok(Running {
        registry: starter.registry.clone(),
        store,
        index,
        clock,
        discovery,
        recorders: starter.recorders.clone(),
        starter,
        events,
        stop_tx,
    })
}

/// The configured cameras but those named like a camera removed in the web UI whose
/// recordings were kept: started, such a camera would take them over (its storage
/// period would delete evidence kept for longer). It is skipped with an error, not
/// fatal: the other cameras record, and the web UI (where the kept recordings are
/// deleted) stays reachable. Left out of the storage periods too, so the removed
/// camera's period keeps applying to its recordings.
fn configured_cameras_to_start(
    config: &Config,
    index: &Index,
) -> Result<Vec<CameraConfig>, DaemonError> {
    let mut start = Vec::with_capacity(config.cameras.len());
    for camera in &config.cameras {
        if index.keeps_recordings_of_removed_camera(&camera.id)? {
            tracing::error!(
                camera = %camera.id,
                "camera {} in the configuration file is not started: {} (then restart)",
                camera.id,
                crate::camera::kept_recordings_refusal(&camera.id)
            );
            continue;
        }
        start.push(camera.clone());
    }
    Ok(start)
}

/// The recorders by camera; emptied when the daemon stops.
type Recorders = Arc<Mutex<BTreeMap<CameraId, RecorderHandle>>>;

/// Everything starting one camera needs: used for the configured cameras at start,
/// the cameras added from the web UI at start, and those added while running.
#[derive(Clone)]
pub struct CameraStarter {
    registry: CameraRegistry,
    store: Arc<Store>,
    index: Index,
    recording: RecordingConfig,
    clock: Arc<dyn Clock>,
    outlets: Outlets,
    stop_rx: watch::Receiver<bool>,
    recorders: Recorders,
    /// Each camera's own stop switch (turned on by the daemon's, or by removal).
    stops: Arc<Mutex<BTreeMap<CameraId, watch::Sender<bool>>>>,
}

impl CameraStarter {
    /// Registers the camera and starts its ingest task(s) and, unless its mode is
    /// `off`, its recorder and motion feed. Refuses an id already running.
    pub fn start_camera(&self, camera: CameraConfig) -> Result<(), DaemonError> {
        if self.registry.get(&camera.id).is_some() {
            return Err(DaemonError::CameraExists(camera.id));
        }
        if *self.stop_rx.borrow() {
            return Err(DaemonError::Stopping);
        }
        let (stop_tx, stop) = watch::channel(false);
        let mut daemon_stop = self.stop_rx.clone();
        let forward = stop_tx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = daemon_stop.wait_for(|s| *s) => { let _ = forward.send(true); }
                () = forward.closed() => {}
            }
        });
        self.stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(camera.id.clone(), stop_tx);
        let handle = self.registry.add(camera.clone(), self.clock.now_micros());
        if camera.mode == RecordingMode::Off {
            tracing::info!(camera = %camera.id, "camera {}: mode off, live view only", camera.id);
        } else {
            let recorder = recorder::spawn(
                handle.clone(),
                self.store.clone(),
                self.index.clone(),
                self.recording.clone(),
                self.clock.clone(),
                self.outlets.clone(),
                stop.clone(),
            )?;
            if let (Some(settings), Some(sender)) = (&camera.motion, recorder.sender()) {
                motion_feed::spawn(handle.clone(), settings.clone(), sender, stop.clone())?;
            }
            lock(&self.recorders).insert(camera.id.clone(), recorder);
        }
        if camera.sub_url.is_some() {
            tokio::spawn(ingest::run(
                handle.clone(),
                StreamKind::Sub,
                self.clock.clone(),
                stop.clone(),
            ));
        }
        tokio::spawn(ingest::run(
            handle,
            StreamKind::Main,
            self.clock.clone(),
            stop,
        ));
        Ok(())
    }

    /// Stops a camera's ingest, motion feed and recorder (finishing its open
    /// recording) and forgets it. Its recordings stay; `false` if it was not running.
    pub async fn stop_camera(&self, id: &CameraId) -> bool {
        let stop = self
            .stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        let Some(stop) = stop else {
            return false;
        };
        let _ = stop.send(true);
        self.registry.remove(id);
        let recorder = lock(&self.recorders).remove(id);
        if let Some(recorder) = recorder {
            let joined = tokio::task::spawn_blocking(move || recorder.join());
            if tokio::time::timeout(SHUTDOWN_GRACE, joined).await.is_err() {
                tracing::error!(camera = %id, "camera {id}: the recorder did not finish in time; start-up recovery will finish its file");
            }
        }
        tracing::info!(camera = %id, "camera {id} stopped");
        true
    }

    /// A camera added from the web UI: its credentials opened from their sealed form.
    fn added_camera(&self, entry: &CameraEntry) -> Result<CameraConfig, String> {
        let url = crate::config::check_rtsp_url(&entry.url)?;
        let sub_url = entry
            .sub_url
            .as_deref()
            .map(crate::config::check_rtsp_url)
            .transpose()?;
        let (user_purpose, password_purpose) = CameraEntry::purposes(&entry.id);
        let open = |sealed: &Option<String>, purpose: &str| -> Result<Option<String>, String> {
            match sealed {
                None => Ok(None),
                Some(hex) => {
                    let clear = self
                        .store
                        .open_secret(purpose, hex)
                        .map_err(|e| e.to_string())?;
                    String::from_utf8(clear.to_vec())
                        .map(Some)
                        .map_err(|_| "sealed credentials are not text".to_owned())
                }
            }
        };
        Ok(CameraConfig::adopted(
            entry.id.clone(),
            url,
            open(&entry.sealed_username, &user_purpose)?,
            open(&entry.sealed_password, &password_purpose)?,
            entry.mode,
        )
        .with_sub_url(sub_url)
        .with_settings(&entry.settings))
    }
}

/// Starts the cameras added from the web UI. One that cannot start (its name now in
/// the config file, credentials that no longer open) is logged and skipped: the
/// others still record.
fn start_added_cameras(starter: &CameraStarter) {
    let entries = match starter.index.cameras() {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!("cannot read the cameras added from the web UI: {e}");
            return;
        }
    };
    for entry in entries {
        let started = starter
            .added_camera(&entry)
            .map_err(|e| e.to_string())
            .and_then(|camera| starter.start_camera(camera).map_err(|e| e.to_string()));
        if let Err(e) = started {
            tracing::error!(camera = %entry.id, "camera {} (added in the web UI) not started: {e}", entry.id);
        }
    }
}

fn lock(recorders: &Recorders) -> std::sync::MutexGuard<'_, BTreeMap<CameraId, RecorderHandle>> {
    recorders.lock().unwrap_or_else(|p| p.into_inner())
}

impl Running {
    /// The external trigger (doorbell, integration): record `duration` from now plus
    /// the camera's pre- and post-roll.
    pub fn trigger(
        &self,
        camera: &CameraId,
        kind: Trigger,
        duration: Duration,
    ) -> Result<(), TriggerError> {
        if self.registry.get(camera).is_none() {
            return Err(TriggerError::NoSuchCamera(camera.clone()));
        }
        let recorders = lock(&self.recorders);
        let recorder = recorders
            .get(camera)
            .ok_or_else(|| TriggerError::NotRecording(camera.clone()))?;
        if recorder.trigger(kind, duration) {
            Ok(())
        } else {
            Err(TriggerError::Busy(camera.clone()))
        }
    }

    /// News of every camera's events from now on (started and finished), as the
    /// index records them. A receiver that falls more than
    /// [`recorder::EVENT_NOTICES`] behind loses the oldest.
    pub fn subscribe_events(&self) -> broadcast::Receiver<EventNotice> {
        self.events.subscribe()
    }

    /// The sender of a camera's recorder (live view, triggers); `None` for a camera
    /// in mode `off`, an unknown one, or once the daemon is stopping.
    pub fn recorder_sender(&self, camera: &CameraId) -> Option<RecorderSender> {
        lock(&self.recorders).get(camera)?.sender()
    }

    /// Starts a camera while running (added from the web UI), as [`start`] does.
    pub fn add_camera(&self, camera: CameraConfig) -> Result<(), DaemonError> {
        self.starter.start_camera(camera)
    }

    /// What starts cameras, for the web UI's hook.
    pub fn starter(&self) -> CameraStarter {
        self.starter.clone()
    }

    /// Stops cameras, finishes open recordings and events, flushes the index.
    pub async fn stop(self) -> Result<(), DaemonError> {
        tracing::info!("stopping: finishing open recordings");
        let _ = self.stop_tx.send(true);
        let recorders = std::mem::take(&mut *lock(&self.recorders));
        let joined = tokio::task::spawn_blocking(move || {
            for (_, r) in recorders {
                r.join();
            }
        });
        if tokio::time::timeout(SHUTDOWN_GRACE, joined).await.is_err() {
            tracing::error!(
                "recorders did not finish within {} s; start-up recovery will finish their files",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        self.index.flush()?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// A Raspberry Pi has no real-time clock: started without network time, its clock
/// can be behind recordings already made. New recordings then sort before older ones
/// and retention deletes by wrong times, so this is said loudly at every start (the
/// Control Centre says it too, for as long as it lasts).
fn log_a_clock_behind_the_recordings(index: &Index, clock: &dyn Clock) {
    let newest = match index.all_recordings() {
        Ok(all) => all.iter().map(|r| r.start_micros).max(),
        Err(e) => {
            tracing::warn!("could not compare the clock with the recordings: {e}");
            return;
        }
    };
    if let Some(newest) = newest
        .filter(|&n| crate::clock::behind_newest_recording(clock.now_micros(), Some(n)).is_some())
    {
        tracing::error!("{}", crate::clock::behind_warning(newest));
    }
}

/// Runs the daemon (recording and the web UI) until a termination signal arrives,
/// telling systemd (when it started us) when it is ready (start-up recovery done,
/// cameras and web UI started), that it is alive, and when it is stopping.
pub async fn serve(config: Config) -> Result<(), DaemonError> {
    // Before anything else: a SIGTERM that arrives during start-up (recovery, the
    // web UI's first certificate) then stops the daemon cleanly once it is up, rather
    // than killing it with recordings open.
    let mut signals = Signals::install()?;
    let running = start(config.clone(), Arc::new(SystemClock)).await?;
    // The configured cameras and those added in the web UI.
    let cameras = running.registry.all().len();
    let web = start_web(&config, &running).await;
    let systemd = Arc::new(crate::notify::Notifier::from_env());
    systemd.ready(&format!("serving {cameras} camera(s)"));
    systemd.clone().spawn_watchdog();
    while signals.next().await == Received::Reload {
        match &web {
            Some(web) => web.reload_certificate(),
            None => tracing::warn!(
                "SIGHUP: the web UI is not running (it failed to start, see above), so there \
                 is no certificate to reload; restart the daemon to start it"
            ),
        }
    }
    systemd.stopping();
    let stopped = running.stop().await;
    if let Some(web) = web {
        let _ = tokio::time::timeout(Duration::from_secs(3), web.join()).await;
    }
    stopped
}

pub use web_ui::start_web;

/// SIGTERM and SIGINT (stop) and SIGHUP (reload the HTTPS certificate), caught from
/// the moment they are installed: a SIGHUP during start-up, or while the web UI is
/// not running, must not kill the daemon (its default action), since systemd would
/// take that for a clean exit and not restart it.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// What [`Signals::next`] received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Received {
    Stop,
    Reload,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.term.recv() => Received::Stop,
            _ = self.int.recv() => Received::Stop,
            _ = self.hup.recv() => Received::Reload,
        }
    }
}
