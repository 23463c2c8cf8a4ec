//! The rules of `onvif.rs`, one answer at a time. The valid answer is shaped like a
//! real camera's (Hikvision/Dahua style prefixes and scopes).

use super::*;

const ID: &str = "urn:uuid:2f1e0c5a-8d47-4b0e-9a51-7c2d3e4f5a6b";

fn answer(relates_to: &str, xaddrs: &str, scopes: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<SOAP-ENV:Header><wsa:MessageID>urn:uuid:0000</wsa:MessageID>
<wsa:RelatesTo>{relates_to}</wsa:RelatesTo>
<wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
</SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:4419b3c0-0000-1000-8000-0012345678ab</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
<d:Scopes >{scopes}</d:Scopes>
<d:XAddrs>{xaddrs}</d:XAddrs>
<d:MetadataVersion>10</d:MetadataVersion>
</d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

const SCOPES: &str =
    "onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/Front%20Door \
     onvif://www.onvif.org/hardware/DS-2CD2043 onvif://www.onvif.org/location/city/hangzhou";

fn lan() -> IpAddr {
    "192.168.1.64".parse().expect("address")
}

#[test]
fn a_valid_probe_match_gives_endpoint_name_model_and_device_url() {
    let xml = answer(
        ID,
        "http://192.168.1.64/onvif/device_service http://[fe80::1]/onvif/device_service",
        SCOPES,
    );
    let found = parse_probe_matches(xml.as_bytes(), ID, lan());
    assert_eq!(found.len(), 1, "{found:?}");
    let m = &found[0];
    assert_eq!(m.endpoint, "urn:uuid:4419b3c0-0000-1000-8000-0012345678ab");
    assert_eq!(m.name.as_deref(), Some("Front Door"));
    assert_eq!(m.hardware.as_deref(), Some("DS-2CD2043"));
    assert_eq!(m.xaddrs.len(), 1, "only the one at the answering address");
    assert_eq!(
        m.xaddrs[0].as_str(),
        "http://192.168.1.64/onvif/device_service"
    );
    let d = m.clone().into_discovered(lan(), 7);
    assert_eq!(d.source, Source::Onvif);
    assert_eq!(d.instance, "Front Door");
    assert_eq!(d.addresses, vec![lan()]);
    assert_eq!(
        d.device_url.as_deref(),
        Some("http://192.168.1.64/onvif/device_service")
    );
    assert_eq!(
        d.suggested_rtsp_url().map(|u| u.to_string()).as_deref(),
        Some("rtsp://192.168.1.64:554/")
    );
    assert_eq!(d.rtsp_url(), None, "nothing was announced, only guessed");
}

#[test]
fn an_answer_to_another_probe_is_dropped() {
    let xml = answer(
        "urn:uuid:99999999-8d47-4b0e-9a51-7c2d3e4f5a6b",
        "http://192.168.1.64/onvif/device_service",
        SCOPES,
    );
    assert!(parse_probe_matches(xml.as_bytes(), ID, lan()).is_empty());
    let no_relates = xml.replace("RelatesTo", "Related");
    assert!(parse_probe_matches(no_relates.as_bytes(), ID, lan()).is_empty());
}

#[test]
fn an_answer_from_off_the_lan_is_dropped() {
    let xml = answer(ID, "http://192.168.1.64/onvif/device_service", SCOPES);
    let internet: IpAddr = "203.0.113.9".parse().expect("address");
    assert!(parse_probe_matches(xml.as_bytes(), ID, internet).is_empty());
    let here: IpAddr = "127.0.0.1".parse().expect("address");
    assert_eq!(parse_probe_matches(xml.as_bytes(), ID, here).len(), 1);
}

#[test]
fn xaddrs_not_at_the_answering_address_by_name_or_with_credentials_are_dropped() {
    let xaddrs = "http://203.0.113.9/onvif/device_service http://camera.example/onvif \
         http://admin:pw@192.168.1.64/onvif ftp://192.168.1.64/x http://127.0.0.1:8080/admin \
         http://10.0.0.5/onvif/device_service";
    let xml = answer(ID, xaddrs, SCOPES);
    let found = parse_probe_matches(xml.as_bytes(), ID, lan());
    let kept: Vec<&str> = found[0].xaddrs.iter().map(|u| u.as_str()).collect();
    assert!(kept.is_empty(), "{kept:?}");
    // Another LAN host is refused too: the owner's credentials would go to it.
    let xml = answer(
        ID,
        "http://10.0.0.5/onvif/device_service http://192.168.1.64:8080/onvif/device_service",
        SCOPES,
    );
    let found = parse_probe_matches(xml.as_bytes(), ID, lan());
    let kept: Vec<&str> = found[0].xaddrs.iter().map(|u| u.as_str()).collect();
    assert_eq!(kept, vec!["http://192.168.1.64:8080/onvif/device_service"]);
    // Loopback is fine when it is the answer's own source (the test camera).
    let here: IpAddr = "127.0.0.1".parse().expect("address");
    let xml = answer(ID, "http://127.0.0.1:8080/onvif/device_service", SCOPES);
    assert_eq!(
        parse_probe_matches(xml.as_bytes(), ID, here)[0]
            .xaddrs
            .len(),
        1
    );
}

#[test]
fn xaddrs_and_matches_are_bounded() {
    let many: Vec<String> = (0..100)
        .map(|i| format!("http://192.168.1.64:{}/onvif/device_service", 8000 + i))
        .collect();
    let xml = answer(ID, &many.join(" "), SCOPES);
    let found = parse_probe_matches(xml.as_bytes(), ID, lan());
    assert_eq!(found[0].xaddrs.len(), MAX_ADDRESSES);
    assert!(
        found[0].clone().into_discovered(lan(), 0).addresses.len() <= MAX_ADDRESSES,
        "the entry's addresses stay bounded too"
    );
    let matches: String = (0..MAX_ENTRIES + 10)
        .map(|i| {
            format!(
                "<d:ProbeMatch><a:EndpointReference><a:Address>urn:x:{i}</a:Address>\
                 </a:EndpointReference></d:ProbeMatch>"
            )
        })
        .collect();
    let xml = format!(
        "<s:Envelope><s:Header><a:RelatesTo>{ID}</a:RelatesTo></s:Header><s:Body>\
         <d:ProbeMatches>{matches}</d:ProbeMatches></s:Body></s:Envelope>"
    );
    assert!(xml.len() <= MAX_DATAGRAM, "{}", xml.len());
    let found = parse_probe_matches(xml.as_bytes(), ID, lan());
    assert_eq!(found.len(), MAX_ENTRIES);
    assert!(found[0].xaddrs.is_empty());
}

#[test]
fn over_long_and_unprintable_names_are_cut() {
    let long = format!(
        "onvif://www.onvif.org/name/{}%0A%1B[2J onvif://www.onvif.org/hardware/{}",
        "A".repeat(5000),
        "%E2%98%83".repeat(500)
    );
    let xml = answer(ID, "", &long);
    let m = &parse_probe_matches(xml.as_bytes(), ID, lan())[0];
    let name = m.name.as_deref().expect("a name");
    assert_eq!(name.chars().count(), MAX_TXT);
    assert!(!name.contains('\n'));
    assert_eq!(
        m.hardware.as_deref().expect("hardware").chars().count(),
        MAX_TXT
    );
    assert!(m.hardware.as_deref().expect("hardware").starts_with('☃'));
}

#[test]
fn oversized_garbage_and_truncated_answers_give_nothing_and_never_panic() {
    let good = answer(ID, "http://192.168.1.64/onvif/device_service", SCOPES);
    let huge = format!("{good}{}", " ".repeat(MAX_DATAGRAM));
    assert!(parse_probe_matches(huge.as_bytes(), ID, lan()).is_empty());
    assert!(parse_probe_matches(&[0xff, 0xfe, 0x3c], ID, lan()).is_empty());
    assert!(parse_probe_matches(b"", ID, lan()).is_empty());
    // Every prefix of a valid answer, and every prefix with its tail cut off, parses
    // to nothing or to a match no bigger than the whole: never a panic.
    let bytes = good.as_bytes();
    for cut in 0..bytes.len() {
        let found = parse_probe_matches(&bytes[..cut], ID, lan());
        assert!(found.len() <= 1);
        let found = parse_probe_matches(&bytes[cut..], ID, lan());
        assert!(found.len() <= 1);
    }
    for junk in [
        "<<<<>>>>",
        "<a:RelatesTo>",
        "</RelatesTo>",
        "<:RelatesTo></:RelatesTo>",
        "<RelatesTo/><ProbeMatch/>",
        "<RelatesTo>urn:uuid:2f1e0c5a-8d47-4b0e-9a51-7c2d3e4f5a6b</RelatesTo><ProbeMatch><EndpointReference><Address>",
        "<RelatesTo>urn:uuid:2f1e0c5a-8d47-4b0e-9a51-7c2d3e4f5a6b</RelatesTo><ProbeMatch></ProbeMatch>",
        "%%%%<x:Scopes>onvif://www.onvif.org/name/%</x:Scopes>",
    ] {
        assert!(
            parse_probe_matches(junk.as_bytes(), ID, lan()).is_empty(),
            "{junk}"
        );
    }
}

#[test]
fn message_ids_are_fresh_uuids() {
    let (a, b) = (new_message_id(), new_message_id());
    assert_ne!(a, b);
    assert_eq!(a.len(), "urn:uuid:".len() + 36);
    assert_eq!(&a[23..24], "4", "version 4: {a}");
    assert!(probe_message(&a).contains(&format!("<a:MessageID>{a}</a:MessageID>")));
    assert!(probe_message(&a).contains("<d:Types>dn:NetworkVideoTransmitter</d:Types>"));
}

#[test]
fn escapes_are_decoded_once() {
    assert_eq!(unescape(" a&amp;lt;b &lt;c&gt; "), "a&lt;b <c>");
    assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    assert_eq!(percent_decode("%+1"), "%+1");
}

/// A datagram of nothing but `<` once cost seconds (each name ran to the end of the
/// text); now one pass. Not timed here: the note of the fix gives the measurement.
#[test]
fn a_datagram_of_open_brackets_gives_nothing() {
    let brackets = "<".repeat(MAX_DATAGRAM);
    assert!(parse_probe_matches(brackets.as_bytes(), ID, lan()).is_empty());
    let names = "<a:RelatesTo".repeat(MAX_DATAGRAM / 12);
    assert!(parse_probe_matches(names.as_bytes(), ID, lan()).is_empty());
    assert!(tagged(&brackets, "RelatesTo").is_empty());
}

/// A host that answers with another camera's endpoint gets its own entry, under its
/// own address: it cannot take over the real camera's row and device URL.
#[test]
fn an_endpoint_heard_from_two_addresses_is_two_entries() {
    let xml = |at: &str| answer(ID, &format!("http://{at}/onvif/device_service"), SCOPES);
    let camera: IpAddr = "192.168.1.64".parse().expect("address");
    let impostor: IpAddr = "192.168.1.99".parse().expect("address");
    let list = crate::discovery::Discovery::empty(std::sync::Arc::new(
        crate::clock::SimulatedClock::new(0),
    ));
    for at in [camera, impostor] {
        for m in parse_probe_matches(xml(&at.to_string()).as_bytes(), ID, at) {
            list.upsert(m.into_discovered(at, 0));
        }
    }
    let entries = list.list();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let real = entries
        .iter()
        .find(|d| d.host == "192.168.1.64")
        .expect("the camera's own row");
    assert_eq!(
        real.device_url.as_deref(),
        Some("http://192.168.1.64/onvif/device_service")
    );
    assert_eq!(
        real.suggested_rtsp_url().map(|u| u.to_string()).as_deref(),
        Some("rtsp://192.168.1.64:554/")
    );
}
