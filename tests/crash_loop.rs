//! The crash loop of the hardening issue: two cameras recording continuously, the
//! real daemon killed with SIGKILL at a random moment and started again, 50 times
//! (`CRASH_LOOPS` changes the count). Afterwards `porchlight check` is clean and every
//! indexed recording exports to an MP4 that ffmpeg decodes without a word; the video
//! lost per crash per camera — from the last kept frame to the kill — is printed
//! against the 2 s target, and more than 3 s fails the test.

mod common;

use std::time::Duration;

use common::camera::{CameraOptions, TestCamera};
use common::{ffmpeg_decode_errors, ffprobe, CameraSpec, Setup};

/// The target for video lost to one crash.
const TARGET_LOSS_SECS: f64 = 2.0;
/// What fails the test: the target plus room for a loaded machine's scheduling
/// (the loss is measured from the kill back to the last kept frame, so it includes
/// the camera-to-daemon delay); a run that misses the target but not this says so.
const MAX_LOSS_SECS: f64 = 3.0;

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A small deterministic generator (xorshift) so a failing run can be repeated with
/// the same seed, printed at the start.
struct Rng(u64);

impl Rng {
    fn next_millis(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn fifty_kill_9s_lose_at_most_two_seconds_each_and_damage_nothing() {
    let loops: usize = std::env::var("CRASH_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| (now_micros() as u64) | 1);
    println!("crash loop: {loops} kills, CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let front = TestCamera::start(CameraOptions::default());
    let back = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(
        &[
            CameraSpec::continuous("front", &front.main_url()),
            CameraSpec::continuous("back", &back.main_url()),
        ],
        "",
    );

    // Per crash: when it came, and when each camera's recording of that run began
    // (from the daemon's log), so a crash that left no video at all still counts.
    let mut kills: Vec<(i64, [(&str, i64); 2])> = Vec::new();
    for i in 0..loops {
        let mut daemon = setup.start_daemon();
        daemon.wait_for_log("recording started", 2, Duration::from_secs(30));
        // Anywhere from just after both recordings began to a few seconds in.
        std::thread::sleep(Duration::from_millis(200 + rng.next_millis(3000)));
        let killed = now_micros();
        daemon.kill9();
        let log = daemon.log_text();
        let started = |camera: &str| {
            log.lines()
                .find(|l| l.contains(&format!("camera {camera}: recording started")))
                .and_then(|l| l.split_whitespace().next())
                .and_then(porchlight::clock::parse_rfc3339)
                .expect("a timestamped start line")
        };
        kills.push((
            killed,
            [("front", started("front")), ("back", started("back"))],
        ));
        if i % 10 == 9 {
            println!("{} kills done", i + 1);
        }
    }
    // A last clean run recovers the last crash and stops properly.
    let mut daemon = setup.start_daemon();
    daemon.wait_for_log("recording started", 2, Duration::from_secs(30));
    daemon.stop();

    let check = setup.cli(&["check"]);
    assert!(
        check.status.success(),
        "check after the last clean run: {}\nthat run's log:\n{}",
        String::from_utf8_lossy(&check.stdout),
        daemon.log_text()
    );
    let recordings = setup.recordings();
    let mut worst: f64 = 0.0;
    let mut losses = Vec::new();
    let times = |r: &serde_json::Value, k: &str| {
        porchlight::clock::parse_rfc3339(r[k].as_str().expect("time")).expect("RFC 3339")
    };
    for (killed, runs) in &kills {
        for (camera, began) in runs {
            // What is kept of this run: its recordings (their first frame can precede
            // the log line by a GOP of pre-buffering); none if the crash came before
            // any video reached the disk.
            let kept_until = recordings
                .iter()
                .filter(|r| r["camera"] == *camera)
                .filter(|r| {
                    let start = times(r, "start");
                    start >= began - 2_000_000 && start < *killed
                })
                .map(|r| times(r, "end"))
                .max()
                .unwrap_or(*began);
            let lost = (killed - kept_until).max(0) as f64 / 1e6;
            worst = worst.max(lost);
            losses.push(lost);
        }
    }
    losses.sort_by(f64::total_cmp);
    let median = losses[losses.len() / 2];
    println!(
        "video lost per crash and camera over {} crashes: median {median:.2} s, worst {worst:.2} s (target {TARGET_LOSS_SECS} s: {})",
        kills.len(),
        if worst <= TARGET_LOSS_SECS { "met" } else { "MISSED" }
    );
    // For `make bench` (benches/all.py): the loss as a ratio of the target.
    println!(
        "BENCH|crash loss (kill -9, restart)|{} crashes × 2 cameras, worst (median {median:.2} s)|{worst:.2} s|target {TARGET_LOSS_SECS} s|{:.2}×|≤ 1.00×",
        kills.len(),
        worst / TARGET_LOSS_SECS
    );
    assert!(
        worst <= MAX_LOSS_SECS,
        "a crash lost {worst:.2} s of video (CRASH_SEED={seed})"
    );

    // Every recording, crashed or not, exports and decodes fully.
    for r in &recordings {
        let id = r["id"].as_str().expect("id");
        let out = setup.export(id);
        assert_eq!(
            ffprobe(&out).frames,
            r["frames"].as_u64().expect("frames"),
            "recording {id}"
        );
        assert_eq!(ffmpeg_decode_errors(&out), "", "recording {id}");
        std::fs::remove_file(&out).expect("remove the export");
    }
    println!("{} recordings export and decode", recordings.len());
}
