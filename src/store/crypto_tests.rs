//! Tests of the master key file and the key derivations in `crypto`.

use super::*;
use std::fs;

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn master_key_is_created_0600_and_reloads_to_the_same_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    let created = MasterKey::load_or_create(&key_dir).expect("create");
    let path = master_key_path(&key_dir);
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&key_dir), 0o700);
    assert_eq!(fs::metadata(&path).expect("stat").len(), 32);
    assert!(!key_dir.join(NEW_KEY_FILE).exists());
    let loaded = MasterKey::load(&key_dir).expect("load");
    assert_eq!(created.id(), loaded.id());
}

#[test]
fn existing_master_key_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = MasterKey::load_or_create(dir.path()).expect("create");
    let before = fs::read(master_key_path(dir.path())).expect("read");
    let second = MasterKey::load_or_create(dir.path()).expect("load");
    assert_eq!(first.id(), second.id());
    assert_eq!(before, fs::read(master_key_path(dir.path())).expect("read"));
}

#[test]
fn leftover_partial_key_file_is_replaced_not_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(NEW_KEY_FILE), b"half").expect("write");
    let key = MasterKey::load_or_create(dir.path()).expect("create");
    assert_eq!(MasterKey::load(dir.path()).expect("load").id(), key.id());
    assert!(!dir.path().join(NEW_KEY_FILE).exists());
}

#[test]
fn missing_master_key_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = MasterKey::load(dir.path()).expect_err("must fail");
    assert!(matches!(err, StoreError::MasterKeyMissing { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn master_key_of_wrong_size_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = master_key_path(dir.path());
    fs::write(&path, [7u8; 31]).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = MasterKey::load(dir.path()).expect_err("must fail");
    assert!(matches!(err, StoreError::MasterKeyInvalid { .. }), "{err}");
    assert!(err.to_string().contains("31 bytes"), "{err}");
    // load_or_create must not "repair" it by replacing the key either.
    assert!(MasterKey::load_or_create(dir.path()).is_err());
    assert_eq!(fs::read(&path).expect("read"), vec![7u8; 31]);
}

#[test]
fn master_key_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    MasterKey::load_or_create(dir.path()).expect("create");
    let path = master_key_path(dir.path());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = MasterKey::load(dir.path()).expect_err("must fail");
    assert!(
        matches!(err, StoreError::MasterKeyPermissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn a_symlinked_master_key_is_refused_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real");
    MasterKey::load_or_create(&real).expect("create");
    let key_dir = dir.path().join("keys");
    DirBuilder::new()
        .mode(0o700)
        .create(&key_dir)
        .expect("mkdir");
    std::os::unix::fs::symlink(master_key_path(&real), master_key_path(&key_dir)).expect("symlink");
    for err in [
        MasterKey::load(&key_dir).expect_err("refused"),
        MasterKey::load_or_create(&key_dir).expect_err("refused"),
    ] {
        assert!(matches!(err, StoreError::KeyPathUnsafe { .. }), "{err}");
        let shown = err.to_string();
        assert!(shown.contains("is a symbolic link"), "{shown}");
        assert!(shown.contains("cp --remove-destination"), "{shown}");
    }
    assert!(fs::symlink_metadata(master_key_path(&key_dir))
        .expect("still there")
        .file_type()
        .is_symlink());
}

#[test]
fn master_key_modes_other_than_0600_and_0400_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let created = MasterKey::load_or_create(dir.path()).expect("create");
    let path = master_key_path(dir.path());
    for mode in [0o640, 0o604, 0o620, 0o700, 0o644] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        let err = MasterKey::load(dir.path()).expect_err("refused");
        assert!(
            matches!(err, StoreError::MasterKeyPermissions { mode: m, .. } if m == mode),
            "{mode:o}: {err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
    assert_eq!(
        MasterKey::load(dir.path()).expect("0400 is fine").id(),
        created.id()
    );
}

#[test]
fn a_key_directory_others_can_write_to_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    MasterKey::load_or_create(&key_dir).expect("create");
    for mode in [0o777, 0o770, 0o1777, 0o702] {
        fs::set_permissions(&key_dir, fs::Permissions::from_mode(mode)).expect("chmod");
        let err = MasterKey::load(&key_dir).expect_err("refused");
        assert!(
            matches!(err, StoreError::KeyPathUnsafe { .. }),
            "{mode:o}: {err}"
        );
        let shown = err.to_string();
        assert!(
            shown.contains("others can replace the master key"),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("chmod 700 {}", key_dir.display())),
            "{shown}"
        );
    }
    // Nor is a missing key created in such a directory.
    fs::remove_file(master_key_path(&key_dir)).expect("rm");
    assert!(MasterKey::load_or_create(&key_dir).is_err());
    assert!(!master_key_path(&key_dir).exists());
    fs::set_permissions(&key_dir, fs::Permissions::from_mode(0o750)).expect("chmod");
    MasterKey::load_or_create(&key_dir).expect("a group-readable directory is fine");
}

#[test]
fn a_key_owned_by_another_user_is_refused_unless_run_as_root() {
    let path = Path::new("/keys/master.key");
    let err = check_key_owner(path, 1001, 1000).expect_err("refused");
    assert!(matches!(err, StoreError::KeyPathUnsafe { .. }), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("owned by user id 1001"), "{shown}");
    assert!(
        shown.contains("run: chown 1000 /keys/master.key"),
        "{shown}"
    );
    check_key_owner(path, 1000, 1000).expect("own key");
    check_key_owner(path, 0, 1000).expect("root's key");
    check_key_owner(path, 1001, 0).expect("root may use the daemon user's key");
}

#[test]
fn key_id_is_stable_hex_and_differs_between_keys() {
    let a = MasterKey::generate_for_tests();
    let b = MasterKey::generate_for_tests();
    assert_ne!(a.id(), b.id());
    let shown = a.id().to_string();
    assert_eq!(shown.len(), 16);
    assert!(shown.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(KeyId::from_bytes(a.id().to_bytes()), a.id());
    // Known-answer: the id of the all-zero key is fixed by the spec.
    let zero = MasterKey::from_bytes(Zeroizing::new([0u8; KEY_LEN]));
    let expected = Sha256::digest([KEY_ID_LABEL, &[0u8; 32][..]].concat());
    assert_eq!(zero.id().to_bytes()[..], expected[..8]);
}

#[test]
fn debug_output_never_contains_key_bytes() {
    let master = MasterKey::generate_for_tests();
    let shown = format!("{master:?}");
    assert!(
        !shown.contains(&hex::encode(master.bytes.as_ref())),
        "{shown}"
    );
    assert!(shown.contains(&master.id().to_string()), "{shown}");
    let data = DataKey::generate().expect("random");
    assert_eq!(format!("{data:?}"), "DataKey(..)");
    let cipher = ChunkCipher::new(&data, [0; 7]);
    assert_eq!(format!("{cipher:?}"), "ChunkCipher(..)");
}

#[test]
fn wrapped_key_round_trips_through_bytes() {
    let master = MasterKey::generate_for_tests();
    let data = DataKey::generate().expect("random");
    let wrapped = master.wrap_data_key(&data, 42, "porch").expect("wrap");
    let again = WrappedKey::from_bytes(wrapped.as_bytes()).expect("72 bytes");
    let back = master.unwrap_data_key(&again, 42, "porch").expect("unwrap");
    assert_eq!(back.0.as_ref(), data.0.as_ref());
    assert!(WrappedKey::from_bytes(&wrapped.as_bytes()[..71]).is_err());
    // The data key must not appear in clear inside the wrapped form.
    assert!(!wrapped
        .as_bytes()
        .windows(KEY_LEN)
        .any(|w| w == data.0.as_ref()));
}

#[test]
fn wrapped_key_fails_with_wrong_associated_data_or_key() {
    let master = MasterKey::generate_for_tests();
    let data = DataKey::generate().expect("random");
    let wrapped = master.wrap_data_key(&data, 42, "porch").expect("wrap");
    let other_id = master.unwrap_data_key(&wrapped, 43, "porch");
    assert!(matches!(
        other_id,
        Err(StoreError::KeyUnwrap {
            recording_id: 43,
            ..
        })
    ));
    assert!(master.unwrap_data_key(&wrapped, 42, "garage").is_err());
    let other_master = MasterKey::generate_for_tests();
    assert!(other_master.unwrap_data_key(&wrapped, 42, "porch").is_err());
    let mut bytes = *wrapped.as_bytes();
    bytes[30] ^= 1;
    let tampered = WrappedKey::from_array(bytes);
    assert!(master.unwrap_data_key(&tampered, 42, "porch").is_err());
}

#[test]
fn chunk_cipher_binds_counter_last_flag_and_aad() {
    let data = DataKey::generate().expect("random");
    let cipher = ChunkCipher::new(&data, [1, 2, 3, 4, 5, 6, 7]);
    let mut buf = *b"some video bytes";
    let tag = cipher.seal(5, false, b"aad", &mut buf);
    assert_ne!(&buf, b"some video bytes");
    for (counter, last, aad) in [
        (6, false, &b"aad"[..]),
        (5, true, b"aad"),
        (5, false, b"aae"),
    ] {
        let mut copy = buf;
        assert!(cipher.open(counter, last, aad, &mut copy, &tag).is_err());
    }
    cipher
        .open(5, false, b"aad", &mut buf, &tag)
        .expect("authentic");
    assert_eq!(&buf, b"some video bytes");
}

/// Vectors computed by an independent implementation of the spec in `format`
/// (Python `cryptography` plus a hand-written HChaCha20), so that a change to
/// a label, a derivation or the nonce layout cannot pass unnoticed.
#[test]
fn known_answer_vectors_from_an_independent_implementation() {
    let master = MasterKey::from_bytes(Zeroizing::new([0x11; KEY_LEN]));
    assert_eq!(master.id().to_string(), "697bd691b36db8b6");
    let wrapped = hex::decode(
        "222222222222222222222222222222222222222222222222\
         4b5ed750d42842201d59216269e9285cc37dfcff4566355145c806b27d3d4d53\
         45cd23bd255c6ba3004c4db7b7a0bb17",
    )
    .expect("hex");
    let wrapped = WrappedKey::from_bytes(&wrapped).expect("72 bytes");
    let data = master
        .unwrap_data_key(&wrapped, 7, "porch")
        .expect("unwrap");
    assert_eq!(data.0.as_ref(), &[0x42; KEY_LEN]);

    let cipher = ChunkCipher::new(&data, [1, 2, 3, 4, 5, 6, 7]);
    let mut buf = *b"hello";
    let tag = cipher.seal(3, false, b"aad", &mut buf);
    assert_eq!(
        hex::encode([&buf[..], &tag[..]].concat()),
        "7affa42f4a2369fc24245d9d81f1fea2af5801f745"
    );
}

/// The e2e header tag against Python's `hmac` and `hashlib` (HKDF written out
/// from RFC 5869): pins the label, the derivation and HMAC-as-HKDF-Extract.
#[test]
fn e2e_header_tag_matches_an_independent_hmac() {
    let master = MasterKey::from_bytes(Zeroizing::new([0x11; KEY_LEN]));
    assert_eq!(
        hex::encode(master.e2e_header_tag(b"a version 2 header")),
        "304f97634eef"
    );
    let other = MasterKey::from_bytes(Zeroizing::new([0x12; KEY_LEN]));
    assert_ne!(
        other.e2e_header_tag(b"a version 2 header"),
        master.e2e_header_tag(b"a version 2 header")
    );
}

#[test]
fn chunk_nonce_layout_matches_the_spec() {
    let n = chunk_nonce(
        &[0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6],
        0x0102_0304,
        true,
    );
    assert_eq!(n, [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 1, 2, 3, 4, 1]);
}

#[test]
fn sealed_secrets_open_only_for_their_purpose_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = MasterKey::load_or_create(dir.path()).expect("key");
    let sealed = key.seal_secret("totp", b"JBSWY3DPEHPK3PXP").expect("seal");
    assert!(
        !sealed.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"),
        "not in clear"
    );
    assert_eq!(
        key.open_secret("totp", &sealed).expect("open").as_slice(),
        b"JBSWY3DPEHPK3PXP"
    );
    assert!(key.open_secret("camera password", &sealed).is_err());
    let mut flipped = sealed.clone();
    flipped[30] ^= 1;
    assert!(key.open_secret("totp", &flipped).is_err());
    assert!(key.open_secret("totp", &sealed[..10]).is_err());
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = MasterKey::load_or_create(other_dir.path()).expect("key");
    assert!(other.open_secret("totp", &sealed).is_err());
}
