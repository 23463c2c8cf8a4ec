//! Asking an ONVIF camera for its RTSP stream URLs, SOAP 1.2 over HTTP, in this
//! order:
//!
//! 1. `GetServices` (device service, ONVIF 2.0 and later) at the device-service URL:
//!    the Media service's address is the `XAddr` of the entry whose `Namespace` is
//!    [`MEDIA_NS`]. Many cameras (Hikvision, Dahua, Axis, Reolink, …) serve Media at
//!    another path (`/onvif/Media`, `/onvif/media_service`) and answer a Media call at
//!    the device service with a fault;
//! 2. if that fails or names no usable Media address, `GetCapabilities` (category
//!    `All`; cameras before ONVIF 2.0 have only this): its `Media/XAddr`;
//! 3. if neither gives one, the device-service URL itself (cameras that serve Media
//!    there);
//! 4. `GetProfiles`, then `GetStreamUri` (RTP-Unicast over RTSP) per profile, at the
//!    address found; if that address refuses the connection and it is not the
//!    device URL, `GetProfiles` is asked once more at the device URL, and the Media
//!    calls go there. (Not after a timeout: that call may have reached the camera
//!    and counted as a failed login.)
//!
//! Credentials: the Media calls (step 4) carry a WS-Security UsernameToken
//! (PasswordDigest). `GetServices` and `GetCapabilities` are `PRE_AUTH` in ONVIF
//! Core, so they go without it: a camera locks a source address out after a few
//! failed logins (Hikvision and Dahua after about five, often for 30 minutes, which
//! would also block the daemon's RTSP connection), so a wrong password must cost one
//! failed login per click, not one per call. Only when a device call is refused for
//! authorization (HTTP 401, or a SOAP fault whose `Subcode/Value` is `NotAuthorized`,
//! e.g. `ter:NotAuthorized`; a non-conforming camera) is it sent again with the
//! token, and later device calls carry it at once; if the camera refuses the token
//! too, that refusal is returned and nothing more is asked.
//!
//! Called only on the owner's explicit action on the add form, and only with the
//! device-service URL that discovery heard from that camera (the web layer looks it
//! up by the entry's endpoint; a URL typed by a user never reaches here, so this is
//! no way to make the daemon fetch arbitrary URLs). The Media address comes from the
//! camera's answer, so it is used only when it is `http(s)`, carries no credentials
//! and its host is the device URL's host (port and path may differ): a camera cannot
//! point the owner's digest at another machine. Bounded: [`TIMEOUT`] per call, no
//! redirects, no proxy, answers (error answers too) over [`MAX_ANSWER`] bytes
//! refused, at most [`MAX_PROFILES`] profiles asked; when the device service does
//! not answer `GetServices` or `GetCapabilities` at all (no connection, or no answer
//! within [`TIMEOUT`]), that error is returned at once rather than asking the same
//! URL again. The password is never logged; it leaves the daemon only as the digest.

use std::time::Duration;

use self::answers::{media_from_capabilities, media_from_services, same_host_rtsp};
use self::soap::{
    call, escape, Login, GET_CAPABILITIES, GET_PROFILES, GET_SERVICES, GET_STREAM_URI,
};
use crate::discovery::onvif::{attribute, elements, tagged, unescape};

mod answers;
mod soap;

#[cfg(test)]
mod tests;

/// Per HTTP call.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read (64 KiB; a GetProfiles answer is a few KiB).
pub const MAX_ANSWER: usize = 64 * 1024;
/// Profiles asked for a stream URL (cameras have two or three: main, sub, third).
pub const MAX_PROFILES: usize = 4;
/// The Media (ver10) service's namespace in a `GetServices` answer: the calls below
/// are ver10 Media calls, so only this entry (not Media2, `ver20`) says where to send
/// them.
pub const MEDIA_NS: &str = "http://www.onvif.org/ver10/media/wsdl";

#[derive(Debug, thiserror::Error)]
pub enum OnvifError {
    #[error("the camera's ONVIF service did not answer: {0}")]
    Http(#[from] reqwest::Error),
    /// An HTTP error status that is not an authorization refusal.
    #[error("the camera's ONVIF service answered HTTP {0} (wrong user name or password?)")]
    Status(u16),
    /// Refused for authorization (HTTP 401, or a `NotAuthorized` fault). The text is
    /// the one the add form has always shown for a wrong password.
    #[error("the camera's ONVIF service answered HTTP {0} (wrong user name or password?)")]
    NotAuthorized(u16),
    #[error("the camera's ONVIF answer is larger than {MAX_ANSWER} bytes")]
    TooLarge,
    #[error("the camera's ONVIF answer has no {0}")]
    Missing(&'static str),
}

/// The RTSP URLs of the camera's profiles, in its order (the first is usually the
/// main stream), without credentials; only `rtsp://` URLs whose host is the
/// device service's own host are kept. `now_micros` (the daemon's clock) stamps the
/// UsernameToken's `Created`.
pub async fn stream_uris(
    device: &url::Url,
    username: &str,
    password: &str,
    now_micros: i64,
) -> Result<Vec<url::Url>, OnvifError> {
    let created = jiff::Timestamp::from_microsecond(now_micros)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let login = Login {
        username,
        password,
        created: &created,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?;
    let media = media_url(&client, device, &login).await?;
    let (media, profiles) = match call(&client, &media, Some(&login), GET_PROFILES).await {
        // Only a refused connection: a call that timed out may have reached the camera
        // (and counted as a failed login), so it is not sent a second time elsewhere.
        Err(OnvifError::Http(e)) if e.is_connect() && media != *device => {
            tracing::debug!(device = %device, media = %media, "ONVIF Media address: {e}; asking the device URL");
            let profiles = call(&client, device, Some(&login), GET_PROFILES).await?;
            (device.clone(), profiles)
        }
        other => (media, other?),
    };
    let tokens: Vec<String> = tagged(&profiles, "Profiles")
        .into_iter()
        .filter_map(|(attrs, _)| attribute(attrs, "token"))
        .take(MAX_PROFILES)
        .collect();
    if tokens.is_empty() {
        return Err(OnvifError::Missing("profile"));
    }
    let mut uris = Vec::new();
    for token in tokens {
        let body = GET_STREAM_URI.replace("{token}", &escape(&token));
        let answer = call(&client, &media, Some(&login), &body).await?;
        let Some(uri) = elements(&answer, "Uri").first().map(|u| unescape(u)) else {
            continue;
        };
        if let Some(uri) = same_host_rtsp(&uri, device) {
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
    }
    if uris.is_empty() {
        return Err(OnvifError::Missing("RTSP stream URL"));
    }
    Ok(uris)
}

/// Where to send the Media calls: steps 1 to 3 of the module docs, without the
/// token unless the camera asks for it (see there). Errs only when the device
/// service did not answer at all, or refused the token; any other failure of
/// `GetServices` or `GetCapabilities` (a fault, an HTTP error status, an answer
/// without a usable address) moves on to the next step.
async fn media_url(
    client: &reqwest::Client,
    device: &url::Url,
    login: &Login<'_>,
) -> Result<url::Url, OnvifError> {
    let steps: [(&str, PickMedia); 2] = [
        (GET_SERVICES, media_from_services),
        (GET_CAPABILITIES, media_from_capabilities),
    ];
    // Set once the camera has refused a device call without the token.
    let mut with_token = false;
    for (body, pick) in steps {
        let mut answer = call(client, device, with_token.then_some(login), body).await;
        if !with_token && matches!(answer, Err(OnvifError::NotAuthorized(_))) {
            with_token = true;
            answer = call(client, device, Some(login), body).await;
        }
        match answer {
            Ok(answer) => {
                if let Some(media) = pick(&answer, device) {
                    tracing::debug!(device = %device, media = %media, "ONVIF Media address");
                    return Ok(media);
                }
            }
            // Only ever after the token was sent: another call would be another
            // failed login.
            Err(e @ OnvifError::NotAuthorized(_)) => return Err(e),
            Err(OnvifError::Http(e)) if unreachable(&e) => return Err(OnvifError::Http(e)),
            Err(e) => tracing::debug!(device = %device, "ONVIF Media address: {e}"),
        }
    }
    Ok(device.clone())
}

/// Reads the Media address from a device call's answer, given the device URL.
type PickMedia = fn(&str, &url::Url) -> Option<url::Url>;

/// Whether `e` means the address did not answer at all (no connection, or no answer
/// within [`TIMEOUT`]).
fn unreachable(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout()
}
