//! The byte work between ingest's frames and FFmpeg: reading the parameter sets out of
//! the stream's ISO BMFF sample entry, and rewriting AVCC access units as Annex B.
//!
//! Why Annex B rather than handing FFmpeg the `avcC` as extradata: `ffmpeg-next` has
//! no safe way to set `extradata`, and this crate forbids `unsafe`. Annex B needs no
//! extradata — the parameter sets travel in-band, prepended to every keyframe — and with
//! 4-byte NAL lengths the rewrite is size-neutral (each length becomes a 4-byte start
//! code). Repeating the parameter sets at each keyframe also lets the decoder recover
//! at any keyframe, which idle mode relies on.
//!
//! Layouts (ISO/IEC 14496-12 and -15):
//! - sample entry: `size:u32 type:4cc`, then 78 bytes of VisualSampleEntry fields
//!   (reserved, data_reference_index, width, height, resolutions, frame_count,
//!   compressorname, depth, pre_defined), then child boxes (`avcC`/`hvcC`, `pasp`,
//!   `btrt`, `colr`, ...).
//! - `avcC`: version, profile, compatibility, level, `0b111111 ‖ lengthSizeMinusOne:2`,
//!   `0b111 ‖ numSPS:5`, SPS as `u16 length ‖ bytes`, `numPPS:u8`, PPS likewise, then
//!   optional High-profile fields that the decoder does not need.
//! - `hvcC`: 21 bytes of profile/tier/level and format fields, then
//!   `…‖ lengthSizeMinusOne:2` at byte 21, `numArrays:u8` at byte 22, then arrays of
//!   `type:u8 ‖ numNalus:u16 ‖ (u16 length ‖ bytes)*` (VPS, SPS, PPS, SEI).
//!
//! Everything here is bounds-checked: malformed input yields an error, never a panic.

use super::MotionError;

/// The codecs the motion decoder handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

/// What the decoder needs from a sample entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    pub codec: VideoCodec,
    /// Bytes in each NAL unit's length prefix: 1, 2 or 4.
    pub length_size: usize,
    /// The parameter sets (VPS, SPS, PPS) as Annex B: each preceded by a start code.
    pub parameter_sets: Vec<u8>,
}

/// Size of the VisualSampleEntry fields between the box header and the child boxes.
const VISUAL_SAMPLE_ENTRY_FIELDS: usize = 78;
const START_CODE: [u8; 4] = [0, 0, 0, 1];

fn bad(reason: &'static str) -> MotionError {
    MotionError::BadSampleEntry { reason }
}

/// Parses an `avc1`/`avc3`/`hvc1`/`hev1` sample entry box (exactly what retina's
/// `VideoParameters::mp4_sample_entry()` builds).
pub fn parse_sample_entry(entry: &[u8]) -> Result<StreamConfig, MotionError> {
    let (fourcc, body) = read_box(entry).ok_or(bad("truncated box header or size"))?;
    let (codec, config_box) = match &fourcc {
        b"avc1" | b"avc3" => (VideoCodec::H264, b"avcC"),
        b"hvc1" | b"hev1" => (VideoCodec::H265, b"hvcC"),
        other => {
            return Err(MotionError::UnsupportedCodec {
                fourcc: String::from_utf8_lossy(other).into_owned(),
            })
        }
    };
    let mut children = body
        .get(VISUAL_SAMPLE_ENTRY_FIELDS..)
        .ok_or(bad("sample entry shorter than its fixed fields"))?;
    while !children.is_empty() {
        let (kind, child) = read_box(children).ok_or(bad("malformed child box"))?;
        if &kind == config_box {
            return match codec {
                VideoCodec::H264 => parse_avcc(child),
                VideoCodec::H265 => parse_hvcc(child),
            };
        }
        children = &children[box_len(children).ok_or(bad("malformed child box"))?..];
    }
    Err(bad("no avcC/hvcC configuration box"))
}

/// The width and height a sample entry declares (its VisualSampleEntry fields; retina
/// fills them from the SPS), or `None` if the box is too short to have them. The
/// decoder refuses a stream declared larger than it accepts before opening FFmpeg.
pub fn declared_size(entry: &[u8]) -> Option<(u32, u32)> {
    let (_, body) = read_box(entry)?;
    let field = |at: usize| -> Option<u32> {
        let bytes: [u8; 2] = body.get(at..at + 2)?.try_into().ok()?;
        Some(u32::from(u16::from_be_bytes(bytes)))
    };
    // reserved[6], data_reference_index, pre_defined, reserved, pre_defined[3].
    Some((field(24)?, field(26)?))
}

/// The total length of the box at the start of `data` (size 0 = to the end).
fn box_len(data: &[u8]) -> Option<usize> {
    let size = u32::from_be_bytes(data.get(..4)?.try_into().ok()?);
    let len = match size {
        0 => data.len(),
        1 => usize::try_from(u64::from_be_bytes(data.get(8..16)?.try_into().ok()?)).ok()?,
        n => n as usize,
    };
    let header = if size == 1 { 16 } else { 8 };
    (len >= header && len <= data.len()).then_some(len)
}

/// The type and body of the box at the start of `data`.
fn read_box(data: &[u8]) -> Option<([u8; 4], &[u8])> {
    let len = box_len(data)?;
    let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let header = if data.get(..4)? == [0, 0, 0, 1] {
        16
    } else {
        8
    };
    Some((kind, data.get(header..len)?))
}

/// A cursor that fails instead of panicking when the data runs out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MotionError> {
        if n > self.0.len() {
            return Err(bad("configuration box is truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, MotionError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, MotionError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A `u16 length ‖ bytes` NAL unit, appended to `out` as Annex B.
    fn nal_into(&mut self, out: &mut Vec<u8>) -> Result<(), MotionError> {
        let len = usize::from(self.u16()?);
        let nal = self.take(len)?;
        if !nal.is_empty() {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
        Ok(())
    }
}

fn length_size(byte: u8) -> Result<usize, MotionError> {
    match (byte & 0b11) + 1 {
        3 => Err(bad("NAL length size of 3 bytes is not allowed")),
        n => Ok(usize::from(n)),
    }
}

fn parse_avcc(body: &[u8]) -> Result<StreamConfig, MotionError> {
    let mut r = Reader(body);
    if r.u8()? != 1 {
        return Err(bad("unknown avcC version"));
    }
    r.take(3)?; // profile, compatibility, level: the SPS repeats them
    let length_size = length_size(r.u8()?)?;
    let mut parameter_sets = Vec::new();
    for _ in 0..(r.u8()? & 0x1F) {
        r.nal_into(&mut parameter_sets)?;
    }
    for _ in 0..r.u8()? {
        r.nal_into(&mut parameter_sets)?;
    }
    Ok(StreamConfig {
        codec: VideoCodec::H264,
        length_size,
        parameter_sets,
    })
}

fn parse_hvcc(body: &[u8]) -> Result<StreamConfig, MotionError> {
    let mut r = Reader(body);
    if r.u8()? != 1 {
        return Err(bad("unknown hvcC version"));
    }
    r.take(20)?; // profile/tier/level, segmentation, chroma and bit-depth fields
    let length_size = length_size(r.u8()?)?;
    let mut parameter_sets = Vec::new();
    for _ in 0..r.u8()? {
        r.u8()?; // array_completeness ‖ NAL unit type
        for _ in 0..r.u16()? {
            r.nal_into(&mut parameter_sets)?;
        }
    }
    Ok(StreamConfig {
        codec: VideoCodec::H265,
        length_size,
        parameter_sets,
    })
}

/// Rewrites one AVCC access unit (NAL units each preceded by a big-endian length of
/// `length_size` bytes) as Annex B into `out` (cleared first), after `prefix` (the
/// parameter sets for a keyframe, or nothing). Empty NAL units are dropped.
pub fn avcc_to_annex_b(
    data: &[u8],
    length_size: usize,
    prefix: &[u8],
    pts: i64,
    out: &mut Vec<u8>,
) -> Result<(), MotionError> {
    let fail = |reason| MotionError::BadAccessUnit { pts, reason };
    out.clear();
    out.reserve(prefix.len() + data.len() + 16);
    out.extend_from_slice(prefix);
    let mut rest = data;
    while !rest.is_empty() {
        let len_bytes = rest
            .get(..length_size)
            .ok_or(fail("truncated NAL length"))?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let nal = rest
            .get(length_size..length_size + len)
            .ok_or(fail("NAL length runs past the end of the frame"))?;
        if !nal.is_empty() {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
        rest = &rest[length_size + len..];
    }
    if out.len() == prefix.len() {
        return Err(fail("no NAL units"));
    }
    Ok(())
}

/// Whether an AVCC access unit holds an IDR picture (H.264 NAL type 5, H.265 types
/// 19–20): nothing decoded after it is predicted from anything before it, so units
/// between the last picture looked at and this one never need decoding. Other random
/// access points (an H.265 CRA, an H.264 I-frame with a recovery point) may have
/// leading pictures that reach back, so they do not count. A malformed unit is not one.
pub fn is_idr(data: &[u8], length_size: usize, codec: VideoCodec) -> bool {
    if length_size == 0 {
        return false;
    }
    let mut rest = data;
    while let Some(len_bytes) = rest.get(..length_size) {
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let Some(nal) = rest.get(length_size..length_size + len) else {
            return false;
        };
        if let Some(&header) = nal.first() {
            let idr = match codec {
                VideoCodec::H264 => header & 0x1F == 5,
                VideoCodec::H265 => matches!((header >> 1) & 0x3F, 19 | 20),
            };
            if idr {
                return true;
            }
        }
        rest = &rest[length_size + len..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::testutil::{avc1_sample_entry, wrap_box};

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1E, 0xAC, 0xD9, 0x40];
    const PPS: &[u8] = &[0x68, 0xEB, 0xE3, 0xCB];

    #[test]
    fn avc1_entry_yields_annex_b_parameter_sets() {
        let cfg = parse_sample_entry(&avc1_sample_entry(SPS, PPS, 640, 360)).expect("valid");
        assert_eq!(cfg.codec, VideoCodec::H264);
        assert_eq!(cfg.length_size, 4);
        let want: Vec<u8> = [&START_CODE[..], SPS, &START_CODE[..], PPS].concat();
        assert_eq!(cfg.parameter_sets, want);
    }

    #[test]
    fn config_box_is_found_after_other_children() {
        let mut entry = avc1_sample_entry(SPS, PPS, 640, 360);
        // Move avcC behind a `pasp` box, as some cameras' entries have it.
        let fixed = 8 + VISUAL_SAMPLE_ENTRY_FIELDS;
        let avcc = entry.split_off(fixed);
        entry.extend(wrap_box(b"pasp", &[0, 0, 0, 1, 0, 0, 0, 1]));
        entry.extend(avcc);
        let len = entry.len() as u32;
        entry[..4].copy_from_slice(&len.to_be_bytes());
        assert!(parse_sample_entry(&entry).is_ok());
    }

    #[test]
    fn hvc1_entry_yields_vps_sps_pps() {
        let mut hvcc = vec![1];
        hvcc.extend([0; 20]);
        hvcc.push(0xFF); // 4-byte lengths
        hvcc.push(3);
        for (t, nal) in [
            (32u8, &[0x40, 1, 2][..]),
            (33, &[0x42, 1]),
            (34, &[0x44, 9]),
        ] {
            hvcc.push(t);
            hvcc.extend(1u16.to_be_bytes());
            hvcc.extend((nal.len() as u16).to_be_bytes());
            hvcc.extend(nal);
        }
        let mut body = vec![0; VISUAL_SAMPLE_ENTRY_FIELDS];
        body.extend(wrap_box(b"hvcC", &hvcc));
        let cfg = parse_sample_entry(&wrap_box(b"hvc1", &body)).expect("valid");
        assert_eq!(cfg.codec, VideoCodec::H265);
        assert_eq!(
            cfg.parameter_sets,
            [0, 0, 0, 1, 0x40, 1, 2, 0, 0, 0, 1, 0x42, 1, 0, 0, 0, 1, 0x44, 9]
        );
    }

    #[test]
    fn other_codecs_and_broken_entries_are_errors_not_panics() {
        let mut body = vec![0; VISUAL_SAMPLE_ENTRY_FIELDS];
        body.extend(wrap_box(b"esds", &[0; 4]));
        assert!(matches!(
            parse_sample_entry(&wrap_box(b"mp4a", &body)),
            Err(MotionError::UnsupportedCodec { fourcc }) if fourcc == "mp4a"
        ));
        assert!(matches!(
            parse_sample_entry(&wrap_box(b"avc1", &body)),
            Err(MotionError::BadSampleEntry { .. })
        ));
        // Every truncation of a valid entry fails cleanly.
        let entry = avc1_sample_entry(SPS, PPS, 640, 360);
        for n in 0..entry.len() {
            let mut cut = entry[..n].to_vec();
            if n >= 4 {
                cut[..4].copy_from_slice(&(n as u32).to_be_bytes());
            }
            assert!(parse_sample_entry(&cut).is_err(), "length {n}");
        }
    }

    #[test]
    fn avcc_becomes_annex_b_after_the_prefix() {
        let au = [0, 0, 0, 2, 0x65, 0xAA, 0, 0, 0, 0, 0, 0, 0, 1, 0x06];
        let mut out = Vec::new();
        avcc_to_annex_b(&au, 4, &[9, 9], 0, &mut out).expect("valid");
        assert_eq!(out, [9, 9, 0, 0, 0, 1, 0x65, 0xAA, 0, 0, 0, 1, 0x06]);
        avcc_to_annex_b(&[0, 1, 0x41], 2, &[], 0, &mut out).expect("valid");
        assert_eq!(out, [0, 0, 0, 1, 0x41]);
    }

    #[test]
    fn overrunning_or_empty_access_units_are_rejected() {
        let mut out = Vec::new();
        for au in [&[0, 0, 0, 9, 0x65][..], &[0, 0], &[], &[0, 0, 0, 0]] {
            assert!(
                matches!(
                    avcc_to_annex_b(au, 4, &[], 42, &mut out),
                    Err(MotionError::BadAccessUnit { pts: 42, .. })
                ),
                "{au:?}"
            );
        }
    }

    #[test]
    fn only_idr_units_close_a_gop() {
        // SEI then an IDR slice; a non-IDR slice; an H.265 IDR_W_RADL and a CRA.
        let idr = [0, 0, 0, 1, 0x06, 0, 0, 0, 2, 0x65, 0x88];
        assert!(is_idr(&idr, 4, VideoCodec::H264));
        assert!(!is_idr(&[0, 0, 0, 2, 0x41, 0x9A], 4, VideoCodec::H264));
        assert!(is_idr(&[0, 2, 0x26, 0x01], 2, VideoCodec::H265));
        assert!(!is_idr(&[0, 2, 0x2A, 0x01], 2, VideoCodec::H265));
        // A length running past the end is not trusted, even with an IDR type byte.
        assert!(!is_idr(&[0, 0, 0, 9, 0x65], 4, VideoCodec::H264));
        assert!(!is_idr(&[], 4, VideoCodec::H264));
    }
}
