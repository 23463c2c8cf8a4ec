//! Motion settings of a camera added in the web UI, with real parts: the GStreamer
//! camera's alternating scene (a white square at rest, then moving across the
//! picture), the daemon in-process, the settings form over real HTTPS. A zone drawn
//! over the square's path silences its motion events; a zone elsewhere, or none,
//! does not. The snapshot the zones are drawn on is the analysed (sub) stream.

mod common;
mod webutil;

use std::time::Duration;

use common::camera::{now_unix, CameraOptions, Scene, TestCamera};
use porchlight::model::{CameraId, Trigger};
use porchlight::recorder::EventPhase;
use tokio::sync::broadcast::error::RecvError;
use webutil::{csrf, Client, Server};

/// The scene's schedule: long enough at rest for a restarted camera to reconnect
/// and its detector to calibrate (up to 3 s) before the square moves.
const STILL: f64 = 10.0;
const MOVING: f64 = 4.0;
/// The square's whole path, in percent: top-left x 10–75 %, side 8.4 % of the
/// width; top-left y 17.5–67.5 %, side 15 % of the height (tests/camera/README.md).
const OVER_THE_PATH: &str = "5 10 95 90";
/// A strip the square never enters.
const ELSEWHERE: &str = "0 0 100 8";

async fn sleep_until(unix: f64) {
    let left = unix - now_unix();
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
}

/// Saves the settings form (events, motion at sensitivity 50, `zones`), which
/// restarts the camera within the request.
async fn save_settings(owner: &mut Client, camera: &TestCamera, zones: &str) {
    let page = owner.get("/cameras/yard/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = owner
        .post(
            "/cameras/yard/settings",
            &[
                ("csrf", csrf(&page.body).as_str()),
                ("url", camera.main_url().as_str()),
                ("sub_url", camera.sub_url().as_str()),
                ("mode", "events"),
                ("motion", "on"),
                ("sensitivity", "50"),
                ("pre_roll", "1"),
                ("post_roll", "2"),
                ("storage_days", "9"),
                ("zones", zones),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
}

/// Saves the settings form with `zones` just after a still period begins, then
/// watches the moving period that follows: returns how many motion events started
/// for the camera from the save until 3 s after the movement ended.
async fn motion_events_with_zones(
    server: &Server,
    owner: &mut Client,
    camera: &TestCamera,
    zones: &str,
) -> usize {
    let id: CameraId = "yard".parse().expect("id");
    let (t0, period) = (camera.started_unix(), STILL + MOVING);
    let next = ((now_unix() - t0) / period).floor() + 1.0;
    let still_start = t0 + next * period;
    // The picture shows the schedule up to ~0.5 s late: the square is back at rest.
    sleep_until(still_start + 1.0).await;
    save_settings(owner, camera, zones).await;
    // The camera restarted within the request: only its new recorder speaks now.
    let mut events = server.daemon().subscribe_events();
    server.wait_streaming(id.as_str()).await;
    assert!(
        now_unix() < still_start + STILL - 4.0,
        "the restart took too long to watch a whole movement"
    );
    let until = still_start + period + 3.0;
    let mut started = 0;
    loop {
        let left = until - now_unix();
        if left <= 0.0 {
            break;
        }
        match tokio::time::timeout(Duration::from_secs_f64(left), events.recv()).await {
            Ok(Ok(n)) => {
                if n.phase == EventPhase::Started && n.event.camera == id {
                    assert_eq!(n.event.triggers, vec![Trigger::Motion]);
                    started += 1;
                }
            }
            Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => panic!("the daemon stopped"),
            Err(_) => break,
        }
    }
    started
}

/// ffprobe's codec and size of a JPEG.
fn jpeg_size(jpeg: &[u8]) -> (String, u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snapshot.jpg");
    std::fs::write(&path, jpeg).expect("write");
    let p = common::ffprobe(&path);
    (p.codec, p.width, p.height)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_over_the_moving_square_suppresses_its_events() {
    let camera = TestCamera::start(CameraOptions {
        scene: Scene::Alternating,
        still_secs: STILL as u32,
        moving_secs: MOVING as u32,
        ..CameraOptions::default()
    });
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let id: CameraId = "yard".parse().expect("id");

    // Added with its sub stream (analysed for motion) and a storage period.
    let page = owner.get("/cameras/add").await;
    let r = owner
        .post(
            "/cameras/add",
            &[
                ("csrf", csrf(&page.body).as_str()),
                ("name", "yard"),
                ("url", camera.main_url().as_str()),
                ("sub_url", camera.sub_url().as_str()),
                ("mode", "events"),
                ("storage_days", "12"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    server.wait_streaming(id.as_str()).await;
    let handle = server.daemon().registry.get(&id).expect("started");
    assert_eq!(handle.config.storage_days, 12);
    assert_eq!(
        handle.config.sub_url.as_ref().map(|u| u.to_string()),
        Some(camera.sub_url())
    );

    // The settings page: the saved values, the zone editor and its snapshot.
    let page = owner.get("/cameras/yard/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        "name=\"storage_days\" type=\"number\" min=\"1\" max=\"3650\" value=\"12\"",
        &format!("name=\"sub_url\" value=\"{}\"", camera.sub_url()),
        "<script type=\"module\" src=\"/static/zones.js\"></script>",
        "data-snapshot=\"/cameras/yard/snapshot.jpg\"",
        "<textarea name=\"zones\" id=\"zones\" rows=\"4\" spellcheck=\"false\"></textarea>",
    ] {
        assert!(page.body.contains(needle), "{needle} in {}", page.body);
    }
    let js = owner.get("/static/zones.js").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").starts_with("text/javascript"));
    let snapshot = owner.get("/cameras/yard/snapshot.jpg").await;
    assert_eq!(snapshot.status, 200, "{}", snapshot.body);
    assert_eq!(snapshot.header("content-type"), "image/jpeg");
    assert_eq!(snapshot.header("cache-control"), "no-store");
    let url = format!("{}/cameras/yard/snapshot.jpg", server.base());
    let req = owner.http.get(url).header("cookie", owner.cookie_header());
    let jpeg = req
        .send()
        .await
        .expect("snapshot")
        .bytes()
        .await
        .expect("body");
    assert_eq!(
        jpeg_size(&jpeg),
        ("mjpeg".to_owned(), 640, 360),
        "the sub stream's picture"
    );

    // Bad zones are refused and change nothing.
    let page = owner.get("/cameras/yard/settings").await;
    let r = owner
        .post(
            "/cameras/yard/settings",
            &[
                ("csrf", csrf(&page.body).as_str()),
                ("url", camera.main_url().as_str()),
                ("mode", "events"),
                ("motion", "on"),
                ("sensitivity", "50"),
                ("pre_roll", "1"),
                ("post_roll", "2"),
                ("zones", "10 20 30"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("zone line 1: four numbers"), "{}", r.body);
    assert!(r.body.contains(">10 20 30</textarea>"), "shown as typed");
    let handle = server.daemon().registry.get(&id).expect("running");
    assert!(
        handle
            .config
            .motion
            .as_ref()
            .is_some_and(|m| m.zones.is_empty()),
        "nothing changed"
    );

    // A zone the square never enters: its movement is still an event.
    let elsewhere = motion_events_with_zones(&server, &mut owner, &camera, ELSEWHERE).await;
    assert!(elsewhere >= 1, "a zone elsewhere silenced the movement");
    let handle = server.daemon().registry.get(&id).expect("running");
    let motion = handle.config.motion.as_ref().expect("motion on");
    assert_eq!(motion.zones.len(), 1);
    assert_eq!(handle.config.storage_days, 9);
    let control = owner.get("/control-centre").await;
    assert!(
        control
            .body
            .contains("<tr><td>yard</td><td>on events</td><td>9 days</td>"),
        "the Control Centre shows the storage period: {}",
        control.body
    );

    // A zone over the square's whole path: the same movement is no event.
    let covered = motion_events_with_zones(&server, &mut owner, &camera, OVER_THE_PATH).await;
    assert_eq!(covered, 0, "the zone over the square did not silence it");
    let page = owner.get("/cameras/yard/settings").await;
    assert!(
        page.body.contains(">5 10 95 90\n</textarea>"),
        "the zone is shown back: {}",
        page.body
    );

    // The zone removed: events again.
    let cleared = motion_events_with_zones(&server, &mut owner, &camera, "").await;
    assert!(cleared >= 1, "with no zone the movement is an event again");

    // Right after a save the camera is reconnecting: its picture is waited for, not
    // refused (the settings page asks for it at once).
    save_settings(&mut owner, &camera, "").await;
    let snapshot = owner.get("/cameras/yard/snapshot.jpg").await;
    assert_eq!(snapshot.status, 200, "{}", snapshot.body);

    // What the index holds (the camera starts from it at the next boot).
    let entry = server
        .daemon()
        .index
        .cameras()
        .expect("cameras")
        .into_iter()
        .find(|c| c.id == id)
        .expect("stored");
    assert!(entry.settings.zones.is_empty());
    assert_eq!(entry.settings.storage_days, 9);
    assert_eq!(entry.sub_url, Some(camera.sub_url()));
}
