//! Starting the web UI next to the recorders, and the live-view hook that lets an open
//! live view keep a "live view" recording going for cameras in `events` mode.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::camera::CameraRegistry;
use crate::clock::Clock;
use crate::config::{Config, RecordingMode};
use crate::index::Index;
use crate::model::{CameraId, Trigger};
use crate::recorder::RecorderHandle;
use crate::store::Store;
use crate::web;

/// The recorders by camera; the daemon joins them at shutdown.
pub type Recorders = Arc<Mutex<BTreeMap<CameraId, RecorderHandle>>>;

/// How long one live-view trigger keeps recording; the web UI re-triggers every
/// `web::live::RETRIGGER` (5 s) while the view is open, so recording stops ~15 s after
/// the last viewer leaves.
const LIVE_VIEW_RECORDING: Duration = Duration::from_secs(15);

/// Starts the web UI. A failure (port taken, bad certificate) is logged and recording
/// goes on without it: the cameras matter more than the UI.
pub async fn start(
    config: &Config,
    registry: &CameraRegistry,
    store: &Arc<Store>,
    index: &Index,
    clock: &Arc<dyn Clock>,
    recorders: &Recorders,
    shutdown: watch::Receiver<bool>,
) -> Option<web::Running> {
    let modes: BTreeMap<CameraId, RecordingMode> = config
        .cameras
        .iter()
        .map(|c| (c.id.clone(), c.mode))
        .collect();
    let recorders = recorders.clone();
    let live_view: web::LiveViewHook = Arc::new(move |camera: &CameraId| {
        if modes.get(camera) != Some(&RecordingMode::Events) {
            return;
        }
        let recorders = recorders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = recorders.get(camera) {
            if !r.trigger(Trigger::LiveView, LIVE_VIEW_RECORDING) {
                tracing::warn!(camera = %camera, "live view could not trigger the recorder (busy)");
            }
        }
    });
    let services = web::Services {
        registry: registry.clone(),
        store: store.clone(),
        index: index.clone(),
        clock: clock.clone(),
        live_view,
    };
    match web::start(services, config, shutdown).await {
        Ok(running) => Some(running),
        Err(e) => {
            tracing::error!("{e}; recording continues without the web UI");
            None
        }
    }
}
