//! An event's thumbnail: a decoded picture made small and encoded as JPEG, in plain
//! Rust (no ffmpeg here, so it is tested on synthetic pictures).
//!
//! The picture is box-averaged down by a whole factor to at most `max_width` pixels
//! wide and converted from BT.601 YUV to RGB.

use jpeg_encoder::{ColorType, Encoder};

use super::decode::Picture;
use super::MotionError;

/// JPEG quality: small files, faces still recognisable at 320 px.
const QUALITY: u8 = 75;

/// Encodes `picture` as a JPEG at most `max_width` pixels wide.
pub fn jpeg_thumbnail(picture: &Picture, max_width: u32) -> Result<Vec<u8>, MotionError> {
    let (w, h) = (picture.width as usize, picture.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    if w == 0
        || h == 0
        || picture.y.len() < w * h
        || picture.u.len() < cw * ch
        || picture.v.len() < cw * ch
    {
        return Err(MotionError::Thumbnail(
            "picture planes are smaller than its size".into(),
        ));
    }
    let factor = (picture.width.div_ceil(max_width.max(1)) as usize).max(1);
    let (ow, oh) = (w / factor, h / factor);
    if ow == 0 || oh == 0 || ow > usize::from(u16::MAX) || oh > usize::from(u16::MAX) {
        return Err(MotionError::Thumbnail(format!(
            "a {w}x{h} picture cannot be scaled to {max_width} px"
        )));
    }
    let mut rgb = Vec::with_capacity(ow * oh * 3);
    let area = (factor * factor) as u32;
    for oy in 0..oh {
        for ox in 0..ow {
            let (mut ys, mut us, mut vs) = (0u32, 0u32, 0u32);
            for dy in 0..factor {
                for dx in 0..factor {
                    let (x, y) = (ox * factor + dx, oy * factor + dy);
                    ys += u32::from(picture.y[y * w + x]);
                    us += u32::from(picture.u[(y / 2) * cw + x / 2]);
                    vs += u32::from(picture.v[(y / 2) * cw + x / 2]);
                }
            }
            rgb.extend_from_slice(&yuv_to_rgb(
                ys / area,
                us / area,
                vs / area,
                picture.full_range,
            ));
        }
    }
    let mut jpeg = Vec::new();
    Encoder::new(&mut jpeg, QUALITY)
        .encode(&rgb, ow as u16, oh as u16, ColorType::Rgb)
        .map_err(|e| MotionError::Thumbnail(e.to_string()))?;
    Ok(jpeg)
}

/// BT.601 YUV → RGB, integer arithmetic.
fn yuv_to_rgb(y: u32, u: u32, v: u32, full_range: bool) -> [u8; 3] {
    let (y, u, v) = (y as i32, u as i32 - 128, v as i32 - 128);
    // Video range stretches 16–235 luma to 0–255 (×255/219 ≈ 298/256).
    let c = if full_range { y * 256 } else { (y - 16) * 298 };
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * v),
        clamp(c - 100 * u - 208 * v),
        clamp(c + 516 * u),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, y: u8, u: u8, v: u8) -> Picture {
        let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
        Picture {
            width,
            height,
            y: vec![y; (width * height) as usize],
            u: vec![u; cw * ch],
            v: vec![v; cw * ch],
            full_range: false,
        }
    }

    #[test]
    fn a_thumbnail_is_a_small_jpeg_that_ffprobe_reads() {
        let jpeg = jpeg_thumbnail(&solid(640, 360, 120, 100, 160), 320).expect("encode");
        assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff], "JPEG magic");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.jpg");
        std::fs::write(&path, &jpeg).expect("write");
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .expect("ffprobe is installed (make test installs it)");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "320,180");
    }

    #[test]
    fn colours_convert_like_bt601() {
        assert_eq!(yuv_to_rgb(16, 128, 128, false), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128, false), [255, 255, 255]);
        let red = yuv_to_rgb(81, 90, 240, false);
        assert!(red[0] > 240 && red[1] < 20 && red[2] < 20, "{red:?}");
    }

    #[test]
    fn short_planes_are_an_error_not_a_panic() {
        let mut p = solid(64, 64, 0, 0, 0);
        p.u.truncate(3);
        assert!(jpeg_thumbnail(&p, 32).is_err());
        assert!(jpeg_thumbnail(&solid(1, 1, 0, 0, 0), 32).is_ok());
    }
}
