//! Shared helpers for integration tests: the real GStreamer test camera and the real
//! `porchlight` binary on a temporary data directory.
#![allow(dead_code)]

pub mod camera;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A camera entry for a generated config.
pub struct CameraSpec {
    pub name: String,
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub mode: &'static str,
}

impl CameraSpec {
    pub fn continuous(name: &str, url: &str) -> Self {
        CameraSpec {
            name: name.into(),
            url: url.into(),
            username: None,
            password: None,
            mode: "continuous",
        }
    }
}

/// Config text that turns off the keep-10 %-free rule: on a nearly full CI disk it
/// would make retention delete the recordings a test is looking at. Tests of that
/// rule run on a tmpfs of their own and set `[retention]` themselves.
pub const KEEP_NO_DISK_FREE: &str = "[retention]\nmin_free_percent = 0\n";

/// A data directory, key directory and config file in a temp dir.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Setup {
    pub fn new(cameras: &[CameraSpec], extra: &str) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("porchlight.toml");
        // The web UI on a loopback port the OS picks, unless the test configures it.
        let web = if extra.contains("[web]") {
            ""
        } else {
            "[web]\nlisten = \"127.0.0.1:0\"\n"
        };
        let retention = if extra.contains("[retention]") {
            ""
        } else {
            KEEP_NO_DISK_FREE
        };
        let mut text = format!(
            "data_dir = \"{}\"\nkey_dir = \"{}\"\n{extra}\n{retention}{web}",
            dir.path().join("data").display(),
            dir.path().join("keys").display()
        );
        for c in cameras {
            text.push_str(&format!(
                "[[camera]]\nname = \"{}\"\nurl = \"{}\"\nmode = \"{}\"\n",
                c.name, c.url, c.mode
            ));
            if let Some(u) = &c.username {
                text.push_str(&format!("username = \"{u}\"\n"));
            }
            if let Some(p) = &c.password {
                text.push_str(&format!("password = \"{p}\"\n"));
            }
        }
        fs::write(&config, text).expect("write config");
        Setup { dir, config }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn key_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// Runs a porchlight subcommand with this config and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_porchlight"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run porchlight")
    }

    /// Like `cli` with extra environment variables and, if given, `stdin` as its
    /// standard input (secrets a command must not take as arguments).
    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_porchlight"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run porchlight");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("piped stdin");
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).expect("write stdin");
            }
        }
        child.wait_with_output().expect("porchlight output")
    }

    /// Like `cli` but panics with the output unless it succeeded; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "porchlight {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `recordings --json`, parsed.
    pub fn recordings(&self) -> Vec<serde_json::Value> {
        let text = self.cli_ok(&["recordings", "--json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .expect("recordings --json prints a JSON array")
    }

    /// The ids of the finished recordings, from [`Setup::recordings`], in its order.
    pub fn finished_ids(&self) -> Vec<String> {
        self.recordings()
            .iter()
            .filter(|r| r["state"] == "finished")
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Appends TOML (a `[[camera]]` table, say) to the config file.
    pub fn append_config(&self, toml: &str) {
        use std::io::Write;
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .expect("open config");
        file.write_all(toml.as_bytes()).expect("append to config");
    }

    /// `porchlight export` of one recording to `<temp dir>/<id>.mp4`; returns the path.
    pub fn export(&self, id: &str) -> PathBuf {
        let out = self.dir.path().join(format!("{id}.mp4"));
        self.cli_ok(&[
            "export",
            "--recording",
            id,
            "--out",
            out.to_str().expect("utf-8 temp path"),
        ]);
        out
    }

    /// All recording files under the data dir.
    pub fn recording_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        walk(&self.data_dir().join("recordings"), &mut files);
        files.retain(|p| p.extension().is_some_and(|e| e == "plr"));
        files.sort();
        files
    }

    pub fn start_daemon(&self) -> Daemon {
        Daemon::start(
            &self.config,
            &self.dir.path().join(format!("daemon-{}.log", unique())),
        )
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The running `porchlight serve` process; its stderr goes to a log file.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    fn start(config: &Path, log: &Path) -> Daemon {
        let log_file = fs::File::create(log).expect("create log");
        let child = Command::new(env!("CARGO_BIN_EXE_porchlight"))
            .args(["serve", "--config"])
            .arg(config)
            .env("PORCHLIGHT_LOG", "info,porchlight=debug")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn porchlight serve");
        Daemon {
            child: Some(child),
            log: log.to_owned(),
        }
    }

    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Waits until the log has `count` lines containing `needle`; panics with the log
    /// after `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.log_text();
            if text.lines().filter(|l| l.contains(needle)).count() >= count {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("daemon exited ({status}) while waiting for {needle:?}; log:\n{text}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {count} × {needle:?}; log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, then waits; panics unless it exits successfully within 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "daemon exited with {status}; log:\n{}",
                    self.log_text()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "daemon did not stop within 10 s of SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The HTTPS base URL (`https://127.0.0.1:PORT`) the daemon logged, once it did.
    pub fn web_base(&mut self) -> String {
        self.wait_for_log("web UI listening on https://", 1, Duration::from_secs(30));
        let log = self.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("web UI listening on https://"))
            .expect("listening line");
        let url = &line[line.find("https://").expect("url")..];
        url[..url.find("/ ").expect("end of url")].to_owned()
    }

    /// (open file descriptors, threads) of the daemon: a leak per reconnect shows here.
    pub fn fds_and_threads(&self) -> (usize, usize) {
        let count = |path: String| {
            fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .count()
        };
        let pid = self.pid();
        (
            count(format!("/proc/{pid}/fd")),
            count(format!("/proc/{pid}/task")),
        )
    }

    /// SIGKILL: a crash or power cut as far as the process can tell.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// ffprobe's count of decodable video frames and the stream's size/codec.
pub struct Probe {
    pub codec: String,
    pub width: u64,
    pub height: u64,
    pub frames: u64,
}

pub fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed (make test installs it)");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let s = &v["streams"][0];
    Probe {
        codec: s["codec_name"].as_str().unwrap_or_default().to_owned(),
        width: s["width"].as_u64().unwrap_or(0),
        height: s["height"].as_u64().unwrap_or(0),
        frames: s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

/// Decodes the whole file; returns what ffmpeg printed at level `error` (empty = clean).
pub fn ffmpeg_decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text.push_str(&format!("\n(ffmpeg exit {})", out.status));
    }
    text
}

/// A tmpfs mounted for one test; unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs a small filesystem and root to mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Waits (up to 30 s) until `camera` of the in-process daemon `running` streams;
/// panics with its status if it does not.
pub async fn wait_streaming(
    running: &porchlight::daemon::Running,
    camera: &porchlight::model::CameraId,
) {
    let handle = running.registry.get(camera).expect("camera registered");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while handle.status().state != porchlight::camera::ConnectionState::Streaming {
        assert!(
            std::time::Instant::now() < deadline,
            "camera never streamed: {:?}",
            handle.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
