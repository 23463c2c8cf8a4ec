//! The README's reverse-proxy snippets ("Behind a reverse proxy"), read from README.md
//! and run as written in Debian's nginx and Caddy in front of the real daemon: a POST
//! passes the same-origin check (the browser's `Host` arrives), each client behind
//! the proxy is throttled under its own address (`X-Forwarded-For`), live view's
//! WebSocket carries the camera's frames, and a notice reaches the open page at once
//! (nothing buffers the stream). Only the site address and ports are filled in, plus
//! the change the snippet's own comment asks for when the proxy is not on port 443.

mod common;
mod webutil;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::camera::{CameraOptions, TestCamera};
use webutil::{read_message, Client, Server};

const TRUSTED: &str = "trusted_proxies = [\"127.0.0.1\"]\n";

/// A proxy process, killed when dropped.
struct Proxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Proxy {
    fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A client of the proxy whose connections come from `ip` (127.x.y.z).
    fn client_from(&self, ip: &str) -> Client {
        let mut c = Client::new(&self.base());
        c.http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip.parse::<std::net::IpAddr>().expect("address"))
            .build()
            .expect("client");
        c
    }

    /// Waits (up to 20 s) until the proxy accepts connections; panics with its log if
    /// it exits first.
    fn wait_ready(mut self) -> Proxy {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("proxy exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "proxy not listening:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's code block in language `lang` (the first one).
fn readme_block(lang: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let start = readme
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no {lang} block in the README"))
        + lang.len()
        + 4;
    let len = readme[start..].find("```").expect("the block's end");
    readme[start..start + len].to_owned()
}

/// `text` with `from` replaced; panics if the README no longer says `from`.
fn fill_in(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the snippet no longer says {from:?}:\n{text}"
    );
    text.replace(from, to)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn spawn(dir: tempfile::TempDir, port: u16, program: &str, args: &[&str]) -> Proxy {
    let log = std::fs::File::create(dir.path().join("proxy.log")).expect("log file");
    let child = Command::new(program)
        .args(args)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (make deps installs it): {e}"));
    Proxy { child, port, dir }.wait_ready()
}

/// nginx with the README's `location` block, proxying to `upstream`.
fn start_nginx(upstream: SocketAddr) -> Proxy {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display().to_string();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).expect("cert");
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .expect("key");
    let location = fill_in(
        &readme_block("nginx"),
        "https://127.0.0.1:8443",
        &format!("https://{upstream}"),
    );
    // As the snippet's comment says for a proxy on another port than 443.
    let location = fill_in(&location, "Host $host;", "Host $http_host;");
    let port = free_port();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr;\n\
         events {{}}\nhttp {{\n  access_log off;\n\
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
         server {{\n  listen 127.0.0.1:{port} ssl;\n  ssl_certificate {d}/cert.pem;\n\
         ssl_certificate_key {d}/key.pem;\n{location}}}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    let (prefix, path) = (d.clone(), path.display().to_string());
    spawn(
        dir,
        port,
        "nginx",
        &["-e", "stderr", "-p", &prefix, "-c", &path],
    )
}

/// Caddy with the README's site block, for `https://127.0.0.1:PORT` instead of the
/// example name (Caddy then uses its own local CA), proxying to `upstream`; no admin
/// endpoint, no port-80 redirect listener, nothing installed into the system's trust.
fn start_caddy(upstream: SocketAddr) -> Proxy {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let site = fill_in(
        &readme_block("caddyfile"),
        "nvr.example.org",
        &format!("https://127.0.0.1:{port}"),
    );
    let site = fill_in(
        &site,
        "https://127.0.0.1:8443",
        &format!("https://{upstream}"),
    );
    let global = format!(
        "{{\n  admin off\n  auto_https disable_redirects\n  skip_install_trust\n  \
         storage file_system {}\n}}\n",
        dir.path().join("storage").display()
    );
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, global + &site).expect("Caddyfile");
    let path = path.display().to_string();
    spawn(
        dir,
        port,
        "caddy",
        &["run", "--config", &path, "--adapter", "caddyfile"],
    )
}

/// Waits (up to 20 s) until the proxy completes a TLS handshake and answers: Caddy
/// listens before its local CA has issued the site's certificate.
async fn wait_serving(proxy: &Proxy) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = proxy.client_from("127.0.0.1");
        match c.http.get(format!("{}/login", proxy.base())).send().await {
            Ok(_) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "proxy not serving: {e:?}\n{}",
                proxy.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads the notices stream until a whole notice has arrived (up to 15 s).
async fn next_notice(stream: &mut reqwest::Response) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(i) = seen.find("event: notice") {
            if let Some(end) = seen[i..].find("\n\n") {
                return seen[i..i + end].to_owned();
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no notice through the proxy ({other:?}); got {seen:?}"),
        }
    }
}

/// Everything a household does through `proxy`, each step checked.
async fn served_through(server: &Server, proxy: &Proxy) {
    wait_serving(proxy).await;
    // Setup and enrolment are POSTs: refused unless Host and Origin arrive intact.
    let (mut owner, secret, _) = server.owner_on(proxy.client_from("127.0.0.4")).await;
    let devices = owner.get("/devices").await;
    assert_eq!(devices.status, 200);
    assert!(
        devices.body.contains("127.0.0.4"),
        "the owner's device shows the address behind the proxy: {}",
        devices.body
    );

    // A guesser behind the proxy is throttled alone.
    let mut guesser = proxy.client_from("127.0.0.2");
    for i in 0..6 {
        let r = guesser
            .post_login(&format!("nobody{i}"), "wrong guess")
            .await;
        assert_eq!(r.status, 401, "{i}: {}", r.body);
    }
    let r = guesser.post_login("nobody-else", "wrong guess").await;
    assert_eq!(r.status, 429, "the guesser's address waits: {}", r.body);
    let r = proxy
        .client_from("127.0.0.3")
        .post_login("someone", "wrong guess")
        .await;
    assert_eq!(r.status, 401, "a neighbour behind the proxy does not wait");

    // A login from a new browser: the open page's stream gets the notice at once.
    let mut notices = tokio::time::timeout(Duration::from_secs(15), owner.notices_stream())
        .await
        .expect("the notices stream's answer through the proxy within 15 s");
    let mut phone = proxy.client_from("127.0.0.5");
    phone.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1".into();
    server.advance_secs(30);
    server.login(&mut phone, &secret).await;
    let notice = next_notice(&mut notices).await;
    assert!(notice.contains("Security: New login"), "{notice}");

    // Live view: the WebSocket upgrade and the camera's frames pass.
    server.wait_streaming("porch").await;
    let mut live = owner.live_view("porch", &owner.cookie_header()).await;
    let (opcode, info) = read_message(&mut live).await;
    assert_eq!(opcode, 1, "the codec line first");
    assert!(String::from_utf8_lossy(&info).contains("avc1."), "{info:?}");
    let (opcode, init) = read_message(&mut live).await;
    assert_eq!((opcode, &init[4..8]), (2, &b"ftyp"[..]), "the init segment");
    let (opcode, fragment) = read_message(&mut live).await;
    assert_eq!((opcode, &fragment[4..8]), (2, &b"moof"[..]), "a frame");
}

/// A proxy that holds a request must fail the test, not hang it.
async fn within_two_minutes(steps: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), steps)
        .await
        .expect("every step through the proxy within 2 minutes");
}

async fn daemon_with_camera(camera: &TestCamera) -> Server {
    Server::start(&format!(
        "{TRUSTED}[[camera]]\nname = \"porch\"\nurl = \"{}\"\nmode = \"off\"\n",
        camera.main_url()
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_nginx_snippet_serves_the_whole_ui() {
    let camera = TestCamera::start(CameraOptions::default());
    let server = daemon_with_camera(&camera).await;
    let proxy = start_nginx(server.https);
    within_two_minutes(served_through(&server, &proxy)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_caddy_snippet_serves_the_whole_ui() {
    let camera = TestCamera::start(CameraOptions::default());
    let server = daemon_with_camera(&camera).await;
    let proxy = start_caddy(server.https);
    within_two_minutes(served_through(&server, &proxy)).await;
}
