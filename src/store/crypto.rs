//! Keys and ciphers: the only place that holds key material.
//!
//! Owns:
//! - [`MasterKey`]: 32 random bytes in `<key dir>/master.key`, mode 0600. It never
//!   encrypts video; it only wraps per-recording data keys.
//! - [`KeyId`]: an 8-byte fingerprint of the master key, safe to log and stored in
//!   every recording header so a mismatch is reported as such, not as "corrupt".
//! - [`DataKey`]: 32 random bytes per recording, wiped on drop.
//! - [`WrappedKey`]: a data key sealed under the master key (XChaCha20-Poly1305,
//!   random 24-byte nonce), bound to its recording id and camera.
//! - [`ChunkCipher`]: the ChaCha20-Poly1305 instance that seals a recording's chunks.
//!
//! Derivations (HKDF is HKDF-SHA256, RFC 5869; labels are ASCII, shown without quotes):
//!
//! ```text
//! key id      = SHA-256(`porchlight key-id v1` ‖ 0x00 ‖ master key)[0..8]
//! wrap key    = HKDF(salt = `porchlight-store-v1`, ikm = master key, info = `data-key wrap`), 32 bytes
//! payload key = HKDF(salt = `porchlight-store-v1`, ikm = data key,   info = `chunk payload`), 32 bytes
//! auth key    = HKDF(salt = `porchlight-store-v1`, ikm = master key, info = `e2e header auth`), 32 bytes
//! e2e tag     = HMAC-SHA256(auth key, version 2 header with bytes 36..42 zeroed)[0..6]
//! wrap AAD    = `porchlight data-key v1` ‖ 0x00 ‖ recording id (u64 BE)
//!               ‖ camera length (u64 BE) ‖ camera (UTF-8)
//! ```
//!
//! The wrap key is derived rather than the master key used directly so that the
//! master key can later serve other purposes (sealing index fields, share copies)
//! under other labels without two uses ever sharing a cipher key. The payload key
//! is derived for the same reason: a data key handed to another construction
//! (e.g. a share copy's key wrap) never doubles as the chunk cipher key.
//!
//! Its sibling `e2e` holds the end-to-end mode's viewer keys under the same
//! invariants; data keys cross between the two only through `pub(super)` functions.
//!
//! Invariants: no type here implements a `Debug` or `Display` that shows key bytes;
//! key bytes live in [`Zeroizing`] buffers. Note: the cipher objects of
//! `chacha20poly1305` keep their own copy of the key and only wipe it when that
//! crate's `zeroize` feature is enabled.
//!
//! The e2e tag is what makes an end-to-end (version 2) file authentic: its data key
//! is sealed to viewers' *public* keys, so without the tag anyone who can write the
//! data disk could make one (see `format`). HMAC is computed as HKDF-Extract with
//! the auth key as salt, which RFC 5869 defines as exactly HMAC-SHA256(salt, ikm):
//! that reuses the `hkdf` crate already here instead of adding `hmac` to the
//! dependencies (and to the fuzz workspace's lock file).
//!
//! May call: the filesystem (the key directory only, through its checked handle
//! `key_dir::KeyDir`: the key file and the [`E2E_TAGS_MARKER`]; and, for the
//! viewer key files' [`write_new_key_file`] and [`sync_dir`], paths the caller
//! names), the OS random number generator.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::StoreError;
use super::key_dir::KeyDir;

/// Name of the master key file inside the key directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Length of every key in this module, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a Poly1305 authentication tag, in bytes.
pub const TAG_LEN: usize = 16;
/// Length of the random per-recording chunk nonce prefix, in bytes.
pub const NONCE_PREFIX_LEN: usize = 7;

const KEY_ID_LABEL: &[u8] = b"porchlight key-id v1\0";
const HKDF_SALT: &[u8] = b"porchlight-store-v1";
const WRAP_INFO: &[u8] = b"data-key wrap";
const PAYLOAD_INFO: &[u8] = b"chunk payload";
const SECRET_INFO: &[u8] = b"secret box";
const SHARE_KEY_INFO: &[u8] = b"share link key";
const SHARE_CHECK_INFO: &[u8] = b"share link check";
const E2E_AUTH_INFO: &[u8] = b"e2e header auth";
/// Bytes of an end-to-end header's tag (see `format` for why 48 bits suffice).
pub const E2E_TAG_LEN: usize = 6;
/// File in the key directory that says every end-to-end file of this installation
/// carries a header tag, so an all-zero tag is refused like a wrong one. It lives in
/// the key directory because the threat is someone who can write the data disk but
/// not the key directory: on the data disk they could delete it.
pub const E2E_TAGS_MARKER: &str = "e2e-tags-v1";

/// Bytes of a share link's secret (256 bits; the issue asks for at least 128).
pub const SHARE_SECRET_LEN: usize = 32;
const SECRET_AAD: &[u8] = b"porchlight secret v1\0";
const WRAP_AAD_LABEL: &[u8] = b"porchlight data-key v1\0";
/// Temporary name the new key is written under before it is linked into place.
const NEW_KEY_FILE: &str = "master.key.new";

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(StoreError::Randomness)
}

/// A fresh random chunk-nonce prefix for a new recording.
pub fn random_nonce_prefix() -> Result<[u8; NONCE_PREFIX_LEN], StoreError> {
    let mut prefix = [0u8; NONCE_PREFIX_LEN];
    fill_random(&mut prefix)?;
    Ok(prefix)
}

fn secret_aad(purpose: &str) -> Vec<u8> {
    let mut aad = SECRET_AAD.to_vec();
    aad.extend_from_slice(purpose.as_bytes());
    aad
}

pub(super) fn hkdf32(ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(HKDF_SALT), ikm)
        .expand(info, out.as_mut())
        .expect("32 bytes is far below HKDF-SHA256's 8160-byte output limit");
    out
}

/// What the index keeps of a share link's secret to recognise it: a one-way value
/// under its own HKDF label, so it reveals neither the secret nor the copy's key.
pub fn share_check(secret: &[u8; SHARE_SECRET_LEN]) -> [u8; 32] {
    *hkdf32(secret, SHARE_CHECK_INFO)
}

/// Fingerprint of a master key: 8 bytes, shown as 16 hex digits. Safe to log.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// Length of a key id on disk.
    pub const LEN: usize = 8;

    fn of(key: &[u8; KEY_LEN]) -> KeyId {
        let digest = Sha256::new()
            .chain_update(KEY_ID_LABEL)
            .chain_update(key)
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// Rebuilds a key id read from disk.
    pub fn from_bytes(bytes: [u8; 8]) -> KeyId {
        KeyId(bytes)
    }

    /// The 8 bytes, as stored in recording headers.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The long-lived key that wraps every recording's data key.
///
/// Losing it makes every recording unreadable; it is deliberately not `Clone`.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
    /// Whether an end-to-end file with an all-zero header tag (written before tags
    /// existed) is accepted: only while [`E2E_TAGS_MARKER`] is absent from the key
    /// directory, i.e. until start-up has tagged the old files once.
    accepts_untagged_e2e: AtomicBool,
}

impl MasterKey {
    /// A key from its bytes; it refuses untagged end-to-end files (the safe default
    /// for keys not loaded from a key directory).
    pub(super) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let id = KeyId::of(&bytes);
        MasterKey {
            bytes,
            id,
            accepts_untagged_e2e: AtomicBool::new(false),
        }
    }

    /// The 6-byte tag of a version 2 header, over `message` (the `header_len` header
    /// bytes with the tag's own bytes zeroed; `format` builds it).
    pub fn e2e_header_tag(&self, message: &[u8]) -> [u8; E2E_TAG_LEN] {
        let auth_key = hkdf32(self.bytes.as_ref(), E2E_AUTH_INFO);
        // HKDF-Extract(salt, ikm) = HMAC-SHA256(salt, ikm) (RFC 5869, section 2.2).
        let (mac, _) = Hkdf::<Sha256>::extract(Some(auth_key.as_ref()), message);
        mac[..E2E_TAG_LEN]
            .try_into()
            .expect("SHA-256 output is longer than 6 bytes")
    }

    /// Whether an all-zero end-to-end header tag is still accepted (see the field).
    pub fn accepts_untagged_e2e(&self) -> bool {
        self.accepts_untagged_e2e.load(Ordering::SeqCst)
    }

    /// Sets what [`accepts_untagged_e2e`](Self::accepts_untagged_e2e) says.
    pub(super) fn set_accepts_untagged_e2e(&self, accept: bool) {
        self.accepts_untagged_e2e.store(accept, Ordering::SeqCst);
    }

    /// A random key that exists only in memory (tests).
    #[cfg(test)]
    pub(crate) fn generate_for_tests() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut()).expect("OS random number generator");
        MasterKey::from_bytes(bytes)
    }

    /// The key a share link's copy is sealed under, derived from the link's secret:
    /// whoever lacks the link cannot read the copy, the daemon included (it keeps only
    /// [`share_check`]).
    pub fn for_share_link(secret: &[u8; SHARE_SECRET_LEN]) -> MasterKey {
        MasterKey::from_bytes(hkdf32(secret, SHARE_KEY_INFO))
    }

    /// This key's fingerprint.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Loads `<key_dir>/master.key`.
    ///
    /// Fails with [`StoreError::MasterKeyMissing`] if the file does not exist,
    /// [`StoreError::MasterKeyInvalid`] if it is not a regular file of exactly 32
    /// bytes, [`StoreError::MasterKeyPermissions`] if its mode is not 0600 or 0400,
    /// and [`StoreError::KeyPathUnsafe`] if it is a symlink, belongs to another user,
    /// or its directory is group- or world-writable or belongs to another user (see
    /// [`load_key_file`](Self::load_key_file); the directory is looked up once, see
    /// `key_dir`). The last is an error, not a warning, on purpose (as ssh does for
    /// private keys): a key readable by other local users defeats at-rest
    /// encryption, and a daemon that refuses to start is noticed, a log line is not.
    ///
    /// Refuses with [`StoreError::RotationInterrupted`] while a master-key rotation
    /// is unfinished (see `rotate`): some files are then under the old key and some
    /// under the new one, and using either key alone would misreport the others.
    ///
    /// The key accepts untagged end-to-end files only while `key_dir` has no
    /// [`E2E_TAGS_MARKER`] (see [`write_e2e_tags_marker`]).
    pub fn load(key_dir: &Path) -> Result<MasterKey, StoreError> {
        MasterKey::load_in(&KeyDir::open(key_dir)?)
    }

    /// [`load`](Self::load) from a key directory already opened and checked.
    pub(super) fn load_in(dir: &KeyDir) -> Result<MasterKey, StoreError> {
        super::rotate::refuse_if_rotating(dir)?;
        let key = MasterKey::load_key_file(dir, MASTER_KEY_FILE)?;
        key.set_accepts_untagged_e2e(!e2e_tags_marker_exists(dir)?);
        Ok(key)
    }

    /// Loads one key file of `dir` with the checks of [`load`](Self::load): size,
    /// type, mode and owner of the file (see [`check_key_owner`]), and no symlink;
    /// the directory's mode and owner were checked when `dir` was opened (see
    /// `key_dir`).
    ///
    /// A symlink is refused (the file is opened with `O_NOFOLLOW`) because the
    /// permission checks would then describe the link's target, wherever it lies,
    /// and whoever can write the directory the link points into could swap the key.
    /// A directory others can write to lets them replace `master.key` (rename over
    /// it) with a key of their own, after which new recordings are sealed to a key
    /// they hold; so group- or world-writable `key_dir` is refused too.
    pub(super) fn load_key_file(dir: &KeyDir, name: &str) -> Result<MasterKey, StoreError> {
        let path = dir.join(name);
        let euid = rustix::process::geteuid().as_raw();
        let mut file = match dir.open_read(name) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MasterKeyMissing { path })
            }
            // ELOOP: `O_NOFOLLOW` met a symlink.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                let fix = format!(
                    "cp --remove-destination \"$(readlink -f {0})\" {0}",
                    path.display()
                );
                return Err(StoreError::KeyPathUnsafe {
                    path,
                    problem: "is a symbolic link, which is not followed".into(),
                    fix,
                });
            }
            Err(e) => return Err(StoreError::io("open master key", &path, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("stat master key", &path, e))?;
        if !meta.is_file() {
            return Err(StoreError::MasterKeyInvalid {
                path,
                reason: "not a regular file".into(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode != 0o600 && mode != 0o400 {
            return Err(StoreError::MasterKeyPermissions { path, mode });
        }
        check_key_owner(&path, meta.uid(), euid)?;
        if meta.len() != KEY_LEN as u64 {
            return Err(StoreError::MasterKeyInvalid {
                path,
                reason: format!("it is {} bytes long, a key is {KEY_LEN}", meta.len()),
            });
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(bytes.as_mut())
            .map_err(|e| StoreError::io("read master key", &path, e))?;
        let mut probe = [0u8; 1];
        let extra = file
            .read(&mut probe)
            .map_err(|e| StoreError::io("read master key", &path, e))?;
        if extra != 0 {
            return Err(StoreError::MasterKeyInvalid {
                path,
                reason: "it grew while being read".into(),
            });
        }
        Ok(MasterKey::from_bytes(bytes))
    }

    /// Loads `<key_dir>/master.key`, creating it (and the directory, mode 0700) if
    /// it does not exist. An existing key file is never overwritten.
    ///
    /// Creation is crash-safe: the key is written to `master.key.new` (opened with
    /// `create_new`, mode 0600), fsynced, then hard-linked to `master.key` (which
    /// fails rather than replaces if the name exists), and the directory is fsynced.
    /// So `master.key` never exists half-written; a leftover `master.key.new` from
    /// a crash is removed on the next call. One process per key directory.
    pub fn load_or_create(key_dir: &Path) -> Result<MasterKey, StoreError> {
        Ok(MasterKey::load_or_create_in(key_dir)?.0)
    }

    /// [`load_or_create`](Self::load_or_create), also returning the key directory
    /// it was loaded from or created in. Only a missing directory is created by
    /// path (`mkdir -p`); the directory is then opened and checked like an existing
    /// one, and the key is made through that handle.
    pub(super) fn load_or_create_in(key_dir: &Path) -> Result<(MasterKey, KeyDir), StoreError> {
        let dir = match KeyDir::open(key_dir) {
            Ok(dir) => match MasterKey::load_in(&dir) {
                Err(StoreError::MasterKeyMissing { .. }) => dir,
                other => return Ok((other?, dir)),
            },
            Err(StoreError::MasterKeyMissing { .. }) => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(key_dir)
                    .map_err(|e| StoreError::io("create key directory", key_dir, e))?;
                KeyDir::open(key_dir)?
            }
            Err(e) => return Err(e),
        };
        let path = dir.join(MASTER_KEY_FILE);
        match dir.remove(NEW_KEY_FILE) {
            Ok(()) => tracing::warn!(
                path = %dir.join(NEW_KEY_FILE).display(),
                "removed a leftover partial key file"
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::io(
                    "remove stale key file",
                    &dir.join(NEW_KEY_FILE),
                    e,
                ))
            }
        }

        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut())?;
        drop(dir.write_new(NEW_KEY_FILE, bytes.as_ref())?);
        let linked = dir.link(NEW_KEY_FILE, MASTER_KEY_FILE);
        dir.remove(NEW_KEY_FILE)
            .map_err(|e| StoreError::io("remove temporary key file", &dir.join(NEW_KEY_FILE), e))?;
        dir.sync()?;
        match linked {
            Ok(()) => {}
            // Someone else created it between our load and our link: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Ok((MasterKey::load_in(&dir)?, dir))
            }
            Err(e) => return Err(StoreError::io("link master key", &path, e)),
        }
        // A new key has no untagged end-to-end file to tolerate.
        write_e2e_tags_marker(&dir)?;
        let key = MasterKey::from_bytes(bytes);
        tracing::info!(key_id = %key.id, path = %path.display(), "created a new master key");
        Ok((key, dir))
    }

    /// Seals `data_key` for recording `recording_id` of camera `camera`.
    pub fn wrap_data_key(
        &self,
        data_key: &DataKey,
        recording_id: u64,
        camera: &str,
    ) -> Result<WrappedKey, StoreError> {
        let wrap_key = hkdf32(self.bytes.as_ref(), WRAP_INFO);
        let aead = XChaCha20Poly1305::new(&Key::from(*wrap_key));
        let mut out = [0u8; WrappedKey::LEN];
        fill_random(&mut out[..24])?;
        let nonce = XNonce::try_from(&out[..24]).expect("slice is 24 bytes");
        out[24..56].copy_from_slice(data_key.0.as_ref());
        let tag = aead
            .encrypt_inout_detached(
                &nonce,
                &wrap_aad(recording_id, camera),
                (&mut out[24..56]).into(),
            )
            .expect("a 32-byte message is within XChaCha20-Poly1305 limits");
        out[56..].copy_from_slice(&tag);
        Ok(WrappedKey(out))
    }

    /// Seals a small secret that must rest encrypted (a TOTP seed, a camera
    /// password): XChaCha20-Poly1305 under a key derived from the master key with its
    /// own HKDF label, a random 24-byte nonce, `purpose` bound as associated data so a
    /// sealed TOTP seed cannot be passed off as something else. Output: nonce ‖
    /// ciphertext ‖ tag.
    pub fn seal_secret(&self, purpose: &str, secret: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = hkdf32(self.bytes.as_ref(), SECRET_INFO);
        let aead = XChaCha20Poly1305::new(&Key::from(*key));
        let mut out = vec![0u8; 24 + secret.len() + TAG_LEN];
        fill_random(&mut out[..24])?;
        let nonce = XNonce::try_from(&out[..24]).expect("slice is 24 bytes");
        let end = 24 + secret.len();
        out[24..end].copy_from_slice(secret);
        let tag = aead
            .encrypt_inout_detached(&nonce, &secret_aad(purpose), (&mut out[24..end]).into())
            .map_err(|_| StoreError::InvalidArgument {
                field: "secret",
                reason: "too long to seal".into(),
            })?;
        out[end..].copy_from_slice(&tag);
        Ok(out)
    }

    /// Opens what [`seal_secret`](Self::seal_secret) sealed for the same purpose.
    pub fn open_secret(
        &self,
        purpose: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let refused = || StoreError::SecretUnseal {
            purpose: purpose.to_owned(),
        };
        if sealed.len() < 24 + TAG_LEN {
            return Err(refused());
        }
        let key = hkdf32(self.bytes.as_ref(), SECRET_INFO);
        let aead = XChaCha20Poly1305::new(&Key::from(*key));
        let nonce = XNonce::try_from(&sealed[..24]).expect("slice is 24 bytes");
        let end = sealed.len() - TAG_LEN;
        let tag = Tag::try_from(&sealed[end..]).expect("slice is 16 bytes");
        let mut plain = Zeroizing::new(sealed[24..end].to_vec());
        aead.decrypt_inout_detached(
            &nonce,
            &secret_aad(purpose),
            plain.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| refused())?;
        Ok(plain)
    }

    /// Opens a wrapped data key; fails if it was sealed under another master key,
    /// for another recording id or camera, or was altered.
    pub fn unwrap_data_key(
        &self,
        wrapped: &WrappedKey,
        recording_id: u64,
        camera: &str,
    ) -> Result<DataKey, StoreError> {
        let wrap_key = hkdf32(self.bytes.as_ref(), WRAP_INFO);
        let aead = XChaCha20Poly1305::new(&Key::from(*wrap_key));
        let nonce = XNonce::try_from(&wrapped.0[..24]).expect("slice is 24 bytes");
        let tag = Tag::try_from(&wrapped.0[56..]).expect("slice is 16 bytes");
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&wrapped.0[24..56]);
        aead.decrypt_inout_detached(
            &nonce,
            &wrap_aad(recording_id, camera),
            key.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| StoreError::KeyUnwrap {
            recording_id,
            camera: camera.to_owned(),
            path: None,
        })?;
        Ok(DataKey(key))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Writes a new secret file named by path (a locked viewer key): exclusive create,
/// mode 0600, fsynced. The caller links or renames it into place. Key files in the
/// key directory are written through its handle (`KeyDir::write_new`) instead.
pub(super) fn write_new_key_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io("create key file", path, e))?;
    fill_key_file(file, path, bytes.as_ref()).map(drop)
}

/// Writes `bytes` to a key file just created as `path` and fsyncs it; returns the
/// file (for its metadata).
pub(super) fn fill_key_file(mut file: File, path: &Path, bytes: &[u8]) -> Result<File, StoreError> {
    file.write_all(bytes)
        .map_err(|e| StoreError::io("write key file", path, e))?;
    file.sync_all()
        .map_err(|e| StoreError::io("fsync key file", path, e))?;
    Ok(file)
}

/// Refuses a key file or directory owned by anyone but this process's user or
/// root: its owner can change its mode or contents at will. A process running as
/// root accepts any owner, because root may run `check` or `rotate-master-key` on
/// the key of the daemon's own (unprivileged) user, and root could read it anyway.
pub(super) fn check_key_owner(path: &Path, owner: u32, euid: u32) -> Result<(), StoreError> {
    if owner == euid || owner == 0 || euid == 0 {
        return Ok(());
    }
    Err(StoreError::KeyPathUnsafe {
        path: path.to_owned(),
        problem: format!("it is owned by user id {owner}, but this process runs as user id {euid}"),
        fix: format!("chown {euid} {}", path.display()),
    })
}

/// Whether `dir` holds the [`E2E_TAGS_MARKER`] (a symlink counts: its presence
/// is what matters, and only the key directory's owner can make one there).
pub(super) fn e2e_tags_marker_exists(dir: &KeyDir) -> Result<bool, StoreError> {
    dir.exists(E2E_TAGS_MARKER).map_err(|e| {
        StoreError::io(
            "look for the e2e tags marker",
            &dir.join(E2E_TAGS_MARKER),
            e,
        )
    })
}

/// Writes the [`E2E_TAGS_MARKER`] (mode 0600, fsynced with its directory): from
/// then on a key loaded from `dir` refuses untagged end-to-end files. Call it
/// only once every end-to-end file is tagged. Idempotent.
pub(super) fn write_e2e_tags_marker(dir: &KeyDir) -> Result<(), StoreError> {
    if e2e_tags_marker_exists(dir)? {
        return Ok(());
    }
    let path = dir.join(E2E_TAGS_MARKER);
    dir.create_or_truncate(E2E_TAGS_MARKER)
        .and_then(|mut file| {
            file.write_all(b"every end-to-end recording here carries a header tag\n")?;
            file.sync_all()
        })
        .map_err(|source| StoreError::E2eMarkerNotWritable {
            marker: path.clone(),
            key_dir: dir.path().to_owned(),
            euid: rustix::process::geteuid().as_raw(),
            source,
        })?;
    dir.sync()
}

/// Fsyncs a directory named by path (the data directory's viewer keys; the key
/// directory is synced through its handle, see `KeyDir::sync`).
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

/// Associated data of a wrapped key: label ‖ recording id (u64 BE) ‖ camera
/// length (u64 BE) ‖ camera (UTF-8).
fn wrap_aad(recording_id: u64, camera: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD_LABEL.len() + 16 + camera.len());
    aad.extend_from_slice(WRAP_AAD_LABEL);
    aad.extend_from_slice(&recording_id.to_be_bytes());
    aad.extend_from_slice(&(camera.len() as u64).to_be_bytes());
    aad.extend_from_slice(camera.as_bytes());
    aad
}

/// A recording's own random key. Wiped from memory when dropped.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// 32 fresh random bytes.
    pub fn generate() -> Result<DataKey, StoreError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut())?;
        Ok(DataKey(key))
    }
}

impl DataKey {
    /// The key bytes, for the sibling module `e2e` that seals them to viewers.
    pub(super) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Rebuilds a data key that `e2e` opened from a recipient slot.
    pub(super) fn from_secret(bytes: Zeroizing<[u8; KEY_LEN]>) -> DataKey {
        DataKey(bytes)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// A data key sealed under the master key: 24-byte nonce ‖ 32-byte ciphertext ‖
/// 16-byte tag (72 bytes). Not secret on its own, but useless without the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey([u8; WrappedKey::LEN]);

impl WrappedKey {
    /// Length on disk.
    pub const LEN: usize = 24 + KEY_LEN + TAG_LEN;

    /// Rebuilds a wrapped key from its 72 bytes.
    pub fn from_array(bytes: [u8; WrappedKey::LEN]) -> WrappedKey {
        WrappedKey(bytes)
    }

    /// Rebuilds a wrapped key from bytes stored elsewhere (e.g. the index).
    pub fn from_bytes(bytes: &[u8]) -> Result<WrappedKey, StoreError> {
        let arr: [u8; WrappedKey::LEN] =
            bytes.try_into().map_err(|_| StoreError::InvalidArgument {
                field: "wrapped key",
                reason: format!("{} bytes, expected {}", bytes.len(), WrappedKey::LEN),
            })?;
        Ok(WrappedKey(arr))
    }

    /// The 72 bytes to store.
    pub fn as_bytes(&self) -> &[u8; WrappedKey::LEN] {
        &self.0
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrappedKey(..)")
    }
}

/// A chunk failed to authenticate. The caller adds which file and chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticationFailed;

/// Seals and opens the chunks of one recording (ChaCha20-Poly1305, 12-byte nonce
/// = 7-byte prefix ‖ u32 BE counter ‖ last flag, as in `format`).
pub struct ChunkCipher {
    aead: ChaCha20Poly1305,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl ChunkCipher {
    /// Derives the payload key from `data_key` (see the module doc).
    pub fn new(data_key: &DataKey, nonce_prefix: [u8; NONCE_PREFIX_LEN]) -> ChunkCipher {
        let payload_key = hkdf32(data_key.0.as_ref(), PAYLOAD_INFO);
        ChunkCipher {
            aead: ChaCha20Poly1305::new(&Key::from(*payload_key)),
            nonce_prefix,
        }
    }

    /// Encrypts `buf` in place and returns the tag. The caller guarantees that
    /// (counter, last) is used at most once per recording with different content.
    pub fn seal(&self, counter: u32, last: bool, aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = Nonce::from(chunk_nonce(&self.nonce_prefix, counter, last));
        let tag = self
            .aead
            .encrypt_inout_detached(&nonce, aad, buf.into())
            .expect("a chunk (at most 16 MiB) is far below the ChaCha20-Poly1305 message limit");
        tag.into()
    }

    /// Verifies and decrypts `buf` in place. On failure `buf` holds garbage.
    pub fn open(
        &self,
        counter: u32,
        last: bool,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthenticationFailed> {
        let nonce = Nonce::from(chunk_nonce(&self.nonce_prefix, counter, last));
        self.aead
            .decrypt_inout_detached(&nonce, aad, buf.into(), &Tag::from(*tag))
            .map_err(|_| AuthenticationFailed)
    }
}

impl fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChunkCipher(..)")
    }
}

/// The 12-byte chunk nonce: prefix (7) ‖ counter (u32 BE) ‖ last (0x00 or 0x01).
pub(crate) fn chunk_nonce(prefix: &[u8; NONCE_PREFIX_LEN], counter: u32, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..7].copy_from_slice(prefix);
    nonce[7..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// Path of the master key file inside `key_dir`.
pub fn master_key_path(key_dir: &Path) -> PathBuf {
    key_dir.join(MASTER_KEY_FILE)
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
