//! A still picture of a camera as a JPEG, for integrations (the API's
//! `snapshot.jpg`): one keyframe decoded on its own — a keyframe needs no other frame
//! — and encoded like an event's thumbnail, at up to [`MAX_WIDTH`] pixels wide.
//!
//! Decoding runs ffmpeg through [`MotionDecoder`] (this module touches no ffmpeg
//! itself), with a decoder of its own that lives for one picture: nothing is shared
//! with the camera's motion detection, whose decoder may be idle or off. CPU-bound:
//! call it on a blocking thread.

use super::decode::MotionDecoder;
use super::thumbnail::jpeg_thumbnail;
use super::MotionError;

/// Widest snapshot; a wider picture is box-averaged down by a whole factor (a 4K
/// camera gives 1920 px).
pub const MAX_WIDTH: u32 = 1920;

/// Decodes `keyframe` (one access unit in AVCC form, as ingest hands it over, of the
/// stream `sample_entry` describes) and returns it as a JPEG.
pub fn keyframe_jpeg(sample_entry: &[u8], keyframe: &[u8]) -> Result<Vec<u8>, MotionError> {
    // The decoder's own grey downscale is not used; keep it small.
    let mut decoder = MotionDecoder::new(sample_entry, 16)?;
    decoder.decode(keyframe, true, 0)?;
    decoder.finish()?;
    let picture = decoder
        .last_picture()
        .ok_or_else(|| MotionError::Thumbnail("the keyframe gave no 8-bit 4:2:0 picture".into()))?;
    jpeg_thumbnail(&picture, MAX_WIDTH)
}
