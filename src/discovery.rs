//! Discovery: cameras that announce themselves over mDNS (DNS-SD) on the LAN, kept as
//! a live in-memory list for the owner's "discovered cameras" page. The only user of
//! `mdns-sd`.
//!
//! What it browses ([`SERVICE_TYPES`]):
//! - `_rtsp._tcp.local.` — the IANA-registered RTSP service: the instance's port is
//!   the RTSP port and a `path` TXT key, when present, the stream's path. The test
//!   and demo cameras announce this (`tests/camera/rtsp_camera.py --mdns`).
//! - `_axis-video._tcp.local.` — Axis cameras (Bonjour). The port is the camera's
//!   *web* port, not RTSP, so such an entry gets no RTSP URL suggestion; the owner
//!   adds it by URL (Axis: `rtsp://HOST/axis-media/media.amp`).
//! - `_psia._tcp.local.` — PSIA cameras (older Hikvision and others); also the HTTP
//!   port, no RTSP suggestion. Not verified against real hardware here.
//!
//! Not browsed, on purpose: `_http._tcp` (every printer and router), `_hap._tcp`
//! (HomeKit cameras serve no RTSP). Most IP cameras announce themselves only through
//! ONVIF WS-Discovery (UDP 239.255.255.250:3702), which this module does not do yet.
//!
//! Invariants:
//! - Discovery only listens and asks on the LAN (multicast 224.0.0.251 / ff02::fb,
//!   port 5353); it never connects to what it finds. Connecting is the owner's step.
//! - One entry per full instance name: `ServiceResolved` fires several times per
//!   instance as its addresses arrive, and each time updates the entry.
//! - Announcements are untrusted: TXT values are cut to [`MAX_TXT`] characters, a
//!   `path` must start with `/`, an instance keeps at most [`MAX_ADDRESSES`], and the
//!   list holds at most [`MAX_ENTRIES`] (the longest unseen is dropped), so a hostile
//!   LAN cannot grow the daemon. (mdns-sd's own cache is bounded by its TTLs.)

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use mdns_sd::{IfKind, ResolvedService, ServiceDaemon, ServiceEvent};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::DiscoveryConfig;

/// The DNS-SD service types browsed (see the module docs for what each means).
pub const SERVICE_TYPES: [&str; 3] = [
    "_rtsp._tcp.local.",
    "_axis-video._tcp.local.",
    "_psia._tcp.local.",
];
/// The service type whose port is the RTSP port.
pub const RTSP_TYPE: &str = "_rtsp._tcp.local.";
/// Most instances kept.
pub const MAX_ENTRIES: usize = 256;
/// Most addresses kept per instance.
pub const MAX_ADDRESSES: usize = 8;
/// Longest TXT value kept (characters).
pub const MAX_TXT: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot start mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
}

/// One announced instance as last heard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredCamera {
    /// `Front door._rtsp._tcp.local.`: the key.
    pub fullname: String,
    /// The instance name alone (`Front door`).
    pub instance: String,
    pub service_type: String,
    /// The announced host name (`cam-1.local.`).
    pub host: String,
    /// Sorted, IPv4 first.
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    /// The TXT `path` (RTSP stream path), when announced and sane.
    pub path: Option<String>,
    /// The TXT `model` (or `md`, `product`), when announced.
    pub model: Option<String>,
    pub first_seen_micros: i64,
    pub last_seen_micros: i64,
}

impl DiscoveredCamera {
    /// From a resolved announcement heard at `now`; `None` when it has no address.
    pub fn from_resolved(r: &ResolvedService, now: i64) -> Option<DiscoveredCamera> {
        let mut addresses: Vec<IpAddr> = r.addresses.iter().map(|a| a.to_ip_addr()).collect();
        if addresses.is_empty() {
            return None;
        }
        addresses.sort_by_key(|a| (a.is_ipv6(), *a));
        addresses.dedup();
        addresses.truncate(MAX_ADDRESSES);
        let txt = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| r.txt_properties.get_property_val_str(k))
                .map(clean_txt)
                .filter(|v| !v.is_empty())
        };
        let suffix = format!(".{}", r.ty_domain);
        let instance = r
            .fullname
            .strip_suffix(&suffix)
            .unwrap_or(&r.fullname)
            .to_owned();
        Some(DiscoveredCamera {
            fullname: r.fullname.clone(),
            instance: clean_txt(&instance),
            service_type: r.ty_domain.clone(),
            host: clean_txt(&r.host),
            addresses,
            port: r.port,
            path: txt(&["path"]).filter(|p| p.starts_with('/')),
            model: txt(&["model", "md", "product"]),
            first_seen_micros: now,
            last_seen_micros: now,
        })
    }

    /// The RTSP URL this announcement suggests (first address, announced port and
    /// path), only for `_rtsp._tcp`: other types announce a web port.
    pub fn rtsp_url(&self) -> Option<url::Url> {
        if self.service_type != RTSP_TYPE {
            return None;
        }
        let host = match self.addresses.first()? {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let path = self.path.as_deref().unwrap_or("/");
        url::Url::parse(&format!("rtsp://{host}:{}{path}", self.port)).ok()
    }

    /// Whether `url` (a configured camera's) points at this instance: same port
    /// (554 when the URL names none) and a host that is one of its addresses or its
    /// host name.
    pub fn matches(&self, url: &url::Url) -> bool {
        if url.port().unwrap_or(554) != self.port {
            return false;
        }
        match url.host() {
            Some(url::Host::Ipv4(a)) => self.addresses.contains(&IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => self.addresses.contains(&IpAddr::V6(a)),
            // `rtsp` is not a "special" scheme to the URL standard, so an IPv4 host
            // comes back as an opaque name.
            Some(url::Host::Domain(d)) => match d.parse::<IpAddr>() {
                Ok(a) => self.addresses.contains(&a),
                Err(_) => d
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(self.host.trim_end_matches('.')),
            },
            None => false,
        }
    }
}

/// Printable, bounded text from an announcement.
fn clean_txt(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TXT)
        .collect()
}

/// The live list. Cheap to clone.
#[derive(Clone)]
pub struct Discovery {
    seen: Arc<RwLock<BTreeMap<String, DiscoveredCamera>>>,
    clock: Arc<dyn Clock>,
}

impl Discovery {
    /// An empty list that nothing feeds (tests of the list itself).
    pub fn empty(clock: Arc<dyn Clock>) -> Discovery {
        Discovery {
            seen: Arc::default(),
            clock,
        }
    }

    /// Starts browsing on the configured interfaces until `shutdown` turns true.
    /// mDNS runs on its own thread (mdns-sd's); one small task per service type
    /// folds its events into the list.
    pub fn start(
        config: &DiscoveryConfig,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Discovery, DiscoveryError> {
        let mdns = ServiceDaemon::new()?;
        if !config.interfaces.is_empty() {
            mdns.disable_interface(IfKind::All)?;
            for name in &config.interfaces {
                mdns.enable_interface(IfKind::Name(name.clone()))?;
            }
        }
        let discovery = Discovery::empty(clock);
        for service_type in SERVICE_TYPES {
            let events = mdns.browse(service_type)?;
            let (list, mut stop) = (discovery.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        event = events.recv_async() => match event {
                            Ok(event) => list.apply(event),
                            Err(_) => return, // the mDNS thread is gone
                        },
                    }
                }
            });
        }
        let mut stop = shutdown;
        tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            if let Err(e) = mdns.shutdown() {
                tracing::debug!("mDNS shutdown: {e}");
            }
        });
        tracing::info!(
            interfaces = ?config.interfaces,
            "discovery: browsing mDNS for {}",
            SERVICE_TYPES.join(", ")
        );
        Ok(discovery)
    }

    /// Folds one mDNS event into the list.
    pub fn apply(&self, event: ServiceEvent) {
        match event {
            ServiceEvent::ServiceResolved(r) => {
                if let Some(found) = DiscoveredCamera::from_resolved(&r, self.clock.now_micros()) {
                    self.upsert(found);
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
                if seen.remove(&fullname).is_some() {
                    // Debug-escaped: the name comes off the network, and a raw "\n" in
                    // it would forge log lines.
                    tracing::info!(instance = ?fullname, "discovery: camera left");
                }
            }
            _ => {}
        }
    }

    /// Adds or refreshes an entry (keeping when it was first seen).
    pub fn upsert(&self, mut found: DiscoveredCamera) {
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        match seen.get(&found.fullname) {
            Some(old) => found.first_seen_micros = old.first_seen_micros,
            None => {
                // Debug-escaped, as above: the name is whatever was announced.
                tracing::info!(
                    instance = ?found.fullname,
                    port = found.port,
                    "discovery: camera announced"
                );
                if seen.len() >= MAX_ENTRIES {
                    let stalest = seen
                        .values()
                        .min_by_key(|d| d.last_seen_micros)
                        .map(|d| d.fullname.clone());
                    if let Some(name) = stalest {
                        seen.remove(&name);
                    }
                }
            }
        }
        seen.insert(found.fullname.clone(), found);
    }

    /// Everything heard and not withdrawn, by name.
    pub fn list(&self) -> Vec<DiscoveredCamera> {
        let seen = self.seen.read().unwrap_or_else(|p| p.into_inner());
        seen.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimulatedClock;

    fn camera(name: &str, seen: i64) -> DiscoveredCamera {
        DiscoveredCamera {
            fullname: format!("{name}.{RTSP_TYPE}"),
            instance: name.to_owned(),
            service_type: RTSP_TYPE.to_owned(),
            host: "cam.local.".to_owned(),
            addresses: vec!["192.0.2.7".parse().expect("address")],
            port: 8554,
            path: Some("/main".to_owned()),
            model: None,
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
}
