//! ONVIF WS-Discovery, the message half: the `Probe` we multicast and the
//! `ProbeMatches` answers we accept. Pure code on bytes (the socket loop is
//! `onvif_probe.rs`), so every rule here is unit-tested without a network.
//!
//! How WS-Discovery (SOAP over UDP; ONVIF uses the 2005/04 draft namespace) finds a
//! camera: we multicast a `Probe` for `dn:NetworkVideoTransmitter` (the type every
//! ONVIF camera has) to 239.255.255.250:3702; each camera answers with a
//! `ProbeMatches` sent unicast back to the probe's source address and port, whose
//! `RelatesTo` is the probe's `MessageID`, and which carries the camera's
//! `EndpointReference/Address` (a stable `urn:uuid:`), its `XAddrs` (device-service
//! URLs) and `Scopes` (`onvif://www.onvif.org/name/…`, `/hardware/…`).
//!
//! Every datagram is hostile until it passes these rules:
//! - longer than [`MAX_DATAGRAM`]: ignored whole, not cut;
//! - not UTF-8, or `RelatesTo` is not our probe's MessageID (a fresh random UUID per
//!   probe, so only a host that saw the probe can answer it): ignored;
//! - the source must be a LAN address ([`is_lan`]) or loopback: discovery is a LAN
//!   affair, and an answer from elsewhere is not a camera on this network;
//! - an XAddr is kept only if it is `http(s)`, has no credentials, and its host is the
//!   IP literal of the datagram's source address: "ask the camera for its streams"
//!   sends the owner's credentials (a digest of them) to it, so one LAN host must
//!   not be able to point that at another (or at us). Host names are dropped:
//!   trusting them would need a DNS lookup, and a name can point anywhere. At most
//!   [`MAX_ADDRESSES`] are kept, each at most [`MAX_TXT`] long;
//! - an entry is named by its endpoint *and* its source, so a host that answers with
//!   another camera's endpoint (which it can learn by probing it) gets a row of its
//!   own, under its own address, and cannot replace that camera's;
//! - texts (endpoint, scope values) are percent-decoded where they are URIs, then cut
//!   to [`MAX_TXT`] printable characters; at most [`MAX_SCOPES`] scopes are read and
//!   [`MAX_ENTRIES`] matches per datagram;
//! - the extractor ([`elements`]) is hand-written, linear in the datagram, never
//!   recurses and understands only elements, prefixes and the five XML entities: the
//!   answers need no more, and an XML crate would be a large parser for hostile input
//!   to reach.
//!
//! Nothing found here is connected to.

use std::net::{IpAddr, Ipv4Addr};

use super::{clean_txt, tidy_addresses, DiscoveredCamera, Source, MAX_ADDRESSES, MAX_ENTRIES};
use super::{MAX_TXT, RTSP_DEFAULT_PORT};

/// The WS-Discovery multicast group (IPv4) and port.
pub const WSD_GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
pub const WSD_PORT: u16 = 3702;
/// Largest answer read (64 KiB, the UDP maximum); anything longer is ignored.
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// Most scopes read from one match (cameras send about ten).
pub const MAX_SCOPES: usize = 64;
/// The `service_type` shown for ONVIF entries.
pub const ONVIF_TYPE: &str = "ONVIF NetworkVideoTransmitter";
const SCOPE_PREFIX: &str = "onvif://www.onvif.org/";

/// A fresh random MessageID, `urn:uuid:` + a version-4 UUID.
pub fn new_message_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random number generator is available");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The `Probe` envelope for ONVIF cameras (`dn:NetworkVideoTransmitter`).
pub fn probe_message(message_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>{message_id}</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header><s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>"#
    )
}

/// One accepted `ProbeMatch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeMatch {
    /// `EndpointReference/Address`, the device's stable id (`urn:uuid:…`).
    pub endpoint: String,
    /// Device-service URLs that passed the rules above (all at the source address).
    pub xaddrs: Vec<url::Url>,
    /// The `name` scope.
    pub name: Option<String>,
    /// The `hardware` scope (the model).
    pub hardware: Option<String>,
}

/// The matches in one answer to the probe `message_id`, received from `source`;
/// empty when the datagram breaks any rule in the module docs.
pub fn parse_probe_matches(datagram: &[u8], message_id: &str, source: IpAddr) -> Vec<ProbeMatch> {
    if datagram.len() > MAX_DATAGRAM || !(is_lan(source) || source.is_loopback()) {
        return Vec::new();
    }
    let Ok(xml) = std::str::from_utf8(datagram) else {
        return Vec::new();
    };
    let relates = elements(xml, "RelatesTo").first().map(|r| unescape(r));
    if relates.as_deref() != Some(message_id) {
        return Vec::new();
    }
    elements(xml, "ProbeMatch")
        .into_iter()
        .take(MAX_ENTRIES)
        .filter_map(|m| one_match(m, source))
        .collect()
}

impl ProbeMatch {
    /// The list entry for this match, heard from `source` at `now`. Its RTSP port is
    /// only the usual 554: WS-Discovery does not say where the stream is.
    pub fn into_discovered(self, source: IpAddr, now: i64) -> DiscoveredCamera {
        let mut addresses = vec![source];
        addresses.extend(self.xaddrs.iter().filter_map(host_ip));
        DiscoveredCamera {
            fullname: format!("{} at {source}", self.endpoint),
            instance: self.name.unwrap_or(self.endpoint),
            service_type: ONVIF_TYPE.to_owned(),
            source: Source::Onvif,
            host: source.to_string(),
            addresses: tidy_addresses(addresses),
            port: RTSP_DEFAULT_PORT,
            path: None,
            model: self.hardware,
            device_url: self.xaddrs.first().map(|u| u.to_string()),
            first_seen_micros: now,
            last_seen_micros: now,
        }
    }
}

fn one_match(m: &str, source: IpAddr) -> Option<ProbeMatch> {
    let epr = *elements(m, "EndpointReference").first()?;
    let endpoint = clean_txt(&unescape(elements(epr, "Address").first()?));
    if endpoint.is_empty() {
        return None;
    }
    let xaddrs_text = elements(m, "XAddrs").first().map(|x| unescape(x));
    let xaddrs: Vec<url::Url> = xaddrs_text
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|u| accepted_xaddr(u, source))
        .take(MAX_ADDRESSES)
        .collect();
    let scopes = elements(m, "Scopes").first().map(|s| unescape(s));
    let scope = |kind: &str| {
        scopes
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .take(MAX_SCOPES)
            .find_map(|s| s.strip_prefix(SCOPE_PREFIX)?.strip_prefix(kind))
            .map(|v| clean_txt(&percent_decode(v)))
            .filter(|v| !v.is_empty())
    };
    Some(ProbeMatch {
        endpoint,
        xaddrs,
        name: scope("name/"),
        hardware: scope("hardware/"),
    })
}

/// An XAddr we may show: see the module docs.
fn accepted_xaddr(text: &str, source: IpAddr) -> Option<url::Url> {
    if text.len() > MAX_TXT {
        return None;
    }
    let url = url::Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
        return None;
    }
    if url.password().is_some() {
        return None;
    }
    (host_ip(&url)? == source).then_some(url)
}

fn host_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(_) => None,
    }
}

/// A LAN address: IPv4 private (RFC 1918) or link-local, IPv6 unique-local or
/// link-local. Loopback is not one (see the module docs).
pub fn is_lan(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => a.is_unique_local() || a.is_unicast_link_local(),
    }
}

/// The inner text of each element whose local name is `local` (any prefix), in
/// document order.
pub(crate) fn elements<'a>(xml: &'a str, local: &str) -> Vec<&'a str> {
    tagged(xml, local)
        .into_iter()
        .map(|(_, inner)| inner)
        .collect()
}

/// The value of attribute `name` in a start tag's attribute text, entities decoded.
pub(crate) fn attribute(attributes: &str, name: &str) -> Option<String> {
    let mut rest = attributes;
    while let Some(i) = rest.find(name) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + name.len()..].trim_start();
        rest = &rest[i + name.len()..];
        if !before.is_some_and(|c| c.is_whitespace() || c == ':') {
            continue;
        }
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let value = &value[1..];
        return value.find(quote).map(|end| unescape(&value[..end]));
    }
    None
}

/// Each element whose local name is `local` (any prefix), in document order, as
/// (the start tag's attribute text, the inner text). Linear: a name ends at the next
/// `<` too (else 64 KiB of `<` took seconds, each name running to the end), and when
/// no closing tag follows, there is none for any later element of that name either,
/// so the scan stops.
pub(crate) fn tagged<'a>(xml: &'a str, local: &str) -> Vec<(&'a str, &'a str)> {
    let suffix = format!(":{local}");
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(lt) = xml[at..].find('<') {
        let start = at + lt + 1;
        at = start;
        let rest = &xml[start..];
        let name_len = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/' || c == '<')
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty() || !(name == local || name.ends_with(&suffix)) {
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let content_start = start + gt + 1;
        at = content_start;
        let attributes = &rest[name_len..gt];
        if attributes.ends_with('/') {
            found.push((attributes.trim_end_matches('/'), ""));
            continue;
        }
        let close = format!("</{name}");
        let mut search = content_start;
        loop {
            let Some(i) = xml[search..].find(&close) else {
                return found;
            };
            let after = search + i + close.len();
            let tail = xml[after..].trim_start();
            if tail.starts_with('>') {
                found.push((attributes, &xml[content_start..search + i]));
                at = xml.len() - tail.len() + 1;
                break;
            }
            search = after;
        }
    }
    found
}

/// Trimmed text with the five predefined XML entities replaced (`&amp;` last, so
/// `&amp;lt;` stays `&lt;`).
pub(crate) fn unescape(text: &str) -> String {
    text.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `%XX` escapes decoded (a bad escape is kept as it is); invalid UTF-8 becomes U+FFFD.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "onvif_tests.rs"]
mod tests;
