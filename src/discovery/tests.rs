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
