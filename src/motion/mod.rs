//! Motion detection: turns a camera's encoded frames into "motion started / ended"
//! events, ignoring masked zones and global light changes (lights switched on, the
//! camera's IR switch).
//!
//! It owns two stages, kept apart so that the interesting one can be tested without
//! video:
//! - [`decode`] — the project's only user of `ffmpeg-next`. It turns H.264/H.265 access
//!   units (AVCC, as ingest hands them over) into a small grayscale [`GrayFrame`]
//!   (luma only, box-averaged to about 160 px wide). One single-threaded decoder per
//!   camera, run on a blocking thread; it can drop to a cheap keyframe-only mode while
//!   nothing happens.
//! - [`detect`] — pure code on luma planes, modelled on Frigate's pipeline (contrast
//!   stretch, blur, difference from a running-average background, per-pixel threshold,
//!   blob and area filters) plus hysteresis, measured on the stream's own clock.
//! - [`zones`] — ignore zones in normalised coordinates, rasterised to a mask at the
//!   analysis resolution; `pixels` — the detector's pixel operations; [`bitstream`] —
//!   the sample entry and AVCC → Annex B byte work the decoder needs, kept pure so that
//!   it can be tested and fuzzed without ffmpeg.
//!
//! Invariants: every time is a presentation time in 90 kHz ticks ([`PTS_PER_SEC`]) and
//! nothing here reads the wall clock, so a replayed stream gives the same events; the
//! detector never panics on a frame, whatever its size; a [`MotionDecoder`] never
//! decodes a frame whose references it skipped (it waits for the next keyframe), so
//! idle mode cannot show decoding garbage to the detector as motion.
//!
//! May call: `ffmpeg-next` (in `decode` only), `tracing`. Called by the camera task,
//! which feeds frames in and forwards the events to the recorder, like this (on a
//! blocking thread; a new decoder and detector for each session or parameter change):
//!
//! ```text
//! let mut decoder = MotionDecoder::new(&params.sample_entry, 160)?;
//! let mut detector = MotionDetector::new(settings, 160, 90);
//! for frame in frames {
//!     match decoder.decode(&frame.data, frame.is_key, frame.pts) {
//!         Ok(Some(gray)) if detector.due(gray.pts) => forward(detector.analyse(&gray).1),
//!         Ok(_) => {}
//!         Err(e) => debug!(camera = %id, error = %e, "motion: frame not decoded"),
//!     }
//!     decoder.set_idle(detector.is_quiet()); // keyframes only while nothing happens
//! }
//! forward(detector.finish());
//! ```
//!
//! In idle mode motion is first seen at a keyframe and confirmed at the next one, so
//! `Started` can arrive up to two GOPs after its `pts`: the recorder's pre-roll must
//! reach back that far.

pub mod bitstream;
pub mod decode;
pub mod detect;
mod pixels;
pub mod snapshot;
pub mod thumbnail;
pub mod zones;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod bench_deblock;
#[cfg(test)]
mod tests_decode;
#[cfg(test)]
mod tests_detect;
#[cfg(test)]
mod tests_pixels;
#[cfg(test)]
pub(crate) mod testutil;

pub use decode::{MotionDecoder, Picture, PictureLimit};
pub use detect::{
    Analysis, BestFrame, GrayFrame, MotionDetector, MotionEvent, MotionSettings, PTS_PER_SEC,
};
pub use zones::Zone;

/// Everything that can go wrong in motion detection. Each variant carries what is
/// needed to find the offending input (the sample entry's type, the frame's pts);
/// none carries secrets, as frames and sample entries hold none.
#[derive(Debug, thiserror::Error)]
pub enum MotionError {
    /// The stream's sample entry is neither `avc1`/`avc3` nor `hvc1`/`hev1`.
    #[error("motion detection does not support codec {fourcc:?} (H.264 and H.265 only)")]
    UnsupportedCodec { fourcc: String },

    /// The sample entry or its decoder configuration box is malformed.
    #[error("bad sample entry: {reason}")]
    BadSampleEntry { reason: &'static str },

    /// An access unit's NAL length prefixes do not add up to its size.
    #[error("bad access unit at pts {pts}: {reason}")]
    BadAccessUnit { pts: i64, reason: &'static str },

    /// FFmpeg could not set up the decoder (missing codec, failed open).
    #[error("cannot open the {codec} decoder: {detail}")]
    DecoderInit { codec: &'static str, detail: String },

    /// FFmpeg rejected an access unit or failed while decoding it. The decoder stays
    /// usable: the next keyframe resynchronises it.
    #[error("decoding the frame at pts {pts} failed: {detail}")]
    Decode { pts: i64, detail: String },

    /// The decoder produced a picture whose luma is not 8- or 10-bit planar, which the
    /// downscaler cannot read. Repeats for every frame of the stream.
    #[error("decoded picture has unsupported pixel format {format}")]
    UnsupportedPixelFormat { format: String },

    /// A configured zone cannot be rasterised (found by [`MotionSettings::validate`]).
    #[error("motion zone #{index}: {reason}")]
    InvalidZone { index: usize, reason: &'static str },

    /// A configured setting is out of range (found by [`MotionSettings::validate`]).
    #[error("motion setting {name}: {reason}")]
    InvalidSetting {
        name: &'static str,
        reason: &'static str,
    },

    /// The stream's pictures are larger than the decoder accepts (declared in the
    /// sample entry, or as decoded): a hostile or misconfigured stream must not make
    /// FFmpeg allocate hundreds of megabytes per picture.
    #[error(
        "picture {width}x{height} is larger than {max_width}x{max_height}, the most \
         this decoder accepts"
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },

    /// A thumbnail could not be made from a decoded picture.
    #[error("cannot make a thumbnail: {0}")]
    Thumbnail(String),
}
