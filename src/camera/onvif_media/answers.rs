//! Reading a camera's SOAP answers: where its Media service is, which stream URLs
//! may be kept, and whether a fault is an authorization refusal. Every address
//! taken from an answer must be at the device URL's host (see the module docs of
//! `onvif_media`).

use super::MEDIA_NS;
use crate::discovery::onvif::{elements, unescape};

/// The Media address in a `GetServices` answer: the first entry whose `Namespace`
/// is [`MEDIA_NS`] and whose `XAddr` passes [`accepted_media`].
pub(super) fn media_from_services(answer: &str, device: &url::Url) -> Option<url::Url> {
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
pub(super) fn media_from_capabilities(answer: &str, device: &url::Url) -> Option<url::Url> {
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
pub(super) fn same_host_rtsp(uri: &str, device: &url::Url) -> Option<url::Url> {
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

/// Whether `answer` is a SOAP fault with a `Subcode/Value` (at any depth) whose
/// local name is `NotAuthorized`: ONVIF's refusal of missing or wrong credentials.
pub(super) fn not_authorized_fault(answer: &str) -> bool {
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
