//! A moov-first MP4 (`ftyp`, `moov`, `mdat`) laid out virtually over source recordings.
//!
//! Only the header (ftyp + moov + mdat header) is built in memory. The `mdat` payload is a
//! list of runs, each a byte range of one source recording's plaintext holding consecutive
//! samples; each run is one chunk in `stco`/`co64`. So a multi-hour export costs a few bytes
//! per sample of memory, and any byte range of it can be produced on demand ([`Piece`]).
//!
//! Timing comes from the samples' durations alone: `stts` is their run-length encoding, and
//! decode times in [`SampleRef`] are not consulted, so a gap between two recordings is
//! closed up rather than shown as a freeze.

use std::io::{self, Write};

use bytes::BufMut;

use super::boxes::{mdat_header_len, write_full_box, write_mdat_header};
use super::moov::{write_ftyp, write_moov, MoovSpec};
use super::{Mp4Error, SampleRef, TrackParams};

/// Most samples one export may hold: about 26 days at 30 fps. Keeps `moov` (~16 bytes a
/// sample) far below 4 GiB.
const MAX_SAMPLES: usize = 1 << 26;

/// Bytes copied at a time by [`ProgressiveMp4::write_range`].
const COPY_BUF: usize = 64 * 1024;

/// A moov-first MP4 over samples of one or more recordings.
#[derive(Debug)]
pub struct ProgressiveMp4 {
    /// ftyp + moov + mdat header.
    header: Vec<u8>,
    /// The mdat payload, in file order, back to back from `header.len()`.
    runs: Vec<Run>,
    len: u64,
}

/// Consecutive samples stored contiguously in one source.
#[derive(Debug)]
struct Run {
    /// Offset in the virtual file.
    start: u64,
    source: u32,
    /// Offset in the source.
    offset: u64,
    len: u64,
    samples: u32,
}

/// Reads source `source` at `offset`, filling the whole buffer (as
/// [`super::ReadAt::read_exact_at`] does): how [`ProgressiveMp4::write_range`] gets samples.
pub type ReadSource<'a> = dyn FnMut(u32, u64, &mut [u8]) -> io::Result<()> + 'a;

/// A part of the virtual file: literal header bytes or a range of a source to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Header(&'a [u8]),
    Source { source: u32, offset: u64, len: u64 },
}

impl Piece<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Header(b) => b.len() as u64,
            Piece::Source { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ProgressiveMp4 {
    /// Lays out an MP4 holding `samples` in order. `tracks[n]` is the track of source `n`
    /// (the source's [`super::FragmentedIndex::track`]); all must be equal, since the
    /// `moov` has a single sample entry. The first sample must be a sync sample so that the
    /// file decodes from its start.
    pub fn new(tracks: &[TrackParams], samples: &[SampleRef]) -> Result<Self, Mp4Error> {
        let invalid = |why: String| Err(Mp4Error::InvalidSamples(why));
        let Some(track) = tracks.first() else {
            return invalid("no source tracks".into());
        };
        track.validate()?;
        if let Some(i) = tracks.iter().position(|t| t != track) {
            return Err(Mp4Error::MixedTracks {
                source_id: u32::try_from(i).unwrap_or(u32::MAX),
            });
        }
        match samples.first() {
            None => return invalid("no samples".into()),
            Some(s) if !s.is_sync => {
                return invalid("the first sample is not a sync sample".into())
            }
            Some(_) => {}
        }
        if samples.len() > MAX_SAMPLES {
            return invalid(format!("{} samples exceed {MAX_SAMPLES}", samples.len()));
        }
        if let Some(s) = samples.iter().find(|s| s.source as usize >= tracks.len()) {
            return invalid(format!("source {} of {} sources", s.source, tracks.len()));
        }

        // Runs, with offsets relative to the mdat payload for now.
        let mut runs: Vec<Run> = Vec::new();
        let mut payload = 0u64;
        for s in samples {
            let size = u64::from(s.size);
            match runs.last_mut() {
                Some(r)
                    if r.source == s.source && r.offset.checked_add(r.len) == Some(s.offset) =>
                {
                    r.len += size;
                    r.samples += 1;
                }
                _ => runs.push(Run {
                    start: payload,
                    source: s.source,
                    offset: s.offset,
                    len: size,
                    samples: 1,
                }),
            }
            payload += size;
        }
        let duration: u64 = samples.iter().map(|s| u64::from(s.duration)).sum();

        let mdat_header = mdat_header_len(payload);
        let last_chunk = runs.last().expect("samples is not empty").start;
        let build =
            |base: u64, co64: bool| build_header(track, samples, &runs, duration, base, co64);
        let co64 = build(0, false).len() as u64 + mdat_header + last_chunk > u64::from(u32::MAX);
        let base = build(0, co64).len() as u64 + mdat_header;
        let mut header = build(base, co64);
        write_mdat_header(&mut header, payload);
        debug_assert_eq!(header.len() as u64, base);
        for r in &mut runs {
            r.start += base;
        }
        Ok(ProgressiveMp4 {
            header,
            runs,
            len: base + payload,
        })
    }

    /// Total length of the file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces making up bytes `[start, end)` (clamped to the file), in order, with no
    /// empty piece. Their lengths add up to the clamped range's length.
    pub fn pieces(&self, start: u64, end: u64) -> Vec<Piece<'_>> {
        let end = end.min(self.len);
        let mut pieces = Vec::new();
        if start >= end {
            return pieces;
        }
        let header_len = self.header.len() as u64;
        if start < header_len {
            let h = end.min(header_len);
            // Both bounds are below header_len, a usize.
            pieces.push(Piece::Header(&self.header[start as usize..h as usize]));
        }
        let start = start.max(header_len);
        let first = self.runs.partition_point(|r| r.start + r.len <= start);
        for r in self.runs[first..].iter().take_while(|r| r.start < end) {
            let a = start.max(r.start);
            let b = end.min(r.start + r.len);
            if b > a {
                pieces.push(Piece::Source {
                    source: r.source,
                    offset: r.offset + (a - r.start),
                    len: b - a,
                });
            }
        }
        pieces
    }

    /// Writes bytes `[start, end)` of the file to `out`. `read_source(source, offset, buf)`
    /// must fill `buf` from that source's plaintext at `offset`.
    pub fn write_range(
        &self,
        start: u64,
        end: u64,
        read_source: &mut ReadSource<'_>,
        out: &mut impl Write,
    ) -> Result<(), Mp4Error> {
        let mut buf = Vec::new();
        for piece in self.pieces(start, end) {
            match piece {
                Piece::Header(h) => out.write_all(h).map_err(Mp4Error::Write)?,
                Piece::Source {
                    source,
                    offset,
                    len,
                } => {
                    let mut done = 0;
                    while done < len {
                        let n = (len - done).min(COPY_BUF as u64) as usize;
                        buf.resize(n, 0);
                        let at = offset + done;
                        read_source(source, at, &mut buf).map_err(|error| {
                            Mp4Error::ReadSource {
                                source_id: source,
                                offset: at,
                                error,
                            }
                        })?;
                        out.write_all(&buf).map_err(Mp4Error::Write)?;
                        done += n as u64;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the whole file; see [`Self::write_range`].
    pub fn write_to(
        &self,
        read_source: &mut ReadSource<'_>,
        out: &mut impl Write,
    ) -> Result<(), Mp4Error> {
        self.write_range(0, self.len, read_source, out)
    }
}

/// ftyp + moov, with chunk offsets `base + run.start`.
fn build_header(
    track: &TrackParams,
    samples: &[SampleRef],
    runs: &[Run],
    duration: u64,
    base: u64,
    co64: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 + 16 * samples.len());
    write_ftyp(&mut out, b"isom", &[b"isom", b"iso2", b"mp41"]);
    let tables = |out: &mut Vec<u8>| write_sample_tables(out, samples, runs, base, co64);
    let spec = MoovSpec {
        duration,
        sample_tables: &tables,
        fragmented: false,
    };
    write_moov(&mut out, track, &spec);
    out
}

/// Counts fit in u32: samples and runs are at most MAX_SAMPLES.
fn count(n: usize) -> u32 {
    u32::try_from(n).expect("bounded by MAX_SAMPLES")
}

fn write_sample_tables(
    out: &mut Vec<u8>,
    samples: &[SampleRef],
    runs: &[Run],
    base: u64,
    co64: bool,
) {
    // stts: (sample_count, sample_delta) runs of equal durations.
    let mut stts: Vec<(u32, u32)> = Vec::new();
    for s in samples {
        match stts.last_mut() {
            Some((n, d)) if *d == s.duration => *n += 1,
            _ => stts.push((1, s.duration)),
        }
    }
    write_full_box(out, b"stts", 0, 0, |out| {
        out.put_u32(count(stts.len()));
        for (n, d) in stts {
            out.put_u32(n);
            out.put_u32(d);
        }
    });

    let sync: Vec<u32> = (1..)
        .zip(samples)
        .filter(|(_, s)| s.is_sync)
        .map(|(i, _)| i)
        .collect();
    write_full_box(out, b"stss", 0, 0, |out| {
        out.put_u32(count(sync.len()));
        sync.iter().for_each(|&i| out.put_u32(i));
    });

    // stsc: (first_chunk, samples_per_chunk, sample_description_index) where that changes.
    let mut stsc: Vec<(u32, u32)> = Vec::new();
    for (chunk, r) in (1..).zip(runs) {
        if stsc.last().map(|&(_, n)| n) != Some(r.samples) {
            stsc.push((chunk, r.samples));
        }
    }
    write_full_box(out, b"stsc", 0, 0, |out| {
        out.put_u32(count(stsc.len()));
        for (first, n) in stsc {
            out.put_u32(first);
            out.put_u32(n);
            out.put_u32(1);
        }
    });

    write_full_box(out, b"stsz", 0, 0, |out| {
        out.put_u32(0); // sizes vary
        out.put_u32(count(samples.len()));
        samples.iter().for_each(|s| out.put_u32(s.size));
    });

    if co64 {
        write_full_box(out, b"co64", 0, 0, |out| {
            out.put_u32(count(runs.len()));
            runs.iter().for_each(|r| out.put_u64(base + r.start));
        });
    } else {
        write_full_box(out, b"stco", 0, 0, |out| {
            out.put_u32(count(runs.len()));
            for r in runs {
                // With base 0 (the sizing pass) this always fits; new() then checks the rest.
                out.put_u32(u32::try_from(base + r.start).unwrap_or(u32::MAX));
            }
        });
    }
}
