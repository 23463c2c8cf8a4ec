//! Events on a camera's day page: listed newest first with their thumbnail (decrypted
//! from its sealed file on request), triggers and a link that plays the recording
//! from the event's moment; deleting one removes it and its thumbnail.

mod webutil;

use porchlight::index::{EventEntry, RecordingEntry, RecordingState};
use porchlight::model::{EventId, RecordingId, Trigger};
use webutil::{csrf, Server, T0_MICROS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_show_thumbnails_play_from_their_moment_and_can_be_deleted() {
    // A camera the registry knows, never reachable (nothing listens on port 9).
    let server = Server::start(
        "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"events\"\n",
    )
    .await;
    let (mut c, _, _) = server.owner().await;
    let d = server.daemon();
    let camera = "porch".parse().expect("name");
    let recording = RecordingEntry {
        id: RecordingId(0x1111),
        camera: "porch".parse().expect("name"),
        start_micros: T0_MICROS - 60_000_000,
        end_micros: T0_MICROS - 20_000_000,
        frames: 400,
        bytes: 1,
        trigger: Trigger::Motion,
        wrapped_key: String::new(),
        state: RecordingState::Finished,
        durable_len: None,
    };
    d.index.put_recording(&recording).expect("recording");
    // The recording has an index entry only; its camera's directory exists as it would
    // after any real recording (shredding a missing file fsyncs that directory).
    std::fs::create_dir_all(server.data_dir().join("recordings/porch")).expect("dir");
    let jpeg = b"\xff\xd8\xff\xe0 not really a picture \xff\xd9".to_vec();
    let mk = |id: u64, start: i64, thumb: bool| EventEntry {
        id: EventId(id),
        camera: "porch".parse().expect("name"),
        start_micros: start,
        end_micros: start + 12_000_000,
        triggers: vec![Trigger::Motion],
        peak_score: 0.2,
        score_curve: vec![10, 50, 20],
        has_thumbnail: thumb,
        recordings: vec![recording.id],
        open: false,
    };
    let older = mk(0xaaaa, T0_MICROS - 50_000_000, true);
    let newer = mk(0xbbbb, T0_MICROS - 40_000_000, false);
    d.index.put_event(&older).expect("event");
    d.index.put_event(&newer).expect("event");
    d.store
        .write_thumbnail(&camera, older.id, older.start_micros, &jpeg)
        .expect("thumbnail");

    let day = c.get("/cameras/porch/recordings").await;
    assert_eq!(day.status, 200);
    let (a, b) = (
        day.body
            .find("id=\"event-000000000000bbbb\"")
            .expect("newer listed"),
        day.body
            .find("id=\"event-000000000000aaaa\"")
            .expect("older listed"),
    );
    assert!(a < b, "newest first");
    assert!(
        day.body.contains("/recordings/0000000000001111?t=10"),
        "plays 10 s in"
    );
    assert!(
        day.body.contains("class=\"event\""),
        "activity on the timeline"
    );
    assert!(day
        .body
        .contains("src=\"/events/000000000000aaaa/thumbnail.jpg\""));

    let thumb = c.get("/events/000000000000aaaa/thumbnail.jpg").await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), "image/jpeg");
    // A picture of whoever came to the door stays in no browser cache.
    assert_eq!(thumb.header("cache-control"), "private, no-store");
    assert_eq!(
        thumb.body.as_bytes(),
        String::from_utf8_lossy(&jpeg).as_bytes()
    );
    let dashboard = c.get("/").await;
    assert!(
        dashboard
            .body
            .contains("/events/000000000000aaaa/thumbnail.jpg"),
        "latest thumbnail on the tile"
    );
    let player = c.get("/recordings/0000000000001111?t=10").await;
    assert!(
        player.body.contains("video.mp4#t=10"),
        "starts at the event"
    );

    let mut stranger = server.client();
    assert_eq!(
        stranger
            .get("/events/000000000000aaaa/thumbnail.jpg")
            .await
            .location(),
        "/login"
    );

    let token = csrf(&day.body);
    let r = c
        .post("/events/000000000000aaaa/delete", &[("csrf", &token)])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        c.get("/events/000000000000aaaa/thumbnail.jpg").await.status,
        404
    );
    assert!(d.index.get_event(older.id).expect("get").is_none());
    assert!(
        d.index.get_recording(recording.id).expect("get").is_none(),
        "its recording went too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_socket_refuses_other_sites_and_strangers() {
    let server = Server::start(
        "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"events\"\n",
    )
    .await;
    let (mut c, _, _) = server.owner().await;
    let url = format!("{}/cameras/porch/live.ws", c.base);
    let http = c.http.clone();
    let upgrade = |origin: &str| {
        http.get(&url)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("origin", origin.to_owned())
    };
    let evil = upgrade("https://evil.example");
    assert_eq!(
        c.send(evil).await.status,
        403,
        "cross-site WebSocket hijacking"
    );
    let ours = upgrade(&c.base.clone());
    assert_eq!(c.send(ours).await.status, 101, "same origin upgrades");
    let mut stranger = server.client();
    let req = stranger
        .http
        .get(&url)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("origin", server.base());
    assert_eq!(stranger.send(req).await.location(), "/login");
    assert_eq!(c.get("/cameras/nosuch/live").await.status, 404);
}
