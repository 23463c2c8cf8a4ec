//! Removing recordings and the events that list them, in the order every deletion
//! follows (file shredded, then events, then the entry), so that a crash at any point
//! leaves something the next run finishes.

use super::{CheckError, Report};
use crate::error_chain::chain;
use crate::index::{EventEntry, Index, RecordingEntry, RecordingState};
use crate::model::{CameraId, RecordingId};
use crate::store::Store;

/// Shreds the file, then removes the entry (the same order as any deletion), and
/// reports `done`. A file that cannot be shredded does not stop recovery (nor the
/// daemon's start): see [`shred_or_unlink`]; only if its file cannot be removed at
/// all does the entry stay, as `Deleting`, for the next run.
pub(super) fn remove(
    store: &Store,
    index: &Index,
    entry: &RecordingEntry,
    report: &mut Report,
    done: String,
) -> Result<(), CheckError> {
    if !shred_or_unlink(store, &entry.camera, entry.id, report) {
        if entry.state != RecordingState::Deleting {
            let mut pending = entry.clone();
            pending.state = RecordingState::Deleting;
            pending.wrapped_key.clear();
            index.put_recording(&pending)?;
        }
        return Ok(());
    }
    drop_entry(store, index, entry, report)?;
    report.actions.push(done);
    Ok(())
}

/// Removes a recording's entry and drops the recording from its events; an event
/// left with no recording goes too, with its thumbnail: an event goes with its last
/// recording, whichever path finished the deletion (retention does the same). The
/// events first: a crash in between leaves the entry, and the deletion is finished
/// again at the next start, never an event listing a recording that is gone.
pub(super) fn drop_entry(
    store: &Store,
    index: &Index,
    entry: &RecordingEntry,
    report: &mut Report,
) -> Result<(), CheckError> {
    for mut event in index.events_of_recording(&entry.camera, entry.id)? {
        event.recordings.retain(|r| *r != entry.id);
        let why = format!("with its last recording {}", entry.id);
        save_or_remove_event(store, index, event, &why, report)?;
    }
    index.remove_recording(entry.id)?;
    Ok(())
}

/// Drops from every event the recordings the index no longer has. An older version
/// removed a recording's entry before updating its events, so a crash in between
/// left events listing recordings that are gone.
pub(super) fn prune_events(
    store: &Store,
    index: &Index,
    report: &mut Report,
) -> Result<(), CheckError> {
    let known: std::collections::HashSet<RecordingId> =
        index.all_recordings()?.into_iter().map(|e| e.id).collect();
    for mut event in index.all_events()? {
        let listed = event.recordings.len();
        event.recordings.retain(|r| known.contains(r));
        if event.recordings.len() < listed {
            report.actions.push(format!(
                "event {} listed {} recording(s) that are gone",
                event.id,
                listed - event.recordings.len()
            ));
            save_or_remove_event(store, index, event, "(its recordings are gone)", report)?;
        }
    }
    Ok(())
}

/// Saves `event` with its remaining recordings, or removes it (thumbnail first) if
/// none is left and it is finished.
fn save_or_remove_event(
    store: &Store,
    index: &Index,
    event: EventEntry,
    why: &str,
    report: &mut Report,
) -> Result<(), CheckError> {
    if !event.recordings.is_empty() || event.open {
        index.put_event(&event)?;
        return Ok(());
    }
    if event.has_thumbnail {
        if let Err(e) = store.shred_thumbnail(&event.camera, event.id) {
            // Kept (without recordings), so that deleting it tries again.
            report.findings.push(format!(
                "the thumbnail of event {} could not be shredded: {}; the event was kept",
                event.id,
                chain(&e)
            ));
            index.put_event(&event)?;
            return Ok(());
        }
    }
    index.remove_event(event.id)?;
    report
        .actions
        .push(format!("removed event {} {why}", event.id));
    Ok(())
}

/// Crypto-shreds a recording's file. One that cannot be shredded (its header no
/// longer parses, the disk refuses) is a finding, and its file is still unlinked if
/// it can be: its key slot may survive on the disk, but the deletion ends. Returns
/// whether the file is gone.
pub(super) fn shred_or_unlink(
    store: &Store,
    camera: &CameraId,
    id: RecordingId,
    report: &mut Report,
) -> bool {
    let Err(shred_error) = store.shred(camera, id) else {
        return true;
    };
    tracing::warn!(camera = %camera, recording = %id, "cannot shred a recording file: {}", chain(&shred_error));
    match store.unlink_recording(camera, id) {
        Ok(()) => {
            report.findings.push(format!(
                "recording {id} could not be shredded ({}); its file was removed without \
                 overwriting its key",
                chain(&shred_error)
            ));
            true
        }
        Err(e) => {
            tracing::error!(camera = %camera, recording = %id, "cannot remove a recording file: {}", chain(&e));
            report.findings.push(format!(
                "recording {id} could not be shredded ({}) nor removed ({}); its deletion \
                 stays pending",
                chain(&shred_error),
                chain(&e)
            ));
            false
        }
    }
}
