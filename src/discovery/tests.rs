//! The list itself: keys, bounds, URL suggestions, log safety.

use super::*;
use crate::clock::SimulatedClock;

fn camera(name: &str, seen: i64) -> DiscoveredCamera {
    DiscoveredCamera {
        fullname: format!("{name}.{RTSP_TYPE}"),
        instance: name.to_owned(),
        service_type: RTSP_TYPE.to_owned(),
        source: Source::Mdns,
        host: "cam.local.".to_owned(),
        addresses: vec!["192.0.2.7".parse().expect("address")],
        port: 8554,
        path: Some("/main".to_owned()),
        model: None,
        device_url: None,
        first_seen_micros: seen,
        last_seen_micros: seen,
    }
}

/// Collects what a subscriber writes, so a test can read the log lines.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines `run` logs, with a subscriber at `debug` (so a line logged at debug
/// shows as such).
fn log_of(run: impl FnOnce()) -> String {
    let log = LogBuffer::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(log.0.lock().expect("log buffer").clone()).expect("utf-8");
    text
}

/// An ONVIF entry for `endpoint` as heard from `source` at `now`.
fn onvif_camera(endpoint: &str, source: &str, now: i64) -> DiscoveredCamera {
    let source: IpAddr = source.parse().expect("address");
    let found = onvif::ProbeMatch {
        endpoint: endpoint.to_owned(),
        xaddrs: Vec::new(),
        name: None,
        hardware: None,
    };
    found.into_discovered(source, now)
}

/// A LAN host saying `Hello` with ever-new endpoints (each a new entry) keeps at most
/// `MAX_PER_SOURCE` rows: the real camera, though heard long before, stays listed,
/// and the flood logs at info only its first few rows.
#[test]
fn a_host_flooding_hellos_cannot_push_a_real_camera_off_the_list() {
    let clock = Arc::new(SimulatedClock::new(0));
    let d = Discovery::empty(clock.clone());
    d.upsert(onvif_camera("urn:uuid:real", "192.168.1.64", 0));
    d.upsert(onvif_camera("urn:uuid:loopback", "127.0.0.1", 0));
    let log = log_of(|| {
        for i in 0..3 * MAX_ENTRIES {
            clock.advance_micros(1_000);
            let now = clock.now_micros();
            d.upsert(onvif_camera(&format!("urn:uuid:{i}"), "192.168.1.99", now));
        }
    });
    let list = d.list();
    assert!(
        list.iter()
            .any(|c| c.fullname == "urn:uuid:real at 192.168.1.64"),
        "the real camera was pushed off the list"
    );
    let flood = list.iter().filter(|c| c.host == "192.168.1.99").count();
    assert_eq!(flood, MAX_PER_SOURCE);
    let newest = format!("urn:uuid:{} at 192.168.1.99", 3 * MAX_ENTRIES - 1);
    assert!(
        list.iter().any(|c| c.fullname == newest),
        "the newest is kept"
    );
    assert_eq!(list.len(), MAX_PER_SOURCE + 2);
    let info = log.lines().filter(|l| l.contains(" INFO ")).count();
    assert_eq!(info, MAX_PER_SOURCE, "{log}");
}

/// Loopback is this machine, not the LAN: its entries are not held to
/// `MAX_PER_SOURCE` (the tests run many cameras there).
#[test]
fn entries_from_loopback_are_not_held_to_the_per_source_limit() {
    let d = Discovery::empty(Arc::new(SimulatedClock::new(0)));
    for i in 0..2 * MAX_PER_SOURCE {
        d.upsert(onvif_camera(&format!("urn:uuid:{i}"), "127.0.0.1", 0));
    }
    assert_eq!(d.list().len(), 2 * MAX_PER_SOURCE);
}

/// Arrivals and departures that keep coming (a host cycling `Hello` and `Bye`) are
/// logged at info at most `LOG_LINES_PER_WINDOW` times an hour; the first line of
/// the next hour says how many were held back.
#[test]
fn arrivals_and_departures_are_logged_at_info_a_bounded_number_of_times_an_hour() {
    let clock = Arc::new(SimulatedClock::new(0));
    let d = Discovery::empty(clock.clone());
    let cycles = 500;
    let log = log_of(|| {
        for i in 0..cycles {
            let found = onvif_camera(&format!("urn:uuid:{i}"), "192.168.1.99", 0);
            let fullname = found.fullname.clone();
            d.upsert(found);
            d.forget_onvif(&fullname);
        }
    });
    let info = log.lines().filter(|l| l.contains(" INFO ")).count();
    assert_eq!(info, LOG_LINES_PER_WINDOW as usize, "{log}");
    let debug = log.lines().filter(|l| l.contains(" DEBUG ")).count();
    assert_eq!(
        info + debug,
        2 * cycles,
        "every line is still there at debug"
    );
    clock.advance_micros(i64::try_from(LOG_WINDOW.as_micros()).expect("an hour"));
    let log = log_of(|| d.upsert(onvif_camera("urn:uuid:next", "192.168.1.99", 0)));
    let held_back = 2 * cycles - LOG_LINES_PER_WINDOW as usize;
    assert!(
        log.contains(" WARN ") && log.contains(&format!("discovery: {held_back} camera")),
        "{log}"
    );
    assert!(
        log.contains(" INFO ") && log.contains("camera announced"),
        "{log}"
    );
}

#[test]
fn a_spoofed_name_with_newlines_cannot_forge_log_lines() {
    let log = LogBuffer::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let d = Discovery::empty(Arc::new(SimulatedClock::new(0)));
    let forged = "cam\n2026-01-01T00:00:00Z ERROR porchlight: forged";
    tracing::subscriber::with_default(subscriber, || {
        let found = camera(forged, 10);
        let fullname = found.fullname.clone();
        d.upsert(found);
        d.apply(ServiceEvent::ServiceRemoved(RTSP_TYPE.to_owned(), fullname));
    });
    let text = String::from_utf8(log.0.lock().expect("log buffer").clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one line per event: {text}");
    assert!(lines[0].contains("camera announced") && lines[0].contains(r"cam\n2026"));
    assert!(lines[1].contains("camera left"), "{text}");
}

#[test]
fn repeated_announcements_keep_one_entry_and_the_first_sighting() {
    let d = Discovery::empty(Arc::new(SimulatedClock::new(0)));
    d.upsert(camera("a", 10));
    let mut again = camera("a", 20);
    again.addresses.push("fe80::1".parse().expect("address"));
    d.upsert(again);
    let list = d.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].first_seen_micros, 10);
    assert_eq!(list[0].last_seen_micros, 20);
    assert_eq!(list[0].addresses.len(), 2);
}

#[test]
fn the_list_is_bounded_by_dropping_the_stalest() {
    let d = Discovery::empty(Arc::new(SimulatedClock::new(0)));
    for i in 0..=MAX_ENTRIES {
        d.upsert(camera(&format!("cam{i:03}"), i as i64));
    }
    let list = d.list();
    assert_eq!(list.len(), MAX_ENTRIES);
    assert!(!list.iter().any(|c| c.instance == "cam000"));
}

#[test]
fn url_suggestion_and_configured_match() {
    let c = camera("a", 0);
    let url = c.rtsp_url().expect("rtsp type");
    assert_eq!(url.as_str(), "rtsp://192.0.2.7:8554/main");
    assert!(c.matches(&url));
    assert!(c.matches(&"rtsp://cam.local:8554/other".parse().expect("url")));
    assert!(!c.matches(&"rtsp://192.0.2.7/main".parse().expect("url")));
    let mut axis = c.clone();
    axis.service_type = "_axis-video._tcp.local.".to_owned();
    assert_eq!(axis.rtsp_url(), None);
}

#[test]
fn announcement_text_is_bounded_and_printable() {
    let long = "x".repeat(1000);
    assert_eq!(clean_txt(&long).len(), MAX_TXT);
    assert_eq!(clean_txt("a\u{1b}[2Jb\n"), "a[2Jb");
}
