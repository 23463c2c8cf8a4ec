//! Security alerts by mail, delivered to a real SMTP server (Debian's aiosmtpd,
//! writing a Maildir), never a mock.

mod webutil;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use webutil::{csrf, recovery_codes, totp_secret, Client, Server, OWNER, PASSWORD};

/// aiosmtpd on a loopback port, storing what it receives in a Maildir.
struct SmtpSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let maildir = dir.path().join("Maildir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (make deps)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    /// Messages delivered so far.
    fn messages(&self) -> Vec<String> {
        read_dir(&self.maildir.join("new"))
    }
}

fn read_dir(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_from_a_new_device_is_shown_and_mailed() {
    let sink = SmtpSink::start();
    let server = Server::start(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Porchlight <porchlight@example.org>\"\n",
        sink.port
    ))
    .await;
    let (mut laptop, secret, _) = server.owner().await;
    assert!(
        !laptop.get("/alerts").await.body.contains("New login"),
        "the very first device raises no alert"
    );

    // The same browser again: no alert.
    laptop.cookies.remove("__Host-porchlight");
    server.advance_secs(30);
    server.login(&mut laptop, &secret).await;
    assert!(!laptop.get("/alerts").await.body.contains("New login"));

    // A browser never seen: an alert in the UI and a mail.
    let mut phone = server.client();
    phone.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1".into();
    server.advance_secs(30);
    server.login(&mut phone, &secret).await;
    let alerts = laptop.get("/alerts").await.body;
    assert!(
        alerts.contains("New login to your Porchlight account from Safari on iOS"),
        "{alerts}"
    );
    let dashboard = laptop.get("/").await.body;
    assert!(
        dashboard.contains("Security alert"),
        "shown on the dashboard too"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = loop {
        if let Some(m) = sink
            .messages()
            .into_iter()
            .find(|m| m.contains("new login"))
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no mail arrived; got {:?}",
            sink.messages()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(mail.contains("To: owner@example.org"), "{mail}");
    assert!(
        mail.contains("Subject: Porchlight: new login to your account"),
        "{mail}"
    );
    assert!(mail.contains("Safari on iOS"), "{mail}");
    assert!(!mail.contains(&secret), "no secret in a mail");
    assert_eq!(sink.messages().len(), 1, "one alert, one mail");
    let _ = OWNER;
}

/// A one-thread HTTP server that records each request's head and body (the owner's
/// ntfy-compatible webhook, real TCP).
struct WebhookSink {
    port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl WebhookSink {
    fn start() -> WebhookSink {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0u8; len.min(4096)];
                let _ = reader.read_exact(&mut body);
                head.push_str(&String::from_utf8_lossy(&body));
                store.lock().unwrap_or_else(|p| p.into_inner()).push(head);
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        WebhookSink { port, received }
    }

    /// Requests so far with `Tags: tag`.
    fn tagged(&self, tag: &str) -> Vec<String> {
        let needle = format!("tags: {tag}");
        self.requests()
            .into_iter()
            .filter(|r| r.to_ascii_lowercase().contains(&needle))
            .collect()
    }

    fn requests(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_notify_the_open_page_the_mailbox_and_the_webhook_as_each_user_chose() {
    let sink = SmtpSink::start();
    let hook = WebhookSink::start();
    let server = Server::start(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Porchlight <porchlight@example.org>\"\n\
         [notify]\nwebhook_url = \"http://127.0.0.1:{}/porch-topic\"\nwebhook_token = \"tk_secret_123\"\n\
         [[camera]]\nname = \"front\"\nurl = \"rtsp://127.0.0.1:9/x\"\nmode = \"events\"\n\
         [[camera]]\nname = \"back\"\nurl = \"rtsp://127.0.0.1:9/y\"\nmode = \"events\"\n",
        sink.port, hook.port
    ))
    .await;
    let (mut owner, _, _) = server.owner().await;

    // Mail on, webhook on; the back camera's doorbell off.
    let page = owner.get("/notifications").await;
    assert_eq!(page.status, 200);
    let r = owner
        .post(
            "/notifications",
            &[
                ("csrf", &csrf(&page.body)),
                ("motion", "front"),
                ("doorbell", "front"),
                ("motion", "back"),
                ("quiet_start", "00:00"),
                ("quiet_end", "00:00"),
                ("email", "on"),
                ("webhook", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Saved."));

    // The open page's stream.
    let mut stream = owner.notices_stream().await;
    let mut seen = String::new();
    let mut next_notice = async || -> String {
        loop {
            if let Some(i) = seen.find("event: notice") {
                let rest = seen[i..].to_owned();
                if let Some(end) = rest.find("\n\n") {
                    seen = rest[end + 2..].to_owned();
                    return rest[..end].to_owned();
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), stream.chunk())
                .await
                .expect("a notice within 15 s")
                .expect("stream")
                .expect("open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    let trigger = |camera: &str| ring(&server, camera);
    trigger("back");
    trigger("front");
    let notice = next_notice().await;
    assert!(notice.contains("Doorbell at front"), "{notice}");
    assert!(
        notice.contains("/cameras/front/recordings?day="),
        "{notice}"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    while (hook.requests().is_empty() || sink.messages().is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Security notices (none expected here) would go to the webhook too; this part is
    // about events.
    let events_only = |hook: &WebhookSink| -> Vec<String> {
        hook.requests()
            .into_iter()
            .filter(|r| !r.to_ascii_lowercase().contains("tags: security"))
            .collect()
    };
    let hooks = events_only(&hook);
    assert_eq!(hooks.len(), 1, "only the front doorbell: {hooks:?}");
    let h = hooks[0].to_ascii_lowercase();
    assert!(h.starts_with("post /porch-topic "), "{h}");
    assert!(
        h.contains("tags: doorbell") && h.contains("priority: high"),
        "{h}"
    );
    assert!(h.contains("authorization: bearer tk_secret_123"), "{h}");
    assert!(hooks[0].contains("Doorbell at front"), "{}", hooks[0]);
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("Subject: Porchlight: Doorbell at front"),
        "{}",
        mails[0]
    );

    // Quiet hours around now: nothing at all.
    owner
        .save_notifications(&[
            ("doorbell", "front"),
            ("quiet_start", "00:00"),
            ("quiet_end", "23:59"),
            ("email", "on"),
            ("webhook", "on"),
        ])
        .await;
    server.advance_secs(10);
    trigger("front");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(events_only(&hook).len(), 1, "quiet: no webhook");
    assert_eq!(sink.messages().len(), 1, "quiet: no mail");
}

/// The visitor walks up (motion starts an event), then rings: the doorbell joins the
/// open event, and that is news of its own — the open page is told "Doorbell" after
/// "Motion", and the owner gets the doorbell by mail. More motion during it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doorbell_rung_during_a_motion_event_is_notified_too() {
    use porchlight::model::Trigger;
    let sink = SmtpSink::start();
    let server = Server::start(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Porchlight <porchlight@example.org>\"\n\
         [[camera]]\nname = \"front\"\nurl = \"rtsp://127.0.0.1:9/x\"\nmode = \"events\"\n",
        sink.port
    ))
    .await;
    let (mut owner, _, _) = server.owner().await;
    owner
        .save_notifications(&[
            ("motion", "front"),
            ("doorbell", "front"),
            ("quiet_start", "00:00"),
            ("quiet_end", "00:00"),
            ("email", "on"),
        ])
        .await;
    let mut stream = owner.notices_stream().await;
    let mut seen = String::new();
    let mut notices = Vec::new();
    let daemon = server.daemon();
    let front = "front".parse().expect("name");
    for kind in [Trigger::Motion, Trigger::External, Trigger::Motion] {
        daemon
            .trigger(&front, kind, Duration::from_secs(30))
            .expect("trigger");
        // Each trigger's notice (if any) arrives before the next trigger is pulled.
        let deadline = Instant::now() + Duration::from_secs(3);
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            stream.chunk(),
        )
        .await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    for part in seen.split("\n\n") {
        if let Some(data) = part.split("data: ").nth(1) {
            let notice: serde_json::Value = serde_json::from_str(data).expect("JSON");
            notices.push(notice["title"].as_str().unwrap_or("").to_owned());
        }
    }
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices[0].starts_with("Motion at front"), "{notices:?}");
    assert!(notices[1].starts_with("Doorbell at front"), "{notices:?}");
    let mail = mail_with(&sink, "Subject: Porchlight: Doorbell at front").await;
    assert!(mail.contains("To: owner@example.org"), "{mail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_notices_reach_the_open_page_and_the_webhook_without_details() {
    let hook = WebhookSink::start();
    let server = Server::start(&format!(
        "[notify]\nwebhook_url = \"http://127.0.0.1:{}/porch-topic\"\n",
        hook.port
    ))
    .await;
    let (laptop, secret, _) = server.owner().await;
    let mut stream = laptop.notices_stream().await;

    // A login from a browser never seen: a security notice, which no preference can
    // turn off (the owner never opened Notifications).
    let mut phone = server.client();
    phone.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1".into();
    server.advance_secs(30);
    server.login(&mut phone, &secret).await;

    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.contains("event: notice") || !seen.contains("\n\n") {
        assert!(
            Instant::now() < deadline,
            "no notice on the open page: {seen:?}"
        );
        if let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_secs(15), stream.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("Security: New login"), "{seen}");
    assert!(
        seen.contains("/alerts"),
        "the notice links to the alerts: {seen}"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    while hook.requests().is_empty() {
        assert!(Instant::now() < deadline, "the webhook got nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hooks = hook.requests();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let h = hooks[0].to_ascii_lowercase();
    assert!(h.starts_with("post /porch-topic "), "{h}");
    assert!(
        h.contains("tags: security") && h.contains("priority: high"),
        "{h}"
    );
    assert!(
        hooks[0].ends_with("Porchlight: new login to your account"),
        "only the kind leaves the house: {}",
        hooks[0]
    );
    for detail in ["iOS", "Safari", "127.0.0.1", OWNER] {
        assert!(
            !hooks[0]
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or("")
                .contains(detail),
            "the webhook's text names no device, address or user ({detail}): {}",
            hooks[0]
        );
    }
}

/// A server that mails security notices to `sink`.
async fn mailing_server(sink: &SmtpSink) -> Server {
    Server::start(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Porchlight <porchlight@example.org>\"\n",
        sink.port
    ))
    .await
}

/// The first message `sink` received that contains `needle` (waits up to 20 s).
async fn mail_with(sink: &SmtpSink, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(m) = sink.messages().into_iter().find(|m| m.contains(needle)) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "no mail with {needle:?}; got {:?}",
            sink.messages()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Password, then `code` on /login/code, for `user` on a fresh client.
async fn login_with_code(server: &Server, user: &str, password: &str, code: &str) -> (Client, u16) {
    let mut c = server.client();
    let r = c.post_login(user, password).await;
    assert_eq!(r.location(), "/login/code", "{}", r.body);
    let page = c.get("/login/code").await;
    let r = c
        .post(
            "/login/code",
            &[("csrf", &csrf(&page.body)), ("code", code)],
        )
        .await;
    (c, r.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_up_two_step_again_swaps_the_app_at_once_and_sends_a_notice() {
    let sink = SmtpSink::start();
    let server = mailing_server(&sink).await;
    let (mut laptop, old_secret, old_codes) = server.owner().await;
    let mut phone = server.client();
    server.advance_secs(30);
    server.login(&mut phone, &old_secret).await;

    // The page offers a new seed, as at enrolment; the same one until it is used.
    let page = laptop.get("/account/two-step").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page.body.contains("<svg"), "a QR code");
    let new_secret = totp_secret(&page.body);
    assert_ne!(new_secret, old_secret);
    assert_eq!(
        totp_secret(&laptop.get("/account/two-step").await.body),
        new_secret
    );
    let token = csrf(&page.body);
    server.advance_secs(30);

    // Refused: a wrong password; a wrong old code; a code of the old app for the new.
    for (password, old, new, why) in [
        (
            "not it",
            server.code(&old_secret),
            server.code(&new_secret),
            "password",
        ),
        (
            PASSWORD,
            "000000".to_owned(),
            server.code(&new_secret),
            "old code",
        ),
        (
            PASSWORD,
            server.code(&old_secret),
            server.code(&old_secret),
            "new code",
        ),
    ] {
        let r = laptop
            .post(
                "/account/two-step",
                &[
                    ("csrf", token.as_str()),
                    ("password", password),
                    ("old_code", old.as_str()),
                    ("new_code", new.as_str()),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{why}: {}", r.body);
        assert_eq!(phone.get("/").await.status, 200, "{why}: nothing changed");
    }
    assert!(!laptop.get("/alerts").await.body.contains("set up again"));

    // The password, a code of the old app and one of the new: switched.
    server.advance_secs(30);
    let r = laptop
        .post(
            "/account/two-step",
            &[
                ("csrf", token.as_str()),
                ("password", PASSWORD),
                ("old_code", server.code(&old_secret).as_str()),
                ("new_code", server.code(&new_secret).as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("1 other device(s) were logged out"),
        "{}",
        r.body
    );
    let new_codes = recovery_codes(&r.body);
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !old_codes.contains(c)));
    assert_eq!(
        phone.get("/").await.location(),
        "/login",
        "other devices are out"
    );
    assert_eq!(laptop.get("/").await.status, 200, "this one stays");

    // The old app and the old recovery codes stop working at once; the new ones work.
    server.advance_secs(30);
    let (_, status) = login_with_code(&server, OWNER, PASSWORD, &server.code(&old_secret)).await;
    assert_eq!(status, 401, "the old app's code");
    let (_, status) = login_with_code(&server, OWNER, PASSWORD, &old_codes[1]).await;
    assert_eq!(status, 401, "an old recovery code");
    let (mut fresh, status) =
        login_with_code(&server, OWNER, PASSWORD, &server.code(&new_secret)).await;
    assert_eq!(status, 303, "the new app's code");
    assert_eq!(fresh.get("/").await.status, 200);
    server.advance_secs(30);
    let (_, status) = login_with_code(&server, OWNER, PASSWORD, &new_codes[0]).await;
    assert_eq!(status, 303, "a new recovery code");

    // Shown, mailed (it is not a preference), and in the activity log.
    let alerts = laptop.get("/alerts").await.body;
    assert!(
        alerts.contains("set up again with a new authenticator app"),
        "{alerts}"
    );
    let mail = mail_with(&sink, "two-step verification was changed").await;
    assert!(mail.contains("To: owner@example.org"), "{mail}");
    assert!(
        mail.contains("Subject: Porchlight: your two-step verification was changed"),
        "{mail}"
    );
    for secret in [&old_secret, &new_secret, &new_codes[0], &old_codes[0]] {
        assert!(!mail.contains(secret.as_str()), "no secret in a mail");
    }
    let log = laptop.get("/activity?kind=two_factor_changed").await.body;
    assert_eq!(
        log.matches("<tr class=\"audit-two_factor_changed\">")
            .count(),
        1,
        "{log}"
    );
    assert!(log.contains("1 other session(s) ended"), "{log}");

    // Once more, with a recovery code in place of the current app's code.
    let page = laptop.get("/account/two-step").await;
    let third_secret = totp_secret(&page.body);
    assert_ne!(third_secret, new_secret, "a fresh key each time");
    server.advance_secs(30);
    let r = laptop
        .post(
            "/account/two-step",
            &[
                ("csrf", csrf(&page.body).as_str()),
                ("password", PASSWORD),
                ("old_code", new_codes[1].as_str()),
                ("new_code", server.code(&third_secret).as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.advance_secs(30);
    let (_, status) = login_with_code(&server, OWNER, PASSWORD, &new_codes[2]).await;
    assert_eq!(status, 401, "the codes it replaced");
    let (_, status) = login_with_code(&server, OWNER, PASSWORD, &server.code(&third_secret)).await;
    assert_eq!(status, 303);
    let log = laptop.get("/activity?kind=two_factor_changed").await.body;
    assert!(log.contains("the password and a recovery code"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_resets_a_shared_users_two_step_and_they_must_enrol_again() {
    const GUEST: &str = "grandma";
    const GUEST_PASSWORD: &str = "purple elephant dances at noon 7";
    let sink = SmtpSink::start();
    let server = mailing_server(&sink).await;
    let (mut owner, _, _) = server.owner().await;
    let invitation = webutil::invite(&mut owner, "grandma").await;
    let mut guest = server.client();
    let r = guest
        .post(
            "/invite",
            &[
                ("invitation", invitation.as_str()),
                ("username", GUEST),
                ("email", "grandma@example.org"),
                ("password", GUEST_PASSWORD),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    let page = guest.get("/enrol").await;
    let old_secret = totp_secret(&page.body);
    let r = guest
        .post(
            "/enrol",
            &[
                ("csrf", &csrf(&page.body)),
                ("code", &server.code(&old_secret)),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(guest.get("/").await.status, 200);

    // The owner resets it from /users.
    let users = owner.get("/users").await.body;
    let row = users
        .split("<tr id=\"user-")
        .find(|row| row.contains(&format!("<td>{GUEST}</td>")))
        .expect("the guest's row");
    let id = row.split('"').next().expect("id").to_owned();
    assert!(
        row.contains(&format!("/users/{id}/reset-two-step")),
        "{row}"
    );
    let r = owner
        .post(
            &format!("/users/{id}/reset-two-step"),
            &[("csrf", &csrf(&users))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), "no-store");
    let reset_code = webutil::reenrolment_code(&r.body);

    // Their open browser is out at once; the list says they must enrol with the code,
    // and keeps the reset button (a lost or expired code needs another).
    assert_eq!(guest.get("/").await.location(), "/login");
    let users = owner.get("/users").await.body;
    let row = users
        .split("<tr id=\"user-")
        .find(|row| row.contains(&format!("<td>{GUEST}</td>")))
        .expect("the guest's row");
    assert!(
        row.contains("reset: waiting for the one-time code") && row.contains("reset-two-step"),
        "{row}"
    );

    // The password now leads to enrolment, with a new seed; the old app is no use.
    server.advance_secs(30);
    let mut again = server.client();
    let r = again.post_login(GUEST, GUEST_PASSWORD).await;
    assert_eq!((r.status, r.location()), (303, "/enrol"));
    assert_eq!(again.get("/login/code").await.location(), "/enrol");
    let page = again.get("/enrol").await;
    let new_secret = totp_secret(&page.body);
    assert_ne!(new_secret, old_secret);
    let token = csrf(&page.body);
    let r = again
        .post(
            "/enrol",
            &[
                ("csrf", &token),
                ("code", &server.code(&old_secret)),
                ("reset_code", &reset_code),
            ],
        )
        .await;
    assert_eq!(r.status, 401, "the old app's code does not enrol");
    let r = again
        .post(
            "/enrol",
            &[
                ("csrf", &token),
                ("code", &server.code(&new_secret)),
                ("reset_code", &reset_code),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(recovery_codes(&r.body).len(), 10);
    assert_eq!(again.get("/").await.status, 200);

    // The notice reached them (it is not a preference), and the owner's log has it.
    let mail = mail_with(&sink, "two-step verification was changed").await;
    assert!(mail.contains("To: grandma@example.org"), "{mail}");
    assert!(
        mail.contains("reset two-step verification of your Porchlight account"),
        "{mail}"
    );
    let alerts = again.get("/alerts").await.body;
    assert!(alerts.contains("reset two-step verification"), "{alerts}");
    let log = owner.get("/activity?kind=two_factor_changed").await.body;
    assert!(
        log.contains("audit-two_factor_changed") && log.contains("reset by the owner"),
        "{log}"
    );
    assert!(
        log.contains("re-enrolment code") && !log.contains(&reset_code),
        "a code was issued, and it is not in the log: {log}"
    );
}

/// A mail server that accepts and then never says a word (a black hole, or port 465
/// spoken to with STARTTLS) holds every mail to it; it must not hold up anything
/// else: the webhook hears of every doorbell although each one's mail hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_mail_server_does_not_hold_up_the_webhook() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let smtp_port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        // Accepted connections are kept open and never written to.
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let hook = WebhookSink::start();
    let server = Server::start(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\nfrom = \"Porchlight <porchlight@example.org>\"\n\
         {}",
        doorbells_to(&hook, &["front", "back", "side"])
    ))
    .await;
    let (mut owner, _, _) = server.owner().await;
    let mut wanted = doorbell_prefs(&["front", "back", "side"]);
    wanted.extend([("email", "on"), ("webhook", "on")]);
    owner.save_notifications(&wanted).await;
    for camera in ["front", "back", "side"] {
        ring(&server, camera);
    }
    let doorbells = || hook.tagged("doorbell").len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while doorbells() < 3 {
        assert!(
            Instant::now() < deadline,
            "the webhook heard of {} doorbell(s) of 3: {:?}",
            doorbells(),
            hook.requests()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Config lines: the webhook at `hook`, and one camera in events mode per name.
fn doorbells_to(hook: &WebhookSink, cameras: &[&str]) -> String {
    let mut out = format!(
        "[notify]\nwebhook_url = \"http://127.0.0.1:{}/porch-topic\"\n",
        hook.port
    );
    for (i, name) in cameras.iter().enumerate() {
        out.push_str(&format!(
            "[[camera]]\nname = \"{name}\"\nurl = \"rtsp://127.0.0.1:9/c{i}\"\nmode = \"events\"\n"
        ));
    }
    out
}

/// Notification choices: the doorbell of each camera, no quiet hours.
fn doorbell_prefs<'a>(cameras: &[&'a str]) -> Vec<(&'static str, &'a str)> {
    let mut out: Vec<(&'static str, &'a str)> = cameras.iter().map(|c| ("doorbell", *c)).collect();
    out.extend([("quiet_start", "00:00"), ("quiet_end", "00:00")]);
    out
}

/// Someone rings the doorbell at `camera` (an external trigger of 2 s).
fn ring(server: &Server, camera: &str) {
    server
        .daemon()
        .trigger(
            &camera.parse().expect("name"),
            porchlight::model::Trigger::External,
            Duration::from_secs(2),
        )
        .expect("trigger");
}

/// A linked service's token never expires and outlives a password change and "log out
/// all", so whoever holds an owner's open session must not be able to make one
/// quietly: the form asks for the password again, and every owner is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_a_linked_service_token_needs_the_password_and_alerts_the_owner() {
    let sink = SmtpSink::start();
    let server = mailing_server(&sink).await;
    let (mut owner, _, _) = server.owner().await;
    let page = owner.get("/linked-services").await;
    assert!(page.body.contains("never expire"), "{}", page.body);
    let made = |body: &str| body.matches("made a linked service token").count();
    let token = csrf(&page.body);
    let without = [
        ("csrf", token.as_str()),
        ("name", "Home Assistant"),
        ("scope", "live:read"),
    ];
    let mut wrong = without.to_vec();
    wrong.push(("password", "wrong horse"));
    for (fields, why) in [
        (&without[..], "no password"),
        (&wrong[..], "a wrong password"),
    ] {
        let r = owner.post("/linked-services", fields).await;
        assert_eq!(r.status, 403, "{why}: {}", r.body);
        assert!(!r.body.contains("plt_"), "{why}: no token shown");
        assert!(
            r.body.contains("No linked services yet."),
            "{why}: none made"
        );
    }
    assert_eq!(made(&owner.get("/alerts").await.body), 0);

    let token = webutil::make_token(&mut owner, "Home Assistant", &["live:read"]).await;
    let alerts = owner.get("/alerts").await.body;
    assert_eq!(made(&alerts), 1, "{alerts}");
    assert!(alerts.contains("never expires"), "{alerts}");
    let mail = mail_with(
        &sink,
        "Subject: Porchlight: a linked service token was made",
    )
    .await;
    assert!(mail.contains("To: owner@example.org"), "{mail}");
    assert!(!mail.contains(&token), "the token is never mailed");
}

const GUEST: &str = "guest";
const GUEST_PASSWORD: &str = "purple elephant dances at noon 7";

/// A shared user, invited by `owner`, logged in and enrolled.
async fn shared_user(server: &Server, owner: &mut Client) -> Client {
    let secret = webutil::invite(owner, "for the webhook").await;
    let (mut guest, r) = webutil::accept_invitation(server, &secret, GUEST, GUEST_PASSWORD).await;
    assert_eq!(r.location(), "/enrol", "{}", r.body);
    webutil::enrol_with(server, &mut guest).await;
    guest
}

/// Waits until `page`'s notices stream has told of something containing `needle`.
async fn told(page: &mut reqwest::Response, needle: &str) {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(15), page.chunk())
            .await
            .unwrap_or_else(|_| panic!("no notice with {needle:?} within 15 s: {seen:?}"))
            .expect("stream")
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The webhook is the house's: a shared user who never opened Notifications (whose
/// defaults have the webhook on) must not turn it back on for events the owner took
/// off it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_users_defaults_do_not_fire_the_owners_webhook() {
    let hook = WebhookSink::start();
    let server = Server::start(&doorbells_to(&hook, &["front"])).await;
    let (mut owner, _, _) = server.owner().await;
    // The owner wants the doorbell on open pages only.
    owner.save_notifications(&doorbell_prefs(&["front"])).await;
    let mut guest = shared_user(&server, &mut owner).await;
    assert_eq!(guest.get("/").await.status, 200);
    let mut page = guest.notices_stream().await;
    ring(&server, "front");
    told(&mut page, "Doorbell at front").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.tagged("doorbell"), Vec::<String>::new());
}

/// A shared user's own security notice is theirs: the house webhook (the owner's
/// phone) must not say "your password was changed" when the guest changed theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_users_security_notice_does_not_reach_the_webhook() {
    let hook = WebhookSink::start();
    let server = Server::start(&doorbells_to(&hook, &[])).await;
    let (mut owner, _, _) = server.owner().await;
    let mut owner_page = owner.notices_stream().await;
    let mut guest = shared_user(&server, &mut owner).await;
    // The owner's own notice of the new shared user does reach it.
    told(&mut owner_page, "Security: ").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while hook.tagged("security").is_empty() {
        assert!(Instant::now() < deadline, "the webhook got nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut guest_page = guest.notices_stream().await;
    let page = guest.get("/account/password").await;
    let r = guest
        .post(
            "/account/password",
            &[
                ("csrf", &csrf(&page.body)),
                ("current", GUEST_PASSWORD),
                ("new", "a new purple elephant at dawn 8"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    told(&mut guest_page, "Security: ").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let security = hook.tagged("security");
    assert_eq!(security.len(), 1, "{security:?}");
    assert!(
        security[0].ends_with("Porchlight: a new shared user"),
        "{security:?}"
    );
}
