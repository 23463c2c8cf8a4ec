//! Tests of asking an ONVIF camera for its stream URLs: the parsing on canned
//! answers, and the calls against a small SOAP server on a loopback port.

use base64::Engine as _;

use super::answers::not_authorized_fault;
use super::soap::password_digest;
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
    let (device, calls) = soap_server(|_| (200, services("http://192.168.1.99/onvif/Media"))).await;
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

    let (device, calls) = soap_server(|_| (200, services("http://127.0.0.1:2/onvif/Media"))).await;
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
        "<s:Envelope><s:Body><x:Value>ter:NotAuthorized</x:Value></s:Body></s:Envelope>".to_owned(),
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
    let (device, calls) = soap_server(|_| (200, services("http://127.0.0.1:2/onvif/Media"))).await;
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
