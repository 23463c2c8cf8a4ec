//! "Test connection": one short session with a camera that is not added yet. DESCRIBE
//! names the codec and picture size; SETUP and PLAY then fetch the first keyframe
//! (for a snapshot, decoded by the caller) and about a second of frames, whose RTP
//! timestamps give the frame rate the camera really sends (the SPS's announced rate
//! is the fallback: many cameras announce none, or a maximum).
//!
//! Everything goes through the size guard like a recording session; the credentials
//! go to retina out of band, never into the URL, an error or a log line.

use std::time::Duration;

use futures::StreamExt;
use retina::client::{PlayOptions, SessionOptions};
use retina::codec::{CodecItem, ParametersRef};

use crate::camera::guard::FrameProgress;

use super::{
    describe_and_setup, guarded, session_options, video_params, with_timeout, IngestError,
    HANDSHAKE_TIMEOUT,
};

/// How long to wait for the first keyframe after PLAY (cameras send one every 1-4 s).
const KEYFRAME_WAIT: Duration = Duration::from_secs(6);
/// Stream time measured for the frame rate after the keyframe.
const RATE_WINDOW_SECS: f64 = 1.0;
/// Frames measured at most (a 60 fps camera fills the window with 61).
const RATE_FRAMES: usize = 120;

/// What the camera said and sent.
#[derive(Clone, Debug)]
pub struct Probe {
    /// `h264`, `h265`, … as the camera's SDP names it.
    pub encoding: String,
    /// RFC 6381 codec (`avc1.64001f`) and pixel size, when the SDP carries the
    /// parameter sets (most cameras do), else from the first frame's.
    pub codec: Option<String>,
    pub size: Option<(u32, u32)>,
    /// Frames per second: measured, else announced; `None` if neither is known.
    pub frame_rate: Option<f64>,
    /// The first keyframe, for a snapshot; `None` if none came in time.
    pub keyframe: Option<ProbeFrame>,
}

/// One keyframe as the motion decoder takes it.
#[derive(Clone, Debug)]
pub struct ProbeFrame {
    /// The MP4 sample entry (`avc1`/`hvc1` with its configuration).
    pub sample_entry: Vec<u8>,
    /// AVCC access unit.
    pub data: Vec<u8>,
}

/// Connects once (through the size guard), runs DESCRIBE, SETUP and PLAY with the
/// credentials and reports the video stream, as described in the module header.
pub async fn probe(
    url: &url::Url,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Probe, IngestError> {
    let options = session_options(username, password);
    guarded(url, |relayed, since_frame| async move {
        session(&relayed, options, &since_frame).await
    })
    .await
}

async fn session(
    url: &url::Url,
    options: SessionOptions,
    since_frame: &FrameProgress,
) -> Result<Probe, IngestError> {
    let (session, video) = describe_and_setup(url, options).await?;
    let stream = &session.streams()[video];
    let mut probe = Probe {
        encoding: stream.encoding_name().to_owned(),
        codec: None,
        size: None,
        frame_rate: None,
        keyframe: None,
    };
    describe_params(&mut probe, stream.parameters());
    let playing = with_timeout(
        "PLAY",
        HANDSHAKE_TIMEOUT,
        session.play(PlayOptions::default()),
    )
    .await?;
    let mut demuxed = playing.demuxed().map_err(IngestError::from_retina)?;
    // Stream times (seconds) of the keyframe and the frames after it.
    let mut times: Vec<f64> = Vec::new();
    let collect = async {
        while let Some(item) = demuxed.next().await {
            let CodecItem::VideoFrame(frame) = item.map_err(IngestError::from_retina)? else {
                continue;
            };
            since_frame.frame_received();
            if probe.keyframe.is_none() {
                if !frame.is_random_access_point() {
                    continue;
                }
                let params = video_params(&demuxed, video)?;
                describe_params(&mut probe, demuxed.streams()[video].parameters());
                probe.keyframe = Some(ProbeFrame {
                    sample_entry: params.sample_entry,
                    data: frame.data().to_vec(),
                });
            }
            let ts = frame.timestamp();
            times.push(ts.elapsed() as f64 / f64::from(ts.clock_rate().get()));
            let span = times.last().copied().unwrap_or(0.0) - times[0];
            if span >= RATE_WINDOW_SECS || times.len() >= RATE_FRAMES {
                break;
            }
        }
        Ok::<(), IngestError>(())
    };
    // Running out of time is no error: whatever came is reported.
    if let Ok(result) = tokio::time::timeout(KEYFRAME_WAIT, collect).await {
        result?;
    }
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        if last > first {
            probe.frame_rate = Some((times.len() - 1) as f64 / (last - first));
        }
    }
    Ok(probe)
}

/// Codec, size and (until measured) the announced frame rate from `params`.
fn describe_params(probe: &mut Probe, params: Option<ParametersRef<'_>>) {
    if let Some(ParametersRef::Video(p)) = params {
        probe.codec = Some(p.rfc6381_codec().to_owned());
        probe.size = Some(p.pixel_dimensions());
        if let Some((num, den)) = p.frame_rate().filter(|(n, d)| *n > 0 && *d > 0) {
            probe.frame_rate = Some(f64::from(den) / f64::from(num));
        }
    }
}
