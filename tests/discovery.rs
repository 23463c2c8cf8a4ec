//! Discovery end to end with real parts: the GStreamer test camera announces itself
//! over real mDNS (python-zeroconf) on loopback, the daemon browses with mdns-sd
//! restricted to `lo`, and the owner's `/cameras/discovered` page over real HTTPS lists
//! it with the right address, port and path. The owner follows its "Add…" link, saves,
//! and the camera streams and records at once; the list then marks it as added. A
//! shared user is refused (403).
//!
//! ONVIF the same way: the test camera (`--onvif`) joins 239.255.255.250:3702 on `lo`
//! and answers the daemon's real multicast WS-Discovery probe with a unicast
//! ProbeMatches; the page lists it with its scope name, model, address and device
//! URL, and its "Add…" link pre-fills the guessed `rtsp://127.0.0.1:554/`. With
//! `onvif = false` no probe goes out, so the same camera is never listed. A camera
//! started with `--onvif-hello` is listed from its multicast `Hello` alone (no probe
//! could have reached it) and removed by its `Bye` when stopped. Over IPv6 the same
//! (probe, `Hello`, `Bye`) runs in a network namespace of its own with a veth pair,
//! as loopback has no IPv6 multicast (ignored for now: flaky, see the test). Asking the
//! camera for its stream URLs is tested against four kinds of camera: Media served
//! at the device service, at another path named by `GetServices`, (before ONVIF 2.0)
//! at another path named by `GetCapabilities`, and one that wants the credentials on
//! `GetServices` too; with each, a wrong password costs exactly one failed login at
//! the camera (real ones lock the daemon's address out after a few).
//!
//! If multicast does not work on loopback here, the test fails and says so: it never
//! passes without having seen a real announcement.

mod common;
mod webutil;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::camera::{CameraOptions, TestCamera};
use porchlight::camera::ConnectionState;
use porchlight::clock::SystemClock;
use porchlight::config::DiscoveryConfig;
use porchlight::discovery::{DiscoveredCamera, Discovery, Source};
use porchlight::model::CameraId;
use rustix::net::{sockopt, AddressFamily, SocketType};
use tokio::sync::watch;
use webutil::{csrf, totp_secret, Server};

const INSTANCE: &str = "Porch test camera";
const GUEST: &str = "grandma";
const GUEST_PASSWORD: &str = "purple elephant dances at noon 7";

/// Sends one datagram to a multicast group on loopback and reads it back; panics
/// with the reason when this machine cannot do multicast on `lo` (then discovery
/// cannot be tested here, and that is a failure, not a skip).
fn multicast_on_loopback_works() {
    let group = Ipv4Addr::new(239, 255, 77, 77);
    let lo = Ipv4Addr::LOCALHOST;
    let check = || -> std::io::Result<()> {
        let rx = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        rx.join_multicast_v4(&group, &lo)?;
        rx.set_read_timeout(Some(Duration::from_secs(2)))?;
        let port = rx.local_addr()?.port();
        let tx = UdpSocket::bind(SocketAddrV4::new(lo, 0))?;
        tx.set_multicast_loop_v4(true)?;
        tx.send_to(b"porchlight", SocketAddrV4::new(group, port))?;
        let mut buf = [0u8; 16];
        let (n, _) = rx.recv_from(&mut buf)?;
        assert_eq!(&buf[..n], b"porchlight");
        Ok(())
    };
    if let Err(e) = check() {
        panic!("multicast is unavailable on the loopback interface here ({e}): mDNS discovery cannot be tested");
    }
}

/// The discovered page's row for `instance`, waiting up to 30 s for it to appear.
async fn row_for(owner: &mut webutil::Client, instance: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let marker = format!("data-instance=\"{instance}\"");
    loop {
        let page = owner.get("/cameras/discovered").await;
        assert_eq!(page.status, 200, "{}", page.body);
        if let Some(rest) = page.body.split(&marker).nth(1) {
            return rest.split("</tr>").next().unwrap_or("").to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{instance} was not discovered within 30 s (multicast on lo works, \
             so discovery itself failed); the page:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_test_camera_is_listed_for_the_owner_and_refused_to_a_shared_user() {
    multicast_on_loopback_works();
    let camera = TestCamera::start(CameraOptions {
        mdns: Some(INSTANCE.to_owned()),
        ..Default::default()
    });
    let server = Server::start("[discovery]\nenabled = true\ninterfaces = [\"lo\"]\n").await;
    let (mut owner, _, _) = server.owner().await;

    let control = owner.get("/control-centre").await;
    assert!(
        control.body.contains("Camera discovery: on (lo)"),
        "the Control Centre says discovery is on: {}",
        control.body
    );
    let row = row_for(&mut owner, INSTANCE).await;
    assert!(
        row.contains(&format!("data-port=\"{}\"", camera.port())),
        "{row}"
    );
    assert!(row.contains("data-path=\"/main\""), "{row}");
    assert!(row.contains("data-addresses=\"127.0.0.1"), "{row}");
    assert!(
        row.contains("porchlight-test-camera"),
        "the model from TXT: {row}"
    );
    assert!(
        row.contains(&format!("rtsp://127.0.0.1:{}/main", camera.port())),
        "the suggested URL: {row}"
    );

    // Adopt it from the list: the link prefills URL and name.
    let link = add_link(&row);
    let form = owner.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let url = camera.main_url();
    assert!(
        form.body.contains(&format!("value=\"{url}\"")),
        "{}",
        form.body
    );
    assert!(
        form.body.contains("value=\"porch-test-camera\""),
        "{}",
        form.body
    );
    // Announced streams are offered for the main and the sub-stream fields.
    assert!(
        form.body.contains(&format!(
            "<datalist id=\"discovered-streams\"><option value=\"{url}\"></datalist>"
        )),
        "{}",
        form.body
    );
    let r = owner
        .post(
            "/cameras/add",
            &[
                ("csrf", &csrf(&form.body)),
                ("name", "porch-test-camera"),
                ("url", &url),
                ("mode", "continuous"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    let id: CameraId = "porch-test-camera".parse().expect("id");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let streaming = server
            .daemon()
            .registry
            .get(&id)
            .is_some_and(|c| c.status().state == ConnectionState::Streaming);
        let recording = server
            .daemon()
            .index
            .all_recordings()
            .expect("recordings")
            .iter()
            .any(|rec| rec.camera == id);
        if streaming && recording {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the adopted camera is not streaming and recording (streaming {streaming}, recording {recording})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let row = row_for(&mut owner, INSTANCE).await;
    assert!(row.contains("already added as porch-test-camera"), "{row}");

    // A shared user (invited and enrolled through the real flow) is refused.
    let page = owner.get("/users").await;
    let r = owner
        .post(
            "/users/invite",
            &[
                ("csrf", &csrf(&page.body)),
                ("note", "guest"),
                ("password", webutil::PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r
        .body
        .split("id=\"invite-link\"")
        .nth(1)
        .and_then(|s| s.split("value=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .and_then(|l| l.split_once('#'))
        .map(|(_, s)| s.to_owned())
        .expect("the invitation's secret");
    let mut guest = server.client();
    guest.get("/invite").await;
    let r = guest
        .post(
            "/invite",
            &[
                ("invitation", secret.as_str()),
                ("username", GUEST),
                ("password", GUEST_PASSWORD),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/enrol"), "{}", r.body);
    let page = guest.get("/enrol").await;
    let totp = totp_secret(&page.body);
    let r = guest
        .post(
            "/enrol",
            &[("csrf", &csrf(&page.body)), ("code", &server.code(&totp))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refused = guest.get("/cameras/discovered").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.body.contains(INSTANCE));
}

/// The "Add…" link of a discovered row, unescaped.
fn add_link(row: &str) -> String {
    row.split("class=\"add\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an Add link for a camera not yet added")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

const ONVIF_NAME: &str = "Porch ONVIF camera";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_camera_answers_the_probe_and_is_listed_for_the_owner_unless_onvif_is_off() {
    multicast_on_loopback_works();
    let camera = TestCamera::start(CameraOptions {
        onvif: Some(ONVIF_NAME.to_owned()),
        ..Default::default()
    });
    let device_url = format!(
        "http://127.0.0.1:{}/onvif/device_service",
        camera
            .onvif_port()
            .expect("the camera reports its ONVIF port")
    );

    // ONVIF off: no probe, so the camera (answering on lo all along) is never listed,
    // however often the page is opened.
    let off =
        Server::start("[discovery]\nenabled = true\ninterfaces = [\"lo\"]\nonvif = false\n").await;
    let (mut owner, _, _) = off.owner().await;
    let quiet_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < quiet_until {
        let page = owner.get("/cameras/discovered").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(!page.body.contains(ONVIF_NAME), "{}", page.body);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(owner);
    drop(off);

    let server = Server::start("[discovery]\nenabled = true\ninterfaces = [\"lo\"]\n").await;
    let (mut owner, _, _) = server.owner().await;
    let row = row_for(&mut owner, ONVIF_NAME).await;
    assert!(row.contains("data-source=\"ONVIF\""), "{row}");
    assert!(row.contains("data-addresses=\"127.0.0.1\""), "{row}");
    assert!(
        row.contains("porchlight-test-camera"),
        "the hardware scope: {row}"
    );
    assert!(row.contains(&device_url), "the XAddr: {row}");
    assert!(
        row.contains("rtsp://127.0.0.1:554/") && row.contains("class=\"guess\""),
        "the guessed RTSP URL, marked as a guess: {row}"
    );
    let form = owner.get(&add_link(&row)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("value=\"rtsp://127.0.0.1:554/\""),
        "{}",
        form.body
    );
    assert!(
        form.body.contains("value=\"porch-onvif-camera\""),
        "{}",
        form.body
    );
    // A guess is not an announcement: it is not offered among the announced streams.
    assert!(
        !form
            .body
            .contains("discovered-streams\"><option value=\"rtsp://127.0.0.1:554/"),
        "a guess is not offered as an announced stream: {}",
        form.body
    );
}

const HELLO_NAME: &str = "Gate ONVIF camera";

/// Whether `list` holds an ONVIF entry named `instance`, waiting up to `within`.
async fn onvif_listed_within(
    list: &Discovery,
    instance: &str,
    listed: bool,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let now_listed = list
            .list()
            .iter()
            .any(|d| d.source == Source::Onvif && d.instance == instance);
        if now_listed == listed {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Discovery with ONVIF on the one interface `name`, driven in-process (nothing
/// calls `search`, so it probes only at start and every five minutes); it stops
/// when the sender sends `true` or is dropped.
fn onvif_discovery_on(name: &str) -> (Discovery, watch::Sender<bool>) {
    let (stop, stopped) = watch::channel(false);
    let config = DiscoveryConfig {
        enabled: true,
        interfaces: vec![name.to_owned()],
        onvif: true,
    };
    let list = Discovery::start(&config, Arc::new(SystemClock), stopped).expect("discovery starts");
    (list, stop)
}

/// The ONVIF entry named `instance`, waiting up to 10 s for it; panics saying that
/// `what` (the probe, the Hello) did not list it.
async fn onvif_entry(list: &Discovery, instance: &str, what: &str) -> DiscoveredCamera {
    assert!(
        onvif_listed_within(list, instance, true, Duration::from_secs(10)).await,
        "{what} did not list {instance}: {:?}",
        list.list()
    );
    list.list()
        .into_iter()
        .find(|d| d.source == Source::Onvif && d.instance == instance)
        .expect("listed")
}

/// A camera that boots multicasts `Hello` and is listed at once, not at the next
/// probe; its `Bye` on a clean stop takes it off at once, not after
/// `FORGET_AFTER`. The list is driven in-process and nothing calls `search`, so the
/// only probe is the one at start, sent before the camera existed, and the next is
/// five minutes away: only the `Hello` can list it (without the listener this test
/// fails at the first assertion), and only the `Bye` can remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_camera_saying_hello_is_listed_at_once_and_gone_after_its_bye() {
    multicast_on_loopback_works();
    let (list, stop) = onvif_discovery_on("lo");
    tokio::time::sleep(Duration::from_millis(500)).await; // the probe at start is out
    let mut camera = TestCamera::start(CameraOptions {
        onvif: Some(HELLO_NAME.to_owned()),
        onvif_hello: true,
        ..Default::default()
    });
    let entry = onvif_entry(&list, HELLO_NAME, "the camera's Hello").await;
    let port = camera
        .onvif_port()
        .expect("the camera reports its ONVIF port");
    assert_eq!(
        entry.device_url,
        Some(format!("http://127.0.0.1:{port}/onvif/device_service"))
    );
    assert_eq!(entry.model.as_deref(), Some("porchlight-test-camera"));

    camera.stop();
    assert!(
        onvif_listed_within(&list, HELLO_NAME, false, Duration::from_secs(10)).await,
        "the camera's Bye did not remove it: {:?}",
        list.list()
    );
    let _ = stop.send(true);
}

/// Set for the copy of this test binary that runs in a network namespace of its own.
const IN_NETNS: &str = "PORCHLIGHT_DISCOVERY_IN_NETNS";
const V6_PROBED: &str = "Porch IPv6 camera";
const V6_HELLO: &str = "Gate IPv6 camera";

/// ONVIF over IPv6 with real kernel multicast. Loopback has no IPv6 multicast on
/// Linux and the machine's own interfaces are not ours to change, so this runs
/// [`ipv6_onvif_in_own_network_namespace`] in a copy of this binary under
/// `unshare --net` (root in a container can; it fails, not skips, where it cannot),
/// where a veth pair `v0`–`v1` joins the daemon's side to the cameras'.
///
/// Ignored: flaky here (about half the runs), cause not found. In failing runs the
/// daemon's IPv6 probe is sent without error but never reaches the camera's socket
/// (plain Python sockets in the same setup lose the first probe about one run in
/// ten, and a second one 0.5 s later gets through); multicast to another port on
/// the same group reaches `v1` before discovery starts. Run it by hand with
/// `cargo test --test discovery onvif_cameras_over_ipv6 -- --ignored`.
#[test]
#[ignore = "flaky: the IPv6 probe sometimes never reaches the camera in the namespace"]
fn onvif_cameras_over_ipv6_answer_the_probe_and_say_hello_and_bye() {
    in_own_network_namespace("ipv6_onvif_in_own_network_namespace");
}

/// Runs the ignored test `name` of this binary in a network namespace of its own
/// (`unshare --net`; root in a container can), panicking with its output unless it
/// passed.
fn in_own_network_namespace(name: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new("unshare")
        .arg("--net")
        .arg(exe)
        .args(["--exact", name, "--ignored"])
        .env(IN_NETNS, "1")
        .output()
        .expect("running unshare (util-linux)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name} in its own network namespace failed:\n{text}"
    );
}

/// The ONVIF listener shares port 3702 but must not take unicast sent to it (answers
/// to another WS-Discovery client on this machine that probes from 3702): it is
/// bound to the IPv4 group, not to 0.0.0.0. Run in a network namespace of its own,
/// because on a shared machine another program's socket on 3702 could take the
/// datagram.
#[test]
fn onvif_listener_leaves_unicast_to_port_3702_to_other_programs() {
    in_own_network_namespace("unicast_to_port_3702_in_own_network_namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by onvif_listener_leaves_unicast_to_port_3702_to_other_programs"]
async fn unicast_to_port_3702_in_own_network_namespace() {
    assert!(
        std::env::var_os(IN_NETNS).is_some(),
        "run only in its own network namespace, by the test that makes one"
    );
    ip("link set lo up");
    // The other program is there first (bound last, the listener would win anyway).
    let other = bind_port_3702_shared();
    let (_list, stop) = onvif_discovery_on("lo");
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("sender");
    tx.send_to(b"answer", (Ipv4Addr::LOCALHOST, 3702))
        .expect("sending");
    let mut buf = [0u8; 16];
    let got = other.recv_from(&mut buf);
    assert!(
        got.is_ok(),
        "unicast to port 3702 did not reach the other program bound there: {got:?}"
    );
    let _ = stop.send(true);
}

/// `0.0.0.0:3702` with `SO_REUSEADDR`, as another WS-Discovery program binds it.
fn bind_port_3702_shared() -> UdpSocket {
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None).expect("socket");
    sockopt::set_socket_reuseaddr(&fd, true).expect("SO_REUSEADDR");
    rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 3702))
        .expect("binding 3702 next to discovery's listener");
    let other = UdpSocket::from(fd);
    other
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    other
}

/// Waits until a datagram multicast to `ff02::c` from `v0` arrives on `v1`. Just
/// after the pair is set up and a group joined, the first such datagrams are
/// sometimes not delivered (seen with plain Python sockets too, about one run in
/// ten, for a fraction of a second); the test is about discovery, not that.
async fn ipv6_multicast_reaches_v1_from_v0() {
    // From /proc/net/if_inet6 (this namespace's; /sys shows the machine's).
    let table = std::fs::read_to_string("/proc/net/if_inet6").expect("/proc/net/if_inet6");
    let index = |end: &str| -> u32 {
        table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.last() == Some(&end))
            .and_then(|f| u32::from_str_radix(f.get(1)?, 16).ok())
            .unwrap_or_else(|| panic!("no index for {end}: {table}"))
    };
    let group: Ipv6Addr = "ff02::c".parse().expect("group");
    let rx = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).expect("receiver");
    rx.join_multicast_v6(&group, index("v1"))
        .expect("joining on v1");
    rx.set_nonblocking(true).expect("non-blocking");
    let port = rx.local_addr().expect("port").port();
    let tx = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).expect("sender");
    sockopt::set_ipv6_multicast_if(&tx, index("v0")).expect("IPV6_MULTICAST_IF");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 16];
    loop {
        tx.send_to(b"ping", SocketAddrV6::new(group, port, 0, index("v0")))
            .expect("sending");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if rx.recv_from(&mut buf).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "IPv6 multicast from v0 never reached v1"
        );
    }
}

/// Runs `ip ARGS`, panicking with its output on failure.
fn ip(args: &str) {
    let out = std::process::Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("running ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The body of the IPv6 test; only meaningful in its own network namespace.
/// The camera `V6_PROBED` is up before discovery starts and can be listed only by
/// the IPv6 probe at start (`v0` has no IPv4 address); `V6_HELLO` starts after it
/// and can be listed only by its `Hello` on `ff02::c`, and removed only by its `Bye`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by onvif_cameras_over_ipv6_answer_the_probe_and_say_hello_and_bye"]
async fn ipv6_onvif_in_own_network_namespace() {
    assert!(
        std::env::var_os(IN_NETNS).is_some(),
        "run only in its own network namespace, by the test that makes one"
    );
    ip("link set lo up");
    ip("link add v0 type veth peer name v1");
    ip("-6 addr add fd00:77::1/64 dev v0 nodad");
    ip("-6 addr add fd00:77::2/64 dev v1 nodad");
    ip("link set v0 up");
    ip("link set v1 up");
    // Each end gets its link-local address a moment after it is up, and cannot use
    // it while duplicate detection runs (about 1 s): wait for both to be usable.
    let deadline = Instant::now() + Duration::from_secs(10);
    for end in ["v0", "v1"] {
        loop {
            let out = std::process::Command::new("ip")
                .args(["-6", "addr", "show", "dev", end, "scope", "link"])
                .output()
                .expect("running ip");
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("fe80::") && !text.contains("tentative") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{end} has no usable link-local address: {text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let camera_ip: std::net::IpAddr = "fd00:77::2".parse().expect("address");
    let probed = TestCamera::start(CameraOptions {
        onvif: Some(V6_PROBED.to_owned()),
        address: Some(camera_ip),
        ..Default::default()
    });
    ipv6_multicast_reaches_v1_from_v0().await;
    let (list, stop) = onvif_discovery_on("v0");
    let entry = onvif_entry(&list, V6_PROBED, "the IPv6 probe").await;
    let port = probed
        .onvif_port()
        .expect("the camera reports its ONVIF port");
    assert_eq!(entry.addresses, vec![camera_ip]);
    assert_eq!(
        entry.device_url,
        Some(format!("http://[fd00:77::2]:{port}/onvif/device_service"))
    );
    assert_eq!(
        entry.suggested_rtsp_url().map(|u| u.to_string()).as_deref(),
        Some("rtsp://[fd00:77::2]:554/")
    );

    let mut hello = TestCamera::start(CameraOptions {
        onvif: Some(V6_HELLO.to_owned()),
        onvif_hello: true,
        address: Some(camera_ip),
        ..Default::default()
    });
    onvif_entry(&list, V6_HELLO, "the camera's Hello on ff02::c").await;
    hello.stop();
    assert!(
        onvif_listed_within(&list, V6_HELLO, false, Duration::from_secs(10)).await,
        "the camera's Bye on ff02::c did not remove it: {:?}",
        list.list()
    );
    let _ = stop.send(true);
}

const YARD: &str = "Yard ONVIF camera";
const YARD_USER: &str = "onvif-admin";
const YARD_PASSWORD: &str = "correct horse 42";

/// The value of the hidden `onvif` field on the add form.
fn onvif_field(form: &str) -> String {
    form.split("name=\"onvif\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the add form carries the ONVIF entry")
        .to_owned()
}

/// Presses "ask the camera for its stream URLs" on the add form `form`.
async fn ask_onvif(
    owner: &mut webutil::Client,
    form: &str,
    password: &str,
    endpoint: &str,
) -> webutil::Reply {
    owner
        .post(
            "/cameras/add",
            &[
                ("csrf", &csrf(form)),
                ("name", "yard-onvif-camera"),
                ("url", "rtsp://127.0.0.1:554/"),
                ("username", YARD_USER),
                ("password", password),
                ("mode", "continuous"),
                ("onvif", endpoint),
                ("action", "onvif"),
            ],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_camera_gives_its_stream_urls_with_the_owners_credentials_and_is_adopted() {
    // Media served at the device service itself: GetServices and GetCapabilities
    // get a Fault, and the Media calls go to the device URL.
    adopt_onvif_camera(YARD, CameraOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_camera_serving_media_at_another_path_is_asked_there_and_adopted() {
    // As Hikvision, Dahua, Axis…: Media calls at the device service get a Fault;
    // GetServices names the Media address.
    adopt_onvif_camera(
        "Garage ONVIF camera",
        CameraOptions {
            onvif_media_path: Some("/onvif/Media".to_owned()),
            ..Default::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_camera_wanting_credentials_on_get_services_is_asked_again_with_them() {
    // Not ONVIF's rule (GetServices is PRE_AUTH), but some cameras refuse it
    // without the token: the lookup asks again with it.
    adopt_onvif_camera(
        "Gate ONVIF camera",
        CameraOptions {
            onvif_media_path: Some("/onvif/Media".to_owned()),
            onvif_auth_everything: true,
            ..Default::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_camera_before_onvif_2_names_its_media_address_by_get_capabilities() {
    adopt_onvif_camera(
        "Shed ONVIF camera",
        CameraOptions {
            onvif_media_path: Some("/onvif/media_service".to_owned()),
            onvif_old: true,
            ..Default::default()
        },
    )
    .await;
}

/// Starts an ONVIF test camera `name` (with `options`, and the owner's credentials),
/// and on the add form of its discovered row: a wrong password is refused with the
/// camera's status after exactly one failed login at the camera, an undiscovered
/// entry fetches nothing, the right password fills both stream URLs (with no failed
/// login), and the saved camera streams.
async fn adopt_onvif_camera(name: &str, options: CameraOptions) {
    multicast_on_loopback_works();
    let camera = TestCamera::start(CameraOptions {
        onvif: Some(name.to_owned()),
        auth: Some((YARD_USER.to_owned(), YARD_PASSWORD.to_owned())),
        ..options
    });
    let server = Server::start("[discovery]\nenabled = true\ninterfaces = [\"lo\"]\n").await;
    let (mut owner, _, _) = server.owner().await;
    let row = row_for(&mut owner, name).await;
    let form = owner.get(&add_link(&row)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("id=\"onvif-ask\""), "{}", form.body);
    let endpoint = onvif_field(&form.body);
    // A wrong password: the camera refuses the digest, and the form says so.
    let refused = ask_onvif(&mut owner, &form.body, "wrong password", &endpoint).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("HTTP 400"), "{}", refused.body);
    assert!(
        refused.body.contains("wrong user name or password?"),
        "{}",
        refused.body
    );
    // One wrong digest per click, not one per ONVIF call: the pre-auth calls go
    // without the token (or, refused without it, get it once).
    assert_eq!(camera.onvif_failed_digests(), 1, "failed logins at {name}");
    // An entry that was never discovered: nothing is fetched.
    let unknown = ask_onvif(
        &mut owner,
        &form.body,
        YARD_PASSWORD,
        "urn:uuid:not-discovered",
    )
    .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert!(
        unknown.body.contains("no longer in the discovered list"),
        "{}",
        unknown.body
    );

    let given = ask_onvif(&mut owner, &form.body, YARD_PASSWORD, &endpoint).await;
    assert_eq!(given.status, 200, "{}", given.body);
    assert_eq!(camera.onvif_failed_digests(), 1, "failed logins at {name}");
    assert!(
        given.body.contains("gave 2 stream URL(s)"),
        "{}",
        given.body
    );
    let (main, sub) = (camera.main_url(), camera.sub_url());
    assert!(
        given
            .body
            .contains(&format!("name=\"url\" value=\"{main}\"")),
        "{}",
        given.body
    );
    assert!(
        given
            .body
            .contains(&format!("name=\"sub_url\" value=\"{sub}\"")),
        "{}",
        given.body
    );
    assert!(
        !given.body.contains(YARD_PASSWORD),
        "the password is never sent back"
    );

    let r = owner
        .post(
            "/cameras/add",
            &[
                ("csrf", &csrf(&given.body)),
                ("name", "yard-onvif-camera"),
                ("url", &main),
                ("sub_url", &sub),
                ("username", YARD_USER),
                ("password", YARD_PASSWORD),
                ("mode", "continuous"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/"), "{}", r.body);
    let id: CameraId = "yard-onvif-camera".parse().expect("id");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .daemon()
        .registry
        .get(&id)
        .is_some_and(|c| c.status().state == ConnectionState::Streaming)
    {
        assert!(
            Instant::now() < deadline,
            "the adopted ONVIF camera {name} is not streaming"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
