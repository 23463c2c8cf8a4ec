//! Closing files a crash left unfinished ([`recover`]), and deleting recordings
//! by crypto-shredding ([`shred`]).
//!
//! Recovery keeps exactly the chunks that authenticate, in order from the first:
//! it decrypts chunk 0, 1, 2, … until one fails or the complete chunks run out,
//! truncates the file just after the last good chunk, appends an empty final chunk
//! sealed at the next counter, and fsyncs. Sealing that final chunk can never reuse
//! a nonce with different content: data chunks are never rewritten, and every final
//! chunk is empty (see `format`), so re-sealing one is byte-identical.
//!
//! What it will not do: touch a file whose header cannot be read or whose data key
//! cannot be unwrapped (wrong key, damaged header), or cut a file whose *first*
//! complete chunk fails to authenticate — that pattern means a damaged header
//! rather than a torn tail, and cutting would destroy the whole recording. It also
//! does not re-verify the data chunks of a file whose final chunk authenticates:
//! such a file was finished, and start-up recovery must stay cheap.
//!
//! Call it at start-up for recordings the index says were still being written,
//! never on a file a live [`super::writer::SealedWriter`] holds.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::crypto::MasterKey;
use super::e2e::ViewerSecret;
use super::error::StoreError;
use super::format::{self, Tail, CHUNK_PREFIX_LEN, FORMAT_VERSION_E2E, MAGIC};
use super::reader::SealedReader;
use super::regular::Access;
use super::writer::{seal_chunk, sync_parent_dir};

/// What [`recover`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    pub path: PathBuf,
    pub recording_id: u64,
    /// The file was already finished and clean: nothing was changed.
    pub already_finished: bool,
    /// Data chunks kept (all authenticated, except on an already finished file).
    pub chunks_kept: u32,
    /// Chunks found by the prefix walk that were cut off (failed authentication,
    /// incomplete, or after a bad one).
    pub chunks_dropped: u32,
    /// Plaintext bytes in the kept chunks.
    pub plaintext_len: u64,
    /// File bytes removed by the truncation (before the final chunk was appended).
    pub bytes_dropped: u64,
    /// File length afterwards.
    pub file_len: u64,
}

/// Makes `path` a finished recording again, keeping every chunk that verifies
/// from the start. Idempotent: on a finished file it reports `already_finished`.
pub fn recover(path: &Path, master: &MasterKey) -> Result<RecoveryReport, StoreError> {
    recover_as(path, master, None)
}

/// [`recover`] of an end-to-end recording, with an unlocked `viewer` key: start-up
/// cannot close such a file (the daemon holds no key to seal its final chunk), so the
/// first viewer who opens it does.
pub fn recover_as(
    path: &Path,
    master: &MasterKey,
    viewer: Option<&ViewerSecret>,
) -> Result<RecoveryReport, StoreError> {
    let mut reader = SealedReader::open_unverified(path, master, viewer)?;
    let table = reader.table().clone();
    let recording_id = reader.header().fields.recording_id;
    let complete = table.complete();
    let old_len = match table.tail {
        Tail::Clean => complete
            .last()
            .map_or(u64::from(reader.header().header_len), |e| e.end_offset()),
        Tail::Torn { offset, len, .. } | Tail::AfterFinal { offset, len } => offset + len,
    };

    // A file that ends with an authentic final chunk keeps all its chunks.
    let final_ok = match table.final_chunk() {
        Some(_) => match reader.check_chunk(complete.len() - 1) {
            Ok(()) => true,
            Err(StoreError::ChunkAuthentication { .. }) => false,
            Err(e) => return Err(e),
        },
        None => false,
    };
    let data = if table.final_chunk().is_some() {
        &complete[..complete.len() - 1]
    } else {
        complete
    };

    let kept = if final_ok {
        data.len()
    } else {
        let mut kept = 0;
        for pos in 0..data.len() {
            match reader.check_chunk(pos) {
                Ok(()) => kept += 1,
                Err(StoreError::ChunkAuthentication { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        if kept == 0 && !data.is_empty() {
            return Err(StoreError::RecoveryRefused {
                path: path.into(),
                recording_id,
                reason: "its first chunk does not authenticate, so the header is probably \
                         damaged; not cutting the file"
                    .into(),
            });
        }
        // No data chunk, and a final chunk that does not authenticate: nothing
        // vouches for the header. Sealing a new final chunk under it would accept a
        // changed header (start time, trigger) as authentic, and a second tag under
        // the same key and nonce. Only a file with no chunk at all (a crash right
        // after its creation) is closed without one.
        if kept == 0 && table.final_chunk().is_some() {
            return Err(StoreError::RecoveryRefused {
                path: path.into(),
                recording_id,
                reason: "its only chunk, the final one, does not authenticate, so the header \
                         is probably damaged; not sealing it again"
                    .into(),
            });
        }
        kept
    };

    let kept_end = match kept {
        0 => u64::from(reader.header().header_len),
        n => data[n - 1].end_offset(),
    };
    let plaintext_len = match kept {
        0 => 0,
        n => data[n - 1].plaintext_offset + u64::from(data[n - 1].plaintext_len()),
    };
    let mut report = RecoveryReport {
        path: path.into(),
        recording_id,
        already_finished: false,
        chunks_kept: kept as u32,
        chunks_dropped: (table.entries.len() - kept - usize::from(final_ok)) as u32,
        plaintext_len,
        bytes_dropped: 0,
        file_len: old_len,
    };
    if final_ok && table.tail == Tail::Clean {
        report.already_finished = true;
        return Ok(report);
    }

    // Cut after the last good chunk (after the final chunk if that one is good),
    // then append a fresh empty final chunk if needed.
    let cut = if final_ok {
        complete[complete.len() - 1].end_offset()
    } else {
        kept_end
    };
    let mut closing = Vec::new();
    if !final_ok {
        closing.resize(CHUNK_PREFIX_LEN, 0);
        let counter = u32::try_from(kept).expect("kept chunks came from a u32-indexed table");
        seal_chunk(
            &mut closing,
            reader.cipher(),
            reader.header_hash(),
            counter,
            true,
        );
    }
    let file = super::regular::open_regular(path, Access::Write, "open for recovery")?;
    file.set_len(cut)
        .map_err(|e| StoreError::io("truncate", path, e))?;
    file.write_all_at(&closing, cut)
        .map_err(|e| StoreError::io("write final chunk", path, e))?;
    file.sync_all()
        .map_err(|e| StoreError::io("fsync", path, e))?;
    drop(reader);

    report.bytes_dropped = old_len - cut;
    report.file_len = cut + closing.len() as u64;
    tracing::warn!(
        path = %path.display(),
        recording_id,
        chunks_kept = report.chunks_kept,
        chunks_dropped = report.chunks_dropped,
        bytes_dropped = report.bytes_dropped,
        plaintext_len,
        "recovered an unfinished recording"
    );
    Ok(report)
}

/// Cuts `path` back to `len` bytes (if longer) and fsyncs it: after a failed sync
/// the bytes past the last good one cannot be trusted even when they read back
/// and authenticate (the page cache may hold what the disk never got; see
/// `writer`), so they go before [`recover`] closes the file.
pub fn cut_back(path: &Path, len: u64) -> Result<(), StoreError> {
    let file = super::regular::open_regular(path, Access::Write, "open for recovery")?;
    let on_disk = file
        .metadata()
        .map_err(|e| StoreError::io("stat", path, e))?
        .len();
    if on_disk > len {
        file.set_len(len)
            .map_err(|e| StoreError::io("truncate", path, e))?;
        file.sync_all()
            .map_err(|e| StoreError::io("fsync", path, e))?;
        tracing::warn!(path = %path.display(), kept = len, dropped = on_disk - len, "cut a recording back to its last successful sync");
    }
    Ok(())
}

/// Deletes a recording by crypto-shredding: overwrites its wrapped data key with
/// zeros, fsyncs, unlinks the file and fsyncs the directory. A file that is already
/// gone counts as shredded (the directory is still fsynced), so an interrupted
/// deletion can simply be repeated.
///
/// Refuses files that do not carry the recording magic and version (it will not
/// zero bytes in a file it does not understand). Note: the key is only gone if
/// every other copy of the wrapped key (e.g. in the index) is deleted too, and on
/// flash media an overwrite may leave the old sector in the device's spare area;
/// the overwrite narrows recovery of deleted recordings, it is not a guarantee.
pub fn shred(path: &Path) -> Result<(), StoreError> {
    let _names = name_changes();
    shred_locked(path)
}

/// Held by a shred from its open to its unlink, and by a migration from opening the
/// original to zeroing it (`migrate.rs`). Unserialised, a shred that opened the
/// original could unlink the migration's copy renamed over it, leaving the copy's
/// key slot on the disk. Process-wide: each is short, and retention runs one at a
/// time anyway.
static NAME_CHANGES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`NAME_CHANGES`] (a poisoned lock guards no data: taken all the same).
pub(super) fn name_changes() -> std::sync::MutexGuard<'static, ()> {
    NAME_CHANGES.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`shred`], for a caller already holding [`name_changes`].
pub(super) fn shred_locked(path: &Path) -> Result<(), StoreError> {
    let file = match super::regular::open_regular(path, Access::ReadWrite, "open for shredding") {
        Ok(f) => f,
        // Already gone: make its removal durable, unless the directory is gone too
        // (then there is nothing left to sync).
        Err(e) if e.is_not_found() => {
            return match path.parent() {
                Some(dir) if dir.is_dir() => sync_parent_dir(path),
                _ => Ok(()),
            };
        }
        // A link, FIFO, socket or device node planted under a recording's name holds
        // no key to destroy: remove the name itself (unlink never follows a link), so
        // retention and deletion go on instead of stopping at it. A directory stays.
        Err(StoreError::NotARegularFile { kind, .. }) if kind != "a directory" => {
            tracing::warn!(path = %path.display(), "removing {kind} found where a recording should be");
            std::fs::remove_file(path).map_err(|e| StoreError::io("unlink", path, e))?;
            return sync_parent_dir(path);
        }
        Err(e) => return Err(e),
    };
    #[cfg(test)]
    tests::between_open_and_zeroing(path);
    let mut prefix = [0u8; 36];
    let got = format::read_up_to(&file, path, &mut prefix, 0)?;
    if got < 10 || prefix[..8] != MAGIC {
        return Err(StoreError::NotARecording { path: path.into() });
    }
    let version = u16::from_be_bytes([prefix[8], prefix[9]]);
    // The key slot: version 1's wrapped key, or version 2's recipient slots.
    let Some(slot) = format::key_slot_range(&prefix[..got]) else {
        return Err(StoreError::UnsupportedVersion {
            path: path.into(),
            found: version,
            supported: FORMAT_VERSION_E2E,
        });
    };
    let len = file
        .metadata()
        .map_err(|e| StoreError::io("stat", path, e))?
        .len();
    let start = slot.start as u64;
    let end = (slot.end as u64).min(len);
    if end > start {
        let zeros = vec![0u8; (end - start) as usize];
        file.write_all_at(&zeros, start)
            .map_err(|e| StoreError::io("overwrite wrapped key", path, e))?;
        file.sync_data()
            .map_err(|e| StoreError::io("fsync", path, e))?;
    }
    drop(file);
    match std::fs::remove_file(path) {
        Ok(()) => {}
        // Gone meanwhile counts as done too: a migration that found this file's
        // slots zeroed shreds its copy under the same name (`migrate.rs`).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io("unlink", path, e)),
    }
    sync_parent_dir(path)
}

#[cfg(test)]
pub(super) mod tests {
    /// What a test runs when `shred` of one path has opened it, before zeroing.
    type ShredHook = (PathBuf, Box<dyn FnOnce() + Send>);
    static BETWEEN_OPEN_AND_ZEROING: std::sync::Mutex<Option<ShredHook>> =
        std::sync::Mutex::new(None);

    /// Runs `hook` (once) when a shred of `path` has opened it.
    pub(in crate::store) fn on_shred_of(path: &Path, hook: Box<dyn FnOnce() + Send>) {
        *BETWEEN_OPEN_AND_ZEROING
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((path.to_owned(), hook));
    }

    /// The seam `shred` calls between its open and its zeroing (tests only).
    pub(super) fn between_open_and_zeroing(path: &Path) {
        let hook = {
            let mut slot = BETWEEN_OPEN_AND_ZEROING
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match slot.take() {
                Some((p, hook)) if p == path => Some(hook),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some(hook) = hook {
            hook();
        }
    }

    use super::*;
    use crate::store::crypto::WrappedKey;
    use crate::store::format::WRAPPED_KEY_OFFSET;
    use crate::store::reader::TornFiles;
    use crate::store::writer::testing::{pattern, write_recording};
    use std::fs::{self, OpenOptions};
    use std::io::Read;

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

    fn read_finished(f: &Fixture) -> Vec<u8> {
        let mut out = Vec::new();
        SealedReader::open(&f.path, &f.master)
            .expect("open")
            .into_reader(TornFiles::Refuse)
            .expect("finished after recovery")
            .read_to_end(&mut out)
            .expect("every kept chunk authenticates");
        out
    }

    fn set_len(path: &Path, len: u64) {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(len))
            .expect("truncate");
    }

    /// A recording with no video and its final chunk, whose header's start time was
    /// changed: no chunk vouches for the header, so recovery must not seal a new
    /// final chunk under it (that would make the changed header authentic).
    #[test]
    fn a_tampered_header_with_only_a_final_chunk_is_not_sealed_again() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[], true);
        let mut bytes = fs::read(&f.path).expect("read");
        bytes[29] ^= 0x01; // the start time (see reader_tests::tampered_header_is_rejected)
        fs::write(&f.path, &bytes).expect("write");
        let err = recover(&f.path, &f.master).expect_err("refused");
        assert!(matches!(err, StoreError::RecoveryRefused { .. }), "{err}");
        assert_eq!(fs::read(&f.path).expect("read"), bytes, "left untouched");
    }

    /// A file a crash left right after its header (no chunk at all) is still
    /// closed with an empty final chunk.
    #[test]
    fn a_header_only_file_is_still_closed() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[], false);
        let report = recover(&f.path, &f.master).expect("recovered");
        assert_eq!(report.chunks_kept, 0);
        assert!(SealedReader::open(&f.path, &f.master)
            .expect("open")
            .is_finished());
    }

    #[test]
    fn recover_keeps_exactly_the_complete_chunks_of_a_file_cut_mid_chunk() {
        let f = fixture();
        // chunks: 16 | 16 | 8 (sync) | 16 | 4 (sync); no final chunk
        let plain = write_recording(
            &f.path,
            &f.master,
            16,
            &[&pattern(40, 1), &pattern(20, 2)],
            false,
        );
        let len = fs::metadata(&f.path).expect("stat").len();
        set_len(&f.path, len - 10); // cut inside the 4-byte chunk
        let r = SealedReader::open(&f.path, &f.master).expect("open");
        assert!(!r.chunks().last().expect("entries").complete);
        drop(r);

        let report = recover(&f.path, &f.master).expect("recover");
        assert!(!report.already_finished);
        assert_eq!(report.chunks_kept, 4);
        assert_eq!(report.chunks_dropped, 1);
        assert_eq!(report.plaintext_len, 56);
        assert_eq!(report.bytes_dropped, 25 - 10);
        assert_eq!(report.file_len, fs::metadata(&f.path).expect("stat").len());
        assert_eq!(read_finished(&f), &plain[..56]);
    }

    #[test]
    fn recover_is_idempotent() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[&pattern(40, 3)], false);
        let first = recover(&f.path, &f.master).expect("recover");
        assert_eq!(
            (first.chunks_kept, first.chunks_dropped, first.bytes_dropped),
            (3, 0, 0)
        );
        let bytes = fs::read(&f.path).expect("read");
        let second = recover(&f.path, &f.master).expect("again");
        assert!(second.already_finished);
        assert_eq!(second.chunks_kept, 3);
        assert_eq!(
            fs::read(&f.path).expect("read"),
            bytes,
            "a finished file is not touched"
        );
        assert_eq!(read_finished(&f), plain);
    }

    #[test]
    fn recover_reports_nothing_to_do_on_a_finished_file() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[&pattern(33, 4)], true);
        let before = fs::read(&f.path).expect("read");
        let report = recover(&f.path, &f.master).expect("recover");
        assert!(report.already_finished);
        assert_eq!((report.chunks_dropped, report.bytes_dropped), (0, 0));
        assert_eq!(fs::read(&f.path).expect("read"), before);
        assert_eq!(read_finished(&f), plain);
    }

    #[test]
    fn recover_drops_zeros_and_chunks_that_fail_authentication() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[&pattern(64, 5)], false);
        let mut bytes = fs::read(&f.path).expect("read");
        let chunks = SealedReader::open(&f.path, &f.master)
            .expect("open")
            .chunks()
            .to_vec();
        // Garble chunk 2's ciphertext (as a lost page would) and append zeros.
        bytes[chunks[2].file_offset as usize + 9] ^= 0xff;
        bytes.extend_from_slice(&[0u8; 4096]);
        fs::write(&f.path, &bytes).expect("write");
        let report = recover(&f.path, &f.master).expect("recover");
        assert_eq!((report.chunks_kept, report.chunks_dropped), (2, 2));
        assert_eq!(read_finished(&f), &plain[..32]);
    }

    #[test]
    fn recover_closes_a_file_with_only_a_header() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[], false);
        let report = recover(&f.path, &f.master).expect("recover");
        assert_eq!((report.chunks_kept, report.plaintext_len), (0, 0));
        assert!(read_finished(&f).is_empty());
    }

    #[test]
    fn recover_trims_bytes_after_the_final_chunk() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[b"hello"], true);
        let good_len = fs::metadata(&f.path).expect("stat").len();
        let mut bytes = fs::read(&f.path).expect("read");
        bytes.extend_from_slice(b"junk");
        fs::write(&f.path, &bytes).expect("write");
        let report = recover(&f.path, &f.master).expect("recover");
        assert_eq!((report.bytes_dropped, report.file_len), (4, good_len));
        assert_eq!(read_finished(&f), plain);
    }

    #[test]
    fn recover_replaces_a_damaged_final_chunk_with_an_identical_one() {
        let f = fixture();
        let plain = write_recording(&f.path, &f.master, 16, &[&pattern(20, 6)], true);
        let good = fs::read(&f.path).expect("read");
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        fs::write(&f.path, &bad).expect("write");
        recover(&f.path, &f.master).expect("recover");
        // Same key, nonce, empty plaintext and associated data: the same bytes.
        assert_eq!(fs::read(&f.path).expect("read"), good);
        assert_eq!(read_finished(&f), plain);
    }

    #[test]
    fn recover_refuses_to_cut_a_file_whose_first_chunk_fails() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[&pattern(40, 7)], false);
        let mut bytes = fs::read(&f.path).expect("read");
        // Change the trigger: the header no longer matches any chunk.
        let at = bytes
            .windows(6)
            .position(|w| w == b"motion")
            .expect("trigger");
        bytes[at] = b'n';
        fs::write(&f.path, &bytes).expect("write");
        let err = recover(&f.path, &f.master).expect_err("refused");
        assert!(matches!(err, StoreError::RecoveryRefused { .. }), "{err}");
        assert_eq!(fs::read(&f.path).expect("read"), bytes, "file untouched");
    }

    #[test]
    fn recover_with_the_wrong_key_changes_nothing() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[b"abc"], false);
        let before = fs::read(&f.path).expect("read");
        let err = recover(&f.path, &MasterKey::generate_for_tests()).expect_err("other key");
        assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
        assert_eq!(fs::read(&f.path).expect("read"), before);
    }

    #[test]
    fn shred_leaves_no_file_and_can_be_repeated() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[b"abc"], true);
        let hard_link = f.path.with_extension("link");
        fs::hard_link(&f.path, &hard_link).expect("link");
        shred(&f.path).expect("shred");
        assert!(!f.path.exists());
        // Through the second name we can see the wrapped key was zeroed first.
        let bytes = fs::read(&hard_link).expect("read");
        let start = WRAPPED_KEY_OFFSET as usize;
        assert!(bytes[start..start + WrappedKey::LEN]
            .iter()
            .all(|&b| b == 0));
        shred(&f.path).expect("already gone is fine");
    }

    #[test]
    fn shred_removes_a_link_or_fifo_planted_under_a_recordings_name_but_not_its_target() {
        let f = fixture();
        write_recording(&f.path, &f.master, 16, &[b"abc"], true);
        let planted = f.path.with_extension("planted");
        std::os::unix::fs::symlink(&f.path, &planted).expect("symlink");
        shred(&planted).expect("a link is removed");
        assert!(fs::symlink_metadata(&planted).is_err(), "the link is gone");
        assert!(f.path.exists(), "its target is untouched");
        let dangling = f.path.with_extension("dangling");
        std::os::unix::fs::symlink("/nonexistent/porchlight", &dangling).expect("symlink");
        shred(&dangling).expect("a dangling link is removed");
        assert!(fs::symlink_metadata(&dangling).is_err());
        let fifo = f.path.with_extension("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(made.success());
        shred(&fifo).expect("a FIFO is removed, without blocking");
        assert!(fs::symlink_metadata(&fifo).is_err());
        let dir = f.path.with_extension("dir");
        fs::create_dir(&dir).expect("mkdir");
        assert!(shred(&dir).is_err(), "a directory is not removed");
        assert!(dir.is_dir());
    }

    #[test]
    fn shred_refuses_files_that_are_not_recordings() {
        let f = fixture();
        fs::write(&f.path, b"not a recording at all, but somebody's file").expect("write");
        let err = shred(&f.path).expect_err("refused");
        assert!(matches!(err, StoreError::NotARecording { .. }), "{err}");
        assert!(f.path.exists());
    }

    #[test]
    fn shredding_a_file_whose_directory_is_gone_counts_as_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        shred(
            &dir.path()
                .join("no-such-camera")
                .join("0000000000000001.plr"),
        )
        .expect("nothing to delete is not an error");
    }
}
