use super::*;

/// Cheap Argon2 parameters so the tests that do not measure the cost stay fast.
const QUICK: KdfParams = KdfParams {
    memory_kib: 8 * 1024,
    iterations: 1,
    parallelism: 1,
};

fn viewer(passphrase: &str) -> (LockedViewerKey, RecoveryKey) {
    LockedViewerKey::generate_with(passphrase, QUICK).expect("generate")
}

#[test]
fn passphrase_unlocks_and_opens_a_slot_sealed_to_the_public_key() {
    let (locked, _) = viewer("correct horse battery staple");
    let data = DataKey::generate().expect("random");
    let slots = seal_data_key(&data, &[locked.public_key().clone()], 7, "porch").expect("seal");
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].recipient, locked.public_key().id());
    let secret = locked
        .unlock_with_passphrase("correct horse battery staple")
        .expect("unlock");
    let opened = secret.open_data_key(&slots, 7, "porch").expect("open");
    assert_eq!(opened.expose(), data.expose());
    // The data key is not in clear in the slot.
    let bytes = slots[0].to_bytes();
    assert!(!bytes.windows(KEY_LEN).any(|w| w == data.expose()));
    assert_eq!(RecipientSlot::from_bytes(&bytes), slots[0]);
}

#[test]
fn wrong_passphrase_fails_cleanly() {
    let (locked, _) = viewer("correct horse battery staple");
    let err = locked
        .unlock_with_passphrase("correct horse battery stable")
        .expect_err("wrong passphrase");
    assert!(matches!(err, StoreError::ViewerUnlock), "{err}");
    assert!(!err.to_string().contains("stable"), "{err}");
}

#[test]
fn recovery_key_unlocks_after_a_text_round_trip_and_a_wrong_one_does_not() {
    let (locked, recovery) = viewer("correct horse battery staple");
    let text = recovery.to_text();
    assert_eq!(text.len(), 52 + 12, "{}", text.as_str());
    // Typed back in lower case with spaces: still the same key.
    let typed = text.replace('-', " ").to_lowercase();
    let parsed = RecoveryKey::parse(&typed).expect("parse");
    let secret = locked.unlock_with_recovery(&parsed).expect("unlock");
    assert_eq!(secret.public_key(), locked.public_key());

    let (_, other) = viewer("another passphrase entirely");
    assert!(matches!(
        locked.unlock_with_recovery(&other),
        Err(StoreError::ViewerUnlock)
    ));
    assert!(RecoveryKey::parse("ABCD-EFGH").is_err());
    let mut bad = text.to_string();
    bad.replace_range(0..1, "1");
    assert!(RecoveryKey::parse(&bad).is_err(), "1 is not a base32 digit");
}

#[test]
fn a_non_recipient_cannot_open_and_a_moved_slot_is_refused() {
    let (alice, _) = viewer("alice's long passphrase");
    let (bob, _) = viewer("bob's different passphrase");
    let data = DataKey::generate().expect("random");
    let slots = seal_data_key(&data, &[alice.public_key().clone()], 7, "porch").expect("seal");
    let bob = bob
        .unlock_with_passphrase("bob's different passphrase")
        .expect("unlock");
    assert!(matches!(
        bob.open_data_key(&slots, 7, "porch"),
        Err(StoreError::NotARecipient {
            recording_id: 7,
            ..
        })
    ));
    // Bob pretends to be the recipient: the sealed box does not open for him.
    let mut forged = slots[0].to_bytes();
    forged[..8].copy_from_slice(&bob.public_key().id().0);
    let forged = [RecipientSlot::from_bytes(&forged)];
    assert!(matches!(
        bob.open_data_key(&forged, 7, "porch"),
        Err(StoreError::KeyUnwrap { .. })
    ));
    // Alice's slot copied into another recording's header is refused.
    let alice = alice
        .unlock_with_passphrase("alice's long passphrase")
        .expect("unlock");
    assert!(alice.open_data_key(&slots, 8, "porch").is_err());
    assert!(alice.open_data_key(&slots, 7, "garage").is_err());
    let mut flipped = slots[0].to_bytes();
    flipped[50] ^= 1;
    assert!(alice
        .open_data_key(&[RecipientSlot::from_bytes(&flipped)], 7, "porch")
        .is_err());
}

#[test]
fn several_recipients_each_open_their_own_slot() {
    let (a, _) = viewer("first viewer passphrase");
    let (b, _) = viewer("second viewer passphrase");
    let data = DataKey::generate().expect("random");
    let recipients = [a.public_key().clone(), b.public_key().clone()];
    let slots = seal_data_key(&data, &recipients, 1, "porch").expect("seal");
    for (locked, pass) in [
        (a, "first viewer passphrase"),
        (b, "second viewer passphrase"),
    ] {
        let secret = locked.unlock_with_passphrase(pass).expect("unlock");
        let opened = secret.open_data_key(&slots, 1, "porch").expect("open");
        assert_eq!(opened.expose(), data.expose());
    }
    assert!(seal_data_key(&data, &[], 1, "porch").is_err());
}

#[test]
fn locked_key_round_trips_through_bytes_and_binds_its_public_key() {
    let (locked, recovery) = viewer("correct horse battery staple");
    let bytes = locked.to_bytes();
    let again = LockedViewerKey::from_bytes(&bytes).expect("parse");
    assert_eq!(again, locked);
    again
        .unlock_with_passphrase("correct horse battery staple")
        .expect("unlock");
    assert!(LockedViewerKey::from_bytes(&bytes[1..]).is_err());
    // Swapping in another public key (to get recordings sealed to an attacker's
    // key) makes the stored private key refuse to open.
    let (other, _) = viewer("attacker");
    let mut swapped = bytes.clone();
    swapped[1..33].copy_from_slice(&other.public_key().to_bytes());
    let swapped = LockedViewerKey::from_bytes(&swapped).expect("parse");
    assert!(swapped
        .unlock_with_passphrase("correct horse battery staple")
        .is_err());
    assert!(swapped.unlock_with_recovery(&recovery).is_err());
    // A tampered cost cannot make an unlock allocate without bound.
    let mut costly = bytes;
    costly[33..37].copy_from_slice(&u32::MAX.to_be_bytes());
    let costly = LockedViewerKey::from_bytes(&costly).expect("parse");
    assert!(matches!(
        costly.unlock_with_passphrase("correct horse battery staple"),
        Err(StoreError::ViewerKeyInvalid { .. })
    ));
}

/// 600 MiB is under the old 1 GiB cap but more than a 1 GB Pi can spare next to
/// the recorder: refused before Argon2 allocates anything (the error says so; an
/// attempted derivation would have ended in a wrong-passphrase error instead).
#[test]
fn a_locked_key_claiming_600_mib_of_argon2_memory_is_refused() {
    let (locked, _) = viewer("correct horse battery staple");
    let mut bytes = locked.to_bytes();
    bytes[33..37].copy_from_slice(&(600 * 1024u32).to_be_bytes());
    let costly = LockedViewerKey::from_bytes(&bytes).expect("parse");
    match costly.unlock_with_passphrase("correct horse battery staple") {
        Err(StoreError::ViewerKeyInvalid { reason }) => {
            assert!(reason.contains("above what this build accepts"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn strong_parameters_are_stored_and_used() {
    let started = std::time::Instant::now();
    let (locked, _) = LockedViewerKey::generate("correct horse battery staple").expect("generate");
    let bytes = locked.to_bytes();
    assert_eq!(&bytes[33..45], &[0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1]);
    locked
        .unlock_with_passphrase("correct horse battery staple")
        .expect("unlock");
    println!(
        "argon2id m=128MiB t=3 p=1: generate + unlock {:?}",
        started.elapsed()
    );
}

#[test]
fn debug_output_never_contains_key_bytes() {
    let (locked, recovery) = viewer("correct horse battery staple");
    let secret = locked
        .unlock_with_passphrase("correct horse battery staple")
        .expect("unlock");
    let shown = format!("{secret:?} {locked:?} {recovery:?}");
    assert!(
        !shown.contains(&hex::encode(secret.secret.as_ref())),
        "{shown}"
    );
    assert!(!shown.contains(&recovery.to_text()[..9]), "{shown}");
    assert!(
        shown.contains(&locked.public_key().id().to_string()),
        "{shown}"
    );
}
