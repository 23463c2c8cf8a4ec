//! Share-link copies: `shares/<link id>.plr`, a recording (or an event's frames from
//! one or more recordings) re-sealed under a key derived from the link's secret
//! ([`MasterKey::for_share_link`]). The copy is a
//! whole file of its own, so unsharing deletes exactly it and deleting the original
//! leaves it alone.

use std::path::PathBuf;

use super::crypto::MasterKey;
use super::e2e::ViewerSecret;
use super::format::HeaderFields;
use super::mp4::{fragment, init_segment, Mp4Error, ReadAt, Sample, SampleRef, TrackParams};
use super::reader::SealedReader;
use super::{create_private_dir, recover, RecordingReader, RecordingWriter, Store, StoreError};
use crate::model::{CameraId, RecordingId};

const COPY_PIECE: usize = 256 * 1024;

/// Frames to copy out of recordings into one share copy.
pub struct Clip<'a> {
    pub camera: &'a CameraId,
    /// The recordings the samples come from: [`SampleRef::source`] indexes this.
    pub sources: &'a [RecordingId],
    /// Their (one) sample entry.
    pub track: &'a TrackParams,
    /// In play order; the first must be a sync sample.
    pub samples: &'a [SampleRef],
    /// Wall time of the first frame.
    pub start_micros: i64,
    /// Opens end-to-end sources (the sharer's unlocked key).
    pub viewer: Option<&'a ViewerSecret>,
}
/// Most frames in one fragment of a clip copied frame by frame (a fragment also ends
/// at every keyframe).
const SAMPLES_PER_FRAGMENT: usize = 300;

impl Store {
    pub fn share_path(&self, link: u64) -> PathBuf {
        self.shares
            .join(format!("{link:016x}.{}", super::EXTENSION))
    }

    /// Copies recording `id` into a new share file sealed under `key`; returns its
    /// size. A copy that fails half-way is removed.
    pub fn copy_for_share(
        &self,
        camera: &CameraId,
        id: RecordingId,
        link: u64,
        key: &MasterKey,
    ) -> Result<u64, StoreError> {
        self.copy_for_share_as(camera, id, link, key, None)
    }

    /// [`copy_for_share`](Self::copy_for_share) of an end-to-end recording, read
    /// with an unlocked `viewer`: the copy is sealed under the link's key as usual
    /// (the link's secret is what protects it, as for any share).
    pub fn copy_for_share_as(
        &self,
        camera: &CameraId,
        id: RecordingId,
        link: u64,
        key: &MasterKey,
        viewer: Option<&ViewerSecret>,
    ) -> Result<u64, StoreError> {
        create_private_dir(&self.shares)?;
        let mut source = match viewer {
            Some(v) => self.open_recording_as(camera, id, v)?,
            None => self.open_recording(camera, id)?,
        };
        let start = source.inner.header().fields.start_unix_micros;
        let path = self.share_path(link);
        let fields = HeaderFields::new(link, camera.as_str(), start, "share");
        let (mut writer, _) = RecordingWriter::create(&path, &fields, key)?;
        let copied = copy_plaintext(&mut source, &mut writer).and_then(|()| writer.finish());
        match copied {
            Ok(finished) => Ok(finished.file_len),
            Err(e) => {
                if let Err(rm) = recover::shred(&path) {
                    tracing::warn!(path = %path.display(), "cannot remove a failed share copy: {rm}");
                }
                Err(e)
            }
        }
    }

    /// Writes a new share file sealed under `key` holding `clip`'s frames as one
    /// recording: the sources' own sample entry, their frames in order on one
    /// timeline, so the copy plays from its first frame to its last like any recording.
    /// This is how an event that spans several recordings becomes one clip. The frames
    /// are copied, never re-encoded; the clip must start with a sync sample. Returns the
    /// file's size; a copy that fails half-way is removed.
    pub fn copy_clip_for_share(
        &self,
        clip: &Clip<'_>,
        link: u64,
        key: &MasterKey,
    ) -> Result<u64, StoreError> {
        if !clip.samples.first().is_some_and(|s| s.is_sync) {
            return Err(StoreError::Mp4(
                "a shared clip must start with a keyframe".into(),
            ));
        }
        create_private_dir(&self.shares)?;
        let path = self.share_path(link);
        let fields = HeaderFields::new(link, clip.camera.as_str(), clip.start_micros, "share");
        let (mut writer, _) = RecordingWriter::create(&path, &fields, key)?;
        let copied = self
            .copy_samples(clip, &mut writer)
            .and_then(|()| writer.finish());
        match copied {
            Ok(finished) => Ok(finished.file_len),
            Err(e) => {
                if let Err(rm) = recover::shred(&path) {
                    tracing::warn!(path = %path.display(), "cannot remove a failed share copy: {rm}");
                }
                Err(e)
            }
        }
    }

    fn copy_samples(
        &self,
        clip: &Clip<'_>,
        writer: &mut RecordingWriter,
    ) -> Result<(), StoreError> {
        let mp4_error = |e: Mp4Error| StoreError::Mp4(e.to_string());
        writer.write_all(&init_segment(clip.track).map_err(mp4_error)?)?;
        let mut readers = Vec::with_capacity(clip.sources.len());
        for id in clip.sources {
            readers.push(match clip.viewer {
                Some(v) => self.open_recording_as(clip.camera, *id, v)?,
                None => self.open_recording(clip.camera, *id)?,
            });
        }
        let (mut sequence, mut decode_time) = (1u32, 0u64);
        let mut pending: Vec<Sample> = Vec::new();
        let mut flush = |pending: &mut Vec<Sample>, writer: &mut RecordingWriter| {
            if pending.is_empty() {
                return Ok(());
            }
            let bytes = fragment(sequence, decode_time, pending).map_err(mp4_error)?;
            writer.write_all(&bytes)?;
            sequence += 1;
            decode_time += pending.iter().map(|s| u64::from(s.duration)).sum::<u64>();
            pending.clear();
            Ok::<(), StoreError>(())
        };
        for s in clip.samples {
            // A fragment per group of pictures, as the recorder writes them.
            if s.is_sync || pending.len() >= SAMPLES_PER_FRAGMENT {
                flush(&mut pending, writer)?;
            }
            let source = clip.sources.get(s.source as usize).copied();
            let reader = readers
                .get_mut(s.source as usize)
                .ok_or_else(|| StoreError::Mp4(format!("sample source {} unknown", s.source)))?;
            let mut data = vec![0u8; s.size as usize];
            reader.read_exact_at(s.offset, &mut data).map_err(|e| {
                StoreError::Mp4(format!(
                    "reading recording {} at {}: {e}",
                    source.unwrap_or(RecordingId(0)),
                    s.offset
                ))
            })?;
            pending.push(Sample {
                duration: s.duration,
                is_sync: s.is_sync,
                data: data.into(),
            });
        }
        flush(&mut pending, writer)
    }

    /// Opens a share copy with the key its link's secret gives.
    pub fn open_share(&self, link: u64, key: &MasterKey) -> Result<RecordingReader, StoreError> {
        let inner = SealedReader::open(&self.share_path(link), key)?;
        inner.verify_complete()?;
        Ok(RecordingReader { inner })
    }

    /// Deletes a share copy (zeroes its key block, unlinks, fsyncs). Missing is done.
    pub fn delete_share(&self, link: u64) -> Result<(), StoreError> {
        recover::shred(&self.share_path(link))
    }
}

pub(super) fn copy_plaintext(
    source: &mut RecordingReader,
    writer: &mut RecordingWriter,
) -> Result<(), StoreError> {
    let len = source.len();
    let mut buf = vec![0u8; COPY_PIECE];
    let mut offset = 0;
    while offset < len {
        let n = COPY_PIECE.min((len - offset) as usize);
        source
            .inner
            .read_at(offset, &mut buf[..n])
            .and_then(|got| {
                if got == n {
                    Ok(())
                } else {
                    Err(StoreError::Mp4(format!("short read at {offset}")))
                }
            })?;
        writer.write_all(&buf[..n])?;
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Trigger;
    use crate::store::crypto::SHARE_SECRET_LEN;
    use crate::store::NewRecording;

    fn store_with_recording(dir: &std::path::Path) -> (Store, CameraId, RecordingId, Vec<u8>) {
        let store = Store::open_or_create(&dir.join("data"), &dir.join("keys")).expect("store");
        let camera: CameraId = "porch".parse().expect("name");
        let id = RecordingId(7);
        let (mut writer, _) = store
            .create_recording(&NewRecording {
                id,
                camera: camera.clone(),
                start_micros: 1_000,
                trigger: Trigger::Motion,
            })
            .expect("create");
        let body: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        writer.write_all(&body).expect("write");
        writer.finish().expect("finish");
        (store, camera, id, body)
    }

    fn read_all(reader: &mut RecordingReader) -> Vec<u8> {
        let mut out = vec![0u8; reader.len() as usize];
        let n = reader.inner.read_at(0, &mut out).expect("read");
        out.truncate(n);
        out
    }

    #[test]
    fn a_share_copy_reads_back_only_with_its_link_secret_and_outlives_the_original() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, camera, id, body) = store_with_recording(dir.path());
        let secret = [9u8; SHARE_SECRET_LEN];
        let key = MasterKey::for_share_link(&secret);
        let size = store.copy_for_share(&camera, id, 42, &key).expect("copy");
        assert_eq!(
            std::fs::metadata(store.share_path(42)).expect("stat").len(),
            size
        );

        // The daemon's own key does not open it, nor does another secret.
        assert!(SealedReader::open(&store.share_path(42), &store.master).is_err());
        let wrong = MasterKey::for_share_link(&[8u8; SHARE_SECRET_LEN]);
        assert!(store.open_share(42, &wrong).is_err());
        // Nothing of the plaintext is in the file.
        let raw = std::fs::read(store.share_path(42)).expect("read");
        assert!(!raw.windows(64).any(|w| w == &body[1000..1064]));

        store.shred(&camera, id).expect("delete the original");
        let mut copy = store.open_share(42, &key).expect("open");
        assert_eq!(read_all(&mut copy), body);

        store.delete_share(42).expect("unshare");
        assert!(!store.share_path(42).exists());
        store.delete_share(42).expect("unsharing twice is fine");
    }

    #[test]
    fn a_clip_from_two_recordings_is_one_recording_with_one_timeline() {
        use crate::store::mp4::parse_fragmented;
        use crate::store::mp4::testutil::{synthetic_samples, synthetic_track, write_recording};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_or_create(&dir.path().join("data"), &dir.path().join("keys"))
            .expect("store");
        let camera: CameraId = "porch".parse().expect("name");
        let track = synthetic_track();
        let samples = synthetic_samples(40, 10);
        // Two recordings, each with its own decode times from 0, as the recorder writes.
        let mut sources = Vec::new();
        for (n, part) in samples.chunks(20).enumerate() {
            let id = RecordingId(100 + n as u64);
            let (body, _) = write_recording(&track, part, &[10], 0);
            let (mut w, _) = store
                .create_recording(&NewRecording {
                    id,
                    camera: camera.clone(),
                    start_micros: 1_000 + n as i64 * 2_000_000,
                    trigger: Trigger::Motion,
                })
                .expect("create");
            w.write_all(&body).expect("write");
            w.finish().expect("finish");
            sources.push(id);
        }
        // The second half of the first recording and all of the second.
        let mut refs = Vec::new();
        for (n, id) in sources.iter().enumerate() {
            let mut parsed = store
                .open_recording(&camera, *id)
                .expect("open")
                .parse()
                .expect("parse");
            let from = if n == 0 { 10 } else { 0 };
            for s in &mut parsed.samples[from..] {
                s.source = n as u32;
                refs.push(*s);
            }
        }
        let secret = [3u8; SHARE_SECRET_LEN];
        let key = MasterKey::for_share_link(&secret);
        let clip = Clip {
            camera: &camera,
            sources: &sources,
            track: &track,
            samples: &refs,
            start_micros: 1_000,
            viewer: None,
        };
        store.copy_clip_for_share(&clip, 9, &key).expect("copy");

        let mut copy = store.open_share(9, &key).expect("open");
        let plain = read_all(&mut copy);
        let parsed = parse_fragmented(&mut plain.as_slice()).expect("our format");
        assert_eq!(parsed.track, track);
        assert_eq!(parsed.samples.len(), 30);
        let mut t = 0;
        for (got, want) in parsed.samples.iter().zip(&samples[10..]) {
            assert_eq!(got.decode_time, t, "one timeline across the join");
            assert_eq!((got.duration, got.is_sync), (want.duration, want.is_sync));
            let at = got.offset as usize;
            assert_eq!(&plain[at..at + got.size as usize], &want.data[..]);
            t += u64::from(want.duration);
        }

        // A clip must start at a keyframe: nothing is written otherwise.
        let bad = Clip {
            samples: &refs[1..],
            ..clip
        };
        assert!(store.copy_clip_for_share(&bad, 10, &key).is_err());
        assert!(!store.share_path(10).exists());
    }
}
