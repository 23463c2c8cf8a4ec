//! Who the client is: the one place a request's TCP peer becomes its client address
//! ([`ClientAddr`]), which every user of an address reads — the login and API
//! throttles, alerts, the activity log, the devices list, share links.
//!
//! Without `[web] trusted_proxies` (the default) the client is the TCP peer and
//! `X-Forwarded-For` is ignored. When the peer is a trusted proxy, the header's
//! entries are read right to left (each proxy appends the address it saw), skipping
//! trusted proxies; the first untrusted one is the client. The leftmost entries are
//! whatever the client wrote, so they are only reached through trusted hops, and only
//! the rightmost [`MAX_HOPS`] entries are read, each on its own: nothing the client
//! writes on the left can make the walk give up. The peer stays the client when the
//! header is missing or empty, has an entry that is not a bare IP address where the
//! walk reads it, or names only trusted proxies in the entries read.
//!
//! `Forwarded` (RFC 7239) is not read: a proxy that sets only one of the two headers
//! passes the other on as the client wrote it, so believing either would let a client
//! choose its address. Every common proxy (nginx, Caddy, Traefik, HAProxy) can set
//! `X-Forwarded-For`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::http::{Extensions, HeaderMap};

use crate::config::TrustedProxies;

/// Entries of `X-Forwarded-For` read, from the right: a real chain of proxies is one
/// or two long.
pub const MAX_HOPS: usize = 20;

/// The client's address, set on every request by the server (never by a handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client of a request from `peer` carrying `headers`.
    pub fn resolve(peer: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientAddr {
        // As seen, not canonical: without trusted proxies nothing changes from before.
        let peer = peer.ip();
        if !trusted.contains(peer) {
            return ClientAddr(peer);
        }
        let values: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        ClientAddr(forwarded_client(&values, trusted).unwrap_or(peer))
    }

    /// The address the server put on the request (`0.0.0.0` if none, which only a
    /// router driven without the server sees).
    pub fn of(extensions: &Extensions) -> IpAddr {
        extensions
            .get::<ClientAddr>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0)
    }
}

/// The client named by the `X-Forwarded-For` header lines `values` (in the order
/// received, so the last entry is the nearest proxy's), or `None` when the header is
/// not to be believed (see the module's documentation). Only the rightmost
/// [`MAX_HOPS`] entries are read, each on its own bytes: what the client wrote on the
/// left (any number of entries, bytes that are not UTF-8) must not make the proxy's
/// own address the answer, or a client could pass for the proxy.
pub fn forwarded_client(values: &[&[u8]], trusted: &TrustedProxies) -> Option<IpAddr> {
    let entries = values
        .iter()
        .rev()
        .flat_map(|v| v.rsplit(|b| *b == b','))
        .take(MAX_HOPS);
    for entry in entries {
        let text = std::str::from_utf8(entry).ok()?;
        let ip = text.trim().parse::<IpAddr>().ok()?.to_canonical();
        if !trusted.contains(ip) {
            return Some(ip);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpNetwork;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            list.iter()
                .map(|n| IpNetwork::parse(n).expect("network"))
                .collect(),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_walk_goes_right_to_left_past_trusted_proxies() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let client = |values: &[&str]| {
            let bytes: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
            forwarded_client(&bytes, &t)
        };
        assert_eq!(client(&["203.0.113.7"]), Some(ip("203.0.113.7")));
        // The leftmost entry is the client's own invention; the nearest untrusted wins.
        assert_eq!(
            client(&["198.51.100.1, 203.0.113.7, 10.1.2.3"]),
            Some(ip("203.0.113.7"))
        );
        // Several header lines are one list, in order.
        assert_eq!(
            client(&["198.51.100.1", "203.0.113.7 , 10.1.2.3"]),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(client(&["2001:db8::5"]), Some(ip("2001:db8::5")));
        assert_eq!(client(&["::ffff:203.0.113.7"]), Some(ip("203.0.113.7")));
        // Garbage left of the client is never read.
        assert_eq!(client(&["not-an-ip, 203.0.113.7"]), Some(ip("203.0.113.7")));
    }

    #[test]
    fn an_unbelievable_header_leaves_the_peer() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let client = |values: &[&str]| {
            let bytes: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
            forwarded_client(&bytes, &t)
        };
        for bad in [
            &[][..],
            &[""],
            &["   "],
            &["127.0.0.1, 10.0.0.1"],
            &["203.0.113.7, garbage"],
            &["203.0.113.7:4711"],
            &["[2001:db8::5]"],
            &["203.0.113.7,"],
            &["unknown"],
            &["\u{0}"],
        ] {
            assert_eq!(client(bad), None, "{bad:?}");
        }
        let trusted_hops = vec!["10.0.0.1"; MAX_HOPS].join(",");
        assert_eq!(
            client(&[&format!("203.0.113.7,{trusted_hops}")]),
            None,
            "no more than MAX_HOPS entries are read"
        );
        let just = vec!["10.0.0.1"; MAX_HOPS - 1].join(",");
        assert_eq!(
            client(&[&format!("203.0.113.7,{just}")]),
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn what_the_client_wrote_on_the_left_never_makes_it_the_proxy() {
        let t = trusted(&["127.0.0.1"]);
        // nginx appends the address it saw to whatever the client sent.
        let many = format!("{}, 203.0.113.7", vec!["1.1.1.1"; 5 * MAX_HOPS].join(","));
        let not_utf8: &[u8] = b"\xff\xfe, 203.0.113.7";
        for line in [many.as_bytes(), not_utf8] {
            assert_eq!(forwarded_client(&[line], &t), Some(ip("203.0.113.7")));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(not_utf8).expect("obs-text is allowed"),
        );
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("peer");
        assert_eq!(
            ClientAddr::resolve(peer, &headers, &t),
            ClientAddr(ip("203.0.113.7"))
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7".parse().expect("value"));
        let peer: SocketAddr = "192.0.2.1:5000".parse().expect("peer");
        let none = TrustedProxies::default();
        assert_eq!(
            ClientAddr::resolve(peer, &headers, &none),
            ClientAddr(ip("192.0.2.1"))
        );
        let other = trusted(&["127.0.0.1"]);
        assert_eq!(
            ClientAddr::resolve(peer, &headers, &other),
            ClientAddr(ip("192.0.2.1"))
        );
        let this = trusted(&["192.0.2.0/24"]);
        assert_eq!(
            ClientAddr::resolve(peer, &headers, &this),
            ClientAddr(ip("203.0.113.7"))
        );
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:5000".parse().expect("peer");
        assert_eq!(
            ClientAddr::resolve(mapped, &headers, &this),
            ClientAddr(ip("203.0.113.7")),
            "an IPv4-mapped peer is its IPv4 address"
        );
    }
}
