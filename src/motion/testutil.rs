//! Test helpers: an `avc1` sample entry built by hand (retina builds it in production),
//! and real H.264 streams from the `ffmpeg` CLI split into AVCC access units, as
//! ingest hands them to the motion task. The Annex B splitting follows
//! `store::mp4::testutil`.

use std::path::Path;
use std::process::Command;

/// A box of type `kind` around `body`.
pub(super) fn wrap_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + body.len());
    b.extend(((8 + body.len()) as u32).to_be_bytes());
    b.extend(kind);
    b.extend(body);
    b
}

/// An `avc1` sample entry with an `avcC` holding one SPS and one PPS.
pub(super) fn avc1_sample_entry(sps: &[u8], pps: &[u8], width: u16, height: u16) -> Vec<u8> {
    // version, profile, compatibility, level, 4-byte lengths, 1 SPS
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    avcc.extend((sps.len() as u16).to_be_bytes());
    avcc.extend(sps);
    avcc.push(1);
    avcc.extend((pps.len() as u16).to_be_bytes());
    avcc.extend(pps);
    if matches!(sps[1], 100 | 110 | 122 | 144) {
        // High profiles: chroma 4:2:0, 8-bit luma and chroma, no SPS extensions.
        avcc.extend([0xFC | 1, 0xF8, 0xF8, 0]);
    }
    let mut body = vec![0; 6]; // reserved
    body.extend(1u16.to_be_bytes()); // data_reference_index
    body.extend([0; 16]); // pre_defined, reserved, pre_defined[3]
    body.extend(width.to_be_bytes());
    body.extend(height.to_be_bytes());
    body.extend(0x0048_0000u32.to_be_bytes()); // 72 dpi
    body.extend(0x0048_0000u32.to_be_bytes());
    body.extend(0u32.to_be_bytes()); // reserved
    body.extend(1u16.to_be_bytes()); // frame_count
    body.extend([0; 32]); // compressorname
    body.extend(0x0018u16.to_be_bytes()); // depth
    body.extend((-1i16).to_be_bytes()); // pre_defined
    body.extend(wrap_box(b"avcC", &avcc));
    wrap_box(b"avc1", &body)
}

/// One access unit as ingest delivers it.
pub(super) struct AccessUnit {
    pub data: Vec<u8>,
    pub is_key: bool,
    pub pts: i64,
}

/// A real H.264 stream as the motion task receives it.
pub(super) struct TestStream {
    pub sample_entry: Vec<u8>,
    pub units: Vec<AccessUnit>,
}

/// Runs a media tool, failing the test with a clear reason if it is not installed.
pub(super) fn run_tool(tool: &str, args: &[&str]) -> std::process::Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("`{tool}` is required by this test (Debian package `ffmpeg`) but could not run: {e}")
    })
}

/// Encodes `lavfi` (a libavfilter source, e.g. `testsrc2=size=640x360:rate=10`) with
/// libx264 for `secs` seconds, a keyframe every `gop` frames exactly (no scene-cut
/// keyframes: cameras keep a fixed GOP) and no B-frames, into `dir`, and returns the
/// Annex B file's path.
pub(super) fn encode_h264(dir: &Path, name: &str, lavfi: &str, secs: u32, gop: u32) -> String {
    let out = dir.join(name);
    let out = out.to_str().expect("temp path is UTF-8").to_owned();
    let (secs, gop) = (secs.to_string(), gop.to_string());
    let args = [
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        lavfi,
        "-t",
        &secs,
        "-c:v",
        "libx264",
        "-g",
        &gop,
        "-bf",
        "0",
        "-sc_threshold",
        "0",
        "-f",
        "h264",
        "-y",
        &out,
    ];
    let res = run_tool("ffmpeg", &args);
    assert!(
        res.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

/// Reads an Annex B file written by [`encode_h264`] at `fps` frames per second.
pub(super) fn load_h264(path: &str, fps: u32, width: u16, height: u16) -> TestStream {
    let annex_b = std::fs::read(path).expect("ffmpeg wrote its output");
    let (sps, pps, units) = annex_b_to_units(&annex_b, 90_000 / i64::from(fps));
    TestStream {
        sample_entry: avc1_sample_entry(&sps, &pps, width, height),
        units,
    }
}

/// NAL units of an Annex B stream, without start codes or trailing zeros.
fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
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

/// Splits into access units and converts each to AVCC. SPS/PPS go to the sample entry
/// (returned), AUDs are dropped, SEI and slices stay.
fn annex_b_to_units(data: &[u8], frame_ticks: i64) -> (Vec<u8>, Vec<u8>, Vec<AccessUnit>) {
    let (mut sps, mut pps) = (None, None);
    let mut groups: Vec<Vec<&[u8]>> = Vec::new();
    let mut has_vcl = false;
    for nal in split_annex_b(data) {
        let t = nal[0] & 0x1F;
        let vcl = (1..=5).contains(&t);
        let first_slice = vcl && nal.get(1).is_some_and(|b| b & 0x80 != 0); // first_mb_in_slice == 0
        let starts_unit = first_slice || matches!(t, 6..=9 | 14..=18);
        if groups.is_empty() || (has_vcl && starts_unit) {
            groups.push(Vec::new());
            has_vcl = false;
        }
        has_vcl |= vcl;
        match t {
            7 => sps = sps.or(Some(nal.to_vec())),
            8 => pps = pps.or(Some(nal.to_vec())),
            9 => {}
            _ => groups.last_mut().expect("pushed above").push(nal),
        }
    }
    let units = groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .enumerate()
        .map(|(i, g)| {
            let mut data = Vec::new();
            for nal in &g {
                data.extend((nal.len() as u32).to_be_bytes());
                data.extend(*nal);
            }
            AccessUnit {
                data,
                is_key: g.iter().any(|n| n[0] & 0x1F == 5),
                pts: i as i64 * frame_ticks,
            }
        })
        .collect();
    (
        sps.expect("stream has an SPS"),
        pps.expect("stream has a PPS"),
        units,
    )
}
