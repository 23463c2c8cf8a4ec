//! The archive of everything on a real store and sled index in a temp dir.

use super::*;
use crate::index::RecordingEntry;
use crate::model::{CameraId, RecordingId, Trigger};
use crate::store::mp4::testutil::{synthetic_track, write_recording};
use crate::store::mp4::Sample;
use crate::store::NewRecording;

/// A finished recording of 20 frames of 30 kB (several 64 KiB sealed chunks of video
/// after its first fragment's header), sealed by the store and indexed.
fn put_recording(store: &Store, index: &Index, camera: &str, start_micros: i64) -> RecordingId {
    let samples: Vec<Sample> = (0..20u8)
        .map(|i| Sample {
            duration: 9000,
            is_sync: i % 10 == 0,
            data: bytes::Bytes::from(vec![i; 30_000]),
        })
        .collect();
    let (body, _) = write_recording(&synthetic_track(), &samples, &[10], 0);
    let camera: CameraId = camera.parse().expect("name");
    let id = RecordingId::random();
    let (mut writer, wrapped_key) = store
        .create_recording(&NewRecording {
            id,
            camera: camera.clone(),
            start_micros,
            trigger: Trigger::Motion,
        })
        .expect("create");
    writer.write_all(&body).expect("write");
    let finished = writer.finish().expect("finish");
    index
        .put_recording(&RecordingEntry {
            id,
            camera,
            start_micros,
            end_micros: start_micros + 2_000_000,
            frames: 20,
            bytes: finished.file_len,
            trigger: Trigger::Motion,
            wrapped_key,
            state: RecordingState::Finished,
            durable_len: None,
        })
        .expect("index");
    id
}

/// The entries of a ustar archive: (name, bytes).
fn untar(mut archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    while archive.len() >= 512 && archive[0] != 0 {
        let header = &archive[..512];
        let name = String::from_utf8_lossy(&header[..100])
            .trim_end_matches('\0')
            .to_owned();
        let size_text = String::from_utf8_lossy(&header[124..136]);
        let size = usize::from_str_radix(size_text.trim_matches(|c| c == '\0' || c == ' '), 8)
            .expect("octal size");
        entries.push((name, archive[512..512 + size].to_vec()));
        archive = &archive[512 + size.div_ceil(512) * 512..];
    }
    entries
}

#[test]
fn a_damaged_chunk_leaves_one_recording_out_of_the_archive_not_the_rest() {
    let (_dir, store, index) = crate::testutil::store_and_index();
    let damaged = put_recording(&store, &index, "door", 1_000_000);
    let intact = put_recording(&store, &index, "door", 5_000_000);
    // One byte a quarter into the file: in the middle of the first fragment's video
    // (300 kB after its header), not in a chunk holding a sample table, so the
    // recording still opens and is laid out.
    let path = store.recording_path(&"door".parse().expect("name"), damaged);
    let mut sealed = std::fs::read(&path).expect("read");
    let inside_the_video = sealed.len() / 4;
    sealed[inside_the_video] ^= 0x40;
    std::fs::write(&path, &sealed).expect("write");

    let mut archive = Vec::new();
    let summary = write_everything(&store, &index, 10_000_000, &mut archive, None)
        .expect("the archive is written");
    assert_eq!((summary.recordings, summary.failed), (1, 1));
    let entries = untar(&archive);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&format!("recordings/door/{intact}.mp4").as_str()),
        "{names:?}"
    );
    assert!(
        !names.contains(&format!("recordings/door/{damaged}.mp4").as_str()),
        "{names:?}"
    );
    let errors = entries
        .iter()
        .find(|(n, _)| n == "export-errors.txt")
        .map(|(_, e)| String::from_utf8_lossy(e).into_owned())
        .expect("export-errors.txt");
    assert!(errors.contains(&format!("recording {damaged}")), "{errors}");
}
