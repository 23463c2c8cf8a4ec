//! Every route × every principal over real HTTPS (issue 5's "route × principal
//! matrix"): a literal table says what each principal gets on each route, and the test
//! walks all of it against the real daemon. The table's keys are read back from the
//! router's source (`src/web/mod.rs`, `src/web/api.rs`), so a new route without a row —
//! or a row for a route that is gone — fails the test.
//!
//! "Allow" is the expected success only: 2xx, 101, or a redirect to the page
//! [`REDIRECTS`] names for that route, never the login page, a login step or anywhere
//! else. Around the table: method switches (GET on a POST-only route, POST on a
//! GET-only one: 405, nothing changed), ids that do not exist, IDOR, and forms without
//! the CSRF token or from another site in every way a browser can say so
//! ([`CROSS_SITE`]; the live view's WebSocket too).
//!
//! Principals: anonymous; the owner; a shared user (invited and enrolled through the
//! real flow); an API token with every scope; an API token with only `events:read` (so
//! each API route is tried with and without its scope); a share-link holder
//! (the viewer cookie of link A, sent on every request, not only under its path); a
//! support helper (granted 4 hours by the owner from `/support-access` with one
//! recording ticked — the one the table plays — then accepted and enrolled through the
//! real invitation flow).
//!
//! Each principal connects from its own loopback address (`127.0.0.10` + its column),
//! as separate devices do: the API's bad-token throttle (10 a minute per address)
//! then counts each principal's refusals apart, as it would in a real house.
//!
//! Objects are real: four recordings written through the store as fragmented MP4 (so
//! playback and sharing work; one is never ticked for support, for the IDOR checks),
//! two events with thumbnails, three share links, three tokens, a pending invitation.
//! Cells that destroy something aim at their own victim object (and the owner, who
//! succeeds, goes last in each row); the rows that end sessions run last, each
//! principal (support included) from a fresh password-and-TOTP login.

mod webutil;

use std::time::Duration;

use porchlight::model::{EventId, RecordingId};
use webutil::objects::{put_event, put_recording};
use webutil::routes::served_routes;
use webutil::{csrf, make_token, totp_secret, Client, Server, OWNER, PASSWORD, T0_MICROS};

const CAMERA: &str =
    "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"events\"\n";
const GUEST: &str = "grandma";
const GUEST_PASSWORD: &str = "purple elephant dances at noon 7";
const HELPER: &str = "ines";
const HELPER_PASSWORD: &str = "installer plumbing ladder 99 green";

/// What a principal gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The expected success: 2xx, 101 (WebSocket), or a redirect to the page that
    /// [`REDIRECTS`] names for the route (any other redirect — to the login page,
    /// a login step, anywhere else — is not a success).
    Allow,
    /// 303 to `/login` (a page without a full login).
    Login,
    /// 303 to `/login` that clears the session cookie (logged out on purpose).
    Out,
    /// 400: allowed, but the input is refused (e.g. a wrong confirmation; malformed
    /// input is 400 too, never axum's 422).
    Bad,
    /// 403.
    Forbid,
    /// 401 (the API: no or unknown bearer token).
    Unauth,
    /// 404.
    NotFound,
    /// 503: allowed, but the thing is not available (a camera that is not streaming).
    Unavail,
}

use Expect::*;

/// The principals, in the table's column order.
const WHO: [&str; 7] = [
    "anonymous",
    "owner",
    "shared",
    "token-all",
    "token-events",
    "link-A",
    "support",
];
const OWNER_COL: usize = 1;
const SHARED_COL: usize = 2;
const SUPPORT_COL: usize = 6;

/// Every route the router serves. Columns: anonymous, owner, shared user, token with
/// every scope, token with only `events:read`, holder of link A, support helper
/// (with the played recording ticked).
///
/// The inputs (which object, which form) are in [`path_for`] and [`form_for`]; where
/// the owner's cell is `Bad` the form is deliberately wrong so nothing is destroyed.
#[rustfmt::skip]
const TABLE: &[(&str, &str, [Expect; 7])] = &[
    // method  route                               anon      owner     shared    tok-all   tok-evts  link-A    support
    ("GET",  "/",                                  [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("GET",  "/setup",                             [NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound]),
    ("POST", "/setup",                             [NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound]),
    ("GET",  "/login",                             [Allow,    Allow,    Allow,    Allow,    Allow,    Allow,    Allow]),
    ("POST", "/login",                             [Bad,      Bad,      Bad,      Bad,      Bad,      Bad,      Bad]),
    ("GET",  "/login/code",                        [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("POST", "/login/code",                        [Forbid,   Bad,      Bad,      Forbid,   Forbid,   Forbid,   Bad]),
    ("GET",  "/enrol",                             [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("POST", "/enrol",                             [Forbid,   Bad,      Bad,      Forbid,   Forbid,   Forbid,   Bad]),
    ("GET",  "/devices",                           [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("POST", "/devices/logout",                    [Login,    NotFound, NotFound, Login,    Login,    Login,    NotFound]),
    ("GET",  "/alerts",                            [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("GET",  "/activity",                          [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("GET",  "/control-centre",                    [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    // End-to-end mode: the owner turns it on (an empty form here: refused on input,
    // so the mode stays off for the other rows); each account unlocks and locks its
    // own key for its own session; a support helper has none.
    ("GET",  "/end-to-end",                        [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    ("POST", "/end-to-end/enable",                 [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/end-to-end/unlock",                 [Login,    Bad,      Bad,      Login,    Login,    Login,    Forbid]),
    ("POST", "/end-to-end/lock",                   [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    ("POST", "/end-to-end/disable",                [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/end-to-end/migrate",                [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/end-to-end/passphrase",             [Login,    Bad,      Bad,      Login,    Login,    Login,    Forbid]),
    ("POST", "/end-to-end/recovery-key",           [Login,    Bad,      Bad,      Login,    Login,    Login,    Forbid]),
    // Data rights: everyone with an account has their data; only a shared user deletes
    // their own account (the owner's try, like the shared user's, has a wrong
    // confirmation); the archive of everything and erasing are the owner's.
    ("GET",  "/my-data",                           [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("GET",  "/my-data.json",                      [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("POST", "/my-data/delete-account",            [Login,    Forbid,   Bad,      Login,    Login,    Login,    Forbid]),
    ("GET",  "/export-everything.tar",             [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/erase-all-data",                    [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/erase-all-data",                    [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/account/password",                  [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    // Empty form: refused on input (never a real password attempt, which would count).
    ("POST", "/account/password",                  [Login,    Bad,      Bad,      Login,    Login,    Login,    Bad]),
    // Setting up one's own two-step verification again: everyone with an account (the
    // empty form is refused on input, never a real password or code attempt).
    ("GET",  "/account/two-step",                  [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("POST", "/account/two-step",                  [Login,    Bad,      Bad,      Login,    Login,    Login,    Bad]),
    // Event notifications are for the house's people, not for a support helper.
    ("GET",  "/notifications",                     [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    ("POST", "/notifications",                     [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    ("GET",  "/notifications/stream",              [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    ("GET",  "/support-access",                    [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/support-access/grant",              [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/diagnostics",                       [Login,    Allow,    Forbid,   Login,    Login,    Login,    Allow]),
    ("GET",  "/users",                             [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/users/invite",                      [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/users/{id}/remove",                 [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    // The owner's own account: reset from here is refused (they re-enrol themselves).
    ("POST", "/users/{id}/reset-two-step",         [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/invitations/revoke",                [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/invite",                            [Allow,    Allow,    Allow,    Allow,    Allow,    Allow,    Allow]),
    ("POST", "/invite",                            [Bad,      Bad,      Bad,      Bad,      Bad,      Bad,      Bad]),
    ("POST", "/recordings/{id}/share",             [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/shares",                            [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/shares/{id}/delete",                [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/s/{link}",                          [Allow,    Allow,    Allow,    Allow,    Allow,    Allow,    Allow]),
    ("POST", "/s/{link}/open",                     [Bad,      Bad,      Bad,      Bad,      Bad,      Bad,      Bad]),
    ("GET",  "/s/{link}/video.mp4",                [NotFound, NotFound, NotFound, NotFound, NotFound, Allow,    NotFound]),
    ("GET",  "/s/{link}/download",                 [NotFound, NotFound, NotFound, NotFound, NotFound, Allow,    NotFound]),
    ("GET",  "/cameras/discovered",                [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/cameras/add",                       [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    // The owner's form is wrong on purpose (a name that is no camera id): no camera is added.
    ("POST", "/cameras/add",                       [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/cameras/{camera}/live",             [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    // Tokens with live:read are allowed LiveView by the policy, but only the API's
    // snapshot takes a token for it: the WebSocket is for browser sessions only.
    ("GET",  "/cameras/{camera}/live.ws",          [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    ("GET",  "/cameras/{camera}/recordings",       [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    // The owner's confirmation is wrong on purpose (and porch is from the config file).
    // porch is from the config file: its page says so; the owner's form is wrong on purpose.
    ("GET",  "/cameras/{camera}/settings",         [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/cameras/{camera}/settings",         [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/cameras/{camera}/remove",           [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    // porch's URL leads nowhere: the owner is let through to "no picture now".
    ("GET",  "/cameras/{camera}/snapshot.jpg",     [Login,    Unavail, Forbid, Login,   Login,    Login,    Forbid]),
    ("POST", "/cameras/{camera}/delete",           [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/recordings/{id}",                   [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("GET",  "/recordings/{id}/video.mp4",         [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("GET",  "/recordings/{id}/download",          [Login,    Allow,    Allow,    Login,    Login,    Login,    Allow]),
    ("POST", "/recordings/{id}/delete",            [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/events/{id}/thumbnail.jpg",         [Login,    Allow,    Allow,    Login,    Login,    Login,    Forbid]),
    ("POST", "/events/{id}/share",                 [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/events/{id}/delete",                [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/delete-everything",                 [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/delete-everything",                 [Login,    Bad,      Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/linked-services",                   [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/linked-services",                   [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("POST", "/linked-services/revoke",            [Login,    Allow,    Forbid,   Login,    Login,    Login,    Forbid]),
    ("GET",  "/static/{file}",                     [Allow,    Allow,    Allow,    Allow,    Allow,    Allow,    Allow]),
    ("POST", "/api/v1/cameras/{camera}/trigger",   [Unauth,   Unauth,   Unauth,   Allow,    Forbid,   Unauth,   Unauth]),
    ("GET",  "/api/v1/events",                     [Unauth,   Unauth,   Unauth,   Allow,    Allow,    Unauth,   Unauth]),
    ("GET",  "/api/v1/events/stream",              [Unauth,   Unauth,   Unauth,   Allow,    Allow,    Unauth,   Unauth]),
    // live:read: porch points at a port nothing listens on, so a token with the scope
    // gets past every check to "not streaming".
    ("GET",  "/api/v1/cameras/{camera}/snapshot.jpg", [Unauth, Unauth,  Unauth,   Unavail,  Forbid,   Unauth,   Unauth]),
    // These end the session they are sent with: they run last, each principal with a
    // fresh login of its own.
    ("POST", "/logout",                            [Forbid,   Out,      Out,      Forbid,   Forbid,   Forbid,   Out]),
    ("POST", "/devices/logout-all",                [Login,    Out,      Out,      Login,    Login,    Login,    Out]),
];

const SESSION_ENDING: [&str; 2] = ["/logout", "/devices/logout-all"];

/// Routes whose success is a redirect, and where to: the Location must be this page
/// (or this page with a query string). A route not listed here succeeds only with
/// 2xx or 101.
const REDIRECTS: &[(&str, &str)] = &[
    // Already logged in: the login steps send one on to the dashboard.
    ("/login", "/"),
    ("/login/code", "/"),
    ("/enrol", "/"),
    ("/end-to-end/lock", "/end-to-end"),
    ("/invitations/revoke", "/users"),
    ("/shares/{id}/delete", "/shares"),
    ("/recordings/{id}/delete", "/cameras/porch/recordings"),
    ("/events/{id}/delete", "/cameras/porch/recordings"),
    ("/linked-services/revoke", "/linked-services"),
];

/// Ways a browser says a request comes from another site, and one that says nothing.
/// The Origin check (`same_origin` in `src/web/headers.rs`) accepts a POST or a
/// WebSocket upgrade only with an `Origin` naming this site, or — `Origin: null`
/// (our pages send no referrer) or none — with `Sec-Fetch-Site: same-origin`; it
/// never looks at `Referer`. Each of these must be refused (403).
const CROSS_SITE: &[(&str, &[(&str, &str)])] = &[
    (
        "Origin of another site",
        &[("origin", "https://evil.example")],
    ),
    (
        "Origin of another site claiming Sec-Fetch-Site same-origin",
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ],
    ),
    ("Origin: null", &[("origin", "null")]),
    (
        "Origin: null from another site",
        &[("origin", "null"), ("sec-fetch-site", "cross-site")],
    ),
    (
        "no Origin, Sec-Fetch-Site cross-site",
        &[("sec-fetch-site", "cross-site")],
    ),
    (
        "no Origin, Sec-Fetch-Site same-site",
        &[("sec-fetch-site", "same-site")],
    ),
    (
        "no Origin, a foreign Referer",
        &[("referer", "https://evil.example/form")],
    ),
    ("no Origin, no Sec-Fetch-Site", &[]),
];

/// What the Origin check is designed to accept besides `Origin: <this site>`: a form
/// posted from one of our pages (no referrer, so `Origin: null`) and an old browser
/// that sends no `Origin`, both with `Sec-Fetch-Site: same-origin`.
const SAME_SITE_TOO: &[(&str, &[(&str, &str)])] = &[
    (
        "Origin: null from this site",
        &[("origin", "null"), ("sec-fetch-site", "same-origin")],
    ),
    (
        "no Origin, Sec-Fetch-Site same-origin",
        &[("sec-fetch-site", "same-origin")],
    ),
];

/// POST routes open to anyone (no session, hence no CSRF token to check).
const NO_SESSION_POSTS: [&str; 4] = ["/setup", "/login", "/invite", "/s/{link}/open"];

// ---------------------------------------------------------------------------------
// The routes, read from the router's source.

#[test]
fn every_served_route_has_a_row_and_every_row_a_route() {
    let served = served_routes();
    assert!(
        served.len() > 40,
        "the scanner found the routes: {served:?}"
    );
    let rows: Vec<(String, String)> = TABLE
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    for r in &served {
        assert!(
            rows.contains(r),
            "{} {} is served but has no row in the matrix: add one",
            r.0,
            r.1
        );
    }
    for r in &rows {
        assert!(
            served.contains(r),
            "{} {} has a row but is no longer served",
            r.0,
            r.1
        );
    }
    let mut unique = rows.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), rows.len(), "a route has two rows");
}

// ---------------------------------------------------------------------------------
// The objects.

struct Fixture {
    base: String,
    /// The headers a browser sends on a POST from one of our pages.
    here: Site,
    /// Per column of the table, a client connecting from that principal's address.
    http: Vec<reqwest::Client>,
    owner_secret: String,
    guest_secret: String,
    helper_secret: String,
    owner_id: String,
    /// Played, shared, ticked for support; never deleted before the end.
    recording: RecordingId,
    /// Never ticked for support, never deleted before the end.
    unticked_recording: RecordingId,
    /// Deleted by the owner's cell.
    victim_recording: RecordingId,
    event: EventId,
    victim_event: EventId,
    link_a: String,
    link_b: String,
    victim_link: String,
    victim_invitation: String,
    victim_token: String,
    token_all_id: String,
    /// Credentials per column of the table.
    creds: [Creds; 7],
}

#[derive(Clone, Default)]
struct Creds {
    /// The column of the table, hence the address requests come from.
    col: usize,
    cookie: Option<String>,
    bearer: Option<String>,
    csrf: Option<String>,
}

impl Creds {
    fn session(c: &Client, csrf: String) -> Creds {
        Creds {
            col: 0,
            cookie: Some(c.cookie_header()),
            bearer: None,
            csrf: Some(csrf),
        }
    }
}

/// The text after `start` up to the next `end`, in the first piece of `html` (split
/// at `row`) that contains `within`.
fn in_row(html: &str, row: &str, within: &str, start: &str) -> String {
    html.split(row)
        .skip(1)
        .find(|r| r.contains(within))
        .and_then(|r| r.split(start).nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("{within} in {row}…: {html}"))
        .to_owned()
}

async fn make_link(owner: &mut Client, recording: RecordingId) -> (String, String) {
    let page = owner.get(&format!("/recordings/{recording}")).await;
    webutil::share_recording(owner, &recording.to_string(), &csrf(&page.body), "24").await
}

/// Password then TOTP on a fresh client (the clock moves on a TOTP step first, so a
/// code is never replayed).
async fn login(server: &Server, name: &str, password: &str, secret: &str) -> Client {
    server.advance_secs(31);
    let mut c = server.client();
    let r = c.post_login(name, password).await;
    assert_eq!((r.status, r.location()), (303, "/login/code"), "{}", r.body);
    let page = c.get("/login/code").await;
    let r = c
        .post(
            "/login/code",
            &[("csrf", &csrf(&page.body)), ("code", &server.code(secret))],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    c
}

/// The address column `col`'s principal connects from.
fn address_of(col: usize) -> std::net::IpAddr {
    let last = u8::try_from(10 + col).expect("a handful of columns");
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, last))
}

async fn session_creds(c: &mut Client) -> Creds {
    let home = c.get("/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    Creds::session(c, csrf(&home.body))
}

/// The owner grants support access for 4 hours with `ticked` ticked; the helper
/// accepts the invitation (the secret is the link's fragment) and enrols TOTP. Returns
/// the helper's logged-in client and TOTP secret.
async fn grant_support(
    server: &Server,
    owner: &mut Client,
    ticked: RecordingId,
) -> (Client, String) {
    let secret = webutil::invite_support(owner, "Installer Ines", &ticked.to_string()).await;
    let mut helper = server.client();
    let r = helper
        .post(
            "/invite",
            &[
                ("invitation", secret.as_str()),
                ("username", HELPER),
                ("password", HELPER_PASSWORD),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    let page = helper.get("/enrol").await;
    let helper_secret = totp_secret(&page.body);
    let r = helper
        .post(
            "/enrol",
            &[
                ("csrf", &csrf(&page.body)),
                ("code", &server.code(&helper_secret)),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (helper, helper_secret)
}

async fn fixture(server: &Server) -> (Fixture, Client, Client, Client) {
    let (mut owner, owner_secret, _) = server.owner().await;
    let recording = put_recording(server, 0x1111, T0_MICROS - 60_000_000);
    let victim_recording = put_recording(server, 0x2222, T0_MICROS - 30_000_000);
    let unticked_recording = put_recording(server, 0x4444, T0_MICROS - 50_000_000);
    let event = put_event(server, 0xaaaa, recording, T0_MICROS - 60_000_000);
    // Deleting an event deletes its recordings, and deleting a recording its events:
    // the victim event has a recording of its own.
    let holder = put_recording(server, 0x3333, T0_MICROS - 20_000_000);
    let victim_event = put_event(server, 0xbbbb, holder, T0_MICROS - 20_000_000);

    // The shared user, through the real invitation and enrolment.
    let secret = webutil::invite(&mut owner, "grandma").await;
    let mut guest = server.client();
    let r = guest
        .post(
            "/invite",
            &[
                ("invitation", secret.as_str()),
                ("username", GUEST),
                ("password", GUEST_PASSWORD),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    let page = guest.get("/enrol").await;
    let guest_secret = totp_secret(&page.body);
    let r = guest
        .post(
            "/enrol",
            &[
                ("csrf", &csrf(&page.body)),
                ("code", &server.code(&guest_secret)),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // The support helper, through the real grant, invitation and enrolment.
    let (mut helper, helper_secret) = grant_support(server, &mut owner, recording).await;
    let _ = webutil::invite(&mut owner, "victim invitation").await;
    let users = owner.get("/users").await.body;
    let victim_invitation = in_row(
        &users,
        "<tr><td>",
        "victim invitation",
        "name=\"handle\" value=\"",
    );
    let owner_id = users
        .split("<tr id=\"user-")
        .find(|row| row.contains("<td>owner</td>"))
        .and_then(|row| row.split('"').next())
        .expect("the owner's row")
        .to_owned();

    let token_all = make_token(
        &mut owner,
        "everything",
        &["events:read", "trigger:write", "live:read"],
    )
    .await;
    let token_events = make_token(&mut owner, "events only", &["events:read"]).await;
    let _ = make_token(&mut owner, "victim token", &["events:read"]).await;
    let services = owner.get("/linked-services").await.body;
    let token_id = |name: &str| {
        services
            .split("<tr id=\"token-")
            .find(|row| row.contains(&format!("<td>{name}</td>")))
            .and_then(|row| row.split('"').next())
            .expect("the token's row")
            .to_owned()
    };
    let (victim_token, token_all_id) = (token_id("victim token"), token_id("everything"));

    let (link_a, secret_a) = make_link(&mut owner, recording).await;
    let (link_b, _) = make_link(&mut owner, recording).await;
    let (victim_link, _) = make_link(&mut owner, recording).await;
    let mut viewer = server.client();
    let r = viewer
        .post(&format!("/s/{link_a}/open"), &[("secret", &secret_a)])
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let viewer_cookie = r.set_cookies[0]
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();

    let bearer = |t: &str| Creds {
        bearer: Some(t.to_owned()),
        ..Creds::default()
    };
    let mut creds = [
        Creds::default(),
        session_creds(&mut owner).await,
        session_creds(&mut guest).await,
        bearer(&token_all),
        bearer(&token_events),
        Creds {
            cookie: Some(viewer_cookie),
            ..Creds::default()
        },
        session_creds(&mut helper).await,
    ];
    for (col, c) in creds.iter_mut().enumerate() {
        c.col = col;
    }
    let http = (0..WHO.len())
        .map(|col| server.client_from(address_of(col)).http)
        .collect();
    let fx = Fixture {
        base: server.base(),
        here: Site(vec![("origin", server.base())]),
        http,
        owner_secret,
        guest_secret,
        helper_secret,
        owner_id,
        recording,
        unticked_recording,
        victim_recording,
        event,
        victim_event,
        link_a,
        link_b,
        victim_link,
        victim_invitation,
        victim_token,
        token_all_id,
        creds,
    };
    (fx, owner, guest, helper)
}

// ---------------------------------------------------------------------------------
// The requests.

/// The concrete path of a route: the object each placeholder stands for.
fn path_for(fx: &Fixture, route: &str) -> String {
    let destroys = route.ends_with("/delete");
    let id = if route.starts_with("/recordings/") {
        if destroys {
            fx.victim_recording.to_string()
        } else {
            fx.recording.to_string()
        }
    } else if route.starts_with("/events/") {
        if destroys {
            fx.victim_event.to_string()
        } else {
            fx.event.to_string()
        }
    } else if route.starts_with("/shares/") {
        fx.victim_link.clone()
    } else if route.starts_with("/users/") {
        // The owner: nobody may remove them (the owner's own try is a 400).
        fx.owner_id.clone()
    } else {
        String::new()
    };
    route
        .replace("{camera}", "porch")
        .replace("{file}", "app.css")
        .replace("{link}", &fx.link_a)
        .replace("{id}", &id)
}

/// The form a POST sends (the CSRF token is added per principal).
fn form_for(fx: &Fixture, route: &str) -> Vec<(&'static str, String)> {
    let v = |s: &str| s.to_owned();
    match route {
        "/setup" => vec![
            ("code", v("123456")),
            ("username", v("mallory")),
            ("password", v(PASSWORD)),
        ],
        "/devices/logout" => vec![("device", "0".repeat(32))],
        "/users/invite" => vec![("note", v("from the matrix")), ("password", v(PASSWORD))],
        "/notifications" => vec![("quiet_start", v("22:00")), ("quiet_end", v("07:00"))],
        "/support-access/grant" => vec![
            ("helper", v("from the matrix")),
            ("hours", v("4")),
            ("password", v(PASSWORD)),
        ],
        "/invitations/revoke" => vec![("handle", fx.victim_invitation.clone())],
        "/recordings/{id}/share" | "/events/{id}/share" => {
            vec![
                ("hours", v("24")),
                ("views", v("")),
                ("password", v(PASSWORD)),
            ]
        }
        // Wrong on purpose: these would destroy what later cells need.
        "/cameras/{camera}/delete"
        | "/delete-everything"
        | "/my-data/delete-account"
        | "/erase-all-data" => vec![("confirm", v("not sure"))],
        "/cameras/{camera}/settings" => vec![("url", v("http://not-rtsp")), ("mode", v("off"))],
        "/cameras/{camera}/remove" => vec![("confirm", v("not sure")), ("recordings", v("keep"))],
        "/linked-services" => vec![
            ("name", v("from the matrix")),
            ("scope", v("events:read")),
            ("password", v(PASSWORD)),
        ],
        "/linked-services/revoke" => vec![("token", fx.victim_token.clone())],
        "/cameras/add" => vec![
            ("name", v("Not A Camera Id")),
            ("url", v("rtsp://127.0.0.1:9/none")),
            ("action", v("save")),
        ],
        // The rest take no fields, or get none so that they fail on input (never a
        // password guess: that would throttle this address's real logins).
        _ => Vec::new(),
    }
}

/// Where a POST or a WebSocket upgrade says it comes from: the headers sent.
struct Site(Vec<(&'static str, String)>);

impl Site {
    fn of(headers: &[(&'static str, &str)]) -> Site {
        Site(headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Csrf {
    Send,
    Omit,
}

struct Sent {
    status: u16,
    location: String,
    clears_session: bool,
    body: String,
}

async fn send(
    fx: &Fixture,
    who: &Creds,
    method: &str,
    path: &str,
    form: &[(&str, String)],
    csrf: Csrf,
    site: &Site,
) -> Sent {
    let url = format!("{}{path}", fx.base);
    let mut req = match method {
        "POST" => {
            let mut fields: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let (Some(token), Csrf::Send) = (&who.csrf, csrf) {
                fields.push(("csrf", token));
            }
            site.0
                .iter()
                .fold(fx.http[who.col].post(url), |r, (k, v)| r.header(*k, v))
                .form(&fields)
        }
        _ => fx.http[who.col].get(url),
    };
    if path.ends_with("/live.ws") {
        req = req
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (k, v) in &site.0 {
            req = req.header(*k, v);
        }
    }
    if let Some(c) = &who.cookie {
        req = req.header("cookie", c);
    }
    if let Some(t) = &who.bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let location = header("location");
    let clears_session = header("set-cookie")
        .lines()
        .any(|c| c.starts_with("__Host-porchlight=;") && c.contains("Max-Age=0"));
    let streaming = status == 101 || header("content-type").starts_with("text/event-stream");
    let body = if streaming {
        String::new()
    } else {
        tokio::time::timeout(Duration::from_secs(10), r.text())
            .await
            .map(|b| b.unwrap_or_default())
            .unwrap_or_default()
    };
    Sent {
        status,
        location,
        clears_session,
        body,
    }
}

/// What an answer to `route` amounts to (`None`: nothing the table can expect).
fn outcome(route: &str, s: &Sent) -> Option<Expect> {
    let redirect_ok = REDIRECTS.iter().any(|(r, to)| {
        *r == route
            && (s.location == *to
                || s.location
                    .strip_prefix(to)
                    .is_some_and(|q| q.starts_with('?')))
    });
    Some(match s.status {
        101 | 200..=299 => Allow,
        303 if s.location == "/login" && s.clears_session => Out,
        303 if s.location == "/login" => Login,
        300..=399 if redirect_ok => Allow,
        400 => Bad,
        401 => Unauth,
        403 => Forbid,
        404 => NotFound,
        503 => Unavail,
        _ => return None,
    })
}

/// Runs one cell; returns a failure line if it does not match.
async fn cell(fx: &Fixture, col: usize, method: &str, route: &str, want: Expect) -> Option<String> {
    let path = path_for(fx, route);
    let sent = send(
        fx,
        &fx.creds[col],
        method,
        &path,
        &form_for(fx, route),
        Csrf::Send,
        &fx.here,
    )
    .await;
    let mut got = outcome(route, &sent);
    if route.ends_with("/live.ws") && got == Some(Allow) && sent.status != 101 {
        got = None; // a WebSocket is allowed only by switching protocols
    }
    (got != Some(want)).then(|| {
        format!(
            "{method} {route} as {}: expected {want:?}, got {got:?} ({} {}) {}",
            WHO[col],
            sent.status,
            sent.location,
            sent.body.chars().take(160).collect::<String>()
        )
    })
}

/// After the method switches: every victim object is still there and every session
/// still logged in.
async fn method_switches_changed_nothing(server: &Server, fx: &Fixture, clients: [&mut Client; 3]) {
    let index = &server.daemon().index;
    for id in [fx.victim_recording, fx.recording] {
        assert!(
            index.get_recording(id).expect("get").is_some(),
            "recording {id}"
        );
    }
    for c in clients {
        assert_eq!(c.get("/").await.status, 200, "still logged in");
    }
    let owner = &fx.creds[OWNER_COL];
    let victim_event = fx.victim_event.to_string();
    for (page, victim) in [
        ("/shares", &fx.victim_link),
        ("/users", &fx.victim_invitation),
        ("/linked-services", &fx.victim_token),
        ("/cameras/porch/recordings?day=2026-11-25", &victim_event),
    ] {
        let r = send(fx, owner, "GET", page, &[], Csrf::Send, &fx.here).await;
        assert!(r.body.contains(victim.as_str()), "{victim} still on {page}");
    }
}

/// Columns in the order they are sent: the owner (who succeeds at destroying a row's
/// victim) last.
const ORDER: [usize; 7] = [0, 2, 3, 4, 5, 6, 1];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_principal_matches_the_table() {
    every_served_route_has_a_row_and_every_row_a_route();
    let server = Server::start(CAMERA).await;
    let (mut fx, mut owner, mut guest, mut helper) = fixture(&server).await;
    let mut failures = Vec::new();
    let mut cells = 0;

    // 0. Method switches: a GET on a POST-only route and a POST (same-site, with the
    //    form token and the row's form) on a GET-only one get 405 and change nothing.
    //    Each is sent by a principal allowed the route's own method (the owner; for
    //    the API, the token with every scope); nothing is destroyed (checked below).
    for (_, route, _) in TABLE {
        let methods: Vec<&str> = TABLE
            .iter()
            .filter(|r| r.1 == *route)
            .map(|r| r.0)
            .collect();
        let switched = match methods[..] {
            ["POST"] => "GET",
            ["GET"] => "POST",
            _ => continue,
        };
        let col = if route.starts_with("/api/") {
            3
        } else {
            OWNER_COL
        };
        let path = path_for(&fx, route);
        let form = form_for(&fx, route);
        let r = send(
            &fx,
            &fx.creds[col],
            switched,
            &path,
            &form,
            Csrf::Send,
            &fx.here,
        )
        .await;
        if r.status != 405 {
            failures.push(format!(
                "{switched} {route} (a {} route) as {}: {}, not 405",
                methods[0], WHO[col], r.status
            ));
        }
    }
    method_switches_changed_nothing(&server, &fx, [&mut owner, &mut guest, &mut helper]).await;

    // 1. Everything but the rows that end sessions.
    for (method, route, wants) in TABLE.iter().filter(|r| !SESSION_ENDING.contains(&r.1)) {
        for col in ORDER {
            cells += 1;
            failures.extend(cell(&fx, col, method, route, wants[col]).await);
        }
    }
    // The destructive cells did happen (to their own victims only).
    let index = &server.daemon().index;
    assert!(index
        .get_recording(fx.victim_recording)
        .expect("get")
        .is_none());
    assert!(index.get_recording(fx.recording).expect("get").is_some());
    assert!(index
        .get_recording(fx.unticked_recording)
        .expect("get")
        .is_some());

    // 2. No existence leak: an id that does not exist gets the owner a 404 and everyone
    //    who may not look the same answer as a real one.
    for (method, route, wants) in TABLE.iter().filter(|r| r.1.contains("{id}")) {
        let ghost = route.replace("{id}", "00000000deadbeef");
        for col in ORDER {
            let who = &fx.creds[col];
            let form = form_for(&fx, route);
            let sent = send(&fx, who, method, &ghost, &form, Csrf::Send, &fx.here).await;
            let want = match (col, wants[col]) {
                (OWNER_COL, _) | (SHARED_COL, Allow) => NotFound,
                // A shared user may list every recording, event and so on: a 404 for a
                // missing one tells them nothing new; a 403 before looking is fine too.
                (SHARED_COL, Forbid) if outcome(route, &sent) == Some(NotFound) => NotFound,
                // Support is refused any id outside its grant before the look-up, so
                // a missing id gets the same 403 as a real unticked one.
                (SUPPORT_COL, Allow)
                    if route.starts_with("/recordings/") || route.starts_with("/events/") =>
                {
                    Forbid
                }
                (_, w) => w,
            };
            if outcome(route, &sent) != Some(want) {
                failures.push(format!(
                    "{method} {ghost} as {}: expected {want:?}, got {}",
                    WHO[col], sent.status
                ));
            }
        }
    }

    // 3. IDOR. Link A's cookie opens nothing of link B.
    for what in ["video.mp4", "download"] {
        let path = format!("/s/{}/{what}", fx.link_b);
        let sent = send(&fx, &fx.creds[5], "GET", &path, &[], Csrf::Send, &fx.here).await;
        assert_eq!(sent.status, 404, "link A's cookie on {path}");
    }
    // Support plays and downloads the ticked recording and nothing else.
    for what in ["", "/video.mp4", "/download"] {
        for (id, want) in [(fx.recording, 200), (fx.unticked_recording, 403)] {
            let path = format!("/recordings/{id}{what}");
            let who = &fx.creds[SUPPORT_COL];
            let sent = send(&fx, who, "GET", &path, &[], Csrf::Send, &fx.here).await;
            assert_eq!(sent.status, want, "support on {path}");
        }
    }
    // A shared user cannot remove the owner or revoke a token; both still work after.
    let guest_creds = fx.creds[SHARED_COL].clone();
    let r = send(
        &fx,
        &guest_creds,
        "POST",
        &format!("/users/{}/remove", fx.owner_id),
        &[],
        Csrf::Send,
        &fx.here,
    )
    .await;
    assert_eq!(r.status, 403, "a shared user removing the owner");
    let r = send(
        &fx,
        &guest_creds,
        "POST",
        "/linked-services/revoke",
        &[("token", fx.token_all_id.clone())],
        Csrf::Send,
        &fx.here,
    )
    .await;
    assert_eq!(r.status, 403, "a shared user revoking a token");
    let r = send(
        &fx,
        &fx.creds[3],
        "GET",
        "/api/v1/events",
        &[],
        Csrf::Send,
        &fx.here,
    )
    .await;
    assert_eq!(r.status, 200, "the token still works");
    assert_eq!(owner.get("/").await.status, 200, "the owner is still there");
    // Another user's device handle cannot be logged out, either way round.
    let this_device = |html: &str| {
        html.split("<tr class=\"this\">")
            .nth(1)
            .and_then(|r| r.split("name=\"device\" value=\"").nth(1))
            .and_then(|s| s.split('"').next())
            .expect("this device's row")
            .to_owned()
    };
    let guest_device = this_device(&guest.get("/devices").await.body);
    let owner_device = this_device(&owner.get("/devices").await.body);
    let helper_device = this_device(&helper.get("/devices").await.body);
    for (col, device) in [
        (OWNER_COL, &guest_device),
        (OWNER_COL, &helper_device),
        (SHARED_COL, &owner_device),
        (SUPPORT_COL, &owner_device),
    ] {
        let r = send(
            &fx,
            &fx.creds[col],
            "POST",
            "/devices/logout",
            &[("device", device.clone())],
            Csrf::Send,
            &fx.here,
        )
        .await;
        assert_eq!(r.status, 404, "{} logging out another's device", WHO[col]);
    }
    assert_eq!(
        guest.get("/").await.status,
        200,
        "the guest is still logged in"
    );
    assert_eq!(
        owner.get("/").await.status,
        200,
        "the owner is still logged in"
    );
    assert_eq!(
        helper.get("/").await.status,
        200,
        "the helper is still logged in"
    );

    // 4. Deny by default: a logged-in POST without the CSRF token, or from another
    //    site however the browser says so ([`CROSS_SITE`]), is refused before anything
    //    happens, though it carries the right CSRF token.
    for (method, route, _) in TABLE.iter().filter(|r| r.0 == "POST") {
        if route.starts_with("/api/") {
            continue;
        }
        let path = path_for(&fx, route);
        let form = form_for(&fx, route);
        for col in [OWNER_COL, SHARED_COL, SUPPORT_COL] {
            let who = &fx.creds[col];
            if !NO_SESSION_POSTS.contains(route) {
                let r = send(&fx, who, method, &path, &form, Csrf::Omit, &fx.here).await;
                if r.status != 403 {
                    failures.push(format!(
                        "{route} without CSRF as {}: {}",
                        WHO[col], r.status
                    ));
                }
            }
            for (how, headers) in CROSS_SITE {
                let site = Site::of(headers);
                let r = send(&fx, who, method, &path, &form, Csrf::Send, &site).await;
                if r.status != 403 {
                    failures.push(format!("{route} ({how}) as {}: {}", WHO[col], r.status));
                }
            }
        }
    }
    // The same for the live view's WebSocket (cross-site WebSocket hijacking), and
    // for a same-origin POST over plain HTTP's origin.
    let live = path_for(&fx, "/cameras/{camera}/live.ws");
    for col in [OWNER_COL, SHARED_COL] {
        for (how, headers) in CROSS_SITE {
            let r = send(
                &fx,
                &fx.creds[col],
                "GET",
                &live,
                &[],
                Csrf::Send,
                &Site::of(headers),
            )
            .await;
            if r.status != 403 {
                failures.push(format!("live.ws ({how}) as {}: {}", WHO[col], r.status));
            }
        }
    }
    let plain = Site(vec![("origin", fx.base.replace("https://", "http://"))]);
    let r = send(
        &fx,
        &fx.creds[OWNER_COL],
        "POST",
        "/notifications",
        &[],
        Csrf::Send,
        &plain,
    )
    .await;
    assert_eq!(
        r.status, 403,
        "this host's origin over plain HTTP is another site"
    );
    // What the check is designed to accept is accepted (so the refusals above are
    // the headers' doing): a harmless form, the notification settings.
    for (how, headers) in SAME_SITE_TOO {
        let form = form_for(&fx, "/notifications");
        let who = &fx.creds[OWNER_COL];
        let r = send(
            &fx,
            who,
            "POST",
            "/notifications",
            &form,
            Csrf::Send,
            &Site::of(headers),
        )
        .await;
        if outcome("/notifications", &r) != Some(Allow) {
            failures.push(format!(
                "POST /notifications ({how}): {}, not accepted",
                r.status
            ));
        }
    }
    for (who, c) in [("guest", &mut guest), ("helper", &mut helper)] {
        assert_eq!(
            c.get("/").await.status,
            200,
            "nothing above logged the {who} out"
        );
    }

    // 5. The rows that end sessions, each principal from a fresh login.
    for (method, route, wants) in TABLE.iter().filter(|r| SESSION_ENDING.contains(&r.1)) {
        for col in ORDER {
            if col == OWNER_COL {
                let mut c = login(&server, OWNER, PASSWORD, &fx.owner_secret).await;
                fx.creds[col] = Creds {
                    col,
                    ..session_creds(&mut c).await
                };
            } else if col == SHARED_COL {
                let mut c = login(&server, GUEST, GUEST_PASSWORD, &fx.guest_secret).await;
                fx.creds[col] = Creds {
                    col,
                    ..session_creds(&mut c).await
                };
            } else if col == SUPPORT_COL {
                let mut c = login(&server, HELPER, HELPER_PASSWORD, &fx.helper_secret).await;
                fx.creds[col] = Creds {
                    col,
                    ..session_creds(&mut c).await
                };
            }
            cells += 1;
            failures.extend(cell(&fx, col, method, route, wants[col]).await);
            if matches!(col, OWNER_COL | SHARED_COL | SUPPORT_COL) {
                let r = send(&fx, &fx.creds[col], "GET", "/", &[], Csrf::Send, &fx.here).await;
                assert_eq!(r.location, "/login", "{route} ended {}'s session", WHO[col]);
            }
        }
    }
    assert_eq!(
        owner.get("/").await.location(),
        "/login",
        "logout-all ends every session"
    );

    // 6. Last: the owner removes the shared user (whose open session dies at once) and
    //    deletes everything.
    let mut guest = login(&server, GUEST, GUEST_PASSWORD, &fx.guest_secret).await;
    let mut owner = login(&server, OWNER, PASSWORD, &fx.owner_secret).await;
    let users = owner.get("/users").await.body;
    let guest_id = users
        .split("<tr id=\"user-")
        .find(|row| row.contains(&format!("<td>{GUEST}</td>")))
        .and_then(|row| row.split('"').next())
        .expect("the guest's row")
        .to_owned();
    let r = owner
        .post(
            &format!("/users/{guest_id}/remove"),
            &[("csrf", &csrf(&users))],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/users"));
    assert_eq!(guest.get("/").await.location(), "/login");
    let page = owner.get("/delete-everything").await;
    assert!(
        page.body.contains("autocomplete=\"current-password\""),
        "{}",
        page.body
    );
    // The owner's password again: without it, or with a wrong one, nothing goes.
    for (why, password) in [("no password", None), ("a wrong password", Some("not it"))] {
        let token = csrf(&page.body);
        let mut form = vec![("csrf", token.as_str()), ("confirm", "delete everything")];
        form.extend(password.map(|p| ("password", p)));
        let r = owner.post("/delete-everything", &form).await;
        assert_eq!(r.status, 403, "{why}: {}", r.body);
        assert!(r.body.contains("Wrong password"), "{why}: {}", r.body);
        let player = owner.get(&format!("/recordings/{}", fx.recording)).await;
        assert_eq!(player.status, 200, "{why}: still there");
    }
    let r = owner
        .post(
            "/delete-everything",
            &[
                ("csrf", &csrf(&page.body)),
                ("confirm", "delete everything"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        owner
            .get(&format!("/recordings/{}", fx.recording))
            .await
            .status,
        404
    );

    assert_eq!(cells, TABLE.len() * WHO.len(), "every cell ran");
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ from the table:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
