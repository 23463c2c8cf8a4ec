//! Tests of `reader.rs` (a child module of it, kept apart for length).
use super::*;
use crate::store::crypto::MasterKey;
use crate::store::writer::testing::{pattern, write_recording};
use crate::store::writer::SealedWriter;
use std::fs;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    master: MasterKey,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.plrec");
    Fixture {
        _dir: dir,
        path,
        master: MasterKey::generate_for_tests(),
    }
}

fn read_all(path: &Path, master: &MasterKey) -> Result<Vec<u8>, StoreError> {
    let mut r = SealedReader::open(path, master)?.into_reader(TornFiles::Refuse)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(|e| {
        *e.into_inner()
            .expect("wraps a StoreError")
            .downcast::<StoreError>()
            .expect("is a StoreError")
    })?;
    Ok(out)
}

fn chunk_authentication_of(err: &StoreError) -> Option<u32> {
    match err {
        StoreError::ChunkAuthentication { chunk, .. } => Some(*chunk),
        _ => None,
    }
}

#[test]
fn round_trip_of_small_large_and_empty_data_with_partial_chunks() {
    let data = pattern(300_000, 7);
    let cases: Vec<(u32, Vec<&[u8]>)> = vec![
        (64, vec![]),
        (64, vec![&data[..0]]),
        (64, vec![&data[..1]]),
        (64, vec![&data[..63], &data[63..64], &data[64..65]]),
        (64, vec![&data[..64], &data[64..128]]),
        (
            7,
            vec![&data[..3], &data[3..100], &data[100..101], &data[101..1000]],
        ),
        (1, vec![&data[..50]]),
        (
            65536,
            vec![&data[..1000], &data[1000..200_000], &data[200_000..]],
        ),
    ];
    for (chunk_size, pieces) in cases {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, chunk_size, &pieces, true);
        let r = SealedReader::open(&f.path, &f.master).expect("open");
        assert!(r.is_finished());
        r.verify_complete().expect("complete");
        assert_eq!(r.plaintext_len(), plain.len() as u64);
        // Every data chunk respects the size limit; only the final one is empty.
        for e in r.chunks() {
            assert!(e.plaintext_len() <= chunk_size);
            assert_eq!(e.last, e.plaintext_len() == 0);
        }
        assert_eq!(
            read_all(&f.path, &f.master).expect("read"),
            plain,
            "chunk size {chunk_size}"
        );
    }
}

#[test]
fn read_at_equals_the_plaintext_at_edges_and_across_chunk_boundaries() {
    let f = fixture();
    let data = pattern(1000, 3);
    // 16-byte chunks, with partial chunks where syncs fall.
    let plain = write_recording(
        &f.path,
        &f.master,
        16,
        &[&data[..40], &data[40..41], &data[41..]],
        true,
    );
    let mut r = SealedReader::open(&f.path, &f.master).expect("open");
    let len = plain.len() as u64;
    for offset in [
        0,
        1,
        15,
        16,
        17,
        31,
        32,
        39,
        40,
        41,
        47,
        48,
        500,
        len - 17,
        len - 1,
    ] {
        for want in [1usize, 2, 16, 17, 40, 1000] {
            let mut buf = vec![0u8; want];
            let got = r.read_at(offset, &mut buf).expect("read");
            let end = (offset as usize + want).min(plain.len());
            assert_eq!(got, end - offset as usize, "offset {offset} len {want}");
            assert_eq!(
                &buf[..got],
                &plain[offset as usize..end],
                "offset {offset} len {want}"
            );
        }
    }
    let mut buf = [0u8; 4];
    assert_eq!(r.read_at(len, &mut buf).expect("read at end"), 0);
    assert_eq!(r.read_at(len + 100, &mut buf).expect("read past end"), 0);
}

#[test]
fn plaintext_reader_reads_and_seeks() {
    let f = fixture();
    let plain = write_recording(&f.path, &f.master, 10, &[&pattern(95, 1)], true);
    let mut r = SealedReader::open(&f.path, &f.master)
        .expect("open")
        .into_reader(TornFiles::Refuse)
        .expect("finished");
    let mut buf = [0u8; 7];
    r.seek(SeekFrom::Start(8)).expect("seek");
    r.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, &plain[8..15]);
    r.seek(SeekFrom::Current(-3)).expect("seek back");
    r.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, &plain[12..19]);
    assert_eq!(r.seek(SeekFrom::End(-5)).expect("seek end"), 90);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).expect("read");
    assert_eq!(rest, &plain[90..]);
    assert!(r.seek(SeekFrom::Current(-1000)).is_err());
}

#[test]
fn flipped_byte_in_any_chunk_is_reported_with_that_chunk_number() {
    let f = fixture();
    let data = pattern(50, 9);
    write_recording(&f.path, &f.master, 16, &[&data[..20], &data[20..]], true);
    let original = fs::read(&f.path).expect("read");
    let chunks = SealedReader::open(&f.path, &f.master)
        .expect("open")
        .chunks()
        .to_vec();
    assert_eq!(chunks.len(), 5); // 16, 4 (sync) | 16, 14 (sync) | final
    for e in &chunks {
        let start = (e.file_offset as usize) + CHUNK_PREFIX_LEN;
        let end = e.end_offset() as usize;
        // first ciphertext byte (or tag byte of the empty final chunk), a middle
        // byte, and the last tag byte
        for at in [start, (start + end) / 2, end - 1] {
            let mut bytes = original.clone();
            bytes[at] ^= 0x40;
            fs::write(&f.path, &bytes).expect("write");
            let err = read_all(&f.path, &f.master).expect_err("tampered");
            assert_eq!(
                chunk_authentication_of(&err),
                Some(e.index),
                "byte {at}: {err}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("chunk {}", e.index))
                    && msg.contains("recording 0000000000000001"),
                "{msg}"
            );
        }
    }
    // Prefix bytes (length and flag) are covered too: any change is an error.
    for e in &chunks {
        for at in e.file_offset as usize..e.file_offset as usize + CHUNK_PREFIX_LEN {
            let mut bytes = original.clone();
            bytes[at] ^= 0x01;
            fs::write(&f.path, &bytes).expect("write");
            assert!(
                read_all(&f.path, &f.master).is_err(),
                "prefix byte {at} of chunk {}",
                e.index
            );
        }
    }
}

#[test]
fn swapped_chunks_are_rejected() {
    let f = fixture();
    let plain = write_recording(&f.path, &f.master, 16, &[&pattern(64, 2)], true);
    let bytes = fs::read(&f.path).expect("read");
    let r = SealedReader::open(&f.path, &f.master).expect("open");
    let (a, b) = (r.chunks()[1], r.chunks()[2]);
    assert_eq!(a.ciphertext_len, b.ciphertext_len);
    drop(r);
    let (a_range, b_range) = (
        a.file_offset as usize..a.end_offset() as usize,
        b.file_offset as usize..b.end_offset() as usize,
    );
    let swapped = [
        &bytes[..a_range.start],
        &bytes[b_range.clone()],
        &bytes[a_range.clone()],
        &bytes[b_range.end..],
    ]
    .concat();
    fs::write(&f.path, swapped).expect("write");
    let mut r = SealedReader::open(&f.path, &f.master).expect("open: the final chunk is intact");
    let mut buf = vec![0u8; plain.len()];
    let err = r.read_at(0, &mut buf).expect_err("swapped");
    assert_eq!(chunk_authentication_of(&err), Some(1), "{err}");
}

#[test]
fn dropped_chunk_is_rejected() {
    let f = fixture();
    write_recording(&f.path, &f.master, 16, &[&pattern(64, 4)], true);
    let bytes = fs::read(&f.path).expect("read");
    let chunks = SealedReader::open(&f.path, &f.master)
        .expect("open")
        .chunks()
        .to_vec();
    // Drop a middle chunk: the one after it is then read at the wrong position.
    let c = chunks[1];
    let cut = [
        &bytes[..c.file_offset as usize],
        &bytes[c.end_offset() as usize..],
    ]
    .concat();
    fs::write(&f.path, cut).expect("write");
    let err = SealedReader::open(&f.path, &f.master).expect_err("final chunk moved to counter 3");
    assert_eq!(chunk_authentication_of(&err), Some(3), "{err}");
    // Drop the final chunk: a clean cut at a chunk boundary still reads as truncated.
    let last = chunks[chunks.len() - 1];
    fs::write(&f.path, &bytes[..last.file_offset as usize]).expect("write");
    let err = read_all(&f.path, &f.master).expect_err("no final chunk");
    assert!(matches!(err, StoreError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn tampered_header_is_rejected() {
    let f = fixture();
    write_recording(&f.path, &f.master, 16, &[&pattern(40, 5)], true);
    let bytes = fs::read(&f.path).expect("read");
    let find = |needle: &[u8]| {
        bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("present")
    };
    // Fields bound only through the header hash: every chunk fails, the final
    // one already at open.
    for (what, at) in [
        ("trigger", find(b"motion")),
        ("start time", 29),
        ("chunk size", 32),
        ("nonce prefix", 45),
    ] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        fs::write(&f.path, &bad).expect("write");
        let err = SealedReader::open(&f.path, &f.master).expect_err(what);
        assert!(chunk_authentication_of(&err).is_some(), "{what}: {err}");
    }
    // Fields bound into the wrapped key's associated data, and the wrapped key
    // itself, fail at unwrap; a changed key id is a key mismatch.
    for (what, at) in [
        ("camera name", find(b"porch")),
        ("recording id", 21),
        ("wrapped key", 100),
    ] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        fs::write(&f.path, &bad).expect("write");
        let err = SealedReader::open(&f.path, &f.master).expect_err(what);
        assert!(
            matches!(err, StoreError::KeyUnwrap { path: Some(_), .. }),
            "{what}: {err}"
        );
    }
    let mut bad = bytes.clone();
    bad[36] ^= 0x01;
    fs::write(&f.path, &bad).expect("write");
    let err = SealedReader::open(&f.path, &f.master).expect_err("key id");
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
}

#[test]
fn key_slot_can_be_rewrapped_in_place_under_another_master_key() {
    let f = fixture();
    let plain = write_recording(&f.path, &f.master, 16, &[&pattern(40, 12)], true);
    let header = SealedReader::open(&f.path, &f.master)
        .expect("open")
        .header()
        .clone();
    let (id, camera) = (header.fields.recording_id, header.fields.camera.as_str());
    let KeySlot::Master { wrapped, .. } = &header.key else {
        panic!("a version 1 file")
    };
    let data_key = f
        .master
        .unwrap_data_key(wrapped, id, camera)
        .expect("unwrap");
    let new_master = MasterKey::generate_for_tests();
    let rewrapped = new_master
        .wrap_data_key(&data_key, id, camera)
        .expect("wrap");
    let mut bytes = fs::read(&f.path).expect("read");
    bytes[34..42].copy_from_slice(&new_master.id().to_bytes());
    bytes[49..121].copy_from_slice(rewrapped.as_bytes());
    fs::write(&f.path, &bytes).expect("write");
    assert_eq!(read_all(&f.path, &new_master).expect("rewrapped"), plain);
    assert!(SealedReader::open(&f.path, &f.master).is_err());
}

#[test]
fn wrong_master_key_is_a_key_id_error() {
    let f = fixture();
    write_recording(&f.path, &f.master, 16, &[b"x"], true);
    let other = MasterKey::generate_for_tests();
    let err = SealedReader::open(&f.path, &other).expect_err("other key");
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&f.master.id().to_string()) && msg.contains(&other.id().to_string()),
        "{msg}"
    );
}

#[test]
fn not_a_recording_and_future_versions_are_named_as_such() {
    let f = fixture();
    fs::write(&f.path, b"\x00\x00\x00\x18ftypisom and so on").expect("write");
    let err = SealedReader::open(&f.path, &f.master).expect_err("mp4");
    assert!(matches!(err, StoreError::NotARecording { .. }), "{err}");
    fs::remove_file(&f.path).expect("rm");
    write_recording(&f.path, &f.master, 16, &[b"x"], true);
    let mut bytes = fs::read(&f.path).expect("read");
    bytes[9] = 9;
    fs::write(&f.path, &bytes).expect("write");
    let err = SealedReader::open(&f.path, &f.master).expect_err("v9");
    assert!(err.to_string().contains("version 9"), "{err}");
}

#[test]
fn no_plaintext_is_visible_in_the_file() {
    let f = fixture();
    let marker = b"PORCHLIGHT-SECRET-VIDEO-MARKER-";
    let plain: Vec<u8> = marker.iter().copied().cycle().take(200_000).collect();
    write_recording(
        &f.path,
        &f.master,
        65536,
        &[&plain[..100], &plain[100..]],
        true,
    );
    let bytes = fs::read(&f.path).expect("read");
    assert!(
        !bytes.windows(8).any(|w| w == &marker[..8]),
        "plaintext leaked"
    );
    assert!(
        !bytes.windows(8).any(|w| w == &marker[12..20]),
        "plaintext leaked"
    );
    assert_eq!(read_all(&f.path, &f.master).expect("read"), plain);
}

#[test]
fn unfinished_file_reads_up_to_its_data_but_export_refuses_it() {
    let f = fixture();
    let plain = write_recording(&f.path, &f.master, 16, &[&pattern(40, 6)], false);
    let mut r = SealedReader::open(&f.path, &f.master).expect("open");
    assert!(!r.is_finished());
    assert_eq!(r.plaintext_len(), 40);
    let mut buf = vec![0u8; 40];
    assert_eq!(r.read_at(0, &mut buf).expect("read"), 40);
    assert_eq!(buf, plain);
    let err = r.into_reader(TornFiles::Refuse).expect_err("unfinished");
    assert!(matches!(err, StoreError::Truncated { .. }), "{err}");
    let mut out = Vec::new();
    SealedReader::open(&f.path, &f.master)
        .expect("open")
        .into_reader(TornFiles::Accept)
        .expect("accepted")
        .read_to_end(&mut out)
        .expect("read");
    assert_eq!(out, plain);
}

#[test]
fn file_cut_mid_chunk_reports_a_torn_tail() {
    let f = fixture();
    let plain = write_recording(&f.path, &f.master, 16, &[&pattern(40, 8)], true);
    let len = fs::metadata(&f.path).expect("stat").len();
    // Remove the final chunk (21 bytes) and 3 bytes of the last data chunk.
    fs::OpenOptions::new()
        .write(true)
        .open(&f.path)
        .and_then(|file| file.set_len(len - 24))
        .expect("truncate");
    let mut r = SealedReader::open(&f.path, &f.master).expect("open");
    let last = *r.chunks().last().expect("entries");
    assert!(!last.complete);
    assert_eq!(last.index, 2);
    assert!(matches!(r.tail(), Tail::Torn { offset, .. } if offset == last.file_offset));
    assert_eq!(r.plaintext_len(), 32);
    let mut buf = vec![0u8; 40];
    assert_eq!(r.read_at(0, &mut buf).expect("read"), 32);
    assert_eq!(&buf[..32], &plain[..32]);
    let err = r.verify_complete().expect_err("torn");
    assert!(err.to_string().contains("torn tail"), "{err}");
}

#[test]
fn bytes_after_the_final_chunk_are_reported() {
    let f = fixture();
    write_recording(&f.path, &f.master, 16, &[b"abc"], true);
    let mut bytes = fs::read(&f.path).expect("read");
    bytes.extend_from_slice(b"junk");
    fs::write(&f.path, &bytes).expect("write");
    let r = SealedReader::open(&f.path, &f.master).expect("open");
    assert!(matches!(r.tail(), Tail::AfterFinal { len: 4, .. }));
    let err = r
        .into_reader(TornFiles::Accept)
        .expect_err("not a torn file");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[test]
fn refresh_follows_a_recording_being_written() {
    let f = fixture();
    let fields = format::HeaderFields {
        chunk_size: 16,
        ..format::HeaderFields::new(1, "porch", 0, "motion")
    };
    let (mut w, _) = SealedWriter::create(&f.path, &fields, &f.master).expect("create");
    let mut r = SealedReader::open(&f.path, &f.master).expect("open");
    assert_eq!(r.plaintext_len(), 0);
    w.write_all(&pattern(20, 1)).expect("write");
    w.sync().expect("sync");
    r.refresh().expect("refresh");
    assert_eq!(r.plaintext_len(), 20);
    let mut buf = [0u8; 20];
    r.read_at(0, &mut buf).expect("read");
    w.write_all(b"more").expect("write");
    w.finish().expect("finish");
    r.refresh().expect("refresh");
    assert!(r.is_finished());
    assert_eq!(r.plaintext_len(), 24);
}

/// Run by hand: `cargo test --release -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_of_seal_and_open_64_mib() {
    use std::time::Instant;
    const TOTAL: usize = 64 << 20;
    let f = fixture();
    let frame = pattern(32 * 1024, 11); // a typical 1080p P-frame
    let fields = format::HeaderFields::new(1, "porch", 0, "continuous");
    let t = Instant::now();
    let (mut w, _) = SealedWriter::create(&f.path, &fields, &f.master).expect("create");
    for i in 0..TOTAL / frame.len() {
        w.write_all(&frame).expect("write");
        if i % 64 == 63 {
            w.sync().expect("sync"); // one partial chunk + fdatasync per 2 MiB
        }
    }
    w.finish().expect("finish");
    let seal = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut r = SealedReader::open(&f.path, &f.master)
        .expect("open")
        .into_reader(TornFiles::Refuse)
        .expect("finished");
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let got = r.read(&mut buf).expect("read");
        if got == 0 {
            break;
        }
        n += got;
    }
    let open = t.elapsed().as_secs_f64();
    assert_eq!(n, TOTAL);
    let mb = TOTAL as f64 / 1e6;
    println!(
        "seal: {:.0} MB/s ({seal:.3} s); open+read: {:.0} MB/s ({open:.3} s)",
        mb / seal,
        mb / open
    );
}
