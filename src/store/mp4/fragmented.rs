//! Writer of the recording format: an init segment, then one `moof`+`mdat` per fragment.
//!
//! The layout is documented in the [module header](super). Everything here is pure: it
//! returns bytes for the store writer to encrypt and append.

use bytes::BufMut;

use super::boxes::{write_box, write_full_box, write_mdat_header};
use super::moov::{write_ftyp, write_moov, MoovSpec, TRACK_ID};
use super::{Mp4Error, Sample, TrackParams};

/// `sample_depends_on = 2`: an I picture, decodable alone.
pub(super) const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample = 1`.
pub(super) const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;
/// `sample_is_non_sync_sample`, the bit readers look at.
pub(super) const NON_SYNC_BIT: u32 = 0x0001_0000;

/// `tfhd` flag: data offsets are relative to the start of the enclosing `moof`.
pub(super) const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

pub(super) const TRUN_DATA_OFFSET: u32 = 0x001;
pub(super) const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x004;
pub(super) const TRUN_DURATION: u32 = 0x100;
pub(super) const TRUN_SIZE: u32 = 0x200;
pub(super) const TRUN_FLAGS: u32 = 0x400;
pub(super) const TRUN_COMPOSITION_OFFSET: u32 = 0x800;

/// Bytes of `mdat` payload one fragment may carry. The recorder closes fragments every
/// ~2 s, so this only guards the 32-bit `trun` data offset and `mdat` size.
const MAX_FRAGMENT_PAYLOAD: u64 = 1 << 31;

/// Samples one fragment may carry (about 9 minutes at 120 fps); keeps a `moof` below
/// [`super::parse::MAX_MOOF_SIZE`].
pub(super) const MAX_FRAGMENT_SAMPLES: usize = 1 << 16;

/// The init segment that starts every recording: `ftyp` + `moov` with an empty sample table
/// and `mvex`. Fails only if `track` is invalid (see [`TrackParams::validate`]).
pub fn init_segment(track: &TrackParams) -> Result<Vec<u8>, Mp4Error> {
    track.validate()?;
    let mut out = Vec::with_capacity(800 + track.sample_entry.len());
    write_ftyp(&mut out, b"iso6", &[b"iso6", b"iso5", b"mp41"]);
    let empty_tables = |out: &mut Vec<u8>| {
        write_full_box(out, b"stts", 0, 0, |out| out.put_u32(0));
        write_full_box(out, b"stsc", 0, 0, |out| out.put_u32(0));
        write_full_box(out, b"stsz", 0, 0, |out| {
            out.put_u32(0); // sample_size: sizes vary
            out.put_u32(0); // sample_count
        });
        write_full_box(out, b"stco", 0, 0, |out| out.put_u32(0));
    };
    let spec = MoovSpec {
        duration: 0,
        sample_tables: &empty_tables,
        fragmented: true,
    };
    write_moov(&mut out, track, &spec);
    Ok(out)
}

/// One fragment: `moof` + `mdat` holding `samples`, whose first sample decodes at
/// `base_decode_time` (track timescale units). `sequence` numbers fragments from 1.
///
/// The first sample need not be a sync sample. Fails if `samples` is empty or holds more
/// than 65536 samples or 2 GiB.
pub fn fragment(
    sequence: u32,
    base_decode_time: u64,
    samples: &[Sample],
) -> Result<Vec<u8>, Mp4Error> {
    let mut out = fragment_header(sequence, base_decode_time, samples)?;
    out.reserve(samples.iter().map(|s| s.data.len()).sum());
    for s in samples {
        out.put_slice(&s.data);
    }
    Ok(out)
}

/// The `moof` and `mdat` header of [`fragment`], without the sample bytes, for a caller that
/// wants to stream (or encrypt) the samples' [`bytes::Bytes`] without copying them. The
/// fragment is this followed by every sample's data in order.
pub fn fragment_header(
    sequence: u32,
    base_decode_time: u64,
    samples: &[Sample],
) -> Result<Vec<u8>, Mp4Error> {
    if samples.is_empty() {
        return Err(Mp4Error::InvalidSamples(
            "a fragment needs at least one sample".into(),
        ));
    }
    if samples.len() > MAX_FRAGMENT_SAMPLES {
        return Err(Mp4Error::InvalidSamples(format!(
            "{} samples exceed the {MAX_FRAGMENT_SAMPLES}-sample fragment limit",
            samples.len()
        )));
    }
    let mut payload = 0u64;
    for s in samples {
        payload += s.data.len() as u64;
        if payload > MAX_FRAGMENT_PAYLOAD {
            return Err(Mp4Error::InvalidSamples(format!(
                "{} samples exceed the {MAX_FRAGMENT_PAYLOAD}-byte fragment limit",
                samples.len()
            )));
        }
    }
    let count = u32::try_from(samples.len()).expect("bounded by MAX_FRAGMENT_SAMPLES");

    let mut out = Vec::with_capacity(100 + 12 * samples.len());
    let mut data_offset_at = 0;
    write_box(&mut out, b"moof", |out| {
        write_full_box(out, b"mfhd", 0, 0, |out| out.put_u32(sequence));
        write_box(out, b"traf", |out| {
            write_full_box(out, b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |out| {
                out.put_u32(TRACK_ID);
            });
            write_full_box(out, b"tfdt", 1, 0, |out| out.put_u64(base_decode_time));
            let flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
            write_full_box(out, b"trun", 0, flags, |out| {
                out.put_u32(count);
                data_offset_at = out.len();
                out.put_u32(0); // data_offset, patched below
                for s in samples {
                    out.put_u32(s.duration);
                    out.put_u32(
                        u32::try_from(s.data.len()).expect("bounded by MAX_FRAGMENT_PAYLOAD"),
                    );
                    out.put_u32(if s.is_sync {
                        SYNC_SAMPLE_FLAGS
                    } else {
                        NON_SYNC_SAMPLE_FLAGS
                    });
                }
            });
        });
    });
    // The samples start right after the moof and the 8-byte mdat header.
    let data_offset =
        u32::try_from(out.len() + 8).expect("moof size is bounded by the sample count");
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    write_mdat_header(&mut out, payload);
    Ok(out)
}
