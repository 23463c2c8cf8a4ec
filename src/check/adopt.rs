//! Recording files the index does not know: indexed again from their headers, or
//! removed when nothing in them is readable, or reported and left for a person.

use super::removal::shred_or_unlink;
use super::{CheckError, Report};
use crate::error_chain::chain;
use crate::index::Index;
use crate::model::RecordingId;
use crate::store::{FileStatus, RecordingFile, Store, StoreError};

/// Handles a file the index does not know.
pub(super) fn adopt(
    store: &Store,
    index: &Index,
    file: &RecordingFile,
    repair: bool,
    report: &mut Report,
) -> Result<(), CheckError> {
    let path = store.recording_path(&file.camera, file.id);
    let status = store.status(&file.camera, file.id);
    #[cfg(test)]
    super::tests::between_status_and_indexing(&path);
    match status {
        FileStatus::Misnamed { id, camera } => {
            misnamed(store, file, &camera, id, repair, report);
        }
        FileStatus::Shredded => {
            if repair {
                if shred_or_unlink(store, &file.camera, file.id, report) {
                    report.actions.push(format!(
                        "removed {} (its key was already destroyed)",
                        path.display()
                    ));
                }
            } else {
                report.findings.push(format!(
                    "{} is a leftover of an interrupted deletion",
                    path.display()
                ));
            }
        }
        FileStatus::TornHeader if !repair => report.findings.push(format!(
            "{} is shorter than its header (cut short while it was created); --repair removes it",
            path.display()
        )),
        FileStatus::TornHeader => remove_torn_header(store, file, report),
        FileStatus::Foreign(why) => report
            .findings
            .push(format!("{}: {why}; left untouched", path.display())),
        FileStatus::EndToEnd(_) if !repair => report
            .findings
            .push(format!("{} has no index entry", path.display())),
        // Indexed from the header whose tag `status` checked, not from the path again.
        FileStatus::EndToEnd(described) => {
            index.put_recording(&described.to_entry())?;
            report.recordings += 1;
            report.actions.push(format!(
                "indexed end-to-end recording {} from its header (its length shows once a viewer opens it)",
                file.id
            ));
        }
        FileStatus::Readable => {
            if !repair {
                report
                    .findings
                    .push(format!("{} has no index entry", path.display()));
                return Ok(());
            }
            match store.recover_and_describe(&file.camera, file.id) {
                Err(StoreError::EmptyRecording { .. }) => {
                    if shred_or_unlink(store, &file.camera, file.id, report) {
                        report.actions.push(format!(
                            "removed {} (interrupted before any video was written)",
                            path.display()
                        ));
                    }
                }
                Ok(described) => {
                    index.put_recording(&described.to_entry())?;
                    report.recordings += 1;
                    report
                        .actions
                        .push(format!("indexed recording {} from its file", file.id));
                }
                Err(e) => report
                    .findings
                    .push(format!("{}: {}", path.display(), chain(&e))),
            }
        }
    }
    Ok(())
}

/// A file whose header names another recording (`holds_id` of `holds_camera`) than
/// its name: a whole file copied or moved over that name. It is never indexed: under
/// the id its header gives, it would be a second entry of that recording, pointing at
/// a file retention never deletes (so the recording could still be read after its
/// deletion). With `repair`, a stray copy (the recording it holds has its own file
/// under its own name, whole and at least as long: see [`Store::is_stray_copy`]) is
/// shredded: nothing is lost, and deleting that recording leaves no readable copy
/// behind. Anything else is left for a person, as it may be the only whole copy of
/// the recording it holds. Returns whether the file is gone.
pub(super) fn misnamed(
    store: &Store,
    file: &RecordingFile,
    holds_camera: &str,
    holds_id: RecordingId,
    repair: bool,
    report: &mut Report,
) -> bool {
    let path = store.recording_path(&file.camera, file.id);
    let what = format!(
        "{} holds recording {holds_id} of camera {holds_camera:?}, not recording {} of \
         camera {:?} as its name says",
        path.display(),
        file.id,
        file.camera.as_str()
    );
    let stray = store.is_stray_copy(&file.camera, file.id, holds_camera, holds_id);
    if !stray {
        report.findings.push(format!(
            "{what}; it was not indexed and is left untouched (move it back to its own \
             name, or delete it if that recording was deleted)"
        ));
        return false;
    }
    if !repair {
        report.findings.push(format!(
            "{what}; recording {holds_id} has its own file, so --repair shreds this copy"
        ));
        return false;
    }
    let gone = shred_or_unlink(store, &file.camera, file.id, report);
    if gone {
        report.actions.push(format!(
            "{what}; shredded it, a stray copy (recording {holds_id} has its own file)"
        ));
    }
    gone
}

/// A file without an index entry that a power cut left shorter than its header: it
/// never held video, so it goes (shredded if enough of its header is there).
pub(super) fn remove_torn_header(store: &Store, file: &RecordingFile, report: &mut Report) {
    if shred_or_unlink_quietly(store, file) {
        report.actions.push(format!(
            "removed {} (cut short while it was created; it held no video)",
            store.recording_path(&file.camera, file.id).display()
        ));
    } else {
        report.findings.push(format!(
            "{} is shorter than its header and could not be removed",
            store.recording_path(&file.camera, file.id).display()
        ));
    }
}

/// Like [`shred_or_unlink`] for a file expected to be unshreddable (a torn header
/// often has no key slot): no finding when unlinking it is enough.
fn shred_or_unlink_quietly(store: &Store, file: &RecordingFile) -> bool {
    store.shred(&file.camera, file.id).is_ok()
        || store.unlink_recording(&file.camera, file.id).is_ok()
}
