//! `make bench-web`: the web UI under load while cameras record. Prints, asserts nothing.
//!
//! Four cameras (four RTSP sessions to the realistic 1080p test camera, ~4.5 Mbit/s
//! each, continuous recording) run in
//! the real release `porchlight serve`; 50 concurrent HTTPS clients, each with its own
//! logged-in session, loop for BENCH_SECONDS (default 30) over the dashboard, a day's
//! recordings page and 256 KiB Range reads at random offsets of a finished recording.
//! Printed: requests/s, p50/p99 latency per kind, errors, and frames the recorders
//! lost meanwhile (their "frames lost" log lines).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/webutil/mod.rs"]
mod webutil;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::camera::{CameraOptions, TestCamera};
use common::{CameraSpec, Daemon, Setup};
use webutil::{csrf, totp_secret, Client, OWNER, PASSWORD};

const CLIENTS: usize = 50;
/// The soak's load: a household's worth of browsers and integrations, not a flood
/// (a flood for 30 minutes measures the load generator, not the daemon's drift).
const SOAK_CLIENTS: usize = 10;
const SOAK_PAUSE: Duration = Duration::from_millis(100);
const RANGE: u64 = 256 * 1024;
/// Requests of the one-client reference run before the load.
const UNLOADED_REQUESTS: usize = 90;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Default)]
struct Stats {
    pages: Vec<f64>,
    ranges: Vec<f64>,
    errors: u64,
    bytes: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn lost_frames(log: &str) -> (usize, u64) {
    let mut lines = 0;
    let mut frames = 0;
    for l in log
        .lines()
        .filter(|l| l.contains("frames lost") || l.contains("were lost upstream"))
    {
        lines += 1;
        if let Some(n) = l
            .split("lost=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
        {
            frames += n.parse::<u64>().unwrap_or(0);
        }
    }
    (lines, frames)
}

/// One request of the mix, chosen by `i`: the dashboard, a day's recordings page, or
/// a 256 KiB Range read at an offset derived from `i`. Returns (ok, is a page, bytes).
async fn one_request(c: &mut Client, id: &str, len: u64, i: u64) -> (bool, bool, u64) {
    match i % 3 {
        0 => {
            let r = c.get("/").await;
            (r.status == 200, true, r.body.len() as u64)
        }
        1 => {
            let r = c.get("/cameras/cam1/recordings").await;
            (r.status == 200, true, r.body.len() as u64)
        }
        _ => {
            let offset = (i >> 16) % len.saturating_sub(RANGE).max(1);
            let req = c
                .http
                .get(format!("{}/recordings/{id}/video.mp4", c.base))
                .header("range", format!("bytes={offset}-{}", offset + RANGE - 1))
                .header("cookie", c.cookie_header());
            match req.send().await {
                Ok(r) => {
                    let ok = r.status().as_u16() == 206;
                    let n = r.bytes().await.map(|b| b.len() as u64).unwrap_or(0);
                    (ok && n > 0, false, n)
                }
                Err(_) => (false, false, 0),
            }
        }
    }
}

/// Latencies (ms) of one client alone: the same mix, one request at a time, so the
/// loaded figures have a reference measured in the same run on the same data.
async fn unloaded(c: &mut Client, id: &str, len: u64) -> (Vec<f64>, Vec<f64>) {
    let (mut pages, mut ranges) = (Vec::new(), Vec::new());
    let mut i: u64 = 12345;
    for _ in 0..UNLOADED_REQUESTS {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let t = Instant::now();
        let (ok, is_page, _) = one_request(c, id, len, i).await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        match (ok, is_page) {
            (true, true) => pages.push(ms),
            (true, false) => ranges.push(ms),
            _ => {}
        }
    }
    pages.sort_by(f64::total_cmp);
    ranges.sort_by(f64::total_cmp);
    (pages, ranges)
}

/// Resident memory of a process in MB (`VmRSS`).
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The soak (`make soak`): while [`SOAK_CLIENTS`] clients run, samples the daemon once a minute —
/// RSS, open fds, threads, frames lost, requests and errors so far — and prints how
/// each moved from the first sample (after a minute of warm-up) to the last.
async fn soak(daemon: &Daemon, stats: &Mutex<Stats>, until: Instant) {
    println!(
        "{:>6} {:>8} {:>5} {:>8} {:>12} {:>10} {:>7}",
        "minute", "RSS MB", "fds", "threads", "frames lost", "requests", "errors"
    );
    let mut rows: Vec<(f64, usize, usize, u64)> = Vec::new();
    let mut minute = 0;
    while Instant::now() + Duration::from_secs(60) <= until {
        tokio::time::sleep(Duration::from_secs(60)).await;
        minute += 1;
        let rss = rss_mb(daemon.pid());
        let (fds, threads) = daemon.fds_and_threads();
        let (_, lost) = lost_frames(&daemon.log_text());
        let (requests, errors) = {
            let s = stats.lock().unwrap_or_else(|p| p.into_inner());
            (s.pages.len() + s.ranges.len(), s.errors)
        };
        println!(
            "{minute:>6} {rss:>8.1} {fds:>5} {threads:>8} {lost:>12} {requests:>10} {errors:>7}"
        );
        rows.push((rss, fds, threads, lost));
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        println!("soak: shorter than two samples");
        return;
    };
    let group = format!(
        "soak (4 cameras, {SOAK_CLIENTS} HTTPS clients pausing {} ms)",
        SOAK_PAUSE.as_millis()
    );
    println!(
        "BENCH|{group}|RSS, minute 1 → {minute}|{:.1} MB|{:.1} MB at minute 1|{:.2}×|flat",
        last.0,
        first.0,
        last.0 / first.0
    );
    println!(
        "BENCH|{group}|open fds / threads, minute 1 → {minute}|{} / {}|{} / {} at minute 1|{:.2}×|flat",
        last.1, last.2, first.1, first.2, last.1 as f64 / first.1 as f64
    );
    println!(
        "BENCH|{group}|frames lost by the recorders, minute 1 → {minute}|{}|{} at minute 1|—|no growth",
        last.3, first.3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("bench-web runs with `make bench-web` (cargo bench --bench web)");
        return;
    }
    let soak_minutes: Option<u64> = std::env::var("BENCH_SOAK_MINUTES")
        .ok()
        .and_then(|s| s.parse().ok());
    let seconds: u64 = soak_minutes.map(|m| m * 60).unwrap_or_else(|| {
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30)
    });
    // The realistic 1080p stream (~4.5 Mbit/s), one encoder shared by the four
    // sessions so the camera's own cost stays that of one stream.
    let camera = TestCamera::start(CameraOptions {
        realistic: true,
        shared: true,
        ..CameraOptions::default()
    });
    let cameras: Vec<CameraSpec> = (1..=4)
        .map(|i| CameraSpec::continuous(&format!("cam{i}"), &camera.main_url()))
        .collect();
    let setup = Setup::new(&cameras, "");
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();

    // Ten sessions: the owner's, and nine more logged in with recovery codes (a TOTP
    // code works once per 30 s step); the 50 clients share them.
    let code = std::fs::read_to_string(setup.data_dir().join("setup-code")).expect("setup code");
    let mut owner = Client::new(&base);
    owner
        .post(
            "/setup",
            &[
                ("code", code.trim()),
                ("username", OWNER),
                ("password", PASSWORD),
            ],
        )
        .await;
    let page = owner.get("/enrol").await;
    let secret = totp_secret(&page.body);
    let totp = porchlight::auth::totp::code_at(&secret, now_secs()).expect("code");
    let r = owner
        .post("/enrol", &[("csrf", &csrf(&page.body)), ("code", &totp)])
        .await;
    assert_eq!(r.status, 200, "enrolment");
    let recovery = webutil::recovery_codes(&r.body);
    let mut sessions = vec![owner.cookies.clone()];
    for code in recovery.iter().take(9) {
        let mut c = Client::new(&base);
        c.post("/login", &[("username", OWNER), ("password", PASSWORD)])
            .await;
        let page = c.get("/login/code").await;
        c.post(
            "/login/code",
            &[("csrf", &csrf(&page.body)), ("code", code)],
        )
        .await;
        sessions.push(c.cookies.clone());
    }

    // A finished recording to read: record a few seconds, restart.
    daemon.wait_for_log("recording started", 4, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(5)).await;
    daemon.stop();
    let recordings = setup.recordings();
    let id = recordings[0]["id"].as_str().expect("id").to_owned();
    let mut daemon = setup.start_daemon();
    let base = daemon.web_base();
    daemon.wait_for_log("recording started", 4, Duration::from_secs(30));
    let log_before = daemon.log_text();
    let mut probe = Client::new(&base);
    probe.cookies = sessions[0].clone();
    let len: u64 = probe
        .get(&format!("/recordings/{id}/video.mp4"))
        .await
        .header("content-length")
        .parse()
        .expect("length");

    let (alone_pages, alone_ranges) = unloaded(&mut probe, &id, len).await;

    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let (clients, pause) = match soak_minutes {
        Some(_) => (SOAK_CLIENTS, SOAK_PAUSE),
        None => (CLIENTS, Duration::ZERO),
    };
    for n in 0..clients {
        let stats = stats.clone();
        let base = base.clone();
        let cookies = sessions[n % sessions.len()].clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::new(&base);
            c.cookies = cookies;
            let mut i = n as u64;
            while Instant::now() < until {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let t = Instant::now();
                let (ok, is_page, bytes) = one_request(&mut c, &id, len, i).await;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                if !ok {
                    s.errors += 1;
                } else if is_page {
                    s.pages.push(ms);
                } else {
                    s.ranges.push(ms);
                }
                s.bytes += bytes;
            }
        }));
    }
    if soak_minutes.is_some() {
        soak(&daemon, &stats, until).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let log_after = daemon.log_text();
    daemon.stop();

    let mut s = std::mem::take(&mut *stats.lock().unwrap_or_else(|p| p.into_inner()));
    s.pages.sort_by(f64::total_cmp);
    s.ranges.sort_by(f64::total_cmp);
    let total = s.pages.len() + s.ranges.len() + s.errors as usize;
    let (lines_before, _) = lost_frames(&log_before);
    let (lines_after, frames_after) = lost_frames(&log_after);
    println!(
        "bench-web: 4 cameras recording, {clients} HTTPS clients, {elapsed:.1} s, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<22} {:>9} {:>10} {:>10} {:>10}",
        "kind", "requests", "req/s", "p50 ms", "p99 ms"
    );
    for (name, v) in [
        ("pages (HTML)", &s.pages),
        ("range reads (256 KiB)", &s.ranges),
    ] {
        println!(
            "{:<22} {:>9} {:>10.1} {:>10.1} {:>10.1}",
            name,
            v.len(),
            v.len() as f64 / elapsed,
            percentile(v, 0.50),
            percentile(v, 0.99)
        );
    }
    println!(
        "{:<22} {:>9} {:>10.1}",
        "all",
        total,
        total as f64 / elapsed
    );
    println!("errors: {}", s.errors);
    println!("recording read: {len} bytes");
    println!("throughput: {:.1} MB/s", s.bytes as f64 / elapsed / 1e6);
    println!(
        "frames lost by recorders during the run: {} ({} log lines)",
        frames_after,
        lines_after - lines_before
    );
    // For `make bench` (benches/all.py): loaded p99 next to one client's p50.
    let group = format!("web under load (4 cameras recording, {clients} HTTPS clients)");
    for (name, loaded, alone) in [
        ("pages", &s.pages, &alone_pages),
        ("256 KiB range reads", &s.ranges, &alone_ranges),
    ] {
        let (p99, p50_alone) = (percentile(loaded, 0.99), percentile(alone, 0.50));
        println!(
            "BENCH|{group}|{name}: {:.0} req/s, p99 (p50 {:.1} ms)|{p99:.1} ms|one client alone: p50 {p50_alone:.1} ms|{:.1}×|p99 < 100 ms",
            loaded.len() as f64 / elapsed,
            percentile(loaded, 0.50),
            p99 / p50_alone
        );
    }
    println!(
        "BENCH|{group}|errors, frames lost by the recorders|{} errors, {} frames|—|—|0 and 0",
        s.errors, frames_after
    );
}
