//! What the .deb relies on, checked without building it: the systemd unit's sandbox
//! (rated by `systemd-analyze security --offline=yes`), the daemon's side of
//! `Type=notify` with a watchdog, and the default configuration file.
//!
//! The package itself (install, upgrade, purge in a Debian root) is tested by
//! `make test-package` (packaging/test-package.sh), which is too slow for every run.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use porchlight::config::Config;

/// The most `systemd-analyze security` may rate the unit (its scale: 0 safe to 10).
const MAX_EXPOSURE: f64 = 2.0;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The figure from "→ Overall exposure level for porchlight.service: 1.1 OK 🙂".
fn overall_exposure(output: &str) -> Option<f64> {
    let line = output
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    let (_, after) = line.split_once("porchlight.service:")?;
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn exposure_figure_is_parsed_from_systemd_analyze_output() {
    let sample = "✓ UMask= Files created by service are accessible only by ...\n\n\
                  → Overall exposure level for porchlight.service: 1.1 OK 🙂\n";
    assert_eq!(overall_exposure(sample), Some(1.1));
    assert_eq!(overall_exposure("no such line"), None);
}

#[test]
fn unit_sandbox_exposure_is_at_most_2() {
    let unit = repo_file("systemd/porchlight.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): it comes with Debian's systemd package, \
                 which `make deps` installs"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(exposure) = overall_exposure(&stdout) else {
        panic!(
            "systemd-analyze security --offline=yes printed no overall exposure level \
             ({}); it needs systemd 250 or later.\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
    };
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}; what it counts against the unit:\n{}",
        stdout
            .lines()
            .filter(|l| l.starts_with('✗'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("systemd-analyze security --offline=yes: overall exposure {exposure}");
}

/// `Key=value` lines of the unit (later assignments last).
fn unit_settings() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_file("systemd/porchlight.service")).expect("unit");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn unit_runs_the_packaged_binary_as_notify_service_with_watchdog_and_own_user() {
    let settings = unit_settings();
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let one = |key: &str| -> &str {
        let values = get(key);
        assert_eq!(values.len(), 1, "{key}= should be set once: {values:?}");
        values[0]
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("NotifyAccess"), "main");
    assert_eq!(
        one("ExecStart"),
        "/usr/bin/porchlight serve --config /etc/porchlight/porchlight.toml"
    );
    // `systemctl reload` reloads the HTTPS certificate (tests/web_certificate.rs).
    assert_eq!(one("ExecReload"), r#"/bin/sh -c 'kill -HUP "$MAINPID"'"#);
    assert!(one("WatchdogSec").ends_with('s'), "WatchdogSec in seconds");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("User"), "porchlight");
    assert_eq!(one("StateDirectory"), "porchlight");
    assert_eq!(one("StateDirectoryMode"), "0700");
    assert_eq!(one("ConfigurationDirectory"), "porchlight");
    assert_eq!(one("CapabilityBoundingSet"), "");
    assert_eq!(
        one("RestrictAddressFamilies"),
        "AF_INET AF_INET6 AF_UNIX AF_NETLINK"
    );
    assert_eq!(get("SystemCallFilter")[0], "@system-service");
    for key in [
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "LockPersonality",
        "MemoryDenyWriteExecute",
    ] {
        assert_eq!(one(key), "yes", "{key}");
    }
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("MemorySwapMax"), "0", "keys in memory never reach swap");
}

#[test]
fn default_config_is_valid_with_no_cameras() {
    let path = repo_file("packaging/porchlight.toml");
    let config = Config::load(&path).expect("the packaged config is valid");
    assert_eq!(config.data_dir, Path::new("/var/lib/porchlight"));
    assert_eq!(config.key_dir, Path::new("/var/lib/porchlight/keys"));
    assert!(config.cameras.is_empty());
}

#[test]
fn commented_examples_in_default_config_are_valid_when_uncommented() {
    let path = repo_file("packaging/porchlight.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    // "# key = value" and "# [section]" lines; prose starts with a capital or spaces.
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with('[')
                    || rest.split_once(" = ").is_some_and(|(k, _)| {
                        k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
            {
                rest.to_owned()
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = Config::parse(&path, &uncommented)
        .unwrap_or_else(|e| panic!("{e}\nuncommented text:\n{uncommented}"));
    assert_eq!(config.cameras.len(), 1, "the example camera");
    assert_eq!(config.cameras[0].id.to_string(), "front-door");
    assert_eq!(config.recording.sync_interval, Duration::from_secs(2));
    assert_eq!(config.retention.max_bytes, Some(50_000_000_000));
}

/// `porchlight serve` with a fake `NOTIFY_SOCKET`; returns the child and the socket.
fn serve_under_fake_systemd(
    setup: &common::Setup,
    watchdog_usec: &str,
    watchdog_pid: Option<&str>,
) -> (std::process::Child, UnixDatagram, PathBuf) {
    let socket_path = setup.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let log = setup.dir.path().join("serve.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_porchlight"));
    cmd.args(["serve", "--config"])
        .arg(&setup.config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", watchdog_usec)
        .env("PORCHLIGHT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    match watchdog_pid {
        Some(pid) => cmd.env("WATCHDOG_PID", pid),
        None => cmd.env_remove("WATCHDOG_PID"),
    };
    let child = cmd.spawn().expect("spawn porchlight serve");
    (child, socket, log)
}

/// Datagrams received until `until` returns true for one (included) or `timeout`.
fn receive(socket: &UnixDatagram, timeout: Duration, until: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(len) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..len]).into_owned();
            let done = until(&msg);
            got.push(msg);
            if done {
                break;
            }
        }
    }
    got
}

fn sigterm_and_wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemon_signals_ready_pings_the_watchdog_and_signals_stopping() {
    let camera = common::camera::TestCamera::start(Default::default());
    let setup = common::Setup::new(
        &[common::CameraSpec::continuous("porch", &camera.main_url())],
        "",
    );
    // 600 ms watchdog: a ping every 300 ms.
    let (mut child, socket, log) = serve_under_fake_systemd(&setup, "600000", None);
    let started = Instant::now();

    let first = receive(&socket, Duration::from_secs(30), |m| m.contains("READY=1"));
    let ready = first.last().cloned().unwrap_or_default();
    assert!(
        ready.starts_with("READY=1\nSTATUS=serving 1 camera"),
        "no READY=1 within 30 s; got {first:?}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // READY comes after start-up (recovery done, cameras started): the log says so.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("serving"),
        "READY=1 before the daemon logged that it serves:\n{text}"
    );

    let window = Duration::from_secs(3);
    let pings = receive(&socket, window, |_| false);
    let count = pings.iter().filter(|m| *m == "WATCHDOG=1").count();
    // Every 300 ms over 3 s is 10; allow for a busy machine but not for silence.
    assert!(
        count >= 3,
        "{count} watchdog pings in {window:?} (expected about 10): {pings:?}"
    );

    let status = sigterm_and_wait(&mut child);
    let after = receive(&socket, Duration::from_secs(2), |m| {
        m.starts_with("STOPPING=1")
    });
    assert!(
        after.iter().any(|m| m.starts_with("STOPPING=1")),
        "no STOPPING=1 after SIGTERM: {after:?}"
    );
    assert!(status.success(), "serve exited with {status}");
    eprintln!(
        "READY after {:?}, {count} pings in {window:?}",
        started.elapsed()
    );
}

#[test]
fn watchdog_meant_for_another_process_is_not_pinged() {
    let setup = common::Setup::new(&[], "");
    // WATCHDOG_PID names another process (pid 1): this one must not ping.
    let (mut child, socket, log) = serve_under_fake_systemd(&setup, "200000", Some("1"));
    let first = receive(&socket, Duration::from_secs(30), |m| m.contains("READY=1"));
    assert!(
        first.iter().any(|m| m.starts_with("READY=1")),
        "no READY=1: {first:?}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let pings = receive(&socket, Duration::from_secs(1), |_| false);
    assert!(
        !pings.iter().any(|m| m == "WATCHDOG=1"),
        "pinged a watchdog meant for pid 1: {pings:?}"
    );
    assert!(sigterm_and_wait(&mut child).success());
}

#[test]
fn unit_does_not_restart_after_a_configuration_error() {
    let settings = unit_settings();
    let prevent: Vec<&str> = settings
        .iter()
        .filter(|(k, _)| k == "RestartPreventExitStatus")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(prevent, ["78"], "EX_CONFIG ends the restarts");
}

/// Runs `porchlight ARGS --config CONFIG` with stderr to a file; returns the exit
/// status and what it wrote there. `journal` sets `JOURNAL_STREAM` to that file's
/// device and inode, as systemd does for a unit whose stderr is the journal.
fn run_with_stderr(
    dir: &Path,
    args: &[&str],
    config: &Path,
    journal: bool,
) -> (std::process::ExitStatus, String) {
    use std::os::unix::fs::MetadataExt;
    let err_path = dir.join(format!("stderr-{}.log", args.join("-")));
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let meta = err.metadata().expect("stat stderr file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_porchlight"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(err);
    if journal {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    let status = cmd.status().expect("run porchlight");
    (
        status,
        std::fs::read_to_string(&err_path).expect("read stderr"),
    )
}

#[test]
fn configuration_error_exits_78_and_is_an_error_in_the_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("porchlight.toml");
    std::fs::write(&config, "data_dir = 12\n").expect("write config");
    let (status, text) = run_with_stderr(dir.path(), &["serve"], &config, false);
    assert_eq!(status.code(), Some(78), "EX_CONFIG; stderr: {text}");
    assert!(
        text.starts_with("porchlight: "),
        "no prefix off the journal: {text}"
    );

    let (status, text) = run_with_stderr(dir.path(), &["serve"], &config, true);
    assert_eq!(status.code(), Some(78), "EX_CONFIG; stderr: {text}");
    let fatal = text
        .lines()
        .find(|l| l.contains("porchlight: "))
        .unwrap_or_else(|| panic!("no fatal line: {text}"));
    assert!(
        fatal.starts_with("<3>"),
        "priority err in the journal: {fatal}"
    );
}

#[test]
fn check_config_only_works_while_the_index_is_held() {
    let setup = common::Setup::new(&[], "");
    // What a running daemon has: a master key, and the index held open (sled
    // allows one process), so a full `check` fails there.
    porchlight::store::Store::open_or_create(&setup.data_dir(), &setup.key_dir())
        .expect("create the store");
    let _index =
        porchlight::index::Index::open(&porchlight::store::Store::index_dir(&setup.data_dir()))
            .expect("open the index");
    let args = ["check", "--config-only"];
    let (status, text) = run_with_stderr(setup.dir.path(), &args, &setup.config, false);
    assert!(status.success(), "a good file passes: {status}; {text}");

    let bad = setup.dir.path().join("bad.toml");
    let data = setup.data_dir();
    let text = format!(
        "data_dir = \"{}\"\n[retention]\nmin_free_percent = 99\n",
        data.display()
    );
    std::fs::write(&bad, text).expect("write");
    let (status, text) = run_with_stderr(setup.dir.path(), &args, &bad, false);
    assert!(!status.success(), "a bad file fails: {text}");
    let located = format!("{}:3: key `retention.min_free_percent`", bad.display());
    assert!(text.contains(&located), "names {located}: {text}");
}
