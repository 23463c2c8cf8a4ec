//! `check --rebuild-index`: a new index made from the recording files, the old one
//! moved aside if it cannot be opened.

use std::collections::HashSet;

use super::adopt::{misnamed, remove_torn_header};
use super::recovery::finish_interrupted;
use super::removal::{drop_entry, prune_events, shred_or_unlink};
use super::{extras, CheckError, Report};
use crate::error_chain::chain;
use crate::index::{Index, IndexError, RecordingState};
use crate::model::RecordingId;
use crate::store::{FileStatus, Store, StoreError};

/// Opens the index to rebuild it. One that cannot be opened (damaged, or written by
/// another version) is what a rebuild is for: it is moved aside, kept for whoever
/// wants to look at it, and a new one is made. Only the recordings come back from
/// the files; what lived only in the index (accounts, events, share links, the
/// activity log) does not, and the report says so.
pub(super) fn open_for_rebuild(
    index_dir: &std::path::Path,
) -> Result<(Index, Option<String>), CheckError> {
    let why = match Index::open(index_dir) {
        Ok(index) => return Ok((index, None)),
        Err(e @ IndexError::Locked { .. }) => return Err(e.into()),
        Err(e) => e,
    };
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = index_dir.with_file_name(format!("index.unreadable-{secs}"));
    std::fs::rename(index_dir, &aside).map_err(|source| CheckError::SetAside {
        path: index_dir.to_owned(),
        source,
    })?;
    let index = Index::open(index_dir)?;
    Ok((
        index,
        Some(format!(
            "the index could not be opened ({}); it was moved to {} and a new one made: \
             accounts, events, share links and the activity log were only in it, so the \
             next start asks for the owner's account again",
            chain(&why),
            aside.display()
        )),
    ))
}

/// Recreates the index from the files: every readable file gets its entry back,
/// entries without files are dropped. Interrupted deletions are finished first, as
/// at start-up: a file whose deletion began must not come back as a recording.
pub(super) fn rebuild(store: &Store, index: &Index) -> Result<Report, CheckError> {
    // Not `recover`: every file is described again below, adopted or not.
    let mut report = finish_interrupted(store, index)?;
    // A deletion recovery could not finish keeps its entry and goes on pending.
    let pending: HashSet<RecordingId> = index
        .all_recordings()?
        .into_iter()
        .filter(|e| e.state == RecordingState::Deleting)
        .map(|e| e.id)
        .collect();
    let mut kept = pending.clone();
    let files = store.list_files()?;
    for file in files.iter().filter(|f| !pending.contains(&f.id)) {
        let path = store.recording_path(&file.camera, file.id);
        let status = store.status(&file.camera, file.id);
        #[cfg(test)]
        super::tests::between_status_and_indexing(&path);
        match status {
            FileStatus::Misnamed { id, camera } => {
                misnamed(store, file, &camera, id, true, &mut report);
            }
            FileStatus::Readable => match store.recover_and_describe(&file.camera, file.id) {
                Err(StoreError::EmptyRecording { .. }) => {
                    if shred_or_unlink(store, &file.camera, file.id, &mut report) {
                        report.actions.push(format!(
                            "removed {} (interrupted before any video was written)",
                            path.display()
                        ));
                    }
                }
                Ok(described) => {
                    index.put_recording(&described.to_entry())?;
                    kept.insert(file.id);
                    report.recordings += 1;
                }
                Err(e) => report
                    .findings
                    .push(format!("{}: {}", path.display(), chain(&e))),
            },
            FileStatus::Shredded => {
                if shred_or_unlink(store, &file.camera, file.id, &mut report) {
                    report.actions.push(format!(
                        "removed {} (its key was already destroyed)",
                        path.display()
                    ));
                }
            }
            FileStatus::TornHeader => remove_torn_header(store, file, &mut report),
            FileStatus::Foreign(why) => report
                .findings
                .push(format!("{}: {why}; left untouched", path.display())),
            // Sealed to viewers: what its header says is all that can be known here.
            // (From the header whose tag `status` checked, not from the path again.)
            FileStatus::EndToEnd(described) => {
                index.put_recording(&described.to_entry())?;
                kept.insert(file.id);
                report.recordings += 1;
            }
        }
    }
    for entry in index.all_recordings()? {
        if !kept.contains(&entry.id) {
            drop_entry(store, index, &entry, &mut report)?;
        }
    }
    prune_events(store, index, &mut report)?;
    extras::sweep(store, index, true, &mut report)?;
    report
        .actions
        .push(format!("index rebuilt from {} file(s)", report.recordings));
    Ok(report)
}
