//! Real objects for web tests, written the way the daemon writes them: recordings
//! sealed by the store as fragmented MP4 with their index entries, and events with
//! thumbnails. Faster and more exact than recording a camera when a test needs a
//! given id, time or number of objects.

use bytes::Bytes;
use porchlight::index::{EventEntry, RecordingEntry, RecordingState};
use porchlight::model::{CameraId, EventId, RecordingId, Trigger};
use porchlight::store::mp4::{fragment, init_segment, Sample, TrackParams};
use porchlight::store::NewRecording;

use super::Server;

/// A minimal `avc1` sample entry (one SPS, one PPS): plausible, not decodable.
pub fn avc1_sample_entry() -> Vec<u8> {
    let (sps, pps) = (
        [0x67u8, 0x64, 0x00, 0x1E, 0xAC, 0xD9, 0x40],
        [0x68u8, 0xEB, 0xE3, 0xCB],
    );
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    avcc.extend((sps.len() as u16).to_be_bytes());
    avcc.extend(sps);
    avcc.push(1);
    avcc.extend((pps.len() as u16).to_be_bytes());
    avcc.extend(pps);
    avcc.extend([0xFD, 0xF8, 0xF8, 0]);
    let mut e = vec![0, 0, 0, 0];
    e.extend(b"avc1");
    e.extend([0; 6]);
    e.extend(1u16.to_be_bytes());
    e.extend([0; 16]);
    e.extend(320u16.to_be_bytes());
    e.extend(240u16.to_be_bytes());
    e.extend(0x0048_0000u32.to_be_bytes());
    e.extend(0x0048_0000u32.to_be_bytes());
    e.extend(0u32.to_be_bytes());
    e.extend(1u16.to_be_bytes());
    e.extend([0; 32]);
    e.extend(0x0018u16.to_be_bytes());
    e.extend((-1i16).to_be_bytes());
    e.extend((8 + avcc.len() as u32).to_be_bytes());
    e.extend(b"avcC");
    e.extend(avcc);
    let len = e.len() as u32;
    e[..4].copy_from_slice(&len.to_be_bytes());
    e
}

/// Writes a finished two-second recording (fragmented MP4, sealed by the store) and
/// its index entry, as the recorder would.
pub fn put_recording(server: &Server, id: u64, start_micros: i64) -> RecordingId {
    let track = TrackParams {
        sample_entry: avc1_sample_entry(),
        width: 320,
        height: 240,
        timescale: 90_000,
    };
    let samples: Vec<Sample> = (0..20u8)
        .map(|i| Sample {
            duration: 9000,
            is_sync: i % 10 == 0,
            data: Bytes::from(vec![0, 0, 0, 4, 0x65, i, i, i]),
        })
        .collect();
    let mut body = init_segment(&track).expect("valid track");
    body.extend(fragment(1, 0, &samples[..10]).expect("fragment"));
    body.extend(fragment(2, 90_000, &samples[10..]).expect("fragment"));
    seal_recording(server, id, start_micros, &body, 20)
}

/// Seals `body` (a fragmented MP4 of `frames` frames at 10 per second) through the
/// store as finished recording `id` of camera porch, and writes its index entry: what
/// the recorder does at the end of a recording, so tests can shape the body freely.
pub fn seal_recording(
    server: &Server,
    id: u64,
    start_micros: i64,
    body: &[u8],
    frames: u32,
) -> RecordingId {
    let d = server.daemon();
    let camera: CameraId = "porch".parse().expect("name");
    let id = RecordingId(id);
    let (mut writer, wrapped_key) = d
        .store
        .create_recording(&NewRecording {
            id,
            camera: camera.clone(),
            start_micros,
            trigger: Trigger::Motion,
        })
        .expect("create");
    writer.write_all(body).expect("write");
    let finished = writer.finish().expect("finish");
    d.index
        .put_recording(&RecordingEntry {
            id,
            camera,
            start_micros,
            end_micros: start_micros + i64::from(frames) * 100_000,
            frames: frames.into(),
            bytes: finished.file_len,
            trigger: Trigger::Motion,
            wrapped_key,
            state: RecordingState::Finished,
            durable_len: None,
        })
        .expect("index");
    id
}

/// The picture [`put_event`] seals as an event's thumbnail.
pub const THUMBNAIL: &[u8] = b"\xff\xd8\xff\xe0 a picture \xff\xd9";

pub fn put_event(server: &Server, id: u64, recording: RecordingId, start: i64) -> EventId {
    let d = server.daemon();
    let camera: CameraId = "porch".parse().expect("name");
    let event = EventEntry {
        id: EventId(id),
        camera: camera.clone(),
        start_micros: start,
        end_micros: start + 2_000_000,
        triggers: vec![Trigger::Motion],
        peak_score: 0.2,
        score_curve: vec![10, 50, 20],
        has_thumbnail: true,
        recordings: vec![recording],
        open: false,
    };
    d.index.put_event(&event).expect("event");
    d.store
        .write_thumbnail(&camera, event.id, start, THUMBNAIL)
        .expect("thumbnail");
    event.id
}
