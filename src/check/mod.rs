//! Consistency between the index and the recording files, and start-up recovery.
//!
//! The files are the truth (each is self-describing); the index is a cache of them.
//! So: an `Open` entry left by a crash is finished from its file; a `Deleting` entry is
//! finished by shredding; an entry whose file is gone is dropped; a file without an
//! entry is indexed again — never deleted — unless its key block was already zeroed by
//! an interrupted deletion, in which case nothing in it is readable and it is removed.
//! A file sealed under a different master key is reported and left alone. A thumbnail
//! or share copy without its event or link is shredded.
//!
//! Here: the entry points (`run`, `recover`, `shred_orphaned_extras`) and the report.
//! Beside it: `recovery.rs` (what a crash interrupted), `compare.rs` (`check` and
//! `--repair`), `adopt.rs` (files without an entry), `rebuild.rs`
//! (`--rebuild-index`), `removal.rs` (deleting recordings and their events) and
//! `extras.rs` (thumbnails and share copies without an owner).

use std::collections::HashSet;
use std::fmt;

use self::adopt::adopt;
use self::compare::compare;
use self::rebuild::{open_for_rebuild, rebuild};
use self::recovery::finish_interrupted;
use self::removal::prune_events;
use crate::config::Config;
use crate::index::{Index, IndexError};
use crate::model::RecordingId;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("cannot move the unreadable index {path} aside: {source}")]
    SetAside {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("end-to-end viewer keys: {0}")]
    EndToEnd(#[from] crate::e2e::E2eError),
    #[error("cannot give {path} the data directory's owner: {source}")]
    Ownership {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Report,
    Repair,
    RebuildIndex,
}

/// Findings (problems seen) and actions (what was done about them).
#[derive(Debug, Default)]
pub struct Report {
    pub recordings: usize,
    pub findings: Vec<String>,
    pub actions: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty() && self.actions.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.findings {
            writeln!(f, "problem: {line}")?;
        }
        for line in &self.actions {
            writeln!(f, "fixed: {line}")?;
        }
        if self.findings.is_empty() {
            write!(f, "clean: {} recording(s)", self.recordings)
        } else {
            write!(
                f,
                "{} problem(s) in {} recording(s)",
                self.findings.len(),
                self.recordings
            )
        }
    }
}

/// Runs `porchlight check` in the given mode. The daemon must not be running (sled
/// holds a lock, and the error says so).
pub fn run(config: &Config, mode: Mode) -> Result<Report, CheckError> {
    let store = Store::open(&config.data_dir, &config.key_dir)?;
    let index_dir = Store::index_dir(&config.data_dir);
    if mode == Mode::RebuildIndex {
        let (index, set_aside) = open_for_rebuild(&index_dir)?;
        let mut report = rebuild(&store, &index)?;
        report.actions.extend(set_aside);
        // The viewers' locked keys, from their files: without them no end-to-end
        // recording could be opened again, recovery key or not.
        report
            .actions
            .extend(crate::e2e::sync_saved_viewers(&index, &store)?);
        index.flush()?;
        give_to_data_dir_owner(&config.data_dir, &index_dir)?;
        return Ok(report);
    }
    let index = Index::open(&index_dir)?;
    if mode == Mode::Repair {
        // As the daemon does at start, before `recover` adopts anything.
        store.tag_untagged_e2e_files()?;
    }
    let report = compare(&store, &index, mode == Mode::Repair)?;
    index.flush()?;
    // Sled may have written new files (snapshots) even here.
    give_to_data_dir_owner(&config.data_dir, &index_dir)?;
    Ok(report)
}

/// Gives `dir` and everything under it the owner and group of `data_dir`, where they
/// differ. `check` may run as root (the README says so) on the data of the daemon's
/// own user: an index it made anew would otherwise be root's (0755/0644), and the
/// daemon could not open it, restarting every few seconds and recording nothing.
/// As `rotate-master-key` does for its new key.
fn give_to_data_dir_owner(
    data_dir: &std::path::Path,
    dir: &std::path::Path,
) -> Result<(), CheckError> {
    use std::os::unix::fs::MetadataExt;
    let failed = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source: std::io::Error| CheckError::Ownership { path, source }
    };
    let owner = std::fs::metadata(data_dir).map_err(failed(data_dir))?;
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(failed(&path))?;
        if (meta.uid(), meta.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::lchown(&path, Some(owner.uid()), Some(owner.gid()))
                .map_err(failed(&path))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(failed(&path))? {
                pending.push(entry.map_err(failed(&path))?.path());
            }
        }
    }
    Ok(())
}

/// Start-up recovery: finishes interrupted recordings and deletions, and indexes again
/// every file that lost its entry.
///
/// Such a file is never a deletion (a deletion marks its entry `Deleting` before it
/// touches the file); it lost its entry to a damaged or deleted index, or to a crash
/// between creating the file and writing the entry. Left out of the index, it would
/// also be left out of retention: space retention would then delete the newest
/// recordings first and never the older, unindexed ones filling the disk.
pub fn recover(store: &Store, index: &Index) -> Result<Report, CheckError> {
    let mut report = finish_interrupted(store, index)?;
    let known: HashSet<RecordingId> = index.all_recordings()?.into_iter().map(|e| e.id).collect();
    for file in store.list_files()? {
        if !known.contains(&file.id) {
            adopt(store, index, &file, true, &mut report)?;
        }
    }
    prune_events(store, index, &mut report)?;
    extras::sweep(store, index, true, &mut report)?;
    index.flush()?;
    Ok(report)
}

/// Shreds every thumbnail and share copy whose event or link is gone ("delete
/// everything" must leave no picture behind, not even one a crash orphaned).
pub fn shred_orphaned_extras(store: &Store, index: &Index) -> Result<Report, CheckError> {
    let mut report = Report::default();
    extras::sweep(store, index, true, &mut report)?;
    index.flush()?;
    Ok(report)
}

mod adopt;
mod compare;
mod extras;
mod rebuild;
mod recovery;
mod removal;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod identity_tests;

#[cfg(test)]
mod fifo_tests;
