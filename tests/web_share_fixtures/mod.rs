//! Recordings big enough to matter for streaming and share-link tests, written
//! straight into the in-process daemon's store and index.

/// Writes a finished recording of `frames` frames of `frame_bytes` each (sealed by
/// the store, with its index entry): big enough that a response streaming it cannot
/// sit whole in the socket buffers between server and client.
pub fn put_big_recording(
    server: &crate::webutil::Server,
    id: u64,
    frames: u32,
    frame_bytes: usize,
) -> porchlight::model::RecordingId {
    use porchlight::store::mp4::{fragment, init_segment, Sample, TrackParams};
    let track = TrackParams {
        sample_entry: crate::webutil::objects::avc1_sample_entry(),
        width: 320,
        height: 240,
        timescale: 90_000,
    };
    let mut body = init_segment(&track).expect("valid track");
    for second in 0..frames / 10 {
        let samples: Vec<Sample> = (0..10u8)
            .map(|i| {
                let mut data = vec![i; frame_bytes];
                data[..5].copy_from_slice(&[0, 0, 0, 4, 0x65]);
                Sample {
                    duration: 9000,
                    is_sync: i == 0,
                    data: bytes::Bytes::from(data),
                }
            })
            .collect();
        let decode_time = u64::from(second) * 90_000;
        body.extend(fragment(second + 1, decode_time, &samples).expect("fragment"));
    }
    let start_micros = crate::webutil::T0_MICROS - 3_600_000_000;
    crate::webutil::objects::seal_recording(server, id, start_micros, &body, frames)
}
