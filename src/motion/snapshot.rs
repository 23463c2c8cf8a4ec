//! One picture of a camera as JPEG, from a single keyframe: the camera settings page
//! shows it to draw ignore zones on, "Test connection" shows it before a camera is
//! saved, and the API's `snapshot.jpg` hands it to integrations. Built from the decoder and the thumbnail encoder, so ffmpeg stays in
//! [`super::decode`].

use super::decode::{MotionDecoder, PictureLimit};
use super::thumbnail::jpeg_thumbnail;
use super::MotionError;

/// Widest snapshot an integration gets; a wider picture is box-averaged down by a
/// whole factor (a 4K camera gives 1920 px).
pub const MAX_WIDTH: u32 = 1920;

/// Decodes `keyframe` (one AVCC access unit of the stream `sample_entry` describes)
/// and encodes it as a JPEG at most `max_width` pixels wide.
pub fn keyframe_jpeg(
    sample_entry: &[u8],
    keyframe: &[u8],
    pts: i64,
    max_width: u32,
) -> Result<Vec<u8>, MotionError> {
    // The analysis width does not matter here: only the full picture is used. Main
    // streams may be larger than analysis streams, but not without bound.
    let mut decoder = MotionDecoder::with_limit(sample_entry, 160, PictureLimit::SNAPSHOT)?;
    decoder.decode(keyframe, true, pts)?;
    if decoder.last_picture().is_none() {
        decoder.finish()?;
    }
    let picture = decoder.last_picture().ok_or_else(|| {
        MotionError::Thumbnail("the keyframe decoded to no 8-bit 4:2:0 picture".into())
    })?;
    jpeg_thumbnail(&picture, max_width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::bitstream::VideoCodec;
    use crate::motion::testutil::{encode, load};

    #[test]
    fn a_keyframe_becomes_a_jpeg_of_the_picture() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Left half white, right half black: the JPEG must show it.
        let lavfi =
            "color=c=white:size=640x360:rate=10,drawbox=x=320:y=0:w=320:h=360:color=black:t=fill";
        let path = encode(VideoCodec::H264, dir.path(), "k.h264", lavfi, 1, 10);
        let s = load(VideoCodec::H264, &path, 10, 640, 360);
        let key = s.units.iter().find(|u| u.is_key).expect("a keyframe");
        let jpeg = keyframe_jpeg(&s.sample_entry, &key.data, key.pts, 320).expect("snapshot");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
        let out = dir.path().join("k.jpg");
        std::fs::write(&out, &jpeg).expect("write");
        // ffmpeg judges: a 320x180 picture, bright on the left, dark on the right.
        let gray = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&out)
            .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
            .output()
            .expect("ffmpeg runs");
        assert!(gray.status.success());
        assert_eq!(gray.stdout.len(), 320 * 180);
        let row = &gray.stdout[90 * 320..91 * 320];
        assert!(row[40] > 200 && row[280] < 50, "{} {}", row[40], row[280]);
    }

    #[test]
    fn garbage_is_an_error_not_a_picture() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = encode(
            VideoCodec::H264,
            dir.path(),
            "g.h264",
            "color=c=gray:size=64x64:rate=10",
            1,
            10,
        );
        let s = load(VideoCodec::H264, &path, 10, 64, 64);
        assert!(keyframe_jpeg(&s.sample_entry, &[0, 0, 0, 3, 1, 2, 3], 0, 320).is_err());
    }
}
