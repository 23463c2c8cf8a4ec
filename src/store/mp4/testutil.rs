//! Test helpers: synthetic tracks, a real H.264 stream from ffmpeg split into AVCC samples,
//! an `avc1` sample entry built by hand (retina builds it in production), box lookup.

use std::path::Path;
use std::process::Command;

use bytes::{BufMut, Bytes};

use super::{fragment, init_segment, Sample, TrackParams};

/// An `avc1` sample entry with an `avcC` holding one SPS and one PPS.
pub(crate) fn avc1_sample_entry(sps: &[u8], pps: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1]; // version, profile, compat, level, 4-byte lengths, 1 SPS
    avcc.put_u16(sps.len() as u16);
    avcc.put_slice(sps);
    avcc.put_u8(1);
    avcc.put_u16(pps.len() as u16);
    avcc.put_slice(pps);
    if matches!(sps[1], 100 | 110 | 122 | 144) {
        // High profiles: chroma 4:2:0, 8-bit luma and chroma, no SPS extensions.
        avcc.put_slice(&[0xFC | 1, 0xF8, 0xF8, 0]);
    }
    let mut e = Vec::new();
    e.put_u32(0); // size, patched
    e.put_slice(b"avc1");
    e.put_bytes(0, 6); // reserved
    e.put_u16(1); // data_reference_index
    e.put_bytes(0, 16); // pre_defined, reserved, pre_defined[3]
    e.put_u16(width);
    e.put_u16(height);
    e.put_u32(0x0048_0000); // 72 dpi
    e.put_u32(0x0048_0000);
    e.put_u32(0); // reserved
    e.put_u16(1); // frame_count
    e.put_bytes(0, 32); // compressorname
    e.put_u16(0x0018); // depth
    e.put_i16(-1); // pre_defined
    e.put_u32(8 + avcc.len() as u32);
    e.put_slice(b"avcC");
    e.put_slice(&avcc);
    let len = e.len() as u32;
    e[..4].copy_from_slice(&len.to_be_bytes());
    e
}

/// A track with a plausible (not decodable) sample entry, for tests without ffmpeg.
pub(crate) fn synthetic_track() -> TrackParams {
    let sps = [0x67, 0x64, 0x00, 0x1E, 0xAC, 0xD9, 0x40];
    TrackParams {
        sample_entry: avc1_sample_entry(&sps, &[0x68, 0xEB, 0xE3, 0xCB], 320, 240),
        width: 320,
        height: 240,
        timescale: 90_000,
    }
}

/// `n` samples with distinct contents and sizes, a sync sample every `gop`.
pub(crate) fn synthetic_samples(n: usize, gop: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            duration: 9000 + (i % 3) as u32,
            is_sync: i % gop == 0,
            data: Bytes::from(vec![i as u8; 10 + i * 7 % 50]),
        })
        .collect()
}

/// A recording of `samples` split into fragments at `cuts` (indices where a fragment
/// starts, after 0). Returns the file and the end offset of the init segment and of each
/// fragment.
pub(crate) fn write_recording(
    track: &TrackParams,
    samples: &[Sample],
    cuts: &[usize],
    base_decode_time: u64,
) -> (Vec<u8>, Vec<usize>) {
    let mut file = init_segment(track).expect("valid track");
    let mut ends = vec![file.len()];
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(samples.len());
    let mut t = base_decode_time;
    for (seq, w) in (1..).zip(bounds.windows(2)) {
        let frag = &samples[w[0]..w[1]];
        file.extend(fragment(seq, t, frag).expect("valid fragment"));
        t += frag.iter().map(|s| u64::from(s.duration)).sum::<u64>();
        ends.push(file.len());
    }
    (file, ends)
}

/// The body of the first box along `path` (each step a child type), if any.
pub(crate) fn find_box<'a>(mut data: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    const FULL_CONTAINERS: &[&[u8; 4]] = &[b"stsd", b"dref"];
    for (depth, want) in path.iter().enumerate() {
        let mut found = None;
        let mut rest = data;
        while rest.len() >= 8 {
            let size = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
            let (size, hdr) = match size {
                1 => (
                    u64::from_be_bytes(rest[8..16].try_into().ok()?) as usize,
                    16,
                ),
                n => (n, 8),
            };
            if size < hdr || size > rest.len() {
                return None;
            }
            if &rest[4..8] == *want {
                found = Some(&rest[hdr..size]);
                break;
            }
            rest = &rest[size..];
        }
        data = found?;
        if depth + 1 < path.len() && FULL_CONTAINERS.contains(want) {
            data = &data[8..]; // version/flags and entry count
        }
    }
    Some(data)
}

/// The types of the top-level boxes, in order (largesize aware; stops at a bad size).
pub(crate) fn top_level_boxes(mut data: &[u8]) -> Vec<String> {
    let mut types = Vec::new();
    while data.len() >= 8 {
        let mut size = u64::from(u32::from_be_bytes(data[..4].try_into().unwrap()));
        if size == 1 && data.len() >= 16 {
            size = u64::from_be_bytes(data[8..16].try_into().unwrap());
        }
        types.push(String::from_utf8_lossy(&data[4..8]).into_owned());
        if size < 8 || size > data.len() as u64 {
            break;
        }
        data = &data[size as usize..];
    }
    types
}

/// Runs a media tool, failing the test with a clear reason if it is not installed.
pub(crate) fn run_tool(tool: &str, args: &[&str]) -> std::process::Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("`{tool}` is required by this test (Debian package `ffmpeg`) but could not run: {e}")
    })
}

/// A real H.264 stream: 320x240, 10 fps, 3 s (30 frames), a keyframe every 10, no B-frames.
pub(crate) struct TestStream {
    pub track: TrackParams,
    /// 90 kHz durations (9000 each).
    pub samples: Vec<Sample>,
}

pub(crate) fn encode_test_stream(dir: &Path) -> TestStream {
    let out = dir.join("out.h264");
    let out_s = out.to_str().expect("temp path is UTF-8");
    let args = [
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=10",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-bf",
        "0",
        "-f",
        "h264",
        "-y",
        out_s,
    ];
    let res = run_tool("ffmpeg", &args);
    assert!(
        res.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let annex_b = std::fs::read(&out).expect("ffmpeg wrote its output");
    let (sps, pps, samples) = annex_b_to_samples(&annex_b);
    TestStream {
        track: TrackParams {
            sample_entry: avc1_sample_entry(&sps, &pps, 320, 240),
            width: 320,
            height: 240,
            timescale: 90_000,
        },
        samples,
    }
}

/// NAL units of an Annex B stream, without start codes or trailing zeros.
pub(crate) fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let starts: Vec<usize> = (0..data.len().saturating_sub(2))
        .filter(|&i| data[i..i + 3] == [0, 0, 1])
        .map(|i| i + 3)
        .collect();
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        nals.push(&data[s..e]);
    }
    nals
}

/// Splits into access units and converts each to an AVCC sample. SPS/PPS go to the sample
/// entry (returned), AUDs are dropped, SEI and slices stay.
fn annex_b_to_samples(data: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<Sample>) {
    let (mut sps, mut pps) = (None, None);
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let mut has_vcl = false;
    for nal in split_annex_b(data) {
        let t = nal[0] & 0x1F;
        let vcl = (1..=5).contains(&t);
        let first_slice = vcl && nal.get(1).is_some_and(|b| b & 0x80 != 0); // first_mb_in_slice == 0
        let starts_unit = first_slice || matches!(t, 6..=9 | 14..=18);
        if units.is_empty() || (has_vcl && starts_unit) {
            units.push(Vec::new());
            has_vcl = false;
        }
        has_vcl |= vcl;
        match t {
            7 => sps = sps.or(Some(nal.to_vec())),
            8 => pps = pps.or(Some(nal.to_vec())),
            9 => {}
            _ => units.last_mut().expect("pushed above").push(nal),
        }
    }
    let samples = units
        .into_iter()
        .filter(|u| !u.is_empty())
        .map(|u| {
            let mut data = Vec::new();
            for nal in &u {
                data.put_u32(nal.len() as u32);
                data.put_slice(nal);
            }
            Sample {
                duration: 9000,
                is_sync: u.iter().any(|n| n[0] & 0x1F == 5),
                data: data.into(),
            }
        })
        .collect();
    (
        sps.expect("stream has an SPS"),
        pps.expect("stream has a PPS"),
        samples,
    )
}
