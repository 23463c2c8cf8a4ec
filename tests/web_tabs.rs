//! Many pages in a real browser (headless Chromium). Every page with the navigation
//! keeps a server-sent-events stream open for notices, and over HTTP/1.1 a browser
//! allows only six connections per host: with a seventh tab, or after a few quick
//! clicks if a left page's stream stayed open, the next page would wait. The server
//! speaks HTTP/2 (one connection for all of a browser's requests), and a page closes
//! its stream when it is left, for browsers that still use HTTP/1.1. Logging out in
//! one tab ends the live view in another.

mod browserutil;
mod common;
mod webutil;

use std::time::{Duration, Instant};

use browserutil::Driver;
use common::camera::{CameraOptions, TestCamera};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::Client;
use webutil::Server;

/// More tabs, and more clicks, than HTTP/1.1's six connections per host.
const TABS: usize = 9;
const PAGES: [&str; 10] = [
    "/",
    "/devices",
    "/alerts",
    "/notifications",
    "/users",
    "/my-data",
    "/linked-services",
    "/",
    "/devices",
    "/alerts",
];

/// A browser (with Chromium `switches`, its profile in `dir`) logged in as a new owner
/// on `server`, whose page loads fail after 30 s instead of WebDriver's default 300 s.
async fn owner_browser(
    server: &Server,
    driver: &Driver,
    dir: &tempfile::TempDir,
    switches: &[&str],
) -> Client {
    let (owner, _, _) = server.owner().await;
    let session = owner.session().expect("a session cookie");
    let c = browserutil::session_with(driver, dir.path(), dir.path(), switches).await;
    c.goto(&format!("{}/login", server.base()))
        .await
        .expect("login page");
    // The owner's session, logged in over HTTP above (WebDriver's add-cookie cannot
    // make a `__Host-` cookie: it always sends a domain).
    c.execute(
        "document.cookie = '__Host-porchlight=' + arguments[0] + '; Secure; Path=/; SameSite=Lax'; return 0",
        vec![serde_json::Value::String(session)],
    )
    .await
    .expect("the owner's session cookie");
    c.update_timeouts(TimeoutConfiguration::new(
        None,
        Some(Duration::from_secs(30)),
        None,
    ))
    .await
    .expect("page load timeout");
    c
}

/// Opens `url`; whether it loaded with the navigation's notices box.
async fn loads_with_notices(c: &Client, url: &str) -> bool {
    if let Err(e) = c.goto(url).await {
        eprintln!("{url}: {e}");
        return false;
    }
    c.execute("return !!document.getElementById('live-notices')", vec![])
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

async fn protocol(c: &Client) -> Option<serde_json::Value> {
    c.execute(
        "return performance.getEntriesByType('navigation')[0].nextHopProtocol",
        vec![],
    )
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_open_tabs_each_load_their_page() {
    let server = Server::start("").await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let c = owner_browser(&server, &driver, &profile, &[]).await;
    let base = server.base();
    let mut loaded = Vec::new();
    for tab in 0..TABS {
        if tab > 0 {
            let opened = c.new_window(true).await.expect("a new tab");
            c.switch_to_window(opened.handle).await.expect("switch tab");
        }
        loaded.push(loads_with_notices(&c, &format!("{base}/")).await);
    }
    // In the last tab: the page came over HTTP/2, and one more notices stream opens.
    let protocol = protocol(&c).await;
    let _ = c
        .execute(
            "window.extraStream = new EventSource('/notifications/stream'); return 0",
            vec![],
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream_state = None;
    while Instant::now() < deadline {
        stream_state = c
            .execute("return window.extraStream.readyState", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64());
        if stream_state == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = c.close().await;
    assert_eq!(
        loaded,
        vec![true; TABS],
        "each tab shows the dashboard with its notices stream"
    );
    assert_eq!(protocol, Some(serde_json::json!("h2")));
    assert_eq!(stream_state, Some(1), "EventSource.OPEN");
}

/// Chromium keeps a left page's event stream open for about a minute unless the page
/// closes it; over HTTP/1.1 the seventh quick click then waited for a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_quick_clicks_over_http1_each_load_their_page() {
    let server = Server::start("").await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let c = owner_browser(&server, &driver, &profile, &["--disable-http2"]).await;
    let base = server.base();
    let mut loaded = Vec::new();
    for page in PAGES {
        loaded.push(loads_with_notices(&c, &format!("{base}{page}")).await);
    }
    let protocol = protocol(&c).await;
    let _ = c.close().await;
    assert_eq!(
        loaded,
        vec![true; PAGES.len()],
        "each page of {PAGES:?} loads with its notices stream"
    );
    assert_eq!(protocol, Some(serde_json::json!("http/1.1")));
}

/// Reads the page's `#live-status` text.
async fn live_status(c: &Client) -> String {
    c.execute(
        "const s = document.getElementById('live-status'); return s ? s.textContent : ''",
        vec![],
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(str::to_owned))
    .unwrap_or_default()
}

/// Waits up to `limit` for `#live-status` to contain `text`; the last text seen.
async fn live_status_says(c: &Client, text: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let status = live_status(c).await;
        if status.contains(text) || Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The owner watches live in one tab and logs out in another: the live view stops
/// and says why instead of reconnecting (the server closes it with code 4001).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_in_another_tab_ends_the_live_view() {
    let camera = TestCamera::start(CameraOptions::default());
    let server = Server::start(&format!(
        "[[camera]]\nname = \"porch\"\nurl = \"{}\"\nmode = \"off\"\n",
        camera.main_url()
    ))
    .await;
    server.wait_streaming("porch").await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let c = owner_browser(&server, &driver, &profile, &[]).await;
    let base = server.base();
    c.goto(&format!("{base}/cameras/porch/live"))
        .await
        .expect("live view page");
    let watching = live_status_says(&c, "Live", Duration::from_secs(30)).await;
    let live_tab = c.window().await.expect("this tab");

    let other = c.new_window(true).await.expect("a new tab");
    c.switch_to_window(other.handle).await.expect("switch tab");
    c.goto(&format!("{base}/")).await.expect("dashboard");
    c.execute(
        "document.querySelector(\"form[action='/logout']\").submit(); return 0",
        vec![],
    )
    .await
    .expect("log out");
    c.switch_to_window(live_tab)
        .await
        .expect("back to live view");
    let ended = live_status_says(&c, "session has ended", Duration::from_secs(30)).await;
    let _ = c.close().await;
    assert!(
        watching.starts_with("Live"),
        "live view played: {watching:?}"
    );
    assert_eq!(
        ended, "Your session has ended. Reload the page to log in again.",
        "the live view after logging out in another tab"
    );
}
