//! Porchlight behind a reverse proxy, over real HTTPS: with `[web] trusted_proxies`
//! naming the proxy (here this machine: the tests connect from 127.0.0.1), each
//! client is the address the proxy wrote in `X-Forwarded-For`, so one guesser is
//! throttled alone and the login log, alerts, activity log and devices list name the
//! real client; without the setting, or when the header cannot be believed, the TCP
//! peer stays the client, whatever the header says.

mod webutil;

use std::sync::{Arc, Mutex};

use webutil::{make_token, Client, Reply, Server};

const PROXIED: &str = "trusted_proxies = [\"127.0.0.1\"]\n";

fn log() -> Arc<Mutex<Vec<u8>>> {
    webutil::capture_log("info,porchlight=debug")
}

fn logged() -> String {
    String::from_utf8_lossy(&log().lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// A client whose every request says `X-Forwarded-For: forwarded`, as a proxy in
/// front of it would (the connection still comes from 127.0.0.1).
fn behind_proxy(server: &Server, forwarded: &str) -> Client {
    let mut c = server.client();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", forwarded.parse().expect("header value"));
    c.http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client");
    c
}

/// One API request with `token`, from a client saying `X-Forwarded-For: forwarded`
/// (none if `None`).
async fn api(server: &Server, forwarded: Option<&str>, token: &str) -> Reply {
    let mut c = match forwarded {
        Some(f) => behind_proxy(server, f),
        None => server.client(),
    };
    let req = c
        .http
        .get(format!("{}/api/v1/events", c.base))
        .bearer_auth(token);
    c.send(req).await
}

/// Sends wrong tokens until the 11th is refused with 429, each from the client
/// `forwarded(i)` names.
async fn guess_until_blocked(server: &Server, forwarded: impl Fn(usize) -> Option<String>) {
    let wrong = format!("plt_{}", "x".repeat(81));
    let mut statuses = Vec::new();
    for i in 0..11 {
        statuses.push(api(server, forwarded(i).as_deref(), &wrong).await.status);
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_api_throttle() {
    let server = Server::start(PROXIED).await;
    let (mut owner, _, _) = server.owner().await;
    let good = make_token(&mut owner, "Doorbell", &["events:read"]).await;
    guess_until_blocked(&server, |_| Some("203.0.113.5".into())).await;
    assert_eq!(
        api(&server, Some("203.0.113.5"), &good).await.status,
        429,
        "the guesser is blocked, even with a good token"
    );
    assert_eq!(
        api(&server, Some("203.0.113.6"), &good).await.status,
        200,
        "another client behind the same proxy is still served"
    );
    assert_eq!(
        api(&server, Some("198.51.100.1, 203.0.113.6"), &good)
            .await
            .status,
        200,
        "the nearest untrusted entry is the client, not the leftmost"
    );
    assert_eq!(
        api(&server, None, &good).await.status,
        200,
        "the proxy itself (no header) is not blocked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_logins_alerts_activity_and_devices_name_the_forwarded_client() {
    let _ = log();
    let server = Server::start(PROXIED).await;
    let (mut owner, secret, _) = server.owner().await;

    // Failed logins from one forwarded client: the address throttle (5 free) counts
    // them under that client, not the proxy.
    let mut guesser = behind_proxy(&server, "198.51.100.7");
    for i in 0..6 {
        let r = guesser
            .post_login(&format!("nobody{i}"), "wrong guess")
            .await;
        assert_eq!(r.status, 401, "{i}: {}", r.body);
    }
    let r = guesser.post_login("nobody-else", "wrong guess").await;
    assert_eq!(r.status, 429, "the guesser's address now waits");
    let mut neighbour = behind_proxy(&server, "198.51.100.8");
    let r = neighbour.post_login("someone", "wrong guess").await;
    assert_eq!(
        r.status, 401,
        "another client behind the proxy does not wait"
    );
    assert!(
        logged().contains("authentication failure for \"nobody0\" from 198.51.100.7:"),
        "the fail2ban line names the client"
    );

    // A login from a new browser behind the proxy: alert, devices and activity log
    // name the forwarded address.
    server.advance_secs(60);
    let mut phone = behind_proxy(&server, "2001:db8::42");
    server.login(&mut phone, &secret).await;
    let alerts = owner.get("/alerts").await.body;
    assert!(alerts.contains("at address 2001:db8::42"), "{alerts}");
    let devices = owner.get("/devices").await.body;
    assert!(devices.contains("2001:db8::42"), "{devices}");
    let activity = owner.get("/activity").await.body;
    assert!(
        activity.contains("198.51.100.7") && activity.contains("2001:db8::42"),
        "{activity}"
    );

    // The Control Centre shows the setting.
    let page = owner.get("/control-centre").await.body;
    let fact = page
        .split("id=\"proxies-fact\">")
        .nth(1)
        .and_then(|s| s.split("</li>").next())
        .expect("the trusted proxies line");
    assert!(fact.contains("127.0.0.1:"), "{fact}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_a_forged_forwarded_for_is_ignored() {
    let _ = log();
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let good = make_token(&mut owner, "Doorbell", &["events:read"]).await;
    // A new forged address on every guess does not escape the throttle.
    guess_until_blocked(&server, |i| Some(format!("203.0.113.{}", 10 + i))).await;
    assert_eq!(
        api(&server, Some("203.0.113.99"), &good).await.status,
        429,
        "the header does not make another client"
    );
    let mut forger = behind_proxy(&server, "198.51.100.77");
    let r = forger.post_login("forger", "wrong guess").await;
    assert_eq!(r.status, 401);
    let lines = logged();
    assert!(
        lines.contains("authentication failure for \"forger\" from 127.0.0.1:"),
        "the peer is logged"
    );
    assert!(
        !lines.contains("198.51.100.77"),
        "the forged address is not"
    );
    let page = owner.get("/control-centre").await.body;
    assert!(
        page.contains("id=\"proxies-fact\">Trusted reverse proxies: none"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_for_of_trusted_proxies_or_garbage_leaves_the_proxys_address() {
    let server = Server::start(PROXIED).await;
    let (mut owner, _, _) = server.owner().await;
    let good = make_token(&mut owner, "Doorbell", &["events:read"]).await;
    let unbelievable = [
        "127.0.0.1",
        "127.0.0.1, 127.0.0.1",
        "",
        "garbage",
        "203.0.113.5, nonsense",
        "203.0.113.5:4711",
        "unknown",
    ];
    // Every one of these counts against the proxy's own address (127.0.0.1).
    guess_until_blocked(&server, |i| {
        Some(unbelievable[i % unbelievable.len()].to_owned())
    })
    .await;
    assert_eq!(api(&server, None, &good).await.status, 429);
    // Many entries, or bytes that are not text, written by a client left of what its
    // proxy appended do not make it count as the proxy: the walk reads from the right.
    let long = format!("{}, 203.0.113.5", vec!["198.51.100.1"; 50].join(", "));
    assert_eq!(api(&server, Some(&long), &good).await.status, 200);
    assert_eq!(
        api(&server, Some("203.0.113.5"), &good).await.status,
        200,
        "a believable client is its own"
    );
}

/// Every client's connections come from the proxy: the 32-per-address limit would
/// let a household's tabs and live views lock each other out, so a trusted proxy
/// has only the overall limit (256).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_may_hold_more_connections_than_one_address() {
    use tokio::io::AsyncReadExt;
    let server = Server::start(PROXIED).await;
    // TCP connections that never start TLS hold their place until the handshake
    // timeout (10 s); the limit for one address is 32.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(
            tokio::net::TcpStream::connect(server.https)
                .await
                .expect("connect"),
        );
    }
    let mut last = held.pop().expect("a connection");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), last.read(&mut byte)).await;
    assert!(read.is_err(), "the 40th connection is still open: {read:?}");
}

/// An open `/api/v1/events/stream` with `token`, from forwarded client `forwarded`
/// (a connection of its own, held as long as the response is).
async fn event_stream(server: &Server, forwarded: &str, token: &str) -> reqwest::Response {
    let c = behind_proxy(server, forwarded);
    let r = c
        .http
        .get(format!("{}/api/v1/events/stream", c.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(r.status(), 200);
    r
}

/// Waits (up to 10 s) until a request from `forwarded` is served again: the server
/// notices a closed connection when it reads from it.
async fn served_again(server: &Server, forwarded: &str, token: &str) {
    for _ in 0..200 {
        if api(server, Some(forwarded), token).await.status == 200 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{forwarded} is not served again");
}

/// A trusted proxy has only the overall connection limit, so each client behind it
/// may have 32 requests in use at once (a response until it has been sent, a
/// WebSocket until it closes): one client holding streams and live views through the
/// proxy cannot take all 256 and lock the household out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_one_client_cannot_hold_every_request() {
    let _ = log();
    // A camera that never answers: its live view opens and waits for frames.
    let server = Server::start(&format!(
        "{PROXIED}[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"off\"\n"
    ))
    .await;
    let (mut owner, _, _) = server.owner().await;
    let token = make_token(&mut owner, "Home Assistant", &["events:read"]).await;
    let a = "203.0.113.5";

    let live = behind_proxy(&server, a)
        .live_view("porch", &owner.cookie_header())
        .await;
    let mut streams = Vec::new();
    for _ in 0..31 {
        streams.push(event_stream(&server, a, &token).await);
    }
    let refused = api(&server, Some(a), &token).await;
    assert_eq!(refused.status, 429, "A's 33rd request: {}", refused.body);
    assert_eq!(
        api(&server, Some("203.0.113.6"), &token).await.status,
        200,
        "another client behind the proxy is served"
    );
    assert_eq!(
        api(&server, None, &token).await.status,
        200,
        "and so is the proxy itself"
    );
    assert!(
        logged().contains("requests at once from 203.0.113.5 through the proxy"),
        "the refusal is logged with the client"
    );

    // Closing the live view frees its place...
    drop(live);
    served_again(&server, a, &token).await;
    // ...and so does closing an event stream.
    streams.push(event_stream(&server, a, &token).await);
    assert_eq!(api(&server, Some(a), &token).await.status, 429);
    streams.pop();
    served_again(&server, a, &token).await;
}

/// The "From" column of the activity log's rows of `kind`, newest first.
fn addresses_of(activity: &str, kind: &str) -> Vec<String> {
    activity
        .split(&format!("<tr class=\"audit-{kind}\">"))
        .skip(1)
        .filter_map(|row| row.split("</tr>").next())
        .map(|row| {
            row.split("<td>")
                .nth(5)
                .and_then(|c| c.split("</td>").next())
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// What a session or a token does is logged from where it is done, not from where
/// the session logged in: a cookie taken elsewhere shows up with its new address,
/// in the activity log and as "last seen from" on the Devices page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_activity_log_names_where_a_session_or_token_is_used() {
    let server = Server::start(PROXIED).await;
    let (login, _, _) = server.owner_on(behind_proxy(&server, "203.0.113.1")).await;
    let id = webutil::objects::put_recording(&server, 42, webutil::T0_MICROS - 60_000_000);
    let mut elsewhere = behind_proxy(&server, "198.51.100.7");
    elsewhere.cookies = login.cookies.clone();
    let player = elsewhere.get(&format!("/recordings/{id}")).await;
    assert_eq!(player.status, 200);
    let r = elsewhere
        .post(
            &format!("/recordings/{id}/delete"),
            &[("csrf", &webutil::csrf(&player.body))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let activity = elsewhere.get("/activity").await.body;
    assert_eq!(addresses_of(&activity, "login_ok"), ["203.0.113.1"]);
    assert_eq!(
        addresses_of(&activity, "recording_deleted"),
        ["198.51.100.7"],
        "{activity}"
    );
    let devices = elsewhere.get("/devices").await.body;
    assert!(
        devices.contains("<td data-label=\"Logged in from\">203.0.113.1</td>")
            && devices.contains("<td data-label=\"Last seen from\">198.51.100.7</td>"),
        "{devices}"
    );

    let token = make_token(&mut elsewhere, "Doorbell", &["events:read"]).await;
    assert_eq!(api(&server, Some("198.51.100.7"), &token).await.status, 200);
    let activity = elsewhere.get("/activity").await.body;
    assert_eq!(
        addresses_of(&activity, "token_used"),
        ["198.51.100.7"],
        "{activity}"
    );
}

/// A recording viewed at home and then fetched whole with the same cookie from
/// elsewhere within the hour (a stolen cookie) is logged again, from there: the
/// once-per-session entry covers one address, not every use of the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_a_session_viewing_from_another_address_is_logged_again() {
    let server = Server::start(PROXIED).await;
    let (mut home, _, _) = server.owner_on(behind_proxy(&server, "203.0.113.1")).await;
    let id = webutil::objects::put_recording(&server, 42, webutil::T0_MICROS - 60_000_000);
    assert_eq!(home.get(&format!("/recordings/{id}")).await.status, 200);
    let mut elsewhere = behind_proxy(&server, "198.51.100.7");
    elsewhere.cookies = home.cookies.clone();
    let whole = elsewhere.get(&format!("/recordings/{id}/video.mp4")).await;
    assert_eq!(whole.status, 200, "the whole MP4");
    let activity = home.get("/activity").await.body;
    assert_eq!(
        addresses_of(&activity, "recording_viewed"),
        ["198.51.100.7", "203.0.113.1"],
        "{activity}"
    );
}
