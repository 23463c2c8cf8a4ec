//! End-to-end mode and the household's people, over real HTTPS against the in-process
//! daemon (simulated clock): a shared user cannot turn the mode on but enrols a
//! passphrase of their own once it is on and becomes a recipient; removing them stops
//! sealing to them; an unlocked key locks itself after 15 minutes without use; the
//! owner turns it off with the passphrase, migrates what was sealed, turns it back on.

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
    let secret = webutil::invite(&mut owner, "Grandma").await;
    let (mut guest, r) = webutil::accept_invitation(&server, &secret, GUEST, GUEST_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    webutil::enrol_with(&server, &mut guest).await;

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
        })
        .expect("index");
    assert!(store.is_end_to_end(&camera, id).expect("header"));

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
}
