//! Security alerts by mail, delivered to a real SMTP server (Debian's aiosmtpd,
//! writing a Maildir), never a mock.

mod webutil;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use webutil::{csrf, Server, OWNER};

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

    fn requests(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_notify_the_open_page_the_mailbox_and_the_webhook_as_each_user_chose() {
    use porchlight::model::Trigger;
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
    let mut stream = owner
        .http
        .get(format!("{}/notifications/stream", owner.base))
        .header("cookie", owner.cookie_header())
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status().as_u16(), 200);
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
    let daemon = server.daemon();
    let trigger = |camera: &str| {
        daemon
            .trigger(
                &camera.parse().expect("name"),
                Trigger::External,
                Duration::from_secs(2),
            )
            .expect("trigger");
    };
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
    let hooks = hook.requests();
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
    let page = owner.get("/notifications").await;
    let r = owner
        .post(
            "/notifications",
            &[
                ("csrf", &csrf(&page.body)),
                ("doorbell", "front"),
                ("quiet_start", "00:00"),
                ("quiet_end", "23:59"),
                ("email", "on"),
                ("webhook", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    server.advance_secs(10);
    trigger("front");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.requests().len(), 1, "quiet: no webhook");
    assert_eq!(sink.messages().len(), 1, "quiet: no mail");
}
