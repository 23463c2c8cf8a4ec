//! `check` and `check --repair`: the index compared with the recording files, each
//! mismatch reported or (with `repair`) resolved.

use std::collections::HashMap;

use super::adopt::{adopt, misnamed};
use super::recovery::remove_empty;
use super::removal::drop_entry;
use super::{extras, recover, CheckError, Report};
use crate::error_chain::chain;
use crate::index::{Index, RecordingEntry, RecordingState};
use crate::model::RecordingId;
use crate::store::{FileStatus, RecordingFile, Store, StoreError};

pub(super) fn compare(store: &Store, index: &Index, repair: bool) -> Result<Report, CheckError> {
    let mut report = if repair {
        recover(store, index)?
    } else {
        Report::default()
    };
    let entries: HashMap<RecordingId, RecordingEntry> = index
        .all_recordings()?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let files = store.list_files()?;
    let on_disk: HashMap<RecordingId, &RecordingFile> = files.iter().map(|f| (f.id, f)).collect();
    report.recordings = entries.len();

    for entry in entries.values() {
        match entry.state {
            RecordingState::Open => report.findings.push(format!(
                "recording {} was interrupted and is not finished",
                entry.id
            )),
            RecordingState::Deleting => report.findings.push(format!(
                "deletion of recording {} was interrupted",
                entry.id
            )),
            RecordingState::Finished => {}
        }
        if on_disk.contains_key(&entry.id) {
            if entry.state == RecordingState::Finished {
                check_finished_file(store, index, entry, repair, &mut report)?;
            }
        } else {
            if repair {
                drop_entry(store, index, entry, &mut report)?;
                report.actions.push(format!(
                    "removed the entry of recording {}: its file is gone",
                    entry.id
                ));
            } else {
                report.findings.push(format!(
                    "recording {} is indexed but its file is missing",
                    entry.id
                ));
            }
        }
    }
    // With `repair`, `recover` has already adopted (or reported) every such file.
    for file in files
        .iter()
        .filter(|f| !repair && !entries.contains_key(&f.id))
    {
        adopt(store, index, file, false, &mut report)?;
    }
    if !repair {
        extras::sweep(store, index, false, &mut report)?;
    }
    Ok(report)
}

/// A file the index calls finished must end with its final chunk and nothing after
/// it; one cut short or damaged later (a copy, a disk fault) is recovered up to its
/// last chunk that authenticates.
fn check_finished_file(
    store: &Store,
    index: &Index,
    entry: &RecordingEntry,
    repair: bool,
    report: &mut Report,
) -> Result<(), CheckError> {
    if let FileStatus::Misnamed { id, camera } = store.status(&entry.camera, entry.id) {
        let file = RecordingFile {
            camera: entry.camera.clone(),
            id: entry.id,
        };
        if misnamed(store, &file, &camera, id, repair, report) {
            drop_entry(store, index, entry, report)?;
        }
        return Ok(());
    }
    let path = store.recording_path(&entry.camera, entry.id);
    match store.needs_recovery(&path) {
        Ok(None) => {}
        // Cannot be checked without a viewer's key; its header was read fine.
        Err(StoreError::EndToEnd { .. }) => {}
        Ok(Some(_)) if repair => match store.recover_and_describe(&entry.camera, entry.id) {
            Err(StoreError::EmptyRecording { .. }) => remove_empty(store, index, entry, report)?,
            Ok(described) => {
                index.put_recording(&described.to_entry())?;
                report.actions.push(format!(
                    "recording {} was damaged or cut short; kept {} of {} frames",
                    entry.id, described.frames, entry.frames
                ));
            }
            Err(e) => report
                .findings
                .push(format!("recording {}: {}", entry.id, chain(&e))),
        },
        Ok(Some(problem)) => report.findings.push(format!(
            "recording {}: {problem}; --repair keeps it up to its last complete chunk",
            entry.id
        )),
        Err(e) => report
            .findings
            .push(format!("recording {}: {}", entry.id, chain(&e))),
    }
    Ok(())
}
