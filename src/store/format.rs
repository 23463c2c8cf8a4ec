//! The on-disk layout of a sealed recording file. This comment is the format
//! specification; the code below (with the ciphers in `crypto`) is its only
//! implementation.
//!
//! # Overview
//!
//! ```text
//! file   = header ‖ chunk* ‖ final-chunk
//! chunk  = ct_len (u32 BE) ‖ flag (u8) ‖ ciphertext (ct_len − 16 bytes) ‖ tag (16 bytes)
//! ```
//!
//! The video is split into chunks of at most `chunk_size` plaintext bytes, each
//! sealed with ChaCha20-Poly1305 (RFC 8439) under a per-recording key, in the STREAM
//! construction of `age` and Tink: the nonce carries the chunk's position and a
//! last-chunk flag, so chunks cannot be reordered, dropped, duplicated or cut off
//! without the reader noticing. Chunks are *variable* length: the writer seals a
//! partial chunk whenever it is asked to make data durable (about every 2 s), so a
//! power cut loses seconds, not a whole 64 KiB chunk of a low-bitrate camera.
//! Integers are big-endian. Text is UTF-8, length-prefixed, not NUL-terminated.
//!
//! # Header (format version 1)
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0      | 8    | magic, ASCII `PORCHREC` (`50 4f 52 43 48 52 45 43`) |
//! | 8      | 2    | format version, u16 = 1 |
//! | 10     | 4    | `header_len`, u32: total header length in bytes = 125 + n + m |
//! | 14     | 8    | recording id, u64 |
//! | 22     | 8    | start time, i64, microseconds since the Unix epoch (UTC) |
//! | 30     | 4    | `chunk_size`, u32: maximum plaintext bytes in one chunk, 1 ..= 16 MiB (default 65536) |
//! | 34     | 8    | key id of the master key that wrapped the data key (see `crypto`) |
//! | 42     | 7    | nonce prefix: 7 random bytes, fresh per recording |
//! | 49     | 72   | wrapped data key: XChaCha20-Poly1305 nonce (24) ‖ sealed data key (32) ‖ tag (16) |
//! | 121    | 2    | n = camera name length, u16, 1 ..= 1024 |
//! | 123    | n    | camera name, UTF-8 |
//! | 123+n  | 2    | m = trigger length, u16, 0 ..= 1024 |
//! | 125+n  | m    | trigger, UTF-8 (why the recording started: `motion`, `continuous`, …) |
//!
//! The *key slot* is the key id (bytes 34..42) and the wrapped data key (bytes
//! 49..121). The wrapped key is opened with the master key (wrap key derived by
//! HKDF, see `crypto`); its associated data binds it to the recording id and
//! camera, so it cannot be moved into another recording's file. The key slot sits
//! at a fixed offset so that deletion can overwrite it in place (crypto-shredding)
//! and master-key rotation (`rotate`) or a share copy can re-wrap the same data
//! key in place.
//!
//! **The rest of the header is authenticated by every chunk**: `header_hash` =
//! SHA-256 of the `header_len` header bytes *with the key slot set to zeros* is
//! part of each chunk's associated data. Any change to the header outside the key
//! slot (start time, trigger, chunk size, nonce prefix, …) makes every chunk,
//! including the final one, fail to authenticate. The key slot needs no such
//! binding: it is authenticated by its own AEAD tag, a changed key id is reported
//! as a key mismatch, and a wrapped key for another data key makes every chunk
//! fail. Changing the camera or recording id already fails at the key unwrap.
//!
//! # Header (format version 2: end-to-end mode)
//!
//! Written instead of version 1 while end-to-end mode is on: the data key is sealed
//! to each viewer's public key (see `e2e`) and not wrapped by the master key at all,
//! so the master key (and root on the machine) cannot open it.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0      | 30   | magic, version (u16 = 2), `header_len` (= 53 + 120k + n + m), recording id, start time: as in version 1 |
//! | 30     | 4    | `chunk_size`, as in version 1 |
//! | 34     | 2    | k = number of recipient slots, u16, 1 ..= 16 |
//! | 36     | 6    | header tag: HMAC-SHA256(auth key, the `header_len` header bytes with bytes 36..42 zeroed)[0..6] (see Keys) |
//! | 42     | 7    | nonce prefix, as in version 1 |
//! | 49     | 120k | recipient slots: viewer id (8) ‖ sealed box of data key ‖ binding (112), see `e2e` |
//! | 49+120k| …    | camera name and trigger, length-prefixed as in version 1 |
//!
//! The *key slot* of a version 2 file is the recipient slots (bytes 49 ..
//! 49+120k): `header_hash` zeroes them, and the header tag (bytes 36..42), as it
//! zeroes version 1's key slot; deletion overwrites the slots in place, and the slot
//! count is authenticated by every chunk. Each slot binds its data key to the
//! recording id and camera inside the sealed plaintext. Readers of version 1 files
//! are unchanged; a version 2 file opened with only the master key fails with
//! `StoreError::EndToEnd`, never "corrupt".
//!
//! **The header tag is what makes a version 2 file authentic.** A version 1 file
//! is authentic because only the master key can wrap its data key; a version 2
//! file's data key is sealed to the viewers' *public* keys, which anyone who can
//! read the data disk has, so without the tag whoever can write that disk (but not
//! the key directory, which may be on another disk) could make a file showing any
//! video. The tag is keyed by the master key and covers the whole header, recipient
//! slots included (they hold the data key: what a forger replaces), so a file is
//! accepted only if this installation wrote it. Every path that reads or adopts a
//! version 2 file checks it (see `e2e_tag`): opening it for playback or export,
//! start-up recovery and `check --repair` adopting it, `check --rebuild-index`.
//! Deletion zeroes the slots, so a deleted file's tag no longer matches: it is
//! shredded anyway. The tag is outside `header_hash` so it can be written in place
//! (tagging old files, master-key rotation) without re-encrypting a chunk; files
//! written before tags existed have zeros there, which is what `header_hash` hashes.
//!
//! 48 bits are enough because only the daemon, holding the master key, can check
//! a tag: there is no offline oracle. A forger gets one guess per file the daemon
//! opens, and a wrong guess is refused and reported, so 2^47 expected tries are out
//! of reach.
//!
//! An all-zero tag (a file written before tags existed) is accepted only until the
//! daemon's first start (or `check --repair`) has tagged every such file and written
//! the marker `e2e-tags-v1` in the key directory; from then on it is refused like a
//! wrong tag. The marker lives in the key directory because the attacker considered
//! here cannot write there.
//!
//! Header metadata (camera name, start time, trigger, recording id) is stored in
//! clear, authenticated but not encrypted, so that files describe themselves and
//! the index can be rebuilt from them; the video is what is encrypted.
//!
//! # Keys
//!
//! ```text
//! master key  = 32 random bytes (file master.key, outside the recordings)
//! key id      = SHA-256("porchlight key-id v1" ‖ 0x00 ‖ master key)[0..8]
//! wrap key    = HKDF-SHA256(salt = "porchlight-store-v1", ikm = master key, info = "data-key wrap")
//! wrapped key = XChaCha20-Poly1305(wrap key, nonce = 24 random bytes,
//!                 plaintext = data key (32 random bytes, fresh per recording),
//!                 aad = "porchlight data-key v1" ‖ 0x00 ‖ recording id (u64)
//!                       ‖ camera length (u64) ‖ camera)
//!               stored as nonce (24) ‖ ciphertext (32) ‖ tag (16)
//! payload key = HKDF-SHA256(salt = "porchlight-store-v1", ikm = data key, info = "chunk payload")
//! auth key    = HKDF-SHA256(salt = "porchlight-store-v1", ikm = master key, info = "e2e header auth")
//! header tag  = HMAC-SHA256(auth key, version 2 header with bytes 36..42 zeroed)[0..6]
//! ```
//!
//! (HKDF-SHA256 is RFC 5869 with a 32-byte output; labels are the ASCII bytes
//! shown, without quotes.)
//!
//! # Chunks
//!
//! Chunk `i` (counting from 0, the first chunk after the header) is:
//!
//! | size     | field |
//! |---------:|-------|
//! | 4        | `ct_len`, u32: ciphertext length including the tag = plaintext length + 16 |
//! | 1        | flag: `0x00` data chunk, `0x01` final chunk; any other value is invalid |
//! | ct_len   | ChaCha20-Poly1305 ciphertext ‖ 16-byte Poly1305 tag |
//!
//! - key: the recording's payload key (see Keys);
//! - nonce (12 bytes): nonce prefix (7) ‖ `i` as u32 BE (4) ‖ flag (1);
//! - associated data (37 bytes): `header_hash` (32) ‖ the chunk's own 5 prefix
//!   bytes (`ct_len` ‖ flag) exactly as stored.
//!
//! Rules: a data chunk carries 1 ..= `chunk_size` plaintext bytes; the final chunk
//! carries **none** (`ct_len` = 16) and is the last thing in the file. A file
//! without a final chunk was never finished (crash, power cut) and reads as
//! truncated until recovery closes it.
//!
//! Why the final chunk is always empty: recovery closes a torn file by sealing an
//! empty final chunk at the first counter it drops. Because every final chunk ever
//! sealed has the same (empty) plaintext and the same associated data, sealing one
//! again at a counter where a final chunk may already have been written produces
//! byte-identical output, so no (key, nonce) pair ever seals two different messages.
//! A data chunk, once sealed, is never rewritten, and chunk counters only grow.
//!
//! # Reading without decrypting
//!
//! The 5-byte prefixes form a chain a reader walks with one small read per chunk
//! to build a table of (file offset, plaintext offset, length); random access then
//! decrypts only the chunks a range touches. The walk stops at the first prefix
//! that is invalid or runs past the end of the file: that is a torn tail ([`Tail`]).
//! The flag and lengths in the table are not trusted until the chunk authenticates.
//!
//! Limits: at most 2^32 chunks per file (the counter); at 64 KiB chunks that is
//! 256 TiB, and at one partial chunk every 2 s it is 270 years.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::crypto::{KeyId, WrappedKey, E2E_TAG_LEN, NONCE_PREFIX_LEN, TAG_LEN};
use super::e2e::{RecipientSlot, MAX_RECIPIENTS, SLOT_LEN};
use super::error::StoreError;

/// The 8 magic bytes every recording starts with.
pub const MAGIC: [u8; 8] = *b"PORCHREC";
/// The format version of recordings whose data key the master key wraps.
pub const FORMAT_VERSION: u16 = 1;
/// The format version of end-to-end recordings (data key sealed to viewers).
pub const FORMAT_VERSION_E2E: u16 = 2;
/// Length of a version 2 header with no slots and empty texts.
const E2E_BASE_LEN: usize = 53;
/// Byte offset of the recipient slot count in a version 2 header.
const SLOT_COUNT_OFFSET: usize = 34;
/// Byte offset of the header tag in a version 2 header.
pub const E2E_TAG_OFFSET: usize = 36;
/// Byte offset of the first recipient slot in a version 2 header.
pub const SLOTS_OFFSET: u64 = 49;
/// Default maximum plaintext bytes per chunk.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Largest `chunk_size` accepted (bounds a reader's allocation).
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Longest camera name or trigger, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Byte offset of the master key id.
pub const KEY_ID_OFFSET: u64 = 34;
/// Byte offset of the wrapped data key.
pub const WRAPPED_KEY_OFFSET: u64 = 49;
/// Bytes before `header_len` is known (magic, version, header_len).
pub const HEADER_PREFIX_LEN: usize = 14;
/// Length of a header with empty texts (the camera name is at least 1 byte).
pub const MIN_HEADER_LEN: usize = 125;
/// Length of the longest valid header.
pub const MAX_HEADER_LEN: usize = MIN_HEADER_LEN + 2 * MAX_TEXT_LEN;
/// Bytes in a chunk prefix (`ct_len` ‖ flag).
pub const CHUNK_PREFIX_LEN: usize = 5;
/// On-disk size of the (always empty) final chunk.
pub const FINAL_CHUNK_LEN: usize = CHUNK_PREFIX_LEN + TAG_LEN;

const FLAG_DATA: u8 = 0x00;
const FLAG_FINAL: u8 = 0x01;

/// What the caller decides about a new recording (everything else in the header
/// is generated by the writer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderFields {
    /// The index's id for this recording.
    pub recording_id: u64,
    /// The camera's name (1 ..= 1024 bytes of UTF-8).
    pub camera: String,
    /// Wall-clock time of the first frame, microseconds since the Unix epoch.
    pub start_unix_micros: i64,
    /// Why the recording started (0 ..= 1024 bytes of UTF-8).
    pub trigger: String,
    /// Maximum plaintext bytes per chunk; [`DEFAULT_CHUNK_SIZE`] unless changed.
    pub chunk_size: u32,
}

impl HeaderFields {
    /// Fields with the default chunk size.
    pub fn new(
        recording_id: u64,
        camera: impl Into<String>,
        start_unix_micros: i64,
        trigger: impl Into<String>,
    ) -> HeaderFields {
        HeaderFields {
            recording_id,
            camera: camera.into(),
            start_unix_micros,
            trigger: trigger.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Checks the limits of the format.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |field, reason: String| Err(StoreError::InvalidArgument { field, reason });
        if self.camera.is_empty() || self.camera.len() > MAX_TEXT_LEN {
            return bad(
                "camera",
                format!("{} bytes, allowed 1 ..= {MAX_TEXT_LEN}", self.camera.len()),
            );
        }
        if self.trigger.len() > MAX_TEXT_LEN {
            return bad(
                "trigger",
                format!("{} bytes, allowed 0 ..= {MAX_TEXT_LEN}", self.trigger.len()),
            );
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return bad(
                "chunk size",
                format!("{}, allowed 1 ..= {MAX_CHUNK_SIZE}", self.chunk_size),
            );
        }
        Ok(())
    }
}

/// How a recording's data key is kept in its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySlot {
    /// Version 1: wrapped by the master key with this id.
    Master { key_id: KeyId, wrapped: WrappedKey },
    /// Version 2: sealed to each of these viewers (end-to-end mode).
    Recipients(Vec<RecipientSlot>),
}

impl KeySlot {
    /// True once deletion has overwritten the key slot: nothing can open the file.
    pub fn is_shredded(&self) -> bool {
        match self {
            KeySlot::Master { wrapped, .. } => wrapped.as_bytes().iter().all(|&b| b == 0),
            KeySlot::Recipients(slots) => slots.iter().all(RecipientSlot::is_zeroed),
        }
    }

    /// The key slot as the index keeps it (hex): the wrapped key, or the slots.
    pub fn to_hex(&self) -> String {
        match self {
            KeySlot::Master { wrapped, .. } => hex::encode(wrapped.as_bytes()),
            KeySlot::Recipients(slots) => {
                hex::encode(slots.iter().flat_map(|s| s.to_bytes()).collect::<Vec<u8>>())
            }
        }
    }
}

/// A parsed header: the caller's fields plus what the writer generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingHeader {
    pub fields: HeaderFields,
    pub key: KeySlot,
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// Total header length; the first chunk starts here.
    pub header_len: u32,
}

/// Encodes a version 2 (end-to-end) header. `fields` must have passed
/// [`HeaderFields::validate`]; `slots` holds 1 ..= 16 recipients.
pub fn encode_header_e2e(
    fields: &HeaderFields,
    nonce_prefix: &[u8; NONCE_PREFIX_LEN],
    slots: &[RecipientSlot],
) -> Vec<u8> {
    assert!(
        (1..=MAX_RECIPIENTS).contains(&slots.len()),
        "seal_data_key checked the number of recipients"
    );
    let header_len =
        E2E_BASE_LEN + SLOT_LEN * slots.len() + fields.camera.len() + fields.trigger.len();
    let mut out = Vec::with_capacity(header_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION_E2E.to_be_bytes());
    out.extend_from_slice(&(header_len as u32).to_be_bytes());
    out.extend_from_slice(&fields.recording_id.to_be_bytes());
    out.extend_from_slice(&fields.start_unix_micros.to_be_bytes());
    out.extend_from_slice(&fields.chunk_size.to_be_bytes());
    out.extend_from_slice(&(slots.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0u8; 6]);
    out.extend_from_slice(nonce_prefix);
    for slot in slots {
        out.extend_from_slice(&slot.to_bytes());
    }
    push_texts(&mut out, fields);
    debug_assert_eq!(out.len(), header_len);
    out
}

fn push_texts(out: &mut Vec<u8>, fields: &HeaderFields) {
    for text in [&fields.camera, &fields.trigger] {
        let len = u16::try_from(text.len()).expect("validated: text is at most 1024 bytes");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }
}

/// Where a header's key slot lies, from its first 36 bytes (magic, version and,
/// for version 2, the slot count): what `header_hash` ignores and deletion zeroes.
/// `None` if the bytes are not a header this build knows.
pub fn key_slot_range(prefix: &[u8]) -> Option<std::ops::Range<usize>> {
    if prefix.len() < SLOT_COUNT_OFFSET + 2 || prefix[..8] != MAGIC {
        return None;
    }
    match u16::from_be_bytes([prefix[8], prefix[9]]) {
        FORMAT_VERSION => {
            Some(WRAPPED_KEY_OFFSET as usize..WRAPPED_KEY_OFFSET as usize + WrappedKey::LEN)
        }
        FORMAT_VERSION_E2E => {
            let k = u16::from_be_bytes([prefix[34], prefix[35]]) as usize;
            (1..=MAX_RECIPIENTS)
                .contains(&k)
                .then(|| SLOTS_OFFSET as usize..SLOTS_OFFSET as usize + k * SLOT_LEN)
        }
        _ => None,
    }
}

/// Encodes a header. `fields` must have passed [`HeaderFields::validate`].
pub fn encode_header(
    fields: &HeaderFields,
    key_id: KeyId,
    nonce_prefix: &[u8; NONCE_PREFIX_LEN],
    wrapped_key: &WrappedKey,
) -> Vec<u8> {
    let header_len = MIN_HEADER_LEN + fields.camera.len() + fields.trigger.len();
    let mut out = Vec::with_capacity(header_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&(header_len as u32).to_be_bytes());
    out.extend_from_slice(&fields.recording_id.to_be_bytes());
    out.extend_from_slice(&fields.start_unix_micros.to_be_bytes());
    out.extend_from_slice(&fields.chunk_size.to_be_bytes());
    out.extend_from_slice(&key_id.to_bytes());
    out.extend_from_slice(nonce_prefix);
    out.extend_from_slice(wrapped_key.as_bytes());
    push_texts(&mut out, fields);
    debug_assert_eq!(out.len(), header_len);
    out
}

/// SHA-256 of a complete header (as encoded or parsed here) with the key slot
/// (version 1: key id and wrapped key; version 2: the recipient slots and the
/// header tag) zeroed: bound into every chunk's associated data.
pub(crate) fn header_hash(header: &[u8]) -> [u8; 32] {
    if header[8..10] == FORMAT_VERSION_E2E.to_be_bytes() {
        let slots = key_slot_range(header).expect("a parsed version 2 header has 1 ..= 16 slots");
        return Sha256::new()
            .chain_update(&header[..E2E_TAG_OFFSET])
            .chain_update([0u8; E2E_TAG_LEN])
            .chain_update(&header[E2E_TAG_OFFSET + E2E_TAG_LEN..slots.start])
            .chain_update(vec![0u8; slots.len()])
            .chain_update(&header[slots.end..])
            .finalize()
            .into();
    }
    let key_id = KEY_ID_OFFSET as usize..KEY_ID_OFFSET as usize + KeyId::LEN;
    let wrapped = WRAPPED_KEY_OFFSET as usize..WRAPPED_KEY_OFFSET as usize + WrappedKey::LEN;
    Sha256::new()
        .chain_update(&header[..key_id.start])
        .chain_update([0u8; KeyId::LEN])
        .chain_update(&header[key_id.end..wrapped.start])
        .chain_update([0u8; WrappedKey::LEN])
        .chain_update(&header[wrapped.end..])
        .finalize()
        .into()
}

/// What an end-to-end header's tag is computed over: the whole header with the
/// tag's own bytes zeroed (recipient slots included). `header` is a version 2
/// header of at least 42 bytes.
pub fn e2e_tag_message(header: &[u8]) -> Vec<u8> {
    let mut message = header.to_vec();
    message[E2E_TAG_OFFSET..E2E_TAG_OFFSET + E2E_TAG_LEN].fill(0);
    message
}

/// The tag stored in a version 2 header.
pub fn stored_e2e_tag(header: &[u8]) -> [u8; E2E_TAG_LEN] {
    header[E2E_TAG_OFFSET..E2E_TAG_OFFSET + E2E_TAG_LEN]
        .try_into()
        .expect("6-byte slice")
}

/// Checks magic and version in the first 14 bytes and returns `header_len`.
pub fn parse_header_prefix(path: &Path, prefix: &[u8]) -> Result<usize, StoreError> {
    if prefix.len() < MAGIC.len() || prefix[..8] != MAGIC {
        return Err(StoreError::NotARecording { path: path.into() });
    }
    let corrupt = |offset, reason: String| StoreError::Corrupt {
        path: path.into(),
        offset,
        reason,
    };
    if prefix.len() < HEADER_PREFIX_LEN {
        return Err(corrupt(
            0,
            format!("file ends inside the header ({} bytes)", prefix.len()),
        ));
    }
    let version = u16::from_be_bytes([prefix[8], prefix[9]]);
    let allowed = match version {
        FORMAT_VERSION => MIN_HEADER_LEN + 1..=MAX_HEADER_LEN,
        FORMAT_VERSION_E2E => {
            E2E_BASE_LEN + SLOT_LEN + 1
                ..=E2E_BASE_LEN + SLOT_LEN * MAX_RECIPIENTS + 2 * MAX_TEXT_LEN
        }
        _ => {
            return Err(StoreError::UnsupportedVersion {
                path: path.into(),
                found: version,
                supported: FORMAT_VERSION_E2E,
            })
        }
    };
    let header_len = u32::from_be_bytes([prefix[10], prefix[11], prefix[12], prefix[13]]) as usize;
    if !allowed.contains(&header_len) {
        return Err(corrupt(
            10,
            format!("header length {header_len} is out of range"),
        ));
    }
    Ok(header_len)
}

/// Parses a complete header (`header_len` bytes, as returned by
/// [`parse_header_prefix`]).
pub fn parse_header(path: &Path, bytes: &[u8]) -> Result<RecordingHeader, StoreError> {
    let header_len = parse_header_prefix(path, bytes)?;
    let corrupt = |offset: usize, reason: String| StoreError::Corrupt {
        path: path.into(),
        offset: offset as u64,
        reason,
    };
    if bytes.len() != header_len {
        return Err(corrupt(
            10,
            format!(
                "header is {} bytes, its length field says {header_len}",
                bytes.len()
            ),
        ));
    }
    let arr = |at: usize| -> [u8; 8] { bytes[at..at + 8].try_into().expect("8-byte slice") };
    let recording_id = u64::from_be_bytes(arr(14));
    let start_unix_micros = i64::from_be_bytes(arr(22));
    let chunk_size = u32::from_be_bytes(bytes[30..34].try_into().expect("4-byte slice"));
    let nonce_prefix: [u8; NONCE_PREFIX_LEN] = bytes[42..49].try_into().expect("7-byte slice");
    let (key, mut at) = if bytes[8..10] == FORMAT_VERSION_E2E.to_be_bytes() {
        let range = key_slot_range(bytes)
            .ok_or_else(|| corrupt(SLOT_COUNT_OFFSET, "recipient count is not 1 ..= 16".into()))?;
        // The texts' two length fields must still fit after the slots.
        if range.end + 4 > header_len {
            return Err(corrupt(
                SLOT_COUNT_OFFSET,
                "recipient slots run past the header".into(),
            ));
        }
        let slots = bytes[range.clone()]
            .chunks_exact(SLOT_LEN)
            .map(|c| RecipientSlot::from_bytes(c.try_into().expect("SLOT_LEN chunk")))
            .collect();
        (KeySlot::Recipients(slots), range.end)
    } else {
        let wrapped: [u8; WrappedKey::LEN] = bytes[49..121].try_into().expect("72-byte slice");
        let key = KeySlot::Master {
            key_id: KeyId::from_bytes(arr(34)),
            wrapped: WrappedKey::from_array(wrapped),
        };
        (key, 121)
    };

    let mut texts = Vec::with_capacity(2);
    for name in ["camera name", "trigger"] {
        let len = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
        let start = at + 2;
        // The trigger's length field must still fit after the camera name.
        let room = header_len - start - if texts.is_empty() { 2 } else { 0 };
        if len > room {
            return Err(corrupt(
                at,
                format!("{name} length {len} runs past the header"),
            ));
        }
        let text = std::str::from_utf8(&bytes[start..start + len])
            .map_err(|_| corrupt(start, format!("{name} is not UTF-8")))?;
        texts.push(text.to_owned());
        at = start + len;
    }
    if at != header_len {
        return Err(corrupt(
            at,
            format!(
                "{} unexplained bytes at the end of the header",
                header_len - at
            ),
        ));
    }
    let trigger = texts.pop().expect("two texts parsed");
    let camera = texts.pop().expect("two texts parsed");
    let fields = HeaderFields {
        recording_id,
        camera,
        start_unix_micros,
        trigger,
        chunk_size,
    };
    fields.validate().map_err(|e| corrupt(14, e.to_string()))?;
    Ok(RecordingHeader {
        fields,
        key,
        nonce_prefix,
        header_len: header_len as u32,
    })
}

/// Reads and parses the header at the start of `file`; returns it with its raw bytes.
pub fn read_header(file: &File, path: &Path) -> Result<(RecordingHeader, Vec<u8>), StoreError> {
    let mut prefix = [0u8; HEADER_PREFIX_LEN];
    let got = read_up_to(file, path, &mut prefix, 0)?;
    let header_len = parse_header_prefix(path, &prefix[..got])?;
    let mut raw = vec![0u8; header_len];
    let got = read_up_to(file, path, &mut raw, 0)?;
    if got < header_len {
        return Err(StoreError::Corrupt {
            path: path.into(),
            offset: got as u64,
            reason: format!("file ends inside the {header_len}-byte header"),
        });
    }
    let header = parse_header(path, &raw)?;
    Ok((header, raw))
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns the count.
pub(crate) fn read_up_to(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<usize, StoreError> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::io("read", path, e)),
        }
    }
    Ok(done)
}

/// The 5 bytes in front of a chunk.
pub fn encode_chunk_prefix(ct_len: u32, last: bool) -> [u8; CHUNK_PREFIX_LEN] {
    let mut p = [0u8; CHUNK_PREFIX_LEN];
    p[..4].copy_from_slice(&ct_len.to_be_bytes());
    p[4] = if last { FLAG_FINAL } else { FLAG_DATA };
    p
}

/// A chunk's associated data: `header_hash` ‖ its 5 prefix bytes.
pub fn chunk_aad(
    header_hash: &[u8; 32],
    prefix: &[u8; CHUNK_PREFIX_LEN],
) -> [u8; 32 + CHUNK_PREFIX_LEN] {
    let mut aad = [0u8; 32 + CHUNK_PREFIX_LEN];
    aad[..32].copy_from_slice(header_hash);
    aad[32..].copy_from_slice(prefix);
    aad
}

/// One chunk found by the prefix walk (not yet authenticated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkEntry {
    /// Position in the stream; also the nonce counter.
    pub index: u32,
    /// File offset of the chunk's 5-byte prefix.
    pub file_offset: u64,
    /// Offset of the chunk's first plaintext byte in the recording.
    pub plaintext_offset: u64,
    /// Ciphertext length including the tag, as stored.
    pub ciphertext_len: u32,
    /// The flag byte says "final chunk".
    pub last: bool,
    /// False if the file ends before the chunk does (a torn write).
    pub complete: bool,
}

impl ChunkEntry {
    /// Plaintext bytes in this chunk.
    pub fn plaintext_len(&self) -> u32 {
        self.ciphertext_len.saturating_sub(TAG_LEN as u32)
    }

    /// File offset just past this chunk.
    pub fn end_offset(&self) -> u64 {
        self.file_offset + CHUNK_PREFIX_LEN as u64 + u64::from(self.ciphertext_len)
    }

    /// The prefix bytes as stored (for the associated data).
    pub fn prefix(&self) -> [u8; CHUNK_PREFIX_LEN] {
        encode_chunk_prefix(self.ciphertext_len, self.last)
    }
}

/// What follows the last complete chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: the file ends exactly after a chunk (or the header).
    Clean,
    /// `len` bytes from `offset` that do not form a complete valid chunk: a
    /// prefix running past the end of the file, a short or invalid prefix (e.g.
    /// zeros left by a power cut).
    Torn {
        offset: u64,
        len: u64,
        reason: &'static str,
    },
    /// `len` bytes after the final chunk, which must be the end of the file.
    AfterFinal { offset: u64, len: u64 },
}

/// The result of walking the chunk prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkTable {
    /// Chunks in order; only the last entry may have `complete == false`.
    pub entries: Vec<ChunkEntry>,
    pub tail: Tail,
}

impl ChunkTable {
    /// The complete chunks.
    pub fn complete(&self) -> &[ChunkEntry] {
        match self.entries.last() {
            Some(e) if !e.complete => &self.entries[..self.entries.len() - 1],
            _ => &self.entries,
        }
    }

    /// Plaintext bytes in the complete chunks.
    pub fn plaintext_len(&self) -> u64 {
        self.complete()
            .last()
            .map_or(0, |e| e.plaintext_offset + u64::from(e.plaintext_len()))
    }

    /// The final chunk, if the walk found a complete one.
    pub fn final_chunk(&self) -> Option<&ChunkEntry> {
        self.complete().last().filter(|e| e.last)
    }
}

/// Where a prefix walk starts: just after the header, or after a known chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanStart {
    pub index: u64,
    pub file_offset: u64,
    pub plaintext_offset: u64,
}

/// Walks the chunk prefixes of `file` from `start` to the end of the file
/// (`file_len`) without decrypting anything.
pub fn scan_chunks(
    file: &File,
    path: &Path,
    chunk_size: u32,
    file_len: u64,
    start: ScanStart,
) -> Result<ChunkTable, StoreError> {
    let max_ct = u64::from(chunk_size) + TAG_LEN as u64;
    let mut entries = Vec::new();
    let ScanStart {
        mut index,
        file_offset: mut offset,
        plaintext_offset: mut plain,
    } = start;
    let torn = |offset: u64, reason| Tail::Torn {
        offset,
        len: file_len.saturating_sub(offset),
        reason,
    };
    let tail = loop {
        if offset >= file_len {
            break Tail::Clean;
        }
        if file_len - offset < CHUNK_PREFIX_LEN as u64 {
            break torn(offset, "file ends inside a chunk prefix");
        }
        let mut prefix = [0u8; CHUNK_PREFIX_LEN];
        if read_up_to(file, path, &mut prefix, offset)? < CHUNK_PREFIX_LEN {
            break torn(offset, "file ends inside a chunk prefix");
        }
        let ct_len = u64::from(u32::from_be_bytes([
            prefix[0], prefix[1], prefix[2], prefix[3],
        ]));
        let last = match prefix[4] {
            FLAG_DATA => false,
            FLAG_FINAL => true,
            _ => break torn(offset, "invalid chunk flag"),
        };
        let valid_len = if last {
            ct_len == TAG_LEN as u64
        } else {
            ct_len > TAG_LEN as u64 && ct_len <= max_ct
        };
        if !valid_len {
            break torn(offset, "invalid chunk length");
        }
        let Ok(index32) = u32::try_from(index) else {
            break torn(offset, "chunk counter past 2^32");
        };
        let entry = ChunkEntry {
            index: index32,
            file_offset: offset,
            plaintext_offset: plain,
            ciphertext_len: ct_len as u32,
            last,
            complete: offset + CHUNK_PREFIX_LEN as u64 + ct_len <= file_len,
        };
        entries.push(entry);
        if !entry.complete {
            break torn(offset, "file ends inside a chunk");
        }
        offset = entry.end_offset();
        if last {
            break if offset < file_len {
                Tail::AfterFinal {
                    offset,
                    len: file_len - offset,
                }
            } else {
                Tail::Clean
            };
        }
        plain += u64::from(entry.plaintext_len());
        index += 1;
    };
    Ok(ChunkTable { entries, tail })
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
