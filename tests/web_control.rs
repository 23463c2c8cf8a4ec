//! The Control Centre over real HTTPS: it reports the real state (two-step
//! verification, recovery codes left, devices, the master key's fingerprint, the
//! certificate, retention per camera), says plainly what this version cannot do, and
//! its "Remove all" works.

mod webutil;

use webutil::{csrf, Server, OWNER, PASSWORD};

const CAMERA: &str = "[[camera]]\nname = \"back-gate\"\nurl = \"rtsp://127.0.0.1:9/nothing\"\nmode = \"continuous\"\nstorage_days = 3\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_centre_reports_the_real_settings_and_its_actions_work() {
    let server = Server::start(CAMERA).await;
    assert_eq!(
        server.client().get("/control-centre").await.status,
        303,
        "no page without a login"
    );
    let (mut owner, secret, codes) = server.owner().await;

    // A second browser logs in with a recovery code instead of the app.
    let mut laptop = server.client();
    let r = laptop.post_login(OWNER, PASSWORD).await;
    assert_eq!(r.status, 303);
    let page = laptop.get("/login/code").await;
    let r = laptop
        .post(
            "/login/code",
            &[("csrf", &csrf(&page.body)), ("code", &codes[0])],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"));

    let page = owner.get("/control-centre").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    let row = body
        .split("<tr><td>")
        .find(|r| r.starts_with(OWNER))
        .expect("the owner's row");
    assert!(row.contains("<td>on</td>"), "two-step is on: {row}");
    assert!(row.contains("9 of 10"), "one recovery code spent: {row}");
    assert!(row.contains("owner@example.org"), "{row}");
    assert!(body.contains("2 device(s) logged in"), "{body}");
    let key_id = server.daemon().store.key_id().to_string();
    assert!(
        body.contains(&format!("<code>{key_id}</code>")),
        "key fingerprint"
    );
    assert!(
        body.contains(&server.fingerprint),
        "certificate fingerprint"
    );
    let camera = body
        .split("<tr><td>")
        .find(|r| r.starts_with("back-gate"))
        .expect("the camera's row");
    assert!(
        camera.contains("continuous") && camera.contains("3 days"),
        "{camera}"
    );
    // End-to-end mode: its state, and the page that turns it on.
    let e2e = body
        .split("<li id=\"e2e-summary\">")
        .nth(1)
        .expect("end-to-end mode is listed");
    assert!(e2e.contains("<strong>off</strong>"), "{e2e}");
    assert!(
        e2e.contains("<a href=\"/end-to-end\">Turn it on</a>"),
        "{e2e}"
    );
    // "Your data": each right with its page, and no export left unavailable.
    let data = body
        .split("<section id=\"data\">")
        .nth(1)
        .expect("the Your data section");
    for link in [
        "/my-data",
        "/export-everything.tar",
        "/delete-everything",
        "/erase-all-data",
    ] {
        assert!(data.contains(&format!("href=\"{link}\"")), "{link}: {data}");
    }
    assert!(!data.contains("not available"), "{data}");
    assert!(body.contains("Share links: nothing is shared"), "{body}");
    assert!(body.contains("Support access: nobody has it"), "{body}");
    assert!(
        body.contains("Linked services (API tokens): none"),
        "{body}"
    );
    assert!(!body.contains(PASSWORD) && !body.contains(&secret));

    // "Remove all" from the Control Centre ends both sessions.
    let r = owner
        .post("/devices/logout-all", &[("csrf", &csrf(body))])
        .await;
    assert_eq!((r.status, r.location()), (303, "/login"));
    assert_eq!(owner.get("/control-centre").await.location(), "/login");
    assert_eq!(laptop.get("/").await.location(), "/login");
}

/// The counts mean what they say: a support helper is not a shared user, a pending
/// support invitation is support access, and a shared user is not told that blocked
/// password guessing reaches them (those alerts go to owners only). The listen
/// address is shown to the owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_centre_counts_shared_users_and_support_helpers_apart() {
    let server = Server::start(CAMERA).await;
    let (mut owner, _, _) = server.owner().await;
    let mut guest = webutil::shared_guest(&server, &mut owner).await;
    let recording = webutil::objects::put_recording(&server, 7, webutil::T0_MICROS - 60_000_000);
    let secret =
        webutil::invite_support(&mut owner, "Installer Ines", &recording.to_string()).await;

    let body = owner.get("/control-centre").await.body;
    assert!(body.contains("Shared users: 1."), "{body}");
    assert!(
        body.contains("Support access: <strong>1</strong>"),
        "the pending support invitation counts: {body}"
    );
    let listen = format!("listens on {} (HTTPS)", server.https);
    assert!(body.contains(&listen), "{listen}: {body}");
    assert!(body.contains("blocked password guessing"), "{body}");

    // The helper accepts: a user now, but still not a shared one.
    let (mut helper, r) =
        webutil::accept_invitation(&server, &secret, "ines", "installer ladder plumbing 42").await;
    assert_eq!(r.status, 303, "{}", r.body);
    webutil::enrol_with(&server, &mut helper).await;
    let body = owner.get("/control-centre").await.body;
    assert!(body.contains("Shared users: 1."), "{body}");
    assert!(
        body.contains("Support access: <strong>1</strong>"),
        "{body}"
    );

    let body = guest.get("/control-centre").await.body;
    assert!(
        !body.contains("blocked password guessing"),
        "not reported to a shared user: {body}"
    );
}

/// A clock that has gone back (a Pi restarted without network time, its clock from
/// the last shutdown) is shown, found for real: a recording made at a later time than
/// the daemon's "now". The sync state is read from this machine, whatever it is; the
/// page says one of its three honest sentences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_behind_the_newest_recording_is_shown_to_the_owner() {
    let server = Server::start(CAMERA).await;
    let (mut owner, _, _) = server.owner().await;
    let body = owner.get("/control-centre").await.body;
    assert!(!body.contains("The clock is behind"), "{body}");
    let sync_sentences = [
        "The clock is synchronised with network time",
        "The clock is not synchronised: recording times may be wrong",
        "Whether the clock is synchronised cannot be read here",
    ];
    assert!(
        sync_sentences.iter().any(|s| body.contains(s)),
        "the sync state in words: {body}"
    );

    let day = 86_400_000_000;
    webutil::objects::put_recording(&server, 8, webutil::T0_MICROS + day);
    let body = owner.get("/control-centre").await.body;
    let newest = porchlight::clock::rfc3339(webutil::T0_MICROS + day);
    assert!(
        body.contains(&format!(
            "The clock is behind the newest recording, which starts at {newest}"
        )),
        "{body}"
    );

    // A restart with the clock still behind says so in the log, as an error.
    let log = webutil::capture_log("info");
    let server = server.restart().await;
    let text = String::from_utf8_lossy(&log.lock().expect("log")).into_owned();
    assert!(
        text.lines().any(|l| l.contains("ERROR")
            && l.contains(&format!(
                "The clock is behind the newest recording, which starts at {newest}"
            ))),
        "{text}"
    );
    drop(server);
}
