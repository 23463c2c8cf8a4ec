//! Discovery: cameras that announce themselves on the LAN, over mDNS (DNS-SD) or
//! ONVIF WS-Discovery, kept as one live in-memory list for the owner's "discovered
//! cameras" page. The only user of `mdns-sd`; ONVIF is `onvif.rs` (messages),
//! `onvif_xml.rs` (the extractor they use), `onvif_probe.rs` (probing) and
//! `onvif_listen.rs` (`Hello`/`Bye`).
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
//! (HomeKit cameras serve no RTSP).
//!
//! Most IP cameras announce themselves only through ONVIF WS-Discovery: with
//! `[discovery] onvif = true` (the default) a `Probe` for `dn:NetworkVideoTransmitter`
//! goes to 239.255.255.250:3702 at start, every [`onvif_probe::PROBE_INTERVAL`] and
//! when the owner opens the discovered page ([`Discovery::search`], at most once per
//! [`onvif_probe::MIN_GAP`]); answers come back unicast for
//! [`onvif_probe::COLLECT`]. An ONVIF entry has the camera's scope name and model,
//! its address and its device-service URL, but no RTSP URL: WS-Discovery does not
//! say where the stream is, so the page suggests `rtsp://HOST:554/` as a guess (the
//! add form can then ask the camera, on the owner's action and with the owner's
//! credentials: `crate::camera::onvif_media`, not this module). A socket on port
//! 3702 itself (`onvif_listen.rs`) hears the `Hello` a camera multicasts when it
//! boots, which lists it at once, and the `Bye` of a clean shutdown, which removes
//! it at once; a camera that vanishes without `Bye` (power cut) is dropped when
//! unheard for [`onvif_probe::FORGET_AFTER`]. Both over IPv4 and, on interfaces
//! with an IPv6 address, over IPv6 (`[ff02::c]:3702`); a camera heard over both is
//! two entries, one per answering address.
//!
//! Invariants:
//! - Discovery only listens and asks on the LAN (mDNS: multicast 224.0.0.251 /
//!   ff02::fb, port 5353; ONVIF: probes to 239.255.255.250:3702 and
//!   `[ff02::c]:3702`, the unicast
//!   answers to them, and `Hello`/`Bye` on the group); it never connects to what it
//!   finds. Connecting is the
//!   owner's step.
//! - One entry per source and name (full mDNS instance name; ONVIF endpoint address
//!   and the address that answered): `ServiceResolved` fires several times per instance as its addresses
//!   arrive, and each time updates the entry; a camera heard over both mDNS and ONVIF
//!   is two entries, which the page links by their shared address.
//! - Announcements are untrusted: TXT values are cut to [`MAX_TXT`] characters, a
//!   `path` must start with `/`, an instance keeps at most [`MAX_ADDRESSES`], and the
//!   list holds at most [`MAX_ENTRIES`] (the longest unseen is dropped), so a hostile
//!   LAN cannot grow the daemon. (mdns-sd's own cache is bounded by its TTLs.) ONVIF
//!   answers are held to the same bounds; `onvif.rs` lists its rules.
//! - One LAN address holds at most [`MAX_PER_SOURCE`] ONVIF entries: a new endpoint
//!   from an address at that limit replaces that address's longest unseen entry, so
//!   a host saying `Hello` with ever-new endpoints cannot push other hosts' cameras
//!   off the list. (Loopback is exempt: it is this machine, not the LAN, and the
//!   tests run many cameras there. mDNS has no such bound: its announcements carry
//!   no trustworthy source address.)
//! - Arrivals and departures are logged at info at most [`LOG_LINES_PER_WINDOW`]
//!   times per [`LOG_WINDOW`]; past that at debug, and the first such line of the
//!   next window says at warn how many were held back. Entries replaced under
//!   [`MAX_PER_SOURCE`] are logged at debug only. So a flood cannot fill the log
//!   (an SD card, often).

mod bounds;
pub mod onvif;
mod onvif_listen;
mod onvif_probe;
mod onvif_xml;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mdns_sd::{IfKind, ResolvedService, ServiceDaemon, ServiceEvent};
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::config::DiscoveryConfig;
use bounds::{stalest_of_crowded_source, LogBudget};

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
/// Most ONVIF entries kept per source address (loopback excepted); see the module docs.
pub const MAX_PER_SOURCE: usize = 4;
/// Most arrivals and departures logged at info per [`LOG_WINDOW`].
pub const LOG_LINES_PER_WINDOW: u32 = 32;
/// The window of [`LOG_LINES_PER_WINDOW`] (an hour).
pub const LOG_WINDOW: Duration = Duration::from_secs(3600);
/// Longest TXT value kept (characters).
pub const MAX_TXT: usize = 200;
/// The RTSP port a URL without one means, and the one suggested for ONVIF entries.
pub const RTSP_DEFAULT_PORT: u16 = 554;

/// How an entry was heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Mdns,
    Onvif,
}

impl Source {
    /// As shown on the page.
    pub fn label(self) -> &'static str {
        match self {
            Source::Mdns => "mDNS",
            Source::Onvif => "ONVIF",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot start mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    #[error("cannot open the ONVIF WS-Discovery socket: {0}")]
    Onvif(#[source] std::io::Error),
}

/// One announced instance as last heard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredCamera {
    /// With `source`, the key: `Front door._rtsp._tcp.local.` (mDNS), the endpoint
    /// address and the address that answered, `urn:uuid:… at 192.168.1.64` (ONVIF).
    pub fullname: String,
    /// The instance name alone (`Front door`); ONVIF: the `name` scope, else the
    /// endpoint address.
    pub instance: String,
    /// The DNS-SD type, or [`onvif::ONVIF_TYPE`].
    pub service_type: String,
    pub source: Source,
    /// The announced host name (`cam-1.local.`); ONVIF: the answer's source address.
    pub host: String,
    /// Sorted, IPv4 first.
    pub addresses: Vec<IpAddr>,
    /// The announced port; ONVIF: [`RTSP_DEFAULT_PORT`], a guess.
    pub port: u16,
    /// The TXT `path` (RTSP stream path), when announced and sane.
    pub path: Option<String>,
    /// The TXT `model` (or `md`, `product`), or ONVIF's `hardware` scope.
    pub model: Option<String>,
    /// ONVIF: the device-service URL (an accepted XAddr). Shown, never fetched here.
    pub device_url: Option<String>,
    pub first_seen_micros: i64,
    pub last_seen_micros: i64,
}

impl DiscoveredCamera {
    /// From a resolved announcement heard at `now`; `None` when it has no address.
    pub fn from_resolved(r: &ResolvedService, now: i64) -> Option<DiscoveredCamera> {
        let addresses = tidy_addresses(r.addresses.iter().map(|a| a.to_ip_addr()).collect());
        if addresses.is_empty() {
            return None;
        }
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
            source: Source::Mdns,
            host: clean_txt(&r.host),
            addresses,
            port: r.port,
            path: txt(&["path"]).filter(|p| p.starts_with('/')),
            model: txt(&["model", "md", "product"]),
            device_url: None,
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
        self.url_at_first_address()
    }

    /// An RTSP URL to start from when nothing was announced: ONVIF entries get
    /// `rtsp://HOST:554/` (the path depends on the camera); mDNS ones their
    /// [`rtsp_url`](Self::rtsp_url).
    pub fn suggested_rtsp_url(&self) -> Option<url::Url> {
        match self.source {
            Source::Mdns => self.rtsp_url(),
            Source::Onvif => self.url_at_first_address(),
        }
    }

    fn url_at_first_address(&self) -> Option<url::Url> {
        let host = match self.addresses.first()? {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let path = self.path.as_deref().unwrap_or("/");
        url::Url::parse(&format!("rtsp://{host}:{}{path}", self.port)).ok()
    }

    /// Whether `url` (a configured camera's) points at this instance: a host that is
    /// one of its addresses or its host name, and (mDNS only: ONVIF does not say
    /// where the stream is) the same port, 554 when the URL names none.
    pub fn matches(&self, url: &url::Url) -> bool {
        if self.source == Source::Mdns && url.port().unwrap_or(RTSP_DEFAULT_PORT) != self.port {
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

/// Announced addresses sorted (IPv4 first), without repeats, at most [`MAX_ADDRESSES`].
fn tidy_addresses(mut addresses: Vec<IpAddr>) -> Vec<IpAddr> {
    addresses.sort_by_key(|a| (a.is_ipv6(), *a));
    addresses.dedup();
    addresses.truncate(MAX_ADDRESSES);
    addresses
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
    seen: Arc<RwLock<BTreeMap<(Source, String), DiscoveredCamera>>>,
    clock: Arc<dyn Clock>,
    /// How many arrival/departure lines may still go at info.
    log: Arc<Mutex<LogBudget>>,
    /// Wakes the ONVIF prober for an early probe; `None` when ONVIF is off.
    onvif_wake: Option<Arc<Notify>>,
}

impl Discovery {
    /// An empty list that nothing feeds (tests of the list itself).
    pub fn empty(clock: Arc<dyn Clock>) -> Discovery {
        Discovery {
            seen: Arc::default(),
            clock,
            log: Arc::default(),
            onvif_wake: None,
        }
    }

    /// Asks for a fresh ONVIF probe (the owner opened the page); the prober sends
    /// one unless it probed less than [`onvif_probe::MIN_GAP`] ago. mDNS needs no
    /// such nudge: it browses continuously.
    pub fn search(&self) {
        if let Some(wake) = &self.onvif_wake {
            wake.notify_one();
        }
    }

    /// Starts browsing on the configured interfaces until `shutdown` turns true.
    /// mDNS runs on its own thread (mdns-sd's); one small task per service type
    /// folds its events into the list; with `config.onvif` one more task probes.
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
        let mut discovery = Discovery::empty(clock);
        if config.onvif {
            let wake = Arc::new(Notify::new());
            discovery.onvif_wake = Some(wake.clone());
            onvif_probe::start(config, discovery.clone(), wake, shutdown.clone())
                .map_err(DiscoveryError::Onvif)?;
            onvif_listen::start(config, discovery.clone(), shutdown.clone());
        }
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
            onvif = config.onvif,
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
                if let Some(gone) = seen.remove(&(Source::Mdns, fullname)) {
                    self.log_change(&gone, "camera left");
                }
            }
            _ => {}
        }
    }

    /// Adds or refreshes an entry (keeping when it was first seen).
    pub fn upsert(&self, mut found: DiscoveredCamera) {
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        let key = (found.source, found.fullname.clone());
        match seen.get(&key) {
            Some(old) => found.first_seen_micros = old.first_seen_micros,
            None => {
                if let Some(replaced) = stalest_of_crowded_source(&seen, &found) {
                    seen.remove(&replaced);
                    // Debug-escaped, as in `log_change`.
                    tracing::debug!(
                        instance = ?found.fullname,
                        replaced = ?replaced.1,
                        "discovery: camera announced by an address at its limit of {MAX_PER_SOURCE}"
                    );
                    seen.insert(key, found);
                    return;
                }
                self.log_change(&found, "camera announced");
                if seen.len() >= MAX_ENTRIES {
                    let stalest = seen
                        .values()
                        .min_by_key(|d| d.last_seen_micros)
                        .map(|d| (d.source, d.fullname.clone()));
                    if let Some(key) = stalest {
                        seen.remove(&key);
                    }
                }
            }
        }
        seen.insert(key, found);
    }

    /// Drops one ONVIF entry at once (its camera said `Bye`).
    fn forget_onvif(&self, fullname: &str) {
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        if let Some(gone) = seen.remove(&(Source::Onvif, fullname.to_owned())) {
            self.log_change(&gone, "camera left");
        }
    }

    /// Drops the ONVIF entries last heard before `micros` (a `Bye` is not
    /// guaranteed: a camera that loses power sends none).
    fn forget_onvif_before(&self, micros: i64) {
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        seen.retain(|(source, _), d| *source != Source::Onvif || d.last_seen_micros >= micros);
    }

    /// Logs an arrival or departure, at info while the window's budget lasts.
    fn log_change(&self, camera: &DiscoveredCamera, what: &'static str) {
        let now = self.clock.now_micros();
        let (info, held_back) = self.log.lock().unwrap_or_else(|p| p.into_inner()).take(now);
        if let Some(n) = held_back {
            tracing::warn!(
                "discovery: {n} camera arrivals and departures in the last {} min were \
                 logged at debug level only (a host flooding the LAN?)",
                LOG_WINDOW.as_secs() / 60
            );
        }
        // Debug-escaped: the name comes off the network, and a raw "\n" in it would
        // forge log lines.
        let (instance, source) = (&camera.fullname, camera.source.label());
        if info {
            tracing::info!(instance = ?instance, source, port = camera.port, "discovery: {what}");
        } else {
            tracing::debug!(instance = ?instance, source, port = camera.port, "discovery: {what}");
        }
    }

    /// Everything heard and not withdrawn, by name.
    pub fn list(&self) -> Vec<DiscoveredCamera> {
        let seen = self.seen.read().unwrap_or_else(|p| p.into_inner());
        seen.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests;
