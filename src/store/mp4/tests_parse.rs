//! Writer → parser round trips, torn tails, and hostile input (no ffmpeg needed).

use super::testutil::{find_box, synthetic_samples, synthetic_track, write_recording};
use super::*;

/// Fragments start at 0, 3 (non-sync), 5 (sync), 9 (non-sync) with a sync sample every 5.
const CUTS: &[usize] = &[3, 5, 9];
const BASE: u64 = 1_000_000;

/// The index a correct parser must produce for `write_recording(.., CUTS, BASE)`.
fn expected_refs(samples: &[Sample], ends: &[usize], upto_fragments: usize) -> Vec<SampleRef> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(CUTS);
    bounds.push(samples.len());
    let mut refs = Vec::new();
    let mut t = BASE;
    for (k, w) in bounds.windows(2).enumerate().take(upto_fragments) {
        let frag = &samples[w[0]..w[1]];
        let payload: usize = frag.iter().map(|s| s.data.len()).sum();
        let mut offset = (ends[k + 1] - payload) as u64;
        for s in frag {
            refs.push(SampleRef {
                source: 0,
                offset,
                size: s.data.len() as u32,
                duration: s.duration,
                is_sync: s.is_sync,
                decode_time: t,
            });
            offset += s.data.len() as u64;
            t += u64::from(s.duration);
        }
    }
    refs
}

#[test]
fn parse_round_trips_offsets_durations_and_sync_flags() {
    let track = synthetic_track();
    let samples = synthetic_samples(12, 5);
    let (file, ends) = write_recording(&track, &samples, CUTS, BASE);

    let idx = parse_fragmented(&mut file.as_slice()).unwrap();

    assert_eq!(idx.track, track);
    assert_eq!(idx.ignored_tail_bytes, 0);
    assert_eq!(idx.samples, expected_refs(&samples, &ends, CUTS.len() + 1));
    for (r, s) in idx.samples.iter().zip(&samples) {
        let at = r.offset as usize;
        assert_eq!(&file[at..at + r.size as usize], &s.data[..]);
    }
}

#[test]
fn fragments_flag_each_sample_and_point_into_mdat() {
    let samples = synthetic_samples(3, 2); // sync, non-sync, sync
    let frag = fragment(7, 42, &samples).unwrap();
    let trun = find_box(&frag, &[b"moof", b"traf", b"trun"]).unwrap();
    assert_eq!(
        &trun[..4],
        &[0, 0, 0x07, 0x01],
        "version 0, data offset + duration/size/flags"
    );
    assert_eq!(&trun[4..8], &3u32.to_be_bytes());
    let data_offset = u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize;
    assert_eq!(&frag[data_offset - 8 + 4..data_offset], b"mdat");
    assert_eq!(&frag[data_offset..data_offset + 10], &samples[0].data[..]);
    let flags: Vec<u32> = (0..3)
        .map(|i| u32::from_be_bytes(trun[20 + 12 * i..24 + 12 * i].try_into().unwrap()))
        .collect();
    assert_eq!(flags, [0x0200_0000, 0x0101_0000, 0x0200_0000]);
    let tfdt = find_box(&frag, &[b"moof", b"traf", b"tfdt"]).unwrap();
    assert_eq!(tfdt, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42]);
    let mfhd = find_box(&frag, &[b"moof", b"mfhd"]).unwrap();
    assert_eq!(mfhd, [0, 0, 0, 0, 0, 0, 0, 7]);
}

#[test]
fn init_segment_declares_brands_and_carries_the_sample_entry_verbatim() {
    let track = synthetic_track();
    let init = init_segment(&track).unwrap();
    let ftyp = find_box(&init, &[b"ftyp"]).unwrap();
    assert_eq!(ftyp, b"iso6\0\0\0\0iso6iso5mp41");
    let stsd = find_box(
        &init,
        &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
    )
    .unwrap();
    assert_eq!(&stsd[8..], &track.sample_entry[..]);
    assert!(find_box(&init, &[b"moov", b"mvex", b"trex"]).is_some());
}

#[test]
fn invalid_inputs_to_the_writer_are_errors() {
    let mut track = synthetic_track();
    track.sample_entry.push(0); // box size no longer matches
    assert!(matches!(
        init_segment(&track),
        Err(Mp4Error::InvalidTrack(_))
    ));
    let track = TrackParams {
        timescale: 0,
        ..synthetic_track()
    };
    assert!(matches!(
        init_segment(&track),
        Err(Mp4Error::InvalidTrack(_))
    ));
    let track = TrackParams {
        width: 70_000,
        ..synthetic_track()
    };
    assert!(matches!(
        init_segment(&track),
        Err(Mp4Error::InvalidTrack(_))
    ));
    assert!(matches!(
        fragment(1, 0, &[]),
        Err(Mp4Error::InvalidSamples(_))
    ));
}

#[test]
fn every_torn_tail_keeps_the_complete_fragments() {
    let samples = synthetic_samples(12, 5);
    let (file, ends) = write_recording(&synthetic_track(), &samples, CUTS, BASE);
    for cut in ends[0]..=file.len() {
        let complete = ends.iter().rposition(|&e| e <= cut).unwrap(); // fragments kept
        let idx =
            parse_fragmented(&mut &file[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(
            idx.samples,
            expected_refs(&samples, &ends, complete),
            "cut at {cut}"
        );
        assert_eq!(
            idx.ignored_tail_bytes,
            (cut - ends[complete]) as u64,
            "cut at {cut}"
        );
    }
}

#[test]
fn a_recording_torn_inside_its_init_segment_is_reported() {
    let (file, ends) = write_recording(&synthetic_track(), &synthetic_samples(4, 2), &[], 0);
    for cut in 0..ends[0] {
        let err = parse_fragmented(&mut &file[..cut]).unwrap_err();
        assert!(
            matches!(err, Mp4Error::IncompleteInit { len } if len == cut as u64),
            "{err}"
        );
    }
}

/// Offset of the `trun` body (after its 8-byte header) in a one-fragment recording.
fn trun_body_at(file: &[u8], init_len: usize) -> usize {
    let frag = &file[init_len..];
    let trun = find_box(frag, &[b"moof", b"traf", b"trun"]).unwrap();
    init_len + (trun.as_ptr() as usize - frag.as_ptr() as usize)
}

#[test]
fn a_huge_declared_sample_count_is_rejected() {
    let (mut file, ends) = write_recording(&synthetic_track(), &synthetic_samples(4, 2), &[], 0);
    let at = trun_body_at(&file, ends[0]) + 4;
    file[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = parse_fragmented(&mut file.as_slice()).unwrap_err();
    assert!(
        matches!(&err, Mp4Error::Malformed { fourcc, .. } if fourcc.0 == *b"trun"),
        "{err}"
    );
    assert!(err.to_string().contains("4294967295 samples need"), "{err}");
}

#[test]
fn a_sample_outside_its_mdat_is_rejected() {
    let (mut file, ends) = write_recording(&synthetic_track(), &synthetic_samples(4, 2), &[], 0);
    let first_size = trun_body_at(&file, ends[0]) + 12 + 4;
    file[first_size..first_size + 4].copy_from_slice(&1_000_000u32.to_be_bytes());
    let err = parse_fragmented(&mut file.as_slice()).unwrap_err();
    assert!(err.to_string().contains("outside mdat payload"), "{err}");
}

#[test]
fn composition_offsets_are_unsupported_not_dropped() {
    let (mut file, ends) = write_recording(&synthetic_track(), &synthetic_samples(4, 2), &[], 0);
    let flags = trun_body_at(&file, ends[0]) + 2;
    file[flags] |= 0x08; // sample-composition-time-offsets-present
    let err = parse_fragmented(&mut file.as_slice()).unwrap_err();
    assert!(matches!(err, Mp4Error::Unsupported { .. }), "{err}");
}

#[test]
fn decode_time_going_backwards_is_rejected() {
    let track = synthetic_track();
    let samples = synthetic_samples(4, 2);
    let mut file = init_segment(&track).unwrap();
    file.extend(fragment(1, 90_000, &samples[..2]).unwrap());
    file.extend(fragment(2, 0, &samples[2..]).unwrap());
    let err = parse_fragmented(&mut file.as_slice()).unwrap_err();
    assert!(err.to_string().contains("goes back"), "{err}");
}

#[test]
fn a_fragment_before_the_moov_is_rejected() {
    let samples = synthetic_samples(2, 1);
    let init = init_segment(&synthetic_track()).unwrap();
    let ftyp_len = u32::from_be_bytes(init[..4].try_into().unwrap()) as usize;
    let mut file = init[..ftyp_len].to_vec();
    file.extend(fragment(1, 0, &samples).unwrap());
    file.extend(&init[ftyp_len..]);
    let err = parse_fragmented(&mut file.as_slice()).unwrap_err();
    assert!(
        matches!(&err, Mp4Error::Malformed { fourcc, .. } if fourcc.0 == *b"moof"),
        "{err}"
    );
}

#[test]
fn a_recording_with_only_its_init_segment_has_no_samples() {
    let init = init_segment(&synthetic_track()).unwrap();
    let idx = parse_fragmented(&mut init.as_slice()).unwrap();
    assert!(idx.samples.is_empty());
    assert_eq!(idx.ignored_tail_bytes, 0);
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every sample a successful parse reports must lie inside the file.
fn check_parse_is_sane(data: &[u8]) {
    if let Ok(idx) = parse_fragmented(&mut &data[..]) {
        for s in &idx.samples {
            assert!(s.offset + u64::from(s.size) <= data.len() as u64);
        }
        assert!(idx.ignored_tail_bytes <= data.len() as u64);
    }
}

#[test]
fn garbage_is_rejected_without_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for len in [0, 1, 7, 8, 9, 15, 16, 17, 100, 4096] {
        for _ in 0..50 {
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert!(
                parse_fragmented(&mut data.as_slice()).is_err(),
                "random bytes parsed"
            );
        }
    }
}

#[test]
fn mutated_recordings_never_panic_or_point_outside_the_file() {
    let (file, _) = write_recording(&synthetic_track(), &synthetic_samples(12, 5), CUTS, BASE);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..20_000 {
        let mut data = file.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data.len());
            data[at] = match rng.below(4) {
                0 => 0,
                1 => 0xFF,
                2 => data[at] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        if rng.below(4) == 0 {
            data.truncate(rng.below(data.len()));
        }
        check_parse_is_sane(&data);
    }
}
