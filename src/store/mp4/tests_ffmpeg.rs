//! Real-decoder tests: x264 output recorded through our writer, indexed by our parser and
//! exported moov-first, then checked with ffprobe and ffmpeg. These fail (never skip) when
//! ffmpeg is not installed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::testutil::{encode_test_stream, run_tool, top_level_boxes, write_recording, TestStream};
use super::*;

/// A recording on disk, read through [`ReadAt`] as the store reader will.
struct FileAt(File, u64);

impl FileAt {
    fn open(path: &Path) -> Self {
        let f = File::open(path).unwrap();
        let len = f.metadata().unwrap().len();
        FileAt(f, len)
    }
}

impl ReadAt for FileAt {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn len(&self) -> u64 {
        self.1
    }
}

#[derive(Debug, PartialEq)]
struct Probe {
    codec: String,
    width: u32,
    height: u32,
    frames: usize,
    /// Container duration in seconds, if ffprobe reports one.
    duration: Option<f64>,
}

fn probe(path: &Path) -> Probe {
    let args = [
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,width,height,nb_read_frames:format=duration",
        "-of",
        "default=noprint_wrappers=1",
    ];
    let mut all: Vec<&str> = args.to_vec();
    all.push(path.to_str().unwrap());
    let out = run_tool("ffprobe", &all);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("ffprobe printed no {k}: {text}"))
            .to_owned()
    };
    Probe {
        codec: field("codec_name"),
        width: field("width").parse().unwrap(),
        height: field("height").parse().unwrap(),
        frames: field("nb_read_frames").parse().unwrap(),
        duration: field("duration").parse().ok(),
    }
}

/// Decodes every frame; ffmpeg at `-v error` prints nothing for a clean stream.
fn assert_decodes_cleanly(path: &Path) {
    let out = run_tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    assert!(out.status.success(), "ffmpeg failed on {path:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "decode errors in {path:?}"
    );
}

/// The MD5 of each decoded picture, in order: equal lists mean identical video.
fn frame_hashes(path: &Path) -> Vec<String> {
    let args = [
        "-v",
        "error",
        "-i",
        path.to_str().unwrap(),
        "-f",
        "framemd5",
        "-",
    ];
    let out = run_tool("ffmpeg", &args);
    assert!(out.status.success(), "ffmpeg framemd5 failed on {path:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect()
}

/// Each packet's decode timestamp in 90 kHz units, in order.
fn packet_dts(path: &Path) -> Vec<u64> {
    let args = [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=dts",
        "-of",
        "csv=p=0",
        path.to_str().unwrap(),
    ];
    let out = run_tool("ffprobe", &args);
    assert!(out.status.success(), "ffprobe packets failed on {path:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or_else(|_| panic!("dts {l:?}")))
        .collect()
}

/// Decode times a player must see for `samples` starting at `start`.
fn expected_dts(start: u64, samples: &[Sample]) -> Vec<u64> {
    samples
        .iter()
        .scan(start, |t, s| {
            let now = *t;
            *t += u64::from(s.duration);
            Some(now)
        })
        .collect()
}

/// The test stream as x264 made it: 30 frames, a keyframe every 10; durations jitter like
/// a camera's clock (±10 ticks, summing to exactly 3 s) so that `stts` has several entries.
fn stream(dir: &Path) -> TestStream {
    let mut s = encode_test_stream(dir);
    assert_eq!(s.samples.len(), 30, "x264 frame count");
    let sync: Vec<usize> = (0..30).filter(|&i| s.samples[i].is_sync).collect();
    assert_eq!(sync, [0, 10, 20], "x264 keyframes");
    for (i, sample) in s.samples.iter_mut().enumerate() {
        sample.duration = [9000, 9000, 8990, 9010, 9000][i % 5];
    }
    s
}

fn export(path: &Path, tracks: &[TrackParams], samples: &[SampleRef], sources: &[&Path]) {
    let mp4 = ProgressiveMp4::new(tracks, samples).unwrap();
    let mut readers: Vec<FileAt> = sources.iter().map(|p| FileAt::open(p)).collect();
    let mut read = |source: u32, offset: u64, buf: &mut [u8]| {
        readers[source as usize].read_exact_at(offset, buf)
    };
    let mut out = std::io::BufWriter::new(File::create(path).unwrap());
    mp4.write_to(&mut read, &mut out).unwrap();
    drop(out);
    assert_eq!(std::fs::metadata(path).unwrap().len(), mp4.len());
}

#[test]
fn fragmented_recording_decodes_with_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream(dir.path());
    // Fragments at 4, 13 and 25 start with non-sync samples (the ~2 s cut).
    let (rec, _) = write_recording(&s.track, &s.samples, &[4, 10, 13, 20, 25], 0);
    let path = dir.path().join("rec.mp4");
    std::fs::write(&path, &rec).unwrap();

    let p = probe(&path);
    assert_eq!(
        (p.codec.as_str(), p.width, p.height, p.frames),
        ("h264", 320, 240, 30)
    );
    assert_decodes_cleanly(&path);
    assert_eq!(
        frame_hashes(&path),
        frame_hashes(&dir.path().join("out.h264"))
    );
    assert_eq!(packet_dts(&path), expected_dts(0, &s.samples));

    let idx = parse_fragmented(&mut FileAt::open(&path)).unwrap();
    assert_eq!(idx.track, s.track);
    assert_eq!(idx.samples.len(), 30);
}

#[test]
fn progressive_export_decodes_with_moov_before_mdat() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream(dir.path());
    let (rec, _) = write_recording(&s.track, &s.samples, &[4, 10, 13, 20, 25], 0);
    let rec_path = dir.path().join("rec.mp4");
    std::fs::write(&rec_path, &rec).unwrap();
    let idx = parse_fragmented(&mut FileAt::open(&rec_path)).unwrap();

    let path = dir.path().join("export.mp4");
    export(&path, &[idx.track], &idx.samples, &[&rec_path]);

    assert_eq!(
        top_level_boxes(&std::fs::read(&path).unwrap()),
        ["ftyp", "moov", "mdat"]
    );
    let p = probe(&path);
    assert_eq!(
        (p.codec.as_str(), p.width, p.height, p.frames),
        ("h264", 320, 240, 30)
    );
    assert_eq!(p.duration, Some(3.0));
    assert_decodes_cleanly(&path);
    assert_eq!(
        frame_hashes(&path),
        frame_hashes(&dir.path().join("out.h264"))
    );
    assert_eq!(packet_dts(&path), expected_dts(0, &s.samples));
}

#[test]
fn export_across_two_recordings_decodes_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream(dir.path());
    // Recording A: frames 0..20 (a fragment starting non-sync at 15); B: 20..30 from its
    // own decode time 0, with a non-sync fragment start at 23.
    let (a, _) = write_recording(&s.track, &s.samples[..20], &[5, 10, 15], 0);
    let (b, _) = write_recording(&s.track, &s.samples[20..], &[3], 0);
    let (a_path, b_path) = (dir.path().join("a.mp4"), dir.path().join("b.mp4"));
    std::fs::write(&a_path, &a).unwrap();
    std::fs::write(&b_path, &b).unwrap();
    let a_idx = parse_fragmented(&mut FileAt::open(&a_path)).unwrap();
    let mut b_idx = parse_fragmented(&mut FileAt::open(&b_path)).unwrap();
    b_idx.samples.iter_mut().for_each(|r| r.source = 1);
    let tracks = [a_idx.track.clone(), b_idx.track.clone()];
    let original = frame_hashes(&dir.path().join("out.h264"));

    let whole = dir.path().join("whole.mp4");
    let samples: Vec<SampleRef> = a_idx
        .samples
        .iter()
        .chain(&b_idx.samples)
        .copied()
        .collect();
    export(&whole, &tracks, &samples, &[&a_path, &b_path]);
    let p = probe(&whole);
    assert_eq!(
        (p.codec.as_str(), p.frames, p.duration),
        ("h264", 30, Some(3.0))
    );
    assert_decodes_cleanly(&whole);
    assert_eq!(frame_hashes(&whole), original);
    assert_eq!(
        packet_dts(&whole),
        expected_dts(0, &s.samples),
        "B follows A without a gap"
    );

    // A time span starting at A's second keyframe.
    let span = dir.path().join("span.mp4");
    let samples: Vec<SampleRef> = a_idx.samples[10..]
        .iter()
        .chain(&b_idx.samples)
        .copied()
        .collect();
    export(&span, &tracks, &samples, &[&a_path, &b_path]);
    let p = probe(&span);
    assert_eq!((p.frames, p.duration), (20, Some(2.0)));
    assert_decodes_cleanly(&span);
    assert_eq!(frame_hashes(&span), original[10..]);
    assert_eq!(packet_dts(&span), expected_dts(0, &s.samples[10..]));
}
