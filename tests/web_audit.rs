//! The audit log ("Activity") over real HTTPS: logins, failures, blocks and device
//! log-outs are recorded with who, what and from where; what someone typed is shown
//! escaped; the filters work; nobody gets the page without a full login.

mod webutil;

use webutil::{csrf, Server, OWNER, PASSWORD};

/// The table rows of an activity page, as `(kind, actor, subject)`; the columns are
/// When, What, Who, On, From.
fn rows(html: &str) -> Vec<(String, String, String)> {
    html.split("<tr class=\"audit-")
        .skip(1)
        .map(|row| {
            let cells: Vec<String> = row
                .split("<td>")
                .skip(1)
                .map(|c| c.split("</td>").next().unwrap_or("").to_owned())
                .collect();
            (
                cells.get(1).cloned().unwrap_or_default(),
                cells.get(2).cloned().unwrap_or_default(),
                cells.get(3).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_failures_and_logouts_are_in_the_activity_log_escaped_and_filterable() {
    let server = Server::start("").await;
    let mut anonymous = server.client();
    let r = anonymous.get("/activity").await;
    assert_eq!(r.status, 303, "no page without a login");
    assert!(!r.body.contains("audit-"));

    let (mut owner, secret, _) = server.owner().await;
    // A stranger guesses at a name with markup in it, and at the owner's password.
    let mut stranger = server.client();
    let hostile = "<script>alert(1)</script>";
    let r = stranger.post_login(hostile, "nope").await;
    assert_eq!(r.status, 401);
    let r = stranger.post_login(OWNER, "wrong password").await;
    assert_eq!(r.status, 401);
    server.advance_secs(60);

    // A second device logs in, and the first logs it out.
    let mut phone = server.client();
    server.login(&mut phone, &secret).await;
    let devices = owner.get("/devices").await;
    let handles: Vec<String> = devices
        .body
        .split("<tr")
        .filter(|row| !row.starts_with(" class=\"this\""))
        .filter_map(|row| row.split("name=\"device\" value=\"").nth(1))
        .filter_map(|s| s.split('"').next().map(str::to_owned))
        .collect();
    assert_eq!(handles.len(), 1, "one other device: {}", devices.body);
    let r = owner
        .post(
            "/devices/logout",
            &[("csrf", &csrf(&devices.body)), ("device", &handles[0])],
        )
        .await;
    assert_eq!(r.status, 303);

    let page = owner.get("/activity").await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains(hostile),
        "typed markup is never served as markup"
    );
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(PASSWORD) && !page.body.contains("wrong password"));
    let kinds: Vec<String> = rows(&page.body).into_iter().map(|r| r.0).collect();
    assert_eq!(
        kinds,
        [
            "device_logged_out",
            "login_ok",
            "login_failed",
            "login_failed",
            "login_ok",
            "two_factor_enrolled",
            "owner_created",
        ],
        "newest first"
    );
    let failed = rows(&owner.get("/activity?kind=login_failed").await.body);
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .all(|r| r.0 == "login_failed" && r.2 == "password"));
    assert_eq!(failed[0].1, OWNER, "a failure on a real account names it");

    let r = owner.get("/activity?kind=nonsense").await;
    assert_eq!(r.status, 400);
    let r = owner.get("/activity?day=yesterday").await;
    assert_eq!(r.status, 400);
    let r = owner.get("/activity?day=2001-01-01").await;
    assert_eq!(r.status, 200);
    assert!(rows(&r.body).is_empty(), "nothing happened on that day");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_after_repeated_failures_is_recorded_once() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let mut stranger = server.client();
    let mut blocked = false;
    for _ in 0..30 {
        let r = stranger.post_login(OWNER, "guess").await;
        if r.status == 429 {
            blocked = true;
            break;
        }
        server.advance_secs(61);
    }
    assert!(blocked, "guessing is blocked in the end");
    let blocks = rows(&owner.get("/activity?kind=login_blocked").await.body);
    assert!(!blocks.is_empty(), "the block is in the log");
    assert!(
        blocks
            .iter()
            .all(|r| r.2.contains("blocked") || r.2.contains("minutes")),
        "{blocks:?}"
    );
}

/// `HEAD` (which axum answers with the GET handler) has no side effects: it writes no
/// "downloaded" or "exported" entry and starts no archive; a GET still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_requests_write_no_download_or_export_entries() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let id = webutil::objects::put_recording(&server, 42, webutil::T0_MICROS - 60_000_000);
    let paths = [
        (format!("/recordings/{id}/download"), "recording_downloaded"),
        ("/export-everything.tar".to_owned(), "everything_exported"),
        ("/my-data.json".to_owned(), "personal_data_downloaded"),
    ];
    for (path, _) in &paths {
        let r = owner
            .http
            .head(format!("{}{path}", owner.base))
            .header("cookie", owner.cookie_header())
            .send()
            .await
            .expect("HEAD");
        assert_eq!(r.status().as_u16(), 200, "HEAD {path}");
        assert!(
            r.headers()
                .get("content-disposition")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("attachment")),
            "HEAD {path} has the GET's headers"
        );
    }
    let activity = owner.get("/activity").await.body;
    for (path, kind) in &paths {
        assert!(
            !activity.contains(&format!("audit-{kind}")),
            "HEAD {path} was logged: {activity}"
        );
    }
    // The same GET is logged (what the absence above is measured against).
    let r = owner.get(&paths[0].0).await;
    assert_eq!(r.status, 200);
    let activity = owner.get("/activity").await.body;
    assert!(
        activity.contains("audit-recording_downloaded"),
        "{activity}"
    );
}

/// Every way a shared user can fetch a recording is in the owner's log, whatever the
/// `Range`: the whole MP4 from `video.mp4` without the player page is a view, a
/// download resumed at byte 1 is a download. Many range requests of one session
/// write one entry each, and `HEAD` of the player page writes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_users_fetches_of_a_recording_are_logged_once_whatever_the_range() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let mut guest = webutil::shared_guest(&server, &mut owner).await;
    let id = webutil::objects::put_recording(&server, 42, webutil::T0_MICROS - 60_000_000);
    let subject = format!("recording {id} of camera porch");
    let logged = |html: &str, kind: &str| {
        rows(html)
            .into_iter()
            .filter(|r| r.0 == kind && r.1 == "guest" && r.2 == subject)
            .count()
    };

    let r = guest
        .http
        .head(format!("{}/recordings/{id}", guest.base))
        .header("cookie", guest.cookie_header())
        .send()
        .await
        .expect("HEAD");
    assert_eq!(r.status().as_u16(), 200);
    let activity = owner.get("/activity").await.body;
    assert_eq!(logged(&activity, "recording_viewed"), 0, "HEAD: {activity}");

    let whole = guest.get(&format!("/recordings/{id}/video.mp4")).await;
    assert_eq!(whole.status, 200, "the whole MP4, no Range");
    let download = format!("/recordings/{id}/download");
    let (status, _, _) = webutil::range(&mut guest, &download, "bytes=1-").await;
    assert_eq!(status, 206, "all but the first byte");
    let activity = owner.get("/activity").await.body;
    assert_eq!(logged(&activity, "recording_viewed"), 1, "{activity}");
    assert_eq!(logged(&activity, "recording_downloaded"), 1, "{activity}");

    // A player's seeks, a resumed download and the player page itself add nothing.
    let video = format!("/recordings/{id}/video.mp4");
    for start in [0, 10, 100, 200, 300] {
        let (status, _, _) = webutil::range(&mut guest, &video, &format!("bytes={start}-")).await;
        assert_eq!(status, 206);
    }
    for start in [0, 2, 50] {
        let (status, _, _) =
            webutil::range(&mut guest, &download, &format!("bytes={start}-")).await;
        assert_eq!(status, 206);
    }
    assert_eq!(guest.get(&format!("/recordings/{id}")).await.status, 200);
    let activity = owner.get("/activity").await.body;
    assert_eq!(logged(&activity, "recording_viewed"), 1, "{activity}");
    assert_eq!(logged(&activity, "recording_downloaded"), 1, "{activity}");
}
