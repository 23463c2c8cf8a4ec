//! A full disk under the real `porchlight serve` and its web UI: the data directory on
//! a tmpfs of a few MiB fills up while a camera records; the owner's pages keep
//! answering, Diagnostics shows the problem, a finished recording still plays over
//! HTTP Range, the daemon stops cleanly; `check` on the full disk says why it cannot
//! run, and once the disk has room every finished recording checks and decodes.

mod common;
mod webutil;

use std::time::{Duration, Instant};

use common::camera::{CameraOptions, TestCamera};
use common::{ffmpeg_decode_errors, CameraSpec, Setup, Tmpfs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_keeps_answering_while_the_disk_is_full() {
    // ≈2.4 Mbit/s in 5 s files; retention may not delete anything (no free-space
    // target, no storage limit reached), so the disk really fills up.
    let camera = TestCamera::start(CameraOptions {
        realistic: true,
        gop: 20,
        ..CameraOptions::default()
    });
    let setup = Setup::new(
        &[CameraSpec::continuous("yard", &camera.main_url())],
        "[recording]\nrollover_seconds = 5\n[retention]\nmin_free_percent = 0\n",
    );
    let _disk = Tmpfs::mount(&setup.data_dir(), "6m");
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    let code = std::fs::read_to_string(setup.data_dir().join("setup-code")).expect("setup code");
    let mut owner = webutil::owner_with_real_clock(&base, code.trim()).await;

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let page = owner.get("/diagnostics").await;
        assert_eq!(page.status, 200, "{}", page.body);
        if page.body.contains("No space left") {
            break;
        }
        assert!(Instant::now() < deadline, "6 MiB never filled up");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Full: every page still answers, and a finished recording plays.
    for path in [
        "/",
        "/cameras/yard/recordings",
        "/control-centre",
        "/activity",
    ] {
        let page = owner.get(path).await;
        assert_eq!(page.status, 200, "{path} on a full disk: {}", page.body);
    }
    let list = owner.get("/cameras/yard/recordings").await.body;
    // A finished one (it has a Play link): the newest row can be an attempt the
    // full disk is cutting short, discarded a moment later.
    let id = list
        .split("<h2>Recordings</h2>")
        .nth(1)
        .and_then(|rows| rows.split("<a href=\"/recordings/").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("a finished recording listed")
        .to_owned();
    let r = owner
        .http
        .get(format!("{base}/recordings/{id}/video.mp4"))
        .header("cookie", owner.cookie_header())
        .header("range", "bytes=0-1023")
        .send()
        .await
        .expect("range request");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.bytes().await.expect("body").len(), 1024);
    assert!(
        !daemon.log_text().contains("panicked"),
        "{}",
        daemon.log_text()
    );
    daemon.stop();

    // Offline tools need room for the index's own log: on the full disk they say so
    // plainly; given room, everything finished checks and decodes.
    let out = setup.cli(&["check"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && said.contains("No space left"),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=16m"])
        .arg(setup.data_dir())
        .status()
        .expect("remount");
    assert!(grown.success(), "the tmpfs grows");
    setup.cli_ok(&["check"]);
    let finished: Vec<_> = setup
        .recordings()
        .into_iter()
        .filter(|r| r["state"] == "finished")
        .collect();
    assert!(!finished.is_empty());
    for r in &finished {
        let rid = r["id"].as_str().expect("id");
        let out = setup.export(rid);
        assert_eq!(ffmpeg_decode_errors(&out), "", "recording {rid} is intact");
    }
}
