//! Playback over HTTPS from the real `porchlight serve` recording the real test
//! camera: Range requests (first, middle, last bytes) must equal an independent
//! decrypt by `porchlight export` of the same recording; download names the file; and
//! deletion through the UI is permanent.

mod common;
mod web_share_fixtures;
mod webutil;

use std::time::Duration;

use common::camera::{CameraOptions, TestCamera};
use common::{CameraSpec, Setup};
use webutil::{csrf, Client, PASSWORD};

/// Creates the owner through the UI (real clock) and returns the logged-in client.
async fn owner(base: &str, setup: &Setup) -> Client {
    let code = std::fs::read_to_string(setup.data_dir().join("setup-code")).expect("setup code");
    webutil::owner_with_real_clock(base, code.trim()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads_match_an_independent_export_and_deletion_is_permanent() {
    // The textured 1080p picture: keyframes of a few hundred KB, so a recording spans
    // many 64 KiB sealed chunks.
    let camera = TestCamera::start(CameraOptions {
        realistic: true,
        ..CameraOptions::default()
    });
    let setup = Setup::new(
        &[CameraSpec::continuous("front-door", &camera.main_url())],
        "",
    );
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    let mut c = owner(&base, &setup).await;
    // A failed login is logged in the fixed format a fail2ban filter matches.
    let mut guesser = Client::new(&base);
    let r = guesser.post_login("admin", "admin").await;
    assert_eq!(r.status, 401);
    daemon.wait_for_log(
        "authentication failure for \"admin\" from 127.0.0.1: password",
        1,
        Duration::from_secs(5),
    );
    assert!(
        !daemon.log_text().contains(PASSWORD),
        "no password in the log"
    );
    daemon.wait_for_log("recording started", 1, Duration::from_secs(30));
    let dashboard = c.get("/").await;
    assert!(
        dashboard.body.contains("id=\"camera-front-door\""),
        "a tile per camera"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    daemon.stop();

    let recordings = setup.recordings();
    let id = recordings[0]["id"].as_str().expect("id").to_owned();
    let exported = setup.dir.path().join("independent.mp4");
    setup.cli_ok(&[
        "export",
        "--recording",
        &id,
        "--out",
        exported.to_str().expect("utf-8"),
    ]);
    let expected = std::fs::read(&exported).expect("export");
    let len = expected.len();
    eprintln!("recording {id}: {len} bytes");
    assert!(len > 10_000, "{len} bytes");

    // The session survives the restart (it is in sled).
    let mut daemon = setup.start_daemon();
    c.base = daemon.web_base();
    let video = format!("/recordings/{id}/video.mp4");
    let (status, content_range, body) = webutil::range(&mut c, &video, "bytes=0-99").await;
    assert_eq!(
        (status, content_range.as_str()),
        (206, format!("bytes 0-99/{len}").as_str())
    );
    assert_eq!(body, expected[..100]);
    let mid = len / 2;
    let (status, _, body) =
        webutil::range(&mut c, &video, &format!("bytes={mid}-{}", mid + 70_000)).await;
    assert_eq!(status, 206);
    assert_eq!(
        body,
        expected[mid..(mid + 70_001).min(len)],
        "a middle range spanning sealed chunks"
    );
    let (status, content_range, body) = webutil::range(&mut c, &video, "bytes=-1000").await;
    assert_eq!(status, 206);
    assert_eq!(
        content_range,
        format!("bytes {}-{}/{len}", len - 1000, len - 1)
    );
    assert_eq!(body, expected[len - 1000..]);
    let (status, content_range, _) = webutil::range(&mut c, &video, &format!("bytes={len}-")).await;
    assert_eq!((status, content_range), (416, format!("bytes */{len}")));
    let whole = c.get(&video).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.header("content-length"), len.to_string());

    let download = c.get(&format!("/recordings/{id}/download")).await;
    let disposition = download.header("content-disposition").to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"front-door_")
            && disposition.ends_with(".mp4\""),
        "{disposition}"
    );

    // Not logged in: nothing.
    let mut stranger = Client::new(&c.base);
    assert_eq!(stranger.get(&video).await.location(), "/login");

    // The day page lists it; deleting it through the UI shreds it.
    let day = c.get("/cameras/front-door/recordings").await;
    assert!(day.body.contains(&format!("id=\"rec-{id}\"")), "listed");
    assert!(day.body.contains("<svg class=\"timeline\""), "timeline");
    let player = c.get(&format!("/recordings/{id}")).await;
    let token = csrf(&player.body);
    let r = c
        .post(&format!("/recordings/{id}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(c.get(&video).await.status, 404);
    assert!(!setup
        .recording_files()
        .iter()
        .any(|p| p.to_string_lossy().contains(&id)));

    // Deleting a camera's recordings needs its name typed.
    let r = c
        .post(
            "/cameras/front-door/delete",
            &[("csrf", &token), ("confirm", "front")],
        )
        .await;
    assert_eq!(r.status, 400);

    // Viewing, downloading and deleting are in the activity log, once each.
    let activity = c.get("/activity").await.body;
    let subject = format!("recording {id} of camera front-door");
    for kind in [
        "recording_viewed",
        "recording_downloaded",
        "recording_deleted",
    ] {
        let rows = activity
            .split(&format!("<tr class=\"audit-{kind}\">"))
            .skip(1)
            .filter(|row| row.contains(&subject))
            .count();
        assert_eq!(rows, 1, "{kind}: {activity}");
    }
    daemon.stop();
}

/// A GET with only the given cookie header (a browser that has nothing else).
async fn bare_get(base: &str, path: &str, cookie: Option<&str>) -> (u16, Vec<u8>) {
    let c = Client::new(base);
    let mut req = c.http.get(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_link_plays_a_sealed_copy_without_an_account_until_it_is_unshared() {
    let camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(&[CameraSpec::continuous("porch", &camera.main_url())], "");
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    let mut owner_client = owner(&base, &setup).await;
    daemon.wait_for_log("recording started", 1, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop();
    let id = setup.recordings()[0]["id"].as_str().expect("id").to_owned();
    let mut daemon = setup.start_daemon();
    owner_client.base = daemon.web_base();
    let base = owner_client.base.clone();
    let c = &mut owner_client;

    // Two links to the same recording.
    let player = c.get(&format!("/recordings/{id}")).await;
    assert!(
        player.body.contains("id=\"share-create\""),
        "the owner may share"
    );
    let token = csrf(&player.body);
    let make = |views: &'static str| {
        [
            ("csrf", token.clone()),
            ("hours", "24".to_owned()),
            ("views", views.to_owned()),
            ("password", PASSWORD.to_owned()),
        ]
    };
    let form = make("");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = c.post(&format!("/recordings/{id}/share"), &form).await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.header("cache-control"), "no-store");
    let (link, secret) = webutil::share_link_of(&made.body);
    assert_eq!((link.len(), secret.len()), (16, 64));
    let form = make("1");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (other_link, other_secret) =
        webutil::share_link_of(&c.post(&format!("/recordings/{id}/share"), &form).await.body);

    // The copy at rest is not the recording and holds no plaintext MP4.
    let copy = setup.data_dir().join("shares").join(format!("{link}.plr"));
    let sealed = std::fs::read(&copy).expect("the copy exists");
    for marker in [&b"ftyp"[..], b"moof", b"mdat"] {
        assert!(
            !sealed.windows(4).any(|w| w == marker),
            "plaintext box in the copy"
        );
    }

    // A fresh browser: the page is the same for any link and carries no secret.
    let (status, page) = bare_get(&base, &format!("/s/{link}"), None).await;
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&page).into_owned();
    assert!(page.contains("noindex") && page.contains("/static/share.js"));
    assert!(!page.contains(&secret));
    assert_eq!(
        bare_get(&base, &format!("/s/{link}/video.mp4"), None)
            .await
            .0,
        404
    );

    let mut viewer = Client::new(&base);
    let wrong = format!("{}0", &secret[..63]);
    let wrong = if wrong == secret {
        format!("{}1", &secret[..63])
    } else {
        wrong
    };
    let r = viewer
        .post(&format!("/s/{link}/open"), &[("secret", &wrong)])
        .await;
    assert_eq!(r.status, 404, "a wrong secret");
    let r = viewer
        .post(&format!("/s/{link}/open"), &[("secret", &secret)])
        .await;
    assert_eq!(r.status, 204);
    let cookie = r.set_cookies.first().expect("a viewer cookie").clone();
    for flag in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path=/s/{link}"),
    ] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let viewer_cookie = cookie.split(';').next().expect("name=value").to_owned();

    // The shared clip is byte for byte what the owner plays.
    let (status, owners) = bare_get(
        &base,
        &format!("/recordings/{id}/video.mp4"),
        Some(&c.cookie_header()),
    )
    .await;
    assert_eq!(status, 200);
    let (status, shared) =
        bare_get(&base, &format!("/s/{link}/video.mp4"), Some(&viewer_cookie)).await;
    assert_eq!(status, 200);
    assert!(shared.len() > 1000 && shared == owners, "same clip");
    // The cookie is for its own link only, and opens nothing of the house.
    assert_eq!(
        bare_get(
            &base,
            &format!("/s/{other_link}/video.mp4"),
            Some(&viewer_cookie)
        )
        .await
        .0,
        404
    );
    assert_eq!(
        bare_get(
            &base,
            &format!("/recordings/{id}/video.mp4"),
            Some(&viewer_cookie)
        )
        .await
        .0,
        303
    );
    assert_eq!(bare_get(&base, "/", Some(&viewer_cookie)).await.0, 303);

    // A view limit of one: the second opening is refused.
    let mut first = Client::new(&base);
    assert_eq!(
        first
            .post(
                &format!("/s/{other_link}/open"),
                &[("secret", &other_secret)]
            )
            .await
            .status,
        204
    );
    let mut second = Client::new(&base);
    assert_eq!(
        second
            .post(
                &format!("/s/{other_link}/open"),
                &[("secret", &other_secret)]
            )
            .await
            .status,
        404
    );

    // Deleting the original does not break the share...
    let r = c
        .post(&format!("/recordings/{id}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, 303);
    let (status, after) =
        bare_get(&base, &format!("/s/{link}/download"), Some(&viewer_cookie)).await;
    assert_eq!((status, after.len()), (200, owners.len()));

    // ...unsharing does, at once, and the copy is gone from disk.
    let list = c.get("/shares").await;
    assert!(
        list.body.contains(&format!("id=\"share-{link}\"")),
        "listed"
    );
    let r = c
        .post(&format!("/shares/{link}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!((r.status, r.location()), (303, "/shares"));
    assert!(!copy.exists(), "the copy is deleted");
    assert_eq!(
        bare_get(&base, &format!("/s/{link}/video.mp4"), Some(&viewer_cookie))
            .await
            .0,
        404
    );
    let mut late = Client::new(&base);
    assert_eq!(
        late.post(&format!("/s/{link}/open"), &[("secret", &secret)])
            .await
            .status,
        404
    );

    let alerts = c.get("/alerts").await.body;
    assert!(
        alerts.contains("made a share link"),
        "a security notice: {alerts}"
    );
    let activity = c.get("/activity").await.body;
    for kind in ["share_created", "share_viewed", "share_unshared"] {
        assert!(activity.contains(&format!("audit-{kind}")), "{kind} logged");
    }
    let log = daemon.log_text();
    assert!(
        !log.contains(&secret) && !log.contains(&other_secret),
        "no secret in the log"
    );
    daemon.stop();
}

/// The seconds of video in an MP4, by ffprobe (the container's own duration).
fn duration_secs(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed (make test installs it)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("a duration: {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_event_plays_all_its_recordings_as_one_clip_until_unshared() {
    // A still scene: only the doorbell (the API trigger) makes an event. Pre-roll 5 s,
    // post-roll 10 s and a roll-over every 5 s: one event over four or so recordings.
    let camera = TestCamera::start(CameraOptions::default());
    let spec = CameraSpec {
        mode: "events",
        ..CameraSpec::continuous("porch", &camera.main_url())
    };
    let setup = Setup::new(&[spec], "[recording]\nrollover_seconds = 5\n");
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    let mut c = owner(&base, &setup).await;
    daemon.wait_for_log("porch: streaming", 1, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(6)).await; // a full pre-roll
    let token = webutil::make_token(&mut c, "doorbell", &["trigger:write", "events:read"]).await;
    let api = Client::new(&base);
    let bearer = format!("Bearer {token}");
    let r = api
        .http
        .post(format!("{base}/api/v1/cameras/porch/trigger?seconds=1"))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("trigger");
    assert_eq!(r.status().as_u16(), 202);
    // Wait for the event to close (pre-roll + 1 s + post-roll, and the last file).
    let mut event = serde_json::Value::Null;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let events: Vec<serde_json::Value> = api
            .http
            .get(format!("{base}/api/v1/events"))
            .header("authorization", &bearer)
            .send()
            .await
            .expect("events")
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .expect("JSON");
        if let Some(e) = events.first().filter(|e| e["open"] == false) {
            event = e.clone();
            break;
        }
    }
    // The last recording is finished with the frame after the event's end.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let event_id = event["id"].as_str().expect("a closed event").to_owned();
    let recordings: Vec<String> = event["recordings"]
        .as_array()
        .expect("recordings")
        .iter()
        .map(|r| r.as_str().expect("id").to_owned())
        .collect();
    assert!(
        recordings.len() >= 2,
        "the event spans several recordings: {event}"
    );

    // The day page offers the owner a Share for the event.
    let day = c.get("/cameras/porch/recordings").await;
    assert!(
        day.body
            .contains(&format!("action=\"/events/{event_id}/share\"")),
        "{}",
        day.body
    );
    let csrf_token = csrf(&day.body);
    let made = c
        .post(
            &format!("/events/{event_id}/share"),
            &[
                ("csrf", csrf_token.as_str()),
                ("hours", "1"),
                ("views", ""),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let (link, secret) = webutil::share_link_of(&made.body);
    let copy = setup.data_dir().join("shares").join(format!("{link}.plr"));
    assert!(copy.exists(), "one copy for the whole event");
    assert_eq!(
        std::fs::read_dir(setup.data_dir().join("shares"))
            .expect("shares dir")
            .count(),
        1
    );

    // /shares says what was shared.
    let list = c.get("/shares").await.body;
    let row = list
        .split(&format!("id=\"share-{link}\""))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("the link's row");
    assert!(
        row.contains("<span class=\"share-kind\">event</span>") && row.contains(&event_id),
        "{row}"
    );

    // A fresh browser opens it and gets the whole event as one MP4.
    let mut viewer = Client::new(&base);
    let r = viewer
        .post(&format!("/s/{link}/open"), &[("secret", &secret)])
        .await;
    assert_eq!(r.status, 204);
    let cookie = r.set_cookies[0]
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let (status, clip) = bare_get(&base, &format!("/s/{link}/download"), Some(&cookie)).await;
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("event.mp4");
    std::fs::write(&shared, &clip).expect("write");
    let probe = common::ffprobe(&shared);
    assert_eq!(probe.codec, "h264");
    assert_eq!(common::ffmpeg_decode_errors(&shared), "", "decodes cleanly");
    // Every frame of every recording of the event is in the clip (in events mode the
    // event is its recordings: it starts with the first's pre-roll and ends with the
    // last's post-roll), and its length is the event's.
    let mut frames = 0;
    let mut longest = 0.0f64;
    for (i, id) in recordings.iter().enumerate() {
        let (status, mp4) = bare_get(
            &base,
            &format!("/recordings/{id}/video.mp4"),
            Some(&c.cookie_header()),
        )
        .await;
        assert_eq!(status, 200);
        let path = dir.path().join(format!("{i}.mp4"));
        std::fs::write(&path, &mp4).expect("write");
        frames += common::ffprobe(&path).frames;
        longest = longest.max(duration_secs(&path));
    }
    let span = |k: &str| {
        event[k]
            .as_str()
            .expect("time")
            .parse::<jiff::Timestamp>()
            .expect("RFC 3339")
    };
    let event_secs = span("end").duration_since(span("start")).as_secs_f64();
    let clip_secs = duration_secs(&shared);
    println!(
        "event {event_secs:.1} s over {} recordings; clip {clip_secs:.1} s, {} frames",
        recordings.len(),
        probe.frames
    );
    assert!(
        probe.frames.abs_diff(frames) <= 1,
        "{} frames in the clip, {frames} in the recordings",
        probe.frames
    );
    assert!(clip_secs > longest + 1.0, "more than one recording");
    assert!(
        (clip_secs - event_secs).abs() <= 1.2,
        "the clip is the event: {clip_secs:.1} s vs {event_secs:.1} s"
    );

    // Unsharing deletes the one copy and kills the link at once.
    let r = c
        .post(
            &format!("/shares/{link}/delete"),
            &[("csrf", csrf_token.as_str())],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/shares"));
    assert!(!copy.exists(), "the copy is deleted");
    assert_eq!(
        bare_get(&base, &format!("/s/{link}/video.mp4"), Some(&cookie))
            .await
            .0,
        404
    );
    for id in &recordings {
        let (status, _) = bare_get(
            &base,
            &format!("/recordings/{id}/video.mp4"),
            Some(&c.cookie_header()),
        )
        .await;
        assert_eq!(status, 200, "the originals are untouched");
    }
    let activity = c.get("/activity").await.body;
    assert!(
        activity.contains(&format!("to event {event_id}")),
        "the audit log names the event"
    );
    assert!(!daemon.log_text().contains(&secret), "no secret in the log");
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_access_sees_health_and_only_the_ticked_recording_and_is_logged() {
    let camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(
        &[CameraSpec::continuous("yard", &camera.main_url())],
        "[recording]\nrollover_seconds = 5\n",
    );
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    let mut owner_client = owner(&base, &setup).await;
    daemon.wait_for_log("recording started", 2, Duration::from_secs(40));
    // Two finished recordings (5 s roll-over): one to tick, one not.
    daemon.wait_for_log("recording finished", 2, Duration::from_secs(30));
    let c = &mut owner_client;

    // Grant: one recording ticked.
    let page = c.get("/support-access").await;
    assert_eq!(page.status, 200);
    let ticked = page
        .body
        .split("name=\"recording\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a recording to tick")
        .to_owned();
    let other = page
        .body
        .split("name=\"recording\" value=\"")
        .nth(2)
        .and_then(|s| s.split('"').next())
        .expect("a second recording, not ticked")
        .to_owned();
    let r = c
        .post(
            "/support-access/grant",
            &[
                ("csrf", &csrf(&page.body)),
                ("helper", "Installer Ines"),
                ("hours", "4"),
                ("recording", &ticked),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let link = r
        .body
        .split("id=\"support-link\"")
        .nth(1)
        .and_then(|s| s.split("value=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("the support link")
        .to_owned();
    let secret = link.split('#').nth(1).expect("fragment").to_owned();

    // The helper makes an account and enrols TOTP like everyone.
    let mut helper = Client::new(&base);
    let r = helper
        .post(
            "/invite",
            &[
                ("invitation", secret.as_str()),
                ("username", "ines"),
                ("password", "installer plumbing ladder 99 green"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    webutil::enrol_with_real_clock(&mut helper).await;

    let home = helper.get("/").await;
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("id=\"camera-yard\""),
        "camera health shown"
    );
    assert!(
        !home.body.contains("thumbnail.jpg") && !home.body.contains("/live\""),
        "no video"
    );
    let diag = helper.get("/diagnostics").await;
    assert_eq!(diag.status, 200);
    assert!(
        diag.body.contains("id=\"health-yard\"") && diag.body.contains("streaming"),
        "{}",
        diag.body
    );
    assert!(
        diag.body.contains(&format!("/recordings/{ticked}")),
        "the ticked recording is listed"
    );
    assert_eq!(
        helper.get(&format!("/recordings/{ticked}")).await.status,
        200
    );
    let (status, video) = bare_get(
        &base,
        &format!("/recordings/{ticked}/video.mp4"),
        Some(&helper.cookie_header()),
    )
    .await;
    assert!(status == 200 && video.len() > 1000, "{status}");
    assert_eq!(
        helper.get(&format!("/recordings/{other}")).await.status,
        403
    );
    assert_eq!(
        helper
            .get(&format!("/recordings/{other}/download"))
            .await
            .status,
        403
    );
    for path in [
        "/cameras/yard/live",
        "/cameras/yard/recordings",
        "/users",
        "/support-access",
        "/shares",
        "/linked-services",
    ] {
        assert_eq!(helper.get(path).await.status, 403, "{path}");
    }
    let token = csrf(&diag.body);
    let r = helper
        .post(&format!("/recordings/{ticked}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, 403, "no deleting");

    // The owner sees every page the helper opened, then revokes: at once.
    let log = c.get("/activity?kind=support_action").await.body;
    for seen in [
        "GET /diagnostics",
        "GET /cameras/yard/live",
        &format!("POST /recordings/{ticked}/delete"),
    ] {
        assert!(log.contains(seen), "{seen} logged");
    }
    let page = c.get("/support-access").await.body;
    let id = page
        .split("id=\"revoke-")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the helper's grant")
        .to_owned();
    let r = c
        .post(&format!("/users/{id}/remove"), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(helper.get("/diagnostics").await.location(), "/login");
    daemon.stop();
}

/// Reads what is left of a response: the bytes that arrived, and whether the body
/// ended in an error (rather than at its end).
async fn rest_of(mut response: reqwest::Response) -> (u64, bool) {
    let mut n = 0;
    loop {
        match response.chunk().await {
            Ok(Some(piece)) => n += piece.len() as u64,
            Ok(None) => return (n, false),
            Err(_) => return (n, true),
        }
    }
}

/// Opens `link` as a fresh viewer and starts its download (`Range: bytes=0-`): the
/// response, its announced length, and how many bytes its first piece held.
async fn start_download(base: &str, link: &str, secret: &str) -> (reqwest::Response, u64, u64) {
    let mut viewer = Client::new(base);
    let r = viewer
        .post(&format!("/s/{link}/open"), &[("secret", secret)])
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let mut response = viewer
        .http
        .get(format!("{base}/s/{link}/download"))
        .header("cookie", viewer.cookie_header())
        .header("range", "bytes=0-")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 206);
    let len = response.content_length().expect("a length");
    assert!(len > 20_000_000, "{len} bytes");
    let first = response.chunk().await.expect("first bytes").expect("some");
    (response, len, first.len() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsharing_or_expiry_cuts_off_a_download_already_streaming() {
    let server = webutil::Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let base = server.base();
    // 24 MB: far more than the socket buffers between server and client hold.
    let id = web_share_fixtures::put_big_recording(&server, 77, 240, 100_000).to_string();
    let player = owner.get(&format!("/recordings/{id}")).await;
    assert_eq!(player.status, 200, "{}", player.body);
    let token = csrf(&player.body);
    let (unshared, unshared_secret) = webutil::share_recording(&mut owner, &id, &token, "24").await;
    let (expiring, expiring_secret) = webutil::share_recording(&mut owner, &id, &token, "1").await;

    // Unshared while a viewer's download streams: the rest does not arrive.
    let (response, len, first) = start_download(&base, &unshared, &unshared_secret).await;
    let r = owner
        .post(&format!("/shares/{unshared}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!((r.status, r.location()), (303, "/shares"), "{}", r.body);
    let (rest, failed) = rest_of(response).await;
    assert!(
        failed && first + rest < len,
        "after unsharing, {} of {len} bytes arrived (failed: {failed})",
        first + rest
    );

    // Expired while it streams: the same.
    let (response, len, first) = start_download(&base, &expiring, &expiring_secret).await;
    server.advance_secs(3601);
    let (rest, failed) = rest_of(response).await;
    assert!(
        failed && first + rest < len,
        "after expiry, {} of {len} bytes arrived (failed: {failed})",
        first + rest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_cameras_kept_recordings_are_still_listed_and_can_be_deleted() {
    let server = webutil::Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    // Added from the web UI (it need not answer: the recording is written here).
    let page = owner.get("/cameras/add").await;
    let r = owner
        .post(
            "/cameras/add",
            &[
                ("csrf", &csrf(&page.body)),
                ("name", "porch"),
                ("url", "rtsp://127.0.0.1:9/main"),
                ("mode", "off"),
                ("storage_days", "90"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    let id = webutil::objects::put_recording(&server, 41, webutil::T0_MICROS - 60_000_000);
    let recordings_of_porch = |server: &webutil::Server| {
        server
            .daemon()
            .index
            .all_recordings()
            .expect("recordings")
            .into_iter()
            .filter(|r| r.camera.as_str() == "porch")
            .count()
    };

    let dashboard = owner.get("/").await.body;
    assert!(
        !dashboard.contains("removed-cameras"),
        "no camera removed yet"
    );

    // Removed, keeping its recordings.
    let page = owner.get("/cameras/discovered").await;
    let token = csrf(&page.body);
    let r = owner
        .post(
            "/cameras/porch/remove",
            &[
                ("csrf", token.as_str()),
                ("confirm", "porch"),
                ("recordings", "keep"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    assert_eq!(recordings_of_porch(&server), 1, "kept");

    // The dashboard links to them, for whoever may list them: not a support helper.
    let dashboard = owner.get("/").await.body;
    let removed = dashboard
        .split("<section id=\"removed-cameras\">")
        .nth(1)
        .expect("the removed cameras' list on the dashboard");
    assert!(
        removed.contains("Recordings of removed cameras"),
        "{removed}"
    );
    assert!(
        removed.contains("<a href=\"/cameras/porch/recordings\">porch</a>"),
        "{removed}"
    );
    let secret = webutil::invite_support(&mut owner, "Ines", &id.to_string()).await;
    let (mut helper, r) =
        webutil::accept_invitation(&server, &secret, "ines", "installer plumbing ladder 99").await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    webutil::enrol_with(&server, &mut helper).await;
    let theirs = helper.get("/").await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert!(!theirs.body.contains("removed-cameras"), "{}", theirs.body);

    // Still listed, and they can be deleted.
    let day = owner.get("/cameras/porch/recordings").await;
    assert_eq!(day.status, 200, "{}", day.body);
    assert!(day.body.contains(&format!("id=\"rec-{id}\"")), "listed");
    let r = owner
        .post(
            "/cameras/porch/delete",
            &[("csrf", token.as_str()), ("confirm", "porch")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(recordings_of_porch(&server), 0, "deleted");
    let dashboard = owner.get("/").await.body;
    assert!(
        !dashboard.contains("removed-cameras"),
        "none left: {dashboard}"
    );
    // With its last recording the removed camera is forgotten.
    assert_eq!(owner.get("/cameras/porch/recordings").await.status, 404);
    assert_eq!(owner.get("/cameras/nothere/recordings").await.status, 404);
}

/// Starts a GET of `path` as `c` (its cookie) and reads its first piece: (the response,
/// its length, the bytes read so far).
async fn start_get(c: &Client, base: &str, path: &str) -> (reqwest::Response, u64, u64) {
    let mut response = c
        .http
        .get(format!("{base}{path}"))
        .header("cookie", c.cookie_header())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200, "{path}");
    let len = response.content_length().unwrap_or(u64::MAX);
    let first = response.chunk().await.expect("first bytes").expect("some");
    (response, len, first.len() as u64)
}

/// A download that is streaming when access ends stops there, as share links and live
/// view do: a shared user removed mid-download of a recording gets no more of it, and
/// the owner's archive of everything stops when that session logs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_user_or_logging_out_cuts_off_a_download_already_streaming() {
    let server = webutil::Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let base = server.base();
    // 24 MB: far more than the socket buffers between server and client hold.
    let id = web_share_fixtures::put_big_recording(&server, 78, 240, 100_000).to_string();
    let guest = webutil::shared_guest(&server, &mut owner).await;

    let path = format!("/recordings/{id}/download");
    let (response, len, first) = start_get(&guest, &base, &path).await;
    assert!(len > 20_000_000, "{len} bytes");
    let users = owner.get("/users").await.body;
    let user = users
        .split("<tr id=\"user-")
        .find(|row| row.contains("guest"))
        .and_then(|row| row.split('"').next())
        .expect("the guest's row")
        .to_owned();
    let r = owner
        .post(&format!("/users/{user}/remove"), &[("csrf", &csrf(&users))])
        .await;
    assert_eq!((r.status, r.location()), (303, "/users"), "{}", r.body);
    let (rest, failed) = rest_of(response).await;
    assert!(
        failed && first + rest < len,
        "after removal, {} of {len} bytes arrived (failed: {failed})",
        first + rest
    );

    // The archive has no length to compare with: it must fail rather than end.
    let (response, _, _) = start_get(&owner, &base, "/export-everything.tar").await;
    let page = owner.get("/").await;
    let r = owner.post("/logout", &[("csrf", &csrf(&page.body))]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (rest, failed) = rest_of(response).await;
    assert!(
        failed,
        "the archive ended normally after logout ({rest} more bytes)"
    );
}

/// Deleting a recording ends a download of it already streaming: the open file would
/// otherwise play on after its key was shredded and its name unlinked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_recording_cuts_off_a_download_of_it_already_streaming() {
    let server = webutil::Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let base = server.base();
    // 24 MB: far more than the socket buffers between server and client hold.
    let id = web_share_fixtures::put_big_recording(&server, 79, 240, 100_000).to_string();
    let guest = webutil::shared_guest(&server, &mut owner).await;

    let path = format!("/recordings/{id}/download");
    let (response, len, first) = start_get(&guest, &base, &path).await;
    assert!(len > 20_000_000, "{len} bytes");
    let player = owner.get(&format!("/recordings/{id}")).await;
    let r = owner
        .post(
            &format!("/recordings/{id}/delete"),
            &[("csrf", &csrf(&player.body))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (rest, failed) = rest_of(response).await;
    assert!(
        failed && first + rest < len,
        "after deletion, {} of {len} bytes arrived (failed: {failed})",
        first + rest
    );
}

/// A download or the export of everything that outlasts the idle limit (30 minutes)
/// still arrives whole, and the session that started it is not logged out: a
/// transfer is not an idle page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_longer_than_the_idle_limit_finishes_and_keeps_the_session() {
    let server = webutil::Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let base = server.base();
    // 24 MB: far more than the socket buffers between server and client hold.
    let id = web_share_fixtures::put_big_recording(&server, 79, 240, 100_000).to_string();
    let path = format!("/recordings/{id}/download");
    let (download, len, first) = start_get(&owner, &base, &path).await;
    assert!(len > 20_000_000, "{len} bytes");
    let (archive, _, archive_first) = start_get(&owner, &base, "/export-everything.tar").await;

    server.advance_secs(31 * 60);
    let (rest, failed) = rest_of(download).await;
    assert!(
        !failed && first + rest == len,
        "after 31 minutes, {} of {len} bytes arrived (failed: {failed})",
        first + rest
    );
    let (rest, failed) = rest_of(archive).await;
    assert!(
        !failed && archive_first + rest > len,
        "the archive ended after {} bytes (failed: {failed})",
        archive_first + rest
    );
    assert_eq!(owner.get("/").await.status, 200, "still logged in");
}
