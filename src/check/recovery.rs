//! Start-up recovery of what a crash interrupted: recordings left `Open` are finished
//! from their files, deletions left `Deleting` are finished by shredding, events left
//! open are closed, and leftovers of an unfinished migration are removed.

use super::removal::{drop_entry, remove};
use super::{CheckError, Report};
use crate::error_chain::chain;
use crate::index::{Index, RecordingEntry, RecordingState};
use crate::store::{Store, StoreError};

/// Finishes interrupted recordings and deletions, and closes events a crash left open.
pub(super) fn finish_interrupted(store: &Store, index: &Index) -> Result<Report, CheckError> {
    let mut report = Report::default();
    for entry in index.all_recordings()? {
        match entry.state {
            RecordingState::Finished => {}
            RecordingState::Open => finish_open(store, index, entry, &mut report)?,
            RecordingState::Deleting => {
                let done = format!(
                    "finished the interrupted deletion of recording {}",
                    entry.id
                );
                remove(store, index, &entry, &mut report, done)?
            }
        }
    }
    close_open_events(index, &mut report)?;
    match store.discard_migration_leftovers() {
        Ok(removed) => report.actions.extend(
            removed
                .iter()
                .map(|p| format!("removed {}, left by an unfinished migration", p.display())),
        ),
        Err(e) => report.findings.push(format!(
            "cannot look for leftover migration copies: {}",
            chain(&e)
        )),
    }
    index.flush()?;
    Ok(report)
}

/// An event still marked open after a crash ends where its last recording ends.
fn close_open_events(index: &Index, report: &mut Report) -> Result<(), CheckError> {
    for mut event in index.all_events()?.into_iter().filter(|e| e.open) {
        let mut end = event.start_micros;
        event
            .recordings
            .retain(|id| match index.get_recording(*id) {
                Ok(Some(r)) => {
                    end = end.max(r.end_micros);
                    true
                }
                _ => false,
            });
        event.end_micros = end.min(event.end_micros).max(event.start_micros);
        event.open = false;
        index.put_event(&event)?;
        report
            .actions
            .push(format!("closed event {} left open by a crash", event.id));
    }
    Ok(())
}

fn finish_open(
    store: &Store,
    index: &Index,
    mut entry: RecordingEntry,
    report: &mut Report,
) -> Result<(), CheckError> {
    let path = store.recording_path(&entry.camera, entry.id);
    if !path.exists() {
        drop_entry(store, index, &entry, report)?;
        report.actions.push(format!(
            "recording {} had no file (crash before its first write); entry removed",
            entry.id
        ));
        return Ok(());
    }
    // The daemon saw a write or sync fail and could not cut the file back then:
    // nothing past this length is known to be on the disk, however well it reads
    // back. Taken from the entry saved below; one left open keeps it for next time.
    let cut = match entry.durable_len.take() {
        Some(len) => store.cut_back(&entry.camera, entry.id, len),
        None => Ok(()),
    };
    match cut.and_then(|()| store.recover_and_describe(&entry.camera, entry.id)) {
        Err(StoreError::EmptyRecording { .. }) => remove_empty(store, index, &entry, report)?,
        Ok(file) => {
            let dropped = file.recovered_bytes_dropped;
            entry.end_micros = file.end_micros();
            entry.frames = file.frames;
            entry.bytes = file.file_len;
            entry.state = RecordingState::Finished;
            index.put_recording(&entry)?;
            report.actions.push(format!(
                "recording {} was interrupted; kept {} frames{}",
                entry.id,
                file.frames,
                if dropped > 0 {
                    format!(", dropped a torn tail of {dropped} bytes")
                } else {
                    String::new()
                }
            ));
        }
        // End-to-end: nothing here can authenticate its chunks or seal the final one.
        // Keep it as it is (a viewer still reads its complete chunks) and mark it
        // finished, so that retention can delete it in time instead of an "open"
        // recording holding its disk space for ever.
        Err(StoreError::EndToEnd { .. }) => {
            entry.bytes = std::fs::metadata(&path).map_or(entry.bytes, |m| m.len());
            entry.end_micros = entry.end_micros.max(entry.start_micros);
            entry.state = RecordingState::Finished;
            index.put_recording(&entry)?;
            report.actions.push(format!(
                "recording {} was interrupted; it is end-to-end encrypted, so it was kept \
                 as it is (it cannot be checked or closed without a viewer's key)",
                entry.id
            ));
        }
        // The operating system refused, or another master key is loaded: that may
        // pass, so the entry stays open and the next start tries again.
        Err(e @ (StoreError::Io { .. } | StoreError::KeyMismatch { .. })) => {
            report.findings.push(format!(
                "recording {} could not be recovered (tried again at the next start): {}",
                entry.id,
                chain(&e)
            ))
        }
        // Nothing in the file can be recovered as it is (its first chunk or its
        // header does not authenticate). The file is kept untouched for a person to
        // look at, and the entry is ended as it was indexed: an open entry would stay
        // open at every start, and retention or a person could never delete it.
        Err(e) => {
            entry.end_micros = entry.end_micros.max(entry.start_micros);
            entry.state = RecordingState::Finished;
            index.put_recording(&entry)?;
            report.findings.push(format!(
                "recording {} could not be recovered: {}; its file was left untouched and \
                 its entry marked finished, so that it can be deleted",
                entry.id,
                chain(&e)
            ));
        }
    }
    Ok(())
}

/// A recording a crash interrupted before any video reached its file: there is
/// nothing to keep, so the file and the entry go.
pub(super) fn remove_empty(
    store: &Store,
    index: &Index,
    entry: &RecordingEntry,
    report: &mut Report,
) -> Result<(), CheckError> {
    let done = format!(
        "recording {} was interrupted before any video was written; removed",
        entry.id
    );
    remove(store, index, entry, report, done)
}
