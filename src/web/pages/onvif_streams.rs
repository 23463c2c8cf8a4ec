//! "Ask the camera for its streams" on the add form, for a camera found by ONVIF:
//! the form names the discovered entry (its endpoint address), never a URL, and the
//! device-service URL comes from the discovery list alone, so no typed URL is ever
//! fetched. The owner's credentials go to `crate::camera::onvif_media` and are not
//! logged.

use crate::camera::onvif_media;
use crate::discovery::Source;
use crate::web::WebState;

/// The device-service URL discovery heard from the ONVIF entry `endpoint`, if any.
pub(super) fn device_url(state: &WebState, endpoint: &str) -> Option<url::Url> {
    if endpoint.is_empty() {
        return None;
    }
    state
        .discovery
        .as_ref()?
        .list()
        .into_iter()
        .find(|d| d.source == Source::Onvif && d.fullname == endpoint)?
        .device_url?
        .parse()
        .ok()
}

/// The camera's RTSP stream URLs (main first), or the message to show.
pub(super) async fn ask(
    state: &WebState,
    endpoint: &str,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Vec<url::Url>, String> {
    let Some(device) = device_url(state, endpoint) else {
        return Err("That camera is no longer in the discovered list: search again.".into());
    };
    let now = state.clock.now_micros();
    onvif_media::stream_uris(
        &device,
        username.unwrap_or_default(),
        password.unwrap_or_default(),
        now,
    )
    .await
    .map_err(|e| {
        // The error names the camera's answer, never the credentials.
        tracing::info!(device = %device, "ONVIF stream URLs: {e}");
        e.to_string()
    })
}
