//! The sealed recording container reader (`store::format` and `store::reader`): a
//! file from disk is outside input once a disk or a person can change it.
//!
//! The first byte picks how the rest is used:
//! - odd: the rest is the whole file;
//! - even: the rest patches a genuine recording (sealed at start-up under a fixed
//!   master key, small chunks): pairs of (offset, byte) overwrites, then a cut to a
//!   length, so the reader meets authentic files with torn tails and edited headers.
//!
//! The reader may refuse anything, but must not panic, and whatever it returns as
//! plaintext of the genuine file must be a prefix of what was written.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use porchlight::store::crypto::MasterKey;
use porchlight::store::format::{parse_header, HeaderFields};
use porchlight::store::reader::SealedReader;
use porchlight::store::RecordingWriter;

struct Fixture {
    _dir: tempfile::TempDir,
    master: MasterKey,
    genuine: Vec<u8>,
    plaintext: Vec<u8>,
    scratch: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).expect("key dir");
        let key = keys.join("master.key");
        std::fs::write(&key, [7u8; 32]).expect("write key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let master = MasterKey::load(&keys).expect("fixed master key");
        let path = dir.path().join("genuine.plr");
        let mut fields = HeaderFields::new(42, "porch", 1_795_600_800_000_000, "continuous");
        fields.chunk_size = 64;
        let (mut w, _) = RecordingWriter::create(&path, &fields, &master).expect("create");
        let plaintext: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        w.write_all(&plaintext[..100]).expect("write");
        w.sync().expect("sync");
        w.write_all(&plaintext[100..]).expect("write");
        w.finish().expect("finish");
        let genuine = std::fs::read(&path).expect("read genuine");
        let scratch = dir.path().join("input.plr");
        Fixture {
            _dir: dir,
            master,
            genuine,
            plaintext,
            scratch,
        }
    })
}

fn read_everything(path: &Path, master: &MasterKey) -> Option<Vec<u8>> {
    let mut reader = SealedReader::open(path, master).ok()?;
    let _ = reader.verify_all();
    let mut out = Vec::new();
    let mut buf = [0u8; 100];
    let mut offset = 0u64;
    loop {
        match reader.read_at(offset, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                offset += n as u64;
            }
        }
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let _ = parse_header(Path::new("fuzz.plr"), rest);
    let file = if mode % 2 == 1 {
        rest.to_vec()
    } else {
        let mut file = f.genuine.clone();
        let (edits, cut) = rest.split_at(rest.len() - rest.len() % 3);
        for e in edits.chunks_exact(3) {
            let at = usize::from(u16::from_be_bytes([e[0], e[1]]));
            if let Some(b) = file.get_mut(at) {
                *b = e[2];
            }
        }
        if let Some(&c) = cut.first() {
            let keep = file.len() - usize::from(c) % 64;
            file.truncate(keep);
        }
        file
    };
    std::fs::write(&f.scratch, &file).expect("write scratch file");
    let read = read_everything(&f.scratch, &f.master);
    if mode % 2 == 0 && rest.is_empty() {
        assert_eq!(
            read.as_ref(),
            Some(&f.plaintext),
            "the untouched file reads back"
        );
    }
    if let Some(plain) = read {
        if mode % 2 == 0 {
            assert!(
                f.plaintext.starts_with(&plain),
                "the reader returned bytes that were never written"
            );
        }
    }
});
