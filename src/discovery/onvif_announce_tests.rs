//! The rules of `onvif.rs` for `Hello` and `Bye`, which nobody asked for and so
//! carry no MessageID to check. Shaped like a real camera's announcements.

use std::sync::Arc;

use super::*;
use crate::clock::SimulatedClock;
use crate::discovery::Discovery;

const ENDPOINT: &str = "urn:uuid:4419b3c0-0000-1000-8000-0012345678ab";

fn hello(types: &str, xaddrs: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<SOAP-ENV:Header><wsa:MessageID>uuid:5a1e0000-0000-4000-8000-000000000001</wsa:MessageID>
<wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello</wsa:Action>
<d:AppSequence InstanceId="1700000000" MessageNumber="1"/>
</SOAP-ENV:Header><SOAP-ENV:Body><d:Hello>
<wsa:EndpointReference><wsa:Address>{ENDPOINT}</wsa:Address></wsa:EndpointReference>
<d:Types>{types}</d:Types>
<d:Scopes>onvif://www.onvif.org/name/Front%20Door onvif://www.onvif.org/hardware/DS-2CD2043</d:Scopes>
<d:XAddrs>{xaddrs}</d:XAddrs>
<d:MetadataVersion>10</d:MetadataVersion>
</d:Hello></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

fn bye() -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Bye</a:Action></s:Header><s:Body><d:Bye><a:EndpointReference><a:Address>{ENDPOINT}</a:Address></a:EndpointReference></d:Bye></s:Body></s:Envelope>"#
    )
}

const CAMERA_TYPES: &str = "dn:NetworkVideoTransmitter tds:Device";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

#[test]
fn a_cameras_hello_gives_the_same_entry_as_its_probe_match() {
    let xaddrs = "http://192.168.1.64/onvif/device_service http://10.0.0.5/onvif/device_service \
                  http://admin:pw@192.168.1.64/x http://camera.example/onvif";
    let xml = hello(CAMERA_TYPES, xaddrs);
    let Some(Announcement::Hello(m)) = parse_announcement(xml.as_bytes(), ip("192.168.1.64"))
    else {
        panic!("a camera's Hello is accepted");
    };
    assert_eq!(m.endpoint, ENDPOINT);
    assert_eq!(m.name.as_deref(), Some("Front Door"));
    assert_eq!(m.hardware.as_deref(), Some("DS-2CD2043"));
    let kept: Vec<&str> = m.xaddrs.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        kept,
        vec!["http://192.168.1.64/onvif/device_service"],
        "the XAddr rules of probe matches hold"
    );
    let d = m.into_discovered(ip("192.168.1.64"), 3);
    assert_eq!(d.fullname, format!("{ENDPOINT} at 192.168.1.64"));
    assert_eq!(d.source, Source::Onvif);
    // Loopback is a source too (the test camera).
    let xml = hello(CAMERA_TYPES, "http://127.0.0.1:8080/onvif/device_service");
    assert!(matches!(
        parse_announcement(xml.as_bytes(), ip("127.0.0.1")),
        Some(Announcement::Hello(_))
    ));
}

#[test]
fn hellos_of_other_devices_and_from_off_the_lan_are_ignored() {
    let lan = ip("192.168.1.64");
    for types in [
        "wsdp:Device pri:PrintDeviceType",
        "",
        "dn:NetworkVideoTransmitterX",
    ] {
        let xml = hello(types, "http://192.168.1.64/onvif/device_service");
        assert_eq!(parse_announcement(xml.as_bytes(), lan), None, "{types}");
    }
    let no_types = hello(CAMERA_TYPES, "").replace("<d:Types>", "<d:Kinds>");
    assert_eq!(parse_announcement(no_types.as_bytes(), lan), None);
    let xml = hello(CAMERA_TYPES, "http://203.0.113.9/onvif/device_service");
    assert_eq!(parse_announcement(xml.as_bytes(), ip("203.0.113.9")), None);
    assert_eq!(
        parse_announcement(bye().as_bytes(), ip("203.0.113.9")),
        None
    );
    let huge = format!("{xml}{}", " ".repeat(MAX_DATAGRAM));
    assert_eq!(parse_announcement(huge.as_bytes(), lan), None);
}

#[test]
fn a_bye_names_its_endpoint_and_anything_else_is_no_announcement() {
    let lan = ip("192.168.1.64");
    assert_eq!(
        parse_announcement(bye().as_bytes(), lan),
        Some(Announcement::Bye {
            endpoint: ENDPOINT.to_owned()
        })
    );
    let both = format!("{}{}", hello(CAMERA_TYPES, ""), bye());
    assert_eq!(parse_announcement(both.as_bytes(), lan), None);
    let empty = bye().replace(ENDPOINT, " ");
    assert_eq!(parse_announcement(empty.as_bytes(), lan), None);
    let probe = probe_message(&new_message_id());
    assert_eq!(parse_announcement(probe.as_bytes(), lan), None);
    for junk in ["", "<<<<", "<d:Hello>", "<d:Bye></d:Bye>", "<Hello/><Bye/>"] {
        assert_eq!(parse_announcement(junk.as_bytes(), lan), None, "{junk}");
    }
    let bytes = bye().into_bytes();
    for cut in 0..bytes.len() {
        let _ = parse_announcement(&bytes[..cut], lan);
        let _ = parse_announcement(&bytes[cut..], lan);
    }
}

/// A `Bye` removes only the entry its own address made: another LAN host saying
/// `Bye` for the camera's endpoint cannot take the camera off the list.
#[test]
fn a_bye_removes_only_the_entry_of_its_own_address() {
    let list = Discovery::empty(Arc::new(SimulatedClock::new(0)));
    let camera = ip("192.168.1.64");
    let xml = hello(CAMERA_TYPES, "http://192.168.1.64/onvif/device_service");
    let Some(Announcement::Hello(m)) = parse_announcement(xml.as_bytes(), camera) else {
        panic!("a camera's Hello is accepted");
    };
    list.upsert(m.into_discovered(camera, 0));
    for from in [ip("192.168.1.99"), camera] {
        let Some(Announcement::Bye { endpoint }) = parse_announcement(bye().as_bytes(), from)
        else {
            panic!("a Bye is accepted");
        };
        list.forget_onvif(&onvif_fullname(&endpoint, from));
        let left = list.list().len();
        assert_eq!(left, usize::from(from != camera), "after a Bye from {from}");
    }
}

/// Over IPv6 the same rules hold: an XAddr is kept only when its bracketed literal
/// is the source address (spelled any way), and the entry's URLs bracket it.
#[test]
fn ipv6_xaddrs_are_kept_only_at_the_source_and_urls_bracket_it() {
    let source = ip("fd00:77::64");
    let xaddrs = "http://192.168.1.64/onvif/device_service \
                  http://[fd00:77::64]:8080/onvif/device_service \
                  http://[FD00:77:0:0::64]/onvif/other http://[fd00:77::99]/onvif/device_service \
                  http://[fe80::1%25eth0]/onvif/device_service http://user@[fd00:77::64]/x";
    let xml = hello(CAMERA_TYPES, xaddrs);
    let Some(Announcement::Hello(m)) = parse_announcement(xml.as_bytes(), source) else {
        panic!("a camera's Hello over IPv6 (unique-local) is accepted");
    };
    let kept: Vec<&str> = m.xaddrs.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        kept,
        vec![
            "http://[fd00:77::64]:8080/onvif/device_service",
            "http://[fd00:77::64]/onvif/other"
        ]
    );
    let d = m.into_discovered(source, 0);
    assert_eq!(d.fullname, format!("{ENDPOINT} at fd00:77::64"));
    assert_eq!(d.addresses, vec![source]);
    assert_eq!(
        d.device_url.as_deref(),
        Some("http://[fd00:77::64]:8080/onvif/device_service")
    );
    let rtsp = d.suggested_rtsp_url().expect("a suggestion");
    assert_eq!(rtsp.as_str(), "rtsp://[fd00:77::64]:554/");
    assert!(d.matches(&rtsp));
    let other: url::Url = "rtsp://[fd00:77::99]/".parse().expect("url");
    assert!(!d.matches(&other));
}

/// Link-local sources are LAN (they are what a camera answers a link-scope probe
/// from); a zone in an XAddr cannot be parsed and is dropped; global IPv6 sources
/// are not the LAN.
#[test]
fn ipv6_link_local_is_lan_and_global_is_not() {
    let link = ip("fe80::8:3dff:fe80:18");
    let xml = hello(
        CAMERA_TYPES,
        "http://[fe80::8:3dff:fe80:18]/onvif/device_service \
         http://[fe80::8:3dff:fe80:18%25eth0]/onvif/zoned",
    );
    let Some(Announcement::Hello(m)) = parse_announcement(xml.as_bytes(), link) else {
        panic!("a Hello from a link-local address is accepted");
    };
    let kept: Vec<&str> = m.xaddrs.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        kept,
        vec!["http://[fe80::8:3dff:fe80:18]/onvif/device_service"]
    );
    assert!(parse_announcement(bye().as_bytes(), ip("::1")).is_some());
    let global = ip("2001:db8::64");
    let xml = hello(CAMERA_TYPES, "http://[2001:db8::64]/onvif/device_service");
    assert_eq!(parse_announcement(xml.as_bytes(), global), None);
    assert_eq!(parse_announcement(bye().as_bytes(), global), None);
}

/// `Hello`s and `Bye`s count only from the subnets of the chosen interfaces: here
/// `eth0` (index 2: 192.168.1.10/24, fd00:77::1/64, fe80::1/64) is chosen, and a
/// source on another LAN, another interface's link (its scope id) or loopback is
/// not heard.
#[test]
fn announcements_count_only_from_the_chosen_interfaces_subnets() {
    use crate::discovery::onvif_listen::{from_chosen_subnet, Subnet};
    use std::net::{SocketAddr, SocketAddrV6};
    let net = |a: &str, m: &str, i: u32| Subnet::new(ip(a), ip(m), Some(i));
    let eth0 = [
        net("192.168.1.10", "255.255.255.0", 2),
        net("fd00:77::1", "ffff:ffff:ffff:ffff::", 2),
        net("fe80::1", "ffff:ffff:ffff:ffff::", 2),
    ];
    let v4 = |a: &str| SocketAddr::new(ip(a), 3702);
    let v6 = |a: &str, scope: u32| {
        SocketAddr::V6(SocketAddrV6::new(
            a.parse().expect("address"),
            3702,
            0,
            scope,
        ))
    };
    for heard in [v4("192.168.1.64"), v6("fd00:77::64", 0), v6("fe80::64", 2)] {
        assert!(from_chosen_subnet(heard, &eth0), "{heard}");
    }
    for ignored in [
        v4("10.0.0.5"),
        v4("192.168.2.64"),
        v4("127.0.0.1"),
        v6("fd00:78::64", 0),
        v6("fe80::64", 3),
        v6("::1", 1),
    ] {
        assert!(!from_chosen_subnet(ignored, &eth0), "{ignored}");
    }
    // No link-local address on the chosen interface: no link-local source.
    assert!(!from_chosen_subnet(v6("fe80::64", 2), &eth0[..2]));
    // `lo` chosen (as the tests do): loopback is heard.
    let lo = [
        net("127.0.0.1", "255.0.0.0", 1),
        net("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1),
    ];
    assert!(from_chosen_subnet(v4("127.0.0.1"), &lo));
    assert!(from_chosen_subnet(v6("::1", 0), &lo));
    assert!(!from_chosen_subnet(v4("192.168.1.64"), &lo));
}
