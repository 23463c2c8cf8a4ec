//! Decoder tests on real H.264 from the `ffmpeg` CLI (libx264), delivered as ingest
//! delivers it: AVCC access units plus a hand-built `avc1` sample entry.

use super::bitstream::VideoCodec;
use super::decode::{MotionDecoder, PictureLimit};
use super::detect::{GrayFrame, MotionDetector, MotionEvent, MotionSettings, PTS_PER_SEC};
use super::testutil::{encode, encode_as, load, Encoding, TestStream};
use super::MotionError;

/// The moving test pattern.
const TESTSRC: &str = "testsrc2=size=640x360:rate=10";
/// A solid colour: nothing moves, nothing changes.
const GRAY: &str = "color=c=gray:size=640x360:rate=10";
/// A camera watching an empty porch: a still scene with sensor noise.
const STILL: &str = "smptebars=size=640x360:rate=10,noise=alls=4:allf=t";

/// 3 s of `lavfi` (640x360, 10 fps), a keyframe every 10 frames, no B-frames.
fn stream(lavfi: &str) -> TestStream {
    stream_of(lavfi, 3)
}

/// `secs` seconds of `lavfi`. Tests of motion events use 6 s: the detector calibrates
/// for up to 3 s at the start of a stream and reports nothing meanwhile.
fn stream_of(lavfi: &str, secs: u32) -> TestStream {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = encode(VideoCodec::H264, dir.path(), "x.h264", lavfi, secs, 10);
    load(VideoCodec::H264, &path, 10, 640, 360)
}

fn decode_all(dec: &mut MotionDecoder, s: &TestStream) -> Vec<GrayFrame> {
    s.units
        .iter()
        .filter_map(|u| dec.decode(&u.data, u.is_key, u.pts).expect("decodes"))
        .collect()
}

#[test]
fn decodes_every_access_unit_to_a_small_gray_frame() {
    let s = stream(TESTSRC);
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

/// Decodes `s` asking only for the pictures `wanted` picks; returns what came out.
fn decode_wanted(
    dec: &mut MotionDecoder,
    s: &TestStream,
    wanted: impl Fn(i64) -> bool,
) -> Vec<GrayFrame> {
    s.units
        .iter()
        .filter_map(|u| {
            dec.decode_for(&u.data, u.is_key, u.pts, &wanted)
                .expect("decodes")
        })
        .collect()
}

/// The pictures handed out are the ones full decoding gives at the same times.
fn assert_same_as_full_decoding(some: &[GrayFrame], every: &[GrayFrame]) {
    for f in some {
        let same = every.iter().find(|e| e.pts == f.pts).expect("same pts");
        assert_eq!(same, f, "picture at {}", f.pts);
    }
}

/// Decodes `s` wanting every third picture (0, 3, …), lazily or not; returns the
/// decoder, those pictures, and every picture of a full decoding to compare with.
fn every_third_picture(
    s: &TestStream,
    lazy: bool,
) -> (MotionDecoder, Vec<GrayFrame>, Vec<GrayFrame>) {
    let every = decode_all(
        &mut MotionDecoder::new(&s.sample_entry, 160).expect("opens"),
        s,
    );
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    dec.set_lazy(lazy);
    let third = s.units[3].pts - s.units[0].pts;
    let some = decode_wanted(&mut dec, s, |pts| (pts - s.units[0].pts) % third == 0);
    (dec, some, every)
}

#[test]
fn eager_decoding_downscales_only_wanted_frames_but_decodes_every_frame() {
    let s = stream(TESTSRC);
    let (dec, some, every) = every_third_picture(&s, false);
    assert_eq!(dec.frames_decoded(), 30, "every unit decoded");
    assert_eq!(some.len(), 10, "every third frame downscaled");
    assert_same_as_full_decoding(&some, &every);
}

#[test]
fn lazy_decoding_skips_only_what_no_wanted_picture_needs_and_changes_no_picture() {
    // 30 units, IDR at 0, 10 and 20; every third picture wanted (0, 3, … 27).
    let s = stream(TESTSRC);
    let (dec, some, every) = every_third_picture(&s, true);
    assert_eq!(some.len(), 10, "the same ten pictures out");
    assert_same_as_full_decoding(&some, &every);
    // The first GOP is decoded as it comes (the decoder has not yet shown it outputs
    // in order). Then unit 19 is dropped at the IDR of unit 20, and 28 and 29 wait
    // for a wanted picture that never comes.
    assert_eq!(
        dec.frames_decoded(),
        27,
        "units 19, 28 and 29 never decoded"
    );
    // The thumbnail's picture is the last wanted one, not a later unit's.
    let mut upto = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    decode_all(
        &mut upto,
        &TestStream {
            sample_entry: s.sample_entry.clone(),
            units: s.units[..28].to_vec(),
        },
    );
    let picture = |d: &MotionDecoder| d.last_picture().expect("a picture").y;
    assert_eq!(picture(&dec), picture(&upto), "unit 27's picture");

    // Nothing wanted after the first picture: the first GOP and the keyframe that
    // closes it (which proves the order) are decoded, then nothing.
    let mut idle_eyes = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let first = decode_wanted(&mut idle_eyes, &s, |pts| pts == s.units[0].pts);
    assert_eq!((first.len(), idle_eyes.frames_decoded()), (1, 11));
    // finish() decodes what still waits, so the last picture is the last unit sent.
    idle_eyes.finish().expect("drains");
    assert_eq!(
        idle_eyes.frames_decoded(),
        21,
        "units 20–29 decoded at the end"
    );
}

#[test]
fn lazy_decoding_defers_nothing_when_pictures_come_out_late() {
    // x264 with B-frames: the decoder holds pictures back and reorders them.
    let dir = tempfile::tempdir().expect("temp dir");
    let two_b = Encoding {
        b_frames: 2,
        ..Encoding::default()
    };
    let path = encode_as(
        VideoCodec::H264,
        dir.path(),
        "b.h264",
        TESTSRC,
        3,
        10,
        two_b,
    );
    let s = load(VideoCodec::H264, &path, 10, 640, 360);
    let third = s.units[3].pts - s.units[0].pts;
    let count = |lazy: bool| {
        let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
        dec.set_lazy(lazy);
        decode_wanted(&mut dec, &s, |pts| (pts - s.units[0].pts) % third == 0);
        dec.finish().expect("drains");
        dec.frames_decoded()
    };
    // (Fewer pictures than units come out either way: load() times units in decoding
    // order, which B-frames break. What matters is that lazy decoding skips none.)
    assert_eq!(count(true), count(false), "lazy decoding skipped units");
}

#[test]
fn solid_gray_decodes_to_flat_mid_gray() {
    let s = stream(GRAY);
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
    let moving = motion_events(&stream_of(TESTSRC, 6));
    assert!(
        matches!(moving.first(), Some(MotionEvent::Started { .. })),
        "{moving:?}"
    );
    assert_eq!(motion_events(&stream(GRAY)), vec![]);
}

#[test]
fn compression_noise_on_a_still_scene_is_not_motion() {
    assert_eq!(motion_events(&stream(STILL)), vec![]);
}

#[test]
fn motion_that_starts_while_idle_is_caught_at_the_next_keyframes() {
    // A gray scene; from 3 s a white box crosses it at 200 px/s, gone by 6.2 s.
    let lavfi = "color=c=gray:size=640x360:rate=10[bg];color=c=white:size=60x60:rate=10[b];\
                 [bg][b]overlay=x='if(gte(t,3),(t-3)*200,-200)':y=100";
    let dir = tempfile::tempdir().expect("temp dir");
    let path = encode(VideoCodec::H264, dir.path(), "box.h264", lavfi, 14, 10);
    let s = load(VideoCodec::H264, &path, 10, 640, 360);
    assert_eq!(s.units.len(), 140);

    // The camera task's loop, as documented in `motion`.
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let mut det = MotionDetector::new(MotionSettings::default(), 160, 90);
    let (mut decoded, mut events) = (0, Vec::new());
    for u in &s.units {
        if let Some(f) = dec.decode(&u.data, u.is_key, u.pts).expect("decodes") {
            decoded += 1;
            if det.due(f.pts) {
                events.extend(det.analyse(&f).1);
            }
        }
        dec.set_idle(det.is_quiet());
    }
    let sec = PTS_PER_SEC;
    assert_eq!(events.len(), 2, "{events:?}");
    // Seen at the keyframe at 3 s, confirmed at the one at 4 s.
    assert_eq!(events[0], MotionEvent::Started { pts: 3 * sec });
    let MotionEvent::Ended {
        pts,
        last_motion_pts,
    } = events[1]
    else {
        panic!("{events:?}");
    };
    assert!((58 * sec / 10..=62 * sec / 10).contains(&last_motion_pts));
    assert_eq!(pts, last_motion_pts + 5 * sec);
    assert!(
        decoded < 90,
        "idle mode skipped the quiet stretches: {decoded} of 140"
    );
    assert!(dec.is_idle(), "back to idle after the event");
}

#[test]
fn idle_mode_decodes_keyframes_only_and_resumes_at_the_next_one() {
    let s = stream(TESTSRC);
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
    let s = stream(TESTSRC);
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
    let s = stream(TESTSRC);
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
fn garbage_inside_nal_units_never_panics_and_the_next_keyframe_recovers() {
    let s = stream(TESTSRC);
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let mut seed = 1u32;
    for u in &s.units[..10] {
        let mut data = u.data.clone();
        for b in data.iter_mut().skip(6) {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b ^= (seed >> 24) as u8;
        }
        let _ = dec.decode(&data, u.is_key, u.pts); // Ok or Err, never a panic
    }
    let good: Vec<_> = s.units[10..]
        .iter()
        .filter_map(|u| dec.decode(&u.data, u.is_key, u.pts).ok().flatten())
        .collect();
    assert_eq!(good.len(), 20);
}

#[test]
fn a_lost_slice_makes_the_decoder_wait_for_the_next_keyframe() {
    let s = stream(TESTSRC);
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    let mut out = Vec::new();
    for (i, u) in s.units.iter().enumerate() {
        let mut data = u.data.clone();
        if i == 4 {
            // Cut the frame's last NAL unit (its slice) to a third, as a lost RTP
            // packet would, and fix its length prefix.
            let mut at = 0;
            let mut last = 0;
            while at + 4 <= data.len() {
                last = at;
                let len = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"));
                at += 4 + len as usize;
            }
            let keep = (data.len() - last - 4) / 3;
            data.truncate(last + 4 + keep);
            data[last..last + 4].copy_from_slice(&(keep as u32).to_be_bytes());
        }
        if let Some(f) = dec.decode(&data, u.is_key, u.pts).ok().flatten() {
            out.push(f.pts / (PTS_PER_SEC / 10));
        }
    }
    let mut want = vec![0, 1, 2, 3];
    want.extend(10..30);
    assert_eq!(out, want);
}

#[test]
fn h265_streams_decode_and_show_motion() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = encode(VideoCodec::H265, dir.path(), "x.hevc", TESTSRC, 6, 10);
    let s = load(VideoCodec::H265, &path, 10, 640, 360);
    assert_eq!(s.units.len(), 60);
    assert_eq!(s.units.iter().filter(|u| u.is_key).count(), 6);
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    assert_eq!(dec.codec(), VideoCodec::H265);
    let frames = decode_all(&mut dec, &s);
    assert_eq!(frames.len(), 60);
    assert!(frames.iter().all(|f| (f.width, f.height) == (160, 90)));
    let events = motion_events(&s);
    assert!(
        matches!(events.first(), Some(MotionEvent::Started { .. })),
        "{events:?}"
    );
}

#[test]
fn unusable_sample_entries_are_refused() {
    assert!(matches!(
        MotionDecoder::new(b"not a box", 160),
        Err(MotionError::BadSampleEntry { .. })
    ));
    let mut entry = stream(GRAY).sample_entry;
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

#[test]
fn the_last_picture_survives_the_decoders_empty_calls_and_makes_a_thumbnail() {
    let s = stream(TESTSRC);
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("opens");
    assert!(dec.last_picture().is_none(), "nothing decoded yet");
    decode_all(&mut dec, &s);
    let picture = dec
        .last_picture()
        .expect("the last decoded picture is kept");
    assert_eq!((picture.width, picture.height), (640, 360));
    assert_eq!(picture.y.len(), 640 * 360);
    assert_eq!((picture.u.len(), picture.v.len()), (320 * 180, 320 * 180));
    let jpeg = super::thumbnail::jpeg_thumbnail(&picture, 320).expect("thumbnail");
    assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
}

/// Width and height from a baseline JPEG's SOF0 segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    let at = jpeg.windows(2).position(|w| w == [0xff, 0xc0])?;
    let b = jpeg.get(at + 5..at + 9)?;
    Some((
        u16::from_be_bytes([b[2], b[3]]),
        u16::from_be_bytes([b[0], b[1]]),
    ))
}

#[test]
fn a_snapshot_is_one_keyframe_decoded_alone_as_a_full_size_jpeg() {
    let s = stream(TESTSRC);
    let keys: Vec<_> = s.units.iter().filter(|u| u.is_key).collect();
    assert!(keys.len() >= 2, "a keyframe every 10 frames");
    let first = super::snapshot::keyframe_jpeg(
        &s.sample_entry,
        &keys[0].data,
        0,
        super::snapshot::MAX_WIDTH,
    )
    .expect("jpeg");
    let second = super::snapshot::keyframe_jpeg(
        &s.sample_entry,
        &keys[1].data,
        0,
        super::snapshot::MAX_WIDTH,
    )
    .expect("jpeg");
    assert_eq!(&first[..2], &[0xff, 0xd8]);
    assert_eq!(
        jpeg_size(&first),
        Some((640, 360)),
        "full size under 1920 px"
    );
    assert_ne!(first, second, "the pattern moves between keyframes");
    // Garbage is an error, never a picture.
}

/// One keyframe (1 s at 1 fps) of a gray `width`x`height` picture whose sample entry
/// claims 64x64: what a camera sends when its in-band SPS disagrees with the SDP.
fn lying_keyframe(width: u32, height: u32) -> TestStream {
    let dir = tempfile::tempdir().expect("temp dir");
    let lavfi = format!("color=c=gray:size={width}x{height}:rate=1");
    let path = encode(VideoCodec::H264, dir.path(), "big.h264", &lavfi, 1, 1);
    load(VideoCodec::H264, &path, 1, 64, 64)
}

#[test]
fn stream_declared_larger_than_the_limit_is_refused_before_decoding() {
    let s = stream(GRAY);
    let mut entry = s.sample_entry.clone();
    // The VisualSampleEntry's width (box header 8, then 24 bytes of other fields).
    entry[32..34].copy_from_slice(&4160u16.to_be_bytes());
    match MotionDecoder::new(&entry, 160) {
        Err(MotionError::TooLarge { width: 4160, .. }) => {}
        Err(other) => panic!("expected TooLarge, got {other:?}"),
        Ok(_) => panic!("a 4160 px wide stream was accepted"),
    }
    MotionDecoder::with_limit(&entry, 160, PictureLimit::SNAPSHOT).expect("a snapshot may");
}

#[test]
fn picture_taller_than_the_limit_is_an_error_not_a_picture() {
    let s = lying_keyframe(64, 2400);
    let key = s.units.first().expect("a keyframe");
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("decoder");
    let mut result = dec.decode(&key.data, true, key.pts);
    if matches!(result, Ok(None)) {
        result = dec.finish().map(|()| None);
    }
    assert!(
        matches!(result, Err(MotionError::TooLarge { height: 2400, .. })),
        "{result:?}"
    );
    assert!(dec.last_picture().is_none(), "no 64x2400 picture kept");
}

#[test]
fn picture_over_the_pixel_limit_is_refused_by_ffmpeg_before_it_allocates() {
    // 4160x2304 is more pixels than 4096x2304: FFmpeg's max_pixels refuses it while
    // reading the SPS, so no picture comes out for the side check to see.
    let s = lying_keyframe(4160, 2304);
    let key = s.units.first().expect("a keyframe");
    let mut dec = MotionDecoder::new(&s.sample_entry, 160).expect("decoder");
    let result = dec.decode(&key.data, true, key.pts);
    assert!(
        !matches!(result, Ok(Some(_)) | Err(MotionError::TooLarge { .. })),
        "FFmpeg decoded it: {result:?}"
    );
    let _ = dec.finish();
    assert!(dec.last_picture().is_none(), "no 4160x2304 picture");
}

#[test]
fn snapshot_allows_larger_pictures_but_not_without_bound() {
    let tall = lying_keyframe(64, 2400);
    let key = tall.units.first().expect("a keyframe");
    super::snapshot::keyframe_jpeg(&tall.sample_entry, &key.data, key.pts, 320)
        .expect("64x2400 is within the snapshot limit");
    let taller = lying_keyframe(64, 4400);
    let key = taller.units.first().expect("a keyframe");
    let result = super::snapshot::keyframe_jpeg(&taller.sample_entry, &key.data, key.pts, 320);
    assert!(
        matches!(result, Err(MotionError::TooLarge { height: 4400, .. })),
        "{result:?}"
    );
}
