//! What skipping the deblocking filter outside idle mode would do to detection: the
//! evidence behind [`decode`](super::decode)'s choice to keep it. Printed, never
//! asserted; run by hand in release mode (a few minutes, mostly encoding):
//!
//! ```text
//! cargo test --release --lib deblocking_drift -- --ignored --nocapture
//! ```
//!
//! Thirteen 60 s scenes (libx264, no B-frames, fixed GOPs of 1 to 10 s, quality down to
//! CRF 36): bright and dark still scenes with sensor noise, where every active frame
//! and event is false, and moving ones. Each is decoded twice, as the daemon decodes
//! while analysing and with `skip_loop_filter = ALL`; the lines give how far the 160 px
//! frames drift apart and what the detector makes of each at several sensitivities.

use std::path::Path;

use ffmpeg_next::Discard;

use super::bitstream::VideoCodec;
use super::decode::{IdlePolicy, MotionDecoder};
use super::detect::{GrayFrame, MotionDetector, MotionEvent, MotionSettings};
use super::testutil::{encode_as, load, Encoding, TestStream};

const SECS: u32 = 60;

struct Scene {
    name: &'static str,
    /// libavfilter source, at `fps`.
    lavfi: &'static str,
    fps: u32,
    gop_secs: u32,
    crf: u32,
    still: bool,
}

const fn scene(
    name: &'static str,
    lavfi: &'static str,
    fps: u32,
    gop_secs: u32,
    crf: u32,
) -> Scene {
    Scene {
        name,
        lavfi,
        fps,
        gop_secs,
        crf,
        still: true,
    }
}

const fn moving(scene: Scene) -> Scene {
    Scene {
        still: false,
        ..scene
    }
}

const BARS: &str = "smptebars=size=640x360";
const SCENES: [Scene; 13] = [
    scene("bars, noise 4", BARS, 25, 1, 23),
    // Short GOPs do not make skipping safe in the dark (see `decode`).
    scene("night bars, noise 5", BARS, 25, 1, 32),
    scene("night bars, noise 8", BARS, 15, 1, 36),
    scene("bars, noise 4", BARS, 25, 10, 23),
    scene("bars, noise 8", BARS, 10, 10, 28),
    scene("bars, noise 12", BARS, 15, 10, 30),
    scene("bars, noise 20", BARS, 25, 10, 35),
    scene("night bars, noise 5", BARS, 25, 10, 32),
    scene("night bars, noise 8", BARS, 15, 10, 36),
    scene("dusk pattern, noise 6", "testsrc=size=640x360", 10, 10, 30),
    moving(scene("testsrc2", "testsrc2=size=640x360", 10, 1, 23)),
    moving(scene("testsrc2", "testsrc2=size=640x360", 25, 10, 23)),
    moving(scene(
        "mandelbrot zoom",
        "mandelbrot=size=640x360",
        25,
        10,
        30,
    )),
];

/// The scene's full filter graph: the source at its rate, darkened and noised.
fn filter(s: &Scene) -> String {
    let source = format!("{}:rate={}", s.lavfi, s.fps);
    match s.name {
        "night bars, noise 5" => {
            format!("{source},eq=contrast=0.12:brightness=-0.35,noise=alls=5:allf=t")
        }
        "night bars, noise 8" => {
            format!("{source},eq=contrast=0.1:brightness=-0.3,noise=alls=8:allf=t")
        }
        "dusk pattern, noise 6" => format!(
            "{source},hue=s=0,eq=contrast=0.2:brightness=-0.2,select=lt(n\\,1),loop=-1:1:0,noise=alls=6:allf=t"
        ),
        _ if s.still => {
            let amount = s.name.rsplit(' ').next().unwrap_or("4");
            format!("{source},noise=alls={amount}:allf=t")
        }
        _ => source,
    }
}

fn encode(dir: &Path, i: usize, s: &Scene) -> TestStream {
    let (name, gop) = (format!("{i}.h264"), s.fps * s.gop_secs);
    let lavfi = filter(s);
    let path = encode_as(
        VideoCodec::H264,
        dir,
        &name,
        &lavfi,
        SECS,
        gop,
        Encoding {
            crf: Some(s.crf),
            ..Encoding::default()
        },
    );
    load(VideoCodec::H264, &path, s.fps, 640, 360)
}

fn decode(s: &TestStream, deblock: bool) -> Vec<GrayFrame> {
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    if !deblock {
        // Idle mode with this policy decodes every frame, only without deblocking.
        dec.set_idle_policy(IdlePolicy {
            drop_non_key: false,
            skip_frame: Discard::Default,
            skip_loop_filter: Discard::All,
        });
        dec.set_idle(true);
    }
    s.units
        .iter()
        .filter_map(|u| dec.decode(&u.data, u.is_key, u.pts).expect("decodes"))
        .collect()
}

/// (active frames, events) of the detector over `frames`.
fn detect(frames: &[GrayFrame], sensitivity: u8, max_fps: f32) -> (usize, usize) {
    let settings = MotionSettings {
        sensitivity,
        max_fps,
        ..MotionSettings::default()
    };
    let mut det = MotionDetector::new(settings, 160, 90);
    let (mut active, mut events) = (0, 0);
    for f in frames {
        if !det.due(f.pts) {
            continue;
        }
        let (analysis, event) = det.analyse(f);
        active += usize::from(analysis.active);
        events += usize::from(matches!(event, Some(MotionEvent::Started { .. })));
    }
    (active, events)
}

/// Mean and largest per-pixel difference between two decodings, worst frame's mean.
fn drift(a: &[GrayFrame], b: &[GrayFrame]) -> (f64, f64, u8) {
    let (mut total, mut worst_mean, mut largest) = (0.0, 0.0f64, 0u8);
    for (fa, fb) in a.iter().zip(b) {
        let diffs = fa
            .pixels
            .iter()
            .zip(&fb.pixels)
            .map(|(x, y)| x.abs_diff(*y));
        let (sum, max) = diffs.fold((0u64, 0u8), |(s, m), d| (s + u64::from(d), m.max(d)));
        let mean = sum as f64 / fa.pixels.len().max(1) as f64;
        total += mean;
        worst_mean = worst_mean.max(mean);
        largest = largest.max(max);
    }
    (total / a.len().max(1) as f64, worst_mean, largest)
}

const SENSITIVITIES: [u8; 3] = [50, 80, 100];
/// Analysis rates: every frame (0), and the daemon's default.
const RATES: [f32; 2] = [0.0, 5.0];

fn rate_name(rate: f32) -> String {
    if rate == 0.0 {
        "every frame".to_owned()
    } else {
        format!("{rate} fps")
    }
}

#[test]
#[ignore = "benchmark: run by hand in release mode, see the module documentation"]
fn deblocking_drift() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Over the still scenes, per sensitivity and rate: false (active frames, events)
    // with deblocking, then without.
    let mut false_totals = [[[(0, 0); 2]; RATES.len()]; SENSITIVITIES.len()];
    for (i, s) in SCENES.iter().enumerate() {
        let stream = encode(dir.path(), i, s);
        let (with, without) = (decode(&stream, true), decode(&stream, false));
        let (mean, worst, largest) = drift(&with, &without);
        println!(
            "\n## {}, {} fps, GOP {} s, CRF {}: without deblocking the 160 px frames are \
             {mean:.2} levels off on average (worst frame {worst:.2}, one pixel {largest})",
            s.name, s.fps, s.gop_secs, s.crf
        );
        for (si, &sensitivity) in SENSITIVITIES.iter().enumerate() {
            for (ri, &rate) in RATES.iter().enumerate() {
                let counts = [
                    detect(&with, sensitivity, rate),
                    detect(&without, sensitivity, rate),
                ];
                println!(
                    "sensitivity {sensitivity:>3}, {:>11}: active frames, events {:>4} {:>2} \
                     deblocked, {:>4} {:>2} not",
                    rate_name(rate),
                    counts[0].0,
                    counts[0].1,
                    counts[1].0,
                    counts[1].1
                );
                if s.still {
                    for (total, (active, events)) in false_totals[si][ri].iter_mut().zip(counts) {
                        *total = (total.0 + active, total.1 + events);
                    }
                }
            }
        }
    }
    let stills = SCENES.iter().filter(|s| s.still).count();
    println!("\n## All {stills} still scenes: false active frames and events");
    for (si, &sensitivity) in SENSITIVITIES.iter().enumerate() {
        for (ri, &rate) in RATES.iter().enumerate() {
            let [with, without] = false_totals[si][ri];
            println!(
                "sensitivity {sensitivity:>3}, {:>11}: {} and {} deblocked, {} and {} not",
                rate_name(rate),
                with.0,
                with.1,
                without.0,
                without.1
            );
        }
    }
}
