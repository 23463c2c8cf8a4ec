//! systemd's service notification protocol (`sd_notify(3)`), for `Type=notify` with a
//! watchdog.
//!
//! systemd passes `NOTIFY_SOCKET` (a datagram socket path, or `@name` for an abstract
//! socket) and, when `WatchdogSec=` is set, `WATCHDOG_USEC` (and `WATCHDOG_PID`, the
//! process the watchdog is meant for). The daemon sends `READY=1` once start-up
//! recovery has finished and the cameras are started, `WATCHDOG=1` every half
//! interval, and `STOPPING=1` when a termination signal arrives.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op. A failed send is
//! logged, never fatal: recording matters more than telling systemd about it.
//!
//! The watchdog pings come from a task on the daemon's async runtime, so they stop
//! when the runtime stops scheduling tasks (every worker blocked or the process
//! wedged), and systemd then kills and restarts the daemon. They do not prove that
//! each camera is recording: a camera's trouble shows on the camera, not as a restart.
//!
//! Written against the socket directly (std's `UnixDatagram`), with no `unsafe` and no
//! dependency; the messages carry nothing secret.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where to send notifications, from `NOTIFY_SOCKET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A socket in the file system.
    Path(std::path::PathBuf),
    /// A Linux abstract socket (`@name` in the variable), name without the `@`.
    Abstract(Vec<u8>),
}

/// What the environment asks of this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub target: Target,
    /// The watchdog interval, if systemd set one for this process.
    pub watchdog: Option<Duration>,
}

impl Settings {
    /// Interprets the three variables; `pid` is this process's id. `None` when there
    /// is nothing to notify (no or empty `NOTIFY_SOCKET`, or a relative path, which
    /// systemd never sends).
    pub fn parse(
        notify_socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Option<Settings> {
        let socket = notify_socket.filter(|s| !s.is_empty())?;
        let target = if let Some(name) = socket.strip_prefix('@') {
            Target::Abstract(name.as_bytes().to_vec())
        } else if socket.starts_with('/') {
            Target::Path(socket.into())
        } else {
            return None;
        };
        let for_us = match watchdog_pid {
            None => true,
            Some(p) => p.trim().parse::<u32>().ok() == Some(pid),
        };
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Some(Settings { target, watchdog })
    }

    /// From this process's environment.
    pub fn from_env() -> Option<Settings> {
        let var = |name| std::env::var(name).ok();
        Settings::parse(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }
}

/// A connection to systemd's notification socket, or nothing outside systemd.
pub struct Notifier {
    socket: Option<UnixDatagram>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment; a no-op notifier when not started by systemd, or when the
    /// socket cannot be reached (logged).
    pub fn from_env() -> Notifier {
        match Settings::from_env() {
            Some(settings) => Notifier::connect(&settings).unwrap_or_else(|e| {
                tracing::warn!("cannot reach systemd's notification socket: {e}");
                Notifier::none()
            }),
            None => Notifier::none(),
        }
    }

    /// Does nothing when called.
    pub fn none() -> Notifier {
        Notifier {
            socket: None,
            watchdog: None,
        }
    }

    /// Connects to `settings.target`.
    pub fn connect(settings: &Settings) -> io::Result<Notifier> {
        let addr = match &settings.target {
            Target::Path(p) => SocketAddr::from_pathname(p)?,
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)?
            }
        };
        let socket = UnixDatagram::unbound()?;
        socket.connect_addr(&addr)?;
        Ok(Notifier {
            socket: Some(socket),
            watchdog: settings.watchdog,
        })
    }

    /// The interval systemd expects pings within, if it set one.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Start-up is complete: recovery has run and the cameras are started.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A termination signal arrived; open recordings are being finished.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=finishing open recordings");
    }

    /// The daemon is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, message: &str) {
        if let Some(socket) = &self.socket {
            if let Err(e) = socket.send(message.as_bytes()) {
                let what = message.lines().next().unwrap_or_default();
                tracing::warn!("cannot notify systemd ({what}): {e}");
            }
        }
    }

    /// Pings the watchdog every half interval for as long as the runtime runs (also
    /// while open recordings are finished on the way out); does nothing when systemd
    /// set no watchdog.
    pub fn spawn_watchdog(self: std::sync::Arc<Self>) {
        let Some(interval) = self.watchdog else {
            return;
        };
        let period = interval / 2;
        tracing::debug!("systemd watchdog: pinging every {} ms", period.as_millis());
        tokio::spawn(async move {
            loop {
                self.watchdog();
                tokio::time::sleep(period).await;
            }
        });
    }
}

/// A `STATUS=` value must not contain a newline (it would start another assignment).
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_socket_means_no_notifications() {
        assert_eq!(Settings::parse(None, Some("1000000"), None, 7), None);
        assert_eq!(Settings::parse(Some(""), None, None, 7), None);
        assert_eq!(Settings::parse(Some("relative/sock"), None, None, 7), None);
    }

    #[test]
    fn path_and_abstract_sockets_are_told_apart() {
        let s = Settings::parse(Some("/run/systemd/notify"), None, None, 7).expect("some");
        assert_eq!(s.target, Target::Path("/run/systemd/notify".into()));
        assert_eq!(s.watchdog, None);
        let s = Settings::parse(Some("@abc/def"), None, None, 7).expect("some");
        assert_eq!(s.target, Target::Abstract(b"abc/def".to_vec()));
    }

    #[test]
    fn watchdog_applies_only_to_the_named_pid() {
        let mine = Settings::parse(Some("/s"), Some("30000000"), Some("7"), 7).expect("some");
        assert_eq!(mine.watchdog, Some(Duration::from_secs(30)));
        let any = Settings::parse(Some("/s"), Some("30000000"), None, 7).expect("some");
        assert_eq!(any.watchdog, Some(Duration::from_secs(30)));
        let other = Settings::parse(Some("/s"), Some("30000000"), Some("8"), 7).expect("some");
        assert_eq!(other.watchdog, None);
        let zero = Settings::parse(Some("/s"), Some("0"), None, 7).expect("some");
        assert_eq!(zero.watchdog, None);
        let junk = Settings::parse(Some("/s"), Some("soon"), None, 7).expect("some");
        assert_eq!(junk.watchdog, None);
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).expect("bind");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let settings = Settings {
            target: Target::Path(path),
            watchdog: None,
        };
        let n = Notifier::connect(&settings).expect("connect");
        n.ready("recording 2 cameras\nsecond line");
        n.watchdog();
        n.stopping();
        let mut buf = [0u8; 256];
        let mut next = || {
            let len = server.recv(&mut buf).expect("a datagram");
            String::from_utf8_lossy(&buf[..len]).into_owned()
        };
        assert_eq!(next(), "READY=1\nSTATUS=recording 2 cameras second line");
        assert_eq!(next(), "WATCHDOG=1");
        assert_eq!(next(), "STOPPING=1\nSTATUS=finishing open recordings");
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("porchlight-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let server = UnixDatagram::bind_addr(&addr).expect("bind");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let settings = Settings::parse(Some(&format!("@{name}")), None, None, 1).expect("some");
        Notifier::connect(&settings).expect("connect").watchdog();
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).expect("a datagram");
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn nothing_is_sent_outside_systemd() {
        let n = Notifier::none();
        n.ready("x");
        n.watchdog();
        n.stopping();
        assert_eq!(n.watchdog_interval(), None);
    }
}
