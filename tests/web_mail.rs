//! Security alerts by mail, delivered to a real SMTP server (Debian's aiosmtpd,
//! writing a Maildir), never a mock.

mod webutil;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use webutil::{Server, OWNER};

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
