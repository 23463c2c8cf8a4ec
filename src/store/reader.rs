//! [`SealedReader`]: random access to a sealed recording, decrypting only the
//! chunks a read touches; [`PlaintextReader`]: a `Read + Seek` adapter over it.
//!
//! `open` checks the header (magic, version, key id, wrapped key), walks the chunk
//! prefixes to build the chunk table without decrypting, and, if the file has a
//! final chunk, authenticates that (empty) chunk: this proves both that the file
//! was finished and that the header is intact, for the price of one 16-byte tag.
//! Every other chunk is authenticated when it is first read.
//!
//! Unfinished files (no final chunk: a crash, a power cut, or a recording still
//! being written) open fine and [`SealedReader::read_at`] serves the complete
//! chunks present; [`SealedReader::verify_complete`] and
//! [`SealedReader::into_reader`] with [`TornFiles::Refuse`] fail with
//! [`StoreError::Truncated`], so an export never silently ships a cut-off file.
//! [`SealedReader::refresh`] picks up chunks appended after `open` (live playback).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::crypto::{ChunkCipher, MasterKey, TAG_LEN};
use super::e2e::ViewerSecret;
use super::error::StoreError;
use super::format::{
    self, ChunkEntry, ChunkTable, KeySlot, RecordingHeader, ScanStart, Tail, CHUNK_PREFIX_LEN,
};

/// What [`SealedReader::into_reader`] does with a file that was never finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornFiles {
    /// Fail with [`StoreError::Truncated`] (the right default for exports).
    Refuse,
    /// Serve the complete chunks present (logged as a warning).
    Accept,
}

/// Random-access reader of one sealed recording.
pub struct SealedReader {
    file: File,
    path: PathBuf,
    header: RecordingHeader,
    header_hash: [u8; 32],
    cipher: ChunkCipher,
    table: ChunkTable,
    /// Position in `table.entries` of the chunk whose plaintext is in `cache`.
    cached: Option<usize>,
    cache: Vec<u8>,
}

impl SealedReader {
    /// Opens `path` with `master`; see the module doc for what is checked. An
    /// end-to-end (version 2) file fails with [`StoreError::EndToEnd`].
    pub fn open(path: &Path, master: &MasterKey) -> Result<SealedReader, StoreError> {
        SealedReader::open_with(path, master, None)
    }

    /// Opens `path` with `master` (version 1 files) or, for an end-to-end file, the
    /// unlocked `viewer`.
    pub fn open_with(
        path: &Path,
        master: &MasterKey,
        viewer: Option<&ViewerSecret>,
    ) -> Result<SealedReader, StoreError> {
        let mut reader = SealedReader::open_unverified(path, master, viewer)?;
        if let Some(pos) = reader
            .table
            .final_chunk()
            .map(|_| reader.table.complete().len() - 1)
        {
            reader.check_chunk(pos)?;
        }
        Ok(reader)
    }

    /// Like `open`, without authenticating the final chunk (for recovery, which
    /// decides itself what to verify).
    pub(crate) fn open_unverified(
        path: &Path,
        master: &MasterKey,
        viewer: Option<&ViewerSecret>,
    ) -> Result<SealedReader, StoreError> {
        let file = super::regular::open_regular_read(path, "open recording")?;
        let (header, raw) = format::read_header(&file, path)?;
        let fields = &header.fields;
        // An end-to-end file proves it was written here by its header tag (see
        // `e2e_tag`); a shredded one opens for nobody anyway.
        if matches!(header.key, KeySlot::Recipients(_)) && !header.key.is_shredded() {
            super::e2e_tag::check(path, &raw, fields.recording_id, master)?;
        }
        let data_key = match (&header.key, viewer) {
            (KeySlot::Master { key_id, .. }, _) if *key_id != master.id() => {
                return Err(StoreError::KeyMismatch {
                    path: path.into(),
                    recording_id: fields.recording_id,
                    file_key_id: *key_id,
                    loaded_key_id: master.id(),
                });
            }
            (KeySlot::Master { wrapped, .. }, _) => {
                master.unwrap_data_key(wrapped, fields.recording_id, &fields.camera)
            }
            (KeySlot::Recipients(_), None) => {
                return Err(StoreError::EndToEnd {
                    path: path.into(),
                    recording_id: fields.recording_id,
                })
            }
            (KeySlot::Recipients(slots), Some(viewer)) => {
                viewer.open_data_key(slots, fields.recording_id, &fields.camera)
            }
        }
        .map_err(|e| match e {
            StoreError::KeyUnwrap {
                recording_id,
                camera,
                ..
            } => StoreError::KeyUnwrap {
                recording_id,
                camera,
                path: Some(path.into()),
            },
            other => other,
        })?;
        let cipher = ChunkCipher::new(&data_key, header.nonce_prefix);
        let mut reader = SealedReader {
            file,
            path: path.into(),
            header_hash: format::header_hash(&raw),
            cipher,
            table: ChunkTable {
                entries: Vec::new(),
                tail: Tail::Clean,
            },
            cached: None,
            cache: Vec::new(),
            header,
        };
        reader.table = reader.scan_from(reader.first_chunk_start())?;
        Ok(reader)
    }

    /// The parsed header (fields, key id, wrapped key).
    pub fn header(&self) -> &RecordingHeader {
        &self.header
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The chunk table built at open (the last entry may be `complete: false`).
    pub fn chunks(&self) -> &[ChunkEntry] {
        &self.table.entries
    }

    /// What follows the last complete chunk.
    pub fn tail(&self) -> Tail {
        self.table.tail
    }

    /// Plaintext bytes in the complete chunks.
    pub fn plaintext_len(&self) -> u64 {
        self.table.plaintext_len()
    }

    /// True if the file ends with a final chunk (authenticated by `open`).
    pub fn is_finished(&self) -> bool {
        self.table.final_chunk().is_some()
    }

    /// Fails unless the file was finished and has nothing after its final chunk.
    pub fn verify_complete(&self) -> Result<(), StoreError> {
        match self.table.tail {
            Tail::AfterFinal { offset, len } => {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    offset,
                    reason: format!("{len} bytes after the final chunk"),
                })
            }
            _ if self.is_finished() => return Ok(()),
            _ => {}
        }
        let mut detail = format!(
            "no final chunk after {} complete chunks ({} bytes of video)",
            self.table.complete().len(),
            self.plaintext_len()
        );
        if let Tail::Torn {
            offset,
            len,
            reason,
        } = self.table.tail
        {
            detail += &format!(", then {len} bytes of torn tail at byte {offset} ({reason})");
        }
        Err(StoreError::Truncated {
            path: self.path.clone(),
            recording_id: self.header.fields.recording_id,
            detail,
        })
    }

    /// Authenticates every complete chunk (a full decrypt; for fsck-style checks).
    pub fn verify_all(&mut self) -> Result<(), StoreError> {
        for pos in 0..self.table.complete().len() {
            self.check_chunk(pos)?;
        }
        Ok(())
    }

    /// Reads plaintext at `offset` into `buf`, filling it unless the recording
    /// ends first; returns the number of bytes read (0 at or past the end).
    /// Decrypts only the chunks the range touches and keeps the last one cached.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let total = self.plaintext_len();
        let mut pos = offset;
        let mut done = 0;
        let mut i = self
            .table
            .complete()
            .partition_point(|e| e.plaintext_offset + u64::from(e.plaintext_len()) <= pos);
        while done < buf.len() && pos < total {
            self.load_chunk(i)?;
            let entry = self.table.entries[i];
            let within = (pos - entry.plaintext_offset) as usize;
            let avail = &self.cache[within..];
            let n = avail.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&avail[..n]);
            done += n;
            pos += n as u64;
            i += 1;
        }
        Ok(done)
    }

    /// Re-walks the file after the last complete chunk to pick up chunks written
    /// since `open` (a recording still in progress). No-op on a finished file.
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        if self.is_finished() {
            return Ok(());
        }
        let start = match self.table.complete().last() {
            Some(e) => ScanStart {
                index: u64::from(e.index) + 1,
                file_offset: e.end_offset(),
                plaintext_offset: e.plaintext_offset + u64::from(e.plaintext_len()),
            },
            None => self.first_chunk_start(),
        };
        let more = self.scan_from(start)?;
        let keep = self.table.complete().len();
        self.table.entries.truncate(keep);
        self.table.entries.extend_from_slice(&more.entries);
        self.table.tail = more.tail;
        if let Some(pos) = self
            .table
            .final_chunk()
            .map(|_| self.table.complete().len() - 1)
        {
            self.check_chunk(pos)?;
        }
        Ok(())
    }

    /// A sequential `Read + Seek` view. With [`TornFiles::Refuse`], fails with
    /// [`StoreError::Truncated`] if the file was never finished.
    pub fn into_reader(self, torn: TornFiles) -> Result<PlaintextReader, StoreError> {
        if let Err(e) = self.verify_complete() {
            match (torn, &e) {
                (TornFiles::Accept, StoreError::Truncated { .. }) => {
                    tracing::warn!(error = %e, "reading an unfinished recording as far as it goes");
                }
                _ => return Err(e),
            }
        }
        Ok(PlaintextReader {
            inner: self,
            pos: 0,
        })
    }

    /// Authenticates (and caches) the chunk at `pos` in the table.
    pub(crate) fn check_chunk(&mut self, pos: usize) -> Result<(), StoreError> {
        self.load_chunk(pos)
    }

    pub(crate) fn cipher(&self) -> &ChunkCipher {
        &self.cipher
    }

    pub(crate) fn header_hash(&self) -> &[u8; 32] {
        &self.header_hash
    }

    pub(crate) fn table(&self) -> &ChunkTable {
        &self.table
    }

    fn first_chunk_start(&self) -> ScanStart {
        ScanStart {
            index: 0,
            file_offset: u64::from(self.header.header_len),
            plaintext_offset: 0,
        }
    }

    fn scan_from(&self, start: ScanStart) -> Result<ChunkTable, StoreError> {
        let file_len = self
            .file
            .metadata()
            .map_err(|e| StoreError::io("stat recording", &self.path, e))?
            .len();
        format::scan_chunks(
            &self.file,
            &self.path,
            self.header.fields.chunk_size,
            file_len,
            start,
        )
    }

    /// Decrypts chunk `pos` of the table into `cache`, unless it is already there.
    fn load_chunk(&mut self, pos: usize) -> Result<(), StoreError> {
        if self.cached == Some(pos) {
            return Ok(());
        }
        self.cached = None;
        let entry = self.table.complete()[pos];
        let ct_len = entry.ciphertext_len as usize;
        self.cache.resize(ct_len, 0);
        let got = format::read_up_to(
            &self.file,
            &self.path,
            &mut self.cache,
            entry.file_offset + CHUNK_PREFIX_LEN as u64,
        )?;
        if got < ct_len {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                offset: entry.file_offset,
                reason: format!(
                    "chunk {} is cut short: the file shrank after it was opened",
                    entry.index
                ),
            });
        }
        let (ct, tag) = self.cache.split_at_mut(ct_len - TAG_LEN);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("split leaves exactly the tag");
        let aad = format::chunk_aad(&self.header_hash, &entry.prefix());
        self.cipher
            .open(entry.index, entry.last, &aad, ct, &tag)
            .map_err(|_| StoreError::ChunkAuthentication {
                path: self.path.clone(),
                recording_id: self.header.fields.recording_id,
                chunk: entry.index,
            })?;
        self.cache.truncate(ct_len - TAG_LEN);
        self.cached = Some(pos);
        Ok(())
    }
}

impl std::fmt::Debug for SealedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedReader")
            .field("path", &self.path)
            .field("recording_id", &self.header.fields.recording_id)
            .field("chunks", &self.table.entries.len())
            .field("tail", &self.table.tail)
            .finish_non_exhaustive()
    }
}

/// Sequential `Read + Seek` over a recording's plaintext. Errors come out as
/// `io::Error`s wrapping the [`StoreError`] (`InvalidData` for integrity failures);
/// get it back with `err.into_inner()` and `downcast`.
#[derive(Debug)]
pub struct PlaintextReader {
    inner: SealedReader,
    pos: u64,
}

impl PlaintextReader {
    /// The underlying reader.
    pub fn get_ref(&self) -> &SealedReader {
        &self.inner
    }

    /// Gives the underlying reader back.
    pub fn into_inner(self) -> SealedReader {
        self.inner
    }
}

fn to_io(e: StoreError) -> io::Error {
    let kind = match &e {
        StoreError::Io { source, .. } => source.kind(),
        e if e.is_integrity_failure() => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl Read for PlaintextReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read_at(self.pos, buf).map_err(to_io)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PlaintextReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.inner.plaintext_len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the recording",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
