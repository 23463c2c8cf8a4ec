//! Test helpers: `avc1`/`hvc1` sample entries built by hand (retina builds them in
//! production), and real H.264/H.265 streams from the `ffmpeg` CLI split into AVCC
//! access units, as ingest hands them to the motion task. The H.264 sample entry, the
//! Annex B splitting and the tool runner are `store::mp4::testutil`'s.

use std::path::Path;

use super::bitstream::VideoCodec;
pub(super) use crate::store::mp4::testutil::{avc1_sample_entry, run_tool, split_annex_b};

/// A box of type `kind` around `body`.
pub(super) fn wrap_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + body.len());
    b.extend(((8 + body.len()) as u32).to_be_bytes());
    b.extend(kind);
    b.extend(body);
    b
}

/// The VisualSampleEntry fields of a `width` x `height` picture, before the children.
fn visual_sample_entry_fields(width: u16, height: u16) -> Vec<u8> {
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
    body
}

/// An `hvc1` sample entry whose `hvcC` holds the given VPS, SPS and PPS. The profile
/// fields are left zero: FFmpeg reads those from the SPS itself.
pub(super) fn hvc1_sample_entry(params: &[&[u8]; 3], width: u16, height: u16) -> Vec<u8> {
    let mut hvcc = vec![1];
    hvcc.extend([0; 20]);
    hvcc.push(0xFC | 3); // 4-byte NAL lengths
    hvcc.push(3);
    for (nal_type, nal) in [32u8, 33, 34].into_iter().zip(params) {
        hvcc.push(0x80 | nal_type); // array_completeness
        hvcc.extend(1u16.to_be_bytes());
        hvcc.extend((nal.len() as u16).to_be_bytes());
        hvcc.extend(*nal);
    }
    let mut body = visual_sample_entry_fields(width, height);
    body.extend(wrap_box(b"hvcC", &hvcc));
    wrap_box(b"hvc1", &body)
}

/// One access unit as ingest delivers it.
#[derive(Clone)]
pub(crate) struct AccessUnit {
    pub data: Vec<u8>,
    pub is_key: bool,
    pub pts: i64,
}

/// A real stream as the motion task receives it.
pub(crate) struct TestStream {
    pub sample_entry: Vec<u8>,
    pub units: Vec<AccessUnit>,
}

/// Encodes `lavfi` (a libavfilter source, e.g. `testsrc2=size=640x360:rate=10`) for
/// `secs` seconds with libx264 or libx265, a keyframe every `gop` frames exactly (no
/// scene-cut keyframes: cameras keep a fixed GOP) and no B-frames, into `dir`, and
/// returns the Annex B file's path.
pub(crate) fn encode(
    codec: VideoCodec,
    dir: &Path,
    name: &str,
    lavfi: &str,
    secs: u32,
    gop: u32,
) -> String {
    encode_as(codec, dir, name, lavfi, secs, gop, Encoding::default())
}

/// How [`encode_as`] departs from [`encode`]'s defaults.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Encoding {
    /// The encoder's constant rate factor (lower is better; the encoders' default is
    /// 23 for libx264, 28 for libx265) instead of its default.
    pub crf: Option<u32>,
    /// Consecutive B-frames allowed (libx264 only): a stream whose pictures the
    /// decoder outputs late and reordered (cameras rarely send one).
    pub b_frames: u32,
}

/// [`encode`] with the settings in `encoding`.
pub(super) fn encode_as(
    codec: VideoCodec,
    dir: &Path,
    name: &str,
    lavfi: &str,
    secs: u32,
    gop: u32,
    encoding: Encoding,
) -> String {
    let Encoding { crf, b_frames } = encoding;
    let out = dir.join(name);
    let out = out.to_str().expect("temp path is UTF-8").to_owned();
    let secs = secs.to_string();
    let x265_params = format!("keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:log-level=error");
    let gop = gop.to_string();
    let b_frames = b_frames.to_string();
    let crf = crf.map(|c| c.to_string());
    let mut args = vec!["-v", "error", "-f", "lavfi", "-i", lavfi, "-t", &secs];
    if let Some(crf) = &crf {
        args.extend(["-crf", crf]);
    }
    match codec {
        VideoCodec::H264 => args.extend([
            "-c:v",
            "libx264",
            "-g",
            &gop,
            "-bf",
            &b_frames,
            "-sc_threshold",
            "0",
            "-f",
            "h264",
        ]),
        VideoCodec::H265 => args.extend([
            "-c:v",
            "libx265",
            "-x265-params",
            &x265_params,
            "-f",
            "hevc",
        ]),
    }
    args.extend(["-y", &out]);
    let res = run_tool("ffmpeg", &args);
    assert!(
        res.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

/// Reads an Annex B file written by [`encode`] at `fps` frames per second, splits it
/// into access units and converts each to AVCC (4-byte lengths). The parameter sets go
/// to the sample entry, access unit delimiters are dropped, SEI and slices stay.
pub(crate) fn load(codec: VideoCodec, path: &str, fps: u32, width: u16, height: u16) -> TestStream {
    let annex_b = std::fs::read(path).expect("ffmpeg wrote its output");
    let frame_ticks = 90_000 / i64::from(fps);
    // Per NAL unit: (is a slice, is a keyframe slice, starts an access unit when it
    // follows a slice, index of the parameter set it is (VPS, SPS, PPS), is an AUD).
    let classify = |nal: &[u8]| -> (bool, bool, bool, Option<usize>, bool) {
        match codec {
            VideoCodec::H264 => {
                let t = nal[0] & 0x1F;
                let vcl = (1..=5).contains(&t);
                let first_slice = vcl && nal.get(1).is_some_and(|b| b & 0x80 != 0);
                let param = match t {
                    7 => Some(1),
                    8 => Some(2),
                    _ => None,
                };
                (
                    vcl,
                    t == 5,
                    first_slice || matches!(t, 6..=9 | 14..=18),
                    param,
                    t == 9,
                )
            }
            VideoCodec::H265 => {
                let t = (nal[0] >> 1) & 0x3F;
                let vcl = t < 32;
                let first_slice = vcl && nal.get(2).is_some_and(|b| b & 0x80 != 0);
                let param = match t {
                    32 => Some(0),
                    33 => Some(1),
                    34 => Some(2),
                    _ => None,
                };
                let starts = first_slice || matches!(t, 32..=35 | 39 | 41..=44 | 48..=55);
                (vcl, (16..=21).contains(&t), starts, param, t == 35)
            }
        }
    };
    let mut params: [Option<Vec<u8>>; 3] = [None, None, None];
    let mut groups: Vec<(Vec<&[u8]>, bool)> = Vec::new();
    let mut has_vcl = false;
    for nal in split_annex_b(&annex_b)
        .into_iter()
        .filter(|n| !n.is_empty())
    {
        let (vcl, key, starts_unit, param, aud) = classify(nal);
        if groups.is_empty() || (has_vcl && starts_unit) {
            groups.push((Vec::new(), false));
            has_vcl = false;
        }
        has_vcl |= vcl;
        let group = groups.last_mut().expect("pushed above");
        group.1 |= key;
        if let Some(i) = param {
            params[i].get_or_insert_with(|| nal.to_vec());
        } else if !aud {
            group.0.push(nal);
        }
    }
    let units = groups
        .into_iter()
        .filter(|g| !g.0.is_empty())
        .enumerate()
        .map(|(i, (nals, is_key))| {
            let mut data = Vec::new();
            for nal in &nals {
                data.extend((nal.len() as u32).to_be_bytes());
                data.extend(*nal);
            }
            AccessUnit {
                data,
                is_key,
                pts: i as i64 * frame_ticks,
            }
        })
        .collect();
    let [vps, sps, pps] = params;
    let (sps, pps) = (
        sps.expect("stream has an SPS"),
        pps.expect("stream has a PPS"),
    );
    let sample_entry = match codec {
        VideoCodec::H264 => avc1_sample_entry(&sps, &pps, width, height),
        VideoCodec::H265 => {
            let vps = vps.expect("H.265 stream has a VPS");
            hvc1_sample_entry(&[&vps, &sps, &pps], width, height)
        }
    };
    TestStream {
        sample_entry,
        units,
    }
}
