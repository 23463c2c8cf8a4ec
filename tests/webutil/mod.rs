//! Helpers for the web UI's integration tests: the real daemon and HTTPS server started
//! in-process on a temp dir and a loopback port (with a simulated clock, so timeouts,
//! TOTP steps and throttling are tested without sleeping), and a small cookie-keeping
//! HTTPS client that shows every header.
#![allow(dead_code)]

pub mod objects;
pub mod routes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use porchlight::clock::SimulatedClock;
use porchlight::config::Config;
use porchlight::{daemon, web};

/// 2026-11-25T10:00:00Z, a fixed start for the simulated clock.
pub const T0_MICROS: i64 = 1_795_600_800_000_000;

pub const OWNER: &str = "owner";
pub const PASSWORD: &str = "correct horse battery staple 42";

pub struct Server {
    pub dir: tempfile::TempDir,
    pub clock: SimulatedClock,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub fingerprint: String,
    running: Option<daemon::Running>,
    web: Option<web::Running>,
    extra: String,
}

impl Server {
    /// A daemon with no cameras and the web UI on 127.0.0.1:0; `extra` is appended to
    /// the config (e.g. an `[smtp]` section).
    pub async fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = SimulatedClock::new(T0_MICROS);
        Server::start_in(dir, clock, extra).await
    }

    async fn start_in(dir: tempfile::TempDir, clock: SimulatedClock, extra: &str) -> Server {
        // min_free_percent = 0: the keep-10 %-free rule would delete test recordings
        // on a nearly full CI disk.
        let text = format!(
            "data_dir = \"{}\"\nkey_dir = \"{}\"\n[web]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n{extra}\n[retention]\nmin_free_percent = 0\n",
            dir.path().join("data").display(),
            dir.path().join("keys").display(),
        );
        let config = Config::parse(&dir.path().join("porchlight.toml"), &text).expect("config");
        let running = daemon::start(config.clone(), Arc::new(clock.clone()))
            .await
            .expect("daemon starts");
        let web = daemon::start_web(&config, &running)
            .await
            .expect("web UI starts");
        Server {
            https: web.https,
            http: web.http,
            fingerprint: web.fingerprint.clone(),
            dir,
            clock,
            running: Some(running),
            web: Some(web),
            extra: extra.to_owned(),
        }
    }

    /// Stops everything and starts again on the same directory and clock (new ports).
    pub async fn restart(mut self) -> Server {
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        Server::start_in(dir, self.clock.clone(), &self.extra.clone()).await
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("daemon stops");
        }
        if let Some(w) = self.web.take() {
            w.join().await;
        }
    }

    /// The in-process daemon (its store and index), to arrange data for a test.
    pub fn daemon(&self) -> &daemon::Running {
        self.running.as_ref().expect("running")
    }

    /// Waits (up to 30 s) until `camera` streams.
    pub async fn wait_streaming(&self, camera: &str) {
        let id: porchlight::model::CameraId = camera.parse().expect("camera name");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let state = self.daemon().registry.get(&id).map(|c| c.status().state);
            if state == Some(porchlight::camera::ConnectionState::Streaming) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "camera {camera} not streaming: {state:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn base(&self) -> String {
        format!("https://{}", self.https)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn setup_code(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("setup-code"))
            .expect("setup code file")
            .trim()
            .to_owned()
    }

    pub fn advance_secs(&self, secs: i64) {
        self.clock.advance_micros(secs * 1_000_000);
    }

    pub fn now_secs(&self) -> u64 {
        use porchlight::clock::Clock;
        (self.clock.now_micros() / 1_000_000) as u64
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base())
    }

    /// A client whose connections come from `ip` (any 127.x.y.z is this machine), so
    /// a test can tell a stranger's address from the owner's.
    pub fn client_from(&self, ip: std::net::IpAddr) -> Client {
        let mut c = Client::new(&self.base());
        c.http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip)
            .build()
            .expect("client");
        c
    }

    /// Creates the owner and enrols TOTP; returns the logged-in client and the secret.
    pub async fn owner(&self) -> (Client, String, Vec<String>) {
        self.owner_on(self.client()).await
    }

    /// [`owner`](Self::owner) from client `c` (e.g. one that goes through a proxy).
    pub async fn owner_on(&self, mut c: Client) -> (Client, String, Vec<String>) {
        let r = c
            .post(
                "/setup",
                &[
                    ("code", &self.setup_code()),
                    ("username", OWNER),
                    ("email", "owner@example.org"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "setup: {}", r.body);
        let page = c.get("/enrol").await;
        let secret = totp_secret(&page.body);
        let csrf = csrf(&page.body);
        let code = self.code(&secret);
        let r = c.post("/enrol", &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!(r.status, 200, "enrol: {}", r.body);
        let codes = recovery_codes(&r.body);
        (c, secret, codes)
    }

    /// The TOTP code for the simulated clock's now.
    pub fn code(&self, secret: &str) -> String {
        porchlight::auth::totp::code_at(secret, self.now_secs()).expect("code")
    }

    /// Password then TOTP for an existing account on client `c`; asserts success.
    pub async fn login(&self, c: &mut Client, secret: &str) {
        let r = c
            .post("/login", &[("username", OWNER), ("password", PASSWORD)])
            .await;
        assert_eq!(r.status, 303, "password step: {}", r.body);
        assert_eq!(r.location(), "/login/code");
        let page = c.get("/login/code").await;
        let r = c
            .post(
                "/login/code",
                &[("csrf", &csrf(&page.body)), ("code", &self.code(secret))],
            )
            .await;
        assert_eq!(r.status, 303, "code step: {}", r.body);
        assert_eq!(r.location(), "/");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            // Best effort when a test panicked before stopping.
            drop(r);
        }
    }
}

/// What a response said.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub set_cookies: Vec<String>,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// An HTTPS client that keeps cookies by hand (so tests can see and alter them) and
/// sends the same-origin `Origin` header on POST, as a browser does.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    pub user_agent: String,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let http = reqwest::Client::builder()
            // Tests only: the server's certificate is self-signed.
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Client {
            base: base.to_owned(),
            http,
            cookies: BTreeMap::new(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
                .into(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Reply {
        let mut req = req.header("user-agent", &self.user_agent);
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let body = r.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body,
            set_cookies,
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// The login form's first step: a username and password.
    pub async fn post_login(&mut self, username: &str, password: &str) -> Reply {
        self.post("/login", &[("username", username), ("password", password)])
            .await
    }

    /// A form POST from this site (Origin set).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(form);
        self.send(req).await
    }

    /// Saves this user's notification settings (`fields`, the form token added);
    /// asserts the page says they were saved.
    pub async fn save_notifications(&mut self, fields: &[(&str, &str)]) {
        let page = self.get("/notifications").await;
        let token = csrf(&page.body);
        let mut form = vec![("csrf", token.as_str())];
        form.extend_from_slice(fields);
        let r = self.post("/notifications", &form).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("Saved."), "{}", r.body);
    }

    /// This session's notices stream (`/notifications/stream`), open; asserts 200.
    pub async fn notices_stream(&self) -> reqwest::Response {
        let stream = self
            .http
            .get(format!("{}/notifications/stream", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("stream");
        assert_eq!(stream.status().as_u16(), 200);
        stream
    }

    pub fn session(&self) -> Option<String> {
        self.cookies.get("__Host-porchlight").cloned()
    }

    /// `camera`'s live view with `cookie`, upgraded to a WebSocket (a connection of
    /// its own) and held open until dropped; asserts the 101.
    pub async fn live_view(&self, camera: &str, cookie: &str) -> reqwest::Upgraded {
        let r = self
            .http
            .get(format!("{}/cameras/{camera}/live.ws", self.base))
            .header("cookie", cookie)
            .header("origin", &self.base)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .expect("handshake");
        assert_eq!(r.status(), 101);
        r.upgrade().await.expect("upgraded")
    }
}

/// Reads one WebSocket message from the server (its frames are unmasked; it does not
/// fragment): the opcode and the payload.
pub async fn read_message<S: tokio::io::AsyncReadExt + Unpin>(s: &mut S) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.expect("frame header");
    let opcode = head[0] & 0x0f;
    let len = match head[1] & 0x7f {
        126 => u64::from(s.read_u16().await.expect("len16")),
        127 => s.read_u64().await.expect("len64"),
        n => u64::from(n),
    };
    let mut payload = vec![0; len as usize];
    s.read_exact(&mut payload).await.expect("payload");
    (opcode, payload)
}

/// Makes an invitation as `owner` on /users; returns the secret from the link's
/// fragment (checked: a 64-hex secret after `/invite#`, on a page not cached).
pub async fn invite(owner: &mut Client, note: &str) -> String {
    let page = owner.get("/users").await;
    assert_eq!(page.status, 200);
    let r = owner
        .post(
            "/users/invite",
            &[
                ("csrf", &csrf(&page.body)),
                ("note", note),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), "no-store");
    let link = r
        .body
        .split("id=\"invite-link\"")
        .nth(1)
        .and_then(|s| s.split("value=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("the invitation link")
        .to_owned();
    let (path, secret) = link.split_once('#').expect("secret in the fragment");
    assert!(path.ends_with("/invite"), "{path}");
    assert_eq!(secret.len(), 64);
    secret.to_owned()
}

/// Makes an API token named `name` with `scopes` as `owner` on /linked-services;
/// returns the token, shown once on the answer.
pub async fn make_token(owner: &mut Client, name: &str, scopes: &[&str]) -> String {
    let page = owner.get("/linked-services").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = csrf(&page.body);
    let mut form = vec![
        ("csrf", token.as_str()),
        ("name", name),
        ("password", PASSWORD),
    ];
    form.extend(scopes.iter().map(|s| ("scope", *s)));
    let r = owner.post("/linked-services", &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), "no-store", "never cached");
    let marker = "id=\"token\" class=\"secret\">";
    let start = r.body.find(marker).expect("the token") + marker.len();
    let token = r.body[start..].split('<').next().expect("token").to_owned();
    assert!(token.starts_with("plt_"), "{token}");
    token
}

/// Captures every log line of this test binary (a global subscriber, installed once
/// with `filter`), and echoes it to stderr so a failing test shows it.
pub fn capture_log(filter: &str) -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        buf
    })
    .clone()
}

struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        // Shown with a failing test's output (the harness captures `eprint!`).
        eprint!("{}", String::from_utf8_lossy(data));
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)? + i;
    Some(&text[i..j])
}

pub fn csrf(html: &str) -> String {
    between(html, "name=\"csrf\" value=\"", "\"")
        .expect("a form with a CSRF token")
        .to_owned()
}

pub fn totp_secret(html: &str) -> String {
    between(html, "id=\"totp-secret\" class=\"secret\">", "<")
        .expect("the TOTP secret on the enrolment page")
        .replace(' ', "")
}

/// The one-time re-enrolment code on the owner's answer to a two-step reset.
pub fn reenrolment_code(html: &str) -> String {
    between(html, "<code id=\"reenrolment-code\">", "<")
        .expect("the re-enrolment code after a reset")
        .to_owned()
}

pub fn recovery_codes(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .filter_map(|s| s.split('<').next())
        .map(str::to_owned)
        .collect()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Seconds since the Unix epoch on the real clock (for a daemon started as a
/// process, which has no simulated clock).
pub fn real_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Enrols TOTP for a session at /enrol (real clock); asserts success.
pub async fn enrol_with_real_clock(c: &mut Client) {
    let page = c.get("/enrol").await;
    let secret = totp_secret(&page.body);
    let totp = porchlight::auth::totp::code_at(&secret, real_now_secs()).expect("code");
    let r = c
        .post("/enrol", &[("csrf", &csrf(&page.body)), ("code", &totp)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Creates the owner through the UI of a daemon on the real clock (its one-time
/// setup `code`) and returns the logged-in client.
pub async fn owner_with_real_clock(base: &str, code: &str) -> Client {
    let mut c = Client::new(base);
    let r = c
        .post(
            "/setup",
            &[("code", code), ("username", OWNER), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    enrol_with_real_clock(&mut c).await;
    c
}

/// A GET with a `Range` header: status, `Content-Range` and body.
pub async fn range(c: &mut Client, path: &str, range: &str) -> (u16, String, Vec<u8>) {
    let req = c
        .http
        .get(format!("{}{path}", c.base))
        .header("range", range)
        .header("cookie", c.cookie_header());
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let content_range = r
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (
        status,
        content_range,
        r.bytes().await.expect("body").to_vec(),
    )
}

/// Accepts invitation `secret` (from [`invite`]) as a new account `name` with
/// `password`; returns the client and the answer (a 303 to `/enrol` when accepted).
pub async fn accept_invitation(
    server: &Server,
    secret: &str,
    name: &str,
    password: &str,
) -> (Client, Reply) {
    let mut c = server.client();
    let page = c.get("/invite").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/static/invite.js"));
    let r = c
        .post(
            "/invite",
            &[
                ("invitation", secret),
                ("username", name),
                ("password", password),
            ],
        )
        .await;
    (c, r)
}

/// Enrols TOTP at /enrol with the server's simulated clock; asserts success.
pub async fn enrol_with(server: &Server, c: &mut Client) {
    let page = c.get("/enrol").await;
    let totp = totp_secret(&page.body);
    let r = c
        .post(
            "/enrol",
            &[("csrf", &csrf(&page.body)), ("code", &server.code(&totp))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A shared user ready to use: invited by `owner` (with `note`), accepted as `name`
/// with `password` (asserts the 303 to enrolment) and enrolled in TOTP.
pub async fn shared_user(
    server: &Server,
    owner: &mut Client,
    note: &str,
    name: &str,
    password: &str,
) -> Client {
    let secret = invite(owner, note).await;
    let (mut c, r) = accept_invitation(server, &secret, name, password).await;
    assert_eq!(r.status, 303, "{}", r.body);
    enrol_with(server, &mut c).await;
    c
}

/// The shared user most tests need: [`shared_user`] noted and named "guest", with
/// the password "purple elephant dances 7".
pub async fn shared_guest(server: &Server, owner: &mut Client) -> Client {
    shared_user(server, owner, "guest", "guest", "purple elephant dances 7").await
}

/// The link's parts from the "share link made" page: (id, secret).
pub fn share_link_of(html: &str) -> (String, String) {
    let value = html
        .split("id=\"share-link\"")
        .nth(1)
        .and_then(|s| s.split("value=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("the link on the page");
    let path = value.split("/s/").nth(1).expect("a /s/ link");
    let (id, secret) = path.split_once('#').expect("the secret is in the fragment");
    (id.to_owned(), secret.to_owned())
}

/// A share link to `recording` living `hours` (no view limit), made by `owner` with
/// `csrf` (from any of their pages): (id, secret).
pub async fn share_recording(
    owner: &mut Client,
    recording: &str,
    csrf: &str,
    hours: &str,
) -> (String, String) {
    let made = owner
        .post(
            &format!("/recordings/{recording}/share"),
            &[
                ("csrf", csrf),
                ("hours", hours),
                ("views", ""),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    share_link_of(&made.body)
}

/// Adds a camera as `owner` on /cameras/add with `fields` (name, url, …, action) and
/// the form token; returns the answer (303 to / when saved).
pub async fn add_camera(owner: &mut Client, fields: &[(&str, &str)]) -> Reply {
    let page = owner.get("/cameras/add").await;
    let token = csrf(&page.body);
    owner
        .post(
            "/cameras/add",
            &[&[("csrf", token.as_str())], fields].concat(),
        )
        .await
}

/// The index's entry of camera `name` (added in the web UI); panics if there is none.
pub fn camera_entry(server: &Server, name: &str) -> porchlight::index::CameraEntry {
    server
        .daemon()
        .index
        .cameras()
        .expect("cameras")
        .into_iter()
        .find(|c| c.id.as_str() == name)
        .expect("the camera's entry")
}

/// Revokes, as `owner` on /linked-services, the API token named `name`.
pub async fn revoke_token(owner: &mut Client, name: &str) {
    let list = owner.get("/linked-services").await;
    let row = list
        .body
        .split("<tr id=\"token-")
        .skip(1)
        .find(|r| r.contains(&format!("<td>{name}</td>")))
        .and_then(|r| r.split('"').next())
        .expect("the token's row")
        .to_owned();
    let r = post_revoke(owner, &list.body, &row).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

/// Posts, as `owner`, the revoke form for token row `id` with the form token of
/// `list` (a /linked-services page); returns the answer (303 when revoked).
pub async fn post_revoke(owner: &mut Client, list: &str, id: &str) -> Reply {
    owner
        .post(
            "/linked-services/revoke",
            &[("csrf", &csrf(list)), ("token", id)],
        )
        .await
}

/// Grants, as `owner` on /support-access, 4 hours of support access with recording
/// `ticked` to a helper noted as `note`; returns the invitation's secret (the link's
/// fragment).
pub async fn invite_support(owner: &mut Client, note: &str, ticked: &str) -> String {
    let page = owner.get("/support-access").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = owner
        .post(
            "/support-access/grant",
            &[
                ("csrf", csrf(&page.body).as_str()),
                ("helper", note),
                ("hours", "4"),
                ("recording", ticked),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .split("id=\"support-link\"")
        .nth(1)
        .and_then(|s| s.split("value=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .and_then(|link| link.split_once('#'))
        .map(|(_, secret)| secret.to_owned())
        .expect("the support link with its secret")
}
