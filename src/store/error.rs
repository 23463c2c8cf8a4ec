//! The store module's one error type.
//!
//! Every variant carries the context needed to find the offending file from a
//! log line (path, recording id, chunk number, byte offset) and never any key
//! material: keys only ever appear here as their [`KeyId`], which is safe to log.
//!
//! Integrity failures (`ChunkAuthentication`, `KeyUnwrap`, `KeyMismatch`,
//! `Truncated`, `Corrupt`, `NotARecording`, `NotARegularFile`, `WrongRecording`,
//! `NotAuthentic`) mean the bytes on disk cannot be
//! trusted as they are; `Io` is the operating system refusing; `WriterPoisoned`
//! means an earlier write or fsync failed and the writer will not guess what
//! reached the disk (the PostgreSQL "fsyncgate" lesson: a failed fsync is
//! reported, never retried).

use std::io;
use std::path::{Path, PathBuf};

use super::crypto::KeyId;
use super::e2e::ViewerId;

/// Errors of the recording store (container format, crypto, writer, reader, recovery).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed. `action` says what was being done ("fsync", "create", …).
    #[error("{action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Something other than a regular file (a FIFO, a device node, a symbolic link)
    /// where a recording, thumbnail, share copy or viewer key file should be: it is
    /// never read nor written (see `regular.rs`), and left for a person to look at.
    #[error(
        "{} is {kind}, not a regular file: it was not opened (nothing Porchlight writes \
         is one; remove it or put the real file back)",
        .path.display()
    )]
    NotARegularFile { path: PathBuf, kind: &'static str },

    /// The file does not start with the recording magic bytes.
    #[error("{} is not a Porchlight recording (bad magic bytes)", .path.display())]
    NotARecording { path: PathBuf },

    /// The file was written by a format version this build cannot read.
    #[error(
        "{} uses recording format version {found}; this build reads version {supported}",
        .path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
    },

    /// A header or chunk-prefix field is malformed (not a cryptographic failure).
    #[error("{} is corrupt at byte {offset}: {reason}", .path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// The recording was sealed under a different master key than the one loaded.
    #[error(
        "recording {recording_id:016x} ({}) was sealed with master key id {file_key_id}, \
         but the loaded master key is {loaded_key_id}",
        .path.display()
    )]
    KeyMismatch {
        path: PathBuf,
        recording_id: u64,
        file_key_id: KeyId,
        loaded_key_id: KeyId,
    },

    /// The wrapped data key did not authenticate: wrong master key, or the wrapped
    /// key (or the recording id / camera it is bound to) was altered, or it belongs
    /// to another recording.
    #[error(
        "cannot unwrap the data key of recording {recording_id:016x} (camera {camera:?}{}): \
         wrong master key, or the wrapped key or header was altered, or the key \
         belongs to another recording",
        fmt_opt_path(.path)
    )]
    KeyUnwrap {
        recording_id: u64,
        camera: String,
        path: Option<PathBuf>,
    },

    /// A chunk failed AEAD authentication: it, its length prefix or the file header
    /// was altered, chunks were reordered, or the data is damaged.
    #[error(
        "recording {recording_id:016x} ({}): chunk {chunk} failed authentication \
         (altered, reordered or damaged chunk, or altered header)",
        .path.display()
    )]
    ChunkAuthentication {
        path: PathBuf,
        recording_id: u64,
        chunk: u32,
    },

    /// The file has no final chunk (or has a torn tail): the writer never finished it.
    #[error(
        "recording {recording_id:016x} ({}) is truncated: {detail}; it was never finished \
         (crash or power cut?). Run recovery, or explicitly accept torn files",
        .path.display()
    )]
    Truncated {
        path: PathBuf,
        recording_id: u64,
        detail: String,
    },

    /// The file under a recording's name holds another recording (a whole file was
    /// copied or moved over it): it authenticates by itself, but it is not the one
    /// asked for.
    #[error(
        "{} should hold recording {expected_id:016x} of camera {expected_camera:?}, but \
         holds recording {found_id:016x} of camera {found_camera:?}",
        .path.display()
    )]
    WrongRecording {
        path: PathBuf,
        expected_id: u64,
        expected_camera: String,
        found_id: u64,
        found_camera: String,
    },

    /// Recovery found damage it will not repair by itself, because repairing would
    /// destroy data that might still be readable.
    #[error("recording {recording_id:016x} ({}): recovery refused: {reason}", .path.display())]
    RecoveryRefused {
        path: PathBuf,
        recording_id: u64,
        reason: String,
    },

    /// An earlier write or fsync of this writer failed; it refuses further use.
    #[error(
        "recording {recording_id:016x} ({}): writer refused after an earlier write or fsync failure",
        .path.display()
    )]
    WriterPoisoned { path: PathBuf, recording_id: u64 },

    /// The recording reached the 2^32 chunk limit of the nonce counter.
    #[error("recording {recording_id:016x} ({}): chunk counter exhausted", .path.display())]
    ChunkLimit { path: PathBuf, recording_id: u64 },

    /// A value given by the caller is out of range (camera name too long, …).
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    /// The master key file is missing.
    #[error(
        "master key file {} does not exist (it is created on first start; \
         recordings cannot be read without the original key)",
        .path.display()
    )]
    MasterKeyMissing { path: PathBuf },

    /// The master key file exists but cannot be used (wrong size, not a file, …).
    #[error("master key file {} is unusable: {reason}", .path.display())]
    MasterKeyInvalid { path: PathBuf, reason: String },

    /// The master key file can be read or written by other users, or is not
    /// 0600/0400.
    #[error(
        "master key file {} has mode {mode:03o}, not 600 or 400 (readable or writable by \
         other users, or executable); refusing to use it (run: chmod 600 {})",
        .path.display(), .path.display()
    )]
    MasterKeyPermissions { path: PathBuf, mode: u32 },

    /// The master key file or its directory could be replaced or read by someone
    /// else (a symlink, a writable directory, another owner). `fix` is the command
    /// that makes it safe.
    #[error("{}: {problem}; refusing to use it (run: {fix})", .path.display())]
    KeyPathUnsafe {
        path: PathBuf,
        problem: String,
        fix: String,
    },

    /// The end-to-end tags marker could not be written in the key directory (read-only
    /// file system, a directory the daemon's user may not write). Until it exists an
    /// untagged end-to-end file is accepted, and every start would tag whatever was
    /// planted since, so nothing starts without it (see `e2e_tag`). The files already
    /// tagged stay tagged; nothing is lost.
    #[error(
        "cannot write the end-to-end tags marker {} ({source}). This version writes it \
         once, after tagging the end-to-end recordings made before header tags, so that \
         from then on a recording without a tag (a forgery) is refused; it does not \
         start while such recordings would still be accepted. Nothing was lost. Make the \
         key directory {} writable by the daemon's user (user id {euid}) once, e.g. \
         `chown {euid} {}` or remount its file system read-write, and start again (it \
         may be read-only again afterwards); or, if only its owner or mode is in the \
         way, run `porchlight check --repair` as root",
        .marker.display(), .key_dir.display(), .key_dir.display()
    )]
    E2eMarkerNotWritable {
        marker: PathBuf,
        key_dir: PathBuf,
        euid: u32,
        #[source]
        source: io::Error,
    },

    /// A master-key rotation was started and not finished: its new key file is still
    /// next to the old one. Neither key alone reads every file, so nothing starts.
    #[error(
        "a master-key rotation was interrupted; run porchlight rotate-master-key again \
         (found {})",
        .path.display()
    )]
    RotationInterrupted { path: PathBuf },

    /// A sealed secret (TOTP seed, camera password) did not open: another master key,
    /// another purpose, or altered.
    #[error("a sealed {purpose} secret cannot be opened with the loaded master key")]
    SecretUnseal { purpose: String },

    /// A recording that holds no frame at all (a crash came before its first
    /// fragment was written): nothing in it was ever acknowledged, so it can go.
    #[error("{}: no video was written before the recording was interrupted", .path.display())]
    EmptyRecording { path: PathBuf },

    /// The plaintext inside a recording is not the fMP4 the recorder writes.
    #[error("{}: the video container inside is unreadable: {reason}", .path.display())]
    Container { path: PathBuf, reason: String },

    /// The MP4 writer refused the recorder's input (a camera sent unusable parameters).
    #[error("cannot write the video container: {0}")]
    Mp4(String),

    /// The recording's data key is sealed to end-to-end viewers, not wrapped by the
    /// master key: it opens only with a viewer's passphrase or recovery key.
    #[error(
        "recording {recording_id:016x} ({}) is end-to-end encrypted: it opens only with a \
         viewer's passphrase or recovery key, not with the master key",
        .path.display()
    )]
    EndToEnd { path: PathBuf, recording_id: u64 },

    /// An end-to-end file's header tag does not match the master key: someone who
    /// could write the data disk (but not the key directory) made or altered it.
    #[error(
        "recording {recording_id:016x} ({}) was not written by this Porchlight: its \
         end-to-end header tag does not match the master key",
        .path.display()
    )]
    NotAuthentic { path: PathBuf, recording_id: u64 },

    /// The unlocked viewer is not among a recording's recipients (it was made
    /// before the viewer was added, or after the viewer was removed).
    #[error("recording {recording_id:016x} is not sealed to viewer key {viewer}")]
    NotARecipient { recording_id: u64, viewer: ViewerId },

    /// A viewer key did not unlock: wrong passphrase or recovery key. Deliberately
    /// says nothing more.
    #[error("wrong passphrase or recovery key")]
    ViewerUnlock,

    /// A stored viewer key is malformed (not a wrong passphrase).
    #[error("the stored end-to-end viewer key is unusable: {reason}")]
    ViewerKeyInvalid { reason: String },

    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed: {0}")]
    Randomness(getrandom::Error),
}

impl StoreError {
    /// Shorthand for [`StoreError::Io`].
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True for the errors that mean "these bytes are not what was written":
    /// a failed authentication, a truncated or corrupt file. Useful to map to an
    /// integrity alarm rather than to a transient I/O failure.
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            StoreError::ChunkAuthentication { .. }
                | StoreError::KeyUnwrap { .. }
                | StoreError::Truncated { .. }
                | StoreError::Corrupt { .. }
                | StoreError::NotARecording { .. }
                | StoreError::NotARegularFile { .. }
                | StoreError::WrongRecording { .. }
                | StoreError::NotAuthentic { .. }
        )
    }
}

fn fmt_opt_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(", file {}", p.display()),
        None => String::new(),
    }
}
