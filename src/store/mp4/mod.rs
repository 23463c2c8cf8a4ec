//! MP4 container code: how recorded H.264/H.265 is laid out on disk, read back, and exported.
//!
//! This module owns the *plaintext* container format only. It never sees keys: the crypto
//! module encrypts what [`init_segment`] and [`fragment`] produce, and hands the decrypted
//! plaintext back through [`ReadAt`]. It depends on nothing else in Porchlight; callers give it
//! plain values ([`TrackParams`], [`Sample`], [`SampleRef`]).
//!
//! # The recording format (fragmented MP4), as written by [`fragmented`] and read by [`parse`]
//!
//! ```text
//! ftyp   major "iso6", minor 0, compatible "iso6" "iso5" "mp41"
//!        (iso5: default-base-is-moof; iso6: tfdt)
//! moov   mvhd (timescale = track timescale, duration 0, next_track_ID 2)
//!        trak  tkhd (track_ID 1, enabled|in_movie, width/height 16.16)
//!              mdia  mdhd (timescale, language "und")  hdlr "vide"
//!                    minf  vmhd  dinf/dref/"url " (self-contained)
//!                          stbl  stsd = exactly one sample entry, copied verbatim from the
//!                                       camera (retina's `avc1`/`hvc1` box incl. avcC/hvcC)
//!                                stts stsc stsz stco, all empty
//!        mvex  trex (track_ID 1, sample description 1, no defaults)
//! then, repeated, one fragment per call to `fragment`:
//! moof   mfhd (sequence number)
//!        traf  tfhd (track_ID 1, flags default-base-is-moof and nothing else)
//!              tfdt (version 1: 64-bit base media decode time, in track timescale)
//!              trun (version 0, flags data-offset | duration | size | flags; data offset
//!                    points just past the mdat header)
//! mdat   the samples' bytes (AVCC: 4-byte length-prefixed NAL units), in order
//! ```
//!
//! Sample flags are written per sample because a fragment may start with a non-sync sample
//! (the recorder closes a fragment at every keyframe *or* every ~2 s, to bound data loss):
//! sync samples get `sample_depends_on = 2`; others `sample_depends_on = 1` and
//! `sample_is_non_sync_sample = 1`. Composition offsets (B-frames) are not written: cameras
//! send I/P streams, and the parser rejects a `trun` that has them rather than silently
//! dropping them.
//!
//! A recording that lost power mid-write ends inside a fragment. [`parse_fragmented`] keeps
//! every complete `moof`+`mdat` pair, drops the torn remainder and reports its length in
//! [`FragmentedIndex::ignored_tail_bytes`].
//!
//! # Export format (moov-first MP4), built by [`progressive`]
//!
//! `ftyp` (major "isom", compatible "isom" "iso2" "mp41"), a complete `moov` with sample
//! tables, then one `mdat`. Only the header (ftyp+moov+mdat header) is held in memory; the
//! mdat payload is described as ranges of the source recordings ([`Piece`]), so an export
//! can be served with HTTP Range or streamed to a file. Samples may come from several
//! recordings ([`SampleRef::source`]) as long as they share one sample entry.
//!
//! # Why not the `mp4-atom` crate
//!
//! `mp4-atom` 0.17 was evaluated and is well made (its `trun` decoder bounds allocation by
//! the box size), but it does not fit here:
//! - it cannot carry an opaque sample entry: `Codec::Unknown` refuses to encode
//!   (`Error::UnknownCodec`), so retina's `avc1` bytes would have to be decoded into its typed
//!   `Avc1` and re-encoded, which drops child boxes it does not model (it only warns);
//!   we want the camera's sample entry byte for byte;
//! - its box sizes are 32-bit (`encode_atom` has a TODO for >4 GiB), and its `Mdat` holds
//!   the payload in memory, so the >4 GiB export `mdat` header and the virtual layout would
//!   be hand-written anyway;
//! - it reads through `std::io::Read`, so torn-tail handling over a positioned reader would
//!   be ours regardless;
//! - it brings `thiserror` 1 (a duplicate of our `thiserror` 2), `derive_more`, `num` and
//!   `pastey` for ~30 000 lines, of which we would use about a dozen box types.
//!
//! The boxes we need are a few hundred lines (`boxes.rs`, `moov.rs`), which is less to audit.

mod boxes;
mod boxread;
pub mod fragmented;
mod moov;
pub mod parse;
pub mod progressive;

#[cfg(test)]
mod tests_ffmpeg;
#[cfg(test)]
mod tests_parse;
#[cfg(test)]
mod tests_progressive;
#[cfg(test)]
pub(crate) mod testutil;

use std::fmt;
use std::io;

pub use fragmented::{fragment, fragment_header, init_segment};
pub use parse::{parse_fragmented, FragmentedIndex};
pub use progressive::{Piece, ProgressiveMp4, ReadSource};

/// The parameters of the single video track, fixed for the life of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackParams {
    /// The complete sample entry box (`avc1`/`hvc1` with its `avcC`/`hvcC` child), as given by
    /// retina's `VideoParameters::mp4_sample_entry()`. Written verbatim into `stsd`.
    pub sample_entry: Vec<u8>,
    /// Display width in pixels (at most 65535: `tkhd` stores it as 16.16 fixed point).
    pub width: u32,
    /// Display height in pixels (at most 65535).
    pub height: u32,
    /// Ticks per second of sample durations and decode times; RTSP video uses 90 000.
    pub timescale: u32,
}

/// Smallest well-formed visual sample entry: box header (8) + SampleEntry (8) +
/// VisualSampleEntry fields (70), before any child box such as `avcC`.
const MIN_VISUAL_SAMPLE_ENTRY: usize = 86;

impl TrackParams {
    /// Checks what the container relies on; the codec configuration itself is opaque here.
    pub fn validate(&self) -> Result<(), Mp4Error> {
        let bad = |why: String| Err(Mp4Error::InvalidTrack(why));
        if self.timescale == 0 {
            return bad("timescale is 0".into());
        }
        if self.width > 0xFFFF || self.height > 0xFFFF {
            return bad(format!(
                "{}x{} exceeds 65535 pixels in one dimension",
                self.width, self.height
            ));
        }
        let e = &self.sample_entry;
        if e.len() < MIN_VISUAL_SAMPLE_ENTRY {
            return bad(format!(
                "sample entry is {} bytes, shorter than a visual sample entry ({MIN_VISUAL_SAMPLE_ENTRY})",
                e.len()
            ));
        }
        let declared = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        if u64::from(declared) != e.len() as u64 {
            return bad(format!(
                "sample entry box declares {declared} bytes but has {}",
                e.len()
            ));
        }
        Ok(())
    }

    /// The sample entry's box type, e.g. `avc1`.
    pub fn codec(&self) -> FourCc {
        let mut f = [0u8; 4];
        if let Some(b) = self.sample_entry.get(4..8) {
            f.copy_from_slice(b);
        }
        FourCc(f)
    }
}

/// One sample (an access unit) to append to a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// In track timescale units: the time until the next sample.
    pub duration: u32,
    /// True for a random access point (an IDR picture).
    pub is_sync: bool,
    /// The sample in AVCC form: NAL units, each preceded by a 4-byte big-endian length.
    pub data: bytes::Bytes,
}

/// Where one sample of a recording lies, without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleRef {
    /// Which source recording holds the sample. [`parse_fragmented`] sets 0; a caller
    /// combining several recordings in one [`ProgressiveMp4`] renumbers them.
    pub source: u32,
    /// Byte offset of the sample's data in that recording's plaintext.
    pub offset: u64,
    pub size: u32,
    pub duration: u32,
    pub is_sync: bool,
    /// In track timescale units, from `tfdt` plus the durations before it in its fragment.
    pub decode_time: u64,
}

/// A positioned reader: the decrypted recording, a file, or a byte slice.
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`, returning how many were read; 0 means end.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Total length in bytes.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`, failing with `UnexpectedEof` if the data ends first.
    fn read_exact_at(&mut self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(offset, buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    let n = n.min(buf.len());
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for &[u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let avail = self.get(start..).unwrap_or(&[]);
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }

    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
}

impl<R: ReadAt + ?Sized> ReadAt for &mut R {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }

    fn len(&self) -> u64 {
        (**self).len()
    }
}

/// A box type, printed as text where it is printable ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

/// Everything that can go wrong writing, reading or exporting MP4. Offsets are byte offsets
/// in the (plaintext) file, enough to find the bad box with a hex dump.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Mp4Error {
    /// The caller's [`TrackParams`] cannot be written (a bug or a bad camera, not bad data).
    #[error("invalid track parameters: {0}")]
    InvalidTrack(String),

    /// The caller's samples cannot be written (empty, too large, bad source index, ...).
    #[error("invalid samples: {0}")]
    InvalidSamples(String),

    /// An export mixes recordings whose sample entries differ; one `moov` has one `stsd` entry.
    #[error("source {source_id} has track parameters different from source 0")]
    MixedTracks { source_id: u32 },

    /// The file ends before its `moov` is complete: nothing in it is usable.
    #[error("file ends inside its init segment (ftyp+moov): only {len} bytes")]
    IncompleteInit { len: u64 },

    /// The bytes are not a recording in our format.
    #[error("malformed {fourcc} box at offset {offset}: {reason}")]
    Malformed {
        fourcc: FourCc,
        offset: u64,
        reason: String,
    },

    /// Well-formed MP4 using a feature this module does not handle.
    #[error("unsupported {fourcc} box at offset {offset}: {what}")]
    Unsupported {
        fourcc: FourCc,
        offset: u64,
        what: String,
    },

    #[error("reading the recording at offset {offset}")]
    Read {
        offset: u64,
        #[source]
        error: io::Error,
    },

    #[error("reading source {source_id} at offset {offset}")]
    ReadSource {
        source_id: u32,
        offset: u64,
        #[source]
        error: io::Error,
    },

    #[error("writing the output")]
    Write(#[source] io::Error),
}
