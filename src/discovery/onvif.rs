//! ONVIF WS-Discovery, the message half: the `Probe` we multicast, the
//! `ProbeMatches` answers we accept, and the `Hello`/`Bye` cameras multicast when
//! they come and go. Pure code on bytes (the sockets are `onvif_probe.rs` and
//! `onvif_listen.rs`), so every rule here is unit-tested without a network.
//!
//! How WS-Discovery (SOAP over UDP; ONVIF uses the 2005/04 draft namespace) finds a
//! camera: we multicast a `Probe` for `dn:NetworkVideoTransmitter` (the type every
//! ONVIF camera has) to 239.255.255.250:3702 (and `[ff02::c]:3702`); each camera answers with a
//! `ProbeMatches` sent unicast back to the probe's source address and port, whose
//! `RelatesTo` is the probe's `MessageID`, and which carries the camera's
//! `EndpointReference/Address` (a stable `urn:uuid:`), its `XAddrs` (device-service
//! URLs) and `Scopes` (`onvif://www.onvif.org/name/…`, `/hardware/…`).
//!
//! A `Hello` carries the same fields as a `ProbeMatch` and gets the same rules, less
//! the MessageID (nobody asked for it); it counts only when its `Types` name
//! `NetworkVideoTransmitter`. A `Bye` names an endpoint and removes only the entry of
//! that endpoint at the `Bye`'s own source address.
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
//!   trusting them would need a DNS lookup, and a name can point anywhere. An IPv6
//!   literal is bracketed (`http://[fd00::5]/…`) and compared as an address, so any
//!   spelling of the source matches; a zone (`[fe80::5%25eth0]`) does not parse, so
//!   such an XAddr is dropped. (An entry heard from a link-local address therefore
//!   shows URLs without the zone a connection to it would need.) At most
//!   [`MAX_ADDRESSES`] are kept, each at most [`MAX_TXT`] long;
//! - an entry is named by its endpoint *and* its source, so a host that answers with
//!   another camera's endpoint (which it can learn by probing it) gets a row of its
//!   own, under its own address, and cannot replace that camera's;
//! - texts (endpoint, scope values) are percent-decoded where they are URIs, then cut
//!   to [`MAX_TXT`] printable characters; at most [`MAX_SCOPES`] scopes are read and
//!   [`MAX_ENTRIES`] matches per datagram;
//! - the extractor (`onvif_xml.rs`) is hand-written, linear in the datagram, never
//!   recurses and understands only elements, prefixes and the five XML entities: the
//!   answers need no more, and an XML crate would be a large parser for hostile input
//!   to reach.
//!
//! Nothing found here is connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(crate) use super::onvif_xml::{attribute, elements, percent_decode, tagged, unescape};
use super::{clean_txt, tidy_addresses, DiscoveredCamera, Source, MAX_ADDRESSES, MAX_ENTRIES};
use super::{MAX_TXT, RTSP_DEFAULT_PORT};

/// The WS-Discovery multicast group (IPv4) and port.
pub const WSD_GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
/// The WS-Discovery multicast group (IPv6, link-local scope).
pub const WSD_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xc);
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
            fullname: onvif_fullname(&self.endpoint, source),
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

/// The list key of an ONVIF entry: its endpoint and the address that sent it (see
/// the module docs for why both).
pub(super) fn onvif_fullname(endpoint: &str, source: IpAddr) -> String {
    format!("{endpoint} at {source}")
}

/// A `Hello` or `Bye` multicast to the group by a device joining or leaving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// An ONVIF camera arrived (or changed): the same fields as a probe match.
    Hello(ProbeMatch),
    /// The device with this endpoint address is leaving.
    Bye { endpoint: String },
}

/// A `Hello` from a `NetworkVideoTransmitter`, or a `Bye` from anyone, received
/// from `source`; `None` when the datagram is neither or breaks a rule in the module
/// docs. No MessageID can be checked (nobody asked): the source and XAddr rules are
/// what hold, and a `Bye` only ever removes the entry of its own source address.
/// `Hello`s of other device types (printers announce themselves the same way) are
/// ignored; the type's prefix is not resolved to its namespace.
pub fn parse_announcement(datagram: &[u8], source: IpAddr) -> Option<Announcement> {
    if datagram.len() > MAX_DATAGRAM || !(is_lan(source) || source.is_loopback()) {
        return None;
    }
    let xml = std::str::from_utf8(datagram).ok()?;
    match (&elements(xml, "Hello")[..], &elements(xml, "Bye")[..]) {
        ([hello], []) => {
            let types = elements(hello, "Types").first().map(|t| unescape(t));
            let camera = types
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .any(|t| t.rsplit(':').next() == Some("NetworkVideoTransmitter"));
            camera
                .then(|| one_match(hello, source))?
                .map(Announcement::Hello)
        }
        ([], [bye]) => endpoint_of(bye).map(|endpoint| Announcement::Bye { endpoint }),
        _ => None, // neither, or more than one: not an announcement we understand
    }
}

/// The cleaned `EndpointReference/Address` inside `element`, when not empty.
fn endpoint_of(element: &str) -> Option<String> {
    let epr = *elements(element, "EndpointReference").first()?;
    let endpoint = clean_txt(&unescape(elements(epr, "Address").first()?));
    (!endpoint.is_empty()).then_some(endpoint)
}

fn one_match(m: &str, source: IpAddr) -> Option<ProbeMatch> {
    let endpoint = endpoint_of(m)?;
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

#[cfg(test)]
#[path = "onvif_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "onvif_announce_tests.rs"]
mod announce_tests;
