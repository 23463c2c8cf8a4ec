//! The bounds that keep a flooding LAN host from crowding other hosts' cameras off
//! the discovered list or filling the log: at most [`MAX_PER_SOURCE`] ONVIF entries
//! per source address, and at most [`LOG_LINES_PER_WINDOW`] arrival/departure lines
//! at info per [`LOG_WINDOW`]. Pure code on the list and the clock's time.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{DiscoveredCamera, Source, LOG_LINES_PER_WINDOW, LOG_WINDOW, MAX_PER_SOURCE};

/// When `found` (a new ONVIF entry) comes from an address that already holds
/// [`MAX_PER_SOURCE`] entries, the key of that address's longest unseen one.
pub(super) fn stalest_of_crowded_source(
    seen: &BTreeMap<(Source, String), DiscoveredCamera>,
    found: &DiscoveredCamera,
) -> Option<(Source, String)> {
    let loopback = found.host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
    if found.source != Source::Onvif || loopback {
        return None;
    }
    let same: Vec<&DiscoveredCamera> = seen
        .values()
        .filter(|d| d.source == Source::Onvif && d.host == found.host)
        .collect();
    if same.len() < MAX_PER_SOURCE {
        return None;
    }
    same.into_iter()
        .min_by_key(|d| d.last_seen_micros)
        .map(|d| (d.source, d.fullname.clone()))
}

/// The info lines left in the current [`LOG_WINDOW`].
#[derive(Debug, Default)]
pub(super) struct LogBudget {
    window_start: i64,
    used: u32,
    held_back: u64,
}

impl LogBudget {
    /// One line at `now`: whether it may go at info, and (once, at the first line of a
    /// new window) how many the last window held back.
    pub(super) fn take(&mut self, now: i64) -> (bool, Option<u64>) {
        let window = i64::try_from(LOG_WINDOW.as_micros()).unwrap_or(i64::MAX);
        let mut held_back = None;
        if now < self.window_start || now.saturating_sub(self.window_start) >= window {
            held_back = (self.held_back > 0).then_some(self.held_back);
            *self = LogBudget {
                window_start: now,
                ..LogBudget::default()
            };
        }
        if self.used < LOG_LINES_PER_WINDOW {
            self.used += 1;
            (true, held_back)
        } else {
            self.held_back += 1;
            (false, held_back)
        }
    }
}
