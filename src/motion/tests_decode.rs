//! Decoder tests on real H.264 from the `ffmpeg` CLI (libx264), delivered as ingest
//! delivers it: AVCC access units plus a hand-built `avc1` sample entry.

use super::decode::MotionDecoder;
use super::detect::{GrayFrame, MotionDetector, MotionEvent, MotionSettings, PTS_PER_SEC};
use super::testutil::{encode_h264, load_h264, TestStream};
use super::MotionError;

/// 3 s at 10 fps, a keyframe every 10 frames, no B-frames.
fn stream(source: &str) -> TestStream {
    let dir = tempfile::tempdir().expect("temp dir");
    let lavfi = format!("{source}size=640x360:rate=10");
    let path = encode_h264(dir.path(), "x.h264", &lavfi, 3, 10);
    load_h264(&path, 10, 640, 360)
}

fn decode_all(dec: &mut MotionDecoder, s: &TestStream) -> Vec<GrayFrame> {
    s.units
        .iter()
        .filter_map(|u| dec.decode(&u.data, u.is_key, u.pts).expect("decodes"))
        .collect()
}

#[test]
fn decodes_every_access_unit_to_a_small_gray_frame() {
    let s = stream("testsrc2=");
    assert_eq!(s.units.len(), 30);
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let frames = decode_all(&mut dec, &s);
    assert_eq!(frames.len(), 30, "one frame out per access unit in");
    for (f, u) in frames.iter().zip(&s.units) {
        assert_eq!((f.width, f.height, f.pixels.len()), (160, 90, 160 * 90));
        assert_eq!(f.pts, u.pts);
    }
    // testsrc2 is colourful and moving: frames differ and span a wide range.
    assert_ne!(frames[0].pixels, frames[5].pixels);
    let (lo, hi) = frames[0]
        .pixels
        .iter()
        .fold((255, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(hi - lo > 100, "luma range {lo}..{hi}");
}

#[test]
fn solid_gray_decodes_to_flat_mid_gray() {
    let s = stream("color=c=gray:");
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let frames = decode_all(&mut dec, &s);
    assert_eq!(frames.len(), 30);
    for f in &frames {
        assert!(f.pixels.iter().all(|&v| (120..=132).contains(&v)));
    }
}

/// Runs decoder and detector as the camera task will, analysing at 5 fps.
fn motion_events(s: &TestStream) -> Vec<MotionEvent> {
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let mut det = MotionDetector::new(MotionSettings::default(), 160, 90);
    let mut events = Vec::new();
    for u in &s.units {
        if let Some(f) = dec.decode(&u.data, u.is_key, u.pts).expect("decodes") {
            if det.due(f.pts) {
                events.extend(det.analyse(&f).1);
            }
        }
    }
    events.extend(det.finish());
    events
}

#[test]
fn moving_test_pattern_is_motion_and_solid_colour_is_not() {
    let moving = motion_events(&stream("testsrc2="));
    assert!(
        matches!(moving.first(), Some(MotionEvent::Started { .. })),
        "{moving:?}"
    );
    assert_eq!(motion_events(&stream("color=c=gray:")), vec![]);
}

#[test]
fn idle_mode_decodes_keyframes_only_and_resumes_at_the_next_one() {
    let s = stream("testsrc2=");
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    dec.set_idle(true);
    let mut out = Vec::new();
    for (i, u) in s.units.iter().enumerate() {
        if i == 14 {
            dec.set_idle(false); // mid-GOP: frames 14..20 lack references
        }
        if let Some(f) = dec.decode(&u.data, u.is_key, u.pts).expect("decodes") {
            out.push(f.pts / (PTS_PER_SEC / 10));
        }
    }
    let mut want = vec![0, 10];
    want.extend(20..30);
    assert_eq!(out, want);
}

#[test]
fn non_key_frames_before_the_first_keyframe_are_skipped() {
    let s = stream("testsrc2=");
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let out: Vec<_> = s.units[5..]
        .iter()
        .filter_map(|u| dec.decode(&u.data, u.is_key, u.pts).expect("decodes"))
        .collect();
    assert_eq!(out.len(), 20, "frames 10..30");
    assert_eq!(out[0].pts, s.units[10].pts);
}

#[test]
fn a_broken_access_unit_is_an_error_and_decoding_continues() {
    let s = stream("testsrc2=");
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let u = &s.units[0];
    let mut truncated = u.data.clone();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        dec.decode(&truncated, true, 7),
        Err(MotionError::BadAccessUnit { pts: 7, .. })
    ));
    assert_eq!(decode_all(&mut dec, &s).len(), 30);
}

#[test]
fn unusable_sample_entries_are_refused() {
    assert!(matches!(
        MotionDecoder::new(b"not a box", 160),
        Err(MotionError::BadSampleEntry { .. })
    ));
    let mut entry = stream("color=c=gray:").sample_entry;
    entry[4..8].copy_from_slice(b"mp4v");
    assert!(matches!(
        MotionDecoder::new(&entry, 160),
        Err(MotionError::UnsupportedCodec { .. })
    ));
}

#[test]
fn decoder_can_move_to_a_blocking_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<MotionDecoder>();
    assert_send::<MotionDetector>();
}
