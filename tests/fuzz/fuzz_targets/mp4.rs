//! The MP4 side of the store (`store::mp4`): the parser reads recordings back, and the
//! fragment writer takes a sample entry built from the camera's SPS/PPS and frames
//! the camera sent.
//!
//! Every input is parsed as a file; then, read as (sample entry, track numbers,
//! samples), it is written with `init_segment` + `fragment`, and what was written must
//! parse back to the same samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porchlight::store::mp4::{fragment, init_segment, parse_fragmented, Sample, TrackParams};

fuzz_target!(|data: &[u8]| {
    let _ = parse_fragmented(&mut &data[..]);

    // [entry_len: u8] [entry...] [w: u16] [h: u16] [timescale: u16] [n sizes: u8 each] [bytes]
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let len = 86 + usize::from(len);
    if rest.len() < len + 6 {
        return;
    }
    let (entry, rest) = rest.split_at(len);
    let mut sample_entry = entry.to_vec();
    sample_entry[..4].copy_from_slice(&(len as u32).to_be_bytes());
    let num = |i: usize| u32::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
    let track = TrackParams {
        sample_entry,
        width: num(0),
        height: num(2),
        timescale: num(4).max(1),
    };
    let rest = &rest[6..];
    let mut samples = Vec::new();
    let mut body = rest;
    while let Some((&size, tail)) = body.split_first() {
        let size = usize::from(size % 64);
        if tail.len() < size {
            break;
        }
        let (d, tail) = tail.split_at(size);
        samples.push(Sample {
            duration: 3000 + u32::from(size as u8),
            is_sync: samples.is_empty() || size % 5 == 0,
            data: bytes::Bytes::copy_from_slice(d),
        });
        body = tail;
    }
    let Ok(mut file) = init_segment(&track) else {
        return;
    };
    if samples.is_empty() {
        return;
    }
    let Ok(frag) = fragment(1, 0, &samples) else {
        return;
    };
    file.extend_from_slice(&frag);
    let index = parse_fragmented(&mut &file[..]).expect("what the writer wrote parses");
    assert_eq!(index.track, track, "track parameters round-trip");
    assert_eq!(index.samples.len(), samples.len());
    for (got, want) in index.samples.iter().zip(&samples) {
        assert_eq!(got.size as usize, want.data.len());
        assert_eq!(got.duration, want.duration);
        assert_eq!(got.is_sync, want.is_sync);
        let at = got.offset as usize;
        assert_eq!(&file[at..at + want.data.len()], &want.data[..]);
    }
});
