//! [`SealedWriter`]: writes one recording file in the format of `format`.
//!
//! Durability contract (moonfire-nvr's order):
//! 1. [`SealedWriter::create`] creates the file with `O_EXCL`, writes the header,
//!    fsyncs the file and its directory, and only then returns — the caller writes
//!    the index entry after that, so the index never names a file that may vanish.
//! 2. [`SealedWriter::write_all`] buffers plaintext and seals each full chunk
//!    with one `write` call; nothing is fsynced.
//! 3. [`SealedWriter::sync`] seals whatever is buffered as a (partial) chunk and
//!    calls `fdatasync`. The recorder calls it about every 2 s (it owns the clock;
//!    this type never reads one), bounding what a power cut can lose.
//! 4. [`SealedWriter::finish`] seals the rest and the empty final chunk, fsyncs.
//!
//! A failed write or fsync is returned to the caller and poisons the writer: every
//! later call fails with [`StoreError::WriterPoisoned`]. Nothing is retried,
//! because after a failed fsync the kernel may have dropped the dirty pages and a
//! retry would "succeed" without the data (fsyncgate), and because a chunk counter,
//! once used, is never used again (no nonce reuse). The caller closes the file
//! (drop) and lets [`super::recover::recover`] cut it back to what verifies. After a
//! failed *fsync* that is not enough: the chunks written since the last good sync
//! still read back (and authenticate) from the page cache while the disk may never
//! get them, and recovery's own fsync through a new descriptor succeeds (Linux
//! reports a writeback error once, and only to descriptors open when it happened).
//! A failed *write* is no better: the disk that refused it may have failed the
//! writeback of the chunks before it as well, which no later fsync reports, and
//! part of the chunk may have been written. So the writer remembers the file length
//! at its last successful sync ([`SealedWriter::synced_len`]) and whether a write or
//! sync failed ([`SealedWriter::io_failed`]): the caller cuts the file back to that
//! length first (`Store::cut_back`).
//!
//! Memory: one buffer of `chunk_size + 21` bytes; plaintext is encrypted in place.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::crypto::{self, ChunkCipher, DataKey, MasterKey, WrappedKey, TAG_LEN};
use super::e2e::{self, RecipientSlot, ViewerPublicKey};
use super::error::StoreError;
use super::format::{self, HeaderFields, CHUNK_PREFIX_LEN};

/// Summary of a finished recording file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinishedFile {
    /// Plaintext bytes sealed.
    pub plaintext_len: u64,
    /// File size, header and final chunk included.
    pub file_len: u64,
    /// Chunks written, the empty final chunk included: up to 2^32 (the final chunk
    /// may take the last counter), one more than a u32 holds.
    pub chunks: u64,
}

/// Writes a sealed recording. See the module doc for the durability contract.
pub struct SealedWriter {
    file: File,
    path: PathBuf,
    recording_id: u64,
    chunk_size: usize,
    cipher: ChunkCipher,
    header_hash: [u8; 32],
    /// Prefix slot (5 bytes) ‖ buffered plaintext; becomes a whole chunk when sealed.
    buf: Vec<u8>,
    /// Counter of the next chunk; u64 so that running past 2^32 is detectable.
    next_chunk: u64,
    plaintext_len: u64,
    file_len: u64,
    /// `file_len` at the last successful sync (the header's, fsynced by `create`,
    /// before the first): what is known to be on the disk.
    synced_len: u64,
    /// A write or sync failed: the bytes after `synced_len` may be missing from the
    /// disk although the page cache still shows them (see the module doc).
    io_failed: bool,
    poisoned: bool,
    finished: bool,
    /// Test seam: which syncs fail, as after a disk's writeback error.
    #[cfg(test)]
    fail_syncs: Option<SyncFault>,
    /// Test seam: every chunk write fails (ENOSPC), as on a full or failing disk.
    #[cfg(test)]
    fail_writes: bool,
}

impl SealedWriter {
    /// Creates `path` (which must not exist), writes and fsyncs the header and the
    /// directory entry. Returns the writer and the recording's wrapped data key
    /// (also stored in the header) for the index.
    pub fn create(
        path: &Path,
        fields: &HeaderFields,
        master: &MasterKey,
    ) -> Result<(SealedWriter, WrappedKey), StoreError> {
        fields.validate()?;
        let data_key = DataKey::generate()?;
        let nonce_prefix = crypto::random_nonce_prefix()?;
        let wrapped = master.wrap_data_key(&data_key, fields.recording_id, &fields.camera)?;
        let header = format::encode_header(fields, master.id(), &nonce_prefix, &wrapped);
        let cipher = ChunkCipher::new(&data_key, nonce_prefix);
        drop(data_key);
        let writer = SealedWriter::create_with_header(path, fields, &header, cipher)?;
        Ok((writer, wrapped))
    }

    /// Like [`create`](Self::create) for end-to-end mode: the data key is sealed to
    /// each of `recipients` (a version 2 header) and never wrapped by the master key,
    /// so nothing this process keeps can open the file once the writer is dropped.
    /// Returns the recipient slots (also in the header) for the index.
    /// `master` only computes the header tag (see `e2e_tag`): it proves the file
    /// was written here, and opens nothing.
    pub fn create_sealed_to(
        path: &Path,
        fields: &HeaderFields,
        recipients: &[ViewerPublicKey],
        master: &MasterKey,
    ) -> Result<(SealedWriter, Vec<RecipientSlot>), StoreError> {
        fields.validate()?;
        let data_key = DataKey::generate()?;
        let nonce_prefix = crypto::random_nonce_prefix()?;
        let slots = e2e::seal_data_key(&data_key, recipients, fields.recording_id, &fields.camera)?;
        let mut header = format::encode_header_e2e(fields, &nonce_prefix, &slots);
        super::e2e_tag::tag_header(&mut header, master);
        let cipher = ChunkCipher::new(&data_key, nonce_prefix);
        drop(data_key);
        let writer = SealedWriter::create_with_header(path, fields, &header, cipher)?;
        Ok((writer, slots))
    }

    fn create_with_header(
        path: &Path,
        fields: &HeaderFields,
        header: &[u8],
        cipher: ChunkCipher,
    ) -> Result<SealedWriter, StoreError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::io("create recording", path, e))?;
        let written = file
            .write_all(header)
            .map_err(|e| StoreError::io("write header", path, e))
            .and_then(|()| {
                file.sync_all()
                    .map_err(|e| StoreError::io("fsync", path, e))
            })
            .and_then(|()| sync_parent_dir(path));
        if let Err(e) = written {
            // No index entry names this file yet; do not leave a half-header behind.
            drop(file);
            if let Err(rm) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %rm, "could not remove a failed recording file");
            }
            return Err(e);
        }

        let chunk_size = fields.chunk_size as usize;
        let mut buf = Vec::with_capacity(CHUNK_PREFIX_LEN + chunk_size + TAG_LEN);
        buf.resize(CHUNK_PREFIX_LEN, 0);
        let writer = SealedWriter {
            file,
            path: path.to_path_buf(),
            recording_id: fields.recording_id,
            chunk_size,
            cipher,
            header_hash: format::header_hash(header),
            buf,
            next_chunk: 0,
            plaintext_len: 0,
            file_len: header.len() as u64,
            synced_len: header.len() as u64,
            io_failed: false,
            poisoned: false,
            finished: false,
            #[cfg(test)]
            fail_syncs: None,
            #[cfg(test)]
            fail_writes: false,
        };
        Ok(writer)
    }

    /// Appends plaintext, sealing and writing every chunk that fills up.
    pub fn write_all(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        self.check_usable()?;
        while !data.is_empty() {
            let room = self.chunk_size - self.buffered();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            self.plaintext_len += now.len() as u64;
            data = rest;
            if self.buffered() == self.chunk_size {
                self.seal_buffered(false)?;
            }
        }
        Ok(())
    }

    /// Seals the buffered plaintext (if any) as a partial chunk and writes it, without
    /// waiting for the disk: from here a crash of the process loses none of it (the
    /// kernel has it), only a power cut before the next [`sync`](Self::sync) can.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.check_usable()?;
        if self.buffered() > 0 {
            self.seal_buffered(false)?;
        }
        Ok(())
    }

    /// Seals the buffered plaintext (if any) as a partial chunk and makes every
    /// chunk written so far durable (`fdatasync`).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.check_usable()?;
        if self.buffered() > 0 {
            self.seal_buffered(false)?;
        }
        self.sync_file(false)
    }

    /// Seals the remainder and the empty final chunk, and fsyncs the file.
    pub fn finish(mut self) -> Result<FinishedFile, StoreError> {
        self.check_usable()?;
        if self.buffered() > 0 {
            self.seal_buffered(false)?;
        }
        self.seal_buffered(true)?;
        self.sync_file(true)?;
        self.finished = true;
        Ok(FinishedFile {
            plaintext_len: self.plaintext_len,
            file_len: self.file_len,
            chunks: self.next_chunk,
        })
    }

    /// Plaintext bytes accepted so far (sealed or buffered).
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Plaintext bytes buffered and not yet sealed: what a crash would lose now.
    pub fn buffered(&self) -> usize {
        self.buf.len() - CHUNK_PREFIX_LEN
    }

    /// Bytes written to the file so far (not necessarily durable before `sync`).
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File length at the last successful sync: what a failed write or sync leaves
    /// known to be on the disk (the header's length before the first sync).
    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }

    /// Whether a write or sync failed: then nothing after
    /// [`synced_len`](Self::synced_len) may be trusted, however well it reads back
    /// (see the module doc).
    pub fn io_failed(&self) -> bool {
        self.io_failed
    }

    /// Makes the syncs `fault` names fail from now on, as a disk's writeback
    /// error would.
    #[cfg(test)]
    pub(crate) fn fail_syncs_for_tests(&mut self, fault: SyncFault) {
        self.fail_syncs = Some(fault);
    }

    /// Makes every chunk write fail from now on, as a full or failing disk would.
    #[cfg(test)]
    pub(crate) fn fail_writes_for_tests(&mut self) {
        self.fail_writes = true;
    }

    /// `fdatasync` (`fsync` if `all`), recording how far the file is durable.
    fn sync_file(&mut self, all: bool) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.fail_syncs == Some(SyncFault::Every) || (all && self.fail_syncs.is_some()) {
            self.io_failed = true;
            return self.poison_on_err("fsync", Err(std::io::Error::from_raw_os_error(5)));
        }
        let synced = if all {
            self.file.sync_all()
        } else {
            self.file.sync_data()
        };
        if synced.is_err() {
            self.io_failed = true;
        }
        self.poison_on_err("fsync", synced)?;
        self.synced_len = self.file_len;
        Ok(())
    }

    fn check_usable(&self) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::WriterPoisoned {
                path: self.path.clone(),
                recording_id: self.recording_id,
            });
        }
        Ok(())
    }

    fn poison_on_err(
        &mut self,
        action: &'static str,
        r: std::io::Result<()>,
    ) -> Result<(), StoreError> {
        r.map_err(|e| {
            self.poisoned = true;
            tracing::error!(path = %self.path.display(), recording_id = self.recording_id,
                error = %e, "{action} failed; the writer refuses further writes");
            StoreError::io(action, &self.path, e)
        })
    }

    /// Seals `buf` as chunk `next_chunk` and writes it with one call.
    fn seal_buffered(&mut self, last: bool) -> Result<(), StoreError> {
        // A data chunk may not take the last counter: the final chunk needs one.
        let counter = match u32::try_from(self.next_chunk) {
            Ok(c) if last || c < u32::MAX => c,
            _ => {
                self.poisoned = true;
                return Err(StoreError::ChunkLimit {
                    path: self.path.clone(),
                    recording_id: self.recording_id,
                });
            }
        };
        seal_chunk(
            &mut self.buf,
            &self.cipher,
            &self.header_hash,
            counter,
            last,
        );
        // The counter is spent whether or not the write succeeds.
        self.next_chunk += 1;
        #[cfg(test)]
        let written = if self.fail_writes {
            Err(std::io::Error::from_raw_os_error(28))
        } else {
            self.file.write_all(&self.buf)
        };
        #[cfg(not(test))]
        let written = self.file.write_all(&self.buf);
        if written.is_err() {
            self.io_failed = true;
        }
        let len = self.buf.len() as u64;
        self.buf.truncate(CHUNK_PREFIX_LEN);
        self.poison_on_err("write chunk", written)?;
        self.file_len += len;
        Ok(())
    }
}

impl std::fmt::Debug for SealedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedWriter")
            .field("path", &self.path)
            .field("recording_id", &self.recording_id)
            .field("chunks", &self.next_chunk)
            .field("plaintext_len", &self.plaintext_len)
            .field("buffered", &self.buffered())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Drop for SealedWriter {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(
                path = %self.path.display(),
                recording_id = self.recording_id,
                unsealed_bytes = self.buffered(),
                poisoned = self.poisoned,
                "recording closed without finish(); it stays unfinished until recovery closes it"
            );
        }
    }
}

/// Which syncs a test makes fail ([`SealedWriter::fail_syncs_for_tests`]).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncFault {
    /// Every sync.
    Every,
    /// Only the closing fsync of [`SealedWriter::finish`].
    Closing,
}

/// Turns `buf` = [5-byte slot ‖ plaintext] into a whole on-disk chunk
/// (prefix ‖ ciphertext ‖ tag), sealed as chunk `counter`.
pub(crate) fn seal_chunk(
    buf: &mut Vec<u8>,
    cipher: &ChunkCipher,
    header_hash: &[u8; 32],
    counter: u32,
    last: bool,
) {
    let pt_len = buf.len() - CHUNK_PREFIX_LEN;
    debug_assert!(!last || pt_len == 0, "the final chunk is always empty");
    let ct_len = u32::try_from(pt_len + TAG_LEN).expect("chunk size is at most 16 MiB");
    let prefix = format::encode_chunk_prefix(ct_len, last);
    buf[..CHUNK_PREFIX_LEN].copy_from_slice(&prefix);
    let aad = format::chunk_aad(header_hash, &prefix);
    let tag = cipher.seal(counter, last, &aad, &mut buf[CHUNK_PREFIX_LEN..]);
    buf.extend_from_slice(&tag);
}

/// fsyncs the directory holding `path`, making its creation or removal durable.
pub(crate) fn sync_parent_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

/// Helpers shared by the store's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Deterministic bytes that never repeat within a chunk (xorshift).
    pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    /// Writes a recording (id 1, camera "porch", trigger "motion") from `pieces`,
    /// calling `sync()` after each piece, then `finish()` if asked. Returns the
    /// plaintext.
    pub(crate) fn write_recording(
        path: &Path,
        master: &MasterKey,
        chunk_size: u32,
        pieces: &[&[u8]],
        finish: bool,
    ) -> Vec<u8> {
        let fields = HeaderFields {
            chunk_size,
            ..HeaderFields::new(1, "porch", 1_700_000_000_000_000, "motion")
        };
        let (mut w, _) = SealedWriter::create(path, &fields, master).expect("create");
        for piece in pieces {
            w.write_all(piece).expect("write");
            w.sync().expect("sync");
        }
        if finish {
            w.finish().expect("finish");
        }
        pieces.concat()
    }

    /// A viewer key with cheap Argon2 parameters (tests only), locked and unlocked.
    pub(crate) fn quick_viewer(passphrase: &str) -> (e2e::LockedViewerKey, e2e::ViewerSecret) {
        let quick = e2e::KdfParams {
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
        };
        let (locked, _) = e2e::LockedViewerKey::generate_with(passphrase, quick).expect("key");
        let secret = locked.unlock_with_passphrase(passphrase).expect("unlock");
        (locked, secret)
    }

    /// Writes a finished version 2 file as someone who can write the data disk but
    /// not the key directory could: a data key of their own sealed to `recipients`'
    /// public keys (which lie on the data disk), and `tag` as the header tag, which
    /// they cannot compute. With a zero tag it is also byte for byte what this
    /// writer made before header tags existed (a legacy file).
    pub(crate) fn forge_e2e(
        path: &Path,
        fields: &HeaderFields,
        recipients: &[ViewerPublicKey],
        video: &[u8],
        tag: [u8; crypto::E2E_TAG_LEN],
    ) {
        let data_key = DataKey::generate().expect("random");
        let nonce_prefix = crypto::random_nonce_prefix().expect("random");
        let slots = e2e::seal_data_key(&data_key, recipients, fields.recording_id, &fields.camera)
            .expect("seal");
        let mut header = format::encode_header_e2e(fields, &nonce_prefix, &slots);
        header[format::E2E_TAG_OFFSET..format::E2E_TAG_OFFSET + crypto::E2E_TAG_LEN]
            .copy_from_slice(&tag);
        let cipher = ChunkCipher::new(&data_key, nonce_prefix);
        let mut w =
            SealedWriter::create_with_header(path, fields, &header, cipher).expect("create");
        w.write_all(video).expect("write");
        w.finish().expect("finish");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fields(chunk_size: u32) -> HeaderFields {
        HeaderFields {
            chunk_size,
            ..HeaderFields::new(1, "porch", 0, "motion")
        }
    }

    #[test]
    fn store_types_can_move_to_blocking_threads() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<SealedWriter>();
        send::<crate::store::reader::SealedReader>();
        send::<crate::store::reader::PlaintextReader>();
        send_sync::<MasterKey>();
        send_sync::<StoreError>();
    }

    #[test]
    fn create_refuses_to_overwrite_an_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.plrec");
        std::fs::write(&path, b"precious").expect("write");
        let master = MasterKey::generate_for_tests();
        let err = SealedWriter::create(&path, &fields(64), &master).expect_err("O_EXCL");
        assert!(
            matches!(
                err,
                StoreError::Io {
                    action: "create recording",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"precious");
    }

    #[test]
    fn header_is_on_disk_when_create_returns_and_file_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.plrec");
        let master = MasterKey::generate_for_tests();
        let (w, wrapped) = SealedWriter::create(&path, &fields(64), &master).expect("create");
        let on_disk = std::fs::read(&path).expect("read");
        assert_eq!(on_disk.len() as u64, w.file_len());
        let header = format::parse_header(&path, &on_disk).expect("header");
        assert_eq!(
            header.key,
            format::KeySlot::Master {
                key_id: master.id(),
                wrapped
            }
        );
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        w.finish().expect("finish");
    }

    #[test]
    fn sync_seals_partial_chunks_and_finish_adds_an_empty_final_chunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.plrec");
        let master = MasterKey::generate_for_tests();
        let (mut w, _) = SealedWriter::create(&path, &fields(10), &master).expect("create");
        let header_len = w.file_len();
        w.write_all(&[1; 25]).expect("write"); // two full chunks, 5 buffered
        assert_eq!(w.buffered(), 5);
        w.sync().expect("sync"); // a 5-byte chunk
        assert_eq!(w.buffered(), 0);
        w.sync()
            .expect("sync with nothing buffered writes no chunk");
        w.write_all(&[2; 3]).expect("write");
        let done = w.finish().expect("finish");
        // 10 + 10 + 5 + 3 plaintext in 4 data chunks, plus the final chunk.
        assert_eq!(done.plaintext_len, 28);
        assert_eq!(done.chunks, 5);
        assert_eq!(done.file_len, header_len + 28 + 4 * 21 + 21);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), done.file_len);
    }

    #[test]
    fn failed_write_poisons_the_writer() {
        let Ok(full) = OpenOptions::new().write(true).open("/dev/full") else {
            eprintln!("no /dev/full here; skipping");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let master = MasterKey::generate_for_tests();
        let path = dir.path().join("r.plrec");
        let (mut w, _) = SealedWriter::create(&path, &fields(8), &master).expect("create");
        w.file = full; // every write now fails with ENOSPC
        let synced = w.synced_len();
        let err = w.write_all(&[0; 8]).expect_err("ENOSPC");
        assert_eq!((w.synced_len(), w.io_failed()), (synced, true));
        assert!(
            matches!(
                err,
                StoreError::Io {
                    action: "write chunk",
                    ..
                }
            ),
            "{err}"
        );
        for err in [
            w.write_all(&[0; 1]).expect_err("poisoned"),
            w.sync().expect_err("poisoned"),
        ] {
            assert!(
                matches!(
                    err,
                    StoreError::WriterPoisoned {
                        recording_id: 1,
                        ..
                    }
                ),
                "{err}"
            );
        }
        assert!(matches!(w.finish(), Err(StoreError::WriterPoisoned { .. })));
    }

    #[test]
    fn a_failed_sync_leaves_the_length_of_the_last_good_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = MasterKey::generate_for_tests();
        let path = dir.path().join("r.plrec");
        let (mut w, _) = SealedWriter::create(&path, &fields(8), &master).expect("create");
        assert_eq!(w.synced_len(), w.file_len(), "create fsynced the header");
        w.write_all(&[1; 20]).expect("write");
        w.sync().expect("sync");
        let good = w.file_len();
        assert_eq!((w.synced_len(), w.io_failed()), (good, false));
        w.write_all(&[2; 20]).expect("write");
        w.fail_syncs_for_tests(SyncFault::Every);
        assert!(w.sync().is_err());
        assert!(w.file_len() > good, "more was written");
        assert_eq!((w.synced_len(), w.io_failed()), (good, true));
        assert!(matches!(w.sync(), Err(StoreError::WriterPoisoned { .. })));
    }

    #[test]
    fn data_chunk_may_not_take_the_last_counter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = MasterKey::generate_for_tests();
        let path = dir.path().join("r.plrec");
        let (mut w, _) = SealedWriter::create(&path, &fields(8), &master).expect("create");
        w.next_chunk = u64::from(u32::MAX);
        let err = w.write_all(&[0; 8]).expect_err("limit");
        assert!(matches!(err, StoreError::ChunkLimit { .. }), "{err}");
        assert!(matches!(w.sync(), Err(StoreError::WriterPoisoned { .. })));
    }

    #[test]
    fn the_final_chunk_may_take_the_last_counter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = MasterKey::generate_for_tests();
        let path = dir.path().join("r.plrec");
        let (mut w, _) = SealedWriter::create(&path, &fields(8), &master).expect("create");
        w.next_chunk = u64::from(u32::MAX);
        let done = w.finish().expect("the final chunk takes counter 2^32 - 1");
        assert_eq!(done.chunks, 1 << 32);
    }
}
