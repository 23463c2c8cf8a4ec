//! ONVIF WS-Discovery, the listening half: UDP sockets on the WS-Discovery port
//! itself (3702), joined to 239.255.255.250 and (when the host has IPv6) to
//! `ff02::c` on each outgoing interface, that hear the `Hello` a camera multicasts
//! when it boots and the `Bye` when it shuts down cleanly (`onvif.rs` parses them
//! under the same rules as probe answers). A `Hello` lists the camera at once
//! instead of at the next probe; a `Bye` removes it at once instead of after [`FORGET_AFTER`](super::onvif_probe::FORGET_AFTER).
//!
//! The port is shared: each socket sets `SO_REUSEADDR` and `SO_REUSEPORT` so that it
//! binds next to other WS-Discovery listeners on this machine (a camera, `wsdd`);
//! multicast reaches every socket bound to the port. When it cannot be bound (another
//! program holds it exclusively) one warning is logged and discovery carries on
//! probing without it. Group membership is renewed every
//! [`PROBE_INTERVAL`](super::onvif_probe::PROBE_INTERVAL), so an interface that got
//! its address after start is joined then.
//!
//! An announcement counts only when its source address lies in the subnet of one of
//! the chosen interfaces (`[discovery] interfaces`, or every non-loopback one): the
//! IPv6 socket is bound to `[::]`, and the kernel hands either socket what arrives on
//! any interface where something on this machine joined the group. An IPv6
//! link-local source (every interface shares `fe80::/64`) counts only when it
//! arrived on a chosen interface that has a link-local address; loopback only when
//! `lo` is chosen. The subnets are read again at each renewal of membership.
//!
//! These sockets never send.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::net::{sockopt, AddressFamily, SocketType};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::onvif::{self, Announcement, MAX_DATAGRAM, WSD_GROUP_V4, WSD_GROUP_V6, WSD_PORT};
use super::onvif_probe::{
    chosen_interfaces, outgoing_addresses, outgoing_indexes_v6, PROBE_INTERVAL,
};
use super::Discovery;
use crate::config::DiscoveryConfig;

/// Binds the port (IPv4, and IPv6 when the host has it) and spawns a listener per
/// socket, which runs until `shutdown` turns true; when the port cannot be had,
/// warns once and returns (probing goes on).
pub(super) fn start(config: &DiscoveryConfig, list: Discovery, shutdown: watch::Receiver<bool>) {
    for v6 in [false, true] {
        let bound = if v6 { bind_v6() } else { bind_v4() };
        match bound {
            Ok(socket) => {
                let listener = Listener {
                    socket,
                    v6,
                    interfaces: config.interfaces.clone(),
                    list: list.clone(),
                };
                tokio::spawn(listener.run(shutdown.clone()));
            }
            // No IPv6 on this host: nothing to hear there.
            Err(e) if v6 && e.raw_os_error() == Some(Errno::AFNOSUPPORT.raw_os_error()) => {}
            Err(e) => tracing::warn!(
                "ONVIF discovery: cannot listen on {} port {WSD_PORT} ({e}); cameras that \
                 announce themselves with Hello show up at the next probe instead",
                if v6 { "IPv6" } else { "IPv4" }
            ),
        }
    }
}

/// `239.255.255.250:3702`, shared with other listeners. Bound to the group, not to
/// `0.0.0.0`, so that it gets only what is multicast there: unicast to port 3702
/// (answers to a WS-Discovery client on this machine that probes from that port)
/// still goes to that client, not to this socket.
fn bind_v4() -> std::io::Result<UdpSocket> {
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    shared(&fd)?;
    rustix::net::bind(&fd, &SocketAddrV4::new(WSD_GROUP_V4, WSD_PORT))?;
    into_tokio(fd)
}

/// `[::]:3702`, IPv6 only (the IPv4 socket hears IPv4), shared with other listeners.
/// Not bound to `ff02::c` as IPv4 is to its group: a link-local group can be bound
/// on one interface only. So unicast to port 3702 on this machine may land here
/// (and be ignored) instead of at another program sharing the port.
fn bind_v6() -> std::io::Result<UdpSocket> {
    let fd = rustix::net::socket(AddressFamily::INET6, SocketType::DGRAM, None)?;
    sockopt::set_ipv6_v6only(&fd, true)?;
    shared(&fd)?;
    rustix::net::bind(
        &fd,
        &SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, WSD_PORT, 0, 0),
    )?;
    into_tokio(fd)
}

fn shared(fd: &OwnedFd) -> std::io::Result<()> {
    sockopt::set_socket_reuseaddr(fd, true)?;
    sockopt::set_socket_reuseport(fd, true)?;
    Ok(())
}

fn into_tokio(fd: OwnedFd) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::from(fd);
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

struct Listener {
    socket: UdpSocket,
    /// Joins `ff02::c` by interface index instead of 239.255.255.250 by address.
    v6: bool,
    /// Configured interface names; empty = every non-loopback interface.
    interfaces: Vec<String>,
    list: Discovery,
}

impl Listener {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut subnets = Vec::new();
        let mut rejoin = tokio::time::interval(PROBE_INTERVAL);
        rejoin.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // The guard `wait_for` returns is not `Send`: drop it inside.
                _ = async { shutdown.wait_for(|s| *s).await.is_ok() } => return,
                _ = rejoin.tick() => subnets = self.join(),
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) if from_chosen_subnet(from, &subnets) => {
                        self.take(&buf[..n], from.ip());
                    }
                    Ok((_, from)) => {
                        tracing::debug!(%from, "ONVIF discovery: ignored, not from a chosen interface's subnet");
                    }
                    Err(e) => {
                        tracing::debug!("ONVIF discovery: receive on {WSD_PORT}: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// Joins the group on each outgoing interface (one already joined is no error);
    /// returns the chosen interfaces' subnets, where announcements may come from.
    fn join(&self) -> Vec<Subnet> {
        let joined: Vec<(String, rustix::io::Result<()>)> = if self.v6 {
            outgoing_indexes_v6(&self.interfaces)
                .into_iter()
                .map(|i| {
                    let joined = sockopt::set_ipv6_add_membership(&self.socket, &WSD_GROUP_V6, i);
                    (format!("interface {i}"), joined)
                })
                .collect()
        } else {
            outgoing_addresses(&self.interfaces)
                .into_iter()
                .map(|a| {
                    let joined = sockopt::set_ip_add_membership(&self.socket, &WSD_GROUP_V4, &a);
                    (a.to_string(), joined)
                })
                .collect()
        };
        for (on, result) in joined {
            match result {
                Ok(()) => tracing::debug!(on, "ONVIF discovery: listening for Hello"),
                Err(Errno::ADDRINUSE) => {}
                Err(e) => tracing::debug!(on, "ONVIF discovery: cannot join group: {e}"),
            }
        }
        chosen_interfaces(&self.interfaces)
            .iter()
            .map(Subnet::of)
            .collect()
    }

    /// Folds one announcement into the list (the parser drops what breaks its rules).
    fn take(&self, datagram: &[u8], from: IpAddr) {
        match onvif::parse_announcement(datagram, from) {
            Some(Announcement::Hello(found)) => {
                let now = self.list.clock.now_micros();
                self.list.upsert(found.into_discovered(from, now));
            }
            Some(Announcement::Bye { endpoint }) => {
                self.list
                    .forget_onvif(&onvif::onvif_fullname(&endpoint, from));
            }
            None => {}
        }
    }
}

/// One address of a chosen interface with its netmask: the subnet an announcement
/// may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Subnet {
    address: IpAddr,
    netmask: IpAddr,
    /// The interface's index: an IPv6 link-local source must have arrived on it.
    index: Option<u32>,
}

impl Subnet {
    pub(super) fn new(address: IpAddr, netmask: IpAddr, index: Option<u32>) -> Subnet {
        Subnet {
            address,
            netmask,
            index,
        }
    }

    fn of(interface: &if_addrs::Interface) -> Subnet {
        let (address, netmask) = match &interface.addr {
            if_addrs::IfAddr::V4(a) => (IpAddr::V4(a.ip), IpAddr::V4(a.netmask)),
            if_addrs::IfAddr::V6(a) => (IpAddr::V6(a.ip), IpAddr::V6(a.netmask)),
        };
        Subnet::new(address, netmask, interface.index)
    }

    /// Whether `from` lies in this subnet (and, when link-local IPv6, arrived on
    /// this subnet's interface: its scope id is the receiving interface).
    fn holds(&self, from: SocketAddr) -> bool {
        match (from, self.address, self.netmask) {
            (SocketAddr::V4(f), IpAddr::V4(a), IpAddr::V4(m)) => {
                let m = u32::from(m);
                u32::from(*f.ip()) & m == u32::from(a) & m
            }
            (SocketAddr::V6(f), IpAddr::V6(a), IpAddr::V6(m)) => {
                let m = u128::from(m);
                let same = u128::from(*f.ip()) & m == u128::from(a) & m;
                same && (!f.ip().is_unicast_link_local() || self.index == Some(f.scope_id()))
            }
            _ => false,
        }
    }
}

/// Whether an announcement from `from` came from one of the chosen interfaces'
/// `subnets` (see the module docs).
pub(super) fn from_chosen_subnet(from: SocketAddr, subnets: &[Subnet]) -> bool {
    subnets.iter().any(|s| s.holds(from))
}
