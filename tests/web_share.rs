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
    let (link, secret) = webutil::share_recording(&mut owner, &id, &token, "24").await;
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
    let (link, secret) = webutil::share_recording(owner, &id, &csrf(&player.body), "24").await;
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

/// The recording `id` shared by `owner` for a day: (link id, secret).
async fn a_shared_recording(server: &Server, owner: &mut Client, id: u64) -> (String, String) {
    let start = webutil::T0_MICROS - 60_000_000;
    let id = webutil::objects::put_recording(server, id, start).to_string();
    let player = owner.get(&format!("/recordings/{id}")).await;
    webutil::share_recording(owner, &id, &csrf(&player.body), "24").await
}

/// `link` opened with `secret` by a fresh browser at `ip`: the answer's status, and
/// the browser (holding the viewer cookie when it was opened).
async fn open_from(
    server: &Server,
    ip: std::net::IpAddr,
    link: &str,
    secret: &str,
) -> (u16, Client) {
    let mut c = server.client_from(ip);
    let r = c
        .post(&format!("/s/{link}/open"), &[("secret", secret)])
        .await;
    (r.status, c)
}

/// 127.0.x.y for `n` (below 65536): a different client address per `n`.
fn loopback(n: usize) -> std::net::IpAddr {
    std::net::Ipv4Addr::new(127, 0, (n >> 8) as u8, n as u8).into()
}

/// A holder of one link opening it more often than the whole viewer table holds
/// (from many addresses, so no per-address limit is in play) no longer evicts
/// the viewer of another link: the link's own opens beyond its limit are refused
/// with 429, and other links still open and play.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_one_link_with_opens_does_not_cut_off_another_links_viewer() {
    use porchlight::share::{MAX_VIEWERS, MAX_VIEWERS_PER_LINK};
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let (theirs, their_secret) = a_shared_recording(&server, &mut owner, 94).await;
    let (flooded, flood_secret) = a_shared_recording(&server, &mut owner, 95).await;
    let (status, mut viewer) = open_from(&server, loopback(1), &theirs, &their_secret).await;
    assert_eq!(status, 204);
    assert_eq!(
        viewer.get(&format!("/s/{theirs}/video.mp4")).await.status,
        200
    );
    // They opened it a moment before the flood: theirs is the oldest token.
    server.advance_secs(1);

    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..MAX_VIEWERS + 8 {
        let (status, _) = open_from(&server, loopback(2 + n), &flooded, &flood_secret).await;
        *statuses.entry(status).or_default() += 1;
    }
    assert_eq!(
        viewer.get(&format!("/s/{theirs}/video.mp4")).await.status,
        200,
        "the other link's viewer was cut off by the flood ({statuses:?})"
    );
    assert_eq!(
        statuses.get(&204).copied(),
        Some(MAX_VIEWERS_PER_LINK),
        "the flooded link opens up to its limit, then 429: {statuses:?}"
    );
    assert_eq!(statuses.len(), 2, "only 204 and 429: {statuses:?}");
    let (status, _) = open_from(&server, loopback(4000), &theirs, &their_secret).await;
    assert_eq!(status, 204, "the other link still opens for someone new");
}

/// One address opening links again and again (slowly enough for any rate limit)
/// holds at most its share of viewer tokens; the next open from it is refused with
/// 429, while another address still opens the same link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_a_bounded_number_of_viewer_tokens() {
    use porchlight::share::MAX_VIEWERS_PER_ADDRESS;
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let (link, secret) = a_shared_recording(&server, &mut owner, 96).await;
    let here = loopback(7);
    for n in 0..MAX_VIEWERS_PER_ADDRESS {
        server.advance_secs(7);
        let (status, _) = open_from(&server, here, &link, &secret).await;
        assert_eq!(status, 204, "open {n}");
    }
    server.advance_secs(7);
    let (status, _) = open_from(&server, here, &link, &secret).await;
    assert_eq!(status, 429, "one open more than an address may hold");
    let (status, _) = open_from(&server, loopback(8), &link, &secret).await;
    assert_eq!(status, 204, "another address is apart");
}

/// Successful opens are rate limited per address: the one past the bad-token
/// throttle's limit within a minute is refused with 429 and `Retry-After`
/// (another address is not), and a minute later the address opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_links_in_a_loop_from_one_address_is_slowed_down() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let (link, secret) = a_shared_recording(&server, &mut owner, 97).await;
    let here = loopback(9);
    // The API's bad-token limit: ten a minute.
    for n in 0..10 {
        let (status, _) = open_from(&server, here, &link, &secret).await;
        assert_eq!(status, 204, "open {n}");
    }
    let mut c = server.client_from(here);
    let r = c
        .post(&format!("/s/{link}/open"), &[("secret", &secret)])
        .await;
    assert_eq!(r.status, 429, "the eleventh open within a minute");
    assert_eq!(r.header("retry-after"), "60");
    let (status, _) = open_from(&server, loopback(10), &link, &secret).await;
    assert_eq!(status, 204, "another address is apart");
    server.advance_secs(61);
    let (status, _) = open_from(&server, here, &link, &secret).await;
    assert_eq!(status, 204, "a minute later");
}

/// Opening a link again and again from one address writes one activity entry per
/// link and address an hour, not one per open; another address gets its own, and
/// so does the same address an hour later. The owner still sees each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_opens_of_a_link_write_one_audit_entry_per_address_an_hour() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = Server::start("").await;
    let (mut owner, totp, _) = server.owner().await;
    let (link, secret) = a_shared_recording(&server, &mut owner, 98).await;
    let entry = format!("link {link} (view ");
    for n in 0..5 {
        let (status, _) = open_from(&server, loopback(11), &link, &secret).await;
        assert_eq!(status, 204, "open {n}");
    }
    let (status, _) = open_from(&server, loopback(12), &link, &secret).await;
    assert_eq!(status, 204);
    let log = owner.get("/activity").await.body;
    assert_eq!(log.matches(&entry).count(), 2, "{log}");
    server.advance_secs(3601);
    let (status, _) = open_from(&server, loopback(11), &link, &secret).await;
    assert_eq!(status, 204);
    // The owner's session has timed out meanwhile.
    let mut owner = server.client();
    server.login(&mut owner, &totp).await;
    let log = owner.get("/activity").await.body;
    assert_eq!(log.matches(&entry).count(), 3, "an hour later: {log}");
}
