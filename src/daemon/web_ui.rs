//! Starting the web UI next to the recorders, and the live-view hook that lets an open
//! live view keep a "live view" recording going for cameras in `events` mode.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Running;
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
    let mut stop = running.stop_tx.subscribe();
    let on_stop = senders.clone();
    tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        on_stop.lock().unwrap_or_else(|p| p.into_inner()).clear();
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
    };
    match web::start(services, config, running.stop_tx.subscribe()).await {
        Ok(web) => Some(web),
        Err(e) => {
            tracing::error!("{e}; recording continues without the web UI");
            None
        }
    }
}
