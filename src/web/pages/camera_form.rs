//! The camera form fields that adding a camera and its settings page share, parsed
//! and shown back:
//! - ignore zones as text, one rectangle a line, `left top right bottom` in percent
//!   of the picture (x to the right, y down; decimals allowed, commas or spaces
//!   between). It is what the form shows without JavaScript, and what
//!   `web/static/zones.js` writes when a rectangle is drawn on the snapshot;
//! - the storage period in days (blank: the default, 30);
//! - the optional sub-stream URL, analysed for motion (blank: none);
//! - the streams, credentials and recording mode ([`StreamFields`]).

use serde::Deserialize;

use crate::config::{check_rtsp_url, RecordingMode};
use crate::index::{MaskRect, DEFAULT_STORAGE_DAYS, MAX_ZONES};

/// Longest username and password accepted (bytes).
pub const MAX_CREDENTIAL: usize = 256;

/// The stream, credential and mode fields of both forms (flattened into each).
#[derive(Deserialize)]
pub struct StreamFields {
    #[serde(default)]
    pub url: String,
    /// Optional stream analysed for motion.
    #[serde(default)]
    pub sub_url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// `events` (also when blank), `continuous` or `off`.
    #[serde(default)]
    pub mode: String,
}

/// [`StreamFields`] checked.
#[derive(Debug)]
pub struct Streams {
    pub url: url::Url,
    pub sub_url: Option<url::Url>,
    pub mode: RecordingMode,
    /// None when the field was blank (on the settings page: keep the stored one).
    pub username: Option<String>,
    pub password: Option<String>,
}

impl StreamFields {
    /// Checks the fields. A password needs a username: on the settings page a
    /// password typed alone would otherwise be dropped without a word.
    pub fn check(&self) -> Result<Streams, String> {
        let url = check_rtsp_url(self.url.trim())?;
        let sub_url = sub_url(&self.sub_url)?;
        let mode = match self.mode.as_str() {
            "events" | "" => RecordingMode::Events,
            "continuous" => RecordingMode::Continuous,
            "off" => RecordingMode::Off,
            _ => return Err("choose a recording mode".into()),
        };
        if self.username.len() > MAX_CREDENTIAL || self.password.len() > MAX_CREDENTIAL {
            return Err(format!(
                "username and password are at most {MAX_CREDENTIAL} bytes"
            ));
        }
        if self.username.is_empty() && !self.password.is_empty() {
            return Err("a password needs a username".into());
        }
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(Streams {
            url,
            sub_url,
            mode,
            username: some(&self.username),
            password: some(&self.password),
        })
    }
}

/// Longest storage period (the config file's limit too).
pub const MAX_STORAGE_DAYS: u32 = 3650;

/// Parses the zones field. Corners may come in any order; a rectangle without area,
/// a number outside 0–100 or more than [`MAX_ZONES`] lines are refused, naming the
/// line.
pub fn parse_zones(text: &str) -> Result<Vec<MaskRect>, String> {
    let mut zones = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("zone line {}: {why}", n + 1);
        let numbers = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && (0.0..=100.0).contains(v))
                    // Percent to thousandths: at most 1000, so it fits.
                    .map(|v| (v * 10.0).round() as u16)
                    .ok_or_else(|| bad("each number is a percentage from 0 to 100"))
            })
            .collect::<Result<Vec<u16>, String>>()?;
        let [x0, y0, x1, y1] = numbers[..] else {
            return Err(bad("four numbers: left top right bottom"));
        };
        let rect = MaskRect {
            left: x0.min(x1),
            top: y0.min(y1),
            right: x0.max(x1),
            bottom: y0.max(y1),
        };
        if rect.left == rect.right || rect.top == rect.bottom {
            return Err(bad("the rectangle has no area"));
        }
        if zones.len() == MAX_ZONES {
            return Err(format!("at most {MAX_ZONES} zones"));
        }
        zones.push(rect);
    }
    Ok(zones)
}

/// The zones as [`parse_zones`] reads them back.
pub fn format_zones(zones: &[MaskRect]) -> String {
    let percent = |v: u16| {
        if v.is_multiple_of(10) {
            (v / 10).to_string()
        } else {
            format!("{}.{}", v / 10, v % 10)
        }
    };
    zones
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}\n",
                percent(r.left),
                percent(r.top),
                percent(r.right),
                percent(r.bottom)
            )
        })
        .collect()
}

/// Parses the storage period; blank is the default.
pub fn storage_days(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(DEFAULT_STORAGE_DAYS);
    }
    text.parse()
        .ok()
        .filter(|d| (1..=MAX_STORAGE_DAYS).contains(d))
        .ok_or_else(|| format!("the storage period is 1 to {MAX_STORAGE_DAYS} days"))
}

/// Parses the optional sub-stream URL (checked like the main one).
pub fn sub_url(text: &str) -> Result<Option<url::Url>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    check_rtsp_url(text)
        .map(Some)
        .map_err(|e| format!("sub-stream URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_in_any_corner_order_and_read_back_the_same() {
        let zones = parse_zones("10 20 50 60\n\n  95.5,100 , 90 0.1\r\n").expect("valid");
        assert_eq!(
            zones,
            vec![
                MaskRect {
                    left: 100,
                    top: 200,
                    right: 500,
                    bottom: 600
                },
                MaskRect {
                    left: 900,
                    top: 1,
                    right: 955,
                    bottom: 1000
                },
            ]
        );
        assert_eq!(format_zones(&zones), "10 20 50 60\n90 0.1 95.5 100\n");
        assert_eq!(parse_zones(&format_zones(&zones)), Ok(zones));
        assert_eq!(parse_zones(""), Ok(vec![]));
    }

    #[test]
    fn bad_zones_are_refused_naming_the_line() {
        for (text, why) in [
            ("10 20 50", "line 1: four numbers"),
            ("10 20 50 60 70", "line 1: four numbers"),
            ("0 0 10 10\n10 20 50 101", "line 2: each number"),
            ("10 20 -5 60", "each number"),
            ("10 20 NaN 60", "each number"),
            ("10 20 ten 60", "each number"),
            ("10 20 10 60", "no area"),
        ] {
            let e = parse_zones(text).expect_err(text);
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let many = "0 0 10 10\n".repeat(MAX_ZONES + 1);
        assert!(parse_zones(&many).is_err());
        assert_eq!(
            parse_zones(&"0 0 10 10\n".repeat(MAX_ZONES)).map(|z| z.len()),
            Ok(MAX_ZONES)
        );
    }

    #[test]
    fn stream_fields_are_checked_alike_for_both_forms() {
        let fields = |url: &str, username: &str, password: &str, mode: &str| StreamFields {
            url: url.into(),
            sub_url: String::new(),
            username: username.into(),
            password: password.into(),
            mode: mode.into(),
        };
        let ok = fields(" rtsp://192.0.2.1/main ", "admin", "secret", "")
            .check()
            .expect("valid");
        assert_eq!(ok.url.as_str(), "rtsp://192.0.2.1/main");
        assert_eq!(ok.mode, RecordingMode::Events);
        assert_eq!(
            (ok.username.as_deref(), ok.password.as_deref()),
            (Some("admin"), Some("secret"))
        );
        let blank = fields("rtsp://192.0.2.1/main", "", "", "off")
            .check()
            .expect("valid");
        assert_eq!(
            (blank.mode, blank.username, blank.password),
            (RecordingMode::Off, None, None)
        );
        let long = "x".repeat(MAX_CREDENTIAL + 1);
        for (f, why) in [
            (fields("http://192.0.2.1/", "", "", ""), "rtsp"),
            (
                fields("rtsp://192.0.2.1/", "", "", "sometimes"),
                "recording mode",
            ),
            (
                fields("rtsp://192.0.2.1/", "", "secret", ""),
                "needs a username",
            ),
            (fields("rtsp://192.0.2.1/", &long, "", ""), "at most"),
            (fields("rtsp://192.0.2.1/", "a", &long, ""), "at most"),
        ] {
            let e = f.check().expect_err(why);
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn storage_days_and_sub_url() {
        assert_eq!(storage_days(" "), Ok(DEFAULT_STORAGE_DAYS));
        assert_eq!(storage_days("7"), Ok(7));
        assert!(storage_days("0").is_err());
        assert!(storage_days("3651").is_err());
        assert!(storage_days("-1").is_err());
        assert_eq!(sub_url(""), Ok(None));
        assert_eq!(
            sub_url("rtsp://192.0.2.1/sub").map(|u| u.map(|u| u.to_string())),
            Ok(Some("rtsp://192.0.2.1/sub".to_owned()))
        );
        let e = sub_url("rtsp://a:b@192.0.2.1/sub").expect_err("credentials");
        assert!(
            e.contains("credentials in the URL") && !e.contains("a:b"),
            "{e}"
        );
    }
}
