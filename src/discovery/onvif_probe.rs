//! ONVIF WS-Discovery, the socket half: one UDP socket on an ephemeral port that
//! multicasts a `Probe` (see `onvif.rs`) and reads the unicast `ProbeMatches` sent
//! back to it, folding accepted matches into the list.
//!
//! When: at start, then every [`PROBE_INTERVAL`], and on [`Discovery::search`] (the
//! owner opened the page) unless the last probe was under [`MIN_GAP`] ago, so a
//! reloaded page cannot make the daemon flood the LAN. Each probe has a fresh random
//! MessageID; answers are read for [`COLLECT`] after it, and anything else that
//! arrives (late, unrelated, or answering an older probe) is dropped.
//!
//! Where: the probe leaves on every IPv4 address of the configured interfaces
//! (`IP_MULTICAST_IF` set per address), or of every non-loopback interface when none
//! are configured; and, from a second socket, to `[ff02::c]:3702` on each of those
//! interfaces that has an IPv6 address (`IPV6_MULTICAST_IF` per interface; no IPv6
//! on the host: IPv4 only). Multicast loopback is on, so a camera on this machine
//! (and the test camera on `lo`) hears it too. TTL (hops) 1: the group is
//! link-local in practice.
//!
//! The socket only sends to the WS-Discovery group; it never sends to, nor connects
//! to, any address it learns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use rustix::net::{sockopt, AddressFamily, SocketType};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Notify};
use tokio::time::{Instant, MissedTickBehavior};

use super::onvif::{self, MAX_DATAGRAM, WSD_GROUP_V4, WSD_GROUP_V6, WSD_PORT};
use super::Discovery;
use crate::config::DiscoveryConfig;

/// Time between periodic probes (5 minutes).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(300);
/// Shortest time between two probes asked for by page views (10 s).
pub const MIN_GAP: Duration = Duration::from_secs(10);
/// How long answers to a probe are read (5 s; WS-Discovery's default
/// `MATCH_TIMEOUT` is 4 s, and cameras wait a random delay up to 500 ms).
pub const COLLECT: Duration = Duration::from_secs(5);
/// An ONVIF entry not heard for this long is dropped (three periodic probes).
pub const FORGET_AFTER: Duration = Duration::from_secs(3 * 300);

/// Opens the socket and spawns the prober; it runs until `shutdown` turns true.
pub(super) fn start(
    config: &DiscoveryConfig,
    list: Discovery,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_nonblocking(true)?;
    let socket_v6 = match bind_v6() {
        Ok(socket) => Some(socket),
        Err(e) => {
            tracing::info!("ONVIF discovery: probing over IPv4 only (no IPv6 socket: {e})");
            None
        }
    };
    let prober = Prober {
        socket: UdpSocket::from_std(socket)?,
        socket_v6,
        interfaces: config.interfaces.clone(),
        list,
    };
    tokio::spawn(prober.run(wake, shutdown));
    Ok(())
}

/// `[::]:0`, IPv6 only, looping multicast back, one hop.
fn bind_v6() -> std::io::Result<UdpSocket> {
    let fd = rustix::net::socket(AddressFamily::INET6, SocketType::DGRAM, None)?;
    sockopt::set_ipv6_v6only(&fd, true)?;
    rustix::net::bind(&fd, &SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0))?;
    sockopt::set_ipv6_multicast_loop(&fd, true)?;
    sockopt::set_ipv6_multicast_hops(&fd, 1)?;
    let socket = std::net::UdpSocket::from(fd);
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

struct Prober {
    socket: UdpSocket,
    /// `None` when this host has no IPv6.
    socket_v6: Option<UdpSocket>,
    /// Configured interface names; empty = every non-loopback interface.
    interfaces: Vec<String>,
    list: Discovery,
}

impl Prober {
    async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut buf_v6 = vec![0u8; MAX_DATAGRAM + 1];
        let mut current: Option<(String, Instant)> = None;
        // The first tick is immediate: the probe at start.
        let mut ticker = tokio::time::interval(PROBE_INTERVAL);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // The guard `wait_for` returns is not `Send`: drop it inside.
                _ = async { shutdown.wait_for(|s| *s).await.is_ok() } => return,
                _ = ticker.tick() => {
                    let forget = i64::try_from(FORGET_AFTER.as_micros()).unwrap_or(i64::MAX);
                    let now = self.list.clock.now_micros();
                    self.list.forget_onvif_before(now.saturating_sub(forget));
                    current = Some(self.probe().await);
                }
                _ = wake.notified() => {
                    if current.as_ref().is_none_or(|(_, sent)| sent.elapsed() >= MIN_GAP) {
                        current = Some(self.probe().await);
                    }
                }
                received = self.socket.recv_from(&mut buf) => {
                    self.received(received, &buf, current.as_ref()).await;
                }
                received = recv_v6(self.socket_v6.as_ref(), &mut buf_v6) => {
                    self.received(received, &buf_v6, current.as_ref()).await;
                }
            }
        }
    }

    /// Takes what one receive gave, if it answers the current probe in time.
    async fn received(
        &self,
        received: std::io::Result<(usize, SocketAddr)>,
        buf: &[u8],
        current: Option<&(String, Instant)>,
    ) {
        match received {
            Ok((n, from)) => {
                if let Some((id, sent)) = current {
                    if sent.elapsed() <= COLLECT {
                        self.take(&buf[..n], id, from.ip());
                    }
                }
            }
            Err(e) => {
                // Not expected on an unconnected socket; do not spin on it.
                tracing::debug!("ONVIF discovery: receive: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Folds one answer into the list (the parser drops what breaks its rules).
    fn take(&self, datagram: &[u8], id: &str, from: IpAddr) {
        let now = self.list.clock.now_micros();
        for found in onvif::parse_probe_matches(datagram, id, from) {
            self.list.upsert(found.into_discovered(from, now));
        }
    }

    /// Sends one probe with a fresh MessageID on each outgoing interface; returns the
    /// id and when it went.
    async fn probe(&self) -> (String, Instant) {
        let id = onvif::new_message_id();
        let message = onvif::probe_message(&id);
        let to = SocketAddrV4::new(WSD_GROUP_V4, WSD_PORT);
        let addresses = outgoing_addresses(&self.interfaces);
        if addresses.is_empty() {
            tracing::debug!(interfaces = ?self.interfaces, "ONVIF discovery: no IPv4 interface to probe on");
        }
        for address in addresses {
            let sent = match sockopt::set_ip_multicast_if(&self.socket, &address) {
                Ok(()) => self
                    .socket
                    .send_to(message.as_bytes(), to)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e.into()),
            };
            match sent {
                Ok(()) => tracing::debug!(%address, "ONVIF discovery: probe sent"),
                Err(e) => tracing::debug!(%address, "ONVIF discovery: probe not sent: {e}"),
            }
        }
        if let Some(socket) = &self.socket_v6 {
            for index in outgoing_indexes_v6(&self.interfaces) {
                let to = SocketAddrV6::new(WSD_GROUP_V6, WSD_PORT, 0, index);
                let sent = match sockopt::set_ipv6_multicast_if(socket, index) {
                    Ok(()) => socket.send_to(message.as_bytes(), to).await.map(|_| ()),
                    Err(e) => Err(e.into()),
                };
                match sent {
                    Ok(()) => tracing::debug!(index, "ONVIF discovery: IPv6 probe sent"),
                    Err(e) => tracing::debug!(index, "ONVIF discovery: IPv6 probe not sent: {e}"),
                }
            }
        }
        (id, Instant::now())
    }
}

/// A receive on the IPv6 socket, or never when there is none.
async fn recv_v6(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The IPv4 addresses to probe from: those of the named interfaces, or of every
/// non-loopback interface when `names` is empty.
pub(super) fn outgoing_addresses(names: &[String]) -> Vec<Ipv4Addr> {
    let mut addresses: Vec<Ipv4Addr> = chosen_interfaces(names)
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// The indexes of the chosen interfaces (as for [`outgoing_addresses`]) that have an
/// IPv6 address: IPv6 multicast leaves by interface, not by address.
pub(super) fn outgoing_indexes_v6(names: &[String]) -> Vec<u32> {
    let mut indexes: Vec<u32> = chosen_interfaces(names)
        .into_iter()
        .filter(|i| i.ip().is_ipv6())
        .filter_map(|i| i.index)
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    indexes
}

/// The named interfaces' addresses, or every non-loopback one's when `names` is empty.
pub(super) fn chosen_interfaces(names: &[String]) -> Vec<if_addrs::Interface> {
    let interfaces = match if_addrs::get_if_addrs() {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!("ONVIF discovery: cannot list network interfaces: {e}");
            return Vec::new();
        }
    };
    interfaces
        .into_iter()
        .filter(|i| {
            if names.is_empty() {
                !i.is_loopback()
            } else {
                names.contains(&i.name)
            }
        })
        .collect()
}
