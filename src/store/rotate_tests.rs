//! The store's part of master-key rotation: the in-place header rewrite and the
//! rotating key file, on real files in a temp dir.

use std::fs;
use std::io::Read;
use std::path::Path;

use super::*;
use crate::store::crypto::MasterKey;
use crate::store::reader::{SealedReader, TornFiles};
use crate::store::writer::testing::{pattern, write_recording};

fn read_all(path: &Path, key: &MasterKey) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    SealedReader::open(path, key)?
        .into_reader(TornFiles::Refuse)?
        .read_to_end(&mut out)
        .map_err(|e| StoreError::io("read", path, e))?;
    Ok(out)
}

/// Loads the two keys of a rotation started in `key_dir` (old: master.key).
fn keys(key_dir: &Path) -> (MasterKey, MasterKey) {
    let dir = KeyDir::open(key_dir).expect("key dir");
    let old = MasterKey::load_key_file(&dir, MASTER_KEY_FILE).expect("old key");
    let new = MasterKey::load_key_file(&dir, ROTATING_KEY_FILE).expect("new key");
    (old, new)
}

#[test]
fn rewrap_changes_only_the_key_id_and_wrapped_key_and_the_file_still_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    MasterKey::load_or_create(&key_dir).expect("create");
    let old = MasterKey::load(&key_dir).expect("old");
    let path = dir.path().join("r.plr");
    let video = write_recording(
        &path,
        &old,
        4096,
        &[&pattern(10_000, 1), &pattern(3000, 2)],
        true,
    );
    let before = fs::read(&path).expect("read");

    let rotation = KeyRotation::begin(dir.path(), &key_dir).expect("begin");
    assert!(!rotation.resumed());
    let (_, new) = keys(&key_dir);
    assert_eq!(new.id(), rotation.new_id());
    let done = rotation.rewrap(&path).expect("rewrap");
    assert_eq!(done.status, Rewrap::Rewrapped);
    assert_eq!(done.id, 1);
    let after = fs::read(&path).expect("read");

    assert_eq!(before.len(), after.len());
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(
        changed
            .iter()
            .all(|&i| (34..42).contains(&i) || (49..121).contains(&i)),
        "bytes outside the key slot changed: {changed:?}"
    );
    assert_eq!(&after[34..42], &new.id().to_bytes());
    assert_eq!(before[42..49], after[42..49], "nonce prefix kept");
    assert_eq!(done.key_slot_hex, hex::encode(&after[49..121]));

    assert_eq!(read_all(&path, &new).expect("new key reads it"), video);
    let err = read_all(&path, &old).expect_err("old key refused");
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");

    // Again: already under the new key, nothing written.
    let again = rotation.rewrap(&path).expect("rewrap again");
    assert_eq!(again.status, Rewrap::AlreadyNew);
    assert_eq!(fs::read(&path).expect("read"), after);
}

#[test]
fn a_file_under_a_third_key_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    MasterKey::load_or_create(&key_dir).expect("create");
    let stranger = MasterKey::generate_for_tests();
    let path = dir.path().join("r.plr");
    write_recording(&path, &stranger, 4096, &[&pattern(5000, 3)], true);
    let before = fs::read(&path).expect("read");
    let rotation = KeyRotation::begin(dir.path(), &key_dir).expect("begin");
    let err = rotation.rewrap(&path).expect_err("refused");
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
    assert_eq!(fs::read(&path).expect("read"), before);
}

#[test]
fn shredded_files_are_skipped_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    let old = MasterKey::load_or_create(&key_dir).expect("create");
    let path = dir.path().join("r.plr");
    write_recording(&path, &old, 4096, &[&pattern(5000, 4)], true);
    let mut bytes = fs::read(&path).expect("read");
    bytes[49..121].fill(0);
    fs::write(&path, &bytes).expect("zero the key slot");
    let rotation = KeyRotation::begin(dir.path(), &key_dir).expect("begin");
    assert_eq!(
        rotation.rewrap(&path).expect("skip").status,
        Rewrap::Shredded
    );
    assert_eq!(fs::read(&path).expect("read"), bytes);
}

#[test]
fn an_unfinished_rotation_blocks_every_load_until_it_is_finished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    let old_id = MasterKey::load_or_create(&key_dir).expect("create").id();
    let first = KeyRotation::begin(dir.path(), &key_dir).expect("begin");
    let new_id = first.new_id();
    drop(first);
    for err in [
        MasterKey::load(&key_dir).expect_err("load refused"),
        MasterKey::load_or_create(&key_dir).expect_err("create refused"),
    ] {
        assert!(
            matches!(err, StoreError::RotationInterrupted { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(
            "a master-key rotation was interrupted; run porchlight rotate-master-key again"
        ));
    }
    // A second run picks up the same new key rather than making another.
    let again = KeyRotation::begin(dir.path(), &key_dir).expect("resume");
    assert!(again.resumed());
    assert_eq!(again.new_id(), new_id);
    assert_eq!(again.old_id(), old_id);
    assert_eq!(again.finish().expect("finish"), new_id);
    assert_eq!(MasterKey::load(&key_dir).expect("load").id(), new_id);
    assert!(!key_dir.join(ROTATING_KEY_FILE).exists());
    assert!(!key_dir.join(ROTATING_TMP_FILE).exists());
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(key_dir.join(MASTER_KEY_FILE))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
}

#[test]
fn the_new_key_gets_the_old_key_files_owner_and_group() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    MasterKey::load_or_create(&key_dir).expect("create");
    let old_path = key_dir.join(MASTER_KEY_FILE);
    // A group other than ours where we may set one (root can; others keep their own).
    let group = if fs::metadata(dir.path()).expect("stat").uid() == 0 {
        4242
    } else {
        fs::metadata(&old_path).expect("stat").gid()
    };
    std::os::unix::fs::chown(&old_path, None, Some(group)).expect("chgrp");
    let old = fs::metadata(&old_path).expect("stat");
    KeyRotation::begin(dir.path(), &key_dir).expect("begin");
    let new = fs::metadata(key_dir.join(ROTATING_KEY_FILE)).expect("stat");
    assert_eq!((new.uid(), new.gid()), (old.uid(), old.gid()));
}

#[test]
fn secrets_are_resealed_once_and_open_only_with_the_new_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    let old = MasterKey::load_or_create(&key_dir).expect("create");
    let sealed = hex::encode(
        old.seal_secret("totp seed", b"JBSWY3DPEHPK3PXP")
            .expect("seal"),
    );
    let rotation = KeyRotation::begin(dir.path(), &key_dir).expect("begin");
    let resealed = rotation
        .reseal_secret("totp seed", &sealed)
        .expect("reseal")
        .expect("was under the old key");
    let (old, new) = keys(&key_dir);
    let raw = hex::decode(&resealed).expect("hex");
    assert_eq!(
        new.open_secret("totp seed", &raw)
            .expect("opens")
            .as_slice(),
        b"JBSWY3DPEHPK3PXP"
    );
    assert!(old.open_secret("totp seed", &raw).is_err());
    assert_eq!(
        rotation
            .reseal_secret("totp seed", &resealed)
            .expect("again"),
        None,
        "already under the new key"
    );
    assert!(rotation.reseal_secret("camera password", &sealed).is_err());
}

/// A key directory swapped for another between `begin` and `finish` (the whole
/// rotation can take hours): the new key replaces the old one in the directory
/// the rotation began in, and the directory now at that path is not touched.
#[test]
fn a_rotation_finishes_in_the_key_directory_it_began_in_even_if_swapped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    MasterKey::load_or_create(&key_dir).expect("create");
    let rotation = KeyRotation::begin(dir.path(), &key_dir).expect("begin");
    let new_id = rotation.new_id();
    let (checked, _) = crate::store::key_dir::tests::swap_in_decoy(&key_dir);
    let decoy_key = fs::read(key_dir.join(MASTER_KEY_FILE)).expect("decoy key");
    assert_eq!(rotation.finish().expect("finish"), new_id);
    assert_eq!(MasterKey::load(&checked).expect("load").id(), new_id);
    assert!(!checked.join(ROTATING_KEY_FILE).exists());
    let names: Vec<_> = fs::read_dir(&key_dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, [MASTER_KEY_FILE], "nothing new in the decoy");
    assert_eq!(
        fs::read(key_dir.join(MASTER_KEY_FILE)).expect("decoy key"),
        decoy_key
    );
}

/// An end-to-end file: a tag under neither key (forged) is refused and left as it
/// is; an untagged one (from before tags) is tagged under the new key only while
/// the key directory has no tags marker.
#[test]
fn end_to_end_tags_are_moved_only_from_the_old_key_or_from_before_tags() {
    use crate::store::crypto::E2E_TAGS_MARKER;
    use crate::store::format::HeaderFields;
    use crate::store::writer::testing::{forge_e2e, quick_viewer};
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    MasterKey::load_or_create(&key_dir).expect("create");
    let (locked, viewer) = quick_viewer("a long passphrase");
    let fields = HeaderFields::new(1, "porch", 0, "motion");
    let forged = dir.path().join("forged.plr");
    forge_e2e(
        &forged,
        &fields,
        &[locked.public_key().clone()],
        b"x",
        [7; 6],
    );
    let legacy = dir.path().join("legacy.plr");
    forge_e2e(
        &legacy,
        &fields,
        &[locked.public_key().clone()],
        b"old",
        [0; 6],
    );
    let legacy_before = fs::read(&legacy).expect("read");

    let rotation = KeyRotation::begin(dir.path(), &key_dir).expect("begin");
    let before = fs::read(&forged).expect("read");
    let err = rotation.rewrap(&forged).expect_err("refused");
    assert!(matches!(err, StoreError::NotAuthentic { .. }), "{err}");
    assert_eq!(fs::read(&forged).expect("read"), before, "untouched");
    // The marker exists (a new key writes it): a zero tag is no better.
    let err = rotation.rewrap(&legacy).expect_err("refused");
    assert!(matches!(err, StoreError::NotAuthentic { .. }), "{err}");
    assert_eq!(fs::read(&legacy).expect("read"), legacy_before);
    drop(rotation);

    // Before the first start of a build with tags: no marker, so it is tagged.
    fs::remove_file(key_dir.join(E2E_TAGS_MARKER)).expect("rm marker");
    let rotation = KeyRotation::begin(dir.path(), &key_dir).expect("resume");
    assert_eq!(
        rotation.rewrap(&legacy).expect("tag").status,
        Rewrap::Rewrapped
    );
    let (_, new) = keys(&key_dir);
    let mut reader =
        SealedReader::open_with(&legacy, &new, Some(&viewer)).expect("reads under the new key");
    let mut out = [0u8; 3];
    assert_eq!(reader.read_at(0, &mut out).expect("read"), 3);
    assert_eq!(&out, b"old");
    assert_eq!(
        rotation.rewrap(&legacy).expect("again").status,
        Rewrap::AlreadyNew
    );
}
