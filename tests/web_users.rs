//! Shared users over real HTTPS: the owner invites with a one-time link (the secret in
//! its fragment), the invitee makes an account and must enrol TOTP, sees the house but
//! no delete, share or user controls and is refused (403) when forcing them, sees only
//! their own activity; the invitation works once and expires after 48 hours; removing
//! the user ends their open session on the very next request.

mod webutil;

use webutil::{csrf, totp_secret, Client, Server};

const GUEST: &str = "grandma";
const GUEST_PASSWORD: &str = "purple elephant dances at noon 7";
const CAMERA: &str =
    "[[camera]]\nname = \"garden\"\nurl = \"rtsp://127.0.0.1:9/nothing\"\nmode = \"events\"\n";

async fn accept(server: &Server, secret: &str, name: &str) -> (Client, webutil::Reply) {
    webutil::accept_invitation(server, secret, name, GUEST_PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_shared_user_sees_but_cannot_change_and_removal_is_immediate() {
    let server = Server::start(CAMERA).await;
    let (mut owner, _, _) = server.owner().await;
    let secret = webutil::invite(&mut owner, "Grandma <3").await;
    let users = owner.get("/users").await.body;
    assert!(
        users.contains("Grandma &#60;3"),
        "the note is listed, escaped"
    );
    assert!(!users.contains(&secret), "the secret is not shown again");

    let (mut guest, r) = accept(&server, &secret, GUEST).await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    assert_eq!(
        guest.get("/").await.location(),
        "/enrol",
        "TOTP comes first"
    );
    let page = guest.get("/enrol").await;
    let totp = totp_secret(&page.body);
    let r = guest
        .post(
            "/enrol",
            &[("csrf", &csrf(&page.body)), ("code", &server.code(&totp))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Used once: a second try (another name) is refused like a wrong code.
    let (_, again) = accept(&server, &secret, "someone-else").await;
    assert_eq!(again.status, 401);
    assert!(again.body.contains("invitation is not valid"));

    // The owner was told.
    let alerts = owner.get("/alerts").await.body;
    assert!(alerts.contains("accepted an invitation"), "{alerts}");

    // The guest sees the house but no controls that change it...
    let home = guest.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("id=\"camera-garden\""));
    for control in ["/delete-everything", "/users", "/shares"] {
        assert!(
            !home.body.contains(&format!("href=\"{control}\"")),
            "{control} shown"
        );
    }
    let day = guest.get("/cameras/garden/recordings").await;
    assert_eq!(day.status, 200);
    assert!(!day.body.contains("/delete\""), "no delete form");
    // ...and is refused when forcing them.
    let token = csrf(&home.body);
    assert_eq!(guest.get("/users").await.status, 403);
    assert_eq!(guest.get("/shares").await.status, 403);
    assert_eq!(guest.get("/delete-everything").await.status, 403);
    for (path, form) in [
        (
            "/delete-everything",
            vec![("csrf", token.as_str()), ("confirm", "delete everything")],
        ),
        (
            "/cameras/garden/delete",
            vec![("csrf", token.as_str()), ("confirm", "garden")],
        ),
        (
            "/users/invite",
            vec![("csrf", token.as_str()), ("note", "x")],
        ),
    ] {
        assert_eq!(guest.post(path, &form).await.status, 403, "{path}");
    }
    // Their activity is their own; the Control Centre shows their account only.
    let activity = guest.get("/activity").await.body;
    assert!(
        activity.contains("audit-invitation_accepted") && !activity.contains("audit-owner_created"),
        "{activity}"
    );
    assert!(
        !activity.contains("name=\"user\""),
        "no user filter for them"
    );
    let centre = guest.get("/control-centre").await.body;
    assert!(centre.contains(GUEST) && !centre.contains("id=\"encryption\""));

    // Removal: the guest's open browser is refused on its very next request.
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
    assert_eq!(guest.get("/").await.location(), "/login");
    let mut retry = server.client();
    let r = retry.post_login(GUEST, GUEST_PASSWORD).await;
    assert_eq!(r.status, 401, "the account is gone");
    let log = owner.get("/activity?kind=user_removed").await.body;
    assert!(log.contains(GUEST), "{log}");
    // The owner cannot be removed, by anyone.
    let owner_id = users
        .split("<tr id=\"user-")
        .find(|row| row.contains("owner</td>"))
        .and_then(|row| row.split('"').next())
        .expect("the owner's row")
        .to_owned();
    let users = owner.get("/users").await.body;
    let r = owner
        .post(
            &format!("/users/{owner_id}/remove"),
            &[("csrf", &csrf(&users))],
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_expire_after_48_hours_and_can_be_withdrawn() {
    let server = Server::start("").await;
    let (mut owner, secret_owner, _) = server.owner().await;
    let late = webutil::invite(&mut owner, "late").await;
    let withdrawn = webutil::invite(&mut owner, "withdrawn").await;
    let users = owner.get("/users").await.body;
    let handle = users
        .split("<tr><td>")
        .find(|row| row.starts_with("withdrawn"))
        .and_then(|row| row.split("name=\"handle\" value=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("the pending invitation")
        .to_owned();
    let r = owner
        .post(
            "/invitations/revoke",
            &[("csrf", &csrf(&users)), ("handle", &handle)],
        )
        .await;
    assert_eq!(r.status, 303);
    let (_, r) = accept(&server, &withdrawn, "w").await;
    assert_eq!(r.status, 401, "withdrawn");

    server.advance_secs(48 * 3600 + 1);
    // The owner's session has expired meanwhile; log in again to look.
    let mut owner = server.client();
    server.login(&mut owner, &secret_owner).await;
    let (_, r) = accept(&server, &late, "l").await;
    assert_eq!(r.status, 401, "expired");
    let users = owner.get("/users").await.body;
    assert!(
        users.contains("No pending invitations"),
        "expired ones are dropped"
    );
    let (_, r) = accept(&server, &"0".repeat(64), "z").await;
    assert_eq!(r.status, 401, "made up");
}

/// Grants "Ines" `hours` of support access (checking the owner is alerted) and
/// returns her client, logged in after accepting the link and enrolling.
async fn support_helper(server: &Server, owner: &mut Client, hours: &str) -> Client {
    let page = owner.get("/support-access").await;
    assert!(page.body.contains("No recordings."));
    let r = owner
        .post(
            "/support-access/grant",
            &[
                ("csrf", &csrf(&page.body)),
                ("helper", "Ines"),
                ("hours", hours),
                ("password", webutil::PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r
        .body
        .split("id=\"support-link\"")
        .nth(1)
        .and_then(|s| s.split('#').nth(1))
        .and_then(|s| s.split('"').next())
        .expect("the link's secret")
        .to_owned();
    let alerts = owner.get("/alerts").await.body;
    assert!(alerts.contains("Support access was granted"), "{alerts}");
    let (mut helper, r) = accept(server, &secret, "ines").await;
    assert_eq!(r.location(), "/enrol");
    let page = helper.get("/enrol").await;
    let totp = totp_secret(&page.body);
    let r = helper
        .post(
            "/enrol",
            &[("csrf", &csrf(&page.body)), ("code", &server.code(&totp))],
        )
        .await;
    assert_eq!(r.status, 200);
    helper
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_access_ends_by_itself_when_its_time_is_up() {
    let server = Server::start(CAMERA).await;
    let (mut owner, owner_totp, _) = server.owner().await;
    let mut helper = support_helper(&server, &mut owner, "1").await;
    assert_eq!(helper.get("/diagnostics").await.status, 200);
    assert_eq!(helper.get("/cameras/garden/recordings").await.status, 403);

    // Keep the session alive with requests until just before the hour is up.
    for _ in 0..3 {
        server.advance_secs(19 * 60);
        assert_eq!(helper.get("/diagnostics").await.status, 200);
    }
    server.advance_secs(4 * 60);
    assert_eq!(helper.get("/diagnostics").await.location(), "/login");
    let mut owner = server.client();
    server.login(&mut owner, &owner_totp).await;
    let users = owner.get("/users").await.body;
    assert!(!users.contains("ines"), "the support account is gone");
    let log = owner.get("/activity?kind=user_removed").await.body;
    assert!(
        log.contains("support access of &#34;ines&#34; expired"),
        "{log}"
    );
}

/// Everything a support helper does is in the owner's log, but a script repeating a
/// request writes one entry per kind of request and hour, not one per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_helpers_repeated_requests_are_logged_once_per_hour() {
    let server = Server::start(CAMERA).await;
    let (mut owner, _, _) = server.owner().await;
    let mut helper = support_helper(&server, &mut owner, "4").await;
    for _ in 0..20 {
        assert_eq!(helper.get("/diagnostics").await.status, 200);
    }
    let logged = |page: &str| page.matches("GET /diagnostics").count();
    let log = owner.get("/activity?kind=support_action").await.body;
    assert_eq!(logged(&log), 1, "{log}");
    // Both stay logged in (30 minutes idle) until the entry's hour is over.
    for minutes in [20, 20, 21] {
        server.advance_secs(minutes * 60);
        assert_eq!(helper.get("/diagnostics").await.status, 200);
        assert_eq!(owner.get("/alerts").await.status, 200);
    }
    let log = owner.get("/activity?kind=support_action").await.body;
    assert_eq!(logged(&log), 2, "again after an hour: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_logs_out_other_devices_and_raises_a_notice() {
    let server = Server::start("").await;
    let (mut laptop, secret, _) = server.owner().await;
    let mut phone = server.client();
    server.advance_secs(30);
    server.login(&mut phone, &secret).await;

    let page = laptop.get("/account/password").await;
    assert_eq!(page.status, 200);
    let token = csrf(&page.body);
    let r = laptop
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("current", "not it"),
                ("new", GUEST_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "wrong current password");
    let r = laptop
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("current", webutil::PASSWORD),
                ("new", "password1"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "weak new password");
    let r = laptop
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("current", webutil::PASSWORD),
                ("new", GUEST_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("1 other device(s) were logged out"),
        "{}",
        r.body
    );
    assert_eq!(
        phone.get("/").await.location(),
        "/login",
        "the other device is out"
    );
    assert_eq!(laptop.get("/").await.status, 200, "this one stays");
    let alerts = laptop.get("/alerts").await.body;
    assert!(
        alerts.contains("password of your Porchlight account was changed"),
        "{alerts}"
    );
    let log = laptop.get("/activity?kind=password_changed").await.body;
    assert!(log.contains("audit-password_changed"), "{log}");

    let mut again = server.client();
    let r = again
        .post(
            "/login",
            &[
                ("username", webutil::OWNER),
                ("password", webutil::PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 401, "the old password no longer works");
    let r = again.post_login(webutil::OWNER, GUEST_PASSWORD).await;
    assert_eq!((r.status, r.location()), (303, "/login/code"));
}

/// The owner's Users row for `name`: its user id.
fn user_id_on(users: &str, name: &str) -> String {
    users
        .split("<tr id=\"user-")
        .find(|row| row.contains(&format!("<td>{name}</td>")))
        .and_then(|row| row.split('"').next())
        .expect("the user's row")
        .to_owned()
}

/// Resets `name`'s two-step verification with the form on /users (asserted to be on
/// that user's row); returns the owner's answer.
async fn reset_two_step(owner: &mut Client, name: &str) -> webutil::Reply {
    let users = owner.get("/users").await.body;
    let id = user_id_on(&users, name);
    let row = users
        .split(&format!("<tr id=\"user-{id}\""))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the user's row");
    assert!(
        row.contains(&format!("action=\"/users/{id}/reset-two-step\"")),
        "no reset button on {name}'s row: {row}"
    );
    owner
        .post(
            &format!("/users/{id}/reset-two-step"),
            &[("csrf", &csrf(&users))],
        )
        .await
}

/// Logs in as the guest with the password only and posts /enrol with a valid code of
/// the new app and `reset_code` (none if empty); returns the client and the answer.
async fn enrol_after_reset(server: &Server, reset_code: &str) -> (Client, webutil::Reply) {
    let mut c = server.client();
    let r = c.post_login(GUEST, GUEST_PASSWORD).await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    let page = c.get("/enrol").await;
    let totp = totp_secret(&page.body);
    let token = csrf(&page.body);
    let code = server.code(&totp);
    let mut form = vec![("csrf", token.as_str()), ("code", code.as_str())];
    if !reset_code.is_empty() {
        form.push(("reset_code", reset_code));
    }
    let r = c.post("/enrol", &form).await;
    (c, r)
}

/// After the owner resets someone's two-step verification, their password alone is
/// not a login: whoever enrols first (someone who phished the password and then asked
/// the owner for a reset) also needs the owner's one-time code, which works once; a
/// wrong one counts as a failed login, and abandoning there alerts the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_two_step_reset_the_password_alone_does_not_enrol() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let secret = webutil::invite(&mut owner, "grandma").await;
    let (mut guest, r) = accept(&server, &secret, GUEST).await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    webutil::enrol_with(&server, &mut guest).await;
    let reset = reset_two_step(&mut owner, GUEST).await;

    // With the password and a valid code of the attacker's own app, but no or a wrong
    // owner's code: no session that opens anything.
    server.advance_secs(30);
    let (mut attacker, r) = enrol_after_reset(&server, "").await;
    assert_eq!(r.status, 401, "no owner's code: {}", r.body);
    assert_eq!(attacker.get("/").await.location(), "/enrol");
    let page = attacker.get("/enrol").await;
    assert!(page.body.contains("id=\"reset-code\""), "{}", page.body);
    let (mut attacker, r) = enrol_after_reset(&server, "AAAA-BBBB-CCCC-DDDD").await;
    assert_eq!(r.status, 401, "a wrong owner's code: {}", r.body);
    assert_eq!(attacker.get("/").await.location(), "/enrol");
    let failed = owner.get("/activity?kind=login_failed").await.body;
    assert!(
        failed.contains("reset code"),
        "counted as failures: {failed}"
    );

    // The attacker gives up at enrolment: the user is told their password was used.
    server.advance_secs(11 * 60);
    assert_eq!(attacker.get("/").await.location(), "/login");

    // The owner's code, handed over in person, enrols; shown once, never logged.
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(reset.header("cache-control"), "no-store");
    let first = webutil::reenrolment_code(&reset.body);
    let (mut user, r) = enrol_after_reset(&server, &first).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(webutil::recovery_codes(&r.body).len(), 10);
    assert_eq!(user.get("/").await.status, 200);
    let alerts = user.get("/alerts").await.body;
    assert!(
        alerts.contains("password was entered correctly"),
        "{alerts}"
    );
    let log = owner.get("/activity?kind=two_factor_changed").await.body;
    assert!(log.contains("re-enrolment code"), "{log}");
    assert!(!log.contains(&first), "the code itself is never in the log");

    // The code works once: after another reset only the new code enrols.
    let reset = reset_two_step(&mut owner, GUEST).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let second = webutil::reenrolment_code(&reset.body);
    assert_ne!(second, first);
    server.advance_secs(30);
    let (mut c, r) = enrol_after_reset(&server, &first).await;
    assert_eq!(r.status, 401, "a used code: {}", r.body);
    assert_eq!(c.get("/").await.location(), "/enrol");
    server.advance_secs(30);
    let (mut c, r) = enrol_after_reset(&server, &second).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.get("/").await.status, 200);
}

/// The owner's code expires after seven days; then only another reset helps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_reenrolment_code_expires() {
    let server = Server::start("").await;
    let (mut owner, owner_secret, _) = server.owner().await;
    let secret = webutil::invite(&mut owner, "grandma").await;
    let (mut guest, _) = accept(&server, &secret, GUEST).await;
    webutil::enrol_with(&server, &mut guest).await;
    let reset = reset_two_step(&mut owner, GUEST).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let code = webutil::reenrolment_code(&reset.body);
    server.advance_secs(7 * 24 * 3600 + 60);
    let (mut c, r) = enrol_after_reset(&server, &code).await;
    assert_eq!(r.status, 401, "an expired code: {}", r.body);
    assert_eq!(c.get("/").await.location(), "/enrol");

    // The row says so and offers another reset, which issues a code that works (the
    // owner logs in again: a week has passed).
    let mut owner = server.client();
    server.login(&mut owner, &owner_secret).await;
    let users = owner.get("/users").await.body;
    assert!(users.contains("waiting for the one-time code"), "{users}");
    let reset = reset_two_step(&mut owner, GUEST).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let code = webutil::reenrolment_code(&reset.body);
    let (mut c, r) = enrol_after_reset(&server, &code).await;
    assert_eq!(r.status, 200, "a new code: {}", r.body);
    assert_eq!(c.get("/").await.status, 200);
}

/// The forms posted without the owner's password and with a wrong one: `fields` plus
/// nothing, then plus a wrong password.
fn without_and_wrong<'a>(
    fields: &[(&'a str, &'a str)],
) -> [(Vec<(&'a str, &'a str)>, &'static str); 2] {
    let mut wrong = fields.to_vec();
    wrong.push(("password", "wrong horse"));
    [
        (fields.to_vec(), "no password"),
        (wrong, "a wrong password"),
    ]
}

/// An invitation makes an account that outlives "log out all" and a password change,
/// so whoever holds the owner's open session must not make one: the form asks for
/// the owner's password again, and without it nothing is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_an_invitation_needs_the_owners_password() {
    let server = Server::start(CAMERA).await;
    let (mut owner, _, _) = server.owner().await;
    let page = owner.get("/users").await;
    assert!(
        page.body.contains("autocomplete=\"current-password\""),
        "{}",
        page.body
    );
    let token = csrf(&page.body);
    for (fields, why) in without_and_wrong(&[("csrf", &token), ("note", "mallory")]) {
        let r = owner.post("/users/invite", &fields).await;
        assert_eq!(r.status, 403, "{why}: {}", r.body);
        assert!(r.body.contains("Wrong password"), "{why}: {}", r.body);
        assert!(!r.body.contains("id=\"invite-link\""), "{why}: no link");
        let users = owner.get("/users").await.body;
        assert!(users.contains("No pending invitations."), "{why}: {users}");
    }
    let secret = webutil::invite(&mut owner, "grandma").await;
    let users = owner.get("/users").await.body;
    assert!(!users.contains("No pending invitations."), "{users}");
    let (_, r) = accept(&server, &secret, GUEST).await;
    assert_eq!(r.location(), "/enrol", "{}", r.body);
}

/// Support access lasts up to 7 days whatever happens to the owner's sessions, so
/// granting it asks for the owner's password again; without it nothing is granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granting_support_access_needs_the_owners_password() {
    let server = Server::start(CAMERA).await;
    let (mut owner, _, _) = server.owner().await;
    let page = owner.get("/support-access").await;
    assert!(
        page.body.contains("autocomplete=\"current-password\""),
        "{}",
        page.body
    );
    let token = csrf(&page.body);
    let form = [
        ("csrf", token.as_str()),
        ("helper", "Mallory"),
        ("hours", "168"),
    ];
    for (fields, why) in without_and_wrong(&form) {
        let r = owner.post("/support-access/grant", &fields).await;
        assert_eq!(r.status, 403, "{why}: {}", r.body);
        assert!(r.body.contains("Wrong password"), "{why}: {}", r.body);
        assert!(!r.body.contains("id=\"support-link\""), "{why}: no link");
        let support = owner.get("/support-access").await.body;
        assert!(
            support.contains("Nobody has support access."),
            "{why}: {support}"
        );
        assert!(owner
            .get("/users")
            .await
            .body
            .contains("No pending invitations."));
    }
    let mut right = form.to_vec();
    right.push(("password", webutil::PASSWORD));
    let r = owner.post("/support-access/grant", &right).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"support-link\""), "{}", r.body);
    let support = owner.get("/support-access").await.body;
    assert!(support.contains("Mallory (link not used yet)"), "{support}");
}

/// A share link lets anyone with it watch for up to 30 days, unlimited views, after
/// "log out all" too, so making one (of a recording or of an event) asks for the
/// owner's password again; without it no link and no copy is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_a_share_link_needs_the_owners_password() {
    let server = Server::start(
        "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"events\"\n",
    )
    .await;
    let (mut owner, _, _) = server.owner().await;
    let start = webutil::T0_MICROS - 60_000_000;
    let recording = webutil::objects::put_recording(&server, 0x1111, start);
    let event = webutil::objects::put_event(&server, 0xaaaa, recording, start);
    let copies = server.dir.path().join("data").join("shares");
    let copies_made = || std::fs::read_dir(&copies).map_or(0, |d| d.count());
    let player = owner.get(&format!("/recordings/{recording}")).await;
    assert!(
        player.body.contains("autocomplete=\"current-password\""),
        "{}",
        player.body
    );
    let token = csrf(&player.body);
    let form = [("csrf", token.as_str()), ("hours", "720"), ("views", "")];
    // The recording's form and the event's; the right password in between clears
    // the failures, so the event's are not throttled.
    for path in [
        format!("/recordings/{recording}/share"),
        format!("/events/{event}/share"),
    ] {
        for (fields, why) in without_and_wrong(&form) {
            let r = owner.post(&path, &fields).await;
            assert_eq!(r.status, 403, "{path}, {why}: {}", r.body);
            assert!(
                r.body.contains("Wrong password"),
                "{path}, {why}: {}",
                r.body
            );
            assert!(
                !r.body.contains("id=\"share-link\""),
                "{path}, {why}: no link"
            );
        }
        let shares = owner.get("/shares").await.body;
        assert!(shares.contains("Nothing is shared."), "{path}: {shares}");
        let before = copies_made();
        let mut right = form.to_vec();
        right.push(("password", webutil::PASSWORD));
        let r = owner.post(&path, &right).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        webutil::share_link_of(&r.body);
        assert_eq!(copies_made(), before + 1, "{path}: one copy");
        let shares = owner.get("/shares").await.body;
        assert!(!shares.contains("Nothing is shared."), "{path}: {shares}");
        // Unshared again, so the next form starts from nothing.
        let id = shares
            .split("action=\"/shares/")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .expect("the link's unshare form")
            .to_owned();
        let r = owner
            .post(&format!("/shares/{id}/delete"), &[("csrf", &csrf(&shares))])
            .await;
        assert!(r.status == 303 || r.status == 200, "{}", r.body);
    }
}
