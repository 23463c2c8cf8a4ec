//! CPU cost of motion detection, printed and never asserted. Run it by hand, alone, in
//! release mode (the project's own code is unoptimised in dev builds):
//!
//! ```text
//! cargo test --release --lib bench_motion -- --ignored --nocapture --test-threads=1
//! ```
//!
//! For 60 s of 640x360 H.264 (libx264, one keyframe a second, no B-frames) at 10 and
//! 25 fps, of a moving test pattern and of a still, noisy scene (a camera watching an
//! empty porch), it measures this process's user+system CPU time (`/proc/self/stat`)
//! for each way of running the motion task, next to `ffmpeg -threads 1 -i x.h264 -f
//! null -` (`/usr/bin/time`) on the same file.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ffmpeg_next::Discard;

use super::bitstream::VideoCodec;
use super::decode::{IdlePolicy, MotionDecoder};
use super::detect::{GrayFrame, MotionDetector, MotionSettings};
use super::testutil::{encode, load, TestStream};

const SECS: u32 = 60;

/// This process's CPU time so far, in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // Fields after the command name (which may contain spaces) closing with ')'.
    let after = &stat[stat.rfind(')').expect("stat has a comm field") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// (CPU seconds, wall seconds) of `f`.
fn measure(f: impl FnOnce()) -> (f64, f64) {
    let (c0, t0) = (cpu_secs(), Instant::now());
    f();
    (cpu_secs() - c0, t0.elapsed().as_secs_f64())
}

/// `ffmpeg -threads 1 -i file -f null -`: user+system seconds per `/usr/bin/time`.
fn ffmpeg_cli_cpu(path: &str, extra: &[&str]) -> f64 {
    let mut args = vec!["-f", "%U %S", "ffmpeg", "-v", "error", "-threads", "1"];
    args.extend(extra);
    args.extend(["-i", path, "-f", "null", "-"]);
    let out = Command::new("/usr/bin/time")
        .args(&args)
        .output()
        .expect("/usr/bin/time and ffmpeg are installed");
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    last.split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(f64::NAN))
        .sum()
}

struct Mode {
    name: &'static str,
    idle: Option<IdlePolicy>,
    /// 0 = analyse every decoded frame; None = decode only.
    analyse_fps: Option<f32>,
}

/// Runs one mode over the stream; returns (frames decoded, frames analysed, events).
fn run_mode(s: &TestStream, mode: &Mode) -> (usize, usize, usize) {
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    if let Some(policy) = mode.idle {
        dec.set_idle_policy(policy);
        dec.set_idle(true);
    }
    let settings = MotionSettings {
        max_fps: mode.analyse_fps.unwrap_or(0.0),
        ..MotionSettings::default()
    };
    let mut det = MotionDetector::new(settings, 160, 90);
    let (mut decoded, mut analysed, mut events) = (0, 0, 0);
    for u in &s.units {
        let Some(f) = dec.decode(&u.data, u.is_key, u.pts).expect("decodes") else {
            continue;
        };
        decoded += 1;
        if mode.analyse_fps.is_some() && det.due(f.pts) {
            analysed += 1;
            events += usize::from(det.analyse(&f).1.is_some());
        }
    }
    (decoded, analysed, events)
}

fn bench_file(dir: &Path, label: &str, lavfi: &str, fps: u32) {
    let name = format!("{}-{fps}.h264", label.split(' ').next().unwrap_or("x"));
    let path = encode(VideoCodec::H264, dir, &name, lavfi, SECS, fps);
    let s = load(VideoCodec::H264, &path, fps, 640, 360);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "\n## {label}, 640x360 {fps} fps, {SECS} s, GOP {fps} ({} frames, {} kbit/s)",
        s.units.len(),
        size * 8 / 1000 / u64::from(SECS)
    );
    let cli = ffmpeg_cli_cpu(&path, &[]);
    let cli_nokey = ffmpeg_cli_cpu(&path, &["-skip_frame", "nokey"]);
    println!(
        "ffmpeg CLI -threads 1 -f null: {cli:.2} s CPU ({:.1} % of a core); with -skip_frame nokey: {cli_nokey:.2} s",
        100.0 * cli / f64::from(SECS)
    );
    let full = |f| IdlePolicy {
        drop_non_key: false,
        skip_frame: f,
        skip_loop_filter: Discard::Default,
    };
    let modes = [
        Mode {
            name: "decode only",
            idle: None,
            analyse_fps: None,
        },
        Mode {
            name: "(a) decode + analyse every frame",
            idle: None,
            analyse_fps: Some(0.0),
        },
        Mode {
            name: "(b) decode all + analyse 5 fps",
            idle: None,
            analyse_fps: Some(5.0),
        },
        Mode {
            name: "(c) idle: drop non-key + no deblock",
            idle: Some(IdlePolicy::PRODUCTION),
            analyse_fps: Some(5.0),
        },
        Mode {
            name: "    idle: drop non-key only",
            idle: Some(IdlePolicy {
                skip_loop_filter: Discard::Default,
                ..IdlePolicy::PRODUCTION
            }),
            analyse_fps: Some(5.0),
        },
        Mode {
            name: "    idle: ffmpeg skip_frame=NONKEY",
            idle: Some(full(Discard::NonKey)),
            analyse_fps: Some(5.0),
        },
        Mode {
            name: "    idle: ffmpeg skip_frame=NONREF",
            idle: Some(full(Discard::NonReference)),
            analyse_fps: Some(5.0),
        },
        Mode {
            name: "    skip_loop_filter=ALL, all frames",
            idle: Some(IdlePolicy {
                skip_loop_filter: Discard::All,
                ..full(Discard::Default)
            }),
            analyse_fps: Some(5.0),
        },
    ];
    println!(
        "{:<40} {:>7} {:>8} {:>6} {:>7} {:>7} {:>9} {:>8}",
        "mode", "decoded", "analysed", "events", "CPU s", "wall s", "% core", "x ffmpeg"
    );
    // What the daemon runs on this scene: the idle policy while nothing moves, full
    // decoding at 5 fps analysis once something does.
    let production = if label.contains("still") { 3 } else { 2 };
    for (i, mode) in modes.iter().enumerate() {
        let mut counts = (0, 0, 0);
        // Best of two, against scheduler noise and the 10 ms tick.
        let (cpu, wall) = (0..2)
            .map(|_| measure(|| counts = run_mode(&s, mode)))
            .fold((f64::MAX, f64::MAX), |a, b| (a.0.min(b.0), a.1.min(b.1)));
        println!(
            "{:<40} {:>7} {:>8} {:>6} {:>7.2} {:>7.2} {:>8.1}% {:>8.2}",
            mode.name,
            counts.0,
            counts.1,
            counts.2,
            cpu,
            wall,
            100.0 * cpu / f64::from(SECS),
            cpu / cli
        );
        if i == production {
            println!(
                "BENCH|motion CPU vs ffmpeg decode|{label}, 640x360 {fps} fps, {}|{cpu:.2} CPU s/min|{cli:.2} CPU s/min|{:.2}×|≤ 1.00×",
                mode.name.trim(),
                cpu / cli
            );
        }
    }

    // The detector alone, on frames decoded beforehand.
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let frames: Vec<GrayFrame> = s
        .units
        .iter()
        .filter_map(|u| dec.decode(&u.data, u.is_key, u.pts).expect("decodes"))
        .collect();
    let settings = MotionSettings {
        max_fps: 0.0,
        ..MotionSettings::default()
    };
    let mut det = MotionDetector::new(settings, 160, 90);
    let (cpu, wall) = measure(|| {
        for _ in 0..5 {
            for f in &frames {
                det.analyse(f);
            }
        }
    });
    let n = 5 * frames.len();
    println!(
        "detector alone: {:.0} µs CPU per 160x90 frame ({:.0} µs wall)",
        1e6 * cpu / n as f64,
        1e6 * wall / n as f64
    );
}

#[test]
#[ignore = "benchmark: run by hand in release mode, see the module documentation"]
fn bench_motion() {
    let dir = tempfile::tempdir().expect("temp dir");
    for fps in [10, 25] {
        let moving = format!("testsrc2=size=640x360:rate={fps}");
        bench_file(dir.path(), "testsrc2 (moving)", &moving, fps);
        let still = format!("smptebars=size=640x360:rate={fps},noise=alls=4:allf=t");
        bench_file(dir.path(), "still noisy scene", &still, fps);
    }
}
