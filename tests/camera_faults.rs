//! Camera faults between the real daemon and the real test camera, made by a TCP
//! proxy in this test: the connection cut mid-stream (again and again), and the
//! camera falling silent for 30 s. Recording resumes each time, no file descriptor or
//! thread leaks across the cycles, and every recording checks and decodes.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::camera::{CameraOptions, TestCamera};
use common::{ffmpeg_decode_errors, Setup};

/// Extra fds/threads tolerated after the cycles (tokio's blocking pool and the
/// allocator come and go); a leak per cycle would exceed it.
const FD_SLACK: usize = 4;
const THREAD_SLACK: usize = 4;
const CUT_CYCLES: usize = 4;

/// A TCP proxy that can cut every open connection or stop forwarding for a while.
struct Proxy {
    port: u16,
    paused: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let paused = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (p, o) = (paused.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(camera) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let mut list = o.lock().expect("proxy list");
                for s in [&client, &camera] {
                    list.push(s.try_clone().expect("clone socket"));
                }
                drop(list);
                let (c2, cam2) = (
                    client.try_clone().expect("clone"),
                    camera.try_clone().expect("clone"),
                );
                let (p1, p2) = (p.clone(), p.clone());
                std::thread::spawn(move || forward(client, camera, p1));
                std::thread::spawn(move || forward(cam2, c2, p2));
            }
        });
        Proxy { port, paused, open }
    }

    /// Shuts every open connection down in both directions, mid-frame or not.
    fn cut(&self) {
        for s in self.open.lock().expect("proxy list").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn pause(&self, on: bool) {
        self.paused.store(on, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either ends; holds bytes while paused.
fn forward(mut from: TcpStream, mut to: TcpStream, paused: Arc<AtomicBool>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[test]
fn cut_and_stalled_connections_recover_without_leaks_and_recordings_decode() {
    let camera = TestCamera::start(CameraOptions::default());
    let proxy = Proxy::start(camera.port());
    let setup = Setup::new(&[], "");
    setup.append_config(&format!(
        "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:{}/main\"\nmode = \"continuous\"\nstall_timeout_seconds = 3\n",
        proxy.port
    ));

    let mut daemon = setup.start_daemon();
    let streaming = "camera porch: streaming";
    let trouble = "camera porch:";
    daemon.wait_for_log(streaming, 1, Duration::from_secs(30));
    let warnings = |d: &common::Daemon| {
        d.log_text()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(trouble))
            .count()
    };
    let mut streams = 1;

    // One warm-up cycle: the first reconnect may set up things that then stay (tokio
    // worker and blocking threads, lazily opened files).
    let cycle = |daemon: &mut common::Daemon, streams: &mut usize| {
        std::thread::sleep(Duration::from_secs(2));
        let before = warnings(daemon);
        proxy.cut();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while warnings(daemon) == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no warning after the cut; log:\n{}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        *streams += 1;
        daemon.wait_for_log(streaming, *streams, Duration::from_secs(30));
    };
    cycle(&mut daemon, &mut streams);
    std::thread::sleep(Duration::from_secs(3));
    let (fds0, threads0) = daemon.fds_and_threads();

    for _ in 0..CUT_CYCLES {
        cycle(&mut daemon, &mut streams);
    }

    // Thirty seconds of silence: the stall timeout (3 s) ends the session, and the
    // reconnects meet the same silence until forwarding resumes.
    let before = warnings(&daemon);
    proxy.pause(true);
    std::thread::sleep(Duration::from_secs(30));
    let text = daemon.log_text();
    assert!(
        text.lines()
            .filter(|l| l.contains("no frames for 3 s"))
            .count()
            >= 1,
        "the pause is reported as a stall; log:\n{text}"
    );
    assert!(warnings(&daemon) > before);
    proxy.pause(false);
    // Connections held during the pause flush their stale bytes; cut them so the
    // next attempt starts clean and fast.
    proxy.cut();
    streams += 1;
    daemon.wait_for_log(streaming, streams, Duration::from_secs(40));
    std::thread::sleep(Duration::from_secs(3));

    let (fds1, threads1) = daemon.fds_and_threads();
    println!("fds {fds0} -> {fds1}, threads {threads0} -> {threads1}");
    assert!(
        fds1 <= fds0 + FD_SLACK,
        "open fds grew from {fds0} to {fds1} over {CUT_CYCLES} cuts and a stall"
    );
    assert!(
        threads1 <= threads0 + THREAD_SLACK,
        "threads grew from {threads0} to {threads1} over {CUT_CYCLES} cuts and a stall"
    );
    daemon.stop();

    setup.cli_ok(&["check"]);
    let recordings = setup.recordings();
    assert!(
        recordings.len() >= CUT_CYCLES + 2,
        "a recording per connection at least: {recordings:?}"
    );
    for r in &recordings {
        let id = r["id"].as_str().expect("id");
        let out = setup.export(id);
        assert_eq!(ffmpeg_decode_errors(&out), "", "recording {id} decodes");
    }
}
