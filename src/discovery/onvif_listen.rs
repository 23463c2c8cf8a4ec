//! ONVIF WS-Discovery, the listening half: a UDP socket on the WS-Discovery port
//! itself (3702), joined to 239.255.255.250 on each outgoing interface, that hears
//! the `Hello` a camera multicasts when it boots and the `Bye` when it shuts down
//! cleanly (`onvif.rs` parses them under the same rules as probe answers). A `Hello`
//! lists the camera at once instead of at the next probe; a `Bye` removes it at once
//! instead of after [`FORGET_AFTER`](super::onvif_probe::FORGET_AFTER).
//!
//! The port is shared: the socket sets `SO_REUSEADDR` and `SO_REUSEPORT` so that it
//! binds next to other WS-Discovery listeners on this machine (a camera, `wsdd`);
//! multicast reaches every socket bound to the port. When it cannot be bound (another
//! program holds it exclusively) one warning is logged and discovery carries on
//! probing without it. Group membership is renewed every
//! [`PROBE_INTERVAL`](super::onvif_probe::PROBE_INTERVAL), so an interface that got
//! its address after start is joined then.
//!
//! This socket never sends.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use rustix::net::{sockopt, AddressFamily, SocketType};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::onvif::{self, Announcement, MAX_DATAGRAM, WSD_GROUP_V4, WSD_PORT};
use super::onvif_probe::{outgoing_addresses, PROBE_INTERVAL};
use super::Discovery;
use crate::config::DiscoveryConfig;

/// Binds the port and spawns the listener, which runs until `shutdown` turns true;
/// when the port cannot be had, warns once and returns (probing goes on).
pub(super) fn start(config: &DiscoveryConfig, list: Discovery, shutdown: watch::Receiver<bool>) {
    match bind_v4() {
        Ok(socket) => {
            let listener = Listener {
                socket,
                interfaces: config.interfaces.clone(),
                list,
            };
            tokio::spawn(listener.run(shutdown));
        }
        Err(e) => tracing::warn!(
            "ONVIF discovery: cannot listen on port {WSD_PORT} ({e}); cameras that \
             announce themselves with Hello show up at the next probe instead"
        ),
    }
}

/// `0.0.0.0:3702`, shared with other listeners.
fn bind_v4() -> std::io::Result<UdpSocket> {
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    sockopt::set_socket_reuseport(&fd, true)?;
    rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, WSD_PORT))?;
    let socket = std::net::UdpSocket::from(fd);
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

struct Listener {
    socket: UdpSocket,
    /// Configured interface names; empty = every non-loopback interface.
    interfaces: Vec<String>,
    list: Discovery,
}

impl Listener {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut rejoin = tokio::time::interval(PROBE_INTERVAL);
        rejoin.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // The guard `wait_for` returns is not `Send`: drop it inside.
                _ = async { shutdown.wait_for(|s| *s).await.is_ok() } => return,
                _ = rejoin.tick() => self.join(),
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => self.take(&buf[..n], from.ip()),
                    Err(e) => {
                        tracing::debug!("ONVIF discovery: receive on {WSD_PORT}: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// Joins the group on each outgoing address; one already joined is no error.
    fn join(&self) {
        for address in outgoing_addresses(&self.interfaces) {
            match sockopt::set_ip_add_membership(&self.socket, &WSD_GROUP_V4, &address) {
                Ok(()) => tracing::debug!(%address, "ONVIF discovery: listening for Hello"),
                Err(rustix::io::Errno::ADDRINUSE) => {}
                Err(e) => tracing::debug!(%address, "ONVIF discovery: cannot join group: {e}"),
            }
        }
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
