//! Starting the web UI next to the recorders; the live-view hook that lets an open
//! live view keep a "live view" recording going for cameras in `events` mode; and the
//! trigger hook behind the API's doorbell route.

use std::sync::Arc;
use std::time::Duration;

use super::{Running, TriggerError};
use crate::config::{Config, RecordingMode};
use crate::model::{CameraId, Trigger};
use crate::recorder::RecorderSender;
use crate::web;

/// How long one live-view trigger keeps recording; the web UI re-triggers every 5 s
/// while the view is open, so recording stops soon after the last viewer leaves (plus
/// the camera's post-roll).
const LIVE_VIEW_RECORDING: Duration = Duration::from_secs(10);

/// Starts the web UI for a started daemon; it stops when the daemon does. A failure
/// (port taken, bad certificate) is logged and recording goes on without it: the
/// cameras matter more than the UI.
pub async fn start_web(config: &Config, running: &Running) -> Option<web::Running> {
    // The recorders are looked up on each call, so cameras added while running are
    // found too; the map is emptied when the daemon stops, so a lingering web task
    // never keeps a recorder from finishing.
    let (registry, recorders) = (running.registry.clone(), running.recorders.clone());
    let stopping = running.stop_tx.subscribe();
    let sender = move |camera: &CameraId| -> Option<RecorderSender> {
        recorders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(camera)?
            .sender()
    };
    let (trigger_registry, trigger_sender) = (registry.clone(), sender.clone());
    // The same answers as `Running::trigger`, without holding the daemon.
    let trigger: web::TriggerHook = Arc::new(move |camera: &CameraId, duration: Duration| {
        if trigger_registry.get(camera).is_none() {
            return Err(TriggerError::NoSuchCamera(camera.clone()));
        }
        match trigger_sender(camera) {
            Some(s) if s.trigger(Trigger::External, duration) => Ok(()),
            Some(_) => Err(TriggerError::Busy(camera.clone())),
            // Emptied: the daemon is stopping.
            None if *stopping.borrow() => Err(TriggerError::Busy(camera.clone())),
            None => Err(TriggerError::NotRecording(camera.clone())),
        }
    });
    let live_view: web::LiveViewHook = Arc::new(move |camera: &CameraId| {
        let events_mode = registry
            .get(camera)
            .is_some_and(|c| c.config.mode == RecordingMode::Events);
        if let Some(s) = sender(camera).filter(|_| events_mode) {
            if !s.trigger(Trigger::LiveView, LIVE_VIEW_RECORDING) {
                tracing::warn!(camera = %camera, "live view could not trigger the recorder (busy)");
            }
        }
    });
    let starter = running.starter();
    let add_camera: web::AddCameraHook = {
        let starter = starter.clone();
        Arc::new(move |camera| starter.start_camera(camera).map_err(|e| e.to_string()))
    };
    let remove_camera: web::RemoveCameraHook = Arc::new(move |camera: CameraId| {
        let starter = starter.clone();
        Box::pin(async move { starter.stop_camera(&camera).await })
    });
    let services = web::Services {
        registry: running.registry.clone(),
        store: running.store.clone(),
        index: running.index.clone(),
        clock: running.clock.clone(),
        live_view,
        trigger,
        events: running.events.clone(),
        discovery: running.discovery.clone(),
        add_camera,
        remove_camera,
    };
    match web::start(services, config, running.stop_tx.subscribe()).await {
        Ok(web) => Some(web),
        Err(e) => {
            tracing::error!("{e}; recording continues without the web UI");
            None
        }
    }
}
