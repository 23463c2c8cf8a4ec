//! A hostile camera beside a good one: the real daemon against
//! `tests/camera/hostile_rtsp.py` (a hand-written malicious RTSP server) and the real
//! GStreamer test camera. For every kind of misbehaviour the daemon logs a clear error
//! naming the hostile camera, keeps running with bounded memory, and the good camera's
//! recording goes on and decodes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::camera::{CameraOptions, TestCamera};
use common::{ffmpeg_decode_errors, CameraSpec, Daemon, Setup};

/// A generous ceiling for the whole daemon (a debug build): before the size guard,
/// endless headers took it past 2 GB in 10 s.
const RSS_LIMIT_KB: u64 = 200 * 1024;
/// Growth allowed from the first mode to the last (allocator noise, not a leak).
const RSS_GROWTH_KB: u64 = 40 * 1024;

/// Each mode and the pieces of error the daemon may log for it (any one will do).
const MODES: &[(&str, &[&str])] = &[
    // Random bytes: retina's parser refuses them, or, when the relay got 64 KiB
    // ahead of it (a loaded machine), the size guard finds no end of a header first.
    (
        "garbage",
        &[
            "camera hostile: RTSP error",
            "camera hostile: connection cut: the camera sent an RTSP header block over 65536 bytes",
        ],
    ),
    ("endless-headers", &["header block over 65536 bytes"]),
    (
        "huge-length",
        &["declared an RTSP body of 4000000000 bytes"],
    ),
    // Bare LFs: retina's line never ends, so the guard must count it as one head.
    ("lf-only", &["header block over 65536 bytes"]),
    ("giant-sps", &["camera hostile: no frames for 2 s"]),
    ("rtp-garbage", &["camera hostile:"]),
    // One access unit that never ends: retina would buffer it without limit.
    ("endless-au", &["RTP without completing a frame"]),
];

/// The hostile server's process; killed on drop.
struct Hostile {
    child: Child,
    port: u16,
}

impl Hostile {
    fn start(mode: &str, port: u16) -> Hostile {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/camera/hostile_rtsp.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(mode)
            .args(["--port", &port.to_string(), "--exit-with-parent"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the hostile camera");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines
            .next()
            .and_then(Result::ok)
            .expect("the hostile camera prints a ready line");
        let v: serde_json::Value = serde_json::from_str(&ready).expect("ready line is JSON");
        let port = v["port"].as_u64().expect("port") as u16;
        // Keep reading so the pipe never fills and blocks the server.
        std::thread::spawn(move || for _ in lines {});
        Hostile { child, port }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon alive");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Waits for a log line after `skip` lines that contains one of `needles`, sampling RSS
/// meanwhile (a dead daemon has no VmRSS, so that panics too); returns the peak.
fn wait_for_error(daemon: &mut Daemon, skip: usize, needles: &[&str], timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut peak = 0;
    loop {
        peak = peak.max(rss_kb(daemon.pid()));
        assert!(
            peak < RSS_LIMIT_KB,
            "daemon RSS {peak} kB over {RSS_LIMIT_KB} kB waiting for {needles:?}"
        );
        let text = daemon.log_text();
        if text
            .lines()
            .skip(skip)
            .any(|l| needles.iter().any(|n| l.contains(n)))
        {
            return peak;
        }
        assert!(
            Instant::now() < deadline,
            "none of {needles:?} in the log within {timeout:?}; log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hostile_camera_is_refused_with_bounded_memory_and_the_good_camera_keeps_recording() {
    let good = TestCamera::start(CameraOptions::default());
    let mut hostile = Hostile::start(MODES[0].0, 0);
    let port = hostile.port;
    let setup = Setup::new(&[CameraSpec::continuous("yard", &good.main_url())], "");
    // A short stall timeout: the giant-SPS mode answers PLAY and then sends nothing.
    setup.append_config(&format!(
        "[[camera]]\nname = \"hostile\"\nurl = \"rtsp://127.0.0.1:{port}/main\"\nmode = \"continuous\"\nstall_timeout_seconds = 2\n"
    ));

    let mut daemon = setup.start_daemon();
    daemon.wait_for_log("recording started", 1, Duration::from_secs(30));
    let started = Instant::now();
    let mut peaks = Vec::new();
    for (i, (mode, needles)) in MODES.iter().enumerate() {
        if i > 0 {
            drop(hostile);
            hostile = Hostile::start(mode, port);
        }
        let skip = daemon.log_text().lines().count();
        // The back-off caps at 10 s, so each mode is met within about 12 s.
        let peak = wait_for_error(&mut daemon, skip, needles, Duration::from_secs(30));
        println!("{mode}: peak RSS {peak} kB");
        peaks.push(peak);
    }
    drop(hostile);
    let first = peaks[0];
    let last = *peaks.last().expect("a peak per mode");
    assert!(
        last <= first + RSS_GROWTH_KB,
        "RSS grew across modes: {peaks:?} kB"
    );
    let recorded = started.elapsed();
    daemon.stop();

    let text = daemon.log_text();
    let yard_trouble: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("camera yard"))
        .collect();
    assert!(
        yard_trouble.is_empty(),
        "the good camera was never disturbed: {yard_trouble:#?}"
    );
    let recordings = setup.recordings();
    assert!(
        recordings.iter().all(|r| r["camera"] == "yard"),
        "nothing recorded for the hostile camera: {recordings:?}"
    );
    let frames: u64 = recordings
        .iter()
        .map(|r| r["frames"].as_u64().expect("frames"))
        .sum();
    let expected = recorded.as_secs() * 10;
    assert!(
        frames + 30 >= expected,
        "the good camera recorded {frames} frames in {recorded:?} (10 fps)"
    );
    for r in &recordings {
        let id = r["id"].as_str().expect("id");
        let out = setup.export(id);
        assert_eq!(ffmpeg_decode_errors(&out), "", "recording {id} decodes");
    }
    setup.cli_ok(&["check"]);
}

/// An encoder that froze while its server keeps sending RTCP sender reports (one a
/// second, more often than the 2 s stall timeout): the camera must still be reported
/// stalled, not stay "streaming" with nothing recorded.
#[test]
fn a_frozen_encoder_behind_rtcp_reports_is_reported_stalled() {
    let hostile = Hostile::start("rtcp-stall", 0);
    let setup = Setup::new(&[], "");
    setup.append_config(&format!(
        "[[camera]]\nname = \"hostile\"\nurl = \"rtsp://127.0.0.1:{}/main\"\nmode = \"off\"\nstall_timeout_seconds = 2\n",
        hostile.port
    ));
    let mut daemon = setup.start_daemon();
    // The one keyframe gets through: the camera did stream.
    daemon.wait_for_log("camera hostile: streaming", 1, Duration::from_secs(30));
    let peak = wait_for_error(
        &mut daemon,
        0,
        &["camera hostile: no frames for 2 s; the camera stalled"],
        Duration::from_secs(30),
    );
    println!("rtcp-stall: peak RSS {peak} kB");
    daemon.stop();
}

/// A camera that sends frames but never a keyframe: nothing can be published, so it
/// must end in an error instead of sitting in "connecting" forever.
#[test]
fn a_camera_that_never_sends_a_keyframe_is_reported() {
    let hostile = Hostile::start("no-keyframe", 0);
    let setup = Setup::new(&[], "");
    setup.append_config(&format!(
        "[[camera]]\nname = \"hostile\"\nurl = \"rtsp://127.0.0.1:{}/main\"\nmode = \"off\"\nstall_timeout_seconds = 2\n",
        hostile.port
    ));
    let mut daemon = setup.start_daemon();
    let peak = wait_for_error(
        &mut daemon,
        0,
        &["camera hostile: no keyframe within 2 s of PLAY"],
        Duration::from_secs(30),
    );
    println!("no-keyframe: peak RSS {peak} kB");
    daemon.stop();
}
