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

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::watch;

use super::{MotionUpdate, RecorderSender};
use crate::camera::CameraHandle;
use crate::model::{CameraId, Frame, VideoParams, TIMESCALE};
use crate::motion::thumbnail::jpeg_thumbnail;
use crate::motion::{MotionDecoder, MotionDetector, MotionEvent, MotionSettings};

/// Analysis frames are about this wide (the detector's working size).
const ANALYSIS_WIDTH: u32 = 160;
/// Thumbnails are at most this wide.
const THUMBNAIL_WIDTH: u32 = 320;
/// A new best picture is offered at most this often (JPEG encoding is not free).
const THUMBNAIL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Frames waiting for the decoder; beyond this the feed drops and resynchronises.
const QUEUE_LEN: usize = 64;

enum FeedInput {
    Frame(Arc<Frame>),
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
    tokio::spawn(super::forward::forward("motion feed", frames, tx, shutdown));
    let id = camera.id().clone();
    std::thread::Builder::new()
        .name(format!("motion-{id}"))
        .spawn(move || Feed::new(id, settings, recorder).run(rx))
}

impl super::forward::FrameInput for FeedInput {
    fn frame(frame: Arc<Frame>) -> Self {
        FeedInput::Frame(frame)
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
    settings: MotionSettings,
    recorder: RecorderSender,
    session: Option<Session>,
    best_offered: f32,
    last_thumbnail: Option<Instant>,
    /// Decode errors logged once per session, not per frame.
    complained: bool,
}

impl Feed {
    fn new(camera: CameraId, settings: MotionSettings, recorder: RecorderSender) -> Self {
        Feed {
            camera,
            settings,
            recorder,
            session: None,
            best_offered: 0.0,
            last_thumbnail: None,
            complained: false,
        }
    }

    fn run(mut self, rx: mpsc::Receiver<FeedInput>) {
        while let Ok(input) = rx.recv() {
            match input {
                FeedInput::Frame(frame) => self.on_frame(&frame),
                // The decoder may lack a reference now: start over at a keyframe.
                FeedInput::Gap => self.session = None,
            }
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
                    self.complained = false;
                }
                Err(e) => {
                    if !self.complained {
                        tracing::warn!(camera = %self.camera, "camera {}: no motion detection for this stream: {e}", self.camera);
                        self.complained = true;
                    }
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
        let gray = match session
            .decoder
            .decode_for(&frame.data, frame.is_key, frame.pts, due)
        {
            Ok(Some(gray)) => gray,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(camera = %self.camera, "motion: frame not decoded: {e}");
                return;
            }
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
