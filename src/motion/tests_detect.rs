//! Detector tests on synthetic 160x90 frames at 5 fps: a textured static scene,
//! optionally noisy, with squares moving across it and lights switching.

use super::detect::*;
use super::zones::Zone;

const W: u32 = 160;
const H: u32 = 90;
const TICK: i64 = PTS_PER_SEC / 5;

/// A textured scene: a horizontal ramp with stripes, so that the contrast stretch has
/// something to work on.
fn scene() -> Vec<u8> {
    let mut p = Vec::with_capacity((W * H) as usize);
    for y in 0..H {
        for x in 0..W {
            p.push((50 + x * 100 / W + ((y / 10) % 2) * 20) as u8);
        }
    }
    p
}

/// Deterministic noise of amplitude `amp` (xorshift), like a sensor's.
fn add_noise(p: &mut [u8], amp: i32, seed: &mut u32) {
    for v in p {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        let n = (*seed % (2 * amp as u32 + 1)) as i32 - amp;
        *v = (i32::from(*v) + n).clamp(0, 255) as u8;
    }
}

fn square(p: &mut [u8], x0: u32, y0: u32, size: u32, value: u8) {
    for y in y0..(y0 + size).min(H) {
        for x in x0..(x0 + size).min(W) {
            p[(y * W + x) as usize] = value;
        }
    }
}

fn frame(pixels: Vec<u8>, n: usize) -> GrayFrame {
    GrayFrame {
        width: W,
        height: H,
        pixels,
        pts: n as i64 * TICK,
    }
}

/// The frames of a scene where a bright 12x12 square crosses the picture during
/// frames `from..to`, 4 px a frame, along row `y`.
fn crossing(n: usize, from: usize, to: usize, y: u32, noise: i32) -> Vec<GrayFrame> {
    let mut seed = 12345;
    (0..n)
        .map(|i| {
            let mut p = scene();
            if (from..to).contains(&i) {
                square(&mut p, 10 + 4 * (i - from) as u32, y, 12, 230);
            }
            if noise > 0 {
                add_noise(&mut p, noise, &mut seed);
            }
            frame(p, i)
        })
        .collect()
}

struct Run {
    analyses: Vec<Analysis>,
    /// (frame index, event)
    events: Vec<(usize, MotionEvent)>,
}

fn run(settings: MotionSettings, frames: &[GrayFrame]) -> (Run, MotionDetector) {
    let mut d = MotionDetector::new(settings, W, H);
    let mut r = Run {
        analyses: Vec::new(),
        events: Vec::new(),
    };
    for (i, f) in frames.iter().enumerate() {
        let (a, ev) = d.analyse(f);
        r.analyses.push(a);
        if let Some(ev) = ev {
            r.events.push((i, ev));
        }
    }
    (r, d)
}

fn active_count(r: &Run) -> usize {
    r.analyses.iter().filter(|a| a.active).count()
}

#[test]
fn static_scene_is_never_active() {
    let frames: Vec<_> = (0..150).map(|i| frame(scene(), i)).collect();
    let (r, d) = run(MotionSettings::default(), &frames);
    assert_eq!(active_count(&r), 0);
    assert!(r.events.is_empty());
    assert!(r.analyses[1..].iter().all(|a| a.score == 0.0));
    assert!(d.is_quiet());
}

#[test]
fn sensor_noise_is_not_motion() {
    let frames = crossing(150, 0, 0, 0, 8);
    let (r, _) = run(MotionSettings::default(), &frames);
    assert_eq!(
        active_count(&r),
        0,
        "{:?}",
        r.analyses.iter().map(|a| a.score)
    );
}

#[test]
fn moving_square_starts_then_ends_after_quiet_secs() {
    // Static for 2 s, a square crosses for 4 s, then static for 8 s.
    let frames = crossing(70, 10, 30, 40, 3);
    let (r, d) = run(MotionSettings::default(), &frames);
    assert!(r.analyses[10..30].iter().all(|a| a.active));
    assert_eq!(
        r.events,
        vec![
            (11, MotionEvent::Started { pts: 10 * TICK }),
            (
                54,
                MotionEvent::Ended {
                    pts: 54 * TICK,
                    last_motion_pts: 29 * TICK
                }
            ),
        ]
    );
    let best = d.best_frame().expect("an event had a best frame");
    assert!((10 * TICK..30 * TICK).contains(&best.frame.pts));
    let best_score = r.analyses[(best.frame.pts / TICK) as usize].score;
    assert_eq!(best.score, best_score);
    assert!(r.analyses[10..30].iter().all(|a| a.score <= best_score));
    assert!(best_score > 0.005, "12x12 of 160x90 is ~1 %: {best_score}");
}

#[test]
fn quiet_secs_and_start_frames_are_honoured() {
    let settings = MotionSettings {
        start_frames: 4,
        quiet_secs: 2.0,
        ..MotionSettings::default()
    };
    let (r, _) = run(settings, &crossing(60, 10, 30, 40, 0));
    assert_eq!(
        r.events.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![13, 39]
    );
}

#[test]
fn single_active_frame_does_not_start_an_event() {
    let mut frames: Vec<_> = (0..40).map(|i| frame(scene(), i)).collect();
    square(&mut frames[20].pixels, 50, 40, 12, 230);
    let (r, _) = run(MotionSettings::default(), &frames);
    assert_eq!(active_count(&r), 1);
    assert!(r.events.is_empty());
}

#[test]
fn square_inside_a_mask_zone_is_ignored() {
    let frames = crossing(70, 10, 30, 40, 3);
    let rect = Zone::Rect {
        x0: 0.0,
        y0: 0.35,
        x1: 1.0,
        y1: 0.65,
    };
    let triangle = Zone::Polygon(vec![(0.0, 0.2), (1.5, 0.45), (0.0, 1.0)]);
    for zone in [rect, triangle] {
        let masked = MotionSettings {
            zones: vec![zone.clone()],
            ..MotionSettings::default()
        };
        let (r, _) = run(masked, &frames);
        assert_eq!(active_count(&r), 0, "{zone:?}");
        assert!(r.events.is_empty(), "{zone:?}");
    }
    // The same square outside the zone is seen.
    let elsewhere = MotionSettings {
        zones: vec![Zone::Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 1.0,
            y1: 0.3,
        }],
        ..MotionSettings::default()
    };
    assert_eq!(run(elsewhere, &frames).0.events.len(), 2);
}

/// Lights change at frame 20 (`change` maps the whole picture); a square crosses from
/// frame `20 + after`.
fn relit(change: &dyn Fn(&[u8]) -> Vec<u8>, after: usize) -> Vec<GrayFrame> {
    (0..100)
        .map(|i| {
            let mut p = scene();
            if (20 + after..20 + after + 15).contains(&i) {
                square(&mut p, 10 + 4 * (i - 20 - after) as u32, 40, 12, 230);
            }
            if i >= 20 {
                p = change(&p);
            }
            frame(p, i)
        })
        .collect()
}

fn per_pixel(f: impl Fn(u32, u8) -> u8) -> impl Fn(&[u8]) -> Vec<u8> {
    move |p: &[u8]| {
        p.iter()
            .enumerate()
            .map(|(i, &v)| f(i as u32 % W, v))
            .collect()
    }
}

#[test]
fn global_light_changes_are_not_motion_and_motion_after_them_is() {
    type Relight = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let changes: [(&str, Relight); 4] = [
        (
            "lights on",
            Box::new(per_pixel(|_, v| v.saturating_add(60))),
        ),
        ("lights off", Box::new(per_pixel(|_, v| v / 2))),
        // A lamp at the left: +100 there, +20 at the right edge.
        (
            "lamp",
            Box::new(per_pixel(|x, v| v.saturating_add((100 - x * 80 / W) as u8))),
        ),
        // IR switch: the same overall brightness, the shading of the scene changed
        // (here: mirrored, so the left brightens as much as the right darkens).
        (
            "ir switch",
            Box::new(|p: &[u8]| {
                p.chunks(W as usize)
                    .flat_map(|row| row.iter().rev().copied())
                    .collect()
            }),
        ),
    ];
    for (name, change) in &changes {
        let (r, _) = run(MotionSettings::default(), &relit(change, 1000));
        assert!(r.analyses[20].light_change, "{name}: {:?}", r.analyses[20]);
        assert!(r.events.is_empty(), "{name}: {:?}", r.events);

        // After 3 s of calibration in the new light, a crossing square is motion.
        let (r, _) = run(MotionSettings::default(), &relit(change, 15));
        assert!(
            matches!(r.events.first(), Some((_, MotionEvent::Started { pts })) if *pts == 35 * TICK),
            "{name}: {:?}",
            r.events
        );
    }
}

#[test]
fn scattered_specks_are_not_motion() {
    // Light rain, snow or compression speckle: 0.5 % of the pixels flash at random.
    let mut seed = 99u32;
    let frames: Vec<_> = (0..50)
        .map(|i| {
            let mut p = scene();
            if i >= 10 {
                for _ in 0..72 {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    p[(seed % (W * H)) as usize] = 255;
                }
            }
            frame(p, i)
        })
        .collect();
    let (r, _) = run(MotionSettings::default(), &frames);
    assert!(r.events.is_empty(), "{:?}", r.events);
}

#[test]
fn noise_in_a_dark_featureless_scene_is_not_motion() {
    // Night, nothing lit: the contrast stretch must not blow the noise up to motion.
    let mut seed = 7u32;
    let frames: Vec<_> = (0..100)
        .map(|i| {
            let mut p = vec![20u8; (W * H) as usize];
            add_noise(&mut p, 3, &mut seed);
            frame(p, i)
        })
        .collect();
    let (r, _) = run(MotionSettings::default(), &frames);
    assert_eq!(active_count(&r), 0);
}

#[test]
fn sensitivity_orders_threshold_and_area() {
    let at = |sensitivity| MotionSettings {
        sensitivity,
        ..MotionSettings::default()
    };
    for s in 1..100 {
        assert!(at(s).pixel_threshold() >= at(s + 1).pixel_threshold());
        assert!(at(s).min_area() > at(s + 1).min_area());
    }
    assert_eq!(
        (
            at(1).pixel_threshold(),
            at(50).pixel_threshold(),
            at(100).pixel_threshold()
        ),
        (50, 30, 10)
    );
    // Out-of-range values are clamped, not trusted.
    assert_eq!(at(0).pixel_threshold(), at(1).pixel_threshold());
    assert_eq!(at(255).min_area(), at(100).min_area());
}

#[test]
fn higher_sensitivity_sees_fainter_and_smaller_changes() {
    // Squares of rising size and contrast, each crossing for 2 s.
    let frames: Vec<_> = (0..200)
        .map(|i| {
            let mut p = scene();
            let (k, t) = (i / 20, i % 20);
            if i >= 20 && t < 10 {
                let size = 3 + k as u32;
                let value = (100 + 6 * k) as u8;
                square(&mut p, 10 + 8 * t as u32, 40, size, value);
            }
            frame(p, i)
        })
        .collect();
    let counts: Vec<usize> = [1, 25, 50, 75, 100]
        .iter()
        .map(|&sensitivity| {
            let s = MotionSettings {
                sensitivity,
                ..MotionSettings::default()
            };
            active_count(&run(s, &frames).0)
        })
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(counts[0] < counts[4], "{counts:?}");
}

#[test]
fn a_parked_object_becomes_background() {
    // A square arrives and stays: motion, then the background absorbs it.
    let frames: Vec<_> = (0..600)
        .map(|i| {
            let mut p = scene();
            if i >= 10 {
                square(&mut p, 60.min(10 + 4 * (i as u32 - 10)), 40, 12, 230);
            }
            frame(p, i)
        })
        .collect();
    let (r, d) = run(MotionSettings::default(), &frames);
    assert!(matches!(r.events[0], (11, MotionEvent::Started { .. })));
    assert!(
        matches!(r.events.get(1), Some((_, MotionEvent::Ended { .. }))),
        "{:?}",
        r.events
    );
    assert_eq!(r.events.len(), 2);
    assert!(d.is_quiet());
}

#[test]
fn due_thins_25_fps_to_5() {
    let mut d = MotionDetector::new(MotionSettings::default(), W, H);
    let step = PTS_PER_SEC / 25;
    let mut analysed = 0;
    for i in 0..250 {
        let pts = i * step;
        if d.due(pts) {
            let mut f = frame(scene(), 0);
            f.pts = pts;
            d.analyse(&f);
            analysed += 1;
        }
    }
    assert_eq!(analysed, 50);
    let every = MotionSettings {
        max_fps: 0.0,
        ..MotionSettings::default()
    };
    assert!(MotionDetector::new(every, W, H).due(0));
}

#[test]
fn is_quiet_and_finish_follow_the_event() {
    let frames = crossing(20, 5, 20, 40, 0);
    let mut d = MotionDetector::new(MotionSettings::default(), W, H);
    assert!(d.is_quiet());
    for f in &frames {
        d.analyse(f);
    }
    assert!(d.in_event() && !d.is_quiet());
    assert_eq!(
        d.finish(),
        Some(MotionEvent::Ended {
            pts: 19 * TICK,
            last_motion_pts: 19 * TICK
        })
    );
    assert_eq!(d.finish(), None);
}

#[test]
fn odd_frames_do_not_panic() {
    let mut d = MotionDetector::new(MotionSettings::default(), W, H);
    let bad = GrayFrame {
        width: W,
        height: H,
        pixels: vec![0; 10],
        pts: 0,
    };
    assert!(!d.analyse(&bad).0.active);
    for (w, h) in [(1, 1), (3, 2), (320, 180), (0, 0)] {
        let f = GrayFrame {
            width: w,
            height: h,
            pixels: vec![77; (w * h) as usize],
            pts: 1,
        };
        assert!(!d.analyse(&f).0.active);
    }
    // The whole picture masked: nothing can be active.
    let all = MotionSettings {
        zones: vec![Zone::Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 1.0,
            y1: 1.0,
        }],
        ..MotionSettings::default()
    };
    let (r, _) = run(all, &crossing(40, 5, 30, 40, 0));
    assert_eq!(active_count(&r), 0);
}

#[test]
fn pts_going_backwards_does_not_wedge_an_event() {
    let mut frames = crossing(20, 5, 20, 40, 0);
    // The clock restarts while the event is open, then the scene stays still.
    frames.extend((0..40).map(|i| frame(scene(), i)));
    let (r, _) = run(MotionSettings::default(), &frames);
    assert!(matches!(
        r.events.last(),
        Some((_, MotionEvent::Ended { .. }))
    ));
}

#[test]
fn settings_validation_names_the_problem() {
    assert!(MotionSettings::default().validate().is_ok());
    let bad = [
        MotionSettings {
            sensitivity: 0,
            ..MotionSettings::default()
        },
        MotionSettings {
            quiet_secs: f32::NAN,
            ..MotionSettings::default()
        },
        MotionSettings {
            start_frames: 0,
            ..MotionSettings::default()
        },
        MotionSettings {
            zones: vec![Zone::Polygon(vec![(0.0, 0.0)])],
            ..MotionSettings::default()
        },
    ];
    for s in bad {
        assert!(s.validate().is_err(), "{s:?}");
    }
}

#[test]
fn an_object_that_comes_to_rest_stops_being_motion_at_once() {
    // A square moves for 3 s (frames 10..25) and stops at a new place. It still
    // differs from the background for ~20 s, but nothing moves: the last active
    // frame is the last one in which it moved, so the event ends quiet_secs later.
    let frames: Vec<_> = (0..80)
        .map(|i| {
            let mut p = scene();
            if i >= 10 {
                square(&mut p, 10 + 4 * (i.min(25) as u32 - 10), 40, 12, 230);
            }
            frame(p, i)
        })
        .collect();
    let (r, _) = run(MotionSettings::default(), &frames);
    let last_active = r
        .analyses
        .iter()
        .rposition(|a| a.active)
        .expect("some motion");
    assert!(
        (24..=26).contains(&last_active),
        "last active frame {last_active}"
    );
    assert!(
        r.analyses[30..].iter().all(|a| a.score > 0.0),
        "the square still differs from the background"
    );
    assert!(
        matches!(r.events.last(), Some((_, MotionEvent::Ended { last_motion_pts, .. })) if *last_motion_pts <= 26 * TICK),
        "{:?}",
        r.events
    );
}
