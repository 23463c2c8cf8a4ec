//! Consistency between the index and the recording files, and start-up recovery.
//!
//! The files are the truth (each is self-describing); the index is a cache of them.
//! So: an `Open` entry left by a crash is finished from its file; a `Deleting` entry is
//! finished by shredding; an entry whose file is gone is dropped; a file without an
//! entry is indexed again — never deleted — unless its key block was already zeroed by
//! an interrupted deletion, in which case nothing in it is readable and it is removed.
//! A file sealed under a different master key is reported and left alone. A thumbnail
//! or share copy without its event or link is shredded (`check_extras.rs`).

use std::collections::HashMap;
use std::fmt;

use crate::config::Config;
use crate::error_chain::chain;
use crate::index::{EventEntry, Index, IndexError, RecordingEntry, RecordingState};
use crate::model::{CameraId, RecordingId};
use crate::store::{FileStatus, RecordingFile, Store, StoreError};

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

/// Opens the index to rebuild it. One that cannot be opened (damaged, or written by
/// another version) is what a rebuild is for: it is moved aside, kept for whoever
/// wants to look at it, and a new one is made. Only the recordings come back from
/// the files; what lived only in the index (accounts, events, share links, the
/// activity log) does not, and the report says so.
fn open_for_rebuild(index_dir: &std::path::Path) -> Result<(Index, Option<String>), CheckError> {
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
    let known: std::collections::HashSet<RecordingId> =
        index.all_recordings()?.into_iter().map(|e| e.id).collect();
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

/// Finishes interrupted recordings and deletions, and closes events a crash left open.
fn finish_interrupted(store: &Store, index: &Index) -> Result<Report, CheckError> {
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
fn remove_empty(
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

/// Shreds the file, then removes the entry (the same order as any deletion), and
/// reports `done`. A file that cannot be shredded does not stop recovery (nor the
/// daemon's start): see [`shred_or_unlink`]; only if its file cannot be removed at
/// all does the entry stay, as `Deleting`, for the next run.
fn remove(
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
fn drop_entry(
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
fn prune_events(store: &Store, index: &Index, report: &mut Report) -> Result<(), CheckError> {
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
fn shred_or_unlink(store: &Store, camera: &CameraId, id: RecordingId, report: &mut Report) -> bool {
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

fn compare(store: &Store, index: &Index, repair: bool) -> Result<Report, CheckError> {
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

/// Handles a file the index does not know.
fn adopt(
    store: &Store,
    index: &Index,
    file: &RecordingFile,
    repair: bool,
    report: &mut Report,
) -> Result<(), CheckError> {
    let path = store.recording_path(&file.camera, file.id);
    let status = store.status(&file.camera, file.id);
    #[cfg(test)]
    tests::between_status_and_indexing(&path);
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
fn misnamed(
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
fn remove_torn_header(store: &Store, file: &RecordingFile, report: &mut Report) {
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

/// Recreates the index from the files: every readable file gets its entry back,
/// entries without files are dropped. Interrupted deletions are finished first, as
/// at start-up: a file whose deletion began must not come back as a recording.
fn rebuild(store: &Store, index: &Index) -> Result<Report, CheckError> {
    // Not `recover`: every file is described again below, adopted or not.
    let mut report = finish_interrupted(store, index)?;
    // A deletion recovery could not finish keeps its entry and goes on pending.
    let pending: std::collections::HashSet<RecordingId> = index
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
        tests::between_status_and_indexing(&path);
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

#[path = "check_extras.rs"]
mod extras;

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "check_identity_tests.rs"]
mod identity_tests;

#[cfg(test)]
#[path = "check_fifo_tests.rs"]
mod fifo_tests;
