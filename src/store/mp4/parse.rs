//! Reader of our own recordings: builds a sample index without reading sample data.
//!
//! Input is untrusted (a recording may be torn by a power cut, and this parser is fuzzed),
//! so:
//! - only `moov` and `moof` bodies are read into memory, each capped ([`MAX_MOOV_SIZE`],
//!   [`MAX_MOOF_SIZE`]); `mdat` payloads and unknown top-level boxes are skipped by offset;
//! - a `trun`'s sample count is checked against the bytes its box actually holds before
//!   anything is reserved, so the index grows only with bytes really present;
//! - every sample's byte range must lie inside the `mdat` that follows its `moof`;
//! - all arithmetic on offsets and times is checked; errors name the box and its offset.
//!
//! What is tolerated: a file that ends inside a box after the init segment (the torn
//! fragment is dropped and counted in [`FragmentedIndex::ignored_tail_bytes`]), unknown
//! top-level boxes (skipped), the optional `tfhd` defaults, `trex` defaults and 64-bit box
//! sizes. What is rejected: anything before `moov` other than `ftyp` + unknown boxes, more
//! than one track, a track that is not video, samples in `moov`, `trun`s without per-sample
//! sizes or with composition offsets, decode times that go backwards, and size-0 boxes.

use std::ops::Range;

use super::boxread::{read_body, read_header, BoxData};
use super::fragmented::{
    NON_SYNC_BIT, TFHD_DEFAULT_BASE_IS_MOOF, TRUN_COMPOSITION_OFFSET, TRUN_DATA_OFFSET,
    TRUN_DURATION, TRUN_FIRST_SAMPLE_FLAGS, TRUN_FLAGS, TRUN_SIZE,
};
use super::{Mp4Error, ReadAt, SampleRef, TrackParams};

/// Largest `moov` read into memory. Ours is under 1 KiB plus the sample entry.
pub const MAX_MOOV_SIZE: u64 = 1 << 20;
/// Largest `moof` read into memory. Ours is 12 bytes per sample plus ~90.
pub const MAX_MOOF_SIZE: u64 = 1 << 20;

/// The index of one recording: its track and where each sample lies in the plaintext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentedIndex {
    pub track: TrackParams,
    /// In decode order; [`SampleRef::source`] is 0.
    pub samples: Vec<SampleRef>,
    /// Length of the incomplete trailing fragment that was ignored (0 for a clean file).
    pub ignored_tail_bytes: u64,
}

/// Indexes a recording written by [`super::init_segment`] and [`super::fragment`].
pub fn parse_fragmented(r: &mut impl ReadAt) -> Result<FragmentedIndex, Mp4Error> {
    let len = r.len();
    let incomplete = || Mp4Error::IncompleteInit { len };

    let ftyp = read_header(r, 0, len)?.ok_or_else(incomplete)?;
    if ftyp.fourcc.0 != *b"ftyp" {
        return Err(ftyp.malformed("the file must start with ftyp"));
    }
    let mut pos = ftyp.end();
    let (track, mut traf) = loop {
        let h = read_header(r, pos, len)?.ok_or_else(incomplete)?;
        pos = h.end();
        match &h.fourcc.0 {
            b"moov" => {
                let body = read_body(r, &h, MAX_MOOV_SIZE)?;
                break parse_moov(h.data(&body))?;
            }
            b"ftyp" | b"moof" | b"mdat" => return Err(h.malformed("expected moov")),
            _ => tracing::debug!(fourcc = %h.fourcc, offset = h.offset, "skipping unknown box"),
        }
    };

    let mut samples = Vec::new();
    let ignored_tail_bytes = loop {
        if pos == len {
            break 0;
        }
        let Some(h) = read_header(r, pos, len)? else {
            break len - pos;
        };
        match &h.fourcc.0 {
            b"moof" => {
                let Some(mdat) = read_header(r, h.end(), len)? else {
                    break len - pos;
                };
                if mdat.fourcc.0 != *b"mdat" {
                    return Err(mdat.malformed("expected mdat after moof"));
                }
                let body = read_body(r, &h, MAX_MOOF_SIZE)?;
                let payload = mdat.offset + mdat.header_len..mdat.end();
                parse_moof(h.data(&body), payload, &mut traf, &mut samples)?;
                pos = mdat.end();
            }
            b"ftyp" | b"moov" => return Err(h.malformed("a second init segment box")),
            _ => {
                tracing::debug!(fourcc = %h.fourcc, offset = h.offset, "skipping unknown box");
                pos = h.end();
            }
        }
    };
    if ignored_tail_bytes > 0 {
        tracing::debug!(ignored_tail_bytes, len, "ignoring torn tail of recording");
    }
    Ok(FragmentedIndex {
        track,
        samples,
        ignored_tail_bytes,
    })
}

// tfhd flags (ISO/IEC 14496-12 8.8.7.1); default-base-is-moof is the writer's.
const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const TFHD_DEFAULT_DURATION: u32 = 0x08;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
// duration-is-empty (0x1_0000) is deliberately absent: a fragment without samples is
// rejected as unsupported rather than guessed at.

/// The per-track state carried from `moov` (trex defaults) through the fragments.
struct TrafState {
    track_id: u32,
    default_duration: u32,
    default_flags: u32,
    /// Decode time just past the last sample seen.
    next_decode_time: u64,
}

fn parse_moov(moov: BoxData<'_>) -> Result<(TrackParams, TrafState), Mp4Error> {
    let kids = moov.children()?;
    let traks: Vec<_> = kids.iter().filter(|b| b.fourcc.0 == *b"trak").collect();
    let [trak] = traks[..] else {
        return Err(moov.unsupported(format!("{} tracks; recordings have one", traks.len())));
    };

    let mut tkhd = trak.child(b"tkhd")?;
    let (version, _) = tkhd.full_header()?;
    tkhd.uint_v(version)?; // creation_time
    tkhd.uint_v(version)?; // modification_time
    let track_id = tkhd.u32()?;
    tkhd.skip(4)?; // reserved
    tkhd.uint_v(version)?; // duration
    tkhd.skip(8 + 2 + 2 + 2 + 2 + 36)?; // reserved, layer, group, volume, reserved, matrix
    let width = tkhd.u32()? >> 16;
    let height = tkhd.u32()? >> 16;

    let mdia = trak.child(b"mdia")?;
    let mut mdhd = mdia.child(b"mdhd")?;
    let (version, _) = mdhd.full_header()?;
    mdhd.uint_v(version)?;
    mdhd.uint_v(version)?;
    let timescale = mdhd.u32()?;
    let mut hdlr = mdia.child(b"hdlr")?;
    hdlr.skip(8)?; // version, flags, pre_defined
    if hdlr.take(4)? != b"vide" {
        return Err(hdlr.unsupported("a track that is not video"));
    }

    let stbl = mdia.child(b"minf")?.child(b"stbl")?;
    let mut stsd = stbl.child(b"stsd")?;
    stsd.skip(4)?;
    let entries = stsd.u32()?;
    let entry = match stsd.children()?[..] {
        [entry] if entries == 1 => entry,
        _ => return Err(stsd.unsupported("a sample description count other than 1")),
    };
    let track = TrackParams {
        sample_entry: entry.body_with_header(&stsd).to_vec(),
        width,
        height,
        timescale,
    };
    track
        .validate()
        .map_err(|e| stsd.malformed(format!("track from tkhd/mdhd/stsd: {e}")))?;
    if let Some(mut stsz) = stbl
        .children()?
        .into_iter()
        .find(|b| b.fourcc.0 == *b"stsz")
    {
        stsz.skip(8)?;
        if stsz.u32()? != 0 {
            return Err(stsz.unsupported("samples in moov: not a fragmented recording"));
        }
    }

    let mvex = kids
        .iter()
        .find(|b| b.fourcc.0 == *b"mvex")
        .ok_or_else(|| moov.malformed("no mvex: not a fragmented recording"))?;
    let mut trex = mvex.child(b"trex")?;
    trex.skip(4)?;
    if trex.u32()? != track_id {
        return Err(trex.malformed("track ID differs from tkhd's"));
    }
    trex.skip(4)?; // default_sample_description_index
    let state = TrafState {
        track_id,
        default_duration: trex.u32()?,
        default_flags: {
            trex.skip(4)?; // default_sample_size: every trun carries sizes
            trex.u32()?
        },
        next_decode_time: 0,
    };
    Ok((track, state))
}

fn parse_moof(
    moof: BoxData<'_>,
    payload: Range<u64>,
    state: &mut TrafState,
    out: &mut Vec<SampleRef>,
) -> Result<(), Mp4Error> {
    let trafs: Vec<_> = moof
        .children()?
        .into_iter()
        .filter(|b| b.fourcc.0 == *b"traf")
        .collect();
    if trafs.is_empty() {
        return Err(moof.malformed("no traf"));
    }
    for traf in trafs {
        let mut tfhd = traf.child(b"tfhd")?;
        let (_, flags) = tfhd.full_header()?;
        const KNOWN: u32 = TFHD_BASE_DATA_OFFSET
            | TFHD_SAMPLE_DESCRIPTION_INDEX
            | TFHD_DEFAULT_DURATION
            | TFHD_DEFAULT_SIZE
            | TFHD_DEFAULT_FLAGS
            | TFHD_DEFAULT_BASE_IS_MOOF;
        if flags & !KNOWN != 0 {
            return Err(tfhd.unsupported(format!("flags {flags:#x}")));
        }
        if tfhd.u32()? != state.track_id {
            return Err(tfhd.malformed("track ID differs from tkhd's"));
        }
        let base = if flags & TFHD_BASE_DATA_OFFSET != 0 {
            tfhd.u64()?
        } else if flags & TFHD_DEFAULT_BASE_IS_MOOF != 0 {
            moof.offset
        } else {
            return Err(tfhd.unsupported("neither base-data-offset nor default-base-is-moof"));
        };
        if flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 && tfhd.u32()? != 1 {
            return Err(tfhd.unsupported("a sample description index other than 1"));
        }
        let mut field = |bit: u32, default: u32| match flags & bit {
            0 => Ok(default),
            _ => tfhd.u32(),
        };
        let default_duration = field(TFHD_DEFAULT_DURATION, state.default_duration)?;
        field(TFHD_DEFAULT_SIZE, 0)?; // unused: every trun carries sizes
        let default_flags = field(TFHD_DEFAULT_FLAGS, state.default_flags)?;

        let mut tfdt = traf.child(b"tfdt")?;
        let (version, _) = tfdt.full_header()?;
        let mut decode_time = tfdt.uint_v(version)?;
        if decode_time < state.next_decode_time {
            return Err(tfdt.malformed(format!(
                "decode time {decode_time} goes back before {}",
                state.next_decode_time
            )));
        }

        let mut next_data = base;
        for mut trun in traf
            .children()?
            .into_iter()
            .filter(|b| b.fourcc.0 == *b"trun")
        {
            let (_, flags) = trun.full_header()?;
            if flags & TRUN_COMPOSITION_OFFSET != 0 {
                return Err(trun.unsupported("composition time offsets (B-frames)"));
            }
            const KNOWN: u32 =
                TRUN_DATA_OFFSET | TRUN_FIRST_SAMPLE_FLAGS | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
            if flags & !KNOWN != 0 || flags & TRUN_SIZE == 0 {
                return Err(trun.unsupported(format!("flags {flags:#x}")));
            }
            let count = trun.u32()?;
            if flags & TRUN_DATA_OFFSET != 0 {
                let rel = i64::from(trun.u32()? as i32); // signed 32-bit field
                next_data = base
                    .checked_add_signed(rel)
                    .ok_or_else(|| trun.malformed("data offset out of range"))?;
            }
            let first_flags = match flags & TRUN_FIRST_SAMPLE_FLAGS {
                0 => None,
                _ => Some(trun.u32()?),
            };
            let per_sample = 4 * (flags & (TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS)).count_ones();
            let needed = u64::from(count) * u64::from(per_sample);
            if needed > trun.remaining() as u64 {
                return Err(trun.malformed(format!(
                    "{count} samples need {needed} bytes but {} remain",
                    trun.remaining()
                )));
            }
            out.reserve(count as usize); // bounded just above by the box's size
            for i in 0..count {
                let duration = match flags & TRUN_DURATION {
                    0 => default_duration,
                    _ => trun.u32()?,
                };
                let size = trun.u32()?;
                let sample_flags = match (flags & TRUN_FLAGS, first_flags) {
                    (0, Some(f)) if i == 0 => f,
                    (0, _) => default_flags,
                    _ => trun.u32()?,
                };
                let end = next_data
                    .checked_add(u64::from(size))
                    .filter(|&end| next_data >= payload.start && end <= payload.end)
                    .ok_or_else(|| {
                        trun.malformed(format!(
                            "sample {i} at {next_data} (+{size}) lies outside mdat payload {payload:?}"
                        ))
                    })?;
                out.push(SampleRef {
                    source: 0,
                    offset: next_data,
                    size,
                    duration,
                    is_sync: sample_flags & NON_SYNC_BIT == 0,
                    decode_time,
                });
                next_data = end;
                decode_time = decode_time
                    .checked_add(u64::from(duration))
                    .ok_or_else(|| trun.malformed("decode time overflows"))?;
            }
        }
        state.next_decode_time = decode_time;
    }
    Ok(())
}
