//! Tests of `format.rs` (a child module of it, kept apart for length).
use super::*;
use std::io::Write;

fn sample_fields() -> HeaderFields {
    HeaderFields::new(7, "porch", 1_700_000_000_000_000, "motion")
}

fn sample_header(fields: &HeaderFields) -> Vec<u8> {
    let wrapped = WrappedKey::from_array([9u8; WrappedKey::LEN]);
    encode_header(fields, KeyId::from_bytes([1; 8]), &[2; 7], &wrapped)
}

#[test]
fn header_layout_matches_the_documented_offsets() {
    let fields = sample_fields();
    let h = sample_header(&fields);
    assert_eq!(h.len(), 125 + 5 + 6);
    assert_eq!(&h[0..8], b"PORCHREC");
    assert_eq!(&h[8..10], &[0, 1]);
    assert_eq!(
        u32::from_be_bytes(h[10..14].try_into().unwrap()) as usize,
        h.len()
    );
    assert_eq!(u64::from_be_bytes(h[14..22].try_into().unwrap()), 7);
    assert_eq!(
        i64::from_be_bytes(h[22..30].try_into().unwrap()),
        1_700_000_000_000_000
    );
    assert_eq!(u32::from_be_bytes(h[30..34].try_into().unwrap()), 65536);
    assert_eq!(&h[34..42], &[1; 8]);
    assert_eq!(&h[42..49], &[2; 7]);
    assert_eq!(&h[WRAPPED_KEY_OFFSET as usize..121], &[9; 72][..]);
    assert_eq!(&h[121..123], &[0, 5]);
    assert_eq!(&h[123..128], b"porch");
    assert_eq!(&h[128..130], &[0, 6]);
    assert_eq!(&h[130..136], b"motion");
}

#[test]
fn header_hash_covers_everything_but_the_key_slot() {
    let raw = sample_header(&sample_fields());
    let hash = header_hash(&raw);
    for at in 0..raw.len() {
        let mut changed = raw.clone();
        changed[at] ^= 0x01;
        let in_slot = (34..42).contains(&at) || (49..121).contains(&at);
        assert_eq!(header_hash(&changed) == hash, in_slot, "byte {at}");
    }
}

#[test]
fn header_round_trips() {
    let fields = HeaderFields {
        trigger: String::new(),
        chunk_size: 100,
        ..sample_fields()
    };
    let raw = sample_header(&fields);
    let parsed = parse_header(Path::new("x"), &raw).expect("parse");
    assert_eq!(parsed.fields, fields);
    assert_eq!(
        parsed.key,
        KeySlot::Master {
            key_id: KeyId::from_bytes([1; 8]),
            wrapped: WrappedKey::from_array([9u8; WrappedKey::LEN]),
        }
    );
    assert_eq!(parsed.nonce_prefix, [2; 7]);
    assert_eq!(parsed.header_len as usize, raw.len());
}

#[test]
fn malformed_headers_get_specific_errors() {
    let p = Path::new("rec.plrec");
    let good = sample_header(&sample_fields());

    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(
        parse_header(p, &bad),
        Err(StoreError::NotARecording { .. })
    ));

    let mut bad = good.clone();
    bad[9] = 3;
    let err = parse_header(p, &bad).expect_err("version 3");
    assert!(
        matches!(
            err,
            StoreError::UnsupportedVersion {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{err}"
    );

    let mut bad = good.clone();
    bad[122] = 200; // camera length runs past the header
    assert!(matches!(
        parse_header(p, &bad),
        Err(StoreError::Corrupt { offset: 121, .. })
    ));

    let mut bad = good.clone();
    bad[123] = 0xff; // not UTF-8
    assert!(matches!(
        parse_header(p, &bad),
        Err(StoreError::Corrupt { offset: 123, .. })
    ));

    let mut bad = good.clone();
    bad[30..34].copy_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        parse_header(p, &bad),
        Err(StoreError::Corrupt { .. })
    ));

    assert!(matches!(
        parse_header(p, &good[..good.len() - 1]),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        parse_header_prefix(p, b"PORCH"),
        Err(StoreError::NotARecording { .. })
    ));
}

#[test]
fn invalid_fields_are_refused_before_writing() {
    let mut f = sample_fields();
    f.camera.clear();
    assert!(f.validate().is_err());
    f.camera = "x".repeat(MAX_TEXT_LEN + 1);
    assert!(f.validate().is_err());
    let mut f = sample_fields();
    f.chunk_size = MAX_CHUNK_SIZE + 1;
    assert!(f.validate().is_err());
    f.chunk_size = MAX_CHUNK_SIZE;
    assert!(f.validate().is_ok());
}

fn file_with(bytes: &[u8]) -> File {
    let mut f = tempfile::tempfile().expect("tempfile");
    f.write_all(bytes).expect("write");
    f
}

fn chunk(pt_len: u32, last: bool) -> Vec<u8> {
    let mut c = encode_chunk_prefix(pt_len + 16, last).to_vec();
    c.resize(c.len() + pt_len as usize + 16, 0xaa);
    c
}

fn scan(bytes: &[u8]) -> ChunkTable {
    let f = file_with(bytes);
    let start = ScanStart {
        index: 0,
        file_offset: 0,
        plaintext_offset: 0,
    };
    scan_chunks(&f, Path::new("x"), 10, bytes.len() as u64, start).expect("scan")
}

#[test]
fn scan_builds_the_table_from_prefixes() {
    let bytes = [chunk(10, false), chunk(3, false), chunk(0, true)].concat();
    let t = scan(&bytes);
    assert_eq!(t.tail, Tail::Clean);
    assert_eq!(t.entries.len(), 3);
    assert_eq!(t.entries[1].file_offset, 31);
    assert_eq!(t.entries[1].plaintext_offset, 10);
    assert_eq!(t.entries[2].index, 2);
    assert_eq!(t.plaintext_len(), 13);
    assert!(t.final_chunk().is_some());
}

#[test]
fn scan_reports_torn_and_invalid_tails() {
    let full = [chunk(10, false), chunk(3, false)].concat();
    let t = scan(&full[..full.len() - 1]);
    assert_eq!(t.entries.len(), 2);
    assert!(!t.entries[1].complete);
    assert_eq!(t.complete().len(), 1);
    assert_eq!(t.plaintext_len(), 10);
    assert!(matches!(
        t.tail,
        Tail::Torn {
            offset: 31,
            len: 23,
            ..
        }
    ));
    assert!(t.final_chunk().is_none());

    let t = scan(&[chunk(10, false), vec![0; 3]].concat());
    assert!(matches!(
        t.tail,
        Tail::Torn {
            offset: 31,
            len: 3,
            ..
        }
    ));

    // Zeros (a power cut's typical leftover), a too-long chunk, a bad flag,
    // an empty data chunk and a non-empty final chunk are all invalid.
    let too_long = chunk(11, false);
    let mut bad_flag = chunk(1, false);
    bad_flag[4] = 2;
    for junk in [
        vec![0u8; 40],
        too_long,
        bad_flag,
        chunk(0, false),
        chunk(1, true),
    ] {
        let t = scan(&[chunk(10, false), junk].concat());
        assert_eq!(t.complete().len(), 1);
        assert!(matches!(t.tail, Tail::Torn { offset: 31, .. }), "{t:?}");
    }

    let t = scan(&[chunk(10, false), chunk(0, true), vec![1]].concat());
    assert!(t.final_chunk().is_some());
    assert_eq!(t.tail, Tail::AfterFinal { offset: 52, len: 1 });
}
