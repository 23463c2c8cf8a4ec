//! Asking an ONVIF camera for its RTSP stream URLs: `GetProfiles`, then
//! `GetStreamUri` (RTP-Unicast over RTSP) per profile, SOAP 1.2 over HTTP with a
//! WS-Security UsernameToken (PasswordDigest).
//!
//! Called only on the owner's explicit action on the add form, and only with the
//! device-service URL that discovery heard from that camera (the web layer looks it
//! up by the entry's endpoint; a URL typed by a user never reaches here, so this is
//! no way to make the daemon fetch arbitrary URLs). Bounded: [`TIMEOUT`] per call,
//! no redirects, no proxy, answers over [`MAX_ANSWER`] bytes refused, at most
//! [`MAX_PROFILES`] profiles asked. The password is never logged; it leaves the
//! daemon only as the digest.

use std::time::Duration;

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::discovery::onvif::{attribute, elements, tagged, unescape};

/// Per HTTP call.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read (64 KiB; a GetProfiles answer is a few KiB).
pub const MAX_ANSWER: usize = 64 * 1024;
/// Profiles asked for a stream URL (cameras have two or three: main, sub, third).
pub const MAX_PROFILES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum OnvifError {
    #[error("the camera's ONVIF service did not answer: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the camera's ONVIF service answered HTTP {0} (wrong user name or password?)")]
    Status(u16),
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
    let profiles = call(&client, device, &login, GET_PROFILES).await?;
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
        let answer = call(&client, device, &login, &body).await?;
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

/// `uri` as an `rtsp://` URL at `device`'s host, credentials removed; else `None`.
fn same_host_rtsp(uri: &str, device: &url::Url) -> Option<url::Url> {
    let mut url = url::Url::parse(uri).ok()?;
    if url.scheme() != "rtsp" {
        return None;
    }
    // `rtsp` is not a special scheme, so an IPv4 host parses as a name: compare text.
    let host = url.host_str()?.trim_matches(['[', ']']).to_owned();
    if host != device.host_str()?.trim_matches(['[', ']']) {
        return None;
    }
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some(url)
}

/// The credentials typed by the owner, and the `Created` stamp.
struct Login<'a> {
    username: &'a str,
    password: &'a str,
    created: &'a str,
}

async fn call(
    client: &reqwest::Client,
    device: &url::Url,
    login: &Login<'_>,
    body: &str,
) -> Result<String, OnvifError> {
    let envelope = envelope(login, body);
    let mut response = client
        .post(device.clone())
        .header("Content-Type", "application/soap+xml; charset=utf-8")
        .body(envelope)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(OnvifError::Status(response.status().as_u16()));
    }
    let mut answer = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if answer.len() + chunk.len() > MAX_ANSWER {
            return Err(OnvifError::TooLarge);
        }
        answer.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// The SOAP envelope with a fresh UsernameToken around `body`.
fn envelope(login: &Login<'_>, body: &str) -> String {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).expect("the OS random number generator is available");
    let created = login.created;
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsse:UsernameToken><wsse:Username>{}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{}</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header><s:Body>{body}</s:Body></s:Envelope>"#,
        escape(login.username),
        b64.encode(password_digest(&nonce, created, login.password)),
        b64.encode(nonce),
    )
}

/// WS-Security's PasswordDigest: SHA-1(nonce ‖ created ‖ password).
fn password_digest(nonce: &[u8], created: &str, password: &str) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    h.finalize().into()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const GET_PROFILES: &str = "<trt:GetProfiles/>";
const GET_STREAM_URI: &str = r#"<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>{token}</trt:ProfileToken></trt:GetStreamUri>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_the_ws_security_one() {
        // From the WS-Security UsernameToken profile's construction, checked with
        // `printf 'NONCE2026-01-01T00:00:00Zpw' | sha1sum | xxd -r -p | base64`.
        let d = password_digest(b"NONCE", "2026-01-01T00:00:00Z", "pw");
        let b64 = base64::engine::general_purpose::STANDARD.encode(d);
        assert_eq!(b64, "0A/BZbTHGBam55skzMk1r90MO+c=");
    }

    #[test]
    fn only_rtsp_urls_at_the_device_host_are_kept_without_credentials() {
        let device: url::Url = "http://192.168.1.64/onvif/device_service"
            .parse()
            .expect("url");
        let ok = same_host_rtsp("rtsp://admin:pw@192.168.1.64:554/Streaming/101", &device);
        assert_eq!(
            ok.map(|u| u.to_string()).as_deref(),
            Some("rtsp://192.168.1.64:554/Streaming/101")
        );
        assert_eq!(same_host_rtsp("rtsp://10.0.0.1/x", &device), None);
        assert_eq!(same_host_rtsp("http://192.168.1.64/x", &device), None);
    }

    #[test]
    fn profile_tokens_come_from_attributes() {
        let xml = r#"<trt:GetProfilesResponse><trt:Profiles fixed="true" token='main&amp;1'><tt:Name>m</tt:Name></trt:Profiles><trt:Profiles token="sub"/></trt:GetProfilesResponse>"#;
        let tokens: Vec<Option<String>> = tagged(xml, "Profiles")
            .into_iter()
            .map(|(a, _)| attribute(a, "token"))
            .collect();
        assert_eq!(
            tokens,
            vec![Some("main&1".to_owned()), Some("sub".to_owned())]
        );
    }
}
