//! The TOML configuration file → a validated [`Config`].
//!
//! The key names are part of the product's interface (installers write them), so they
//! are spelled out with `serde(rename)` where Rust names differ. Every error names the
//! file, the line and the key, and is produced before anything touches the data
//! directory: a typo must never cost a recording.
//!
//! The sections with rules of their own live beside this file: `[recording]` and
//! `[retention]` in `config/storage.rs`, `[web]`, `[smtp]` and `[notify]` in
//! `config/web.rs`, `[web] trusted_proxies` in `config/proxies.rs`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::model::CameraId;
use crate::motion::{MotionSettings, Zone};

mod proxies;
mod storage;
mod web;
pub use proxies::{IpNetwork, TrustedProxies};
pub use storage::{RecordingConfig, RetentionConfig, MIN_MAX_BYTES};
pub use web::{NotifyConfig, SmtpConfig, SmtpSecurity, TlsFiles, WebConfig};

pub const DEFAULT_PATH: &str = "/etc/porchlight/porchlight.toml";

/// The values retina's `InitialSequenceNumberPolicy` accepts.
const RTP_INITIAL_SEQ: [&str; 4] = ["default", "respect", "ignore-suspicious-values", "ignore"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax or type error, or a failed validation, located in the file.
    #[error("{path}:{line}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

/// When a camera is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// Live view only: nothing is ever written for this camera.
    Off,
    /// Record around events (motion, doorbell, live view). The default.
    Events,
    /// Record all the time.
    Continuous,
}

/// One camera as configured. `Debug` leaves the credentials out.
#[derive(Clone)]
pub struct CameraConfig {
    pub id: CameraId,
    /// Main stream, recorded. Never contains credentials.
    pub url: url::Url,
    /// Optional lower-resolution stream analysed for motion.
    pub sub_url: Option<url::Url>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub mode: RecordingMode,
    /// How long a connected camera may send nothing before it is treated as gone.
    pub stall_timeout: Duration,
    /// How to treat the RTP sequence number the camera announces at PLAY (`default`,
    /// `respect`, `ignore-suspicious-values`, `ignore`): a quirk switch for cameras
    /// that announce one value and then send another.
    pub rtp_initial_seq: String,
    /// Video kept from before a trigger (events mode).
    pub pre_roll: Duration,
    /// Recording continues this long after the last trigger.
    pub post_roll: Duration,
    /// Recordings older than this are deleted.
    pub storage_days: u32,
    /// Motion detection settings; `None` when motion detection is off.
    pub motion: Option<MotionSettings>,
}

impl std::fmt::Debug for CameraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("CameraConfig")
            .field("id", &self.id)
            .field("url", &self.url.as_str())
            .field("sub_url", &self.sub_url.as_ref().map(url::Url::as_str))
            .field("username", &redacted(&self.username))
            .field("password", &redacted(&self.password))
            .field("mode", &self.mode)
            .field("stall_timeout", &self.stall_timeout)
            .field("rtp_initial_seq", &self.rtp_initial_seq)
            .field("pre_roll", &self.pre_roll)
            .field("post_roll", &self.post_roll)
            .field("storage_days", &self.storage_days)
            .field("motion", &self.motion)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    pub data_dir: PathBuf,
    pub key_dir: PathBuf,
    pub recording: RecordingConfig,
    pub retention: RetentionConfig,
    pub cameras: Vec<CameraConfig>,
    /// `[web]`: the UI's listeners, certificate and session lifetimes.
    pub web: WebConfig,
    /// `[smtp]`: how security alerts are mailed, if at all.
    pub smtp: Option<SmtpConfig>,
    /// `[notify]`: an outgoing webhook for event notifications, if any.
    pub notify: Option<NotifyConfig>,
    /// `[discovery]`: whether to look for cameras announced over mDNS and ONVIF.
    pub discovery: DiscoveryConfig,
}

/// `[discovery]`: listening for cameras that announce themselves on the LAN over mDNS
/// or ONVIF WS-Discovery (see `crate::discovery`). Off unless `enabled = true` (the
/// packaged config turns it on): it sends multicast queries onto the LAN, so it is the
/// owner's choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryConfig {
    pub enabled: bool,
    /// Network interfaces to browse on, by name (`["eth0"]`, `["lo"]` in tests);
    /// empty = every interface (ONVIF: every non-loopback one).
    pub interfaces: Vec<String>,
    /// Also probe for ONVIF cameras (WS-Discovery). Default true: most IP cameras
    /// announce themselves only this way. Nothing is sent while `enabled` is false.
    pub onvif: bool,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: false,
            interfaces: Vec::new(),
            onvif: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<Spanned<PathBuf>>,
    key_dir: Option<Spanned<PathBuf>>,
    #[serde(default)]
    recording: Option<Spanned<storage::RawRecording>>,
    #[serde(default)]
    retention: Option<storage::RawRetention>,
    #[serde(default, rename = "camera")]
    cameras: Vec<Spanned<RawCamera>>,
    #[serde(default)]
    web: Option<web::RawWeb>,
    #[serde(default)]
    smtp: Option<web::RawSmtp>,
    #[serde(default)]
    notify: Option<web::RawNotify>,
    #[serde(default)]
    discovery: Option<RawDiscovery>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    enabled: Option<bool>,
    interfaces: Option<Spanned<Vec<String>>>,
    onvif: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    name: Spanned<String>,
    url: Spanned<String>,
    sub_url: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    mode: Option<RecordingMode>,
    stall_timeout_seconds: Option<Spanned<u64>>,
    rtp_initial_seq: Option<Spanned<String>>,
    pre_roll_seconds: Option<Spanned<u64>>,
    post_roll_seconds: Option<Spanned<u64>>,
    storage_days: Option<Spanned<u32>>,
    motion: Option<bool>,
    motion_sensitivity: Option<Spanned<u8>>,
    motion_fps: Option<Spanned<f32>>,
    motion_ignore_zones: Option<Spanned<Vec<Vec<[f32; 2]>>>>,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Validates configuration text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let located = |span: Range<usize>, key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line: line_of(text, span.start),
            key: key.to_owned(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let key = key_at(text, span.start);
            // serde's type errors quote the value ("invalid type: integer `1234`"),
            // and this message reaches stderr and the journal: never for a secret.
            let message = if is_secret_key(&key) {
                "must be a string (value not shown)".to_owned()
            } else {
                e.message().to_owned()
            };
            located(span.clone(), &key, message)
        })?;

        let data_dir = raw
            .data_dir
            .map(|d| absolute(d, "data_dir", &located))
            .transpose()?
            .unwrap_or_else(|| PathBuf::from("/var/lib/porchlight"));
        let key_dir = raw
            .key_dir
            .map(|d| absolute(d, "key_dir", &located))
            .transpose()?
            .unwrap_or_else(|| data_dir.join("keys"));

        let recording = storage::parse_recording(raw.recording, &located)?;

        let web = web::parse_web(raw.web, &located)?;
        let smtp = web::parse_smtp(raw.smtp, &located)?;
        let notify = web::parse_notify(raw.notify, &located)?;

        let retention = storage::parse_retention(raw.retention, &located)?;

        let mut cameras: Vec<CameraConfig> = Vec::new();
        for cam in raw.cameras {
            let cam = cam.into_inner();
            let motion = motion_settings(&cam, &located)?;
            let name_span = cam.name.span();
            let id: CameraId =
                cam.name
                    .get_ref()
                    .parse()
                    .map_err(|e: crate::model::BadCameraName| {
                        located(name_span.clone(), "camera.name", e.to_string())
                    })?;
            if cameras.iter().any(|c| c.id == id) {
                return Err(located(
                    name_span,
                    "camera.name",
                    format!("camera {id} is configured twice"),
                ));
            }
            let url = rtsp_url(&cam.url, "camera.url", &located)?;
            let sub_url = cam
                .sub_url
                .as_ref()
                .map(|u| rtsp_url(u, "camera.sub_url", &located))
                .transpose()?;
            let stall_timeout = match cam.stall_timeout_seconds {
                None => Duration::from_secs(10),
                Some(s) if (2..=300).contains(s.get_ref()) => Duration::from_secs(*s.get_ref()),
                Some(s) => {
                    return Err(located(
                        s.span(),
                        "camera.stall_timeout_seconds",
                        "must be 2 to 300".into(),
                    ))
                }
            };
            let rtp_initial_seq = match cam.rtp_initial_seq {
                None => "default".to_owned(),
                Some(v) if RTP_INITIAL_SEQ.contains(&v.get_ref().as_str()) => v.into_inner(),
                Some(v) => {
                    return Err(located(
                        v.span(),
                        "camera.rtp_initial_seq",
                        format!("must be one of {}", RTP_INITIAL_SEQ.join(", ")),
                    ))
                }
            };
            cameras.push(CameraConfig {
                id,
                url,
                sub_url,
                username: cam.username,
                password: cam.password,
                mode: cam.mode.unwrap_or(RecordingMode::Events),
                stall_timeout,
                rtp_initial_seq,
                pre_roll: Duration::from_secs(match cam.pre_roll_seconds {
                    Some(v) => in_range(v, 0..=30, "camera.pre_roll_seconds", &located)?,
                    None => 5,
                }),
                post_roll: Duration::from_secs(match cam.post_roll_seconds {
                    Some(v) => in_range(v, 0..=600, "camera.post_roll_seconds", &located)?,
                    None => 10,
                }),
                storage_days: match cam.storage_days {
                    Some(v) => in_range(v, 1..=3650, "camera.storage_days", &located)?,
                    None => 30,
                },
                motion,
            });
        }

        let discovery = match raw.discovery {
            None => DiscoveryConfig::default(),
            Some(d) => {
                let interfaces = match d.interfaces {
                    None => Vec::new(),
                    Some(list) => {
                        let span = list.span();
                        let names = list.into_inner();
                        if let Some(bad) = names.iter().find(|n| !interface_name_ok(n)) {
                            return Err(located(
                                span,
                                "discovery.interfaces",
                                format!("`{bad}` is not a network interface name"),
                            ));
                        }
                        names
                    }
                };
                DiscoveryConfig {
                    enabled: d.enabled.unwrap_or(false),
                    interfaces,
                    onvif: d.onvif.unwrap_or(true),
                }
            }
        };

        Ok(Config {
            path: path.to_owned(),
            data_dir,
            key_dir,
            recording,
            retention,
            cameras,
            web,
            smtp,
            notify,
            discovery,
        })
    }
}

/// What Linux accepts as an interface name (IFNAMSIZ - 1 bytes, no `/`, no space).
fn interface_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// Motion settings of one camera: on unless `motion = false`.
fn motion_settings(
    cam: &RawCamera,
    located: &impl Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<Option<MotionSettings>, ConfigError> {
    if cam.motion == Some(false) {
        return Ok(None);
    }
    let mut settings = MotionSettings::default();
    if let Some(v) = &cam.motion_sensitivity {
        settings.sensitivity = in_range(v.clone(), 1..=100, "camera.motion_sensitivity", located)?;
    }
    if let Some(v) = &cam.motion_fps {
        settings.max_fps = in_range(v.clone(), 0.0..=60.0, "camera.motion_fps", located)?;
    }
    if let Some(zones) = &cam.motion_ignore_zones {
        settings.zones = zones
            .get_ref()
            .iter()
            .map(|points| Zone::Polygon(points.iter().map(|[x, y]| (*x, *y)).collect()))
            .collect();
        settings.validate().map_err(|e| {
            located(
                zones.span(),
                "camera.motion_ignore_zones",
                format!("{e} (zones are polygons of [x, y] points from 0 to 1)"),
            )
        })?;
    }
    Ok(Some(settings))
}

/// A number within `range`, or an error located at its key.
pub(super) fn in_range<T: PartialOrd + Copy + std::fmt::Display>(
    value: Spanned<T>,
    range: std::ops::RangeInclusive<T>,
    key: &str,
    located: &impl Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<T, ConfigError> {
    let v = *value.get_ref();
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(located(
            value.span(),
            key,
            format!("must be {} to {}", range.start(), range.end()),
        ))
    }
}

fn absolute(
    dir: Spanned<PathBuf>,
    key: &str,
    located: &impl Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<PathBuf, ConfigError> {
    let span = dir.span();
    let dir = dir.into_inner();
    if dir.is_absolute() {
        Ok(dir)
    } else {
        Err(located(
            span,
            key,
            format!("{} must be an absolute path", dir.display()),
        ))
    }
}

/// Accepts only `rtsp://` URLs without credentials: credentials live in their own
/// fields so they can be kept out of logs and (later) encrypted.
fn rtsp_url(
    raw: &Spanned<String>,
    key: &str,
    located: &impl Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<url::Url, ConfigError> {
    check_rtsp_url(raw.get_ref()).map_err(|message| located(raw.span(), key, message))
}

/// Why an `rtsps://` URL is refused.
pub const RTSPS_UNSUPPORTED: &str = "rtsps:// (RTSP over TLS) is not supported yet: the RTSP \
     library Porchlight uses speaks only rtsp://; use the camera's rtsp:// URL";

/// A camera URL as Porchlight accepts it, from the config or the web UI: `rtsp://`
/// with a host and without credentials (those live in their own, sealed fields). The
/// error never echoes the URL: it may hold a password.
pub fn check_rtsp_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() == "rtsps" {
        // retina (0.4) refuses every scheme but rtsp; TLS would have to be added
        // under it, with a way to trust each camera's self-signed certificate.
        return Err(RTSPS_UNSUPPORTED.into());
    }
    if url.scheme() != "rtsp" {
        return Err(format!(
            "scheme {:?} is not supported; use rtsp://",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials in the URL are refused; use the username and password keys".into(),
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(url)
}

impl CameraConfig {
    /// Applies the settings the web UI can change (motion on/off, sensitivity and
    /// ignore zones, pre- and post-roll, storage period; validated by the caller).
    pub fn with_settings(mut self, s: &crate::index::CameraSettings) -> CameraConfig {
        self.pre_roll = Duration::from_secs(s.pre_roll_secs);
        self.post_roll = Duration::from_secs(s.post_roll_secs);
        self.storage_days = s.storage_days;
        let permille = |v: u16| f32::from(v) / 1000.0;
        self.motion = s.motion.then(|| MotionSettings {
            sensitivity: s.sensitivity,
            zones: s
                .zones
                .iter()
                .map(|r| Zone::Rect {
                    x0: permille(r.left),
                    y0: permille(r.top),
                    x1: permille(r.right),
                    y1: permille(r.bottom),
                })
                .collect(),
            ..MotionSettings::default()
        });
        self
    }

    /// Analyses motion on `sub_url` (same credentials as the main stream).
    pub fn with_sub_url(mut self, sub_url: Option<url::Url>) -> CameraConfig {
        self.sub_url = sub_url;
        self
    }

    /// A camera added from the web UI: the given stream, credentials and mode, and
    /// the same defaults a `[[camera]]` section without those keys gets (motion on at
    /// default sensitivity, 5 s pre-roll, 10 s post-roll, 30 days, 10 s stall).
    pub fn adopted(
        id: CameraId,
        url: url::Url,
        username: Option<String>,
        password: Option<String>,
        mode: RecordingMode,
    ) -> CameraConfig {
        CameraConfig {
            id,
            url,
            sub_url: None,
            username,
            password,
            mode,
            stall_timeout: Duration::from_secs(10),
            rtp_initial_seq: "default".to_owned(),
            pre_roll: Duration::from_secs(5),
            post_roll: Duration::from_secs(10),
            storage_days: crate::index::DEFAULT_STORAGE_DAYS,
            motion: Some(MotionSettings::default()),
        }
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key written on the line containing `offset`, for syntax errors toml reports
/// only by position.
/// Whether a key (as [`key_at`] finds it, maybe dotted or quoted) holds a secret,
/// whose value must never appear in an error message.
fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    let last = last.trim().trim_matches(|c| c == '"' || c == '\'');
    SECRET_KEYS.contains(&last)
}

/// Keys whose values are secrets: cameras' and SMTP's `password`, the notification
/// `webhook_token`.
const SECRET_KEYS: [&str; 2] = ["password", "webhook_token"];

fn key_at(text: &str, offset: usize) -> String {
    let line_start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) => key.trim().to_owned(),
        None => line
            .trim()
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/porchlight/test.toml"), text)
    }

    const GOOD: &str = r#"
data_dir = "/var/lib/porchlight"
[[camera]]
name = "front-door"
url = "rtsp://192.0.2.10:554/stream1"
sub_url = "rtsp://192.0.2.10:554/stream2"
username = "admin"
password = "secret"
mode = "continuous"
"#;

    #[test]
    fn good_config_parses_with_defaults() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.key_dir, PathBuf::from("/var/lib/porchlight/keys"));
        assert_eq!(c.cameras.len(), 1);
        assert_eq!(c.cameras[0].mode, RecordingMode::Continuous);
        assert_eq!(c.recording.rollover, Duration::from_secs(600));
        assert_eq!(c.recording.sync_interval, Duration::from_secs(2));
    }

    fn invalid(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected a located error, got {other:?}"),
        }
    }

    #[test]
    fn bad_mode_names_line_and_key() {
        let (line, key, _) = invalid(&GOOD.replace("\"continuous\"", "\"sometimes\""));
        assert_eq!((line, key.as_str()), (9, "mode"));
    }

    #[test]
    fn url_with_credentials_is_refused_without_echoing_them() {
        let text = GOOD.replace(
            "rtsp://192.0.2.10:554/stream1",
            "rtsp://admin:hunter2@192.0.2.10/s",
        );
        let (line, key, message) = invalid(&text);
        assert_eq!((line, key.as_str()), (5, "camera.url"));
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!format!("{:?}", parse(&text)).contains("hunter2"));
    }

    #[test]
    fn non_rtsp_scheme_and_bad_name_are_refused() {
        let (line, key, _) =
            invalid(&GOOD.replace("rtsp://192.0.2.10:554/stream2", "http://192.0.2.10/x"));
        assert_eq!((line, key.as_str()), (6, "camera.sub_url"));
        let (line, key, _) = invalid(&GOOD.replace("front-door", "../etc"));
        assert_eq!((line, key.as_str()), (4, "camera.name"));
        assert_eq!(
            check_rtsp_url("rtsps://192.0.2.10:322/stream1").map(|u| u.to_string()),
            Err(RTSPS_UNSUPPORTED.to_owned())
        );
    }

    #[test]
    fn unknown_key_and_syntax_error_are_located() {
        let (line, key, _) = invalid(&format!("{GOOD}colour = \"red\"\n"));
        assert_eq!((line, key.as_str()), (10, "colour"));
        let (line, _, _) = invalid("data_dir = \"/x\"\nkey_dir = /nope\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn camera_debug_leaves_credentials_out() {
        let c = parse(GOOD).expect("valid");
        let text = format!("{:?}", c.cameras[0]);
        assert!(
            text.contains("front-door") && text.contains("<redacted>"),
            "{text}"
        );
        assert!(
            !text.contains("secret") && !text.contains("admin"),
            "{text}"
        );
    }

    #[test]
    fn discovery_is_off_by_default_and_checks_interface_names() {
        assert_eq!(
            parse(GOOD).expect("valid").discovery,
            DiscoveryConfig::default()
        );
        let on = parse(&format!(
            "{GOOD}[discovery]\nenabled = true\ninterfaces = [\"lo\"]\n"
        ))
        .expect("valid");
        assert!(on.discovery.enabled);
        assert_eq!(on.discovery.interfaces, vec!["lo".to_owned()]);
        assert!(
            on.discovery.onvif,
            "ONVIF is on with discovery unless turned off"
        );
        let mdns_only = parse(&format!(
            "{GOOD}[discovery]\nenabled = true\nonvif = false\n"
        ))
        .expect("valid");
        assert!(!mdns_only.discovery.onvif);
        let (_, key, _) = invalid(&format!("{GOOD}[discovery]\ninterfaces = [\"a b\"]\n"));
        assert_eq!(key, "discovery.interfaces");
    }

    #[test]
    fn retention_cap_below_one_gib_is_refused_as_bytes() {
        for small in ["0", "50", "1073741823"] {
            let (line, key, message) =
                invalid(&format!("{GOOD}[retention]\nmax_bytes = {small}\n"));
            assert_eq!((line, key.as_str()), (11, "retention.max_bytes"));
            assert!(message.contains("bytes"), "{message}");
        }
        let ok = parse(&format!("{GOOD}[retention]\nmax_bytes = 1073741824\n"));
        assert_eq!(ok.expect("1 GiB").retention.max_bytes, Some(MIN_MAX_BYTES));
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_echoed() {
        let cases = [
            GOOD.replace("password = \"secret\"", "password = 12345678"),
            format!("{GOOD}[notify]\nwebhook_token = 12345678\n"),
            format!("{GOOD}[smtp]\npassword = [12345678]\n"),
        ];
        for text in cases {
            let err = parse(&text).expect_err("wrong type").to_string();
            assert!(!err.contains("12345678"), "secret echoed: {err}");
            assert!(err.contains("must be a string (value not shown)"), "{err}");
        }
        // Other keys still say what was wrong.
        let (_, key, message) = invalid(&GOOD.replace("\"admin\"", "12345678"));
        assert_eq!(key, "username");
        assert!(message.contains("12345678"), "{message}");
    }

    #[test]
    fn rollover_in_minutes_and_seconds_together_is_refused() {
        let (line, key, _) = invalid(&format!(
            "{GOOD}[recording]\nrollover_minutes = 10\nrollover_seconds = 300\n"
        ));
        assert_eq!((line, key.as_str()), (12, "recording.rollover_seconds"));
        let c = parse(&format!("{GOOD}[recording]\nrollover_seconds = 300\n"));
        assert_eq!(
            c.expect("seconds alone").recording.rollover,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn relative_data_dir_is_refused() {
        let (line, key, _) = invalid("data_dir = \"var/demo\"\n");
        assert_eq!((line, key.as_str()), (1, "data_dir"));
    }
}
