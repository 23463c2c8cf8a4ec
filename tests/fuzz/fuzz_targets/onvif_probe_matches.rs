//! The WS-Discovery parsers (`porchlight::discovery::onvif::parse_probe_matches` for
//! answers, `parse_announcement` for `Hello`/`Bye`), which read datagrams any host on
//! the LAN can send; each datagram goes to both. The first byte picks the source
//! address (a LAN one, loopback, or one off the LAN); the rest is the datagram.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use porchlight::discovery::onvif::{parse_announcement, parse_probe_matches, Announcement, ProbeMatch};
use porchlight::discovery::{MAX_ADDRESSES, MAX_ENTRIES, MAX_TXT};

/// The MessageID the seeds answer.
const MESSAGE_ID: &str = "urn:uuid:2f1e0c5a-8d47-4b0e-9a51-7c2d3e4f5a6b";

fuzz_target!(|data: &[u8]| {
    let Some((&pick, datagram)) = data.split_first() else {
        return;
    };
    let source: IpAddr = match pick % 3 {
        0 => "192.168.1.64".parse().expect("address"),
        1 => "127.0.0.1".parse().expect("address"),
        _ => "203.0.113.9".parse().expect("address"),
    };
    let found = parse_probe_matches(datagram, MESSAGE_ID, source);
    assert!(found.len() <= MAX_ENTRIES);
    let announced = parse_announcement(datagram, source);
    if source.to_string() == "203.0.113.9" {
        assert!(found.is_empty(), "an answer from off the LAN is dropped");
        assert!(announced.is_none(), "an announcement from off the LAN is dropped");
    }
    match &announced {
        Some(Announcement::Hello(m)) => check(m, source),
        Some(Announcement::Bye { endpoint }) => {
            assert!(!endpoint.is_empty() && endpoint.chars().count() <= MAX_TXT);
        }
        None => {}
    }
    for m in &found {
        check(m, source);
    }
});

/// The rules every accepted match or `Hello` keeps.
fn check(m: &ProbeMatch, source: IpAddr) {
    assert!(!m.endpoint.is_empty() && m.endpoint.chars().count() <= MAX_TXT);
    for text in [&m.name, &m.hardware].into_iter().flatten() {
        assert!(text.chars().count() <= MAX_TXT);
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
    assert!(m.xaddrs.len() <= MAX_ADDRESSES);
    for url in &m.xaddrs {
        assert!(matches!(url.scheme(), "http" | "https"));
        assert!(url.username().is_empty() && url.password().is_none());
        let host: Option<IpAddr> = url
            .host_str()
            .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
        assert_eq!(host, Some(source), "an XAddr is only at the answering address");
    }
}
