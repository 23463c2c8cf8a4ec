//! The header tag of end-to-end (version 2) files: what makes them authentic.
//!
//! A version 1 file is authentic because only the master key can wrap its data key.
//! A version 2 file's data key is sealed to the viewers' *public* keys, which lie on
//! the data disk, so without more anyone who can write that disk could make one
//! (their own data key, any video) and it would be indexed and shown as genuine.
//! The tag (bytes 36..42, see `format` for the construction and why 48 bits are
//! enough) is computed with the master key, which lives in the key directory.
//!
//! Owns: checking a tag ([`check`], used by the reader and by `Store::status`, so by
//! playback, export, start-up recovery, `check --repair` and `check
//! --rebuild-index`); tagging a new header ([`tag_header`]); the one-time pass that
//! tags files written before tags existed ([`Store::tag_untagged_e2e_files`]).
//!
//! Files written before this change have an all-zero tag. They are accepted until
//! the pass has run and written the marker `crypto::E2E_TAGS_MARKER` in the key
//! directory (whatever files it could not tag); from then on a zero tag is refused
//! like a wrong one. A file an attacker planted *before* the first start of a build
//! with tags is tagged by that pass like any other: the tag cannot tell it from a
//! genuine old file. The same holds for a start with a key directory restored
//! without its marker, which is why the whole key directory is what to back up.
//!
//! The tag covers the header only: the chunks are authenticated by the data key,
//! which every recipient can open, so a viewer who can also write the data disk can
//! still change a recording sealed to them (see the README's threat model).
//!
//! `export --passphrase` (or with the recovery key) checks the tag like playback:
//! it opens the store with the master key, and a missing key is refused as before
//! (`MasterKeyMissing`), never skipped. A lost key directory is the disaster
//! `daemon::master_key` refuses to paper over (restore `master.key` from a backup);
//! exporting without the tag check would hand a forger exactly that situation to
//! ask for.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use subtle::ConstantTimeEq;

use super::crypto::{self, MasterKey, E2E_TAG_LEN};
use super::format::{self, KeySlot, E2E_TAG_OFFSET};
use super::regular::{open_regular, Access};
use super::{Store, StoreError};

/// What a version 2 header's tag says under one master key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TagState {
    /// Computed with this key.
    Valid,
    /// All zeros: written before tags existed (or forged).
    Untagged,
    /// Anything else: another key, or not written by Porchlight.
    Wrong,
}

/// The state of `header`'s tag (a complete version 2 header) under `master`.
pub(crate) fn state(header: &[u8], master: &MasterKey) -> TagState {
    let stored = format::stored_e2e_tag(header);
    let expected = master.e2e_header_tag(&format::e2e_tag_message(header));
    if bool::from(stored.ct_eq(&expected)) {
        TagState::Valid
    } else if stored == [0u8; E2E_TAG_LEN] {
        TagState::Untagged
    } else {
        TagState::Wrong
    }
}

/// Fails with [`StoreError::NotAuthentic`] unless the tag of `header` (a complete
/// version 2 header) was made with `master`, or is all zeros while `master` still
/// accepts untagged files.
pub(crate) fn check(
    path: &Path,
    header: &[u8],
    recording_id: u64,
    master: &MasterKey,
) -> Result<(), StoreError> {
    match state(header, master) {
        TagState::Valid => Ok(()),
        TagState::Untagged if master.accepts_untagged_e2e() => Ok(()),
        _ => Err(StoreError::NotAuthentic {
            path: path.into(),
            recording_id,
        }),
    }
}

/// Writes the tag into a freshly encoded version 2 header (its tag bytes are zero).
pub(crate) fn tag_header(header: &mut [u8], master: &MasterKey) {
    let tag = master.e2e_header_tag(&format::e2e_tag_message(header));
    header[E2E_TAG_OFFSET..E2E_TAG_OFFSET + E2E_TAG_LEN].copy_from_slice(&tag);
}

/// Rewrites the tag of the version 2 file `file` (whose header is `header`) under
/// `master`, in place, and fsyncs. Six bytes inside the first sector: a crash
/// leaves the old tag or the new one, and writing it again is harmless. The tag is
/// outside `header_hash`, so no chunk changes.
pub(crate) fn retag(
    file: &File,
    path: &Path,
    header: &[u8],
    master: &MasterKey,
) -> Result<(), StoreError> {
    let tag = master.e2e_header_tag(&format::e2e_tag_message(header));
    file.write_all_at(&tag, E2E_TAG_OFFSET as u64)
        .and_then(|()| file.sync_data())
        .map_err(|e| StoreError::io("write the end-to-end header tag", path, e))
}

/// Tags `path` if it is an end-to-end file with an all-zero tag; returns whether
/// it did. Shredded files and files of other kinds are left alone. Opened read-only
/// first and never through a symbolic link, so a version 1 file the daemon may not
/// write (a backup copied back as root) is no error; only a file to tag is reopened
/// for writing.
fn tag_if_untagged(path: &Path, master: &MasterKey) -> Result<bool, StoreError> {
    let open = |access| open_regular(path, access, "open to tag");
    let file = open(Access::Read)?;
    let (header, raw) = format::read_header(&file, path)?;
    let untagged = matches!(header.key, KeySlot::Recipients(_))
        && !header.key.is_shredded()
        && format::stored_e2e_tag(&raw) == [0u8; E2E_TAG_LEN];
    if untagged {
        retag(&open(Access::ReadWrite)?, path, &raw, master)?;
    }
    Ok(untagged)
}

impl Store {
    /// Tags, once, the end-to-end recordings and thumbnails written before header
    /// tags existed, then writes the marker in the key directory so that an
    /// untagged file is refused from then on (see the module doc). Does nothing once
    /// the marker exists. Run by the daemon at start (before recovery adopts files)
    /// and by `check --repair`; the daemon must not be writing files meanwhile.
    ///
    /// The marker is written after the pass whatever it met. A file that cannot be
    /// tagged (unreadable, not writable, not a regular file) is logged as an error
    /// and is refused from then on: holding the marker back until every file is
    /// tagged would let anyone who can write the data disk keep zero tags accepted
    /// for good with one file the pass cannot open. Returns the files tagged.
    ///
    /// A marker that cannot be written (a read-only or foreign `key_dir`) is
    /// [`StoreError::E2eMarkerNotWritable`], which stops the daemon's start and
    /// `check --repair`: starting anyway would keep untagged files accepted, and each
    /// later start would tag whatever was planted since. The tags already written stay
    /// (a tagged file reads either way), so the next try after the fix loses nothing.
    ///
    /// The marker goes into the key directory the master key was loaded from (the
    /// handle `Store` kept), even if `key_dir` names another directory by now.
    pub fn tag_untagged_e2e_files(&self) -> Result<usize, StoreError> {
        if !self.master.accepts_untagged_e2e() {
            return Ok(0);
        }
        let mut key_dir = self.key_dir.lock().unwrap_or_else(|e| e.into_inner());
        let Some(dir) = key_dir.as_ref() else {
            // Dropped, under this lock, once the marker is written: a caller that
            // waited here while another one wrote it has nothing left to do.
            return Ok(0);
        };
        let mut paths: Vec<_> = self
            .list_files()?
            .iter()
            .map(|f| self.recording_path(&f.camera, f.id))
            .collect();
        paths.extend(
            self.list_thumbnails()?
                .iter()
                .map(|(camera, event)| self.thumbnail_path(camera, *event)),
        );
        let mut tagged = 0;
        for path in &paths {
            match tag_if_untagged(path, &self.master) {
                Ok(true) => tagged += 1,
                Ok(false) => {}
                // Not a header this build reads: nothing to tag, and it is refused anyway.
                Err(StoreError::NotARecording { .. })
                | Err(StoreError::UnsupportedVersion { .. })
                | Err(StoreError::Corrupt { .. }) => {}
                Err(e) => tracing::error!(
                    path = %path.display(),
                    "cannot tag a file written before end-to-end header tags; from now on it \
                     is refused as not authentic: {e}"
                ),
            }
        }
        crypto::write_e2e_tags_marker(dir)?;
        self.master.set_accepts_untagged_e2e(false);
        *key_dir = None;
        if tagged > 0 {
            tracing::info!(
                files = tagged,
                "tagged end-to-end files written before header tags"
            );
        }
        Ok(tagged)
    }
}

#[cfg(test)]
#[path = "e2e_tag_tests.rs"]
mod tests;
