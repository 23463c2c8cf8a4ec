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
use super::error::StoreError;
use super::format::{
    self, ChunkEntry, ChunkTable, RecordingHeader, ScanStart, Tail, CHUNK_PREFIX_LEN,
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
    /// Opens `path` with `master`; see the module doc for what is checked.
    pub fn open(path: &Path, master: &MasterKey) -> Result<SealedReader, StoreError> {
        let mut reader = SealedReader::open_unverified(path, master)?;
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
    ) -> Result<SealedReader, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io("open recording", path, e))?;
        let (header, raw) = format::read_header(&file, path)?;
        let fields = &header.fields;
        if header.key_id != master.id() {
            return Err(StoreError::KeyMismatch {
                path: path.into(),
                recording_id: fields.recording_id,
                file_key_id: header.key_id,
                loaded_key_id: master.id(),
            });
        }
        let data_key = master
            .unwrap_data_key(&header.wrapped_key, fields.recording_id, &fields.camera)
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
mod tests {
    use super::*;
    use crate::store::crypto::MasterKey;
    use crate::store::writer::testing::{pattern, write_recording};
    use crate::store::writer::SealedWriter;
    use std::fs;

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
        master: MasterKey,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.plrec");
        Fixture {
            _dir: dir,
            path,
            master: MasterKey::generate_for_tests(),
        }
    }

    fn read_all(path: &Path, master: &MasterKey) -> Result<Vec<u8>, StoreError> {
        let mut r = SealedReader::open(path, master)?.into_reader(TornFiles::Refuse)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(|e| {
            *e.into_inner()
                .expect("wraps a StoreError")
                .downcast::<StoreError>()
                .expect("is a StoreError")
        })?;
        Ok(out)
    }

    fn chunk_authentication_of(err: &StoreError) -> Option<u32> {
        match err {
            StoreError::ChunkAuthentication { chunk, .. } => Some(*chunk),
            _ => None,
        }
    }

    #[test]
    fn round_trip_of_small_large_and_empty_data_with_partial_chunks() {
        let data = pattern(300_000, 7);
        let cases: Vec<(u32, Vec<&[u8]>)> = vec![
            (64, vec![]),
            (64, vec![&data[..0]]),
            (64, vec![&data[..1]]),
            (64, vec![&data[..63], &data[63..64], &data[64..65]]),
            (64, vec![&data[..64], &data[64..128]]),
            (
                7,
                vec![&data[..3], &data[3..100], &data[100..101], &data[101..1000]],
            ),
            (1, vec![&data[..50]]),
            (
                65536,
                vec![&data[..1000], &data[1000..200_000], &data[200_000..]],
            ),
        ];
        for (chunk_size, pieces) in cases {
            let f = fixture();
            let plain = write_recording(&f.path, &f.master, chunk_size, &pieces, true);
            let r = SealedReader::open(&f.path, &f.master).expect("open");
            assert!(r.is_finished());
            r.verify_complete().expect("complete");
            assert_eq!(r.plaintext_len(), plain.len() as u64);
            // Every data chunk respects the size limit; only the final one is empty.
            for e in r.chunks() {
                assert!(e.plaintext_len() <= chunk_size);
                assert_eq!(e.last, e.plaintext_len() == 0);
            }
            assert_eq!(
                read_all(&f.path, &f.master).expect("read"),
                plain,
                "chunk size {chunk_size}"
            );
        }
    }

    #[test]
    fn read_at_equals_the_plaintext_at_edges_and_across_chunk_boundaries() {
        let f = fixture();
        let data = pattern(1000, 3);
        // 16-byte chunks, with partial chunks where syncs fall.
        let plain = write_recording(
            &f.path,
            &f.master,
            16,
            &[&data[..40], &data[40..41], &data[41..]],
            true,
        );
        let mut r = SealedReader::open(&f.path, &f.master).expect("open");
        let len = plain.len() as u64;
        for offset in [
            0,
            1,
            15,
            16,
            17,
            31,
            32,
            39,
            40,
            41,
            47,
            48,
            500,
            len - 17,
            len - 1,
        ] {
            for want in [1usize, 2, 16, 17, 40, 1000] {
                let mut buf = vec![0u8; want];
                let got = r.read_at(offset, &mut buf).expect("read");
                let end = (offset as usize + want).min(plain.len());
                assert_eq!(got, end - offset as usize, "offset {offset} len {want}");
                assert_eq!(
                    &buf[..got],
                    &plain[offset as usize..end],
                    "offset {offset} len {want}"
                );
            }
        }
        let mut buf = [0u8; 4];
        assert_eq!(r.read_at(len, &mut buf).expect("read at end"), 0);
        assert_eq!(r.read_at(len + 100, &mut buf).expect("read past end"), 0);
    }

    #[test]
    fn plaintext_reader_reads_and_seeks() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 10, &[&pattern(95, 1)], true);
        let mut r = SealedReader::open(&f.path, &f.master)
            .expect("open")
            .into_reader(TornFiles::Refuse)
            .expect("finished");
        let mut buf = [0u8; 7];
        r.seek(SeekFrom::Start(8)).expect("seek");
        r.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, &plain[8..15]);
        r.seek(SeekFrom::Current(-3)).expect("seek back");
        r.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, &plain[12..19]);
        assert_eq!(r.seek(SeekFrom::End(-5)).expect("seek end"), 90);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).expect("read");
        assert_eq!(rest, &plain[90..]);
        assert!(r.seek(SeekFrom::Current(-1000)).is_err());
    }

    #[test]
    fn flipped_byte_in_any_chunk_is_reported_with_that_chunk_number() {
        let f = fixture();
        let data = pattern(50, 9);
        write_recording(&f.path, &f.master, 16, &[&data[..20], &data[20..]], true);
        let original = fs::read(&f.path).expect("read");
        let chunks = SealedReader::open(&f.path, &f.master)
            .expect("open")
            .chunks()
            .to_vec();
        assert_eq!(chunks.len(), 5); // 16, 4 (sync) | 16, 14 (sync) | final
        for e in &chunks {
            let start = (e.file_offset as usize) + CHUNK_PREFIX_LEN;
            let end = e.end_offset() as usize;
            // first ciphertext byte (or tag byte of the empty final chunk), a middle
            // byte, and the last tag byte
            for at in [start, (start + end) / 2, end - 1] {
                let mut bytes = original.clone();
                bytes[at] ^= 0x40;
                fs::write(&f.path, &bytes).expect("write");
                let err = read_all(&f.path, &f.master).expect_err("tampered");
                assert_eq!(
                    chunk_authentication_of(&err),
                    Some(e.index),
                    "byte {at}: {err}"
                );
                let msg = err.to_string();
                assert!(
                    msg.contains(&format!("chunk {}", e.index))
                        && msg.contains("recording 0000000000000001"),
                    "{msg}"
                );
            }
        }
        // Prefix bytes (length and flag) are covered too: any change is an error.
        for e in &chunks {
            for at in e.file_offset as usize..e.file_offset as usize + CHUNK_PREFIX_LEN {
                let mut bytes = original.clone();
                bytes[at] ^= 0x01;
                fs::write(&f.path, &bytes).expect("write");
                assert!(
                    read_all(&f.path, &f.master).is_err(),
                    "prefix byte {at} of chunk {}",
                    e.index
                );
            }
        }
    }

    #[test]
    fn swapped_chunks_are_rejected() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[&pattern(64, 2)], true);
        let bytes = fs::read(&f.path).expect("read");
        let r = SealedReader::open(&f.path, &f.master).expect("open");
        let (a, b) = (r.chunks()[1], r.chunks()[2]);
        assert_eq!(a.ciphertext_len, b.ciphertext_len);
        drop(r);
        let (a_range, b_range) = (
            a.file_offset as usize..a.end_offset() as usize,
            b.file_offset as usize..b.end_offset() as usize,
        );
        let swapped = [
            &bytes[..a_range.start],
            &bytes[b_range.clone()],
            &bytes[a_range.clone()],
            &bytes[b_range.end..],
        ]
        .concat();
        fs::write(&f.path, swapped).expect("write");
        let mut r =
            SealedReader::open(&f.path, &f.master).expect("open: the final chunk is intact");
        let mut buf = vec![0u8; plain.len()];
        let err = r.read_at(0, &mut buf).expect_err("swapped");
        assert_eq!(chunk_authentication_of(&err), Some(1), "{err}");
    }

    #[test]
    fn dropped_chunk_is_rejected() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[&pattern(64, 4)], true);
        let bytes = fs::read(&f.path).expect("read");
        let chunks = SealedReader::open(&f.path, &f.master)
            .expect("open")
            .chunks()
            .to_vec();
        // Drop a middle chunk: the one after it is then read at the wrong position.
        let c = chunks[1];
        let cut = [
            &bytes[..c.file_offset as usize],
            &bytes[c.end_offset() as usize..],
        ]
        .concat();
        fs::write(&f.path, cut).expect("write");
        let err =
            SealedReader::open(&f.path, &f.master).expect_err("final chunk moved to counter 3");
        assert_eq!(chunk_authentication_of(&err), Some(3), "{err}");
        // Drop the final chunk: a clean cut at a chunk boundary still reads as truncated.
        let last = chunks[chunks.len() - 1];
        fs::write(&f.path, &bytes[..last.file_offset as usize]).expect("write");
        let err = read_all(&f.path, &f.master).expect_err("no final chunk");
        assert!(matches!(err, StoreError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn tampered_header_is_rejected() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[&pattern(40, 5)], true);
        let bytes = fs::read(&f.path).expect("read");
        let find = |needle: &[u8]| {
            bytes
                .windows(needle.len())
                .position(|w| w == needle)
                .expect("present")
        };
        // Fields bound only through the header hash: every chunk fails, the final
        // one already at open.
        for (what, at) in [
            ("trigger", find(b"motion")),
            ("start time", 29),
            ("chunk size", 32),
            ("nonce prefix", 45),
        ] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            fs::write(&f.path, &bad).expect("write");
            let err = SealedReader::open(&f.path, &f.master).expect_err(what);
            assert!(chunk_authentication_of(&err).is_some(), "{what}: {err}");
        }
        // Fields bound into the wrapped key's associated data, and the wrapped key
        // itself, fail at unwrap; a changed key id is a key mismatch.
        for (what, at) in [
            ("camera name", find(b"porch")),
            ("recording id", 21),
            ("wrapped key", 100),
        ] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            fs::write(&f.path, &bad).expect("write");
            let err = SealedReader::open(&f.path, &f.master).expect_err(what);
            assert!(
                matches!(err, StoreError::KeyUnwrap { path: Some(_), .. }),
                "{what}: {err}"
            );
        }
        let mut bad = bytes.clone();
        bad[36] ^= 0x01;
        fs::write(&f.path, &bad).expect("write");
        let err = SealedReader::open(&f.path, &f.master).expect_err("key id");
        assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn key_slot_can_be_rewrapped_in_place_under_another_master_key() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[&pattern(40, 12)], true);
        let header = SealedReader::open(&f.path, &f.master)
            .expect("open")
            .header()
            .clone();
        let (id, camera) = (header.fields.recording_id, header.fields.camera.as_str());
        let data_key = f
            .master
            .unwrap_data_key(&header.wrapped_key, id, camera)
            .expect("unwrap");
        let new_master = MasterKey::generate_for_tests();
        let rewrapped = new_master
            .wrap_data_key(&data_key, id, camera)
            .expect("wrap");
        let mut bytes = fs::read(&f.path).expect("read");
        bytes[34..42].copy_from_slice(&new_master.id().to_bytes());
        bytes[49..121].copy_from_slice(rewrapped.as_bytes());
        fs::write(&f.path, &bytes).expect("write");
        assert_eq!(read_all(&f.path, &new_master).expect("rewrapped"), plain);
        assert!(SealedReader::open(&f.path, &f.master).is_err());
    }

    #[test]
    fn wrong_master_key_is_a_key_id_error() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[b"x"], true);
        let other = MasterKey::generate_for_tests();
        let err = SealedReader::open(&f.path, &other).expect_err("other key");
        assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&f.master.id().to_string()) && msg.contains(&other.id().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn not_a_recording_and_future_versions_are_named_as_such() {
        let f = fixture();
        fs::write(&f.path, b"\x00\x00\x00\x18ftypisom and so on").expect("write");
        let err = SealedReader::open(&f.path, &f.master).expect_err("mp4");
        assert!(matches!(err, StoreError::NotARecording { .. }), "{err}");
        fs::remove_file(&f.path).expect("rm");
        write_recording(&f.path, &f.master, 16, &[b"x"], true);
        let mut bytes = fs::read(&f.path).expect("read");
        bytes[9] = 9;
        fs::write(&f.path, &bytes).expect("write");
        let err = SealedReader::open(&f.path, &f.master).expect_err("v9");
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn no_plaintext_is_visible_in_the_file() {
        let f = fixture();
        let marker = b"PORCHLIGHT-SECRET-VIDEO-MARKER-";
        let plain: Vec<u8> = marker.iter().copied().cycle().take(200_000).collect();
        write_recording(
            &f.path,
            &f.master,
            65536,
            &[&plain[..100], &plain[100..]],
            true,
        );
        let bytes = fs::read(&f.path).expect("read");
        assert!(
            !bytes.windows(8).any(|w| w == &marker[..8]),
            "plaintext leaked"
        );
        assert!(
            !bytes.windows(8).any(|w| w == &marker[12..20]),
            "plaintext leaked"
        );
        assert_eq!(read_all(&f.path, &f.master).expect("read"), plain);
    }

    #[test]
    fn unfinished_file_reads_up_to_its_data_but_export_refuses_it() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[&pattern(40, 6)], false);
        let mut r = SealedReader::open(&f.path, &f.master).expect("open");
        assert!(!r.is_finished());
        assert_eq!(r.plaintext_len(), 40);
        let mut buf = vec![0u8; 40];
        assert_eq!(r.read_at(0, &mut buf).expect("read"), 40);
        assert_eq!(buf, plain);
        let err = r.into_reader(TornFiles::Refuse).expect_err("unfinished");
        assert!(matches!(err, StoreError::Truncated { .. }), "{err}");
        let mut out = Vec::new();
        SealedReader::open(&f.path, &f.master)
            .expect("open")
            .into_reader(TornFiles::Accept)
            .expect("accepted")
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, plain);
    }

    #[test]
    fn file_cut_mid_chunk_reports_a_torn_tail() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[&pattern(40, 8)], true);
        let len = fs::metadata(&f.path).expect("stat").len();
        // Remove the final chunk (21 bytes) and 3 bytes of the last data chunk.
        fs::OpenOptions::new()
            .write(true)
            .open(&f.path)
            .and_then(|file| file.set_len(len - 24))
            .expect("truncate");
        let mut r = SealedReader::open(&f.path, &f.master).expect("open");
        let last = *r.chunks().last().expect("entries");
        assert!(!last.complete);
        assert_eq!(last.index, 2);
        assert!(matches!(r.tail(), Tail::Torn { offset, .. } if offset == last.file_offset));
        assert_eq!(r.plaintext_len(), 32);
        let mut buf = vec![0u8; 40];
        assert_eq!(r.read_at(0, &mut buf).expect("read"), 32);
        assert_eq!(&buf[..32], &plain[..32]);
        let err = r.verify_complete().expect_err("torn");
        assert!(err.to_string().contains("torn tail"), "{err}");
    }

    #[test]
    fn bytes_after_the_final_chunk_are_reported() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[b"abc"], true);
        let mut bytes = fs::read(&f.path).expect("read");
        bytes.extend_from_slice(b"junk");
        fs::write(&f.path, &bytes).expect("write");
        let r = SealedReader::open(&f.path, &f.master).expect("open");
        assert!(matches!(r.tail(), Tail::AfterFinal { len: 4, .. }));
        let err = r
            .into_reader(TornFiles::Accept)
            .expect_err("not a torn file");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn refresh_follows_a_recording_being_written() {
        let f = fixture();
        let fields = format::HeaderFields {
            chunk_size: 16,
            ..format::HeaderFields::new(1, "porch", 0, "motion")
        };
        let (mut w, _) = SealedWriter::create(&f.path, &fields, &f.master).expect("create");
        let mut r = SealedReader::open(&f.path, &f.master).expect("open");
        assert_eq!(r.plaintext_len(), 0);
        w.write_all(&pattern(20, 1)).expect("write");
        w.sync().expect("sync");
        r.refresh().expect("refresh");
        assert_eq!(r.plaintext_len(), 20);
        let mut buf = [0u8; 20];
        r.read_at(0, &mut buf).expect("read");
        w.write_all(b"more").expect("write");
        w.finish().expect("finish");
        r.refresh().expect("refresh");
        assert!(r.is_finished());
        assert_eq!(r.plaintext_len(), 24);
    }

    /// Run by hand: `cargo test --release -- --ignored --nocapture throughput`.
    #[test]
    #[ignore]
    fn throughput_of_seal_and_open_64_mib() {
        use std::time::Instant;
        const TOTAL: usize = 64 << 20;
        let f = fixture();
        let frame = pattern(32 * 1024, 11); // a typical 1080p P-frame
        let fields = format::HeaderFields::new(1, "porch", 0, "continuous");
        let t = Instant::now();
        let (mut w, _) = SealedWriter::create(&f.path, &fields, &f.master).expect("create");
        for i in 0..TOTAL / frame.len() {
            w.write_all(&frame).expect("write");
            if i % 64 == 63 {
                w.sync().expect("sync"); // one partial chunk + fdatasync per 2 MiB
            }
        }
        w.finish().expect("finish");
        let seal = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut r = SealedReader::open(&f.path, &f.master)
            .expect("open")
            .into_reader(TornFiles::Refuse)
            .expect("finished");
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0;
        loop {
            let got = r.read(&mut buf).expect("read");
            if got == 0 {
                break;
            }
            n += got;
        }
        let open = t.elapsed().as_secs_f64();
        assert_eq!(n, TOTAL);
        let mb = TOTAL as f64 / 1e6;
        println!(
            "seal: {:.0} MB/s ({seal:.3} s); open+read: {:.0} MB/s ({open:.3} s)",
            mb / seal,
            mb / open
        );
    }
}
