//! Attacks on the web UI over real HTTPS (the in-process server of `webutil`): path
//! traversal and malformed ids on every route that takes one, markup in every string
//! a user or a stranger controls, session fixation, and forged or garbled cookies.
//!
//! Path attacks go over a raw TLS socket: an HTTP client library normalises `../` and
//! `%2e%2e` away before sending, which would hide exactly what is being tested.

mod webutil;

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use webutil::objects::{put_event, put_recording};
use webutil::routes::served_routes;
use webutil::{csrf, make_token, Client, Reply, Server, OWNER, PASSWORD, T0_MICROS};

/// Accepts the test server's self-signed certificate (tests only).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to the test server offering only `alpn` (e.g. `h2`).
async fn tls_offering(server: &Server, alpn: &[u8]) -> TlsStream {
    tls_from(server, alpn, "127.0.0.1")
        .await
        .expect("TLS handshake")
}

/// A TLS connection to the test server from local address `from` (any 127.x.y.z)
/// offering only `alpn`, or why there is none (the server closed the connection).
async fn tls_from(server: &Server, alpn: &[u8], from: &str) -> std::io::Result<TlsStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(from.parse().expect("address"), 0))?;
    let tcp = socket.connect(server.https).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// Sends `head` (request line and headers, CRLF-separated, without the final blank
/// line) plus `body` byte for byte; returns the status and the body text.
async fn raw(server: &Server, head: &str, body: &str) -> (u16, String) {
    let mut tls = tls_offering(server, b"http/1.1").await;
    let request = format!(
        "{head}\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line for {head:?}: {text:?}"));
    (status, text)
}

/// Names and ids meant to escape a directory, confuse a parser or blow a limit.
fn hostile_segments() -> Vec<String> {
    let mut v: Vec<String> = [
        "..",
        "%2e%2e",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%252e%252e%252fetc%252fpasswd",
        "..%5c..%5cetc%5cpasswd",
        "%2fetc%2fpasswd",
        "%00",
        "abc%00def",
        "0123456789abcdef%00.plr",
        "%c0%ae%c0%ae%c0%af",
        "%ff%fe",
        "zzzz",
        "-1",
        "0",
        "ffffffffffffffffffffffffffffffff",
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "..;",
        "a%20b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("0".repeat(5000));
    v.push("f".repeat(65));
    v
}

/// Routes that answer the same for any id by design, and why.
const SAME_FOR_ANY_ID: &[(&str, &str)] = &[(
    "GET /s/{link}",
    "the share page is one public page for every id, so it leaks nothing",
)];

/// `{name}` placeholders of a route path replaced by `with`.
fn fill_params(path: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        out.push_str(with);
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_and_malformed_ids_get_4xx_on_every_route() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    // Real objects the sweep must not reach: a recording, an event with a thumbnail,
    // and an API token with every scope (sent with every request, so API routes are
    // swept past their authentication).
    let recording = put_recording(&server, 0x1111, T0_MICROS - 60_000_000);
    let event = put_event(&server, 0xaaaa, recording, T0_MICROS - 60_000_000);
    let bearer = make_token(
        &mut owner,
        "sweep",
        &["events:read", "live:read", "trigger:write"],
    )
    .await;
    let video = format!("/recordings/{recording}/video.mp4");
    let length_before = owner.get(&video).await.body.len();
    assert!(
        length_before > 0,
        "the real recording plays before the sweep"
    );

    let cookie = format!("Cookie: {}", owner.cookie_header());
    let auth = format!("Authorization: Bearer {bearer}");
    let token = csrf(&owner.get("/devices").await.body);
    let origin = format!("Origin: {}", server.base());
    // Raw dot segments too, which no client library would send, and ones built on
    // the real ids, which must not lead anywhere else either.
    let mut segments = hostile_segments();
    segments.extend(["../../../../etc/passwd", "./", "..\\..\\etc\\passwd"].map(String::from));
    for id in [recording.to_string(), event.to_string()] {
        segments.extend([
            format!("{id}/.."),
            format!("{id}%2f..%2f..%2fkeys%2fmaster.key"),
            format!("..%2f{id}"),
            format!("{id}%00"),
            format!("{id}.plr"),
            format!("{id}{id}"),
        ]);
    }
    let routes: Vec<(String, String)> = served_routes()
        .into_iter()
        .filter(|(method, path)| {
            path.contains('{')
                && !SAME_FOR_ANY_ID
                    .iter()
                    .any(|(r, _)| *r == format!("{method} {path}"))
        })
        .collect();
    assert!(
        routes.len() >= 20,
        "routes with an id or a name: {routes:?}"
    );
    let mut checked = 0;
    for (method, route) in &routes {
        for seg in &segments {
            let path = fill_params(route, seg);
            let head = format!("{method} {path} HTTP/1.1\r\n{cookie}\r\n{auth}");
            let (status, text) = if method == "GET" {
                raw(&server, &head, "").await
            } else {
                raw(
                    &server,
                    &format!(
                        "{head}\r\n{origin}\r\nContent-Type: application/x-www-form-urlencoded"
                    ),
                    &format!("csrf={token}&confirm=yes&recordings=delete"),
                )
                .await
            };
            assert!(
                (400..500).contains(&status),
                "{method} {path} (route {route}) gave {status}, not 4xx: {}",
                &text[..text.len().min(600)]
            );
            assert!(
                !text.contains("root:") && !text.contains("\"data_dir\""),
                "{path} leaked a file: {text}"
            );
            checked += 1;
        }
    }
    println!(
        "{checked} hostile paths on {} routes, all 4xx",
        routes.len()
    );
    // Nothing was reached: the session, the recording, the event and the token live.
    assert_eq!(owner.get("/").await.status, 200);
    let after = owner.get(&video).await;
    assert_eq!((after.status, after.body.len()), (200, length_before));
    let thumbnail = owner.get(&format!("/events/{event}/thumbnail.jpg")).await;
    assert_eq!(
        thumbnail.status, 200,
        "the event and its thumbnail are still there"
    );
    let c = server.client();
    let events = c
        .http
        .get(format!("{}/api/v1/events", c.base))
        .bearer_auth(&bearer)
        .send()
        .await
        .expect("API");
    assert_eq!(events.status().as_u16(), 200, "the token still works");
}

#[test]
fn a_camera_name_with_markup_is_a_config_error() {
    for name in [
        "<script>alert(1)</script>",
        "a\"b",
        "x' onload='y",
        "Porch",
        "a/b",
        "..",
    ] {
        let text = format!(
            "data_dir = \"/tmp/d\"\nkey_dir = \"/tmp/k\"\n[[camera]]\nname = {name:?}\nurl = \"rtsp://192.0.2.1/s\"\n"
        );
        let err = porchlight::config::Config::parse(std::path::Path::new("/etc/p.toml"), &text)
            .expect_err("a camera name outside a-z 0-9 - _ is refused");
        let msg = err.to_string();
        assert!(
            msg.contains("camera.name") && msg.contains("p.toml:4:"),
            "{name:?}: {msg}"
        );
    }
}

const MARKUP: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";

fn assert_escaped(page: &str, what: &str) {
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src=x"),
        "{what}: markup reached the page unescaped:\n{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_names_and_user_agents_with_markup_are_escaped() {
    let server = Server::start("").await;
    let mut c = server.client();
    c.user_agent = format!("{MARKUP} Firefox/128.0");
    let r = c
        .post(
            "/setup",
            &[
                ("code", &server.setup_code()),
                ("username", MARKUP),
                ("email", "owner@example.org"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "setup with a markup user name: {}", r.body);
    let page = c.get("/enrol").await;
    assert_escaped(&page.body, "/enrol");
    let secret = webutil::totp_secret(&page.body);
    let r = c
        .post(
            "/enrol",
            &[("csrf", &csrf(&page.body)), ("code", &server.code(&secret))],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_escaped(&r.body, "recovery codes page");

    // A stranger guesses at the account (with markup in their own User-Agent) until it
    // is blocked: the owner's alert quotes the user name.
    let mut stranger = server.client();
    stranger.user_agent = format!("{MARKUP} curl/8");
    for _ in 0..15 {
        server.advance_secs(65);
        stranger.post_login(MARKUP, "guess").await;
    }
    // And logs in as a new device with a markup User-Agent.
    let mut other = server.client();
    other.user_agent = format!("{MARKUP} Chrome/120 (X11; Linux)");
    server.advance_secs(65);
    let r = other.post_login(MARKUP, PASSWORD).await;
    let code_page = other.get("/login/code").await;
    if r.status == 303 {
        other
            .post(
                "/login/code",
                &[
                    ("csrf", &csrf(&code_page.body)),
                    ("code", &server.code(&secret)),
                ],
            )
            .await;
    }
    let alerts = c.get("/alerts").await;
    assert_eq!(alerts.status, 200);
    assert!(
        alerts.body.contains("&lt;script&gt;") || alerts.body.contains("&#60;script&#62;"),
        "the blocked-account alert names the user, escaped:\n{}",
        alerts.body
    );
    for page in ["/", "/devices", "/alerts", "/delete-everything", "/login"] {
        let r = c.get(page).await;
        assert!(r.status < 500, "{page}: {}", r.status);
        assert_escaped(&r.body, page);
    }
    let login = server.client().get("/login").await;
    assert_escaped(&login.body, "/login (stranger)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_id_changes_at_login_and_at_the_second_step() {
    let server = Server::start("").await;
    let (owner, secret, _) = server.owner().await;
    let first = owner.session().expect("owner session");
    server.advance_secs(60);

    // An attacker plants a session id in the victim's browser before login.
    let planted = "ab".repeat(32);
    let mut victim = server.client();
    victim
        .cookies
        .insert("__Host-porchlight".into(), planted.clone());
    let r = victim.post_login(OWNER, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let pending = victim.session().expect("pending session");
    assert_ne!(pending, planted, "a planted id is never adopted");
    let page = victim.get("/login/code").await;
    let r = victim
        .post(
            "/login/code",
            &[("csrf", &csrf(&page.body)), ("code", &server.code(&secret))],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"));
    let full = victim.session().expect("full session");
    assert_ne!(
        full, pending,
        "the id changes when the second step completes"
    );
    assert_ne!(full, first);
    assert_eq!(victim.get("/").await.status, 200);

    // The half-logged-in id is worth nothing afterwards.
    let mut thief = server.client();
    thief.cookies.insert("__Host-porchlight".into(), pending);
    let r = thief.get("/").await;
    assert_eq!((r.status, r.location()), (303, "/login"));
    let mut thief = server.client();
    thief.cookies.insert("__Host-porchlight".into(), planted);
    assert_eq!(thief.get("/devices").await.location(), "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_garbled_and_expired_cookies_get_the_login_page() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let real = owner.session().expect("session");
    let mut flipped = real.clone().into_bytes();
    flipped[0] = if flipped[0] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let forged = [
        String::new(),
        "x".into(),
        flipped,
        real[..32].to_string(),
        format!("{real}00"),
        real.to_uppercase(),
        "a".repeat(129),
        "a".repeat(4000),
        "../../etc/passwd".into(),
        "%00%00".into(),
        "\"quoted\"".into(),
        "=;=;=".into(),
    ];
    for value in &forged {
        for header in [
            format!("__Host-porchlight={value}"),
            format!("__Host-porchlight={value}; __Host-porchlight={value}"),
            format!(";;;__Host-porchlight={value};;; =; junk"),
        ] {
            let mut c = server.client();
            let req = c
                .http
                .get(format!("{}/devices", c.base))
                .header("cookie", header.as_str());
            let r = c.send(req).await;
            assert!(
                r.status == 303 && r.location() == "/login" || r.status == 431,
                "cookie {header:?}: {} {}",
                r.status,
                r.location()
            );
        }
    }
    // Bytes a browser would never send in a cookie (obs-text).
    let raw_cookie = b"__Host-porchlight=\xff\xfe\x80abc".as_slice();
    let mut c = server.client();
    let req = c.http.get(format!("{}/devices", c.base)).header(
        "cookie",
        reqwest::header::HeaderValue::from_bytes(raw_cookie).expect("obs-text header"),
    );
    let r = c.send(req).await;
    assert_eq!((r.status, r.location()), (303, "/login"));

    // Expired: after the idle timeout the real id is as good as a forged one.
    server.advance_secs(31 * 60);
    let mut stale = Client::new(&server.base());
    stale.cookies.insert("__Host-porchlight".into(), real);
    assert_eq!(stale.get("/devices").await.location(), "/login");
    assert_eq!(owner.get("/").await.location(), "/login");
}

/// Browsers speak HTTP/2 to the server (one connection for all tabs). Over HTTP/2 the
/// host is in `:authority`, not `Host`: the cross-site check must still see it, and
/// refuse a foreign `Origin`. A connection that negotiates HTTP/2 and then asks nothing
/// is closed, as HTTP/1's header timeout closes a silent one.
#[tokio::test]
async fn http2_requests_are_checked_like_http1_and_silent_connections_closed() {
    let mut server = Server::start("").await;
    let authority = server.https.to_string();
    let tls = tls_offering(&server, b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(conn);

    let mut ask = async |method: &str, path: &str, origin: Option<&str>, body: &str| {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("https://{authority}{path}"))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let req = req
            .body(axum::body::Body::from(body.to_owned()))
            .expect("request");
        let reply = send.send_request(req).await.expect("HTTP/2 reply");
        assert_eq!(reply.version(), hyper::Version::HTTP_2);
        (
            reply.status().as_u16(),
            reply
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
        )
    };
    let (status, location) = ask("GET", "/", None, "").await;
    assert_eq!((status, location.as_str()), (303, "/setup"));
    let own = format!("https://{authority}");
    let form = "code=wrong&username=owner&password=correct+horse+battery+staple+42";
    let (status, _) = ask("POST", "/setup", Some("https://evil.example"), form).await;
    assert_eq!(status, 403, "a foreign Origin over HTTP/2");
    let (status, _) = ask("POST", "/setup", Some(&own), form).await;
    assert_ne!(
        status, 403,
        "this site's Origin over HTTP/2 reaches the form"
    );
    assert!(status < 500, "{status}");

    // Negotiates HTTP/2, then says nothing at all: closed after the header timeout.
    let mut silent = tls_offering(&server, b"h2").await;
    let mut buf = [0u8; 1024];
    // The header timeout is 15 s; without it the keep-alive ping would close the
    // connection only after 30 + 20 s.
    let limit = std::time::Duration::from_secs(40);
    let closed = tokio::time::timeout(limit, async {
        loop {
            match silent.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // The server's SETTINGS (and a GOAWAY when it closes).
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a silent HTTP/2 connection is closed");
    server.stop().await;
}

/// A stolen owner session does not know the camera's password, but could point the
/// camera's URL at its own host while keeping the stored credentials, and the camera
/// task would send them there (RTSP Basic authentication, in clear). Blank credentials
/// are only kept while scheme, host and port of both stream URLs stay the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_camera_credentials_are_not_kept_for_a_new_host() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    // Nothing listens there: the camera task only retries, which is all this needs.
    let url = "rtsp://127.0.0.1:9/stream1";
    let r = webutil::add_camera(
        &mut owner,
        &[
            ("name", "gate"),
            ("url", url),
            ("username", "admin"),
            ("password", "camera secret 77"),
            ("mode", "off"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    let id: porchlight::model::CameraId = "gate".parse().expect("id");
    let stored = |server: &Server| {
        let entry = webutil::camera_entry(server, "gate");
        (entry.url, entry.sub_url, entry.sealed_username)
    };
    let before = stored(&server);

    let page = owner.get("/cameras/gate/settings").await;
    let token = csrf(&page.body);
    let save = |url: &'static str, sub_url: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("url", url.to_owned()),
            ("sub_url", sub_url.to_owned()),
            ("mode", "off".to_owned()),
            ("sensitivity", "50".to_owned()),
            ("pre_roll", "3".to_owned()),
            ("post_roll", "10".to_owned()),
        ]
    };
    for (new_url, sub_url) in [
        ("rtsp://attacker.example:554/x", ""),
        ("rtsp://127.0.0.1:10/stream1", ""),
        (url, "rtsp://attacker.example/sub"),
    ] {
        let fields = save(new_url, sub_url);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = owner.post("/cameras/gate/settings", &fields).await;
        assert_eq!(r.status, 400, "{new_url} {sub_url}: {}", r.body);
        assert!(
            r.body
                .contains("credentials again when its address changes"),
            "{}",
            r.body
        );
        assert_eq!(stored(&server), before, "{new_url}: the entry is unchanged");
        let running = server.daemon().registry.get(&id).expect("still running");
        assert_eq!(running.config.url.as_str(), url, "not restarted elsewhere");
    }

    // Same host and port, another path: kept credentials are fine, as before.
    let fields = save("rtsp://127.0.0.1:9/stream2", "rtsp://127.0.0.1:9/sub");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = owner.post("/cameras/gate/settings", &fields).await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    let (new_url, _, sealed) = stored(&server);
    assert_eq!(new_url, "rtsp://127.0.0.1:9/stream2");
    assert_eq!(sealed, before.2, "the credentials are kept");
}

/// One address cannot take every connection: past 32 at once its new ones are closed,
/// and a client at another address (127.0.0.2) is still served. Before, 256 held
/// connections from anywhere locked everyone out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_connections_does_not_lock_out_another() {
    let server = Server::start("").await;
    // TCP connections that never start TLS hold their place until the handshake
    // timeout (10 s); opening them takes well under that.
    let mut held = Vec::new();
    for _ in 0..300 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        held.push(socket.connect(server.https).await.expect("connect"));
    }
    // The server closes those over the limit at once: one of the last reads EOF.
    let mut last = held.pop().expect("a connection");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), last.read(&mut byte))
        .await
        .map(|r| matches!(r, Ok(0) | Err(_)));
    assert_eq!(
        closed.ok(),
        Some(true),
        "the 300th from one address is closed"
    );

    let mut other = server.client_from("127.0.0.2".parse().expect("address"));
    // No owner yet: /login sends to /setup. Any answer is what matters.
    let login = other.get("/login").await;
    assert_eq!(
        (login.status, login.location()),
        (303, "/setup"),
        "another address is served: {}",
        login.body
    );
    drop(held);
}

/// A live view's WebSocket counts against the connection limits for as long as it is
/// open, like any connection: one address with 32 of them open (four sessions of
/// eight) has its next connection closed at once, while another address is served;
/// closing one lets a new one in. Before, an upgraded connection no longer counted,
/// so one address could hold connections without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_views_count_against_the_connections_of_their_address() {
    // A camera that never answers: its live view opens and waits for frames.
    let server = Server::start(
        "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"off\"\n",
    )
    .await;
    let (mut owner, mut live) = all_places_in_live_views(&server).await;

    let one_more = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tls_from(&server, b"http/1.1", "127.0.0.2"),
    )
    .await;
    assert!(
        matches!(one_more, Ok(Err(_))),
        "a 33rd connection from 127.0.0.2 is closed at once"
    );
    assert_eq!(
        owner.get("/").await.status,
        200,
        "another address (127.0.0.1) is served"
    );

    // The server notices the closed WebSocket when it reads from it.
    drop(live.pop());
    let mut tls = accepted_from(&server, "127.0.0.2", 100)
        .await
        .expect("a new connection from 127.0.0.2 once a live view closed");
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // That connection ended normally (the server closed it after answering): its
    // place is free again at once, not held.
    assert!(
        accepted_from(&server, "127.0.0.2", 5).await.is_some(),
        "a connection that ended frees its place"
    );
}

/// A live view whose viewer vanished without closing (no FIN, no RST: here a client
/// that completed the upgrade, then neither reads nor answers) is pinged after 15 s of
/// silence and closed 30 s later, so its place is free again within a minute. Before,
/// with the camera sending nothing, it held its place until its session ended (30 min
/// idle, 12 h at most). Takes about 50 s: the server's own timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_views_whose_viewer_vanished_free_their_places() {
    // A camera that never answers: nothing is ever written to the sockets.
    let server = Server::start(
        "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:9/none\"\nmode = \"off\"\n",
    )
    .await;
    let (_owner, mut live) = all_places_in_live_views(&server).await;
    assert!(
        tls_from(&server, b"http/1.1", "127.0.0.2").await.is_err(),
        "all of 127.0.0.2's places are held"
    );

    // 45 s (ping after 15 s, 30 s to answer) and some slack.
    let tls = accepted_from(&server, "127.0.0.2", 700)
        .await
        .expect("a new connection from 127.0.0.2 once its silent live views were closed");
    drop(tls);
    // What the vanished viewer would have read: a ping, then the end of the socket.
    let mut head = [0u8; 2];
    let view = live.first_mut().expect("a live view");
    view.read_exact(&mut head).await.expect("a frame");
    assert_eq!(head[0] & 0x0f, 0x9, "a ping");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        view.read_to_end(&mut rest),
    )
    .await
    .expect("the server closed the socket");
}

/// Four sessions of the owner's, each with eight live views of `porch` open from
/// 127.0.0.2 (made from 127.0.0.1): all 32 places of 127.0.0.2. Returns the owner.
async fn all_places_in_live_views(server: &Server) -> (Client, Vec<reqwest::Upgraded>) {
    let (owner, secret, _) = server.owner().await;
    let mut cookies = vec![owner.cookie_header()];
    for _ in 0..3 {
        let mut browser = server.client();
        server.advance_secs(30); // a fresh TOTP step: codes are never accepted twice
        server.login(&mut browser, &secret).await;
        cookies.push(browser.cookie_header());
    }
    // The live views' connections are the only ones from 127.0.0.2.
    let viewer = server.client_from("127.0.0.2".parse().expect("address"));
    let mut live = Vec::new();
    for cookie in &cookies {
        for _ in 0..8 {
            live.push(viewer.live_view("porch", cookie).await);
        }
    }
    (owner, live)
}

/// A TLS connection from `from`, trying up to `tries` times 100 ms apart.
async fn accepted_from(server: &Server, from: &str, tries: usize) -> Option<TlsStream> {
    for _ in 0..tries {
        if let Ok(tls) = tls_from(server, b"http/1.1", from).await {
            return Some(tls);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// A request body trickled a byte at a time does not hold its connection for ever:
/// the whole body must arrive within 20 s, else 408 and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_body_is_cut_off() {
    let server = Server::start("").await;
    let mut tls = tls_offering(&server, b"http/1.1").await;
    let host = server.https.to_string();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: https://{host}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername="
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.flush().await.expect("flush");
    let (mut read, mut write) = tokio::io::split(tls);
    let trickle = tokio::spawn(async move {
        // 1000 bytes at one every 2 s would take over half an hour.
        for _ in 0..1000 {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if write.write_all(b"a").await.is_err() || write.flush().await.is_err() {
                break;
            }
        }
    });
    let mut reply = Vec::new();
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(90),
        read.read_to_end(&mut reply),
    )
    .await;
    trickle.abort();
    assert!(answered.is_ok(), "the connection is still open after 90 s");
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "408 or closed: {text}"
    );
}

/// Malformed input, page or API: (who sends it, method, path, content type, body).
/// `Owner` sends the owner's session cookie (and the form token where a form needs
/// one), `Token` an API token with every scope, `Anyone` nothing.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Sender {
    Anyone,
    Owner,
    Token,
}

const FORM: &str = "application/x-www-form-urlencoded";

const MALFORMED: &[(Sender, &str, &str, &str, &str)] = &[
    // Forms sent before a session exists: a missing field, a wrong content type.
    (Sender::Anyone, "POST", "/login", FORM, "username=owner"),
    (
        Sender::Anyone,
        "POST",
        "/login",
        "text/plain",
        "username=owner&password=x",
    ),
    (
        Sender::Anyone,
        "POST",
        "/login",
        "application/json",
        "{\"username\":\"owner\"}",
    ),
    (Sender::Anyone, "POST", "/setup", FORM, "code=123"),
    (
        Sender::Anyone,
        "POST",
        "/invite",
        FORM,
        "invitation=ab&username=x",
    ),
    (
        Sender::Anyone,
        "POST",
        "/s/0123456789abcdef/open",
        FORM,
        "nothing=here",
    ),
    // A non-number where a number is expected, path parameters that are not UTF-8.
    (
        Sender::Owner,
        "GET",
        "/recordings/0000000000000001?t=soon",
        "",
        "",
    ),
    (
        Sender::Owner,
        "GET",
        "/recordings/0000000000000001?t=-5",
        "",
        "",
    ),
    (Sender::Owner, "GET", "/recordings/%FF", "", ""),
    (Sender::Owner, "GET", "/cameras/%FF%FE/recordings", "", ""),
    (Sender::Owner, "GET", "/recordings/%C0%AE/video.mp4", "", ""),
    (Sender::Owner, "GET", "/end-to-end?next=a&next=b", "", ""),
    (Sender::Owner, "GET", "/activity?day=a&day=b", "", ""),
    // Forms behind a session: a wrong content type, a field of the wrong kind.
    (
        Sender::Owner,
        "POST",
        "/users/invite",
        "text/plain",
        "note=x",
    ),
    (
        Sender::Owner,
        "POST",
        "/support-access/grant",
        FORM,
        "helper=x&hours=many",
    ),
    // The API: query strings and paths.
    (Sender::Token, "GET", "/api/v1/events?limit=lots", "", ""),
    (
        Sender::Token,
        "GET",
        "/api/v1/events/stream?camera=a&camera=b",
        "",
        "",
    ),
    (
        Sender::Token,
        "POST",
        "/api/v1/cameras/%FF/trigger?seconds=x",
        "",
        "",
    ),
    (Sender::Token, "POST", "/api/v1/cameras/%FF/trigger", "", ""),
    (
        Sender::Token,
        "GET",
        "/api/v1/cameras/%FF/snapshot.jpg",
        "",
        "",
    ),
];

/// Whether `r` is the project's own error for `status`: the HTML error page (its
/// stylesheet, `text`, the link home) for pages, the JSON error for the API.
fn is_projects_error(r: &Reply, path: &str, status: u16, text: &str) -> bool {
    if path.starts_with("/api/") {
        r.status == status
            && r.header("content-type").starts_with("application/json")
            && serde_json::from_str::<serde_json::Value>(&r.body)
                .is_ok_and(|v| v["error"] == status && v["message"].is_string())
    } else {
        r.status == status
            && r.header("content-type").starts_with("text/html")
            && r.body.contains("href=\"/static/app.css\"")
            && r.body.contains(text)
            && r.body.contains("Back to Porchlight")
    }
}

/// Status, content type and the start of the body, for a failure message.
fn brief(r: &Reply) -> String {
    format!(
        "{} {:?}: {}",
        r.status,
        r.header("content-type"),
        &r.body[..r.body.len().min(200)]
    )
}

/// Every malformed input is answered with 400 and the project's own error: the
/// HTML error page for pages, the JSON error for the API; never axum's plain-text
/// rejection naming the deserializer (nor 415 or 422: one status for "not
/// understood", as the README says).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_form_query_and_path_input_gets_the_projects_400() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let bearer = make_token(
        &mut owner,
        "malformed",
        &["events:read", "live:read", "trigger:write"],
    )
    .await;
    let token = csrf(&owner.get("/devices").await.body);
    let mut failures = Vec::new();
    for &(sender, method, path, content_type, body) in MALFORMED {
        let mut c = match sender {
            Sender::Owner => Client {
                cookies: owner.cookies.clone(),
                ..server.client()
            },
            _ => server.client(),
        };
        let url = format!("{}{path}", c.base);
        let mut req = if method == "POST" {
            c.http.post(url).header("origin", server.base())
        } else {
            c.http.get(url)
        };
        if !content_type.is_empty() {
            // A form behind a session gets its token, so only the malformation counts.
            let body = if sender == Sender::Owner && content_type == FORM {
                format!("csrf={token}&{body}")
            } else {
                body.to_owned()
            };
            req = req.header("content-type", content_type).body(body);
        }
        if sender == Sender::Token {
            req = req.bearer_auth(&bearer);
        }
        let r = c.send(req).await;
        let ok = is_projects_error(&r, path, 400, "The request was not understood.")
            && !r.body.to_lowercase().contains("deserialize");
        if !ok {
            failures.push(format!("{method} {path} ({content_type}): {}", brief(&r)));
        }
    }
    assert!(
        failures.is_empty(),
        "not the project's 400:\n{}",
        failures.join("\n")
    );
}

/// A request with the wrong method (GET on a POST-only form, POST on a GET-only
/// page or API route) is answered 405 with the `Allow` header and the project's own
/// error: the HTML error page for pages, the JSON error for the API; never axum's
/// empty 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_gets_the_projects_405_with_allow() {
    let server = Server::start("").await;
    let mut failures = Vec::new();
    for (method, path, allow) in [
        ("GET", "/logout", "POST"),
        ("GET", "/recordings/1/delete", "POST"),
        ("POST", "/shares", "GET,HEAD"),
        ("GET", "/api/v1/cameras/door/trigger", "POST"),
        ("POST", "/api/v1/events", "GET,HEAD"),
    ] {
        let mut c = server.client();
        let url = format!("{}{path}", c.base);
        let req = if method == "POST" {
            c.http.post(url).header("origin", server.base())
        } else {
            c.http.get(url)
        };
        let r = c.send(req).await;
        let got_allow: Vec<&str> = r.header("allow").split(',').map(str::trim).collect();
        let ok = is_projects_error(
            &r,
            path,
            405,
            "This address does not take that kind of request.",
        ) && allow.split(',').all(|m| got_allow.contains(&m));
        if !ok {
            failures.push(format!(
                "{method} {path}: allow {:?}: {}",
                r.header("allow"),
                brief(&r)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "not the project's 405:\n{}",
        failures.join("\n")
    );
}
