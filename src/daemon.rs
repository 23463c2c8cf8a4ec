//! `porchlight serve`: opens the store and index, finishes what a crash left half
//! done, starts one ingest task (and, unless the mode is `off`, one recorder) per
//! camera, and stops cleanly on SIGTERM or SIGINT, finishing open recordings.

mod web_ui;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::camera::{ingest, CameraRegistry};
use crate::check;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, RecordingMode};
use crate::index::{Index, IndexError};
use crate::recorder;
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
}

/// How long shutdown waits for recorders to finish their files.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Runs the daemon until a termination signal arrives.
pub async fn serve(config: Config) -> Result<(), DaemonError> {
    let store = Arc::new(Store::open_or_create(&config.data_dir, &config.key_dir)?);
    let index = Index::open(&Store::index_dir(&config.data_dir))?;
    let report = check::recover(&store, &index)?;
    if !report.is_empty() {
        tracing::info!("start-up recovery: {report}");
    }
    tracing::info!(
        data_dir = %config.data_dir.display(),
        key_id = %store.key_id(),
        cameras = config.cameras.len(),
        "porchlight {} serving",
        env!("CARGO_PKG_VERSION")
    );

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (stop_tx, stop_rx) = watch::channel(false);
    let registry = CameraRegistry::new();
    let recorders = web_ui::Recorders::default();
    for camera in &config.cameras {
        let handle = registry.add(camera.clone(), clock.now_micros());
        if camera.mode == RecordingMode::Off {
            tracing::info!(camera = %camera.id, "camera {}: mode off, live view only", camera.id);
        } else {
            if camera.mode == RecordingMode::Events {
                tracing::warn!(camera = %camera.id, "camera {}: mode events records only on external triggers until motion detection lands", camera.id);
            }
            let recorder = recorder::spawn(
                handle.clone(),
                store.clone(),
                index.clone(),
                config.recording.clone(),
                clock.clone(),
                stop_rx.clone(),
            )?;
            recorders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(camera.id.clone(), recorder);
        }
        tokio::spawn(ingest::run(handle, clock.clone(), stop_rx.clone()));
    }

    let web = web_ui::start(
        &config,
        &registry,
        &store,
        &index,
        &clock,
        &recorders,
        stop_rx.clone(),
    )
    .await;

    wait_for_signal().await?;
    tracing::info!("stopping: finishing open recordings");
    let _ = stop_tx.send(true);
    let recorders = std::mem::take(&mut *recorders.lock().unwrap_or_else(|p| p.into_inner()));
    let joined = tokio::task::spawn_blocking(move || {
        for r in recorders.into_values() {
            r.join();
        }
    });
    if tokio::time::timeout(SHUTDOWN_GRACE, joined).await.is_err() {
        tracing::error!(
            "recorders did not finish within {} s; start-up recovery will finish their files",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    if let Some(web) = web {
        let _ = tokio::time::timeout(Duration::from_secs(3), web.join()).await;
    }
    index.flush()?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
