//! Data rights over real HTTPS (issue 5): each user's personal data as JSON (the
//! right shape, no secret in it), a shared user deleting their own account (their
//! open sessions are refused on the next request, the owner is told), and — with
//! the real `porchlight serve` recording the real test camera — the owner's archive
//! of everything (data.json and MP4s that ffprobe and ffmpeg decode) and "erase all
//! data" (no sealed file left on disk, no account but the owner's).

mod common;
mod webutil;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::camera::{CameraOptions, TestCamera};
use common::{CameraSpec, Setup};
use porchlight::index::{AuditKind, AuditQuery};
use webutil::{csrf, recovery_codes, totp_secret, Client, Server, OWNER, PASSWORD};

const GUEST: &str = "grandma";
const GUEST_PASSWORD: &str = "purple elephant dances at noon 7";

/// Accepts an invitation and enrols TOTP with `code`; returns the logged-in client,
/// the TOTP secret and the recovery codes.
async fn accept(
    base: &str,
    secret: &str,
    code: impl Fn(&str) -> String,
) -> (Client, String, Vec<String>) {
    let mut c = Client::new(base);
    let r = c
        .post(
            "/invite",
            &[
                ("invitation", secret),
                ("username", GUEST),
                ("email", "grandma@example.org"),
                ("password", GUEST_PASSWORD),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    let page = c.get("/enrol").await;
    let totp = totp_secret(&page.body);
    let r = c
        .post(
            "/enrol",
            &[("csrf", &csrf(&page.body)), ("code", &code(&totp))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (c, totp, recovery_codes(&r.body))
}

/// Every object key in a JSON value, recursively.
fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// No key that names a secret, and none of `secrets` anywhere in the text.
fn assert_no_secret(text: &str, secrets: &[&str]) {
    let v: serde_json::Value = serde_json::from_str(text).expect("JSON");
    let mut all = Vec::new();
    keys(&v, &mut all);
    for k in &all {
        for bad in [
            "hash", "secret", "seed", "password", "recovery", "session", "csrf", "handle", "token",
            "check", "totp",
        ] {
            assert!(!k.contains(bad), "key {k:?} in {text}");
        }
    }
    assert!(!text.contains("$argon2"), "a password hash: {text}");
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !text.to_lowercase().contains(&s.to_lowercase()),
            "secret {s:?} in {text}"
        );
    }
}

/// This device's handle on /devices (a hash of the session id, still not for export).
async fn device_handle(c: &mut Client) -> String {
    let html = c.get("/devices").await.body;
    html.split("<tr class=\"this\">")
        .nth(1)
        .and_then(|r| r.split("name=\"device\" value=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("this device's row")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_json_has_the_right_shape_and_no_secret() {
    let server = Server::start("").await;
    let (mut owner, owner_totp, owner_codes) = server.owner().await;
    let secret = webutil::invite(&mut owner, "grandma").await;
    let (mut guest, guest_totp, guest_codes) =
        accept(&server.base(), &secret, |s| server.code(s)).await;

    let page = guest.get("/my-data").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("href=\"/my-data.json\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("action=\"/my-data/delete-account\""));
    assert!(!page.body.contains("/erase-all-data"), "not the owner's");

    let r = guest.get("/my-data.json").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(
        r.header("content-disposition")
            .starts_with("attachment; filename=\"porchlight-my-data-"),
        "{:?}",
        r.headers
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(v["format_version"], 1);
    let account = &v["account"];
    assert_eq!(account["name"], GUEST);
    assert_eq!(account["role"], "shared user");
    assert_eq!(account["email"], "grandma@example.org");
    assert_eq!(account["two_step_enrolled"], true);
    assert!(account["created"]
        .as_str()
        .is_some_and(|c| c.starts_with("2026-11-25T")));
    let devices = v["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0]["ip"], "127.0.0.1");
    assert_eq!(devices[0]["this_device"], true);
    assert!(devices[0]["description"]
        .as_str()
        .is_some_and(|d| d.contains("Firefox")));
    for f in ["first_seen", "last_seen"] {
        assert!(devices[0][f].is_string(), "{f}");
    }
    assert!(v["notification_preferences"].is_object());
    let kinds: Vec<&str> = v["audit_entries"]
        .as_array()
        .expect("audit entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"invitation_accepted"), "{kinds:?}");
    assert!(kinds.contains(&"two_factor_enrolled"), "{kinds:?}");
    assert!(
        !kinds.contains(&"owner_created") && !kinds.contains(&"user_invited"),
        "only their own entries: {kinds:?}"
    );
    assert!(v["security_alerts"].is_array());
    let guest_handle = device_handle(&mut guest).await;
    let guest_session = guest.session().expect("session cookie");
    let mut secrets = vec![
        guest_totp.as_str(),
        guest_session.as_str(),
        guest_handle.as_str(),
        GUEST_PASSWORD,
    ];
    secrets.extend(guest_codes.iter().map(String::as_str));
    assert!(!guest_codes.is_empty());
    assert_no_secret(&r.body, &secrets);

    // The owner's: their alerts (the new shared user) and their own entries.
    let r = owner.get("/my-data.json").await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(v["account"]["role"], "owner");
    let alerts = v["security_alerts"].as_array().expect("alerts");
    assert!(
        alerts
            .iter()
            .any(|a| a["message"].as_str().is_some_and(|m| m.contains(GUEST))),
        "{alerts:?}"
    );
    let owner_handle = device_handle(&mut owner).await;
    let owner_session = owner.session().expect("session cookie");
    let mut secrets = vec![
        owner_totp.as_str(),
        owner_session.as_str(),
        owner_handle.as_str(),
        PASSWORD,
    ];
    secrets.extend(owner_codes.iter().map(String::as_str));
    assert_no_secret(&r.body, &secrets);

    // Both downloads are in the log, each as its user's own entry.
    let entries = server
        .daemon()
        .index
        .audit_entries(&AuditQuery {
            kind: Some(AuditKind::PersonalDataDownloaded),
            limit: 10,
            ..Default::default()
        })
        .expect("audit");
    let actors: Vec<&str> = entries.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, vec![OWNER, GUEST]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_user_deletes_their_account_and_their_open_sessions_end() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let secret = webutil::invite(&mut owner, "grandma").await;
    let (mut guest, guest_totp, _) = accept(&server.base(), &secret, |s| server.code(s)).await;
    // A second device of theirs, logged in with password and TOTP.
    server.advance_secs(31);
    let mut tablet = server.client();
    let r = tablet.post_login(GUEST, GUEST_PASSWORD).await;
    assert_eq!((r.status, r.location()), (303, "/login/code"));
    let page = tablet.get("/login/code").await;
    let r = tablet
        .post(
            "/login/code",
            &[
                ("csrf", &csrf(&page.body)),
                ("code", &server.code(&guest_totp)),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);

    // The owner cannot delete their own account this way.
    let page = owner.get("/my-data").await;
    assert!(
        !page.body.contains("/my-data/delete-account"),
        "no form for the owner"
    );
    let r = owner
        .post(
            "/my-data/delete-account",
            &[
                ("csrf", &csrf(&page.body)),
                ("confirm", "delete my account"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);

    // A wrong confirmation changes nothing.
    let page = guest.get("/my-data").await;
    let token = csrf(&page.body);
    let r = guest
        .post(
            "/my-data/delete-account",
            &[("csrf", &token), ("confirm", "delete")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("exactly to confirm"), "{}", r.body);
    assert_eq!(tablet.get("/").await.status, 200);

    let r = guest
        .post(
            "/my-data/delete-account",
            &[("csrf", &token), ("confirm", " Delete my account ")],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/login"), "{}", r.body);
    assert!(guest.session().is_none(), "the cookie is cleared");
    // The other device's open session is refused on its very next request.
    let r = tablet.get("/my-data.json").await;
    assert_eq!((r.status, r.location()), (303, "/login"));
    let r = tablet.get("/").await;
    assert_eq!(r.location(), "/login");
    // And nobody logs in as them any more.
    let mut again = server.client();
    let r = again.post_login(GUEST, GUEST_PASSWORD).await;
    assert_eq!(r.status, 401, "{}", r.body);

    // The owner is told, and sees it in the log; the account is gone from Users.
    let alerts = owner.get("/alerts").await.body;
    assert!(alerts.contains("deleted their shared account"), "{alerts}");
    let users = owner.get("/users").await.body;
    assert!(!users.contains(&format!("<td>{GUEST}</td>")), "{users}");
    let d = server.daemon();
    let deleted = d
        .index
        .audit_entries(&AuditQuery {
            kind: Some(AuditKind::AccountDeleted),
            limit: 10,
            ..Default::default()
        })
        .expect("audit");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].actor, GUEST);
    assert!(d.index.find_user(GUEST).expect("index").is_none());
    assert_eq!(
        d.index.all_sessions().expect("sessions").len(),
        1,
        "only the owner's"
    );
}

// ---------------------------------------------------------------------------------
// The archive of everything and erase all, against the real daemon and camera.

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn real_code(secret: &str) -> String {
    porchlight::auth::totp::code_at(secret, now_secs()).expect("code")
}

/// (name, contents) of each file of a ustar archive; checks the end marker.
fn untar(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let h = &archive[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            assert!(
                archive[at..].iter().all(|&b| b == 0),
                "ends with zero blocks"
            );
            return out;
        }
        assert_eq!(&h[257..263], b"ustar\0", "a ustar header at {at}");
        let text = |r: std::ops::Range<usize>| {
            String::from_utf8(h[r].iter().copied().take_while(|&b| b != 0).collect())
                .expect("ascii")
        };
        let size = u64::from_str_radix(&text(124..136), 8).expect("octal size") as usize;
        let data = archive[at + 512..at + 512 + size].to_vec();
        out.push((text(0..100), data));
        at += 512 + size.div_ceil(512) * 512;
    }
}

fn sealed_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    common::walk(dir, &mut files);
    files.retain(|p| p.extension().is_some_and(|e| e == "plr" || e == "plt"));
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_exports_everything_then_erases_all_data() {
    let mut camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(
        &[CameraSpec::continuous("front-door", &camera.main_url())],
        "",
    );
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    let code = std::fs::read_to_string(setup.data_dir().join("setup-code")).expect("setup code");
    let mut owner = webutil::owner_with_real_clock(&base, code.trim()).await;
    daemon.wait_for_log("recording started", 1, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Stopping finishes the recording; with the camera gone none starts after.
    daemon.stop();
    camera.stop();
    let recordings = setup.recordings();
    assert!(!recordings.is_empty());
    let id = recordings[0]["id"].as_str().expect("id").to_owned();

    let mut daemon = setup.start_daemon();
    owner.base = daemon.web_base();
    let base = owner.base.clone();
    // A shared user, a share link (a sealed copy) and a linked service.
    let secret = webutil::invite(&mut owner, "grandma").await;
    let (mut guest, _, _) = accept(&base, &secret, real_code).await;
    let page = owner.get(&format!("/recordings/{id}")).await;
    let r = owner
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
    assert_eq!(r.status, 200, "{}", r.body);
    let page = owner.get("/linked-services").await;
    let r = owner
        .post(
            "/linked-services",
            &[
                ("csrf", csrf(&page.body).as_str()),
                ("name", "Home Assistant"),
                ("scope", "events:read"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let marker = "id=\"token\" class=\"secret\">";
    let start = r.body.find(marker).expect("the token") + marker.len();
    let token = r.body[start..].split('<').next().expect("token").to_owned();
    assert!(
        sealed_files(&setup.data_dir()).len() >= 2,
        "recording and copy"
    );

    let alerts = owner.get("/alerts").await.body;
    assert!(
        alerts.contains(GUEST),
        "the new-shared-user alert: {alerts}"
    );
    // A shared user gets no archive.
    assert_eq!(guest.get("/export-everything.tar").await.status, 403);

    // The archive.
    let r = owner
        .http
        .get(format!("{base}/export-everything.tar"))
        .header("cookie", owner.cookie_header())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/x-tar");
    assert_eq!(header("cache-control"), "no-store");
    assert!(
        header("content-disposition").starts_with("attachment; filename=\"porchlight-everything-")
    );
    let archive = r.bytes().await.expect("body");
    let files = untar(&archive);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "data.json", "{names:?}");
    let mp4_name = format!("recordings/front-door/{id}.mp4");
    assert!(names.contains(&mp4_name.as_str()), "{names:?}");
    let data = std::str::from_utf8(&files[0].1).expect("utf-8");
    assert_no_secret(data, &[PASSWORD, GUEST_PASSWORD, &token, &secret]);
    let v: serde_json::Value = serde_json::from_str(data).expect("JSON");
    let users: Vec<&str> = v["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(users.contains(&OWNER) && users.contains(&GUEST));
    let listed = v["recordings"]
        .as_array()
        .expect("recordings")
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("the recording is listed");
    assert_eq!(listed["file"], mp4_name.as_str());
    assert_eq!(v["linked_services"][0]["name"], "Home Assistant");
    assert_eq!(v["share_links"].as_array().map(Vec::len), Some(1));
    assert!(v["events"].is_array());
    let log = v["audit_log"].as_array().expect("audit log");
    assert!(log.iter().any(|e| e["kind"] == "everything_exported"));
    // Each MP4 decodes.
    for (name, bytes) in files.iter().filter(|(n, _)| n.ends_with(".mp4")) {
        let path = setup.dir.path().join("from-archive.mp4");
        std::fs::write(&path, bytes).expect("write");
        let probe = common::ffprobe(&path);
        assert_eq!(probe.codec, "h264", "{name}");
        assert!(probe.frames > 10, "{name}: {} frames", probe.frames);
        let errors = common::ffmpeg_decode_errors(&path);
        assert!(errors.trim().is_empty(), "{name}: {errors}");
    }

    // What a crash can orphan (a thumbnail or share copy written, its entry not):
    // sealed files no entry names, which erasing must not leave behind either.
    let sealed = sealed_files(&setup.data_dir());
    let a_recording = sealed.first().expect("a recording file");
    let orphan_thumbnails = setup.data_dir().join("thumbnails").join("front-door");
    std::fs::create_dir_all(&orphan_thumbnails).expect("thumbnails dir");
    std::fs::copy(a_recording, orphan_thumbnails.join("0000000000000099.plt"))
        .expect("orphan thumbnail");
    let shares_dir = setup.data_dir().join("shares");
    std::fs::create_dir_all(&shares_dir).expect("shares dir");
    std::fs::copy(a_recording, shares_dir.join("00000000000000ab.plr")).expect("orphan copy");

    // Erase all data: a wrong confirmation changes nothing.
    let page = owner.get("/erase-all-data").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Keys are destroyed first"),
        "{}",
        page.body
    );
    let token_csrf = csrf(&page.body);
    let r = owner
        .post(
            "/erase-all-data",
            &[("csrf", &token_csrf), ("confirm", "erase")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(guest.get("/").await.status, 200);
    // Without the owner's password, or with a wrong one, nothing is erased: a
    // borrowed session must not wipe the footage and the log that would show it.
    assert!(
        page.body.contains("autocomplete=\"current-password\""),
        "{}",
        page.body
    );
    let sealed_before = sealed_files(&setup.data_dir());
    for (why, password) in [("no password", None), ("a wrong password", Some("not it"))] {
        let mut form = vec![("csrf", token_csrf.as_str()), ("confirm", "erase all data")];
        form.extend(password.map(|p| ("password", p)));
        let r = owner.post("/erase-all-data", &form).await;
        assert_eq!(r.status, 403, "{why}: {}", r.body);
        assert!(r.body.contains("Wrong password"), "{why}: {}", r.body);
        assert_eq!(guest.get("/").await.status, 200, "{why}");
        // (The camera may add files meanwhile: none of the old ones may go.)
        assert!(sealed_before.iter().all(|f| f.exists()), "{why}: shredded");
    }
    let r = owner
        .post(
            "/erase-all-data",
            &[
                ("csrf", &token_csrf),
                ("confirm", "erase all data"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/activity"), "{}", r.body);

    assert_eq!(
        sealed_files(&setup.data_dir()),
        Vec::<PathBuf>::new(),
        "no sealed file is left"
    );
    assert_eq!(
        guest.get("/").await.location(),
        "/login",
        "the guest is out"
    );
    let users = owner.get("/users").await.body;
    assert_eq!(users.matches("<tr id=\"user-").count(), 1, "{users}");
    assert!(users.contains("<td>owner</td>"));
    let alerts = owner.get("/alerts").await.body;
    assert!(!alerts.contains(GUEST), "past alerts went too: {alerts}");
    let activity = owner.get("/activity").await.body;
    assert_eq!(
        activity.matches("<tr class=\"audit-").count(),
        1,
        "{activity}"
    );
    assert!(activity.contains("audit-all_data_erased"), "{activity}");
    let r = owner
        .http
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401, "the token is revoked");
    assert_eq!(owner.get(&format!("/recordings/{id}")).await.status, 404);
    daemon.stop();
    assert!(setup.recordings().is_empty(), "no recording in the index");
}
