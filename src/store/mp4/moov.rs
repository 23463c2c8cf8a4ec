//! The `ftyp` and `moov` boxes shared by the recording's init segment and the export.
//!
//! Both have one video track, ID [`TRACK_ID`], whose `stsd` holds the camera's sample entry
//! verbatim. They differ in the sample tables (empty in a recording, full in an export), the
//! durations, and the `mvex` box that marks a recording as fragmented.

use bytes::BufMut;

use super::boxes::{write_box, write_full_box, UNITY_MATRIX};
use super::TrackParams;

/// The only track's ID, in `tkhd`, `trex` and every `tfhd`.
pub(super) const TRACK_ID: u32 = 1;

/// ISO-639-2/T "und" packed as three 5-bit letters, for `mdhd`.
const LANGUAGE_UND: u16 =
    ((b'u' - 0x60) as u16) << 10 | ((b'n' - 0x60) as u16) << 5 | (b'd' - 0x60) as u16;

pub(super) fn write_ftyp(out: &mut Vec<u8>, major: &[u8; 4], compatible: &[&[u8; 4]]) {
    write_box(out, b"ftyp", |out| {
        out.put_slice(major);
        out.put_u32(0); // minor version
        for brand in compatible {
            out.put_slice(*brand);
        }
    });
}

/// What goes into `moov` besides the track parameters.
pub(super) struct MoovSpec<'a> {
    /// Track duration in track timescale units (0 for a fragmented recording).
    pub duration: u64,
    /// Writes the boxes of `stbl` after `stsd`: stts, (stss,) stsc, stsz, stco/co64.
    pub sample_tables: &'a dyn Fn(&mut Vec<u8>),
    /// Whether to add `mvex`/`trex`, i.e. whether samples follow in fragments.
    pub fragmented: bool,
}

/// Version 1 (64-bit times) is needed only when the duration does not fit in 32 bits.
fn time_version(duration: u64) -> u8 {
    u8::from(duration > u64::from(u32::MAX))
}

/// Writes creation time, modification time (both 0: unknown), then the fields between them
/// and the duration as `between`, then the duration, in the width `version` selects.
fn put_times(out: &mut Vec<u8>, version: u8, between: impl FnOnce(&mut Vec<u8>), duration: u64) {
    if version == 1 {
        out.put_u64(0);
        out.put_u64(0);
        between(out);
        out.put_u64(duration);
    } else {
        out.put_u32(0);
        out.put_u32(0);
        between(out);
        out.put_u32(u32::try_from(duration).expect("version 0 chosen only for 32-bit durations"));
    }
}

pub(super) fn write_moov(out: &mut Vec<u8>, track: &TrackParams, spec: &MoovSpec<'_>) {
    let version = time_version(spec.duration);
    write_box(out, b"moov", |out| {
        // The movie timescale is the track's, so durations need no conversion.
        write_full_box(out, b"mvhd", version, 0, |out| {
            put_times(
                out,
                version,
                |out| out.put_u32(track.timescale),
                spec.duration,
            );
            out.put_u32(0x0001_0000); // rate 1.0
            out.put_u16(0x0100); // volume 1.0
            out.put_bytes(0, 10); // reserved
            UNITY_MATRIX.iter().for_each(|&m| out.put_u32(m));
            out.put_bytes(0, 24); // pre_defined
            out.put_u32(TRACK_ID + 1); // next_track_ID
        });
        write_box(out, b"trak", |out| write_trak(out, track, spec, version));
        if spec.fragmented {
            write_box(out, b"mvex", |out| {
                write_full_box(out, b"trex", 0, 0, |out| {
                    out.put_u32(TRACK_ID);
                    out.put_u32(1); // default_sample_description_index
                    out.put_u32(0); // default_sample_duration
                    out.put_u32(0); // default_sample_size
                    out.put_u32(0); // default_sample_flags
                });
            });
        }
    });
}

fn write_trak(out: &mut Vec<u8>, track: &TrackParams, spec: &MoovSpec<'_>, version: u8) {
    const TRACK_ENABLED_IN_MOVIE_IN_PREVIEW: u32 = 0x7;
    write_full_box(
        out,
        b"tkhd",
        version,
        TRACK_ENABLED_IN_MOVIE_IN_PREVIEW,
        |out| {
            let ids = |out: &mut Vec<u8>| {
                out.put_u32(TRACK_ID);
                out.put_u32(0); // reserved
            };
            put_times(out, version, ids, spec.duration);
            out.put_bytes(0, 8); // reserved
            out.put_u16(0); // layer
            out.put_u16(0); // alternate_group
            out.put_u16(0); // volume: 0 for video
            out.put_u16(0); // reserved
            UNITY_MATRIX.iter().for_each(|&m| out.put_u32(m));
            out.put_u32(track.width << 16);
            out.put_u32(track.height << 16);
        },
    );
    write_box(out, b"mdia", |out| {
        write_full_box(out, b"mdhd", version, 0, |out| {
            put_times(
                out,
                version,
                |out| out.put_u32(track.timescale),
                spec.duration,
            );
            out.put_u16(LANGUAGE_UND);
            out.put_u16(0); // pre_defined
        });
        write_full_box(out, b"hdlr", 0, 0, |out| {
            out.put_u32(0); // pre_defined
            out.put_slice(b"vide");
            out.put_bytes(0, 12); // reserved
            out.put_slice(b"VideoHandler\0");
        });
        write_box(out, b"minf", |out| {
            write_full_box(out, b"vmhd", 0, 1, |out| out.put_bytes(0, 8));
            write_box(out, b"dinf", |out| {
                write_full_box(out, b"dref", 0, 0, |out| {
                    out.put_u32(1); // entry_count
                                    // Flag 1: the media data is in this file.
                    write_full_box(out, b"url ", 0, 1, |_| {});
                });
            });
            write_box(out, b"stbl", |out| {
                write_full_box(out, b"stsd", 0, 0, |out| {
                    out.put_u32(1); // entry_count
                    out.put_slice(&track.sample_entry);
                });
                (spec.sample_tables)(out);
            });
        });
    });
}
