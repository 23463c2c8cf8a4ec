//! The real test camera, for integration tests.
//!
//! [`TestCamera::start`] runs `tests/camera/rtsp_camera.py` (a GStreamer RTSP
//! server, see `tests/camera/README.md`) under Debian's `/usr/bin/python3` on
//! a loopback port, waits for its "ready" line and for an RTSP answer, and
//! hands back the URLs. Dropping it kills the camera's process group.
//!
//! Invariants: at most one camera process per `TestCamera`; every process
//! started is waited for (by `stop`, `restart` or `Drop`), and a process group
//! is only signalled while its leader is known not to have been reaped, so a
//! reused pid is never hit. If the test process dies without unwinding, the
//! camera notices its parent is gone (`--exit-with-parent`) and exits.
#![allow(dead_code)] // each test binary uses a different part of this helper

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Debian's interpreter: the only one here with GStreamer's `gi` bindings.
const PYTHON: &str = "/usr/bin/python3";
/// How long the camera may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the camera shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    /// Colour bars (SMPTE 75%), never changing: no motion at all.
    Still,
    /// Grey with a white square: still for `still_secs`, then moving for
    /// `moving_secs`, repeating from start-up (which begins a still period).
    Alternating,
}

/// How to run the camera. `Default`: still scene, 10 fps, GOP 10 frames (one
/// IDR a second), no auth, 10 s still / 5 s moving, 1280x720 main.
#[derive(Clone, Debug)]
pub struct CameraOptions {
    pub scene: Scene,
    pub fps: u32,
    /// Frames from one IDR to the next.
    pub gop: u32,
    /// `(user, password)` for RTSP digest auth on both mounts; `None` = open.
    pub auth: Option<(String, String)>,
    pub still_secs: u32,
    pub moving_secs: u32,
    /// 1920x1080 High-profile main at about 4.5 Mbit/s, for benchmarks.
    pub realistic: bool,
    /// One encoder shared by every RTSP session (`--shared`), for benchmarks that
    /// open many sessions to one camera.
    pub shared: bool,
    /// Announce `/main` over mDNS on loopback under this instance name (`--mdns`).
    pub mdns: Option<String>,
    /// Answer ONVIF WS-Discovery probes on loopback under this name (`--onvif`).
    pub onvif: Option<String>,
    /// Where it listens (`--address`); `None` = 127.0.0.1. An IPv6 address must be
    /// on an interface with multicast (loopback has none for IPv6).
    pub address: Option<IpAddr>,
    /// With `onvif`: multicast a WS-Discovery `Hello` once ready and a `Bye` on
    /// SIGTERM (`--onvif-hello`).
    pub onvif_hello: bool,
    /// With `onvif`: serve the Media calls only at this path, and name it in the
    /// answer to `GetServices` (`--onvif-media-path`), as many real cameras do.
    pub onvif_media_path: Option<String>,
    /// With `onvif`: a camera before ONVIF 2.0, which faults `GetServices` and
    /// answers `GetCapabilities` (`--onvif-old`).
    pub onvif_old: bool,
    /// With `onvif`: `GetServices` and `GetCapabilities` also need the UsernameToken
    /// (`--onvif-auth-everything`), unlike ONVIF's rule (they are `PRE_AUTH`).
    pub onvif_auth_everything: bool,
}

impl Default for CameraOptions {
    fn default() -> Self {
        CameraOptions {
            scene: Scene::Still,
            fps: 10,
            gop: 10,
            auth: None,
            still_secs: 10,
            moving_secs: 5,
            realistic: false,
            shared: false,
            mdns: None,
            onvif: None,
            address: None,
            onvif_hello: false,
            onvif_media_path: None,
            onvif_old: false,
            onvif_auth_everything: false,
        }
    }
}

/// A running test camera serving `/main` and `/sub` on 127.0.0.1 (or `address`).
pub struct TestCamera {
    opts: CameraOptions,
    child: Option<Child>,
    port: u16,
    /// With `onvif`: the port of its ONVIF device service (HTTP).
    onvif_port: Option<u16>,
    started_unix: f64,
    /// Holds `status.json` (frame counts) and `stderr.log` (all runs).
    dir: tempfile::TempDir,
}

impl TestCamera {
    /// Starts the camera and returns once it answers RTSP.
    ///
    /// The camera binds port 0 itself and reports the port it got, so there
    /// is no window in which another process could take a port picked here.
    /// Panics, with the camera's stderr, if it dies or is not ready in 20 s.
    pub fn start(opts: CameraOptions) -> TestCamera {
        let dir = tempfile::Builder::new()
            .prefix("porchlight-camera-")
            .tempdir()
            .expect("creating a temp dir for the test camera");
        let mut cam = TestCamera {
            opts,
            child: None,
            port: 0,
            onvif_port: None,
            started_unix: 0.0,
            dir,
        };
        cam.spawn(0);
        cam
    }

    /// `rtsp://127.0.0.1:PORT/main`, without credentials.
    pub fn main_url(&self) -> String {
        self.url("main")
    }

    /// `rtsp://127.0.0.1:PORT/sub`, without credentials.
    pub fn sub_url(&self) -> String {
        self.url("sub")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// With `onvif`: the port its XAddr (`http://127.0.0.1:PORT/onvif/device_service`)
    /// names.
    pub fn onvif_port(&self) -> Option<u16> {
        self.onvif_port
    }

    /// Wall time (Unix seconds) at which the current run's schedule began.
    pub fn started_unix(&self) -> f64 {
        self.started_unix
    }

    /// Whether the alternating scene's square is scheduled to move at
    /// `unix_secs`. The stream shows it up to about half a second later
    /// (encoder, network, decoder), so allow a margin. Always false for Still.
    pub fn is_moving_at(&self, unix_secs: f64) -> bool {
        if self.opts.scene != Scene::Alternating {
            return false;
        }
        let period = f64::from(self.opts.still_secs + self.opts.moving_secs);
        (unix_secs - self.started_unix).rem_euclid(period) >= f64::from(self.opts.still_secs)
    }

    /// Frames handed to the RTP payloader for `mount` ("main" or "sub"),
    /// summed over every RTSP session since this run began. The camera
    /// rewrites the file every 0.5 s, so the count can lag by that much.
    pub fn frames_sent(&self, mount: &str) -> u64 {
        self.status_field(mount, "frames_sent")
    }

    /// RTSP sessions currently open on `mount` (as of the last 0.5 s tick).
    pub fn clients(&self, mount: &str) -> u64 {
        self.status_field(mount, "clients")
    }

    /// With `onvif`: ONVIF calls whose UsernameToken was present but wrong (the
    /// camera's failed logins) since this run began. The camera rewrites the status
    /// file before it answers such a call, so the count is current once the call
    /// has been answered.
    pub fn onvif_failed_digests(&self) -> u64 {
        self.status_field("onvif", "failed_digests")
    }

    /// SIGTERM to the camera's process group, then waits; SIGKILL after 5 s.
    /// Does nothing if already stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(status) = child.try_wait().expect("polling the test camera") {
            self.report_early_exit(status);
            return;
        }
        signal_group(&mut child, "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if child.try_wait().expect("polling the test camera").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("test camera ignored SIGTERM for {STOP_TIMEOUT:?}; killing it");
        signal_group(&mut child, "KILL");
        child.wait().expect("waiting for the killed test camera");
    }

    /// Stops the camera and starts it again on the same port with the same
    /// options; the movement schedule restarts too (see `started_unix`).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.spawn(port);
    }

    fn url(&self, mount: &str) -> String {
        format!("rtsp://{}/{mount}", self.socket_address())
    }

    fn socket_address(&self) -> SocketAddr {
        let ip = self.opts.address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        SocketAddr::new(ip, self.port)
    }

    fn status_path(&self) -> PathBuf {
        self.dir.path().join("status.json")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    fn status_field(&self, mount: &str, field: &str) -> u64 {
        let path = self.status_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading camera status {}: {e}", path.display()));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("camera status {} is not JSON ({e}): {text}", path.display())
        });
        doc[mount][field]
            .as_u64()
            .unwrap_or_else(|| panic!("camera status has no {mount}.{field}: {text}"))
    }

    fn args(&self, port: u16) -> Vec<String> {
        let o = &self.opts;
        let scene = match o.scene {
            Scene::Still => "still",
            Scene::Alternating => "alternating",
        };
        let mut args = vec![
            script_path().display().to_string(),
            format!("--port={port}"),
            format!("--scene={scene}"),
            format!("--fps={}", o.fps),
            format!("--gop={}", o.gop),
            format!("--still-secs={}", o.still_secs),
            format!("--moving-secs={}", o.moving_secs),
            format!("--status={}", self.status_path().display()),
            "--exit-with-parent".to_owned(),
        ];
        if o.realistic {
            args.push("--realistic".to_owned());
        }
        if o.shared {
            args.push("--shared".to_owned());
        }
        if let Some(name) = &o.mdns {
            args.push(format!("--mdns={name}"));
        }
        if let Some(name) = &o.onvif {
            args.push(format!("--onvif={name}"));
        }
        if let Some(address) = o.address {
            args.push(format!("--address={address}"));
        }
        if o.onvif_hello {
            args.push("--onvif-hello".to_owned());
        }
        if let Some(path) = &o.onvif_media_path {
            args.push(format!("--onvif-media-path={path}"));
        }
        if o.onvif_old {
            args.push("--onvif-old".to_owned());
        }
        if o.onvif_auth_everything {
            args.push("--onvif-auth-everything".to_owned());
        }
        if let Some((user, password)) = &o.auth {
            args.push(format!("--user={user}"));
            args.push(format!("--password={password}"));
        }
        args
    }

    /// Runs the camera on `port` (0 = its choice), waits until it is ready.
    fn spawn(&mut self, port: u16) {
        assert!(self.child.is_none(), "spawn while a camera is running");
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("opening the camera's stderr log");
        let mut child = Command::new(PYTHON)
            .args(self.args(port))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0) // so signals reach it (and only it) as a group
            .spawn()
            .unwrap_or_else(|e| panic!("running {PYTHON} for the test camera: {e}"));

        // A thread reads stdout so we can time out, and keeps draining it so
        // the camera never blocks on a full pipe.
        let stdout = child.stdout.take().expect("stdout was piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line); // the receiver may be gone; keep draining
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        let ready = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    if v["event"] == "ready" {
                        break v;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    signal_group(&mut child, "KILL");
                    let _ = child.wait();
                    panic!(
                        "test camera not ready within {READY_TIMEOUT:?}; stderr:\n{}",
                        read_log(&self.stderr_path())
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("waiting for the dead test camera");
                    panic!(
                        "test camera exited before it was ready ({status}); stderr:\n{}",
                        read_log(&self.stderr_path())
                    );
                }
            }
        };
        self.port = ready["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("ready line without a port: {ready}"));
        self.onvif_port = ready["onvif_port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok());
        self.started_unix = ready["started_unix"]
            .as_f64()
            .unwrap_or_else(|| panic!("ready line without started_unix: {ready}"));
        self.child = Some(child);
        self.check_rtsp_answers();
    }

    /// Sends `OPTIONS` to `/main` and expects 200 (or 401 with auth on).
    fn check_rtsp_answers(&self) {
        let addr = self.socket_address();
        let url = self.main_url();
        let answer = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n")?;
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        })()
        .unwrap_or_else(|e| panic!("test camera on {addr} does not answer RTSP: {e}"));
        let ok = answer.starts_with("RTSP/1.0 200")
            || (self.opts.auth.is_some() && answer.starts_with("RTSP/1.0 401"));
        assert!(ok, "test camera answered OPTIONS {url} with:\n{answer}");
    }

    fn report_early_exit(&self, status: ExitStatus) {
        eprintln!(
            "test camera had already exited ({status}); stderr:\n{}",
            read_log(&self.stderr_path())
        );
    }
}

impl Drop for TestCamera {
    /// Kills the camera's process group at once and reaps the process.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                signal_group(&mut child, "KILL");
            }
            let _ = child.wait();
        }
    }
}

/// Sends SIG`sig` to the process group led by `child` (its pid, as it was
/// spawned with `process_group(0)`). Call only while `child` is unreaped.
/// Falls back to `Child::kill` if the `kill` command cannot run.
fn signal_group(child: &mut Child, sig: &str) {
    let group = format!("-{}", child.id());
    let sent = Command::new("kill")
        .args([&format!("-{sig}"), "--", &group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !sent {
        let _ = child.kill();
    }
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/camera/rtsp_camera.py")
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// Now, as Unix seconds, to compare with [`TestCamera::started_unix`].
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}
