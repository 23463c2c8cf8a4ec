//! The motion feed: one thread per camera that decodes the analysis stream (the sub
//! stream, or the main one), runs the detector, and tells the recorder.
//!
//! Only confirmed motion triggers (the detector's hysteresis: `start_frames`
//! consecutive active frames); each update carries the wall time the motion began, so
//! the recorder's pre-roll reaches back from the movement, not from its confirmation.
//! While an event is open every analysis reports its score (the event's curve), and a
//! picture is offered as thumbnail when the score beats the best so far.
//!
//! Decoding runs here, never on the async runtime; frames reach this thread through a
//! small bounded queue, and frames dropped because the thread fell behind make it
//! start over at the next keyframe (a new decoder) rather than decode garbage.
//!
//! A stream that cannot be analysed (a codec or pixel format the decoder does not
//! handle, pictures too large, or [`FAILURES_BEFORE_PROBLEM`] frames in a row that do
//! not decode) is shown as the camera's recording problem, since a camera in events
//! mode then records nothing, and logged as a warning once; the problem is cleared
//! when a picture decodes again.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::watch;

use super::{MotionUpdate, RecorderSender};
use crate::camera::forward::{forward, ByteBudget, FrameInput, QueuedBytes};
use crate::camera::CameraHandle;
use crate::model::{CameraId, Frame, VideoParams, TIMESCALE};
use crate::motion::thumbnail::jpeg_thumbnail;
use crate::motion::{MotionDecoder, MotionDetector, MotionError, MotionEvent, MotionSettings};

/// Analysis frames are about this wide (the detector's working size).
const ANALYSIS_WIDTH: u32 = 160;
/// Thumbnails are at most this wide.
const THUMBNAIL_WIDTH: u32 = 320;
/// A new best picture is offered at most this often (JPEG encoding is not free).
const THUMBNAIL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Frames waiting for the decoder; beyond this the feed drops and resynchronises.
const QUEUE_LEN: usize = 64;
/// Bytes of frames waiting for the decoder (a sub stream's 64 frames are well under
/// 1 MiB; a main stream analysed for want of a sub stream fits too).
const QUEUE_BYTES: u64 = 16 * 1024 * 1024;
/// Consecutive frames that fail to decode before the camera shows a problem: a lost
/// packet costs a few frames until the next keyframe, a stream FFmpeg cannot decode
/// fails every frame (50 is 5 s of a 10 fps sub stream).
const FAILURES_BEFORE_PROBLEM: u32 = 50;

enum FeedInput {
    /// With its share of the queue's byte budget, given back once taken.
    Frame(Arc<Frame>, QueuedBytes),
    Gap,
}

/// Starts the motion feed of `camera`. Must be called inside a tokio runtime.
pub fn spawn(
    camera: Arc<CameraHandle>,
    settings: MotionSettings,
    recorder: RecorderSender,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_LEN);
    let frames = camera.subscribe_analysis();
    tokio::spawn(forward(
        "motion feed",
        frames,
        tx,
        ByteBudget::new(QUEUE_BYTES),
        shutdown,
    ));
    let id = camera.id().clone();
    std::thread::Builder::new()
        .name(format!("motion-{id}"))
        .spawn(move || Feed::new(camera, settings, recorder).run(rx))
}

impl FrameInput for FeedInput {
    fn frame(frame: Arc<Frame>, charge: QueuedBytes) -> Self {
        FeedInput::Frame(frame, charge)
    }
    fn gap() -> Self {
        FeedInput::Gap
    }
}

/// The decoder and detector of one session with one set of parameters.
struct Session {
    id: u64,
    params: Arc<VideoParams>,
    decoder: MotionDecoder,
    detector: Option<MotionDetector>,
}

struct Feed {
    camera: CameraId,
    /// Where the problem is shown when the stream cannot be analysed.
    handle: Arc<CameraHandle>,
    settings: MotionSettings,
    recorder: RecorderSender,
    session: Option<Session>,
    best_offered: f32,
    last_thumbnail: Option<Instant>,
    /// Frames in a row that did not decode.
    failures: u32,
    /// The problem shown on the camera now, if any (logged once when it appears).
    problem: Option<String>,
}

impl Feed {
    fn new(handle: Arc<CameraHandle>, settings: MotionSettings, recorder: RecorderSender) -> Self {
        Feed {
            camera: handle.id().clone(),
            handle,
            settings,
            recorder,
            session: None,
            best_offered: 0.0,
            last_thumbnail: None,
            failures: 0,
            problem: None,
        }
    }

    /// Shows that motion detection is not working (and warns, once per problem).
    fn report(&mut self, error: &MotionError, now_micros: i64) {
        let text = format!("motion detection cannot analyse this stream: {error}");
        if self.problem.as_deref() == Some(text.as_str()) {
            return;
        }
        tracing::warn!(camera = %self.camera, "camera {}: {text}; no motion events", self.camera);
        self.handle
            .set_motion_problem(Some(text.clone()), now_micros);
        self.problem = Some(text);
    }

    /// A picture decoded: the stream can be analysed (again).
    fn decoded(&mut self, now_micros: i64) {
        self.failures = 0;
        if self.problem.take().is_some() {
            tracing::info!(camera = %self.camera, "camera {}: motion detection works again", self.camera);
            self.handle.set_motion_problem(None, now_micros);
        }
    }

    /// A frame did not decode: a problem at once if it will never decode (it says so
    /// for every frame), after [`FAILURES_BEFORE_PROBLEM`] in a row otherwise.
    fn failed(&mut self, error: &MotionError, now_micros: i64) {
        self.failures = self.failures.saturating_add(1);
        let hopeless = matches!(
            error,
            MotionError::UnsupportedCodec { .. }
                | MotionError::UnsupportedPixelFormat { .. }
                | MotionError::TooLarge { .. }
                | MotionError::BadSampleEntry { .. }
                | MotionError::DecoderInit { .. }
        );
        if hopeless || self.failures >= FAILURES_BEFORE_PROBLEM {
            self.report(error, now_micros);
        } else {
            tracing::debug!(camera = %self.camera, "motion: frame not decoded: {error}");
        }
    }

    fn run(mut self, rx: mpsc::Receiver<FeedInput>) {
        while let Ok(input) = rx.recv() {
            match input {
                FeedInput::Frame(frame, taken) => {
                    drop(taken);
                    self.on_frame(&frame)
                }
                // The decoder may lack a reference now: start over at a keyframe.
                FeedInput::Gap => self.session = None,
            }
        }
        // Motion turned off or the camera stopped: this feed's problem is no longer
        // true (a new feed reports its own).
        if self.problem.take().is_some() {
            self.handle.set_motion_problem(None, 0);
        }
    }

    fn on_frame(&mut self, frame: &Frame) {
        let fresh = self
            .session
            .as_ref()
            .is_none_or(|s| s.id != frame.session || *s.params != *frame.params);
        if fresh {
            if !frame.is_key {
                return;
            }
            match MotionDecoder::new(&frame.params.sample_entry, ANALYSIS_WIDTH) {
                Ok(decoder) => {
                    self.session = Some(Session {
                        id: frame.session,
                        params: frame.params.clone(),
                        decoder,
                        detector: None,
                    });
                }
                Err(e) => {
                    self.failed(&e, frame.wall_micros);
                    return;
                }
            }
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        // Before the first frame there is no detector to ask: that one is wanted.
        let detector = session.detector.as_ref();
        let due = |pts| detector.is_none_or(|d| d.due(pts));
        let pictures_before = session.decoder.frames_decoded();
        let decoded = session
            .decoder
            .decode_for(&frame.data, frame.is_key, frame.pts, due);
        // Any good picture counts, analysed or not (most are not).
        if session.decoder.frames_decoded() > pictures_before {
            self.decoded(frame.wall_micros);
        }
        let gray = match decoded {
            Ok(Some(gray)) => gray,
            Ok(None) => return,
            Err(e) => {
                self.failed(&e, frame.wall_micros);
                return;
            }
        };
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let settings = &self.settings;
        let detector = session
            .detector
            .get_or_insert_with(|| MotionDetector::new(settings.clone(), gray.width, gray.height));
        if !detector.due(gray.pts) {
            return;
        }
        let (analysis, event) = detector.analyse(&gray);
        let in_event = detector.in_event();
        tracing::trace!(
            camera = %self.camera,
            pts = gray.pts,
            score = analysis.score,
            active = analysis.active,
            light_change = analysis.light_change,
            calibrating = analysis.calibrating,
            in_event,
            "motion analysis"
        );
        session.decoder.set_idle(detector.is_quiet());
        let wall_of =
            |pts: i64| frame.wall_micros - (frame.pts - pts) * 1_000_000 / i64::from(TIMESCALE);
        let started_micros = match event {
            Some(MotionEvent::Started { pts }) => {
                tracing::info!(camera = %self.camera, "camera {}: motion started", self.camera);
                self.best_offered = 0.0;
                Some(wall_of(pts))
            }
            Some(MotionEvent::Ended { .. }) => {
                tracing::info!(camera = %self.camera, "camera {}: motion ended", self.camera);
                None
            }
            None => None,
        };
        if !in_event && started_micros.is_none() {
            return;
        }
        let thumbnail = if analysis.active
            && analysis.score > self.best_offered
            && self
                .last_thumbnail
                .is_none_or(|t| t.elapsed() >= THUMBNAIL_EVERY)
        {
            let jpeg = match session
                .decoder
                .last_picture()
                .map(|p| jpeg_thumbnail(&p, THUMBNAIL_WIDTH))
            {
                Some(Ok(jpeg)) => Some(jpeg),
                Some(Err(e)) => {
                    tracing::debug!(camera = %self.camera, "no thumbnail: {e}");
                    None
                }
                None => {
                    tracing::debug!(camera = %self.camera, "no thumbnail: no 8-bit 4:2:0 picture");
                    None
                }
            };
            if jpeg.is_some() {
                self.best_offered = analysis.score;
                self.last_thumbnail = Some(Instant::now());
            }
            jpeg
        } else {
            None
        };
        self.recorder.motion(MotionUpdate {
            score: analysis.score,
            active: analysis.active && in_event,
            started_micros,
            thumbnail,
        });
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::camera::CameraRegistry;
    use crate::config::{CameraConfig, RecordingMode};
    use crate::motion::bitstream::VideoCodec;
    use crate::motion::testutil::{encode, load};

    /// A feed for an events-mode camera whose recorder input is kept (not read).
    fn feed() -> (
        Feed,
        Arc<CameraHandle>,
        mpsc::Receiver<super::super::RecorderInput>,
    ) {
        let config = CameraConfig::adopted(
            "porch".parse().expect("name"),
            "rtsp://192.0.2.1/stream".parse().expect("url"),
            None,
            None,
            RecordingMode::Events,
        );
        let handle = CameraRegistry::new().add(config, 0);
        let (tx, rx) = mpsc::sync_channel(1024);
        let feed = Feed::new(
            handle.clone(),
            MotionSettings::default(),
            RecorderSender { tx },
        );
        (feed, handle, rx)
    }

    fn frame(sample_entry: &[u8], data: &[u8], is_key: bool, pts: i64) -> Frame {
        Frame {
            session: 1,
            pts,
            wall_micros: 1_000_000 + pts,
            is_key,
            data: Bytes::copy_from_slice(data),
            params: Arc::new(VideoParams {
                codec: "avc1.64000a".into(),
                width: 160,
                height: 90,
                sample_entry: sample_entry.to_vec(),
            }),
        }
    }

    /// An `mp4v` sample entry (MPEG-4 Part 2, which the decoder does not handle): 8
    /// bytes of header, 78 of VisualSampleEntry fields.
    fn mp4v_entry() -> Vec<u8> {
        let mut entry = (8u32 + 78).to_be_bytes().to_vec();
        entry.extend(b"mp4v");
        entry.extend([0; 78]);
        entry
    }

    fn problem(handle: &CameraHandle) -> Option<String> {
        handle.status().recording_problem.map(|(text, _)| text)
    }

    #[test]
    fn unsupported_codec_shows_a_problem_at_once() {
        let (mut feed, handle, _rx) = feed();
        let entry = mp4v_entry();
        feed.on_frame(&frame(&entry, &[0, 0, 0, 1, 0x65], true, 0));
        let text = problem(&handle).expect("a problem is shown");
        assert!(
            text.contains("motion detection") && text.contains("mp4v"),
            "{text}"
        );
    }

    #[test]
    fn frames_that_never_decode_show_a_problem_until_pictures_decode_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = encode(
            VideoCodec::H264,
            dir.path(),
            "g.h264",
            "color=c=gray:size=160x90:rate=10",
            2,
            10,
        );
        let s = load(VideoCodec::H264, &path, 10, 160, 90);
        let (mut feed, handle, _rx) = feed();
        // Keyframes whose NAL length says 9 bytes where there is 1: never decodable.
        let junk = [0, 0, 0, 9, 0x65];
        for i in 0..FAILURES_BEFORE_PROBLEM - 1 {
            feed.on_frame(&frame(&s.sample_entry, &junk, true, i64::from(i) * 9000));
        }
        assert_eq!(
            problem(&handle),
            None,
            "a few bad frames are no problem yet"
        );
        feed.on_frame(&frame(&s.sample_entry, &junk, true, 1_000_000));
        let text = problem(&handle).expect("a problem is shown");
        assert!(text.contains("motion detection"), "{text}");

        for u in &s.units {
            feed.on_frame(&frame(
                &s.sample_entry,
                &u.data,
                u.is_key,
                2_000_000 + u.pts,
            ));
        }
        assert_eq!(problem(&handle), None, "cleared once pictures decode");
    }

    #[test]
    fn a_feed_that_ends_takes_its_problem_away() {
        let (mut feed, handle, _rx) = feed();
        let entry = mp4v_entry();
        feed.on_frame(&frame(&entry, &[0, 0, 0, 1, 0x65], true, 0));
        assert!(problem(&handle).is_some());
        let (tx, rx) = mpsc::sync_channel(1);
        drop(tx);
        feed.run(rx);
        assert_eq!(problem(&handle), None, "motion off: nothing to show");
    }

    #[test]
    fn the_recorders_problem_comes_first_and_neither_clears_the_other() {
        let (_feed, handle, _rx) = feed();
        handle.set_motion_problem(Some("motion".into()), 1);
        handle.set_recording_problem(Some("disk full".into()), 2);
        assert_eq!(problem(&handle).as_deref(), Some("disk full"));
        handle.set_recording_problem(None, 3);
        assert_eq!(problem(&handle).as_deref(), Some("motion"));
        handle.set_motion_problem(None, 4);
        assert_eq!(problem(&handle), None);
    }
}
