//! Motion detection end to end: the real camera's sub stream decoded by ffmpeg in the
//! daemon, the detector, and the events and recordings it makes.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::camera::{CameraOptions, Scene, TestCamera};
use porchlight::clock::SystemClock;
use porchlight::config::Config;
use porchlight::daemon::{self, Running};
use porchlight::model::{CameraId, Trigger};

/// The test camera shows a movement about 0.35–0.55 s after its schedule says it
/// begins (its README); event times are compared with the schedule allowing that.
const PICTURE_LAG: f64 = 0.6;

fn config(dir: &Path, camera: &TestCamera, extra: &str) -> Config {
    let text = format!(
        "data_dir = \"{}\"\nkey_dir = \"{}\"\n[[camera]]\nname = \"porch\"\nurl = \"{}\"\nsub_url = \"{}\"\nmode = \"events\"\n{extra}\n{}",
        dir.join("data").display(),
        dir.join("keys").display(),
        camera.main_url(),
        camera.sub_url(),
        common::KEEP_NO_DISK_FREE
    );
    Config::parse(Path::new("test.toml"), &text).expect("valid test config")
}

async fn start(config: Config) -> Running {
    let running = daemon::start(config, Arc::new(SystemClock))
        .await
        .expect("start");
    let porch: CameraId = "porch".parse().expect("name");
    common::wait_streaming(&running, &porch).await;
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_scene_yields_no_event_in_30_seconds() {
    let camera = TestCamera::start(CameraOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(config(dir.path(), &camera, "")).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let events = running.index.all_events().expect("events");
    let recordings = running.index.all_recordings().expect("recordings");
    running.stop().await.expect("stop");
    assert!(events.is_empty(), "{events:?}");
    assert!(recordings.is_empty(), "{recordings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alternating_scene_yields_one_event_per_moving_period() {
    let (still, moving) = (15.0, 4.0);
    let camera = TestCamera::start(CameraOptions {
        scene: Scene::Alternating,
        still_secs: still as u32,
        moving_secs: moving as u32,
        ..CameraOptions::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (pre, post) = (3.0, 5.0);
    let running = start(config(
        dir.path(),
        &camera,
        &format!("pre_roll_seconds = {pre}\npost_roll_seconds = {post}\n"),
    ))
    .await;
    // Two moving periods: [15, 19) and [34, 38) after the camera started, then the
    // post-roll and a margin.
    let t0 = camera.started_unix();
    let end = t0 + 2.0 * (still + moving) + post + 3.0;
    while common::camera::now_unix() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = running.index.all_events().expect("events");
    let recordings = running.index.all_recordings().expect("recordings");
    running.stop().await.expect("stop");

    let period = still + moving;
    let moves: Vec<(f64, f64)> = (0..2)
        .map(|i| {
            (
                t0 + still + i as f64 * period,
                t0 + period + i as f64 * period,
            )
        })
        .collect();
    println!("movement: {moves:?}");
    for e in &events {
        println!(
            "event {}: {:.2} .. {:.2} (peak {:.3}, thumbnail {}, recordings {})",
            e.id,
            e.start_micros as f64 / 1e6,
            e.end_micros as f64 / 1e6,
            e.peak_score,
            e.has_thumbnail,
            e.recordings.len()
        );
    }
    assert_eq!(events.len(), 2, "one event per moving period: {events:?}");
    for (e, (move_start, move_end)) in events.iter().zip(&moves) {
        let start = e.start_micros as f64 / 1e6;
        let end = e.end_micros as f64 / 1e6;
        assert!(!e.open);
        assert_eq!(e.triggers, vec![Trigger::Motion]);
        assert!(
            e.peak_score > 0.0 && e.has_thumbnail,
            "a scored event with a thumbnail"
        );
        assert!(
            start <= move_start - pre + PICTURE_LAG,
            "event starts at {start:.2}, movement at {move_start:.2}: less than the {pre} s pre-roll before it"
        );
        assert!(
            end >= *move_end,
            "event ends at {end:.2}, before the movement ({move_end:.2})"
        );
        assert!(
            end <= move_end + post + 2.0 + PICTURE_LAG,
            "event ends at {end:.2}: more than post-roll + 2 s after the movement ({move_end:.2})"
        );
        assert_eq!(e.recordings.len(), 1);
        let r = recordings
            .iter()
            .find(|r| r.id == e.recordings[0])
            .expect("the event's recording");
        assert_eq!(r.trigger, Trigger::Motion);
        assert_eq!(r.start_micros, e.start_micros);
    }
    assert_eq!(recordings.len(), 2, "nothing recorded outside the events");
}
