//! Linked services over real HTTPS: the owner makes a token on the Linked services
//! page, a doorbell uses it to trigger a camera, an integration reads and follows
//! events; scopes are enforced, a revoked or wrong token is refused on the very next
//! request, a browser session is not a token, and the token is never logged or shown
//! again.
//!
//! The cameras point at a port nothing listens on: a trigger still makes an event
//! (the recorder opens it before any video arrives), which is what the API reports.

mod common;
mod webutil;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::camera::{CameraOptions, TestCamera};
use porchlight::index::RecordingState;
use porchlight::model::Trigger;
use webutil::{csrf, make_token, Reply, Server};

const CAMERAS: &str =
    "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"events\"\n\
[[camera]]\nname = \"lobby\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"off\"\n";

/// Everything the daemon logs in this test binary: porchlight's own lines at every
/// level, its dependencies' at the daemon's default level.
fn log() -> Arc<Mutex<Vec<u8>>> {
    webutil::capture_log("info,porchlight=trace")
}

fn logged() -> String {
    String::from_utf8_lossy(&log().lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// Makes a token on the Linked services page, as the owner's browser does.
/// A request from a service: no cookies, no Origin, just the token (if any).
async fn api(server: &Server, method: &str, path: &str, token: Option<&str>) -> Reply {
    let mut c = server.client();
    let url = format!("{}{path}", c.base);
    let mut req = match method {
        "POST" => c.http.post(url),
        _ => c.http.get(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    c.send(req).await
}

fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("JSON expected ({e}): {}", r.body))
}

/// A 401 as the API documents it.
fn assert_unauthenticated(r: &Reply, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.body);
    assert!(
        r.header("www-authenticate").starts_with("Bearer"),
        "{what}: {:?}",
        r.headers
    );
    assert_eq!(json(r)["error"], 401, "{what}");
}

/// The id of the external-trigger event of `camera`, once the recorder has opened it.
async fn wait_for_external_event(server: &Server, camera: &str) -> String {
    for _ in 0..100 {
        let events = server.daemon().index.all_events().expect("events");
        if let Some(e) = events
            .iter()
            .find(|e| e.camera.as_str() == camera && e.triggers.contains(&Trigger::External))
        {
            return e.id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no external-trigger event on {camera}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doorbell_token_triggers_and_reads_events_until_it_is_revoked() {
    let _ = log();
    let server = Server::start(CAMERAS).await;
    let (mut owner, _, _) = server.owner().await;
    let home = owner.get("/").await;
    assert!(
        home.body.contains("href=\"/linked-services\""),
        "in the navigation"
    );
    let token = make_token(
        &mut owner,
        "Doorbell button",
        &["trigger:write", "events:read"],
    )
    .await;

    let list = owner.get("/linked-services").await;
    assert!(list.body.contains("Doorbell button"));
    assert!(list.body.contains("events:read, trigger:write"));
    assert!(list.body.contains("never"), "not used yet");
    let secret = token.rsplit('_').next().expect("secret part");
    assert!(!list.body.contains(secret), "shown only once");

    // The doorbell rings: no cookie, no Origin header, just the token.
    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/porch/trigger",
        Some(&token),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.header("content-type"), "application/json");
    let body = json(&r);
    assert_eq!(body["camera"], "porch");
    assert_eq!(body["status"], "accepted");
    let event = wait_for_external_event(&server, "porch").await;

    let r = api(&server, "GET", "/api/v1/events", Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = json(&r);
    let listed = events
        .as_array()
        .expect("an array")
        .iter()
        .find(|e| e["id"] == event.as_str())
        .expect("the doorbell's event is listed");
    assert_eq!(listed["camera"], "porch");
    assert_eq!(listed["kind"], "trigger");
    assert_eq!(listed["triggers"][0], "external");
    assert!(listed["start"].as_str().expect("start").ends_with('Z'));

    // Filters: how many events each query lists, or its refusal (JSON too).
    for (query, want) in [
        ("camera=lobby", Ok(0)), // another camera's events are filtered out
        ("camera=porch&limit=1", Ok(1)),
        ("since=2099-01-01T00:00:00Z", Ok(0)), // nothing since the future
        ("since=2000-01-01T00:00:00Z", Ok(1)),
        ("since=yesterday", Err(400)),
        ("limit=0", Err(400)),
        ("limit=many", Err(400)),
    ] {
        let r = api(
            &server,
            "GET",
            &format!("/api/v1/events?{query}"),
            Some(&token),
        )
        .await;
        let got = match r.status {
            200 => Ok(json(&r).as_array().expect("array").len()),
            status => {
                assert_eq!(json(&r)["error"], status, "{query}: the refusal is JSON");
                Err(status)
            }
        };
        assert_eq!(got, want, "{query}: {}", r.body);
    }

    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/lobby/trigger",
        Some(&token),
    )
    .await;
    assert_eq!(r.status, 409, "mode off: {}", r.body);
    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/garage/trigger",
        Some(&token),
    )
    .await;
    assert_eq!(r.status, 404, "no such camera: {}", r.body);
    assert_eq!(json(&r)["error"], 404);
    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/porch/trigger?seconds=0",
        Some(&token),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = api(&server, "GET", "/api/v1/nothing-here", Some(&token)).await;
    assert_eq!(r.status, 404);

    let list = owner.get("/linked-services").await;
    assert!(
        !list.body.contains(">never<"),
        "last use shown: {}",
        list.body
    );

    // A wrong token, another scheme, none at all.
    let mut wrong = token.clone();
    let last = wrong.pop().expect("char");
    wrong.push(if last == '0' { '1' } else { '0' });
    let r = api(&server, "GET", "/api/v1/events", Some(&wrong)).await;
    assert_unauthenticated(&r, "one character off");
    let r = api(
        &server,
        "GET",
        "/api/v1/events",
        Some("plt_0000000000000000_00"),
    )
    .await;
    assert_unauthenticated(&r, "made up");
    let r = api(&server, "GET", "/api/v1/events", None).await;
    assert_unauthenticated(&r, "no token");
    let mut c = server.client();
    let req = c
        .http
        .get(format!("{}/api/v1/events", c.base))
        .header("authorization", format!("Basic {token}"));
    assert_unauthenticated(&c.send(req).await, "not a bearer token");

    // Revoked: refused on the very next request.
    let id = list
        .body
        .split("id=\"token-")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the token's row")
        .to_owned();
    let r = webutil::post_revoke(&mut owner, &list.body, &id).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/porch/trigger",
        Some(&token),
    )
    .await;
    assert_unauthenticated(&r, "revoked");
    let list = owner.get("/linked-services").await;
    assert!(!list.body.contains("Doorbell button"), "gone from the list");
    let r = webutil::post_revoke(&mut owner, &list.body, &id).await;
    assert_eq!(r.status, 404, "already revoked");

    let text = logged();
    assert!(
        text.contains("API: camera triggered"),
        "the log has the use"
    );
    assert!(!text.contains(secret), "the token is never logged");
    assert!(
        !text.contains(&wrong[wrong.len() - 64..]),
        "nor a wrong one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_enforced_and_a_browser_session_is_not_a_token() {
    let _ = log();
    let server = Server::start(CAMERAS).await;
    let (mut owner, _, _) = server.owner().await;
    let reader = make_token(&mut owner, "Home Assistant", &["events:read"]).await;
    let bell = make_token(&mut owner, "Doorbell", &["trigger:write"]).await;
    let watcher = make_token(&mut owner, "Viewer", &["live:read"]).await;

    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/porch/trigger",
        Some(&reader),
    )
    .await;
    assert_eq!(r.status, 403, "events:read cannot trigger: {}", r.body);
    assert_eq!(json(&r)["error"], 403);
    let r = api(&server, "GET", "/api/v1/events", Some(&bell)).await;
    assert_eq!(r.status, 403, "trigger:write cannot read events");
    let r = api(&server, "GET", "/api/v1/events/stream", Some(&bell)).await;
    assert_eq!(r.status, 403, "nor follow them");
    let r = api(&server, "GET", "/api/v1/events", Some(&watcher)).await;
    assert_eq!(r.status, 403, "live:read is not events:read");
    assert_eq!(
        api(&server, "GET", "/api/v1/events", Some(&reader))
            .await
            .status,
        200
    );

    // The owner's logged-in browser has no token: cookies open no API route, even
    // same-origin.
    assert_unauthenticated(&owner.get("/api/v1/events").await, "cookie GET");
    let r = owner.post("/api/v1/cameras/porch/trigger", &[]).await;
    assert_unauthenticated(&r, "cookie POST with Origin");
    // A token opens no page.
    let mut c = server.client();
    let req = c
        .http
        .get(format!("{}/linked-services", c.base))
        .bearer_auth(&reader);
    assert_eq!(c.send(req).await.location(), "/login");

    // The page is the owner's, and its forms need the CSRF token and a known scope.
    assert_eq!(
        server.client().get("/linked-services").await.location(),
        "/login"
    );
    let page = owner.get("/linked-services").await;
    let token = csrf(&page.body);
    let r = owner
        .post(
            "/linked-services",
            &[("name", "x"), ("scope", "events:read")],
        )
        .await;
    assert_eq!(r.status, 403, "no CSRF token");
    let r = owner
        .post(
            "/linked-services",
            &[("csrf", &token), ("name", "x"), ("scope", "admin")],
        )
        .await;
    assert_eq!(r.status, 400, "unknown scope");
    let r = owner
        .post("/linked-services", &[("csrf", &token), ("name", "x")])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("choose at least one scope"), "{}", r.body);
    let r = owner
        .post(
            "/linked-services",
            &[("csrf", &token), ("name", " "), ("scope", "events:read")],
        )
        .await;
    assert_eq!(r.status, 400);

    let text = logged();
    for t in [&reader, &bell, &watcher] {
        assert!(!text.contains(t.as_str()), "a token in the log");
    }
}

/// Reads the stream until `needle` appears; panics after `secs`.
async fn read_until(resp: &mut reqwest::Response, seen: &mut String, needle: &str, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in time; stream so far: {seen}"))
            .expect("stream readable")
            .unwrap_or_else(|| panic!("stream ended before {needle:?}: {seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_delivers_new_events_and_ends_when_its_token_is_revoked() {
    let _ = log();
    let server = Server::start(CAMERAS).await;
    let (mut owner, _, _) = server.owner().await;
    let follower = make_token(&mut owner, "Home Assistant", &["events:read"]).await;
    let bell = make_token(&mut owner, "Doorbell", &["trigger:write"]).await;

    let c = server.client();
    let mut resp = c
        .http
        .get(format!("{}/api/v1/events/stream", c.base))
        .bearer_auth(&follower)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().expect("ascii"),
        "text/event-stream"
    );

    // An event that begins after connecting.
    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/porch/trigger",
        Some(&bell),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let event = wait_for_external_event(&server, "porch").await;
    let mut seen = String::new();
    read_until(&mut resp, &mut seen, &format!("id: {event}"), 10).await;
    assert!(seen.contains("event: trigger"), "{seen}");
    assert!(seen.contains("\"camera\":\"porch\""), "{seen}");
    assert!(seen.contains("\"triggers\":[\"external\"]"), "{seen}");
    assert_eq!(seen.matches("event: ").count(), 1, "one message per event");

    // Revoke the follower's token; the next event ends its stream instead of
    // reaching it. The first event closes once its post-roll is over.
    webutil::revoke_token(&mut owner, "Home Assistant").await;
    server.advance_secs(120);
    let closed = async {
        loop {
            let events = server.daemon().index.all_events().expect("events");
            if events.iter().all(|e| !e.open) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the first event closes");
    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/porch/trigger",
        Some(&bell),
    )
    .await;
    assert_eq!(r.status, 202);
    let ended = async {
        while let Some(chunk) = resp.chunk().await.expect("readable") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .expect("the stream ends");
    assert_eq!(
        seen.matches("event: ").count(),
        1,
        "nothing after revocation: {seen}"
    );
    assert!(!logged().contains(&follower[follower.len() - 64..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doorbell_token_makes_a_real_camera_record_an_external_trigger() {
    let _ = log();
    let camera = TestCamera::start(CameraOptions::default());
    let mut server = Server::start(&format!(
        "[[camera]]\nname = \"bell\"\nurl = \"{}\"\nmode = \"events\"\npre_roll_seconds = 2\npost_roll_seconds = 2\n",
        camera.main_url()
    ))
    .await;
    let (mut owner, _, _) = server.owner().await;
    let token = make_token(
        &mut owner,
        "Doorbell button",
        &["trigger:write", "events:read"],
    )
    .await;
    server.wait_streaming("bell").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let index = server.daemon().index.clone();
    assert!(
        index.all_recordings().expect("index").is_empty(),
        "nothing recorded before the doorbell"
    );

    // The simulated clock stands still while the camera's frames (anchored to it at
    // connection) move on in real time: a long trigger keeps them inside it.
    let r = api(
        &server,
        "POST",
        "/api/v1/cameras/bell/trigger?seconds=300",
        Some(&token),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let recorded = async {
        loop {
            let rows = index.all_recordings().expect("index");
            if let Some(r) = rows.iter().find(|r| r.trigger == Trigger::External) {
                return r.id;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let id = tokio::time::timeout(Duration::from_secs(10), recorded)
        .await
        .expect("the doorbell starts a recording");
    let r = api(&server, "GET", "/api/v1/events?camera=bell", Some(&token)).await;
    let events = json(&r);
    assert_eq!(events[0]["triggers"][0], "external", "{events}");
    assert_eq!(events[0]["recordings"][0], id.to_string().as_str());

    tokio::time::sleep(Duration::from_secs(2)).await;
    server.stop().await;
    let entry = index.get_recording(id).expect("get").expect("kept");
    assert_eq!(entry.state, RecordingState::Finished);
    assert_eq!(entry.trigger, Trigger::External);
    assert!(
        entry.frames >= 20,
        "pre-roll and more: {} frames",
        entry.frames
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_read_token_gets_the_cameras_picture_as_jpeg_and_nothing_else_does() {
    let _ = log();
    let camera = TestCamera::start(CameraOptions::default());
    let server = Server::start(&format!(
        "[[camera]]\nname = \"yard\"\nurl = \"{}\"\nmode = \"off\"\n\
         [[camera]]\nname = \"shed\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"off\"\n",
        camera.main_url()
    ))
    .await;
    let (mut owner, _, _) = server.owner().await;
    let live = make_token(&mut owner, "Home Assistant", &["live:read"]).await;
    let events_only = make_token(&mut owner, "Event log", &["events:read"]).await;
    server.wait_streaming("yard").await;

    // Refusals first: no token, a browser session, a token without live:read.
    let path = "/api/v1/cameras/yard/snapshot.jpg";
    assert_unauthenticated(&api(&server, "GET", path, None).await, "anonymous");
    let r = owner.get(path).await;
    assert_unauthenticated(&r, "a browser session is not a token");
    let r = api(&server, "GET", path, Some(&events_only)).await;
    assert_eq!((r.status, json(&r)["error"].as_u64()), (403, Some(403)));
    let r = api(
        &server,
        "GET",
        "/api/v1/cameras/nope/snapshot.jpg",
        Some(&live),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = api(
        &server,
        "GET",
        "/api/v1/cameras/shed/snapshot.jpg",
        Some(&live),
    )
    .await;
    assert_eq!(r.status, 503, "a camera that is not streaming: {}", r.body);

    // The picture: a JPEG of the main stream at its size, which ffprobe reads.
    let c = server.client();
    let r = c
        .http
        .get(format!("{}{path}", c.base))
        .bearer_auth(&live)
        .send()
        .await
        .expect("snapshot");
    assert_eq!(r.status().as_u16(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("content-type"), "image/jpeg");
    assert_eq!(header("cache-control"), "no-store");
    let jpeg = r.bytes().await.expect("body");
    assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snapshot.jpg");
    std::fs::write(&file, &jpeg).expect("write");
    let probe = common::ffprobe(&file);
    assert_eq!(probe.codec, "mjpeg");
    assert_eq!(
        (probe.width, probe.height),
        (1280, 720),
        "the main stream's size"
    );
    let text = logged();
    assert!(text.contains("API: snapshot"), "the log has the use");
    assert!(!text.contains(&live[live.len() - 40..]), "never the token");
}

/// Revocation ends an event stream even when nothing happens on it: a stream filtered
/// to a quiet camera is checked at each keep-alive (15 s), not only when an event of
/// that camera comes (which may be days away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_cameras_event_stream_ends_soon_after_its_token_is_revoked() {
    let server = Server::start(CAMERAS).await;
    let (mut owner, _, _) = server.owner().await;
    let follower = make_token(&mut owner, "Quiet follower", &["events:read"]).await;
    let c = server.client();
    let mut resp = c
        .http
        .get(format!("{}/api/v1/events/stream?camera=lobby", c.base))
        .bearer_auth(&follower)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(resp.status(), 200);

    webutil::revoke_token(&mut owner, "Quiet follower").await;
    let mut seen = String::new();
    let ended = async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    // One keep-alive (15 s) and room for a busy machine.
    tokio::time::timeout(Duration::from_secs(25), ended)
        .await
        .expect("the stream ends without an event on its camera");
    assert!(!seen.contains("event: "), "no event was sent: {seen}");
}

/// Ten bad or missing tokens from one address within a minute block that address
/// for a minute: 429 with `Retry-After`, its tokens not looked at (a good one is
/// refused too); another address is not affected. The log has one line for the
/// first refusal, then at most one a minute with the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_from_one_address_are_throttled_and_logged_once_a_minute() {
    let _ = log();
    let server = Server::start(CAMERAS).await;
    let (mut owner, _, _) = server.owner().await;
    let good = make_token(&mut owner, "Home Assistant", &["events:read"]).await;
    // Only this test uses this address, so its log lines are this test's.
    let guesser_ip: std::net::IpAddr = "127.0.0.3".parse().expect("address");
    let lines = || {
        logged()
            .lines()
            .filter(|l| l.contains("address=127.0.0.3"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut guesser = server.client_from(guesser_ip);
    let url = format!("{}/api/v1/events", guesser.base);
    let wrong = format!("plt_{}", "x".repeat(81));
    let mut statuses = Vec::new();
    for i in 0..30 {
        let req = guesser.http.get(&url);
        // Every third without a token: a missing token counts as a bad one.
        let req = if i % 3 == 0 {
            req
        } else {
            req.bearer_auth(&wrong)
        };
        let r = guesser.send(req).await;
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), "60", "{i}");
            assert_eq!(json(&r)["error"], 429);
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    let req = guesser.http.get(&url).bearer_auth(&good);
    assert_eq!(
        guesser.send(req).await.status,
        429,
        "while blocked, a good token from that address is not looked at either"
    );
    let mut door = server.client_from("127.0.0.2".parse().expect("address"));
    let req = door.http.get(&url).bearer_auth(&good);
    assert_eq!(
        door.send(req).await.status,
        200,
        "another address is not blocked"
    );
    assert_eq!(
        lines().len(),
        1,
        "31 refusals, one log line: {:#?}",
        lines()
    );

    // A minute later the block is over: the next bad token is looked at (401), and
    // the log gets one line counting the refusals since the first.
    server.advance_secs(61);
    let req = guesser.http.get(&url).bearer_auth(&wrong);
    assert_eq!(guesser.send(req).await.status, 401);
    let seen = lines();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert!(seen[1].contains("31 token refusals"), "{seen:#?}");
    let req = guesser.http.get(&url).bearer_auth(&good);
    assert_eq!(guesser.send(req).await.status, 200, "the good token again");
    assert!(!logged().contains(good.as_str()), "a token in the log");
}
