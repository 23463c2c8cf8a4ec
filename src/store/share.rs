//! Share-link copies: `shares/<link id>.plr`, a recording re-sealed under a key
//! derived from the link's secret ([`MasterKey::for_share_link`]). The copy is a
//! whole file of its own, so unsharing deletes exactly it and deleting the original
//! leaves it alone.

use std::path::PathBuf;

use super::crypto::MasterKey;
use super::e2e::ViewerSecret;
use super::format::HeaderFields;
use super::mp4::ReadAt;
use super::reader::SealedReader;
use super::{create_private_dir, recover, RecordingReader, RecordingWriter, Store, StoreError};
use crate::model::{CameraId, RecordingId};

const COPY_PIECE: usize = 256 * 1024;

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
}
