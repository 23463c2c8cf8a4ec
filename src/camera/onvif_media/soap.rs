//! The SOAP 1.2 calls: the envelope, the WS-Security UsernameToken
//! (PasswordDigest), the request bodies, and one bounded HTTP round trip.

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::answers::not_authorized_fault;
use super::{OnvifError, MAX_ANSWER};

/// The credentials typed by the owner, and the `Created` stamp.
pub(super) struct Login<'a> {
    pub(super) username: &'a str,
    pub(super) password: &'a str,
    pub(super) created: &'a str,
}

/// One SOAP call to `to`, with the UsernameToken when `login` is given. An error
/// status is [`OnvifError::NotAuthorized`] when it is 401 or its (bounded) body is a
/// `NotAuthorized` fault, else [`OnvifError::Status`].
pub(super) async fn call(
    client: &reqwest::Client,
    to: &url::Url,
    login: Option<&Login<'_>>,
    body: &str,
) -> Result<String, OnvifError> {
    let envelope = envelope(login, body);
    let mut response = client
        .post(to.clone())
        .header("Content-Type", "application/soap+xml; charset=utf-8")
        .body(envelope)
        .send()
        .await?;
    let status = response.status();
    let answer = read_answer(&mut response).await;
    if status.is_success() {
        // Some cameras refuse with 200 and a fault: a refusal all the same, so that
        // a device call is asked again with the token and a Media call stops.
        return match answer {
            Ok(a) if not_authorized_fault(&a) => Err(OnvifError::NotAuthorized(status.as_u16())),
            other => other,
        };
    }
    // An error answer that cannot be read (too large, cut off) says nothing more
    // than its status.
    let code = status.as_u16();
    if code == 401 || answer.is_ok_and(|a| not_authorized_fault(&a)) {
        Err(OnvifError::NotAuthorized(code))
    } else {
        Err(OnvifError::Status(code))
    }
}

/// The answer's body as text, at most [`MAX_ANSWER`] bytes.
async fn read_answer(response: &mut reqwest::Response) -> Result<String, OnvifError> {
    let mut answer = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if answer.len() + chunk.len() > MAX_ANSWER {
            return Err(OnvifError::TooLarge);
        }
        answer.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// The SOAP envelope around `body`, with a fresh UsernameToken when `login` is given.
fn envelope(login: Option<&Login<'_>>, body: &str) -> String {
    let header = login.map(security_header).unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">{header}<s:Body>{body}</s:Body></s:Envelope>"#
    )
}

/// The SOAP header with a fresh WS-Security UsernameToken (PasswordDigest).
fn security_header(login: &Login<'_>) -> String {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).expect("the OS random number generator is available");
    let created = login.created;
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        r#"<s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsse:UsernameToken><wsse:Username>{}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{}</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>"#,
        escape(login.username),
        b64.encode(password_digest(&nonce, created, login.password)),
        b64.encode(nonce),
    )
}

/// WS-Security's PasswordDigest: SHA-1(nonce ‖ created ‖ password).
pub(super) fn password_digest(nonce: &[u8], created: &str, password: &str) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    h.finalize().into()
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) const GET_SERVICES: &str =
    "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>";
pub(super) const GET_CAPABILITIES: &str =
    "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>";
pub(super) const GET_PROFILES: &str = "<trt:GetProfiles/>";
pub(super) const GET_STREAM_URI: &str = r#"<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>{token}</trt:ProfileToken></trt:GetStreamUri>"#;
