//! End-to-end recordings through the `Store`: written sealed to viewers, unreadable
//! with the master key, readable by an unlocked viewer; older recordings untouched.
use super::e2e::{KdfParams, LockedViewerKey, ViewerSecret, SLOT_LEN};
use super::format::{self, KeySlot, SLOTS_OFFSET};
use super::writer::testing::pattern;
use super::*;
use crate::store::reader::TornFiles;
use std::io::Read;

const QUICK: KdfParams = KdfParams {
    memory_kib: 8 * 1024,
    iterations: 1,
    parallelism: 1,
};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    camera: CameraId,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys")).expect("store");
    Fixture {
        _dir: dir,
        store,
        camera: "porch".parse().expect("camera name"),
    }
}

fn viewer(passphrase: &str) -> (LockedViewerKey, ViewerSecret) {
    let (locked, _) = LockedViewerKey::generate_with(passphrase, QUICK).expect("generate");
    let secret = locked.unlock_with_passphrase(passphrase).expect("unlock");
    (locked, secret)
}

/// Writes a finished recording of `len` pattern bytes; returns its id and bytes.
fn record(f: &Fixture, seed: u64) -> (RecordingId, Vec<u8>, String) {
    let id = RecordingId::random();
    let new = NewRecording {
        id,
        camera: f.camera.clone(),
        start_micros: 1_700_000_000_000_000,
        trigger: Trigger::Motion,
    };
    let (mut writer, key_slot) = f.store.create_recording(&new).expect("create");
    let plain = pattern(200_000, seed);
    writer.write_all(&plain).expect("write");
    writer.finish().expect("finish");
    (id, plain, key_slot)
}

pub(super) fn read_all(reader: RecordingReader) -> Vec<u8> {
    let mut out = Vec::new();
    reader
        .inner
        .into_reader(TornFiles::Refuse)
        .expect("finished")
        .read_to_end(&mut out)
        .expect("read");
    out
}

#[test]
fn recording_made_after_enabling_opens_only_for_the_viewer() {
    let f = fixture();
    let (before, before_plain, _) = record(&f, 1);
    let (locked, secret) = viewer("a long household passphrase");
    f.store
        .set_recipients(vec![locked.public_key().clone()])
        .expect("enable");
    let (after, after_plain, key_slot) = record(&f, 2);
    assert_eq!(
        key_slot.len(),
        2 * SLOT_LEN,
        "one recipient slot for the index"
    );

    // The master key alone: a clear error, not "corrupt".
    let err = f
        .store
        .open_recording(&f.camera, after)
        .err()
        .expect("master key cannot open it");
    assert!(matches!(err, StoreError::EndToEnd { .. }), "{err}");
    assert!(!err.is_integrity_failure());
    assert!(err.to_string().contains("end-to-end encrypted"), "{err}");
    assert!(f.store.is_end_to_end(&f.camera, after).expect("header"));
    assert!(!f.store.is_end_to_end(&f.camera, before).expect("header"));

    // The viewer reads it; the recording from before still opens with the master key.
    let read = read_all(
        f.store
            .open_recording_as(&f.camera, after, &secret)
            .expect("open"),
    );
    assert_eq!(read, after_plain);
    let read = read_all(f.store.open_recording(&f.camera, before).expect("open"));
    assert_eq!(read, before_plain);
    let read = read_all(
        f.store
            .open_recording_as(&f.camera, before, &secret)
            .expect("open"),
    );
    assert_eq!(read, before_plain);

    // Another viewer, not a recipient, cannot.
    let (_, stranger) = viewer("somebody else's passphrase");
    assert!(matches!(
        f.store.open_recording_as(&f.camera, after, &stranger).err(),
        Some(StoreError::NotARecipient { .. })
    ));

    // Check and rebuild know it from its header rather than calling it corrupt.
    let FileStatus::EndToEnd(described) = f.store.status(&f.camera, after) else {
        panic!("not end-to-end: {:?}", f.store.status(&f.camera, after));
    };
    assert_eq!((described.id, described.frames), (after, 0));
    assert_eq!(described.camera, f.camera);

    // Turning the mode off affects new recordings only.
    f.store.set_recipients(Vec::new()).expect("disable");
    let (later, later_plain, _) = record(&f, 3);
    assert_eq!(
        read_all(f.store.open_recording(&f.camera, later).expect("open")),
        later_plain
    );
    assert!(f.store.open_recording(&f.camera, after).is_err());
}

#[test]
fn version_2_header_layout_and_what_every_chunk_authenticates() {
    let f = fixture();
    let (a, _) = viewer("first viewer passphrase");
    let (b, _) = viewer("second viewer passphrase");
    f.store
        .set_recipients(vec![a.public_key().clone(), b.public_key().clone()])
        .expect("enable");
    let (id, _, _) = record(&f, 4);
    let path = f.store.recording_path(&f.camera, id);
    let raw = std::fs::read(&path).expect("read");
    assert_eq!(&raw[8..10], &[0, 2], "format version 2");
    assert_eq!(&raw[34..36], &[0, 2], "two slots");
    assert_ne!(&raw[36..42], &[0; 6], "the header tag (see e2e_tag)");
    let slots_end = SLOTS_OFFSET as usize + 2 * SLOT_LEN;
    let header_len = u32::from_be_bytes(raw[10..14].try_into().expect("4 bytes")) as usize;
    assert_eq!(
        header_len,
        53 + 2 * SLOT_LEN + "porch".len() + "motion".len()
    );
    assert_eq!(&raw[slots_end..slots_end + 7], b"\0\x05porch");
    let header = format::parse_header(&path, &raw[..header_len]).expect("parse");
    let KeySlot::Recipients(slots) = &header.key else {
        panic!("recipient slots")
    };
    assert_eq!(slots[0].recipient, a.public_key().id());
    assert_eq!(slots[1].recipient, b.public_key().id());

    // The hash every chunk authenticates covers all but the slots and the tag
    // (which covers the slots instead, and can so be written in place).
    let hash = format::header_hash(&raw[..header_len]);
    for at in 0..header_len {
        let mut changed = raw[..header_len].to_vec();
        changed[at] ^= 0x01;
        let in_slots = (SLOTS_OFFSET as usize..slots_end).contains(&at) || (36..42).contains(&at);
        // A change the parser refuses counts as detected too.
        let same =
            format::parse_header(&path, &changed).is_ok() && format::header_hash(&changed) == hash;
        assert_eq!(same, in_slots, "byte {at}");
    }
}

#[test]
fn deleting_an_end_to_end_recording_destroys_every_slot() {
    let f = fixture();
    let (a, secret) = viewer("a long household passphrase");
    let (b, _) = viewer("second viewer passphrase");
    f.store
        .set_recipients(vec![a.public_key().clone(), b.public_key().clone()])
        .expect("enable");
    let (id, _, _) = record(&f, 5);
    let path = f.store.recording_path(&f.camera, id);
    let kept = std::fs::read(&path).expect("read");
    // Keep a handle open so the bytes can be inspected after the unlink.
    let file = std::fs::File::open(&path).expect("open");
    f.store.shred(&f.camera, id).expect("shred");
    assert!(!path.exists());
    let mut after = Vec::new();
    (&file).read_to_end(&mut after).expect("read unlinked file");
    let slots = SLOTS_OFFSET as usize..SLOTS_OFFSET as usize + 2 * SLOT_LEN;
    assert!(kept[slots.clone()].iter().any(|&b| b != 0));
    assert!(after[slots.clone()].iter().all(|&b| b == 0));
    assert_eq!(after[..slots.start], kept[..slots.start]);
    assert_eq!(after[slots.end..], kept[slots.end..]);
    // What is left is recognised as shredded and opens for nobody.
    std::fs::write(&path, &after).expect("write");
    assert_eq!(f.store.status(&f.camera, id), FileStatus::Shredded);
    assert!(SealedReader::open_with(&path, &f.store.master, Some(&secret)).is_err());
}

#[test]
fn thumbnails_follow_the_same_rule() {
    let f = fixture();
    let before = EventId(1);
    f.store
        .write_thumbnail(&f.camera, before, 0, b"\xff\xd8 before")
        .expect("write");
    let (locked, secret) = viewer("a long household passphrase");
    f.store
        .set_recipients(vec![locked.public_key().clone()])
        .expect("enable");
    let after = EventId(2);
    f.store
        .write_thumbnail(&f.camera, after, 0, b"\xff\xd8 after")
        .expect("write");
    assert!(matches!(
        f.store.read_thumbnail(&f.camera, after),
        Err(StoreError::EndToEnd { .. })
    ));
    assert_eq!(
        f.store
            .read_thumbnail_as(&f.camera, after, Some(&secret))
            .expect("the viewer reads it"),
        b"\xff\xd8 after"
    );
    assert_eq!(
        f.store
            .read_thumbnail(&f.camera, before)
            .expect("older one"),
        b"\xff\xd8 before"
    );
}

#[test]
fn a_crash_cut_end_to_end_recording_is_closed_by_the_first_viewer_who_opens_it() {
    let f = fixture();
    let (locked, secret) = viewer("a long household passphrase");
    f.store
        .set_recipients(vec![locked.public_key().clone()])
        .expect("enable");
    let id = RecordingId::random();
    let new = NewRecording {
        id,
        camera: f.camera.clone(),
        start_micros: 1_700_000_000_000_000,
        trigger: Trigger::Motion,
    };
    let (mut writer, _) = f.store.create_recording(&new).expect("create");
    let plain = pattern(200_000, 9);
    writer.write_all(&plain).expect("write");
    writer.sync().expect("sync");
    // A power cut: the process ends with the file as the last sync left it.
    drop(writer);

    // Start-up recovery cannot close it (no key); opening it as is says truncated.
    assert!(matches!(
        f.store.open_recording_as(&f.camera, id, &secret).err(),
        Some(StoreError::Truncated { .. })
    ));
    // Nobody else can close it either: the master key alone is refused.
    assert!(f.store.open_recording(&f.camera, id).is_err());

    // The viewer's open closes it and reads every synced byte.
    let read = read_all(
        f.store
            .open_finished_as(&f.camera, id, &secret)
            .expect("closed and opened"),
    );
    assert_eq!(read, plain);
    // Closed for good: a plain open works now, and a second close changes nothing.
    let again = read_all(
        f.store
            .open_recording_as(&f.camera, id, &secret)
            .expect("open"),
    );
    assert_eq!(again, plain);
    let (_, stranger) = viewer("somebody else's passphrase");
    assert!(matches!(
        f.store.open_finished_as(&f.camera, id, &stranger).err(),
        Some(StoreError::NotARecipient { .. })
    ));
}
