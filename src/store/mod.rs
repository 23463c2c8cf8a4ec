//! The recording store: where recordings live on disk and how they are sealed.
//!
//! Layout under the data directory:
//! ```text
//! recordings/<camera>/<recording id>.plr   one sealed recording (format.rs)
//! thumbnails/<camera>/<event id>.plt       an event's JPEG, sealed the same way
//! shares/<link id>.plr                     a share link's copy, sealed under the link (share.rs)
//! viewers/<viewer id>.plv                  a locked end-to-end viewer key (viewer_file.rs)
//! index/                                   the sled index (owned by `index`)
//! ```
//! and `master.key` in the key directory (crypto.rs), which may be on another disk,
//! with the `e2e-tags-v1` marker beside it (e2e_tag.rs), and `master.key.rotating`
//! only while a key rotation is unfinished. The key directory is looked up by path
//! once per use (key_dir.rs): opened, checked on its descriptor, and every file in it
//! opened, linked, renamed or removed relative to that descriptor, so a directory
//! swapped in after the check is never used.
//!
//! Inside the sealing, a recording is fragmented MP4 (mp4/). Each file is
//! self-describing — id, camera, start, trigger and wrapped data key are in its
//! authenticated header — so the index can always be rebuilt from the files.
//!
//! This module knows nothing of cameras' sockets, the index or HTTP; it takes and
//! returns plain values. All of it is blocking file I/O: call it from a blocking
//! thread. Submodules: `crypto` (the only key holder, with its sibling `e2e` for
//! end-to-end mode's viewer keys), `format` (the byte layout),
//! `writer`, `reader`, `recover` (torn tails, shredding), `rotate` (master-key
//! rotation: re-wrapping data keys in place), `key_dir` (the key directory's
//! handle), `mp4` (the container), `usage` (sizes on disk, for retention's cap).

#[cfg(test)]
mod bench;
pub mod crypto;
pub mod e2e;
mod e2e_tag;
pub mod error;
pub mod format;
mod identity;
mod key_dir;
mod migrate;
pub mod mp4;
pub mod reader;
pub mod recover;
mod regular;
pub mod rotate;
mod share;
mod thumbnails;
mod usage;
mod viewer_file;
pub mod writer;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub use error::StoreError;
pub use migrate::Migrated;
pub use rotate::{KeyRotation, Rewrap, Rewrapped};
pub use share::Clip;
pub use viewer_file::{Relocked, SavedViewer};
pub use writer::{FinishedFile, SealedWriter as RecordingWriter};

use crate::index::{RecordingEntry, RecordingState};
use crate::model::{CameraId, EventId, RecordingId, Trigger, TIMESCALE};
use crypto::{KeyId, MasterKey};
use e2e::{ViewerPublicKey, ViewerSecret};
use format::{HeaderFields, KeySlot, Tail};
use key_dir::KeyDir;
use reader::SealedReader;

const RECORDINGS_DIR: &str = "recordings";
const THUMBNAILS_DIR: &str = "thumbnails";
const SHARES_DIR: &str = "shares";
const VIEWERS_DIR: &str = "viewers";
const THUMBNAIL_EXTENSION: &str = "plt";
const INDEX_DIR: &str = "index";
const EXTENSION: &str = "plr";

/// What the recorder knows when it opens a recording.
#[derive(Clone, Debug)]
pub struct NewRecording {
    pub id: RecordingId,
    pub camera: CameraId,
    pub start_micros: i64,
    pub trigger: Trigger,
}

/// A recording file found on disk, named `<camera>/<id>.plr`.
#[derive(Clone, Debug)]
pub struct RecordingFile {
    pub camera: CameraId,
    pub id: RecordingId,
}

/// What a file's header says about whether it can be read with the loaded key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    Readable,
    /// Its key block is zeroed: a deletion got that far, nothing in it is readable.
    Shredded,
    /// Not readable with this master key, or not a recording: leave it alone.
    Foreign(String),
    /// End-to-end encrypted: sealed to viewers, so only its header can be read here.
    /// It carries what that header says, from the very bytes whose tag was checked:
    /// whoever indexes the file indexes this, never a second read of the path, which
    /// a file swapped in between (a forgery) would answer.
    EndToEnd(Box<DescribedFile>),
    /// Shorter than a whole header (a power cut while it was being created): it
    /// cannot hold any video. See [`Store::status`] for the exact rule.
    TornHeader,
    /// Its header names another recording than its file name: a whole file copied or
    /// moved over this name. It authenticates by itself, so only the name tells; it
    /// holds recording `id` of camera `camera` (as its header spells them).
    Misnamed {
        id: RecordingId,
        camera: String,
    },
}

/// A recording as described by its file alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedFile {
    pub id: RecordingId,
    pub camera: CameraId,
    pub start_micros: i64,
    pub trigger: Trigger,
    pub wrapped_key: String,
    pub frames: u64,
    pub duration_ticks: u64,
    pub file_len: u64,
    /// Bytes a recovery cut from a torn tail (0 for a file that was finished).
    pub recovered_bytes_dropped: u64,
}

impl DescribedFile {
    pub fn end_micros(&self) -> i64 {
        self.start_micros + (self.duration_ticks * 1_000_000 / u64::from(TIMESCALE)) as i64
    }

    pub fn to_entry(&self) -> RecordingEntry {
        RecordingEntry {
            id: self.id,
            camera: self.camera.clone(),
            start_micros: self.start_micros,
            end_micros: self.end_micros(),
            frames: self.frames,
            bytes: self.file_len,
            trigger: self.trigger,
            wrapped_key: self.wrapped_key.clone(),
            state: RecordingState::Finished,
            durable_len: None,
        }
    }
}

/// A finished recording opened for reading: decrypts only the chunks a read touches.
pub struct RecordingReader {
    inner: SealedReader,
}

impl RecordingReader {
    /// The sample table of the fMP4 inside, without reading sample data.
    pub fn parse(&mut self) -> Result<mp4::FragmentedIndex, mp4::Mp4Error> {
        mp4::parse_fragmented(self)
    }
}

impl mp4::ReadAt for RecordingReader {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf).map_err(io::Error::other)
    }

    fn len(&self) -> u64 {
        self.inner.plaintext_len()
    }
}

/// A file beside the recordings that holds picture content too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extra {
    Thumbnail(CameraId, EventId),
    ShareCopy(u64),
}

pub struct Store {
    recordings: PathBuf,
    thumbnails: PathBuf,
    shares: PathBuf,
    viewers: PathBuf,
    /// The key directory the master key was loaded from, kept (opened and checked)
    /// while the key still accepts untagged end-to-end files, so that
    /// [`tag_untagged_e2e_files`](Self::tag_untagged_e2e_files) writes the marker
    /// beside that key, not in whatever `key_dir` names by then. Dropped once the
    /// marker is there (or was at load): the descriptor would keep a key disk
    /// mounted for as long as the daemon runs.
    key_dir: std::sync::Mutex<Option<KeyDir>>,
    master: MasterKey,
    /// End-to-end mode's viewers: while not empty, new recordings are sealed to
    /// them instead of wrapped by the master key. Set by whoever owns that state
    /// (the daemon, from the index), never read from disk here.
    recipients: RwLock<Vec<ViewerPublicKey>>,
    /// Counts changes of `recipients`, so a recording open across one can roll over.
    recipients_generation: std::sync::atomic::AtomicU64,
    /// Held by the one migration to the master key that may run ([`Store::one_migration`]).
    migration: std::sync::Mutex<()>,
}

impl Store {
    /// Opens the store, creating the master key at first start (the daemon).
    pub fn open_or_create(data_dir: &Path, key_dir: &Path) -> Result<Store, StoreError> {
        let (master, key_dir) = MasterKey::load_or_create_in(key_dir)?;
        Self::with_key(data_dir, key_dir, master)
    }

    /// Opens the store with an existing master key (maintenance commands never create
    /// one: a missing key must be an error, not a fresh key that reads nothing).
    pub fn open(data_dir: &Path, key_dir: &Path) -> Result<Store, StoreError> {
        let key_dir = KeyDir::open(key_dir)?;
        let master = MasterKey::load_in(&key_dir)?;
        Self::with_key(data_dir, key_dir, master)
    }

    /// The first sealed file found in `data_dir` (a recording, thumbnail or share
    /// copy), read without a key. The daemon asks this before it creates a master
    /// key: a key is created only for a data directory that holds nothing sealed,
    /// since a fresh key would silently open none of it (see `daemon::master_key`).
    pub fn first_sealed_file(data_dir: &Path) -> Result<Option<PathBuf>, StoreError> {
        let places = [
            (data_dir.join(RECORDINGS_DIR), true, EXTENSION),
            (data_dir.join(THUMBNAILS_DIR), true, THUMBNAIL_EXTENSION),
            (data_dir.join(SHARES_DIR), false, EXTENSION),
        ];
        for (top, per_camera, extension) in places {
            if !top.is_dir() {
                continue;
            }
            let dirs = if per_camera {
                read_dir(&top)?.into_iter().filter(|d| d.is_dir()).collect()
            } else {
                vec![top]
            };
            for dir in dirs {
                let found = read_dir(&dir)?
                    .into_iter()
                    .find(|f| f.extension().and_then(|e| e.to_str()) == Some(extension));
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }

    fn with_key(data_dir: &Path, key_dir: KeyDir, master: MasterKey) -> Result<Store, StoreError> {
        let key_dir = master.accepts_untagged_e2e().then_some(key_dir);
        let recordings = data_dir.join(RECORDINGS_DIR);
        let thumbnails = data_dir.join(THUMBNAILS_DIR);
        create_private_dir(&recordings)?;
        create_private_dir(&thumbnails)?;
        Ok(Store {
            recordings,
            thumbnails,
            shares: data_dir.join(SHARES_DIR),
            viewers: data_dir.join(VIEWERS_DIR),
            key_dir: std::sync::Mutex::new(key_dir),
            master,
            recipients: RwLock::new(Vec::new()),
            recipients_generation: Default::default(),
            migration: std::sync::Mutex::new(()),
        })
    }

    /// Where the index lives for a data directory.
    pub fn index_dir(data_dir: &Path) -> PathBuf {
        data_dir.join(INDEX_DIR)
    }

    pub fn key_id(&self) -> KeyId {
        self.master.id()
    }

    /// Seals a small secret under the master key (hex); see `MasterKey::seal_secret`.
    pub fn seal_secret(&self, purpose: &str, secret: &[u8]) -> Result<String, StoreError> {
        Ok(hex::encode(self.master.seal_secret(purpose, secret)?))
    }

    /// Opens a secret sealed by [`seal_secret`](Self::seal_secret).
    pub fn open_secret(
        &self,
        purpose: &str,
        sealed_hex: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        let sealed = hex::decode(sealed_hex).map_err(|_| StoreError::SecretUnseal {
            purpose: purpose.to_owned(),
        })?;
        self.master.open_secret(purpose, &sealed)
    }

    pub fn recording_path(&self, camera: &CameraId, id: RecordingId) -> PathBuf {
        self.recordings
            .join(camera.as_str())
            .join(format!("{id}.{EXTENSION}"))
    }

    /// Turns end-to-end mode on (a non-empty list) or off (empty) for recordings
    /// created from now on; recordings already written keep their key slot, and a
    /// recorder rolls its open recording over at the next keyframe (it watches
    /// [`Self::recipients_generation`]).
    pub fn set_recipients(&self, recipients: Vec<ViewerPublicKey>) -> Result<(), StoreError> {
        if recipients.len() > e2e::MAX_RECIPIENTS {
            return Err(StoreError::InvalidArgument {
                field: "recipients",
                reason: format!(
                    "{} viewers, at most {}",
                    recipients.len(),
                    e2e::MAX_RECIPIENTS
                ),
            });
        }
        let mut current = self
            .recipients
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current != recipients {
            *current = recipients;
            self.recipients_generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    /// Saves (or replaces) a viewer key's file (see `viewer_file.rs`).
    pub fn save_viewer(&self, saved: &SavedViewer) -> Result<(), StoreError> {
        viewer_file::save(&self.viewers, saved)
    }

    /// Replaces a viewer key's file after a re-locking, with `commit` (the index
    /// row) as the commit point in between (see `viewer_file::replace`).
    pub fn replace_viewer<E: From<StoreError>>(
        &self,
        saved: &SavedViewer,
        retired: Relocked,
        commit: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        viewer_file::replace(&self.viewers, saved, retired, commit)
    }

    /// Rolls an interrupted re-locking forward if `committed` (see
    /// `viewer_file::settle`), else back.
    pub fn settle_viewer_changes(
        &self,
        committed: impl Fn(&SavedViewer) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        viewer_file::settle(&self.viewers, committed)
    }

    /// Overwrites and removes a viewer key's file; missing counts as done.
    pub fn remove_viewer(&self, viewer: e2e::ViewerId) -> Result<(), StoreError> {
        viewer_file::remove(&self.viewers, viewer)
    }

    /// Every readable viewer key file (unreadable ones are logged and skipped).
    pub fn saved_viewers(&self) -> Result<Vec<SavedViewer>, StoreError> {
        viewer_file::list(&self.viewers)
    }

    /// Changes with every change of the viewers new recordings are sealed to; a
    /// recorder compares it with what its open recording was created under.
    pub fn recipients_generation(&self) -> u64 {
        self.recipients_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The viewers new recordings are sealed to (empty: end-to-end mode is off).
    pub fn recipients(&self) -> Vec<ViewerPublicKey> {
        self.recipients
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Creates a recording file (header written and fsynced with its directory) and
    /// returns its writer and its key slot (hex) for the index: the master-wrapped
    /// data key, or in end-to-end mode the data key sealed to each viewer.
    pub fn create_recording(
        &self,
        new: &NewRecording,
    ) -> Result<(RecordingWriter, String), StoreError> {
        let dir = self.recordings.join(new.camera.as_str());
        create_private_dir(&dir)?;
        let fields = HeaderFields::new(
            new.id.0,
            new.camera.as_str(),
            new.start_micros,
            new.trigger.as_str(),
        );
        let path = self.recording_path(&new.camera, new.id);
        let recipients = self.recipients();
        if recipients.is_empty() {
            let (writer, wrapped) = RecordingWriter::create(&path, &fields, &self.master)?;
            return Ok((writer, hex::encode(wrapped.as_bytes())));
        }
        let (writer, slots) =
            RecordingWriter::create_sealed_to(&path, &fields, &recipients, &self.master)?;
        Ok((writer, KeySlot::Recipients(slots).to_hex()))
    }

    /// Opens a finished recording of either kind: with the master key, or an
    /// end-to-end one with the unlocked `viewer`.
    pub fn open_recording_as(
        &self,
        camera: &CameraId,
        id: RecordingId,
        viewer: &ViewerSecret,
    ) -> Result<RecordingReader, StoreError> {
        let path = self.recording_path(camera, id);
        let inner = self.open_checked(&path, camera, id.0, Some(viewer))?;
        Ok(RecordingReader { inner })
    }

    /// Opens the finished file at `path` (a recording or a thumbnail, whose header
    /// must name `camera` and `id`) with the master key, or an end-to-end one with
    /// `viewer`.
    fn open_checked(
        &self,
        path: &Path,
        camera: &CameraId,
        id: u64,
        viewer: Option<&ViewerSecret>,
    ) -> Result<SealedReader, StoreError> {
        let inner = SealedReader::open_with(path, &self.master, viewer)?;
        check_identity(&inner, camera, id)?;
        inner.verify_complete()?;
        Ok(inner)
    }

    /// Opens a recording the index has as *finished* as `viewer`. An end-to-end one
    /// that a crash left without its final chunk (start-up recovery has no key to seal
    /// it, so it only marks the entry finished) is closed here first, keeping every
    /// chunk that verifies, exactly as start-up does for other recordings. Never call
    /// it for an open recording: its file is still being written.
    pub fn open_finished_as(
        &self,
        camera: &CameraId,
        id: RecordingId,
        viewer: &ViewerSecret,
    ) -> Result<RecordingReader, StoreError> {
        match self.open_recording_as(camera, id, viewer) {
            Err(StoreError::Truncated { .. }) => {
                let path = self.recording_path(camera, id);
                let report = recover::recover_as(&path, &self.master, Some(viewer))?;
                tracing::warn!(camera = %camera, recording = %id, chunks_kept = report.chunks_kept, chunks_dropped = report.chunks_dropped, "closed an end-to-end recording a crash had left unfinished");
                self.open_recording_as(camera, id, viewer)
            }
            other => other,
        }
    }

    /// Whether a recording's file is end-to-end encrypted (reads its header only).
    pub fn is_end_to_end(&self, camera: &CameraId, id: RecordingId) -> Result<bool, StoreError> {
        end_to_end_at(&self.recording_path(camera, id))
    }

    /// Opens a finished recording; an unfinished (torn) one is refused with a
    /// `Truncated` error that says to run recovery.
    pub fn open_recording(
        &self,
        camera: &CameraId,
        id: RecordingId,
    ) -> Result<RecordingReader, StoreError> {
        let inner = self.open_checked(&self.recording_path(camera, id), camera, id.0, None)?;
        Ok(RecordingReader { inner })
    }

    /// Every `<camera>/<id>.plr` file. Anything else in the directory is ignored.
    pub fn list_files(&self) -> Result<Vec<RecordingFile>, StoreError> {
        let mut files = Vec::new();
        for camera_dir in read_dir(&self.recordings)? {
            let Some(camera) = camera_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<CameraId>().ok())
            else {
                continue;
            };
            if !camera_dir.is_dir() {
                continue;
            }
            for file in read_dir(&camera_dir)? {
                if file.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                    continue;
                }
                if let Some(id) = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse().ok())
                {
                    files.push(RecordingFile {
                        camera: camera.clone(),
                        id,
                    });
                }
            }
        }
        Ok(files)
    }

    /// Classifies a file by its header alone, from one open and one read of that
    /// header. A file whose header does not parse is
    /// [`FileStatus::TornHeader`] if it is shorter than the shortest possible header
    /// (126 bytes), or if it starts with the recording magic and a known version and
    /// ends before the header length it declares; otherwise it is `Foreign`. One
    /// whose header names another recording than (`camera`, `id`) is
    /// [`FileStatus::Misnamed`], unless its key is already shredded.
    pub fn status(&self, camera: &CameraId, id: RecordingId) -> FileStatus {
        let path = &self.recording_path(camera, id);
        let file = match regular::open_regular_read(path, "open") {
            Ok(file) => file,
            Err(e) => return FileStatus::Foreign(e.to_string()),
        };
        let (header, raw) = match format::read_header(&file, path) {
            Err(_) if ends_inside_its_header(&file, path) => return FileStatus::TornHeader,
            Err(e) => return FileStatus::Foreign(e.to_string()),
            Ok(read) => read,
        };
        if !header.key.is_shredded() && !names(&header.fields, camera, id.0) {
            return FileStatus::Misnamed {
                id: RecordingId(header.fields.recording_id),
                camera: header.fields.camera.clone(),
            };
        }
        match &header.key {
            key if key.is_shredded() => FileStatus::Shredded,
            KeySlot::Recipients(_) => {
                let described =
                    e2e_tag::check(path, &raw, header.fields.recording_id, &self.master).and_then(
                        |()| {
                            let meta = file
                                .metadata()
                                .map_err(|e| StoreError::io("stat", path, e))?;
                            described_from_header(path, &header, meta.len())
                        },
                    );
                match described {
                    Ok(described) => FileStatus::EndToEnd(Box::new(described)),
                    Err(e) => FileStatus::Foreign(e.to_string()),
                }
            }
            KeySlot::Master { key_id, .. } if *key_id != self.master.id() => {
                FileStatus::Foreign(format!(
                    "sealed with master key id {}, the loaded key is {}",
                    key_id,
                    self.master.id()
                ))
            }
            KeySlot::Master { .. } => FileStatus::Readable,
        }
    }

    /// What [`recover_and_describe`](Self::recover_and_describe) would repair in a
    /// file (`None`: it is finished and clean). Cheap: header, chunk prefixes and the
    /// empty final chunk are read; video chunks are not decrypted.
    pub fn needs_recovery(&self, path: &Path) -> Result<Option<String>, StoreError> {
        Ok(match SealedReader::open(path, &self.master) {
            Ok(reader) => match reader.tail() {
                Tail::AfterFinal { len, .. } => Some(format!("{len} bytes after its final chunk")),
                _ if reader.is_finished() => None,
                _ => Some("truncated (no final chunk)".into()),
            },
            // `open` authenticates only the final chunk: this is that one failing.
            Err(StoreError::ChunkAuthentication { .. }) => {
                Some("its final chunk does not authenticate".into())
            }
            Err(e) => return Err(e),
        })
    }

    /// Finishes a file if needed (keeping every chunk that authenticates: a torn
    /// tail, bytes after the final chunk or a damaged final chunk go) and describes it
    /// from its contents: what the index needs to know. One without a frame is
    /// [`StoreError::EmptyRecording`]. One whose header names another recording than
    /// (`camera`, `id`) is [`StoreError::WrongRecording`], refused before recovery
    /// touches it: indexed, it would be a second entry of the recording it holds.
    pub fn recover_and_describe(
        &self,
        camera: &CameraId,
        id: RecordingId,
    ) -> Result<DescribedFile, StoreError> {
        let path = &self.recording_path(camera, id);
        self.check_name(camera, id)?;
        let mut dropped = 0;
        let finished = match SealedReader::open(path, &self.master) {
            Ok(inner) if inner.is_finished() && inner.tail() == Tail::Clean => Some(inner),
            Ok(_) => None,
            // `open` authenticates only the final chunk, which recovery replaces.
            Err(StoreError::ChunkAuthentication { .. }) => None,
            Err(e) => return Err(e),
        };
        let inner = match finished {
            Some(inner) => inner,
            None => {
                let report = recover::recover(path, &self.master)?;
                dropped = report.bytes_dropped;
                tracing::info!(path = %path.display(), kept = report.chunks_kept, dropped = report.chunks_dropped, "recovered a torn recording");
                // Recovery rewrote the tail: read the file as it is now.
                SealedReader::open(path, &self.master)?
            }
        };
        // The header described below is this reader's, whatever the path holds now.
        check_identity(&inner, camera, id.0)?;
        if inner.plaintext_len() == 0 {
            return Err(StoreError::EmptyRecording { path: path.into() });
        }
        let header = inner.header().clone();
        let file_len = fs::metadata(path)
            .map_err(|e| StoreError::io("stat", path, e))?
            .len();
        let mut reader = RecordingReader { inner };
        let parsed = reader.parse().map_err(|e| StoreError::Container {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        // An init segment without a fragment holds no frame either: every caller
        // (start-up, repair, rebuild, a failed write's salvage) removes it alike.
        if parsed.samples.is_empty() {
            return Err(StoreError::EmptyRecording { path: path.into() });
        }
        Ok(DescribedFile {
            frames: parsed.samples.len() as u64,
            duration_ticks: parsed.samples.iter().map(|s| u64::from(s.duration)).sum(),
            recovered_bytes_dropped: dropped,
            ..described_from_header(path, &header, file_len)?
        })
    }

    /// Cuts a recording whose writer saw a write or sync fail back to the length of
    /// its last successful sync ([`RecordingWriter::synced_len`]), before
    /// [`recover_and_describe`](Self::recover_and_describe) closes it: what was
    /// written after it may read back from the page cache without being on the disk.
    /// A file whose header names another recording is refused, as there: the length
    /// is this recording's, and cutting another's file to it would destroy video.
    pub fn cut_back(&self, camera: &CameraId, id: RecordingId, len: u64) -> Result<(), StoreError> {
        self.check_name(camera, id)?;
        recover::cut_back(&self.recording_path(camera, id), len)
    }

    /// Every share copy on disk, by link id (none before the first share).
    pub fn list_share_copies(&self) -> Result<Vec<u64>, StoreError> {
        if !self.shares.exists() {
            return Ok(Vec::new());
        }
        Ok(read_dir(&self.shares)?
            .iter()
            .filter(|f| f.extension().and_then(|e| e.to_str()) == Some(EXTENSION))
            .filter_map(|f| u64::from_str_radix(f.file_stem()?.to_str()?, 16).ok())
            .collect())
    }

    /// Removes a thumbnail or share copy that [`recover::shred`] refuses (a damaged
    /// header): unlinked without overwriting its key slot. Missing counts as done.
    pub fn unlink_extra(&self, extra: Extra) -> Result<(), StoreError> {
        let path = match extra {
            Extra::Thumbnail(camera, event) => self.thumbnail_path(&camera, event),
            Extra::ShareCopy(link) => self.share_path(link),
        };
        match fs::remove_file(&path) {
            Ok(()) => writer::sync_parent_dir(&path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("unlink", &path, e)),
        }
    }

    /// Crypto-shreds a recording: zero its key block, unlink, fsync the directory.
    /// A missing file counts as done, so an interrupted deletion can be repeated.
    pub fn shred(&self, camera: &CameraId, id: RecordingId) -> Result<(), StoreError> {
        recover::shred(&self.recording_path(camera, id))
    }

    /// Removes a recording's file without overwriting its key slot: the last resort
    /// for a file [`shred`](Self::shred) refuses (its header no longer says where the
    /// key slot is), so that a deletion still ends. A missing file counts as done.
    pub fn unlink_recording(&self, camera: &CameraId, id: RecordingId) -> Result<(), StoreError> {
        let path = self.recording_path(camera, id);
        match fs::remove_file(&path) {
            Ok(()) => writer::sync_parent_dir(&path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("unlink", &path, e)),
        }
    }
}

/// Creates `dir` (and missing parents) readable by the owner only. Each directory
/// it creates is fsynced in its parent: a file fsynced inside a directory whose own
/// entry never reached the disk is lost with it at a power cut.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    let created: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::io("create directory", dir, e))?;
    // Outermost first, so each one's entry is durable before what it holds.
    for new_dir in created.iter().rev() {
        writer::sync_parent_dir(new_dir)?;
    }
    Ok(())
}

/// Whether `file` is too short to hold the header it would need (the rule is on
/// [`Store::status`]).
fn ends_inside_its_header(file: &fs::File, path: &Path) -> bool {
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    if len <= format::MIN_HEADER_LEN as u64 {
        return true;
    }
    let mut prefix = [0u8; format::HEADER_PREFIX_LEN];
    format::read_up_to(file, path, &mut prefix, 0)
        .and_then(|got| format::parse_header_prefix(path, &prefix[..got]))
        .is_ok_and(|header_len| len < header_len as u64)
}

/// Refuses a file whose header names another id or camera than its file name: each
/// file authenticates only itself, so a whole file copied over another one's name
/// would otherwise be served as that recording (or thumbnail).
fn check_identity(reader: &SealedReader, camera: &CameraId, id: u64) -> Result<(), StoreError> {
    identity::check_fields(&reader.header().fields, reader.path(), camera, id)
}

/// Whether a header names recording (or thumbnail) `id` of `camera`.
fn names(fields: &HeaderFields, camera: &CameraId, id: u64) -> bool {
    fields.recording_id == id && fields.camera == camera.as_str()
}

/// Whether the file at `path` (a recording or a thumbnail) is end-to-end encrypted
/// (reads its header only).
fn end_to_end_at(path: &Path) -> Result<bool, StoreError> {
    let file = regular::open_regular_read(path, "open")?;
    let (header, _) = format::read_header(&file, path)?;
    Ok(matches!(header.key, KeySlot::Recipients(_)))
}

/// A file or directory name parsed as `T` (a camera name, an id).
fn file_name_as<T: std::str::FromStr>(path: &Path) -> Option<T> {
    path.file_name()?.to_str()?.parse().ok()
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| StoreError::io("list", dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// What a recording's header says about it, with its frames and duration unknown
/// (0): the part of a [`DescribedFile`] that needs no key.
fn described_from_header(
    path: &Path,
    header: &format::RecordingHeader,
    file_len: u64,
) -> Result<DescribedFile, StoreError> {
    let camera = header
        .fields
        .camera
        .parse()
        .map_err(|e: crate::model::BadCameraName| StoreError::Container {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(DescribedFile {
        id: RecordingId(header.fields.recording_id),
        camera,
        start_micros: header.fields.start_unix_micros,
        trigger: header.fields.trigger.parse().unwrap_or(Trigger::Continuous),
        wrapped_key: header.key.to_hex(),
        frames: 0,
        duration_ticks: 0,
        file_len,
        recovered_bytes_dropped: 0,
    })
}

#[cfg(test)]
#[path = "e2e_file_tests.rs"]
mod e2e_file_tests;

#[cfg(test)]
#[path = "open_tests.rs"]
mod open_tests;
