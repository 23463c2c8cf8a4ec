//! Starting the web UI next to the recorders; the live-view hook that lets an open
//! live view keep a "live view" recording going for cameras in `events` mode; and the
//! trigger hook behind the API's doorbell route.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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
    // Senders of `events`-mode recorders only. The map is emptied when the daemon
    // stops, so a lingering web task never keeps a recorder from finishing.
    let senders: BTreeMap<CameraId, RecorderSender> = config
        .cameras
        .iter()
        .filter(|c| c.mode == RecordingMode::Events)
        .filter_map(|c| Some((c.id.clone(), running.recorder(&c.id)?.sender()?)))
        .collect();
    let senders = Arc::new(Mutex::new(senders));
    // Every recorder's sender, for external triggers; emptied at stop like the above.
    let all: BTreeMap<CameraId, RecorderSender> = config
        .cameras
        .iter()
        .filter_map(|c| Some((c.id.clone(), running.recorder(&c.id)?.sender()?)))
        .collect();
    let all = Arc::new(Mutex::new(all));
    let mut stop = running.stop_tx.subscribe();
    let (on_stop, all_on_stop) = (senders.clone(), all.clone());
    tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        on_stop.lock().unwrap_or_else(|p| p.into_inner()).clear();
        all_on_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    });
    let registry = running.registry.clone();
    let stopping = running.stop_tx.subscribe();
    // The same answers as `Running::trigger`, without holding the daemon.
    let trigger: web::TriggerHook = Arc::new(move |camera: &CameraId, duration: Duration| {
        if registry.get(camera).is_none() {
            return Err(TriggerError::NoSuchCamera(camera.clone()));
        }
        let all = all.lock().unwrap_or_else(|p| p.into_inner());
        match all.get(camera) {
            Some(s) if s.trigger(Trigger::External, duration) => Ok(()),
            Some(_) => Err(TriggerError::Busy(camera.clone())),
            // Emptied: the daemon is stopping.
            None if *stopping.borrow() => Err(TriggerError::Busy(camera.clone())),
            None => Err(TriggerError::NotRecording(camera.clone())),
        }
    });
    let live_view: web::LiveViewHook = Arc::new(move |camera: &CameraId| {
        let senders = senders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = senders.get(camera) {
            if !s.trigger(Trigger::LiveView, LIVE_VIEW_RECORDING) {
                tracing::warn!(camera = %camera, "live view could not trigger the recorder (busy)");
            }
        }
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
    };
    match web::start(services, config, running.stop_tx.subscribe()).await {
        Ok(web) => Some(web),
        Err(e) => {
            tracing::error!("{e}; recording continues without the web UI");
            None
        }
    }
}
