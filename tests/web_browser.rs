//! The web UI in a real browser: headless Debian Chromium driven through chromedriver
//! (WebDriver, `fantoccini`), against the real daemon recording the real test camera.
//! One walk through the product: set up the owner, enrol TOTP (the test computes the
//! codes), log out and in, see the camera tile, watch live view (the video's
//! `currentTime` advances), play the recording live view started and seek in it,
//! download it, delete it, link a doorbell (API token) and revoke it. On the way the
//! owner shares a clip and invites a shared user; afterwards, each in a fresh browser
//! profile, a stranger watches the shared clip and the invitee makes an account, enrols
//! TOTP, sees the camera and recordings without delete or share controls, and is
//! refused (403) when forcing a delete. A screenshot of each page lands in
//! `target/screenshots/`.

mod browserutil;
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use browserutil::{session, Driver};
use common::camera::{CameraOptions, TestCamera};
use common::{CameraSpec, Daemon, Setup};
use fantoccini::{Client, Locator};
use serde_json::json;

const OWNER: &str = "owner";
const PASSWORD: &str = "correct horse battery staple 42";
const GUEST: &str = "grandma";
const GUEST_PASSWORD: &str = "purple elephant dances at noon 7";

/// The links the owner makes on the way, opened afterwards in fresh browsers.
#[derive(Default)]
struct Links {
    share: Option<String>,
    invitation: Option<String>,
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("write screenshot");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.expect("script")
}

/// A script's result inside a wait: null when the script fails (the page may be
/// between two documents), so the wait asks again; the error is printed, and shown
/// if the test then fails.
async fn poll_js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.unwrap_or_else(|e| {
        eprintln!("script failed (asked again): {e}");
        serde_json::Value::Null
    })
}

/// Whether the page has an element with this id, asked of the page's own DOM (a
/// script that fails between two documents counts as "not yet").
async fn has_id(c: &Client, id: &str) -> bool {
    poll_js(
        c,
        &format!("return document.getElementById('{id}') !== null"),
    )
    .await
        == serde_json::Value::Bool(true)
}

/// Whether the dashboard tile of `camera` mentions `word` (case-insensitive).
async fn tile_says(c: &Client, camera: &str, word: &str) -> bool {
    match c.find(Locator::Id(&format!("camera-{camera}"))).await {
        Ok(tile) => tile
            .text()
            .await
            .unwrap_or_default()
            .to_lowercase()
            .contains(word),
        Err(_) => false,
    }
}

/// Finds and clicks an element; panics naming `what` if it is missing.
async fn click(c: &Client, locator: Locator<'_>, what: &str) {
    c.find(locator)
        .await
        .expect(what)
        .click()
        .await
        .expect("click");
}

/// A script's numeric result (0 when it is not a number or the script fails).
async fn number(c: &Client, script: &str) -> f64 {
    poll_js(c, script).await.as_f64().unwrap_or(0.0)
}

async fn fill(c: &Client, name: &str, value: &str) {
    c.find(Locator::Css(&format!("input[name=\"{name}\"]")))
        .await
        .expect("input")
        .send_keys(value)
        .await
        .expect("type");
}

async fn submit(c: &Client) {
    click(
        c,
        Locator::Css("main form button[type=submit]"),
        "submit button",
    )
    .await;
}

async fn path(c: &Client) -> String {
    c.current_url().await.expect("url").path().to_owned()
}

/// Polls `check` until it is true. After `limit` it saves a screenshot
/// (`timed-out.png`) and panics with `what`, the page's address and the start of its
/// text: what went wrong is usually written on the page.
async fn eventually<F, Fut>(c: &Client, limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        if Instant::now() >= deadline {
            let url = c.current_url().await.map(|u| u.to_string());
            let text = c
                .execute(
                    "return document.body ? document.body.innerText.slice(0, 800) : ''",
                    vec![],
                )
                .await;
            if let Ok(png) = c.screenshot().await {
                let _ = std::fs::write(screenshots().join("timed-out.png"), png);
            }
            panic!("timed out: {what} (at {url:?}; the page says: {text:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_sets_up_logs_in_watches_live_plays_downloads_and_deletes() {
    let camera = TestCamera::start(CameraOptions::default());
    // A second camera that announces itself over mDNS on loopback, adopted from the
    // Discovered cameras page on the way.
    let _yard = TestCamera::start(CameraOptions {
        mdns: Some(YARD_INSTANCE.to_owned()),
        ..CameraOptions::default()
    });
    let setup = Setup::new(
        &[CameraSpec {
            mode: "events",
            ..CameraSpec::continuous("front-door", &camera.main_url())
        }],
        "[discovery]\nenabled = true\ninterfaces = [\"lo\"]\n",
    );
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let downloads = tempfile::tempdir().expect("download dir");
    let c = session(&driver, profile.path(), downloads.path()).await;
    let links = std::sync::Mutex::new(Links::default());
    let result = guarded(steps(
        &c,
        &base,
        &setup,
        &mut daemon,
        downloads.path(),
        &links,
    ))
    .await;
    let _ = c.close().await;
    if let Err(e) = result {
        print_log_tail(&daemon);
        daemon.stop();
        std::panic::resume_unwind(e);
    }
    let links = links.into_inner().unwrap_or_else(|p| p.into_inner());

    // The share link made on the way, in a browser that has never seen this house
    // (fresh profile, no cookies); the recording itself was deleted meanwhile.
    let link = links.share.expect("a share link was made");
    let stranger_profile = tempfile::tempdir().expect("profile dir");
    let s = session(&driver, stranger_profile.path(), downloads.path()).await;
    let mut result = guarded(watch_shared(&s, &link)).await;
    let _ = s.close().await;

    // The invitation, accepted in another fresh browser.
    if result.is_ok() {
        let link = links.invitation.expect("an invitation was made");
        let guest_profile = tempfile::tempdir().expect("profile dir");
        let g = session(&driver, guest_profile.path(), downloads.path()).await;
        result = guarded(invited_user(&g, &base, &link, &daemon)).await;
        let _ = g.close().await;
    }
    if result.is_err() {
        print_log_tail(&daemon);
    }
    daemon.stop();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// The end of the daemon's log, for a failed run: what the server said when the page
/// did not show what the test waited for.
fn print_log_tail(daemon: &Daemon) {
    let log = daemon.log_text();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(80)..];
    eprintln!(
        "--- the daemon's log, last {} lines ---\n{}",
        tail.len(),
        tail.join("\n")
    );
}

/// Opens the front door's day page and reloads it until a finished recording (one
/// with a download link) is listed.
async fn finished_recording_listed(c: &Client, base: &str) {
    c.goto(&format!("{base}/cameras/front-door/recordings"))
        .await
        .expect("recordings");
    eventually(
        c,
        Duration::from_secs(60),
        "a finished recording",
        || async {
            let _ = c.refresh().await;
            c.find(Locator::Css("ul.recordings a[href$='/download']"))
                .await
                .is_ok()
        },
    )
    .await;
}

/// Runs one part of the test, catching its panic so the browser can be closed first.
async fn guarded(part: impl std::future::Future<Output = ()>) -> Outcome {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(part).catch_unwind().await
}

/// Opens a share link and waits until its clip plays.
async fn watch_shared(c: &Client, link: &str) {
    c.goto(link).await.expect("open the link");
    let duration = || async {
        number(c, "const v = document.getElementById('share-video'); return v && !v.hidden ? (v.duration || 0) : 0").await
    };
    eventually(
        c,
        Duration::from_secs(20),
        "the shared clip loads",
        || async { duration().await > 1.0 },
    )
    .await;
    js(c, "document.getElementById('share-video').play(); return 0").await;
    eventually(
        c,
        Duration::from_secs(15),
        "the shared clip plays",
        || async {
            number(
                c,
                "return document.getElementById('share-video').currentTime",
            )
            .await
                > 0.5
        },
    )
    .await;
    assert!(
        c.find(Locator::Css("nav")).await.is_err(),
        "nothing of the house on a share page"
    );
    shot(c, "14-shared-clip").await;
}

/// Completes the forced TOTP enrolment: reads the key /enrol shows, enters the current
/// code computed from it and continues past the recovery codes. Returns the key.
async fn enrol(c: &Client, shots: [&str; 2]) -> String {
    eventually(c, Duration::from_secs(30), "enrolment page", || async {
        path(c).await == "/enrol"
    })
    .await;
    shot(c, shots[0]).await;
    let secret = c
        .find(Locator::Id("totp-secret"))
        .await
        .expect("secret")
        .text()
        .await
        .expect("text")
        .replace(' ', "");
    let code = porchlight::auth::totp::code_at(&secret, unix_now()).expect("code");
    fill(c, "code", &code).await;
    submit(c).await;
    eventually(c, Duration::from_secs(30), "recovery codes", || async {
        c.find(Locator::Id("recovery-codes")).await.is_ok()
    })
    .await;
    shot(c, shots[1]).await;
    click(c, Locator::Css("a.button"), "continue").await;
    secret
}

/// The owner makes an invitation on /users; returns its link (shown once).
async fn invite(c: &Client, base: &str) -> String {
    c.goto(&format!("{base}/users")).await.expect("users");
    fill(c, "note", "Grandma").await;
    fill(c, "password", PASSWORD).await;
    click(c, Locator::Id("invite"), "make an invitation link").await;
    eventually(
        c,
        Duration::from_secs(30),
        "the invitation link",
        || async { c.find(Locator::Id("invite-link")).await.is_ok() },
    )
    .await;
    let link = js(c, "return document.getElementById('invite-link').value")
        .await
        .as_str()
        .unwrap_or("")
        .to_owned();
    let secret = link.split_once("/invite#").map_or("", |(_, s)| s);
    assert_eq!(secret.len(), 64, "the secret in the fragment: {link}");
    shot(c, "15-invitation-made").await;
    link
}

/// Asserts that nothing on the page matches `css`.
async fn absent(c: &Client, css: &str, what: &str) {
    let found = c.find_all(Locator::Css(css)).await.expect("find");
    assert!(found.is_empty(), "{what} shown to a shared user");
}

/// The invitee opens the link, makes an account, enrols TOTP and looks around as a
/// shared user: the camera and its recordings, but no delete or share controls, and a
/// forced delete is refused (403) by the server.
async fn invited_user(c: &Client, base: &str, link: &str, daemon: &Daemon) {
    c.goto(link).await.expect("open the invitation");
    assert_eq!(path(c).await, "/invite");
    let secret = link.split_once('#').map_or("", |(_, s)| s);
    eventually(
        c,
        Duration::from_secs(10),
        "invite.js fills the code from the fragment",
        || async {
            poll_js(c, "return document.getElementById('invitation').value").await == secret
        },
    )
    .await;
    fill(c, "username", GUEST).await;
    fill(c, "password", GUEST_PASSWORD).await;
    shot(c, "16-invitation").await;
    submit(c).await;
    enrol(c, ["17-invited-enrol", "18-invited-recovery-codes"]).await;

    // The dashboard shows the camera, but nothing of the owner's.
    eventually(c, Duration::from_secs(30), "dashboard", || async {
        path(c).await == "/"
    })
    .await;
    c.find(Locator::Id("camera-front-door"))
        .await
        .expect("the camera's tile");
    absent(c, "header nav a[href='/users']", "Users").await;
    shot(c, "19-invited-user").await;

    // The day page: the doorbell's recording (the live-view one was deleted), without
    // delete forms. The doorbell's event may still have been recording when the owner
    // turned end-to-end mode on: its part after that is a later recording sealed to
    // the owner, so the guest plays the oldest one, made before.
    finished_recording_listed(c, base).await;
    let download = c
        .find_all(Locator::Css("ul.recordings a[href$='/download']"))
        .await
        .expect("download links")
        .pop()
        .expect("a download link")
        .attr("href")
        .await
        .expect("attr")
        .expect("href");
    let id = download
        .trim_start_matches("/recordings/")
        .trim_end_matches("/download")
        .to_owned();
    absent(c, "form[action$='/delete']", "a delete form").await;
    absent(c, "button.danger", "a delete button").await;
    absent(c, "details.danger-zone", "delete all").await;
    shot(c, "20-invited-recordings").await;

    // The player: it plays, with Download but without Share or Delete.
    c.goto(&format!("{base}/recordings/{id}"))
        .await
        .expect("player");
    let plays = || async {
        eventually(c, Duration::from_secs(20), "video metadata", || async {
            number(
                c,
                "return document.getElementById('playback').duration || 0",
            )
            .await
                > 1.0
        })
        .await
    };
    plays().await;
    c.find(Locator::Id("download")).await.expect("download");
    absent(c, "#delete, form[action$='/delete']", "Delete").await;
    absent(
        c,
        "details.share, #share-create, form[action$='/share']",
        "Share",
    )
    .await;
    shot(c, "21-invited-player").await;

    // Forcing the delete with the page's own form token: refused by the policy (not
    // the token check), and the recording is still there.
    let token = js(c, "return document.querySelector('input[name=csrf]').value")
        .await
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(!token.is_empty(), "the page's form token");
    let status = c
        .execute_async(
            "const [id, csrf, done] = arguments; \
             fetch(`/recordings/${id}/delete`, { method: 'POST', \
               body: new URLSearchParams({ csrf }), credentials: 'same-origin' }) \
             .then(r => done(r.status), () => done(0));",
            vec![json!(id), json!(token)],
        )
        .await
        .expect("forced delete")
        .as_u64();
    assert_eq!(status, Some(403), "a shared user's delete");
    eventually(c, Duration::from_secs(30), "the refusal logged", || async {
        daemon
            .log_text()
            .lines()
            .any(|l| l.contains("authorisation refused") && l.contains("DeleteRecording"))
    })
    .await;
    c.refresh().await.expect("reload the player");
    plays().await;
}

type Outcome = Result<(), Box<dyn std::any::Any + Send>>;

async fn steps(
    c: &Client,
    base: &str,
    setup: &Setup,
    daemon: &mut Daemon,
    downloads: &Path,
    links: &std::sync::Mutex<Links>,
) {
    // First run: the setup page asks for the code from the data directory.
    c.goto(&format!("{base}/")).await.expect("open");
    assert_eq!(path(c).await, "/setup");
    shot(c, "01-setup").await;
    let code = std::fs::read_to_string(setup.data_dir().join("setup-code")).expect("code");
    fill(c, "code", code.trim()).await;
    fill(c, "username", OWNER).await;
    fill(c, "password", PASSWORD).await;
    submit(c).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while path(c).await != "/enrol" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if path(c).await != "/enrol" {
        // Diagnostics: what the browser shows and the web log.
        eprintln!(
            "setup did not reach enrolment: {}",
            c.source().await.unwrap_or_default()
        );
        eprintln!(
            "{}",
            daemon
                .log_text()
                .lines()
                .filter(|l| l.contains("web"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // Enrolment is forced; the test reads the key and computes the code.
    let secret = enrol(c, ["02-enrol", "03-recovery-codes"]).await;
    let totp = |at: u64| porchlight::auth::totp::code_at(&secret, at).expect("code");

    // Log out and in again (the next step's code: the current one was just used).
    eventually(c, Duration::from_secs(30), "dashboard", || async {
        path(c).await == "/"
    })
    .await;
    click(c, Locator::Css("header form button"), "log out").await;
    eventually(c, Duration::from_secs(30), "login page", || async {
        path(c).await == "/login"
    })
    .await;
    shot(c, "04-login").await;
    fill(c, "username", OWNER).await;
    fill(c, "password", PASSWORD).await;
    submit(c).await;
    eventually(c, Duration::from_secs(30), "code page", || async {
        path(c).await == "/login/code"
    })
    .await;
    shot(c, "05-code").await;
    fill(c, "code", &totp(unix_now() + 30)).await;
    submit(c).await;
    eventually(
        c,
        Duration::from_secs(30),
        "dashboard after login",
        || async { path(c).await == "/" },
    )
    .await;

    // The camera's tile shows it streaming.
    eventually(
        c,
        Duration::from_secs(30),
        "camera tile streaming",
        || async {
            let _ = c.refresh().await;
            tile_says(c, "front-door", "streaming").await
        },
    )
    .await;
    shot(c, "06-dashboard").await;

    // Live view plays: currentTime advances.
    c.goto(&format!("{base}/cameras/front-door/live"))
        .await
        .expect("live");
    let now = || async { number(c, "return document.getElementById('live').currentTime").await };
    eventually(c, Duration::from_secs(30), "live video starts", || async {
        now().await > 0.5
    })
    .await;
    let t1 = now().await;
    eventually(
        c,
        Duration::from_secs(15),
        "live video advances",
        || async { now().await > t1 + 1.0 },
    )
    .await;
    shot(c, "07-live").await;
    // Opening live view started a "live view" recording (the camera records on events).
    daemon.wait_for_log("recording started", 1, Duration::from_secs(20));
    assert!(
        daemon.log_text().contains("live_view"),
        "a live-view recording"
    );

    // Leave; the recording finishes a little later and becomes playable.
    finished_recording_listed(c, base).await;
    shot(c, "08-recordings").await;
    let row = c.find(Locator::Css("ul.recordings li")).await.expect("row");
    let row_id = row.attr("id").await.expect("attr").expect("id");
    let id = row_id.trim_start_matches("rec-").to_owned();
    assert!(
        row.text().await.expect("text").contains("live view"),
        "trigger shown"
    );

    // Play and seek.
    c.goto(&format!("{base}/recordings/{id}"))
        .await
        .expect("player");
    let duration = || async {
        number(
            c,
            "return document.getElementById('playback').duration || 0",
        )
        .await
    };
    eventually(c, Duration::from_secs(20), "video metadata", || async {
        duration().await > 1.0
    })
    .await;
    let d = duration().await;
    let seeked = c
        .execute_async(
            "const [to, done] = arguments; const v = document.getElementById('playback'); \
             v.addEventListener('seeked', () => done(v.currentTime), { once: true }); v.currentTime = to;",
            vec![json!(d / 2.0)],
        )
        .await
        .expect("seek")
        .as_f64()
        .unwrap_or(-1.0);
    assert!((seeked - d / 2.0).abs() < 1.5, "seeked to {seeked} of {d}");
    js(c, "document.getElementById('playback').play(); return 0").await;
    eventually(
        c,
        Duration::from_secs(15),
        "playback advances after the seek",
        || async {
            number(c, "return document.getElementById('playback').currentTime").await > seeked + 0.5
        },
    )
    .await;
    shot(c, "09-player").await;

    // Share it: the link (with its secret after #) is shown once.
    click(c, Locator::Css("details.share summary"), "share").await;
    fill(c, "password", PASSWORD).await;
    click(c, Locator::Id("share-create"), "make link").await;
    eventually(
        c,
        Duration::from_secs(20),
        "the share link page",
        || async { c.find(Locator::Id("share-link")).await.is_ok() },
    )
    .await;
    let link = js(c, "return document.getElementById('share-link').value")
        .await
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(link.contains("/s/") && link.contains('#'), "{link}");
    shot(c, "13-share-made").await;
    links.lock().unwrap_or_else(|p| p.into_inner()).share = Some(link);

    // Invite a shared user (accepted after this walk, in another browser).
    let invitation = invite(c, base).await;
    links.lock().unwrap_or_else(|p| p.into_inner()).invitation = Some(invitation);
    c.goto(&format!("{base}/recordings/{id}"))
        .await
        .expect("back to the player");

    // Download names the file after the camera and the time.
    click(c, Locator::Id("download"), "download").await;
    eventually(c, Duration::from_secs(20), "downloaded file", || async {
        std::fs::read_dir(downloads).ok().is_some_and(|d| {
            d.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("front-door_")
                    && n.ends_with(".mp4")
                    && e.metadata().is_ok_and(|m| m.len() > 1000)
            })
        })
    })
    .await;

    // Delete it.
    click(c, Locator::Id("delete"), "delete").await;
    eventually(
        c,
        Duration::from_secs(30),
        "back on the day page",
        || async { path(c).await == "/cameras/front-door/recordings" },
    )
    .await;
    assert!(
        c.find(Locator::Id(&format!("rec-{id}"))).await.is_err(),
        "deleted recording gone"
    );
    shot(c, "10-after-delete").await;

    c.goto(&format!("{base}/devices")).await.expect("devices");
    shot(c, "11-devices").await;
    c.goto(&format!("{base}/alerts")).await.expect("alerts");
    shot(c, "12-alerts").await;

    linked_services(c, base, daemon).await;
    adopt_the_discovered_camera(c, base).await;
    zones_drawn_on_the_snapshot(c, base).await;
    end_to_end_unlock_play_lock(c, base).await;
}

/// End-to-end mode in the browser: turned on from its page (the recovery key shown
/// once), a recording the yard camera makes afterwards is refused while this session
/// is locked ("unlock to view"), plays once the passphrase unlocks the session, and
/// is refused again after Lock.
async fn end_to_end_unlock_play_lock(c: &Client, base: &str) {
    const PASSPHRASE: &str = "lantern orchard pebble 1987 quietly";
    c.goto(&format!("{base}/end-to-end"))
        .await
        .expect("e2e page");
    fill(c, "passphrase", PASSPHRASE).await;
    fill(c, "repeat", PASSPHRASE).await;
    click(c, Locator::Id("e2e-enable"), "turn on").await;
    eventually(
        c,
        Duration::from_secs(30),
        "the recovery key, once",
        || async { c.find(Locator::Id("recovery-key")).await.is_ok() },
    )
    .await;
    shot(c, "22-e2e-recovery-key").await;

    // A recording made now is sealed: saving the settings restarts the camera (a new
    // recording), and saving again with recording off finishes it.
    for mode in ["continuous", "off"] {
        if mode == "off" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        c.goto(&format!("{base}/cameras/yard/settings"))
            .await
            .expect("settings");
        js(
            c,
            &format!("document.querySelector('select[name=mode]').value = '{mode}'; return 0"),
        )
        .await;
        submit(c).await;
        eventually(c, Duration::from_secs(20), "saved", || async {
            path(c).await == "/"
        })
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let sealed = loop {
        c.goto(&format!("{base}/cameras/yard/recordings"))
            .await
            .expect("recordings");
        let id = match c.find(Locator::Css("li[id^='rec-']")).await {
            Ok(li) => li.attr("id").await.ok().flatten().unwrap_or_default(),
            Err(_) => String::new(),
        };
        if let Some(id) = id.strip_prefix("rec-").filter(|id| !id.is_empty()) {
            break id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "timed out: the sealed recording listed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let player = format!("{base}/recordings/{sealed}");
    let refused = || async {
        c.goto(&player).await.expect("player");
        c.find(Locator::Id("unlock-to-view")).await.is_ok()
    };
    assert!(refused().await, "locked: unlock to view");
    shot(c, "23-e2e-locked").await;

    c.goto(&format!("{base}/end-to-end"))
        .await
        .expect("e2e page");
    fill(c, "secret", PASSPHRASE).await;
    click(c, Locator::Id("e2e-unlock"), "unlock").await;
    // This wait once timed out now and then: the page after the unlock waited for a
    // connection, all six HTTP/1.1 allows being held by the event streams of pages
    // left earlier. Fixed (HTTP/2, and notify.js closes its stream); see web_tabs.rs.
    eventually(c, Duration::from_secs(30), "unlocked", || async {
        has_id(c, "e2e-unlocked").await || path(c).await.starts_with("/recordings/")
    })
    .await;
    c.goto(&player).await.expect("player");
    eventually(
        c,
        Duration::from_secs(20),
        "sealed video metadata",
        || async {
            number(
                c,
                "return document.getElementById('playback').duration || 0",
            )
            .await
                > 1.0
        },
    )
    .await;
    js(c, "document.getElementById('playback').play(); return 0").await;
    eventually(
        c,
        Duration::from_secs(15),
        "the sealed recording plays",
        || async {
            number(c, "return document.getElementById('playback').currentTime").await > 0.5
        },
    )
    .await;
    shot(c, "24-e2e-playing").await;

    c.goto(&format!("{base}/end-to-end"))
        .await
        .expect("e2e page");
    click(c, Locator::Id("e2e-lock"), "lock").await;
    eventually(c, Duration::from_secs(20), "locked again", || async {
        c.find(Locator::Id("e2e-locked")).await.is_ok()
    })
    .await;
    assert!(refused().await, "after Lock the recording is refused again");
}

/// mDNS name the yard test camera announces.
const YARD_INSTANCE: &str = "Yard test camera";

/// Adoption as a user does it: the announced camera appears on Discovered cameras,
/// its Add link opens the form with URL and name filled in, and once saved the camera
/// streams and records without a restart.
async fn adopt_the_discovered_camera(c: &Client, base: &str) {
    let add = format!("tr[data-instance='{YARD_INSTANCE}'] a.add");
    eventually(
        c,
        Duration::from_secs(30),
        "the announced camera listed",
        || async {
            let _ = c.goto(&format!("{base}/cameras/discovered")).await;
            c.find(Locator::Css(&add)).await.is_ok()
        },
    )
    .await;
    shot(c, "19-discovered").await;
    click(c, Locator::Css(&add), "Add link").await;
    eventually(c, Duration::from_secs(30), "the add form", || async {
        path(c).await == "/cameras/add"
    })
    .await;
    let prefilled = js(c, "return document.querySelector('input[name=url]').value").await;
    assert!(
        prefilled
            .as_str()
            .unwrap_or("")
            .starts_with("rtsp://127.0.0.1:"),
        "the announced URL is filled in: {prefilled}"
    );
    js(
        c,
        "document.querySelector('input[name=name]').value = ''; \
         document.querySelector('select[name=mode]').value = 'continuous'; return 0",
    )
    .await;
    fill(c, "name", "yard").await;
    click(c, Locator::Css("button[value=save]"), "save").await;
    eventually(c, Duration::from_secs(30), "yard streaming", || async {
        let _ = c.goto(&format!("{base}/")).await;
        tile_says(c, "yard", "streaming").await
    })
    .await;
    eventually(c, Duration::from_secs(30), "yard recording", || async {
        let _ = c.goto(&format!("{base}/cameras/yard/recordings")).await;
        c.find(Locator::Css("li[id^='rec-']")).await.is_ok()
    })
    .await;
}

/// The zone editor (web/static/zones.js) under the real CSP, on the camera adopted
/// in the UI: its snapshot on the settings page's canvas, a rectangle dragged with the
/// mouse becomes the numbers the form saves; a click inside a zone removes it.
async fn zones_drawn_on_the_snapshot(c: &Client, base: &str) {
    use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
    c.goto(&format!("{base}/cameras/yard/settings"))
        .await
        .expect("settings");
    let zones = || async {
        js(c, "return document.getElementById('zones').value")
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    eventually(
        c,
        Duration::from_secs(20),
        "the snapshot on the canvas",
        || async {
            poll_js(
            c,
            "const k = document.getElementById('zones-canvas'); return !k.hidden && k.width > 0",
        )
        .await
        .as_bool()
        .unwrap_or(false)
        },
    )
    .await;
    js(
        c,
        "document.getElementById('zones-canvas').scrollIntoView({block: 'center'}); return 0",
    )
    .await;
    let canvas = c.find(Locator::Id("zones-canvas")).await.expect("canvas");
    let (_, _, w, h) = canvas.rectangle().await.expect("canvas size");
    let at = |x: f64, y: f64| PointerAction::MoveToElement {
        element: canvas.clone(),
        duration: Some(Duration::from_millis(100)),
        x: (x - 0.5) * w,
        y: (y - 0.5) * h,
    };
    let drag = MouseActions::new("mouse".into())
        .then(at(0.25, 0.25))
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(at(0.5, 0.5))
        .then(at(0.75, 0.75))
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(drag).await.expect("drag");
    let drawn = zones().await;
    let numbers: Vec<f64> = drawn
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 4, "one rectangle: {drawn:?}");
    for (got, want) in numbers.iter().zip([25.0, 25.0, 75.0, 75.0]) {
        assert!((got - want).abs() < 3.0, "{drawn:?}");
    }
    shot(c, "20-zones").await;
    submit(c).await;
    eventually(c, Duration::from_secs(20), "saved", || async {
        path(c).await == "/"
    })
    .await;
    c.goto(&format!("{base}/cameras/yard/settings"))
        .await
        .expect("settings again");
    assert_eq!(zones().await, drawn, "saved and shown back");
    // A click inside the zone removes it (not saved).
    eventually(c, Duration::from_secs(20), "the snapshot again", || async {
        poll_js(c, "return !document.getElementById('zones-canvas').hidden")
            .await
            .as_bool()
            .unwrap_or(false)
    })
    .await;
    js(
        c,
        "document.getElementById('zones-canvas').scrollIntoView({block: 'center'}); return 0",
    )
    .await;
    let canvas = c.find(Locator::Id("zones-canvas")).await.expect("canvas");
    let tap = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: canvas,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(tap).await.expect("click");
    assert_eq!(zones().await, "", "the zone is removed");
}

/// Links a doorbell from the navigation: the token is shown once, works with the API
/// at once, and Revoke ends it.
async fn linked_services(c: &Client, base: &str, daemon: &mut Daemon) {
    c.find(Locator::Css("header nav a[href='/linked-services']"))
        .await
        .expect("navigation link")
        .click()
        .await
        .expect("click");
    eventually(
        c,
        Duration::from_secs(30),
        "linked services page",
        || async { path(c).await == "/linked-services" },
    )
    .await;
    fill(c, "name", "Doorbell button").await;
    fill(c, "password", PASSWORD).await;
    c.find(Locator::Css("input[name='scope'][value='trigger:write']"))
        .await
        .expect("scope checkbox")
        .click()
        .await
        .expect("tick");
    c.find(Locator::Css(
        "form[action='/linked-services'] button[type=submit]",
    ))
    .await
    .expect("create button")
    .click()
    .await
    .expect("click");
    eventually(c, Duration::from_secs(30), "the new token", || async {
        c.find(Locator::Id("token")).await.is_ok()
    })
    .await;
    shot(c, "13-linked-token").await;
    let token = c
        .find(Locator::Id("token"))
        .await
        .expect("token")
        .text()
        .await
        .expect("text");
    assert!(token.starts_with("plt_"), "{token}");

    // Test only: the daemon's certificate is self-signed.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let trigger = || async {
        http.post(format!("{base}/api/v1/cameras/front-door/trigger"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("API request")
            .status()
            .as_u16()
    };
    assert_eq!(trigger().await, 202, "the doorbell rings");
    daemon.wait_for_log("API: camera triggered", 1, Duration::from_secs(10));

    c.goto(&format!("{base}/linked-services"))
        .await
        .expect("linked services");
    let page = c.source().await.expect("source");
    assert!(page.contains("Doorbell button") && page.contains("trigger:write"));
    assert!(!page.contains(&token), "shown only once");
    shot(c, "14-linked-services").await;
    c.find(Locator::Css(
        "form[action='/linked-services/revoke'] button",
    ))
    .await
    .expect("revoke button")
    .click()
    .await
    .expect("click");
    eventually(c, Duration::from_secs(30), "token revoked", || async {
        !c.source()
            .await
            .unwrap_or_default()
            .contains("Doorbell button")
    })
    .await;
    assert_eq!(trigger().await, 401, "revoked at once");
    assert!(!daemon.log_text().contains(&token), "never logged");
}
