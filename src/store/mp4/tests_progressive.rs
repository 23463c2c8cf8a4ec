//! The moov-first export's layout, without a decoder (see `tests_ffmpeg` for that).

use super::testutil::{
    find_box, synthetic_samples, synthetic_track, top_level_boxes, write_recording,
};
use super::*;

const STBL: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];

fn stbl_box<'a>(file: &'a [u8], name: &[u8; 4]) -> &'a [u8] {
    let mut path = STBL.to_vec();
    path.push(name);
    find_box(file, &path).unwrap_or_else(|| panic!("no {}", FourCc(*name)))
}

fn u32s(body: &[u8]) -> Vec<u32> {
    body.chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn read_from(sources: &[Vec<u8>]) -> impl FnMut(u32, u64, &mut [u8]) -> std::io::Result<()> + '_ {
    |source, offset, buf| {
        let mut src = sources
            .get(source as usize)
            .ok_or(std::io::ErrorKind::NotFound)?
            .as_slice();
        src.read_exact_at(offset, buf)
    }
}

#[test]
fn export_holds_the_samples_in_order_with_run_length_tables() {
    let track = synthetic_track();
    let samples = synthetic_samples(12, 5);
    let (rec, _) = write_recording(&track, &samples, &[3, 5, 9], 0);
    let idx = parse_fragmented(&mut rec.as_slice()).unwrap();
    let mp4 = ProgressiveMp4::new(std::slice::from_ref(&track), &idx.samples).unwrap();
    let mut out = Vec::new();
    mp4.write_to(&mut read_from(&[rec]), &mut out).unwrap();

    assert_eq!(out.len() as u64, mp4.len());
    assert_eq!(top_level_boxes(&out), ["ftyp", "moov", "mdat"]);
    let payload: Vec<u8> = samples
        .iter()
        .flat_map(|s| s.data.iter().copied())
        .collect();
    assert_eq!(find_box(&out, &[b"mdat"]).unwrap(), &payload[..]);

    // Durations cycle 9000, 9001, 9002: no two neighbours equal, so 12 stts entries.
    let stts = u32s(&stbl_box(&out, b"stts")[4..]);
    assert_eq!(stts[0], 12);
    assert_eq!(&stts[1..5], [1, 9000, 1, 9001]);
    assert_eq!(u32s(&stbl_box(&out, b"stss")[4..]), [3, 1, 6, 11]);
    // One chunk per fragment: 3, 2, 4, 3 samples.
    let stsc = u32s(&stbl_box(&out, b"stsc")[4..]);
    assert_eq!(stsc, [4, 1, 3, 1, 2, 2, 1, 3, 4, 1, 4, 3, 1]);
    let stsz = u32s(&stbl_box(&out, b"stsz")[4..]);
    assert_eq!(stsz[..2], [0, 12]);
    assert_eq!(
        stsz[2..],
        samples
            .iter()
            .map(|s| s.data.len() as u32)
            .collect::<Vec<_>>()
    );
    let stco = u32s(&stbl_box(&out, b"stco")[4..]);
    assert_eq!(stco.len(), 5);
    let mdat_start = out.len() - payload.len();
    assert_eq!(stco[1] as usize, mdat_start);
    assert_eq!(&out[stco[2] as usize..][..10 + 3 * 7], &samples[3].data[..]);

    let mdhd = find_box(&out, &[b"moov", b"trak", b"mdia", b"mdhd"]).unwrap();
    let total: u32 = samples.iter().map(|s| s.duration).sum();
    assert_eq!(mdhd[0], 0, "version 0 while the duration fits");
    assert_eq!(u32s(&mdhd[12..20]), [90_000, total]);
}

#[test]
fn stts_merges_equal_neighbouring_durations() {
    let track = synthetic_track();
    let mut samples = synthetic_samples(6, 6);
    for (s, d) in samples.iter_mut().zip([9000, 9000, 9000, 4500, 9000, 9000]) {
        s.duration = d;
    }
    let (rec, _) = write_recording(&track, &samples, &[2], 0);
    let idx = parse_fragmented(&mut rec.as_slice()).unwrap();
    let mp4 = ProgressiveMp4::new(&[track], &idx.samples).unwrap();
    let Piece::Header(header) = mp4.pieces(0, 1 << 20)[0] else {
        panic!("header first")
    };
    let stts = u32s(&stbl_box(header, b"stts")[4..]);
    assert_eq!(stts, [3, 3, 9000, 1, 4500, 2, 9000]);
}

#[test]
fn pieces_reproduce_any_byte_range() {
    let track = synthetic_track();
    let (a, _) = write_recording(&track, &synthetic_samples(12, 5), &[3, 5, 9], 0);
    let (b, _) = write_recording(&track, &synthetic_samples(7, 3), &[2], 0);
    let mut samples = parse_fragmented(&mut a.as_slice()).unwrap().samples;
    let mut more = parse_fragmented(&mut b.as_slice()).unwrap().samples;
    more.iter_mut().for_each(|s| s.source = 1);
    samples.extend(more);
    let mp4 = ProgressiveMp4::new(&[track.clone(), track], &samples).unwrap();
    let sources = [a, b];
    let mut whole = Vec::new();
    mp4.write_to(&mut read_from(&sources), &mut whole).unwrap();

    let len = mp4.len();
    for (start, end) in [
        (0, len),
        (0, 1),
        (5, 900),
        (len - 1, len),
        (len, len + 9),
        (300, 200),
    ] {
        let mut got = Vec::new();
        for p in mp4.pieces(start, end) {
            assert!(!p.is_empty());
            match p {
                Piece::Header(h) => got.extend_from_slice(h),
                Piece::Source {
                    source,
                    offset,
                    len,
                } => {
                    let src = &sources[source as usize];
                    got.extend_from_slice(&src[offset as usize..(offset + len) as usize]);
                }
            }
        }
        let (s, e) = (start.min(len) as usize, end.clamp(start, len) as usize);
        assert_eq!(got, &whole[s..e], "range {start}..{end}");
        let mut ranged = Vec::new();
        mp4.write_range(start, end, &mut read_from(&sources), &mut ranged)
            .unwrap();
        assert_eq!(ranged, got);
    }
    for step in [1, 7, 64, 333] {
        let mut got = Vec::new();
        for start in (0..len).step_by(step) {
            mp4.write_range(
                start,
                start + step as u64,
                &mut read_from(&sources),
                &mut got,
            )
            .unwrap();
        }
        assert_eq!(got, whole, "step {step}");
    }
}

#[test]
fn exports_over_4_gib_use_largesize_64_bit_durations_and_co64_when_a_chunk_needs_it() {
    // Six 1 GiB samples; `gap` bytes of moof between them in the source.
    let samples = |gap: u64| -> Vec<SampleRef> {
        (0..6)
            .map(|i| SampleRef {
                source: 0,
                offset: i * ((1 << 30) + gap),
                size: 1 << 30,
                duration: u32::MAX,
                is_sync: i == 0,
                decode_time: 0,
            })
            .collect()
    };
    let header_of = |mp4: &ProgressiveMp4| -> Vec<u8> {
        match mp4.pieces(0, 1 << 20)[..] {
            [Piece::Header(h), Piece::Source {
                source: 0,
                offset: 0,
                len,
            }] => {
                assert_eq!(h.len() as u64 + len, 1 << 20);
                h.to_vec()
            }
            ref other => panic!("unexpected pieces {other:?}"),
        }
    };

    // Contiguous in the source: one chunk at a small offset, so stco suffices.
    let mp4 = ProgressiveMp4::new(&[synthetic_track()], &samples(0)).unwrap();
    let header = header_of(&mp4);
    assert_eq!(header.len() as u64, mp4.len() - (6 << 30));
    assert_eq!(
        &header[header.len() - 16..header.len() - 8],
        b"\0\0\0\x01mdat"
    );
    assert_eq!(
        u32s(stbl_box(&header, b"stco")),
        [0, 1, header.len() as u32]
    );
    let mdhd = find_box(&header, &[b"moov", b"trak", b"mdia", b"mdhd"]).unwrap();
    assert_eq!(mdhd[0], 1, "version 1 for a 64-bit duration");
    assert_eq!(
        u64::from_be_bytes(mdhd[24..32].try_into().unwrap()),
        6 * u64::from(u32::MAX)
    );
    assert_eq!(
        mp4.pieces(mp4.len() - 10, u64::MAX),
        [Piece::Source {
            source: 0,
            offset: (6 << 30) - 10,
            len: 10
        }]
    );

    // Scattered: six chunks, the last ones past 4 GiB, so co64.
    let mp4 = ProgressiveMp4::new(&[synthetic_track()], &samples(100)).unwrap();
    let header = header_of(&mp4);
    let stbl = find_box(&header, &STBL).unwrap();
    assert!(find_box(stbl, &[b"stco"]).is_none());
    let co64 = find_box(stbl, &[b"co64"]).unwrap();
    assert_eq!(&co64[4..8], &6u32.to_be_bytes());
    let last = u64::from_be_bytes(co64[co64.len() - 8..].try_into().unwrap());
    assert_eq!(last, header.len() as u64 + (5 << 30));
    assert_eq!(
        mp4.pieces(last - 1, last + 1),
        [
            Piece::Source {
                source: 0,
                offset: 4 * ((1 << 30) + 100) + (1 << 30) - 1,
                len: 1
            },
            Piece::Source {
                source: 0,
                offset: 5 * ((1 << 30) + 100),
                len: 1
            },
        ]
    );
}

#[test]
fn export_rejects_mixed_tracks_unknown_sources_and_a_non_sync_start() {
    let track = synthetic_track();
    let (rec, _) = write_recording(&track, &synthetic_samples(6, 3), &[], 0);
    let samples = parse_fragmented(&mut rec.as_slice()).unwrap().samples;
    let other = TrackParams {
        width: 640,
        ..track.clone()
    };

    let err = ProgressiveMp4::new(&[track.clone(), other], &samples).unwrap_err();
    assert!(
        matches!(err, Mp4Error::MixedTracks { source_id: 1 }),
        "{err}"
    );
    let mut bad = samples.clone();
    bad[4].source = 1;
    let err = ProgressiveMp4::new(std::slice::from_ref(&track), &bad).unwrap_err();
    assert!(matches!(err, Mp4Error::InvalidSamples(_)), "{err}");
    let err = ProgressiveMp4::new(std::slice::from_ref(&track), &samples[1..]).unwrap_err();
    assert!(err.to_string().contains("not a sync sample"), "{err}");
    let err = ProgressiveMp4::new(std::slice::from_ref(&track), &[]).unwrap_err();
    assert!(matches!(err, Mp4Error::InvalidSamples(_)), "{err}");
    let err = ProgressiveMp4::new(&[], &samples).unwrap_err();
    assert!(matches!(err, Mp4Error::InvalidSamples(_)), "{err}");
}

#[test]
fn a_failing_source_read_names_the_source_and_offset() {
    let track = synthetic_track();
    let (rec, _) = write_recording(&track, &synthetic_samples(3, 3), &[], 0);
    let samples = parse_fragmented(&mut rec.as_slice()).unwrap().samples;
    let mp4 = ProgressiveMp4::new(&[track], &samples).unwrap();
    let err = mp4
        .write_to(&mut read_from(&[]), &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(err, Mp4Error::ReadSource { source_id: 0, offset, .. } if offset == samples[0].offset),
        "{err}"
    );
}
