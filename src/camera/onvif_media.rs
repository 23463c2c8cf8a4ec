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

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::discovery::onvif::{attribute, elements, tagged, unescape};

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

/// The Media address in a `GetServices` answer: the first entry whose `Namespace`
/// is [`MEDIA_NS`] and whose `XAddr` passes [`accepted_media`].
fn media_from_services(answer: &str, device: &url::Url) -> Option<url::Url> {
    elements(answer, "Service").into_iter().find_map(|service| {
        let namespace = unescape(elements(service, "Namespace").first()?);
        if namespace != MEDIA_NS {
            return None;
        }
        accepted_media(&unescape(elements(service, "XAddr").first()?), device)
    })
}

/// The Media address in a `GetCapabilities` answer (`Capabilities/Media/XAddr`), if
/// it passes [`accepted_media`].
fn media_from_capabilities(answer: &str, device: &url::Url) -> Option<url::Url> {
    let media = *elements(answer, "Media").first()?;
    accepted_media(&unescape(elements(media, "XAddr").first()?), device)
}

/// `text` as a Media address we may send the owner's digest to: `http(s)`, no
/// credentials, at `device`'s host (any port and path); else `None`.
fn accepted_media(text: &str, device: &url::Url) -> Option<url::Url> {
    let url = url::Url::parse(text).ok()?;
    let plain = url.username().is_empty() && url.password().is_none();
    (matches!(url.scheme(), "http" | "https") && plain && same_host(&url, device)).then_some(url)
}

/// `uri` as an `rtsp://` URL at `device`'s host, credentials removed; else `None`.
fn same_host_rtsp(uri: &str, device: &url::Url) -> Option<url::Url> {
    let mut url = url::Url::parse(uri).ok()?;
    if url.scheme() != "rtsp" || !same_host(&url, device) {
        return None;
    }
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some(url)
}

/// Whether `url` has a host and it is `device`'s. `rtsp` is not a special scheme, so
/// there an IPv4 host parses as a name: the hosts are compared as text (IPv6 without
/// brackets).
fn same_host(url: &url::Url, device: &url::Url) -> bool {
    let host = |u: &url::Url| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned());
    host(url).is_some() && host(url) == host(device)
}

/// Whether `e` means the address did not answer at all (no connection, or no answer
/// within [`TIMEOUT`]).
fn unreachable(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout()
}

/// The credentials typed by the owner, and the `Created` stamp.
struct Login<'a> {
    username: &'a str,
    password: &'a str,
    created: &'a str,
}

/// One SOAP call to `to`, with the UsernameToken when `login` is given. An error
/// status is [`OnvifError::NotAuthorized`] when it is 401 or its (bounded) body is a
/// `NotAuthorized` fault, else [`OnvifError::Status`].
async fn call(
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

/// Whether `answer` is a SOAP fault with a `Subcode/Value` (at any depth) whose
/// local name is `NotAuthorized`: ONVIF's refusal of missing or wrong credentials.
fn not_authorized_fault(answer: &str) -> bool {
    let Some(fault) = elements(answer, "Fault").first().copied() else {
        return false;
    };
    elements(fault, "Subcode").into_iter().any(|subcode| {
        elements(subcode, "Value").into_iter().any(|value| {
            let value = unescape(value);
            value.rsplit(':').next() == Some("NotAuthorized")
        })
    })
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

const GET_SERVICES: &str =
    "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>";
const GET_CAPABILITIES: &str =
    "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>";
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

    fn device() -> url::Url {
        "http://192.168.1.64/onvif/device_service"
            .parse()
            .expect("url")
    }

    /// A `GetServices` answer with IncludeCapability=false (as a Hikvision camera
    /// gives it), with the Media entry's XAddr `media`.
    fn services(media: &str) -> String {
        format!(
            r#"<s:Envelope><s:Body><tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>http://192.168.1.64/onvif/device_service</tds:XAddr><tds:Version><tt:Major>17</tt:Major><tt:Minor>12</tt:Minor></tds:Version></tds:Service><tds:Service><tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace><tds:XAddr>http://192.168.1.64/onvif/Media2</tds:XAddr></tds:Service><tds:Service><tds:Namespace> http://www.onvif.org/ver10/media/wsdl </tds:Namespace><tds:XAddr>{media}</tds:XAddr></tds:Service></tds:GetServicesResponse></s:Body></s:Envelope>"#
        )
    }

    /// A `GetCapabilities` answer (category All, trimmed) with Media's XAddr `media`.
    fn capabilities(media: &str) -> String {
        format!(
            r#"<s:Envelope><s:Body><tds:GetCapabilitiesResponse><tds:Capabilities><tt:Analytics><tt:XAddr>http://192.168.1.64/onvif/Analytics</tt:XAddr></tt:Analytics><tt:Device><tt:XAddr>http://192.168.1.64/onvif/device_service</tt:XAddr></tt:Device><tt:Media><tt:XAddr>{media}</tt:XAddr><tt:StreamingCapabilities><tt:RTP_TCP>true</tt:RTP_TCP></tt:StreamingCapabilities></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse></s:Body></s:Envelope>"#
        )
    }

    #[test]
    fn the_media_address_is_the_ver10_media_entry_of_get_services() {
        let got = media_from_services(&services("http://192.168.1.64/onvif/Media"), &device());
        assert_eq!(
            got.map(|u| u.to_string()).as_deref(),
            Some("http://192.168.1.64/onvif/Media")
        );
        // Another port and path at the same host are the camera's own.
        let got = media_from_services(
            &services("https://192.168.1.64:8443/onvif/media_service"),
            &device(),
        );
        assert_eq!(
            got.map(|u| u.to_string()).as_deref(),
            Some("https://192.168.1.64:8443/onvif/media_service")
        );
    }

    #[test]
    fn the_media_address_is_media_xaddr_of_get_capabilities() {
        let got = media_from_capabilities(
            &capabilities("http://192.168.1.64:80/onvif/Media"),
            &device(),
        );
        assert_eq!(
            got.map(|u| u.to_string()).as_deref(),
            Some("http://192.168.1.64/onvif/Media")
        );
    }

    #[test]
    fn a_media_address_elsewhere_with_credentials_or_not_http_is_refused() {
        for bad in [
            "http://192.168.1.65/onvif/Media",
            "http://10.0.0.1/onvif/Media",
            "http://camera.local/onvif/Media",
            "http://admin:pw@192.168.1.64/onvif/Media",
            "http://admin@192.168.1.64/onvif/Media",
            "ftp://192.168.1.64/onvif/Media",
            "rtsp://192.168.1.64/onvif/Media",
            "file:///etc/passwd",
            "/onvif/Media",
            "",
        ] {
            assert_eq!(
                media_from_services(&services(bad), &device()),
                None,
                "{bad}"
            );
            assert_eq!(
                media_from_capabilities(&capabilities(bad), &device()),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn an_answer_without_a_media_entry_gives_none() {
        // A fault, as a camera answers a call it does not know; then no Media entry.
        let fault = r#"<s:Envelope><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:ActionNotSupported</s:Value></s:Subcode></s:Code></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(media_from_services(fault, &device()), None);
        assert_eq!(media_from_capabilities(fault, &device()), None);
        let device_only = services("x").replace(MEDIA_NS, "http://example.com/other");
        assert_eq!(media_from_services(&device_only, &device()), None);
        // Media2 alone is not Media: its calls differ from the ver10 ones sent here.
        let media2_only = r#"<tds:Service><tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace><tds:XAddr>http://192.168.1.64/onvif/Media2</tds:XAddr></tds:Service>"#;
        assert_eq!(media_from_services(media2_only, &device()), None);
    }

    /// A one-page HTTP server on loopback: answers each POST with `answer(body)`
    /// (status, SOAP text) and records which call (`GetServices`, …) it was, with
    /// `+token` when it carried a UsernameToken.
    async fn soap_server(
        answer: fn(&str) -> (u16, String),
    ) -> (url::Url, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("port").port();
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = calls.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !String::from_utf8_lossy(&request).contains("</s:Envelope>") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let call = ["GetServices", "GetCapabilities", "GetProfiles"]
                    .into_iter()
                    .find(|c| text.contains(c))
                    .unwrap_or("other");
                let token = if text.contains("UsernameToken") {
                    "+token"
                } else {
                    ""
                };
                seen.lock().expect("lock").push(format!("{call}{token}"));
                let (status, body) = answer(&text);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(reply.as_bytes()).await;
            }
        });
        let url = format!("http://127.0.0.1:{port}/onvif/device_service");
        (url.parse().expect("url"), calls)
    }

    fn login() -> Login<'static> {
        Login {
            username: "admin",
            password: "pw",
            created: "2026-01-01T00:00:00Z",
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .no_proxy()
            .build()
            .expect("client")
    }

    #[tokio::test]
    async fn without_a_usable_media_address_the_device_url_is_used() {
        // Faults to both device calls (as a camera serving Media at the device URL).
        let (device, calls) = soap_server(|_| (400, "<s:Fault/>".to_owned())).await;
        let got = media_url(&client(), &device, &login()).await.expect("url");
        assert_eq!(got, device);
        assert_eq!(
            *calls.lock().expect("lock"),
            ["GetServices", "GetCapabilities"]
        );
        // A Media entry at another host is ignored the same way.
        let (device, calls) =
            soap_server(|_| (200, services("http://192.168.1.99/onvif/Media"))).await;
        let got = media_url(&client(), &device, &login()).await.expect("url");
        assert_eq!(got, device);
        assert_eq!(calls.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn get_capabilities_is_asked_only_when_get_services_gives_nothing() {
        let (device, calls) = soap_server(|body| {
            if body.contains("GetServices") {
                (400, "<s:Fault/>".to_owned())
            } else {
                (200, capabilities("http://127.0.0.1:1/onvif/Media"))
            }
        })
        .await;
        let got = media_url(&client(), &device, &login()).await.expect("url");
        assert_eq!(got.as_str(), "http://127.0.0.1:1/onvif/Media");
        assert_eq!(
            *calls.lock().expect("lock"),
            ["GetServices", "GetCapabilities"]
        );

        let (device, calls) =
            soap_server(|_| (200, services("http://127.0.0.1:2/onvif/Media"))).await;
        let got = media_url(&client(), &device, &login()).await.expect("url");
        assert_eq!(got.as_str(), "http://127.0.0.1:2/onvif/Media");
        assert_eq!(*calls.lock().expect("lock"), ["GetServices"]);
    }

    #[tokio::test]
    async fn a_device_service_that_cannot_be_reached_is_an_error_not_a_fallback() {
        // A port nothing listens on: the Media calls would go to the same place.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("port").port();
        drop(listener);
        let device: url::Url = format!("http://127.0.0.1:{port}/onvif/device_service")
            .parse()
            .expect("url");
        let got = media_url(&client(), &device, &login()).await;
        assert!(
            matches!(got, Err(OnvifError::Http(ref e)) if e.is_connect()),
            "{got:?}"
        );
    }

    /// ONVIF's refusal of a call's credentials, as Hikvision and Dahua send it.
    const NOT_AUTHORIZED: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">Sender not Authorized</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;

    #[test]
    fn only_a_not_authorized_subcode_is_an_authorization_refusal() {
        assert!(not_authorized_fault(NOT_AUTHORIZED));
        // A nested Subcode, and no prefix.
        let nested = NOT_AUTHORIZED.replace(
            "<s:Value>ter:NotAuthorized</s:Value>",
            "<s:Value>ter:Sender</s:Value><s:Subcode><s:Value>NotAuthorized</s:Value></s:Subcode>",
        );
        assert!(not_authorized_fault(&nested));
        for other in [
            NOT_AUTHORIZED.replace("ter:NotAuthorized", "ter:ActionNotSupported"),
            NOT_AUTHORIZED.replace("ter:NotAuthorized", "ter:NotAuthorizedAtAll"),
            // The word alone, outside a fault's Subcode, is not a refusal.
            "<s:Envelope><s:Body><x:Value>ter:NotAuthorized</x:Value></s:Body></s:Envelope>"
                .to_owned(),
            "<s:Fault/>".to_owned(),
            String::new(),
        ] {
            assert!(!not_authorized_fault(&other), "{other}");
        }
    }

    #[tokio::test]
    async fn a_wrong_password_costs_one_authenticated_call_and_keeps_its_message() {
        // A camera that refuses every call, with or without the token.
        let (device, calls) = soap_server(|_| (400, NOT_AUTHORIZED.to_owned())).await;
        let got = stream_uris(&device, "admin", "wrong", 0).await;
        assert!(
            matches!(got, Err(OnvifError::NotAuthorized(400))),
            "{got:?}"
        );
        let message = got.expect_err("refused").to_string();
        assert_eq!(
            message,
            "the camera's ONVIF service answered HTTP 400 (wrong user name or password?)"
        );
        assert_eq!(
            *calls.lock().expect("lock"),
            ["GetServices", "GetServices+token"]
        );

        // The same with HTTP 401 and no body.
        let (device, calls) = soap_server(|_| (401, String::new())).await;
        let got = stream_uris(&device, "admin", "wrong", 0).await;
        assert!(
            matches!(got, Err(OnvifError::NotAuthorized(401))),
            "{got:?}"
        );
        assert_eq!(
            *calls.lock().expect("lock"),
            ["GetServices", "GetServices+token"]
        );
    }

    #[tokio::test]
    async fn get_services_and_get_capabilities_go_without_the_token() {
        let (device, calls) =
            soap_server(|_| (200, services("http://127.0.0.1:2/onvif/Media"))).await;
        let got = media_url(&client(), &device, &login()).await.expect("url");
        assert_eq!(got.as_str(), "http://127.0.0.1:2/onvif/Media");
        assert_eq!(*calls.lock().expect("lock"), ["GetServices"]);

        // The Media calls carry it; a refusal there ends the lookup.
        let (device, calls) = soap_server(|body| {
            if body.contains("GetProfiles") {
                (400, NOT_AUTHORIZED.to_owned())
            } else {
                (400, "<s:Fault/>".to_owned())
            }
        })
        .await;
        let got = stream_uris(&device, "admin", "wrong", 0).await;
        assert!(
            matches!(got, Err(OnvifError::NotAuthorized(400))),
            "{got:?}"
        );
        assert_eq!(
            *calls.lock().expect("lock"),
            ["GetServices", "GetCapabilities", "GetProfiles+token"]
        );
    }

    #[tokio::test]
    async fn a_device_call_refused_without_the_token_is_asked_again_with_it() {
        // A camera that wants the token on GetServices too (not ONVIF's rule).
        services_asked_again_with_the_token(400).await;

        // Once it asked for the token, GetCapabilities carries it at once.
        let (device, calls) = soap_server(|body| {
            if !body.contains("UsernameToken") {
                (401, String::new())
            } else if body.contains("GetCapabilities") {
                (200, capabilities("http://127.0.0.1:3/onvif/Media"))
            } else {
                (400, "<s:Fault/>".to_owned())
            }
        })
        .await;
        let got = media_url(&client(), &device, &login()).await.expect("url");
        assert_eq!(got.as_str(), "http://127.0.0.1:3/onvif/Media");
        assert_eq!(
            *calls.lock().expect("lock"),
            ["GetServices", "GetServices+token", "GetCapabilities+token"]
        );
    }

    /// A camera that refuses with HTTP 200 and a `NotAuthorized` fault.
    #[tokio::test]
    async fn a_refusal_sent_with_status_200_is_a_refusal_too() {
        services_asked_again_with_the_token(200).await;
    }

    /// Against a camera refusing GetServices without the token (`NotAuthorized`
    /// fault with HTTP `status`): it is asked again with it, and its answer used.
    async fn services_asked_again_with_the_token(status: u16) {
        /// The camera, refusing with HTTP `STATUS`.
        fn camera<const STATUS: u16>(body: &str) -> (u16, String) {
            if !body.contains("UsernameToken") {
                (STATUS, NOT_AUTHORIZED.to_owned())
            } else if body.contains("GetServices") {
                (200, services("http://127.0.0.1:2/onvif/Media"))
            } else {
                (400, "<s:Fault/>".to_owned())
            }
        }
        let answer: fn(&str) -> (u16, String) = match status {
            200 => camera::<200>,
            _ => camera::<400>,
        };
        let (device, calls) = soap_server(answer).await;
        let got = media_url(&client(), &device, &login()).await.expect("url");
        assert_eq!(got.as_str(), "http://127.0.0.1:2/onvif/Media");
        assert_eq!(
            *calls.lock().expect("lock"),
            ["GetServices", "GetServices+token"]
        );
    }

    #[tokio::test]
    async fn an_unreachable_media_address_falls_back_to_the_device_url_once() {
        // GetServices names port 1 at the device's host (tcpmux: nothing listens on
        // loopback, so the connection is refused).
        let (device, calls) = soap_server(|body| {
            if body.contains("GetServices") {
                (200, services("http://127.0.0.1:1/onvif/Media"))
            } else if body.contains("GetProfiles") {
                (200, r#"<trt:GetProfilesResponse><trt:Profiles token="main"/></trt:GetProfilesResponse>"#.to_owned())
            } else {
                (200, "<tt:Uri>rtsp://127.0.0.1:554/main</tt:Uri>".to_owned())
            }
        })
        .await;
        let got = stream_uris(&device, "admin", "pw", 0).await.expect("uris");
        assert_eq!(
            got.iter().map(url::Url::as_str).collect::<Vec<_>>(),
            ["rtsp://127.0.0.1:554/main"]
        );
        assert_eq!(
            *calls.lock().expect("lock"),
            ["GetServices", "GetProfiles+token", "other+token"]
        );
    }

    /// A Media address that took the call but never answered may have counted a
    /// failed login: the call is not sent again to the device URL.
    #[tokio::test]
    async fn a_media_address_that_timed_out_is_not_asked_again_at_the_device_url() {
        static SILENT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        SILENT_PORT.store(
            silent.local_addr().expect("port").port(),
            std::sync::atomic::Ordering::SeqCst,
        );
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = silent.accept().await {
                held.push(tcp);
            }
        });
        let (device, calls) = soap_server(|body| {
            let port = SILENT_PORT.load(std::sync::atomic::Ordering::SeqCst);
            if body.contains("GetServices") {
                (
                    200,
                    services(&format!("http://127.0.0.1:{port}/onvif/Media")),
                )
            } else {
                (200, "<tt:Uri>rtsp://127.0.0.1:554/main</tt:Uri>".to_owned())
            }
        })
        .await;
        let got = stream_uris(&device, "admin", "pw", 0).await;
        assert!(
            matches!(got, Err(OnvifError::Http(ref e)) if e.is_timeout()),
            "{got:?}"
        );
        assert_eq!(*calls.lock().expect("lock"), ["GetServices"]);
    }
}
