//! What "Test connection" on the add-camera page shows (`adopt.rs`): the codec, size
//! and frame rate as one line, and the first keyframe as a snapshot. Also the RTSP
//! streams announced on the LAN, offered for the URL fields.

use crate::camera::ingest;
use crate::motion::snapshot::keyframe_jpeg;
use crate::web::WebState;

/// Every RTSP URL announced on the LAN now, sorted, without repeats.
pub(super) fn discovered_streams(state: &WebState) -> Vec<String> {
    let mut urls: Vec<String> = state
        .discovery
        .as_ref()
        .map(|d| d.list())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.rtsp_url())
        .map(|u| u.to_string())
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

/// What "Test connection" shows.
pub(super) struct Found {
    /// "Connected: H264 video, 1280x720 (avc1.4d401f), 10 fps".
    pub text: String,
    /// The first keyframe as a `data:` JPEG URL (the CSP allows `data:` images; the
    /// picture is never stored), when one came and decoded.
    pub snapshot: Option<String>,
}

pub(super) fn probe_text(
    encoding: &str,
    size: Option<(u32, u32)>,
    codec: Option<&str>,
    frame_rate: Option<f64>,
) -> String {
    let mut text = format!("Connected: {} video", encoding.to_uppercase());
    if let Some((w, h)) = size {
        text.push_str(&format!(", {w}x{h}"));
    }
    if let Some(codec) = codec {
        text.push_str(&format!(" ({codec})"));
    }
    if let Some(fps) = frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
        // 10 fps, 29.97 fps: whole rates without decimals.
        let shown = format!("{fps:.2}");
        let shown = shown.trim_end_matches('0').trim_end_matches('.');
        text.push_str(&format!(", {shown} fps"));
    }
    text
}

/// Decodes the probe's keyframe to a small JPEG `data:` URL; a picture that does not
/// decode is logged and left out (the connection itself worked).
pub(super) async fn snapshot_url(keyframe: Option<ingest::ProbeFrame>) -> Option<String> {
    use base64::Engine as _;
    let k = keyframe?;
    let jpeg = tokio::task::spawn_blocking(move || {
        keyframe_jpeg(&k.sample_entry, &k.data, 0, super::snapshot::SNAPSHOT_WIDTH)
    })
    .await;
    match jpeg {
        Ok(Ok(jpeg)) => Some(format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(jpeg)
        )),
        Ok(Err(e)) => {
            tracing::warn!("test connection: the keyframe did not decode: {e}");
            None
        }
        Err(e) => {
            tracing::error!("test connection: decoding task failed: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_line_names_codec_size_and_a_readable_frame_rate() {
        assert_eq!(
            probe_text("h264", Some((1280, 720)), Some("avc1.4d401f"), Some(10.0)),
            "Connected: H264 video, 1280x720 (avc1.4d401f), 10 fps"
        );
        assert_eq!(
            probe_text("h265", None, None, Some(30000.0 / 1001.0)),
            "Connected: H265 video, 29.97 fps"
        );
        assert_eq!(
            probe_text("h264", None, None, Some(12.5)),
            "Connected: H264 video, 12.5 fps"
        );
        for unknown in [None, Some(0.0), Some(f64::INFINITY), Some(f64::NAN)] {
            assert_eq!(
                probe_text("h264", None, None, unknown),
                "Connected: H264 video"
            );
        }
    }
}
