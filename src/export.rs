//! Reading recordings back: the `recordings` listing and `export` to a standard
//! moov-first MP4 (plays while downloading, needs no Porchlight to watch).
//!
//! Export decrypts through the store, which authenticates every chunk it touches: a
//! flipped byte, a reordered or missing chunk fails the export with a message naming
//! the recording and the chunk, and the partial output file is removed. The output
//! is written under a temporary name beside `--out` and moved there once complete,
//! so an interrupted export never leaves a short file that looks whole.

use std::fmt;
use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::Config;
use crate::e2e::{self, E2eError, Secret};
use crate::index::{Index, IndexError, RecordingEntry, RecordingState};
use crate::model::{CameraId, RecordingId, TIMESCALE};
use crate::store::e2e::ViewerSecret;
use crate::store::mp4::{Mp4Error, ProgressiveMp4, ReadAt, SampleRef, TrackParams};
use crate::store::{RecordingReader, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("recording {0} does not exist")]
    NoSuchRecording(RecordingId),
    /// Made while end-to-end encryption was on: the master key cannot open it.
    #[error("recording {0} is end-to-end encrypted; use --passphrase")]
    EndToEnd(RecordingId),
    #[error(transparent)]
    Unlock(#[from] E2eError),
    #[error("recording {0} is still being written or was interrupted; stop the daemon and run `porchlight check --repair` first")]
    NotFinished(RecordingId),
    #[error("camera {camera} has no video between {from} and {to}")]
    NothingInSpan {
        camera: CameraId,
        from: String,
        to: String,
    },
    #[error("recording {recording}: {source}")]
    Container {
        recording: RecordingId,
        #[source]
        source: Mp4Error,
    },
    #[error("recording {recording} has different video parameters from the ones before it (the camera changed resolution or codec); export the recordings separately")]
    MixedParameters { recording: RecordingId },
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

/// What to export.
pub enum Request {
    Recording(RecordingId),
    /// From the last keyframe at or before `from_micros` to the last frame before
    /// `to_micros`, across as many recordings as the span covers.
    Span {
        camera: CameraId,
        from_micros: i64,
        to_micros: i64,
    },
}

/// One line of `porchlight recordings` (also its `--json` form).
#[derive(Debug, Serialize)]
pub struct RecordingInfo {
    pub id: String,
    pub camera: String,
    pub start: String,
    pub end: String,
    pub frames: u64,
    pub bytes: u64,
    pub trigger: String,
    pub state: String,
}

impl From<&RecordingEntry> for RecordingInfo {
    fn from(e: &RecordingEntry) -> Self {
        RecordingInfo {
            id: e.id.to_string(),
            camera: e.camera.to_string(),
            start: rfc3339(e.start_micros),
            end: rfc3339(e.end_micros),
            frames: e.frames,
            bytes: e.bytes,
            trigger: e.trigger.to_string(),
            state: match e.state {
                RecordingState::Open => "open",
                RecordingState::Finished => "finished",
                RecordingState::Deleting => "deleting",
            }
            .into(),
        }
    }
}

/// Lists recordings (deleted ones excluded), by camera then start time.
pub fn list(config: &Config, camera: Option<&CameraId>) -> Result<Vec<RecordingInfo>, ExportError> {
    let index = Index::open(&Store::index_dir(&config.data_dir))?;
    Ok(index
        .all_recordings()?
        .iter()
        .filter(|e| e.state != RecordingState::Deleting)
        .filter(|e| camera.is_none_or(|c| &e.camera == c))
        .map(RecordingInfo::from)
        .collect())
}

/// What an export wrote.
pub struct ExportSummary {
    pub path: String,
    pub recordings: usize,
    pub frames: usize,
    pub bytes: u64,
}

impl fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} ({} frames from {} recording(s), {} bytes)",
            self.path, self.frames, self.recordings, self.bytes
        )
    }
}

/// Exports to `out`, which must not exist yet. With `secret` (a viewer's passphrase
/// or recovery key, unlocked at `now_micros` under the usual throttle) end-to-end
/// recordings can be exported too; without it they fail with
/// [`ExportError::EndToEnd`].
pub fn export(
    config: &Config,
    request: &Request,
    out: &Path,
    secret: Option<&Secret>,
    now_micros: i64,
) -> Result<ExportSummary, ExportError> {
    let store = Store::open(&config.data_dir, &config.key_dir)?;
    let index = Index::open(&Store::index_dir(&config.data_dir))?;
    let viewer = match secret {
        Some(s) => Some(Arc::new(e2e::unlock(&index, None, s, now_micros)?)),
        None => None,
    };
    export_as(&store, &index, request, out, viewer)
}

/// [`export`] with an already open store and index (a running daemon's).
pub fn export_with(
    store: &Store,
    index: &Index,
    request: &Request,
    out: &Path,
) -> Result<ExportSummary, ExportError> {
    export_as(store, index, request, out, None)
}

/// [`export_with`] as an unlocked viewer (end-to-end recordings open too).
pub fn export_as(
    store: &Store,
    index: &Index,
    request: &Request,
    out: &Path,
    viewer: Option<Arc<ViewerSecret>>,
) -> Result<ExportSummary, ExportError> {
    let planned = plan_as(store, index, request, viewer)?;
    let output_error = |source: std::io::Error| ExportError::Output {
        path: out.display().to_string(),
        source,
    };
    // Refused at once (not after the whole export) and never replaced.
    if fs::symlink_metadata(out).is_ok() {
        return Err(output_error(std::io::ErrorKind::AlreadyExists.into()));
    }
    // Written beside `--out` and moved there only once complete and durable: the MP4
    // is moov-first, so a file cut short (Ctrl-C, kill, power cut) would still
    // describe the whole span and play as if complete.
    let partial = Partial::create(out).map_err(output_error)?;
    let mut writer = BufWriter::new(&partial.file);
    planned
        .write_to(store, &mut writer)
        .and_then(|()| writer.flush().map_err(output_error))?;
    drop(writer);
    partial.file.sync_all().map_err(output_error)?;
    partial.persist(out).map_err(output_error)?;
    Ok(ExportSummary {
        path: out.display().to_string(),
        recordings: planned.used.len(),
        frames: planned.frames,
        bytes: planned.len(),
    })
}

/// The exports this process is writing, for [`exit_removing_partial_exports`]. Held
/// while a temporary file is created and listed, so that a signal never falls between
/// the two and leaves an unlisted file behind.
static PARTIALS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the files of the exports being written and ends the process with `code`,
/// for a signal handler (exiting skips destructors). The list stays locked until the
/// process is gone: an export creating its file meanwhile waits, and is never left
/// behind. Never blocks on a poisoned lock.
pub fn exit_removing_partial_exports(code: i32) -> ! {
    let partials = PARTIALS.lock().unwrap_or_else(|p| p.into_inner());
    for path in partials.iter() {
        let _ = fs::remove_file(path);
    }
    std::process::exit(code)
}

/// An export being written: `.NAME.partial-RANDOM` beside `--out` (hidden, and never
/// mistaken for the output), removed when dropped unless persisted.
struct Partial {
    path: PathBuf,
    file: fs::File,
}

impl Partial {
    fn create(out: &Path) -> std::io::Result<Partial> {
        let name = out
            .file_name()
            .ok_or_else(|| std::io::Error::other("the output path names no file"))?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(std::io::Error::other)?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(name);
        partial_name.push(format!(".partial-{suffix}"));
        let path = out.with_file_name(partial_name);
        let mut partials = PARTIALS.lock().unwrap_or_else(|p| p.into_inner());
        // 0600: the export is decrypted video, readable by whoever ran the export
        // alone (the umask could only take more away).
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        partials.push(path.clone());
        Ok(Partial { path, file })
    }

    /// Moves the finished file to `out` unless something is there by now (never
    /// replaced), and makes the move durable.
    fn persist(self, out: &Path) -> std::io::Result<()> {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        use rustix::io::Errno;
        match renameat_with(CWD, &self.path, CWD, out, RenameFlags::NOREPLACE) {
            Ok(()) => {}
            // A filesystem without no-replace renames: a hard link refuses to replace
            // too, then the temporary name goes (dropping `self` removes it).
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => fs::hard_link(&self.path, out)?,
            Err(e) => return Err(e.into()),
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::File::open(dir)?.sync_all()
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // Gone already once renamed into place.
        let _ = fs::remove_file(&self.path);
        PARTIALS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| p != &self.path);
    }
}

/// An export laid out but not yet written: its length is known before a byte is
/// written (an archive entry needs it up front), and writing decrypts the payload
/// from the sealed files as it goes, so memory stays bounded whatever the size.
pub struct Planned {
    mp4: ProgressiveMp4,
    used: Vec<RecordingEntry>,
    frames: usize,
    /// The unlocked viewer end-to-end recordings are opened with, if any.
    viewer: Option<Arc<ViewerSecret>>,
}

/// Opens a recording with the master key, or as `viewer` when there is one; an
/// end-to-end recording without a viewer is [`ExportError::EndToEnd`].
fn open(
    store: &Store,
    entry: &RecordingEntry,
    viewer: Option<&ViewerSecret>,
) -> Result<RecordingReader, ExportError> {
    let opened = match viewer {
        Some(v) if entry.state == RecordingState::Finished => {
            store.open_finished_as(&entry.camera, entry.id, v)
        }
        Some(v) => store.open_recording_as(&entry.camera, entry.id, v),
        None => store.open_recording(&entry.camera, entry.id),
    };
    opened.map_err(|e| match e {
        StoreError::EndToEnd { .. } => ExportError::EndToEnd(entry.id),
        other => other.into(),
    })
}

impl Planned {
    /// The MP4's length in bytes.
    pub fn len(&self) -> u64 {
        self.mp4.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mp4.is_empty()
    }

    /// Writes the whole MP4 to `out`. A chunk that fails authentication fails the
    /// write with the recording's id and the chunk.
    pub fn write_to(&self, store: &Store, out: &mut impl Write) -> Result<(), ExportError> {
        let first = self.used.first().map(|e| e.id).unwrap_or(RecordingId(0));
        let mut readers = Vec::with_capacity(self.used.len());
        for e in &self.used {
            readers.push(open(store, e, self.viewer.as_deref())?);
        }
        self.mp4
            .write_to(
                &mut |source: u32, offset: u64, buf: &mut [u8]| {
                    let reader = readers
                        .get_mut(source as usize)
                        .ok_or_else(|| std::io::Error::other("bad source index"))?;
                    reader.read_exact_at(offset, buf)
                },
                out,
            )
            .map_err(|source| {
                let recording = match &source {
                    Mp4Error::ReadSource { source_id, .. } => {
                        self.used.get(*source_id as usize).map_or(first, |e| e.id)
                    }
                    _ => first,
                };
                ExportError::Container { recording, source }
            })
    }
}

/// The frames a request covers: which recordings, and which of their samples (each
/// [`SampleRef::source`] indexes `used`), all with one set of track parameters.
pub struct Selection {
    pub track: TrackParams,
    pub used: Vec<RecordingEntry>,
    pub samples: Vec<SampleRef>,
}

/// Lays out what `request` asks for (reading only the recordings' sample tables).
pub fn plan(store: &Store, index: &Index, request: &Request) -> Result<Planned, ExportError> {
    plan_as(store, index, request, None)
}

/// [`plan`] as an unlocked viewer: end-to-end recordings open too.
pub fn plan_as(
    store: &Store,
    index: &Index,
    request: &Request,
    viewer: Option<Arc<ViewerSecret>>,
) -> Result<Planned, ExportError> {
    let Selection {
        track,
        used,
        samples,
    } = select(store, index, request, viewer.as_deref())?;
    let first = used.first().map(|e| e.id).unwrap_or(RecordingId(0));
    let tracks = vec![track; used.len()];
    let mp4 = ProgressiveMp4::new(&tracks, &samples).map_err(|source| ExportError::Container {
        recording: first,
        source,
    })?;
    Ok(Planned {
        mp4,
        frames: samples.len(),
        used,
        viewer,
    })
}

/// Chooses the recordings and samples `request` covers (reading only sample tables),
/// opening end-to-end recordings as `viewer` when there is one. Also what a share
/// link of an event copies.
pub fn select(
    store: &Store,
    index: &Index,
    request: &Request,
    viewer: Option<&ViewerSecret>,
) -> Result<Selection, ExportError> {
    let entries = match request {
        Request::Recording(id) => {
            let entry = index
                .get_recording(*id)?
                .ok_or(ExportError::NoSuchRecording(*id))?;
            vec![entry]
        }
        Request::Span {
            camera,
            from_micros,
            to_micros,
        } => index.camera_recordings(camera, *from_micros, *to_micros)?,
    };
    let mut tracks: Vec<TrackParams> = Vec::new();
    let mut samples: Vec<SampleRef> = Vec::new();
    let mut used: Vec<RecordingEntry> = Vec::new();
    for entry in entries {
        match entry.state {
            RecordingState::Finished => {}
            RecordingState::Deleting => continue,
            RecordingState::Open => match request {
                Request::Recording(id) => return Err(ExportError::NotFinished(*id)),
                Request::Span { .. } => continue,
            },
        }
        let mut reader = open(store, &entry, viewer)?;
        let parsed = reader.parse().map_err(|source| ExportError::Container {
            recording: entry.id,
            source,
        })?;
        let mut chosen: Vec<SampleRef> = match request {
            Request::Recording(_) => parsed.samples,
            Request::Span {
                from_micros,
                to_micros,
                ..
            } => select_span(
                &entry,
                &parsed.samples,
                *from_micros,
                *to_micros,
                samples.is_empty(),
            ),
        };
        if chosen.is_empty() {
            continue;
        }
        if tracks.first().is_some_and(|t| *t != parsed.track) {
            return Err(ExportError::MixedParameters {
                recording: entry.id,
            });
        }
        tracks.push(parsed.track);
        let source = used.len() as u32;
        for s in &mut chosen {
            s.source = source;
        }
        samples.extend(chosen);
        used.push(entry);
    }
    if tracks.is_empty() {
        return Err(match request {
            Request::Recording(id) => ExportError::NotFinished(*id),
            Request::Span {
                camera,
                from_micros,
                to_micros,
            } => ExportError::NothingInSpan {
                camera: camera.clone(),
                from: rfc3339(*from_micros),
                to: rfc3339(*to_micros),
            },
        });
    }
    // Decode times restart in each recording; whoever lays the samples out makes one
    // timeline of them.
    let track = tracks.swap_remove(0);
    Ok(Selection {
        track,
        used,
        samples,
    })
}

/// The samples of one recording inside `[from, to)`. The first recording of a span
/// starts at the keyframe at or before `from`, so the export decodes from frame one.
fn select_span(
    entry: &RecordingEntry,
    samples: &[SampleRef],
    from: i64,
    to: i64,
    first_recording: bool,
) -> Vec<SampleRef> {
    let time = |s: &SampleRef| {
        entry.start_micros + (s.decode_time * 1_000_000 / u64::from(TIMESCALE)) as i64
    };
    let end = samples
        .iter()
        .position(|s| time(s) >= to)
        .unwrap_or(samples.len());
    let start = if first_recording {
        samples[..end]
            .iter()
            .rposition(|s| s.is_sync && time(s) <= from)
            .or_else(|| samples[..end].iter().position(|s| s.is_sync))
            .unwrap_or(end)
    } else {
        0
    };
    samples[start..end].to_vec()
}
