//! Events, modes and retention with the daemon running in-process against the real
//! GStreamer camera: triggers go straight to `Running::trigger`, the index is read
//! while the daemon runs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::camera::{CameraOptions, TestCamera};
use common::{ffmpeg_decode_errors, ffprobe, Tmpfs};
use porchlight::camera::ConnectionState;
use porchlight::clock::SystemClock;
use porchlight::config::Config;
use porchlight::daemon::{self, Running, TriggerError};
use porchlight::export::{export_with, Request};
use porchlight::index::RecordingState;
use porchlight::model::{CameraId, Trigger};

fn config(data_dir: &Path, key_dir: &Path, rest: &str) -> Config {
    let mut text = format!(
        "data_dir = \"{}\"\nkey_dir = \"{}\"\n{rest}",
        data_dir.display(),
        key_dir.display()
    );
    if !rest.contains("[retention]") {
        text.push_str(common::KEEP_NO_DISK_FREE);
    }
    Config::parse(Path::new("test.toml"), &text).expect("valid test config")
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn export_one(running: &Running, dir: &Path, id: porchlight::model::RecordingId) -> PathBuf {
    let out = dir.join(format!("{id}.mp4"));
    export_with(
        &running.store,
        &running.index,
        &Request::Recording(id),
        &out,
    )
    .expect("export");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_trigger_on_a_still_camera_records_pre_roll_and_post_roll() {
    let camera = TestCamera::start(CameraOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        &dir.path().join("data"),
        &dir.path().join("keys"),
        &format!(
            "[[camera]]\nname = \"bell\"\nurl = \"{}\"\nmode = \"events\"\npre_roll_seconds = 3\npost_roll_seconds = 4\n",
            camera.main_url()
        ),
    );
    let running = daemon::start(cfg, Arc::new(SystemClock))
        .await
        .expect("start");
    let bell: CameraId = "bell".parse().expect("name");
    common::wait_streaming(&running, &bell).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        running.index.all_recordings().expect("index").is_empty(),
        "nothing is recorded untriggered"
    );

    let triggered_at = now_micros();
    running
        .trigger(&bell, Trigger::External, Duration::from_secs(2))
        .expect("trigger");
    tokio::time::sleep(Duration::from_secs(2 + 4 + 2)).await;

    let recordings = running.index.all_recordings().expect("index");
    assert_eq!(recordings.len(), 1, "one event, one file: {recordings:?}");
    let r = &recordings[0];
    assert_eq!(
        r.state,
        RecordingState::Finished,
        "closed after the post-roll"
    );
    assert_eq!(r.trigger, Trigger::External);
    let lead = (triggered_at - r.start_micros) as f64 / 1e6;
    let tail = (r.end_micros - triggered_at) as f64 / 1e6;
    println!("recording runs from {lead:.2} s before the trigger to {tail:.2} s after it");
    assert!(
        (3.0..=4.5).contains(&lead),
        "pre-roll of 3 s from a keyframe (GOP 1 s): {lead:.2} s"
    );
    assert!(
        (5.7..=6.6).contains(&tail),
        "2 s trigger + 4 s post-roll: {tail:.2} s"
    );
    let span_frames = ((r.end_micros - r.start_micros) as f64 / 100_000.0).round() as u64;
    assert!(
        r.frames.abs_diff(span_frames) <= 1,
        "{} frames over a {span_frames}-frame span at 10 fps",
        r.frames
    );

    let events = running.index.all_events().expect("events");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert!(!e.open);
    assert_eq!(e.triggers, vec![Trigger::External]);
    assert_eq!(e.recordings, vec![r.id]);
    assert_eq!(
        e.start_micros, r.start_micros,
        "the event starts with its pre-roll"
    );
    assert!(
        (r.end_micros - e.end_micros).abs() <= 100_000,
        "the event ends at the post-roll deadline, the recording with the frame covering it"
    );

    let out = export_one(&running, dir.path(), r.id);
    assert_eq!(
        ffprobe(&out).frames,
        r.frames,
        "the export holds every frame of the span"
    );
    assert_eq!(ffmpeg_decode_errors(&out), "");
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_off_writes_nothing_while_live_frames_flow() {
    let camera = TestCamera::start(CameraOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cfg = config(
        &data,
        &dir.path().join("keys"),
        &format!(
            "[[camera]]\nname = \"lobby\"\nurl = \"{}\"\nmode = \"off\"\n",
            camera.main_url()
        ),
    );
    let running = daemon::start(cfg, Arc::new(SystemClock))
        .await
        .expect("start");
    let lobby: CameraId = "lobby".parse().expect("name");
    common::wait_streaming(&running, &lobby).await;
    assert_eq!(
        running.trigger(&lobby, Trigger::External, Duration::from_secs(5)),
        Err(TriggerError::NotRecording(lobby.clone()))
    );
    let mut frames = running.registry.get(&lobby).expect("camera").subscribe();
    let mut received = 0;
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), frames.recv()).await {
            received += 1;
        }
    }
    running.stop().await.expect("stop");
    assert!(
        received >= 280,
        "live frames kept flowing: {received} in 30 s at 10 fps"
    );
    let mut files = Vec::new();
    common::walk(&data.join("recordings"), &mut files);
    common::walk(&data.join("thumbnails"), &mut files);
    assert!(files.is_empty(), "mode off wrote {files:?}");
}

/// A ≈2.4 Mbit/s camera (1080p, a keyframe every 2 s) recorded continuously in 5 s
/// files onto a tmpfs of `size` with the given `[retention]` settings. Dropped in
/// reverse order: the config, the mount, the temp dir, the camera.
fn small_disk(
    size: &str,
    retention: &str,
    name: &str,
) -> (TestCamera, tempfile::TempDir, Tmpfs, Config) {
    let camera = TestCamera::start(CameraOptions {
        realistic: true,
        gop: 20,
        ..CameraOptions::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let disk = Tmpfs::mount(&data, size);
    let cfg = config(
        &data,
        &dir.path().join("keys"),
        &format!(
            "[recording]\nrollover_seconds = 5\n[retention]\n{retention}\n\
             [[camera]]\nname = \"{name}\"\nurl = \"{}\"\nmode = \"continuous\"\n",
            camera.main_url()
        ),
    );
    (camera, dir, disk, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_small_disk_the_oldest_recordings_go_first_and_recording_carries_on() {
    let (_camera, dir, _disk, cfg) =
        small_disk("8m", "interval_seconds = 1\nmin_free_percent = 10", "drive");
    let data = dir.path().join("data");
    let running = daemon::start(cfg, Arc::new(SystemClock))
        .await
        .expect("start");
    let drive: CameraId = "drive".parse().expect("name");
    common::wait_streaming(&running, &drive).await;
    let handle = running.registry.get(&drive).expect("camera");
    let mut seen: Vec<(i64, porchlight::model::RecordingId)> = Vec::new();
    let until = Instant::now() + Duration::from_secs(45);
    while Instant::now() < until {
        for r in running.index.all_recordings().expect("index") {
            if !seen.iter().any(|(_, id)| *id == r.id) {
                seen.push((r.start_micros, r.id));
            }
        }
        let status = handle.status();
        assert_eq!(
            status.state,
            ConnectionState::Streaming,
            "no error reaches the camera task: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let remaining: Vec<_> = running.index.all_recordings().expect("index");
    let space =
        porchlight::retention::DiskSpace::space(&porchlight::retention::FilesystemSpace, &data)
            .expect("statvfs");
    println!(
        "{} recordings made, {} kept; {} of {} bytes free",
        seen.len(),
        remaining.len(),
        space.available,
        space.total
    );
    seen.sort();
    let kept: Vec<_> = remaining.iter().map(|r| r.id).collect();
    let deleted: Vec<_> = seen.iter().filter(|(_, id)| !kept.contains(id)).collect();
    assert!(
        !deleted.is_empty(),
        "8 MiB cannot hold 45 s at ≈2.4 Mbit/s: retention must have deleted"
    );
    let newest_deleted = deleted
        .iter()
        .map(|(start, _)| *start)
        .max()
        .expect("some deleted");
    let oldest_kept = remaining
        .iter()
        .map(|r| r.start_micros)
        .min()
        .expect("some kept");
    assert!(newest_deleted < oldest_kept, "the oldest went first");
    assert!(
        kept.contains(&seen.last().expect("seen").1),
        "the newest survives"
    );
    for r in remaining
        .iter()
        .filter(|r| r.state == RecordingState::Finished)
    {
        let out = export_one(&running, dir.path(), r.id);
        assert_eq!(
            ffmpeg_decode_errors(&out),
            "",
            "recording {} is intact",
            r.id
        );
    }
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_recording_not_the_daemon_and_damages_nothing_finished() {
    // Retention may not delete anything here (no free-space target), so the disk
    // really fills up.
    let (_camera, _dir, _disk, cfg) = small_disk("3m", "min_free_percent = 0", "yard");
    let running = daemon::start(cfg, Arc::new(SystemClock))
        .await
        .expect("start");
    let yard: CameraId = "yard".parse().expect("name");
    common::wait_streaming(&running, &yard).await;
    let handle = running.registry.get(&yard).expect("camera");
    let deadline = Instant::now() + Duration::from_secs(60);
    let problem = loop {
        if let Some((text, _)) = handle.status().recording_problem {
            break text;
        }
        assert!(Instant::now() < deadline, "3 MiB never filled up");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("camera shows: {problem}");
    assert!(
        problem.contains("No space left") || problem.to_lowercase().contains("space"),
        "{problem}"
    );
    // The daemon carries on: the camera keeps streaming and the recorder keeps trying.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(handle.status().state, ConnectionState::Streaming);
    let recordings = running.index.all_recordings().expect("index");
    let finished: Vec<_> = recordings
        .iter()
        .filter(|r| r.state == RecordingState::Finished)
        .collect();
    assert!(!finished.is_empty(), "{recordings:?}");
    let out_dir = tempfile::tempdir().expect("export dir");
    for r in &finished {
        let out = export_one(&running, out_dir.path(), r.id);
        assert_eq!(
            ffmpeg_decode_errors(&out),
            "",
            "recording {} is intact",
            r.id
        );
        assert_eq!(ffprobe(&out).frames, r.frames);
    }
    running
        .stop()
        .await
        .expect("a full disk does not stop a clean shutdown");
}
