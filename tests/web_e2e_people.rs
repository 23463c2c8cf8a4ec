//! End-to-end mode and the household's people, over real HTTPS against the in-process
//! daemon (simulated clock): a shared user cannot turn the mode on but enrols a
//! passphrase of their own once it is on and becomes a recipient; removing them stops
//! sealing to them; an unlocked key locks itself after 15 minutes without use; the
//! owner turns it off with the passphrase, migrates what was sealed (recordings and
//! event thumbnails), turns it back on.

mod webutil;

use porchlight::index::{RecordingEntry, RecordingState};
use porchlight::model::{CameraId, RecordingId, Trigger};
use porchlight::store::NewRecording;
use webutil::{csrf, Server, T0_MICROS};

const OWNER_PASSPHRASE: &str = "lantern orchard pebble 1987 quietly";
const GUEST: &str = "grandma";
const GUEST_PASSWORD: &str = "purple elephant dances at noon 7";
const GUEST_PASSPHRASE: &str = "velvet harbour compass 2231 slowly";

async fn turn_on(c: &mut webutil::Client, passphrase: &str) -> webutil::Reply {
    let page = c.get("/end-to-end").await;
    assert_eq!(page.status, 200, "{}", page.body);
    c.post(
        "/end-to-end/enable",
        &[
            ("csrf", &csrf(&page.body)),
            ("passphrase", passphrase),
            ("repeat", passphrase),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_users_enrol_their_own_key_removal_stops_sealing_and_idle_keys_lock() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let mut guest =
        webutil::shared_user(&server, &mut owner, "Grandma", GUEST, GUEST_PASSWORD).await;

    // Off: the page offers a shared user nothing to turn on, and forcing it is refused.
    let page = guest.get("/end-to-end").await.body;
    assert!(!page.contains("id=\"e2e-enable\"") && !page.contains("id=\"e2e-enrol\""));
    let r = turn_on(&mut guest, GUEST_PASSPHRASE).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(server.daemon().store.recipients().is_empty());

    // The owner turns it on; the guest then enrols a passphrase of their own.
    let r = turn_on(&mut owner, OWNER_PASSPHRASE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let store = &server.daemon().store;
    assert_eq!(store.recipients().len(), 1);
    let owner_key = store.recipients()[0].clone();
    let page = guest.get("/end-to-end").await.body;
    assert!(page.contains("id=\"e2e-no-key\"") && page.contains("id=\"e2e-enrol\""));
    let r = turn_on(&mut guest, GUEST_PASSPHRASE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"recovery-key\""));
    assert_eq!(
        store.recipients().len(),
        2,
        "new recordings are sealed to both"
    );
    // Once only: a second enrolment is refused.
    assert_eq!(turn_on(&mut guest, GUEST_PASSPHRASE).await.status, 409);

    // The guest unlocks their own key (not the owner's passphrase)...
    let page = guest.get("/end-to-end").await;
    let wrong = guest
        .post(
            "/end-to-end/unlock",
            &[("csrf", &csrf(&page.body)), ("secret", OWNER_PASSPHRASE)],
        )
        .await;
    assert_eq!(
        wrong.status, 401,
        "another viewer's passphrase is not theirs"
    );
    let r = guest
        .post(
            "/end-to-end/unlock",
            &[("csrf", &csrf(&page.body)), ("secret", GUEST_PASSPHRASE)],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/end-to-end"));
    server.advance_secs(14 * 60);
    assert!(guest
        .get("/end-to-end")
        .await
        .body
        .contains("id=\"e2e-unlocked\""));
    // ...which locks itself after 15 minutes without use (the session lives on).
    server.advance_secs(15 * 60 + 1);
    let page = guest.get("/end-to-end").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"e2e-locked\""), "{}", page.body);

    // Removing the guest stops sealing new recordings to their key.
    let users = owner.get("/users").await.body;
    let id = users
        .split("<tr id=\"user-")
        .find(|row| row.contains(GUEST))
        .and_then(|row| row.split('"').next())
        .expect("the guest's row")
        .to_owned();
    let r = owner
        .post(&format!("/users/{id}/remove"), &[("csrf", &csrf(&users))])
        .await;
    assert_eq!((r.status, r.location()), (303, "/users"));
    assert_eq!(store.recipients(), vec![owner_key.clone()]);

    // A recording made now is sealed to the owner alone.
    let camera: CameraId = "porch".parse().expect("camera");
    let id = RecordingId::random();
    let (mut w, slots) = store
        .create_recording(&NewRecording {
            id,
            camera: camera.clone(),
            start_micros: T0_MICROS,
            trigger: Trigger::Motion,
        })
        .expect("create");
    w.write_all(b"video bytes sealed to the owner")
        .expect("write");
    let written = w.finish().expect("finish");
    let index = &server.daemon().index;
    index
        .put_recording(&RecordingEntry {
            id,
            camera: camera.clone(),
            start_micros: T0_MICROS,
            end_micros: T0_MICROS + 1_000_000,
            frames: 1,
            bytes: written.file_len,
            trigger: Trigger::Motion,
            wrapped_key: slots,
            state: RecordingState::Finished,
            durable_len: None,
        })
        .expect("index");
    assert!(store.is_end_to_end(&camera, id).expect("header"));
    // Its event's thumbnail, sealed to the owner the same way.
    webutil::objects::put_event(&server, 0xeeee, id, T0_MICROS);
    let thumbnail_url = "/events/000000000000eeee/thumbnail.jpg";

    // Turning it off needs the passphrase; the key stays for what was sealed.
    let page = owner.get("/end-to-end").await;
    assert!(page.body.contains("id=\"e2e-disable\""), "{}", page.body);
    let token = csrf(&page.body);
    let wrong = owner
        .post(
            "/end-to-end/disable",
            &[("csrf", &token), ("passphrase", "not it")],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(store.recipients().len(), 1, "still on");
    let r = owner
        .post(
            "/end-to-end/disable",
            &[("csrf", &token), ("passphrase", OWNER_PASSPHRASE)],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/end-to-end"), "{}", r.body);
    assert!(
        store.recipients().is_empty(),
        "new recordings: master key again"
    );
    let page = owner.get("/end-to-end").await.body;
    assert!(page.contains("Turned off") && page.contains("id=\"e2e-unlock\""));
    assert!(!page.contains("id=\"e2e-enable\""), "no second key");

    // Migrating needs the unlocked key, then re-seals under the master key.
    assert_eq!(owner.get(thumbnail_url).await.status, 423, "still sealed");
    let r = owner.post("/end-to-end/migrate", &[("csrf", &token)]).await;
    assert_eq!(r.status, 423, "locked: {}", r.body);
    let r = owner
        .post(
            "/end-to-end/unlock",
            &[("csrf", &token), ("secret", OWNER_PASSPHRASE)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(owner
        .get("/end-to-end")
        .await
        .body
        .contains("id=\"e2e-migrate\""));
    let r = owner.post("/end-to-end/migrate", &[("csrf", &token)]).await;
    assert_eq!((r.status, r.location()), (303, "/end-to-end"), "{}", r.body);
    assert!(!store.is_end_to_end(&camera, id).expect("header"));
    store
        .open_recording(&camera, id)
        .expect("the master key opens it now");
    let entry = index.get_recording(id).expect("get").expect("entry");
    assert_eq!(
        entry.wrapped_key.len(),
        144,
        "a master-wrapped key in the index"
    );
    // The thumbnail too: served once locked again, like one taken with the mode off.
    let r = owner.post("/end-to-end/lock", &[("csrf", &token)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let thumb = owner.get(thumbnail_url).await;
    assert_eq!(thumb.status, 200, "{}", thumb.body);
    assert_eq!(
        thumb.body.as_bytes(),
        String::from_utf8_lossy(webutil::objects::THUMBNAIL).as_bytes()
    );
    let r = owner
        .post(
            "/end-to-end/enable",
            &[
                ("csrf", &token),
                ("resume", "yes"),
                ("passphrase", OWNER_PASSPHRASE),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/end-to-end"), "{}", r.body);
    assert_eq!(store.recipients(), vec![owner_key]);
    let activity = owner.get("/activity").await.body;
    for kind in ["end_to_end_disabled", "end_to_end_migrated"] {
        assert!(activity.contains(&format!("audit-{kind}")), "{kind}");
    }
    assert!(
        activity.contains("1 recording(s) and 1 thumbnail(s) re-sealed"),
        "{activity}"
    );
}

const NEW_PASSPHRASE: &str = "copper meadow lantern 4410 gently";
const CAMERA: &str =
    "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"events\"\n";

fn recovery_key_of(body: &str) -> String {
    body.split("<code id=\"recovery-key\" class=\"recovery-key\">")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the recovery key is shown")
        .to_owned()
}

async fn post_unlock(c: &mut webutil::Client, secret: &str) -> u16 {
    let page = c.get("/end-to-end").await;
    c.post(
        "/end-to-end/unlock",
        &[("csrf", &csrf(&page.body)), ("secret", secret)],
    )
    .await
    .status
}

async fn change(c: &mut webutil::Client, current: &str, new: &str) -> webutil::Reply {
    let page = c.get("/end-to-end").await;
    c.post(
        "/end-to-end/passphrase",
        &[
            ("csrf", &csrf(&page.body)),
            ("current", current),
            ("passphrase", new),
            ("repeat", new),
        ],
    )
    .await
}

fn viewer_file(server: &Server) -> Vec<u8> {
    let dir = server.data_dir().join("viewers");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("viewers")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read(&files[0]).expect("read")
}

/// Change passphrase: a wrong current one changes nothing (the key file's bytes
/// included); the right one re-locks, after which the old passphrase is refused, the
/// new one unlocks and a recording sealed before still plays; the recovery key may
/// stand in for the passphrase; other sessions are locked; audited and alerted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_changes_their_passphrase_with_it_or_the_recovery_key() {
    let server = Server::start(CAMERA).await;
    let (mut owner, totp, _) = server.owner().await;
    let r = turn_on(&mut owner, OWNER_PASSPHRASE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let recovery = recovery_key_of(&r.body);
    let id = webutil::objects::put_recording(&server, 7, T0_MICROS - 60_000_000);
    let video = format!("/recordings/{id}/video.mp4");
    assert_eq!(owner.get(&video).await.status, 423, "sealed, locked");
    // A second session of the owner, unlocked.
    server.advance_secs(31);
    let mut other = server.client();
    server.login(&mut other, &totp).await;
    assert_eq!(post_unlock(&mut other, OWNER_PASSPHRASE).await, 303);
    assert_eq!(other.get(&video).await.status, 200);

    let page = owner.get("/end-to-end").await.body;
    assert!(page.contains("id=\"e2e-change-passphrase\""), "{page}");
    let before = viewer_file(&server);
    let r = change(&mut owner, "not my passphrase at all", NEW_PASSPHRASE).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("wrong passphrase or recovery key"),
        "{}",
        r.body
    );
    assert_eq!(viewer_file(&server), before, "nothing written");
    // Without the form's token: refused before anything is looked at.
    let r = owner
        .post(
            "/end-to-end/passphrase",
            &[
                ("current", OWNER_PASSPHRASE),
                ("passphrase", NEW_PASSPHRASE),
                ("repeat", NEW_PASSPHRASE),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(viewer_file(&server), before);

    let r = change(&mut owner, OWNER_PASSPHRASE, NEW_PASSPHRASE).await;
    assert_eq!((r.status, r.location()), (303, "/end-to-end"), "{}", r.body);
    assert_ne!(viewer_file(&server), before);
    assert_eq!(other.get(&video).await.status, 423, "other sessions locked");
    assert_eq!(post_unlock(&mut owner, OWNER_PASSPHRASE).await, 401);
    assert_eq!(post_unlock(&mut owner, NEW_PASSPHRASE).await, 303);
    assert_eq!(owner.get(&video).await.status, 200, "sealed before, opens");

    // The recovery key proves it too (it is unchanged by the first change).
    let r = change(&mut owner, &recovery, OWNER_PASSPHRASE).await;
    assert_eq!((r.status, r.location()), (303, "/end-to-end"), "{}", r.body);
    assert_eq!(post_unlock(&mut owner, NEW_PASSPHRASE).await, 401);
    assert_eq!(post_unlock(&mut owner, OWNER_PASSPHRASE).await, 303);

    let activity = owner.get("/activity").await.body;
    assert!(activity.contains("audit-end_to_end_passphrase_changed"));
    assert!(!activity.contains(OWNER_PASSPHRASE) && !activity.contains(NEW_PASSPHRASE));
    let alerts = owner.get("/alerts").await.body;
    assert!(alerts.contains("end-to-end passphrase"), "{alerts}");
}

/// A new recovery key needs the passphrase, is shown once, and the old one stops
/// unlocking while the new one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_recovery_key_replaces_the_old_one() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let r = turn_on(&mut owner, OWNER_PASSPHRASE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let old = recovery_key_of(&r.body);
    let page = owner.get("/end-to-end").await;
    assert!(
        page.body.contains("id=\"e2e-new-recovery-key\""),
        "{}",
        page.body
    );
    let token = csrf(&page.body);
    let before = viewer_file(&server);
    let r = owner
        .post(
            "/end-to-end/recovery-key",
            &[("csrf", &token), ("passphrase", &old)],
        )
        .await;
    assert_eq!(
        r.status, 401,
        "the old recovery key is no proof: {}",
        r.body
    );
    assert_eq!(viewer_file(&server), before);
    let r = owner
        .post(
            "/end-to-end/recovery-key",
            &[("csrf", &token), ("passphrase", OWNER_PASSPHRASE)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(r.body.contains("id=\"recovery-renewed\""), "{}", r.body);
    let new = recovery_key_of(&r.body);
    assert_ne!(new, old);
    assert_eq!(post_unlock(&mut owner, &old).await, 401, "old one refused");
    assert_eq!(post_unlock(&mut owner, &new).await, 303, "new one unlocks");
    assert_eq!(post_unlock(&mut owner, OWNER_PASSPHRASE).await, 303);
    let activity = owner.get("/activity").await.body;
    assert!(activity.contains("audit-end_to_end_recovery_key_replaced"));
    assert!(!activity.contains(&new));
    let alerts = owner.get("/alerts").await.body;
    assert!(alerts.contains("new end-to-end recovery key"), "{alerts}");
}

/// The end-to-end passphrase is held to a stricter rule than a login password: a
/// password good enough to log in with (zxcvbn score 3, 15 characters) is refused as
/// a passphrase, at enrolment and on a change, with the reason; the page says the
/// rule; a passphrase chosen before keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_grade_password_is_refused_as_the_end_to_end_passphrase() {
    const LOGIN_GRADE: &str = "purple elephant";
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let secret = webutil::invite(&mut owner, "Grandma").await;
    let (mut guest, r) = webutil::accept_invitation(&server, &secret, GUEST, LOGIN_GRADE).await;
    assert_eq!(r.status, 303, "accepted as a login password: {}", r.body);

    let page = owner.get("/end-to-end").await.body;
    assert!(page.contains("At least 12 characters"), "{page}");
    let r = turn_on(&mut owner, LOGIN_GRADE).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("attacked offline"), "{}", r.body);
    assert!(server.daemon().store.recipients().is_empty());
    let r = turn_on(&mut owner, "Xq7#mPz!9vR").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("at least 12 characters"), "{}", r.body);

    let r = turn_on(&mut owner, OWNER_PASSPHRASE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    webutil::enrol_with(&server, &mut guest).await;
    let r = turn_on(&mut guest, LOGIN_GRADE).await;
    assert_eq!(r.status, 400, "refused for a shared user too: {}", r.body);
    assert!(r.body.contains("attacked offline"), "{}", r.body);

    let before = viewer_file(&server);
    let r = change(&mut owner, OWNER_PASSPHRASE, LOGIN_GRADE).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("attacked offline"), "{}", r.body);
    assert_eq!(viewer_file(&server), before);
    assert_eq!(post_unlock(&mut owner, OWNER_PASSPHRASE).await, 303);
}

/// A phone keyboard's trailing space in a new passphrase: unlocking drops spaces
/// around what is typed, so the change drops them too, and the new-recovery-key
/// form accepts the passphrase typed with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailing_space_in_a_new_passphrase_is_dropped_as_at_unlock() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let r = turn_on(&mut owner, OWNER_PASSPHRASE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let spaced = format!("{NEW_PASSPHRASE} ");
    let r = change(&mut owner, OWNER_PASSPHRASE, &spaced).await;
    assert_eq!((r.status, r.location()), (303, "/end-to-end"), "{}", r.body);
    assert_eq!(post_unlock(&mut owner, NEW_PASSPHRASE).await, 303);
    let page = owner.get("/end-to-end").await;
    let r = owner
        .post(
            "/end-to-end/recovery-key",
            &[("csrf", &csrf(&page.body)), ("passphrase", &spaced)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    recovery_key_of(&r.body);
}
