//! End-to-end mode in the web UI, against the real `porchlight serve` recording the
//! real test camera, over HTTPS: turn it on (recovery key shown once), an end-to-end
//! recording is refused while locked ("unlock to view"), unlock (recovery key, then
//! passphrase), Range reads equal an independent `porchlight export --passphrase`,
//! lock, refused again; wrong passphrases are audited and throttled.

mod common;
mod webutil;

use std::time::Duration;

use common::camera::{CameraOptions, TestCamera};
use common::{CameraSpec, Setup};
use webutil::{csrf, Client};

const PASSPHRASE: &str = "lantern orchard pebble 1987 quietly";

async fn post_unlock(c: &mut Client, secret: &str, next: &str) -> webutil::Reply {
    let page = c.get("/end-to-end").await;
    let token = csrf(&page.body);
    c.post(
        "/end-to-end/unlock",
        &[("csrf", &token), ("secret", secret), ("next", next)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_play_lock_and_playback_is_refused_again() {
    // The textured 1080p picture, so a recording spans many 64 KiB sealed chunks.
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
    let code = std::fs::read_to_string(setup.data_dir().join("setup-code")).expect("setup code");
    let mut c = webutil::owner_with_real_clock(&base, code.trim()).await;
    daemon.wait_for_log("recording started", 1, Duration::from_secs(30));

    // Turning it on: the passphrase twice, checked for strength like a password.
    let page = c.get("/end-to-end").await;
    assert!(page.body.contains("id=\"e2e-enable\""), "{}", page.body);
    let token = csrf(&page.body);
    let weak = c
        .post(
            "/end-to-end/enable",
            &[
                ("csrf", &token),
                ("passphrase", "password1"),
                ("repeat", "password1"),
            ],
        )
        .await;
    assert_eq!(weak.status, 400, "{}", weak.body);
    let r = c
        .post(
            "/end-to-end/enable",
            &[
                ("csrf", &token),
                ("passphrase", PASSPHRASE),
                ("repeat", PASSPHRASE),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), "no-store");
    let recovery = r
        .body
        .split("<code id=\"recovery-key\" class=\"recovery-key\">")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the recovery key is shown")
        .to_owned();
    assert_eq!(recovery.len(), 64, "{recovery}");
    assert!(r.body.contains("<svg"), "and as a QR code");
    let control = c.get("/control-centre").await.body;
    assert!(control.contains("<strong>on</strong>"), "{control}");
    let again = c.get("/end-to-end").await.body;
    assert!(!again.contains(&recovery), "shown only once");

    // The recording running now was started before: restart so the next is sealed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.stop();
    let before = setup.finished_ids();
    assert!(!before.is_empty());
    let mut daemon = setup.start_daemon();
    daemon.wait_for_log("recording started", 1, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(4)).await;
    daemon.stop();
    let id = setup
        .finished_ids()
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("a recording made after turning it on");

    // The independent decrypt: the CLI with the passphrase on standard input.
    let exported = setup.dir.path().join("independent.mp4");
    let out = setup.cli_with(
        &[
            "export",
            "--recording",
            &id,
            "--out",
            exported.to_str().expect("utf-8"),
            "--passphrase",
        ],
        &[],
        Some(&format!("{PASSPHRASE}\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read(&exported).expect("export");
    let len = expected.len();
    assert!(len > 10_000, "{len} bytes");

    let mut daemon = setup.start_daemon();
    c.base = daemon.web_base();
    let video = format!("/recordings/{id}/video.mp4");
    // Locked: the player, the stream and the download say "unlock to view".
    for path in [
        format!("/recordings/{id}"),
        video.clone(),
        format!("/recordings/{id}/download"),
    ] {
        let r = c.get(&path).await;
        assert_eq!(r.status, 423, "{path}: {}", r.body);
        assert!(r.body.contains("unlock to view"), "{}", r.body);
        assert!(r.body.contains("href=\"/end-to-end\""), "{}", r.body);
    }
    // What was recorded before plays as before.
    let old = c.get(&format!("/recordings/{}/video.mp4", before[0])).await;
    assert_eq!(old.status, 200);

    // A wrong passphrase is refused; the recovery key unlocks and returns to the page.
    let r = post_unlock(&mut c, "not the passphrase at all", "").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("wrong passphrase or recovery key"),
        "{}",
        r.body
    );
    let next = format!("/recordings/{id}");
    let r = post_unlock(&mut c, &recovery, &next).await;
    assert_eq!((r.status, r.location()), (303, next.as_str()), "{}", r.body);

    // Play: Range reads equal the export.
    let (status, content_range, body) = webutil::range(&mut c, &video, "bytes=0-99").await;
    assert_eq!((status, content_range), (206, format!("bytes 0-99/{len}")));
    assert_eq!(body, expected[..100]);
    let mid = len / 2;
    let (status, _, body) =
        webutil::range(&mut c, &video, &format!("bytes={mid}-{}", mid + 70_000)).await;
    assert_eq!(status, 206);
    assert_eq!(body, expected[mid..(mid + 70_001).min(len)]);
    let (_, _, body) = webutil::range(&mut c, &video, "bytes=-1000").await;
    assert_eq!(body, expected[len - 1000..]);
    assert_eq!(c.get(&format!("/recordings/{id}")).await.status, 200);

    // Sharing needs the unlocked key; the copy is sealed under the link's key and
    // plays for the link holder without any account or passphrase.
    let page = c.get(&format!("/recordings/{id}")).await;
    let made = c
        .post(
            &format!("/recordings/{id}/share"),
            &[
                ("csrf", &csrf(&page.body)),
                ("hours", "24"),
                ("views", ""),
                ("password", webutil::PASSWORD),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let (link, secret) = webutil::share_link_of(&made.body);
    let mut holder = Client::new(&c.base);
    let r = holder
        .post(&format!("/s/{link}/open"), &[("secret", &secret)])
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (status, _, shared) =
        webutil::range(&mut holder, &format!("/s/{link}/video.mp4"), "bytes=0-").await;
    assert_eq!(status, 206);
    assert_eq!(shared, expected, "the shared copy is the same clip");

    // Lock: refused again.
    let page = c.get("/end-to-end").await;
    assert!(page.body.contains("id=\"e2e-unlocked\""), "{}", page.body);
    let r = c
        .post("/end-to-end/lock", &[("csrf", &csrf(&page.body))])
        .await;
    assert_eq!((r.status, r.location()), (303, "/end-to-end"));
    assert_eq!(c.get(&video).await.status, 423);
    let page = c.get("/end-to-end").await;
    let r = c
        .post(
            &format!("/recordings/{id}/share"),
            &[
                ("csrf", &csrf(&page.body)),
                ("hours", "24"),
                ("views", ""),
                ("password", webutil::PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 423, "no share of a locked end-to-end recording");

    // The passphrase unlocks too.
    let r = post_unlock(&mut c, PASSPHRASE, "").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(c.get(&video).await.status, 200);

    // Every step is in the activity log.
    let activity = c.get("/activity").await.body;
    for kind in [
        "end_to_end_enabled",
        "end_to_end_unlocked",
        "end_to_end_unlock_failed",
        "end_to_end_locked",
    ] {
        assert!(activity.contains(&format!("audit-{kind}")), "{kind} logged");
    }

    // Guessing is throttled: after a few failures an attempt is refused unlooked-at.
    let mut throttled = false;
    for _ in 0..12 {
        let r = post_unlock(&mut c, "another wrong guess", "").await;
        if r.status == 429 {
            throttled = true;
            break;
        }
        assert_eq!(r.status, 401, "{}", r.body);
    }
    assert!(throttled, "wrong passphrases are throttled");

    let log = daemon.log_text();
    assert!(!log.contains(PASSPHRASE), "no passphrase in the log");
    assert!(!log.contains(&recovery), "no recovery key in the log");
    daemon.stop();
}
