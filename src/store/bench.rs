//! Decrypt throughput of the store next to the raw ChaCha20-Poly1305 speed of the
//! same machine, printed and never asserted. Run it by hand in release mode (`make
//! bench` does):
//!
//! ```text
//! cargo test --release --lib bench_decrypt -- --ignored --nocapture --test-threads=1
//! ```
//!
//! Reference: `ChaCha20Poly1305::decrypt_inout_detached` over the same number of
//! bytes in the same 64 KiB chunks, in memory — the cost no reader of this format can
//! go below. Measured: a sequential read of a whole recording (what `porchlight
//! export` and a download do) and 256 KiB reads at random offsets (what playback with
//! seeking does), both from a file the page cache holds, as a ratio to the reference.

use std::io::Read;
use std::time::Instant;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};

use super::crypto::{MasterKey, TAG_LEN};
use super::format::DEFAULT_CHUNK_SIZE;
use super::reader::{SealedReader, TornFiles};
use super::writer::testing::{pattern, write_recording};

const RECORDING_MIB: usize = 128;
const RANGE: usize = 256 * 1024;
const RUNS: usize = 3;

/// Best (shortest) of [`RUNS`] wall times of `f`, in seconds.
fn best_of(mut f: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// Seals `data` chunk by chunk with the raw AEAD; returns the chunks and their tags.
fn raw_sealed(aead: &ChaCha20Poly1305, data: &[u8]) -> Vec<(Vec<u8>, [u8; TAG_LEN])> {
    data.chunks(DEFAULT_CHUNK_SIZE as usize)
        .enumerate()
        .map(|(i, chunk)| {
            let mut buf = chunk.to_vec();
            let nonce = Nonce::from(nonce_for(i));
            let tag = aead
                .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
                .expect("seal");
            (buf, tag.into())
        })
        .collect()
}

fn nonce_for(i: usize) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..12].copy_from_slice(&(i as u64).to_be_bytes());
    nonce
}

#[test]
#[ignore = "benchmark: run by hand in release mode, see the module documentation"]
fn bench_decrypt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.plrec");
    let master = MasterKey::generate_for_tests();
    let data = pattern(RECORDING_MIB << 20, 42);
    write_recording(&path, &master, DEFAULT_CHUNK_SIZE, &[&data], true);
    let mb = data.len() as f64 / 1e6;

    let aead = ChaCha20Poly1305::new(&Key::from([7u8; 32]));
    let sealed = raw_sealed(&aead, &data);
    let mut scratch = vec![0u8; DEFAULT_CHUNK_SIZE as usize];
    let raw = best_of(|| {
        for (i, (ct, tag)) in sealed.iter().enumerate() {
            let buf = &mut scratch[..ct.len()];
            buf.copy_from_slice(ct);
            aead.decrypt_inout_detached(
                &Nonce::from(nonce_for(i)),
                b"",
                buf.into(),
                &Tag::from(*tag),
            )
            .expect("raw open");
        }
    });

    let mut out = Vec::with_capacity(data.len());
    let sequential = best_of(|| {
        out.clear();
        let mut reader = SealedReader::open(&path, &master)
            .and_then(|r| r.into_reader(TornFiles::Refuse))
            .expect("open");
        reader.read_to_end(&mut out).expect("read");
    });
    assert_eq!(out, data, "the store returns what was written");

    let ranges = data.len() / RANGE;
    let mut reader = SealedReader::open(&path, &master).expect("open");
    let mut buf = vec![0u8; RANGE];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let random = best_of(|| {
        for _ in 0..ranges {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let offset = x % (data.len() - RANGE) as u64;
            let n = reader.read_at(offset, &mut buf).expect("read_at");
            assert_eq!(n, RANGE);
        }
    });

    let raw_mbs = mb / raw;
    println!("decrypt: {RECORDING_MIB} MiB recording, 64 KiB chunks, best of {RUNS}");
    println!("{:<36} {:>9} {:>9}", "", "MB/s", "× raw");
    println!(
        "{:<36} {:>9.0} {:>9.2}",
        "raw ChaCha20-Poly1305 (in memory)", raw_mbs, 1.0
    );
    for (name, secs) in [
        ("store: sequential read (export)", sequential),
        ("store: 256 KiB reads at random offsets", random),
    ] {
        let mbs = mb / secs;
        println!("{name:<36} {mbs:>9.0} {:>9.2}", mbs / raw_mbs);
        println!(
            "BENCH|decrypt vs raw ChaCha20-Poly1305|{name}|{mbs:.0} MB/s|{raw_mbs:.0} MB/s|{:.2}×|none set",
            mbs / raw_mbs
        );
    }
}
