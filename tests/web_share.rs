//! Share links: playback cost (a player sends many Range requests for one link,
//! and each must not read the whole copy again), and bulk deletion revoking links.
//! In its own test binary because the first test counts the bytes the whole process
//! reads (`/proc/self/io`), which other tests running beside it would add to: the
//! tests here take [`ONE_AT_A_TIME`] so they never run side by side.

mod web_share_fixtures;
mod webutil;

use webutil::{csrf, Client, Server};

/// Held by every test of this binary for its whole run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bytes this process has read through read syscalls so far (`rchar`): the
/// in-process server's file reads, plus the client's few socket reads.
fn bytes_read_so_far() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("rchar: ").map(|n| n.trim().parse().ok()))
                .flatten()
        })
        .expect("rchar in /proc/self/io")
}

/// Small Range requests on a share link of a ten-minute recording of small
/// fragments (600 one-second fragments of 10 frames of 5 KB: 30 MB): only the
/// first reads the copy through (to build its layout); the next ones read about
/// the range asked for. Prints what each cost (`--nocapture`), and the same for
/// the recording itself (whose layout is cached after its first request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_links_range_requests_do_not_each_reread_the_copy() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = webutil::Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let base = server.base();
    let id = web_share_fixtures::put_big_recording(&server, 78, 6000, 5_000).to_string();
    let player = owner.get(&format!("/recordings/{id}")).await;
    let token = csrf(&player.body);
    let (link, secret) = web_share_fixtures::share_recording(&mut owner, &id, &token, "24").await;
    let mut viewer = Client::new(&base);
    let r = viewer
        .post(&format!("/s/{link}/open"), &[("secret", &secret)])
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let mut share_reads = Vec::new();
    for (who, c, path) in [
        ("recording", &owner, format!("/recordings/{id}/video.mp4")),
        ("share link", &viewer, format!("/s/{link}/video.mp4")),
    ] {
        for n in 0..3 {
            let (before, t) = (bytes_read_so_far(), std::time::Instant::now());
            let r = c
                .http
                .get(format!("{base}{path}"))
                .header("cookie", c.cookie_header())
                .header("range", "bytes=1000000-1001023")
                .send()
                .await
                .expect("request");
            assert_eq!(r.status().as_u16(), 206);
            let got = r.bytes().await.expect("body").len();
            let read = bytes_read_so_far() - before;
            println!(
                "{who} request {n}: {got} bytes answered, {read} bytes read, {:?}",
                t.elapsed()
            );
            if who == "share link" {
                share_reads.push(read);
            }
        }
    }
    assert!(
        share_reads[0] > 30_000_000,
        "the first request builds the layout from the whole copy: {share_reads:?}"
    );
    assert!(
        share_reads[1..].iter().all(|&n| n < 1_000_000),
        "later requests read only about their range: {share_reads:?}"
    );
}

/// Writes recording `id` of camera `porch`, shares it and opens the link as a fresh
/// viewer who plays it: (link id, secret, the viewer).
async fn shared_and_watched(
    server: &Server,
    owner: &mut Client,
    id: u64,
) -> (String, String, Client) {
    let start = webutil::T0_MICROS - 60_000_000;
    let id = webutil::objects::put_recording(server, id, start).to_string();
    let player = owner.get(&format!("/recordings/{id}")).await;
    assert_eq!(player.status, 200, "{}", player.body);
    let (link, secret) =
        web_share_fixtures::share_recording(owner, &id, &csrf(&player.body), "24").await;
    let mut viewer = Client::new(&server.base());
    let r = viewer
        .post(&format!("/s/{link}/open"), &[("secret", &secret)])
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = viewer.get(&format!("/s/{link}/video.mp4")).await;
    assert_eq!(r.status, 200, "the viewer plays the link");
    (link, secret, viewer)
}

/// After a bulk deletion, `link`'s viewer gets nothing more, the link no longer
/// opens, and its copy is gone from `data/shares`.
async fn assert_revoked(server: &Server, how: &str, link: &str, secret: &str, viewer: &mut Client) {
    let r = viewer.get(&format!("/s/{link}/video.mp4")).await;
    assert_eq!(
        r.status, 404,
        "after {how}, the open viewer still plays the copy"
    );
    let r = Client::new(&server.base())
        .post(&format!("/s/{link}/open"), &[("secret", secret)])
        .await;
    assert_eq!(r.status, 404, "after {how}, the link still opens");
    let id = porchlight::share::parse_link_id(link).expect("a link id");
    assert!(
        !server.daemon().store.share_path(id).exists(),
        "after {how}, the copy is still in data/shares"
    );
}

/// "Delete all recordings of a camera", removing a camera with its recordings, and
/// "delete everything" destroy the shared copies too: a link to that footage stops
/// at once for whoever is watching, and its copy is shredded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_cameras_recordings_or_everything_revokes_their_share_links() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let r = webutil::add_camera(
        &mut owner,
        &[
            ("name", "porch"),
            ("url", "rtsp://127.0.0.1:9/main"),
            ("mode", "off"),
            ("storage_days", "30"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);

    let (link, secret, mut viewer) = shared_and_watched(&server, &mut owner, 91).await;
    let day = owner.get("/cameras/porch/recordings").await;
    let r = owner
        .post(
            "/cameras/porch/delete",
            &[("csrf", &csrf(&day.body)), ("confirm", "porch")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_revoked(
        &server,
        "deleting the camera's recordings",
        &link,
        &secret,
        &mut viewer,
    )
    .await;

    let (link, secret, mut viewer) = shared_and_watched(&server, &mut owner, 92).await;
    let page = owner.get("/cameras/discovered").await;
    let r = owner
        .post(
            "/cameras/porch/remove",
            &[
                ("csrf", &csrf(&page.body)),
                ("confirm", "porch"),
                ("recordings", "delete"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    assert_revoked(
        &server,
        "removing the camera with its recordings",
        &link,
        &secret,
        &mut viewer,
    )
    .await;

    // No camera now: the recording is of a camera gone from the configuration.
    let (link, secret, mut viewer) = shared_and_watched(&server, &mut owner, 93).await;
    let page = owner.get("/delete-everything").await;
    let r = owner
        .post(
            "/delete-everything",
            &[
                ("csrf", &csrf(&page.body)),
                ("confirm", "delete everything"),
                ("password", webutil::PASSWORD),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    assert_revoked(&server, "deleting everything", &link, &secret, &mut viewer).await;
    let log = owner.get("/activity").await.body;
    assert!(
        log.contains("1 share link(s) revoked"),
        "the audit entry counts the links: {log}"
    );
}
