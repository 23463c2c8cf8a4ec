//! End-to-end mode's keys: the second (and only other) holder of key material in
//! the store, under the same invariants as `crypto` — no `Debug` or `Display` shows
//! key bytes, secrets live in [`Zeroizing`] buffers and are wiped on drop.
//!
//! Owns:
//! - [`ViewerPublicKey`]: an X25519 public key that new recordings' data keys are
//!   sealed to. The daemon holds only these while nobody has unlocked.
//! - [`LockedViewerKey`]: the matching private key as it rests on disk, encrypted
//!   twice: under a key derived from the viewer's passphrase (Argon2id) and under a
//!   random [`RecoveryKey`] shown once to print. Either lock can be replaced (a new
//!   passphrase, a new recovery key) without changing the key pair, so what was
//!   sealed to it still opens.
//! - [`ViewerSecret`]: the private key after an unlock; memory only.
//! - [`RecipientSlot`]: one recording's data key sealed to one viewer.
//!
//! Constructions (labels are ASCII, without quotes; HKDF as in `crypto`):
//!
//! ```text
//! viewer id    = SHA-256(`porchlight viewer-id v1` ‖ 0x00 ‖ public key)[0..8]
//! binding      = SHA-256(`porchlight e2e data-key v1` ‖ 0x00 ‖ recording id (u64 BE)
//!                        ‖ camera length (u64 BE) ‖ camera)
//! slot         = viewer id (8) ‖ sealed box (libsodium crypto_box_seal: X25519,
//!                XSalsa20-Poly1305) of data key (32) ‖ binding (32)   = 8 + 112 bytes
//! passphrase   → Argon2id(m = 128 MiB, t = 3, p = 1, salt = 16 random bytes) → 32 bytes
//! wrap key     = HKDF(ikm = that, info = `viewer key wrap: passphrase`), or
//!                HKDF(ikm = recovery key, info = `viewer key wrap: recovery`)
//! wrapped      = XChaCha20-Poly1305(wrap key, random 24-byte nonce, private key,
//!                aad = `porchlight viewer key v1` ‖ 0x00 ‖ purpose ‖ 0x00 ‖ public key)
//! ```
//!
//! A sealed box has no associated data, so the binding to recording id and camera
//! (what the master-key wrap's AAD does) travels inside the sealed plaintext and is
//! compared on opening: a slot copied into another recording's header is refused as
//! a key-unwrap failure, not used.
//!
//! Argon2id parameters: m = 128 MiB, t = 3, p = 1. The passphrase is the only thing
//! between a stolen disk and the video, and that attacker guesses offline with no
//! throttle, so this is set well above the login hash (46 MiB, t = 2): unlocking is
//! rare and may take a second. On the 2-core x86-64 development machine one run takes
//! 0.27 s (`strong_parameters_are_stored_and_used` prints it); a Raspberry Pi 4 runs
//! memory-hard hashes 4–6× slower (see `auth::password`), so an estimated 1.1–1.6 s
//! (not measured on one), and 128 MiB is affordable on its smallest (1 GB) model
//! because `crate::e2e` runs one derivation at a time. The parameters are stored with each locked key, so they can be raised for
//! new keys without breaking old ones.
//!
//! Limitation: `crypto_box` 0.9 wipes its `SecretKey`'s scalar on drop but not its
//! copy of the raw bytes. [`ViewerSecret`] therefore keeps the raw key in a
//! [`Zeroizing`] buffer and builds the `crypto_box` key only for the moment of an
//! unseal; that transient copy is the one the crate leaves behind.

use std::fmt;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use crypto_box::aead::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::crypto::{fill_random, hkdf32, DataKey, KEY_LEN, TAG_LEN};
use super::error::StoreError;

/// Most recipients one recording can be sealed to (bounds the header size).
pub const MAX_RECIPIENTS: usize = 16;
/// Bytes of a sealed box of data key ‖ binding: ephemeral key ‖ ciphertext ‖ tag.
pub const SEALED_LEN: usize = 32 + 2 * KEY_LEN + TAG_LEN;
/// Bytes of one recipient slot in a header.
pub const SLOT_LEN: usize = ViewerId::LEN + SEALED_LEN;

const VIEWER_ID_LABEL: &[u8] = b"porchlight viewer-id v1\0";
const BINDING_LABEL: &[u8] = b"porchlight e2e data-key v1\0";
const VIEWER_WRAP_AAD: &[u8] = b"porchlight viewer key v1\0";
const PASSPHRASE_INFO: &[u8] = b"viewer key wrap: passphrase";
const RECOVERY_INFO: &[u8] = b"viewer key wrap: recovery";
const LOCKED_VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const WRAPPED_LEN: usize = 24 + KEY_LEN + TAG_LEN;
/// End of version ‖ public key ‖ m, t, p in the stored form.
const PARAMS_END: usize = 1 + KEY_LEN + 12;
const LOCKED_LEN: usize = PARAMS_END + SALT_LEN + 2 * WRAPPED_LEN;
/// Upper bounds accepted from a stored key, so a tampered record cannot make an
/// unlock allocate more than a 1 GB Raspberry Pi can spare: 512 MiB, four times the
/// 128 MiB of [`KdfParams::STRONG`].
const MAX_MEMORY_KIB: u32 = 512 * 1024;
const MAX_ITERATIONS: u32 = 16;

/// Argon2id cost of a passphrase (see the module doc for why these values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// m = 128 MiB, t = 3, p = 1.
    pub const STRONG: KdfParams = KdfParams {
        memory_kib: 128 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    fn derive(
        &self,
        passphrase: &str,
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
        let bad = |e: argon2::Error| StoreError::ViewerKeyInvalid {
            reason: format!("Argon2 parameters: {e}"),
        };
        if self.memory_kib > MAX_MEMORY_KIB || self.iterations > MAX_ITERATIONS {
            return Err(StoreError::ViewerKeyInvalid {
                reason: "Argon2 cost is above what this build accepts".into(),
            });
        }
        let params = argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(bad)?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(bad)?;
        Ok(hkdf32(out.as_ref(), PASSPHRASE_INFO))
    }
}

/// Fingerprint of a viewer's public key: 8 bytes, shown as 16 hex digits. Safe to log.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ViewerId([u8; 8]);

impl ViewerId {
    pub const LEN: usize = 8;

    fn of(public: &[u8; KEY_LEN]) -> ViewerId {
        let digest = Sha256::new()
            .chain_update(VIEWER_ID_LABEL)
            .chain_update(public)
            .finalize();
        ViewerId(digest[..8].try_into().expect("8-byte slice"))
    }
}

impl fmt::Display for ViewerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ViewerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewerId({self})")
    }
}

/// A viewer's X25519 public key: what new recordings are sealed to.
#[derive(Clone, PartialEq, Eq)]
pub struct ViewerPublicKey {
    bytes: [u8; KEY_LEN],
    id: ViewerId,
}

impl ViewerPublicKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> ViewerPublicKey {
        ViewerPublicKey {
            bytes,
            id: ViewerId::of(&bytes),
        }
    }

    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.bytes
    }

    pub fn id(&self) -> ViewerId {
        self.id
    }
}

impl fmt::Debug for ViewerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewerPublicKey({})", self.id)
    }
}

/// One recording's data key sealed to one viewer (see the module doc).
#[derive(Clone, PartialEq, Eq)]
pub struct RecipientSlot {
    pub recipient: ViewerId,
    sealed: [u8; SEALED_LEN],
}

impl RecipientSlot {
    /// Parses the `SLOT_LEN` bytes of a header slot.
    pub fn from_bytes(bytes: &[u8; SLOT_LEN]) -> RecipientSlot {
        RecipientSlot {
            recipient: ViewerId(bytes[..8].try_into().expect("8-byte slice")),
            sealed: bytes[8..].try_into().expect("112-byte slice"),
        }
    }

    pub fn to_bytes(&self) -> [u8; SLOT_LEN] {
        let mut out = [0u8; SLOT_LEN];
        out[..8].copy_from_slice(&self.recipient.0);
        out[8..].copy_from_slice(&self.sealed);
        out
    }

    /// True once deletion has overwritten the slot.
    pub fn is_zeroed(&self) -> bool {
        self.recipient.0 == [0; 8] && self.sealed.iter().all(|&b| b == 0)
    }
}

impl fmt::Debug for RecipientSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecipientSlot({})", self.recipient)
    }
}

fn binding(recording_id: u64, camera: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(BINDING_LABEL)
        .chain_update(recording_id.to_be_bytes())
        .chain_update((camera.len() as u64).to_be_bytes())
        .chain_update(camera.as_bytes())
        .finalize()
        .into()
}

/// Seals `data_key` of recording `recording_id` of `camera` to every recipient.
pub fn seal_data_key(
    data_key: &DataKey,
    recipients: &[ViewerPublicKey],
    recording_id: u64,
    camera: &str,
) -> Result<Vec<RecipientSlot>, StoreError> {
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(StoreError::InvalidArgument {
            field: "recipients",
            reason: format!(
                "{} viewers, allowed 1 ..= {MAX_RECIPIENTS}",
                recipients.len()
            ),
        });
    }
    let mut plain = Zeroizing::new([0u8; 2 * KEY_LEN]);
    plain[..KEY_LEN].copy_from_slice(data_key.expose());
    plain[KEY_LEN..].copy_from_slice(&binding(recording_id, camera));
    recipients
        .iter()
        .map(|r| {
            let sealed = crypto_box::PublicKey::from(r.bytes)
                .seal(&mut OsRng, plain.as_ref())
                .map_err(|_| StoreError::InvalidArgument {
                    field: "recipient",
                    reason: "sealing failed".into(),
                })?;
            Ok(RecipientSlot {
                recipient: r.id,
                sealed: sealed
                    .as_slice()
                    .try_into()
                    .expect("a sealed box of 64 bytes is 112 bytes"),
            })
        })
        .collect()
}

/// A viewer's private key after an unlock. Memory only; wiped on drop.
pub struct ViewerSecret {
    secret: Zeroizing<[u8; KEY_LEN]>,
    public: ViewerPublicKey,
}

impl ViewerSecret {
    fn from_secret(secret: Zeroizing<[u8; KEY_LEN]>) -> ViewerSecret {
        let public = crypto_box::SecretKey::from(*secret).public_key();
        ViewerSecret {
            secret,
            public: ViewerPublicKey::from_bytes(*public.as_bytes()),
        }
    }

    pub fn public_key(&self) -> &ViewerPublicKey {
        &self.public
    }

    /// Opens this viewer's slot among `slots` for recording `recording_id` of `camera`.
    pub fn open_data_key(
        &self,
        slots: &[RecipientSlot],
        recording_id: u64,
        camera: &str,
    ) -> Result<DataKey, StoreError> {
        let slot = slots.iter().find(|s| s.recipient == self.public.id).ok_or(
            StoreError::NotARecipient {
                recording_id,
                viewer: self.public.id,
            },
        )?;
        let unwrap_failed = || StoreError::KeyUnwrap {
            recording_id,
            camera: camera.to_owned(),
            path: None,
        };
        let plain = crypto_box::SecretKey::from(*self.secret)
            .unseal(&slot.sealed)
            .map(Zeroizing::new)
            .map_err(|_| unwrap_failed())?;
        if plain.len() != 2 * KEY_LEN
            || !bool::from(plain[KEY_LEN..].ct_eq(&binding(recording_id, camera)))
        {
            return Err(unwrap_failed());
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&plain[..KEY_LEN]);
        Ok(DataKey::from_secret(key))
    }
}

impl fmt::Debug for ViewerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewerSecret({})", self.public.id)
    }
}

/// 256 random bits that unlock a viewer key without the passphrase. Shown once as
/// text (RFC 4648 base32, groups of four) to print; never stored by the daemon.
pub struct RecoveryKey(Zeroizing<[u8; KEY_LEN]>);

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl RecoveryKey {
    fn generate() -> Result<RecoveryKey, StoreError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut())?;
        Ok(RecoveryKey(bytes))
    }

    /// The key as 13 groups of 4 base32 characters joined by `-`.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut chars = Zeroizing::new(String::with_capacity(64));
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in self.0.iter() {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                chars.push(BASE32[((acc >> bits) & 31) as usize] as char);
            }
        }
        if bits > 0 {
            chars.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
        }
        let mut out = Zeroizing::new(String::with_capacity(70));
        for (i, c) in chars.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// Reads a recovery key as typed: case, spaces and dashes do not matter.
    pub fn parse(text: &str) -> Result<RecoveryKey, StoreError> {
        let refused = || StoreError::ViewerUnlock;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        let (mut acc, mut bits, mut at, mut count) = (0u32, 0u32, 0usize, 0usize);
        for c in text.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            let c = c.to_ascii_uppercase() as u8;
            let v = BASE32.iter().position(|&b| b == c).ok_or_else(refused)? as u32;
            count += 1;
            acc = ((acc << 5) | v) & 0xffff;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                if at == KEY_LEN {
                    return Err(refused());
                }
                bytes[at] = (acc >> bits) as u8;
                at += 1;
            }
        }
        // 52 characters carry 256 bits and 4 zero bits of padding.
        if count != 52 || at != KEY_LEN || acc & ((1 << bits) - 1) != 0 {
            return Err(refused());
        }
        Ok(RecoveryKey(bytes))
    }

    fn wrap_key(&self) -> Zeroizing<[u8; KEY_LEN]> {
        hkdf32(self.0.as_ref(), RECOVERY_INFO)
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(..)")
    }
}

/// A viewer's private key as stored: encrypted under the passphrase and, separately,
/// under the recovery key. Not secret on its own.
#[derive(Clone, PartialEq, Eq)]
pub struct LockedViewerKey {
    public: ViewerPublicKey,
    params: KdfParams,
    salt: [u8; SALT_LEN],
    by_passphrase: [u8; WRAPPED_LEN],
    by_recovery: [u8; WRAPPED_LEN],
}

fn wrap_aad(purpose: &str, public: &ViewerPublicKey) -> Vec<u8> {
    [VIEWER_WRAP_AAD, purpose.as_bytes(), b"\0", &public.bytes].concat()
}

fn wrap_secret(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    secret: &[u8; KEY_LEN],
) -> Result<[u8; WRAPPED_LEN], StoreError> {
    let aead = XChaCha20Poly1305::new(&Key::from(*key));
    let mut out = [0u8; WRAPPED_LEN];
    fill_random(&mut out[..24])?;
    let nonce = XNonce::try_from(&out[..24]).expect("slice is 24 bytes");
    out[24..56].copy_from_slice(secret);
    let tag = aead
        .encrypt_inout_detached(&nonce, aad, (&mut out[24..56]).into())
        .expect("a 32-byte message is within XChaCha20-Poly1305 limits");
    out[56..].copy_from_slice(&tag);
    Ok(out)
}

fn unwrap_secret(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    wrapped: &[u8; WRAPPED_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
    let aead = XChaCha20Poly1305::new(&Key::from(*key));
    let nonce = XNonce::try_from(&wrapped[..24]).expect("slice is 24 bytes");
    let tag = Tag::try_from(&wrapped[56..]).expect("slice is 16 bytes");
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    secret.copy_from_slice(&wrapped[24..56]);
    aead.decrypt_inout_detached(&nonce, aad, secret.as_mut_slice().into(), &tag)
        .map_err(|_| StoreError::ViewerUnlock)?;
    Ok(secret)
}

impl LockedViewerKey {
    /// A new viewer key pair locked under `passphrase` (with the strong parameters)
    /// and under a new recovery key, which is returned to be shown once.
    pub fn generate(passphrase: &str) -> Result<(LockedViewerKey, RecoveryKey), StoreError> {
        Self::generate_with(passphrase, KdfParams::STRONG)
    }

    pub(crate) fn generate_with(
        passphrase: &str,
        params: KdfParams,
    ) -> Result<(LockedViewerKey, RecoveryKey), StoreError> {
        let mut secret = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(secret.as_mut())?;
        let viewer = ViewerSecret::from_secret(secret);
        let public = viewer.public.clone();
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let recovery = RecoveryKey::generate()?;
        let by_passphrase = wrap_secret(
            &*params.derive(passphrase, &salt)?,
            &wrap_aad("passphrase", &public),
            &viewer.secret,
        )?;
        let by_recovery = wrap_secret(
            &recovery.wrap_key(),
            &wrap_aad("recovery", &public),
            &viewer.secret,
        )?;
        let locked = LockedViewerKey {
            public,
            params,
            salt,
            by_passphrase,
            by_recovery,
        };
        Ok((locked, recovery))
    }

    pub fn public_key(&self) -> &ViewerPublicKey {
        &self.public
    }

    /// The same private key (`viewer`, unlocked from this one) locked under a new
    /// passphrase: a fresh salt and the strong parameters, whatever this key had; the
    /// recovery lock is kept as it is. One Argon2id run: call from a blocking thread.
    pub fn with_new_passphrase(
        &self,
        viewer: &ViewerSecret,
        passphrase: &str,
    ) -> Result<LockedViewerKey, StoreError> {
        self.with_new_passphrase_with(viewer, passphrase, KdfParams::STRONG)
    }

    pub(crate) fn with_new_passphrase_with(
        &self,
        viewer: &ViewerSecret,
        passphrase: &str,
        params: KdfParams,
    ) -> Result<LockedViewerKey, StoreError> {
        self.same_key(viewer)?;
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let by_passphrase = wrap_secret(
            &*params.derive(passphrase, &salt)?,
            &wrap_aad("passphrase", &self.public),
            &viewer.secret,
        )?;
        Ok(LockedViewerKey {
            params,
            salt,
            by_passphrase,
            ..self.clone()
        })
    }

    /// The same private key locked under a new recovery key (returned, to be shown
    /// once); the passphrase lock is kept as it is, and the old recovery key no longer
    /// opens the result.
    pub fn with_new_recovery(
        &self,
        viewer: &ViewerSecret,
    ) -> Result<(LockedViewerKey, RecoveryKey), StoreError> {
        self.same_key(viewer)?;
        let recovery = RecoveryKey::generate()?;
        let by_recovery = wrap_secret(
            &recovery.wrap_key(),
            &wrap_aad("recovery", &self.public),
            &viewer.secret,
        )?;
        let locked = LockedViewerKey {
            by_recovery,
            ..self.clone()
        };
        Ok((locked, recovery))
    }

    /// Re-locking someone else's private key under this public key would store a key
    /// that never unlocks; refuse it instead.
    fn same_key(&self, viewer: &ViewerSecret) -> Result<(), StoreError> {
        if viewer.public != self.public {
            return Err(StoreError::ViewerKeyInvalid {
                reason: "the unlocked key is not this viewer's".into(),
            });
        }
        Ok(())
    }

    /// Unlocks with the passphrase (one Argon2id run: call from a blocking thread).
    /// A wrong passphrase is [`StoreError::ViewerUnlock`].
    pub fn unlock_with_passphrase(&self, passphrase: &str) -> Result<ViewerSecret, StoreError> {
        let key = self.params.derive(passphrase, &self.salt)?;
        let secret = unwrap_secret(
            &key,
            &wrap_aad("passphrase", &self.public),
            &self.by_passphrase,
        )?;
        self.checked(secret)
    }

    /// Unlocks with the recovery key. A wrong one is [`StoreError::ViewerUnlock`].
    pub fn unlock_with_recovery(&self, recovery: &RecoveryKey) -> Result<ViewerSecret, StoreError> {
        let secret = unwrap_secret(
            &recovery.wrap_key(),
            &wrap_aad("recovery", &self.public),
            &self.by_recovery,
        )?;
        self.checked(secret)
    }

    /// The opened key must be the private half of the stored public key.
    fn checked(&self, secret: Zeroizing<[u8; KEY_LEN]>) -> Result<ViewerSecret, StoreError> {
        let viewer = ViewerSecret::from_secret(secret);
        if viewer.public != self.public {
            return Err(StoreError::ViewerKeyInvalid {
                reason: "the private key does not match the public key".into(),
            });
        }
        Ok(viewer)
    }

    /// Where the passphrase lock (salt ‖ wrapped) lies in [`Self::to_bytes`]: what a
    /// passphrase change overwrites in the old copy.
    pub const PASSPHRASE_PART: std::ops::Range<usize> =
        PARAMS_END..PARAMS_END + SALT_LEN + WRAPPED_LEN;
    /// Where the recovery lock lies in [`Self::to_bytes`].
    pub const RECOVERY_PART: std::ops::Range<usize> =
        PARAMS_END + SALT_LEN + WRAPPED_LEN..LOCKED_LEN;

    /// The stored form: version (1) ‖ public key (32) ‖ m, t, p (u32 BE each) ‖ salt
    /// (16) ‖ wrapped under the passphrase (72) ‖ wrapped under the recovery key (72).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LOCKED_LEN);
        out.push(LOCKED_VERSION);
        out.extend_from_slice(&self.public.bytes);
        for v in [
            self.params.memory_kib,
            self.params.iterations,
            self.params.parallelism,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.by_passphrase);
        out.extend_from_slice(&self.by_recovery);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<LockedViewerKey, StoreError> {
        if bytes.len() != LOCKED_LEN || bytes[0] != LOCKED_VERSION {
            return Err(StoreError::ViewerKeyInvalid {
                reason: format!("{} bytes or unknown version", bytes.len()),
            });
        }
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let public: [u8; KEY_LEN] = bytes[1..33].try_into().expect("32 bytes");
        let at = PARAMS_END;
        Ok(LockedViewerKey {
            public: ViewerPublicKey::from_bytes(public),
            params: KdfParams {
                memory_kib: u32_at(33),
                iterations: u32_at(37),
                parallelism: u32_at(41),
            },
            salt: bytes[at..at + SALT_LEN].try_into().expect("16 bytes"),
            by_passphrase: bytes[at + SALT_LEN..at + SALT_LEN + WRAPPED_LEN]
                .try_into()
                .expect("72 bytes"),
            by_recovery: bytes[at + SALT_LEN + WRAPPED_LEN..]
                .try_into()
                .expect("72 bytes"),
        })
    }
}

impl fmt::Debug for LockedViewerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockedViewerKey({})", self.public.id)
    }
}

#[cfg(test)]
#[path = "e2e_tests.rs"]
mod tests;
