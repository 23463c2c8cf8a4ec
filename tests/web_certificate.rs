//! The running daemon serves a renewed HTTPS certificate after SIGHUP (what
//! `systemctl reload porchlight` sends, e.g. from a certbot deploy hook), and keeps
//! serving the old one when the new files do not fit together.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Setup;

/// A leaf certificate for 127.0.0.1 issued by its own CA, as PEM.
struct Issued {
    ca: String,
    cert: String,
    key: String,
}

fn issue(ca_name: &str) -> Issued {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    Issued {
        ca: ca.pem(),
        cert: leaf.pem(),
        key: leaf_key.serialize_pem(),
    }
}

/// Whether a fresh TLS connection to `base` is accepted by a client that trusts
/// only `ca`.
async fn trusted_by(ca: &str, base: &str) -> bool {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA pem"))
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    client.get(format!("{base}/login")).send().await.is_ok()
}

fn install(dir: &Path, cert: &str, key: &str) {
    fs::write(dir.join("cert.pem"), cert).expect("write cert");
    fs::write(dir.join("key.pem"), key).expect("write key");
}

fn hang_up(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_certificate_is_served_after_sighup_and_a_broken_one_is_refused() {
    let tls = tempfile::tempdir().expect("temp dir");
    let (old, new) = (issue("Old CA"), issue("New CA"));
    install(tls.path(), &old.cert, &old.key);
    let setup = Setup::new(
        &[],
        &format!(
            "[web]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{0}/cert.pem\"\ntls_key = \"{0}/key.pem\"\n",
            tls.path().display()
        ),
    );
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    assert!(
        trusted_by(&old.ca, &base).await,
        "the configured certificate"
    );
    assert!(!trusted_by(&new.ca, &base).await);

    // certbot replaces both files, then its deploy hook reloads the daemon.
    install(tls.path(), &new.cert, &new.key);
    hang_up(daemon.pid());
    daemon.wait_for_log(
        "now serving a new HTTPS certificate",
        1,
        Duration::from_secs(30),
    );
    assert!(trusted_by(&new.ca, &base).await, "the renewed certificate");
    assert!(
        !trusted_by(&old.ca, &base).await,
        "the old one is no longer served"
    );

    // A renewal caught half-way (the old key beside a new certificate): refused.
    install(tls.path(), &issue("Third CA").cert, &new.key);
    hang_up(daemon.pid());
    daemon.wait_for_log("HTTPS certificate not reloaded", 1, Duration::from_secs(30));
    let log = daemon.log_text();
    assert!(
        log.contains("certificate and key do not match"),
        "the warning says why: {log}"
    );
    assert!(
        trusted_by(&new.ca, &base).await,
        "the last good certificate is still served"
    );
    daemon.stop();
}

/// SIGHUP's default action would kill the daemon, which systemd takes for a clean
/// exit (no restart): with the web UI down, `systemctl reload` must only say so.
#[test]
fn sighup_without_a_web_ui_leaves_the_daemon_recording() {
    let tls = tempfile::tempdir().expect("temp dir");
    let setup = Setup::new(
        &[],
        &format!(
            "[web]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{0}/missing.pem\"\ntls_key = \"{0}/missing-key.pem\"\n",
            tls.path().display()
        ),
    );
    let mut daemon = setup.start_daemon();
    daemon.wait_for_log(
        "recording continues without the web UI",
        1,
        Duration::from_secs(30),
    );
    hang_up(daemon.pid());
    daemon.wait_for_log(
        "SIGHUP: the web UI is not running",
        1,
        Duration::from_secs(30),
    );
    daemon.stop();
}
