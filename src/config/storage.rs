//! The `[recording]` and `[retention]` sections: how recordings are cut and made
//! durable, and how much the store may hold.
//!
//! Both sections are optional; every key has a default (stated on its field).

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{in_range, ConfigError};

/// The smallest `retention.max_bytes` accepted: 1 GiB.
pub const MIN_MAX_BYTES: u64 = 1 << 30;

/// How recordings are cut and made durable.
#[derive(Clone, Debug)]
pub struct RecordingConfig {
    /// A recording rolls over to a new file at the first keyframe after this long.
    pub rollover: Duration,
    /// Written video is sealed and fsynced at least this often; it bounds what a power
    /// cut can lose.
    pub sync_interval: Duration,
}

/// How much the store may hold (see `retention`).
#[derive(Clone, Debug)]
pub struct RetentionConfig {
    pub max_bytes: Option<u64>,
    pub min_free_percent: u8,
    pub interval: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecording {
    rollover_minutes: Option<Spanned<u64>>,
    rollover_seconds: Option<Spanned<u64>>,
    sync_seconds: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    max_bytes: Option<Spanned<u64>>,
    min_free_percent: Option<Spanned<u8>>,
    interval_seconds: Option<Spanned<u64>>,
}

/// `[recording]`, validated; its defaults when the section is absent.
pub(super) fn parse_recording(
    raw: Option<Spanned<RawRecording>>,
    located: &impl Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<RecordingConfig, ConfigError> {
    let mut recording = RecordingConfig {
        rollover: Duration::from_secs(600),
        sync_interval: Duration::from_secs(2),
    };
    if let Some(r) = raw {
        let r = r.into_inner();
        if let Some(m) = &r.rollover_minutes {
            let span = m.span();
            let m = *m.get_ref();
            if !(1..=120).contains(&m) {
                return Err(located(
                    span,
                    "recording.rollover_minutes",
                    "must be 1 to 120".into(),
                ));
            }
            recording.rollover = Duration::from_secs(m * 60);
        }
        if let Some(secs) = r.rollover_seconds {
            let span = secs.span();
            if r.rollover_minutes.is_some() {
                return Err(located(
                    span,
                    "recording.rollover_seconds",
                    "set rollover_minutes or rollover_seconds, not both".into(),
                ));
            }
            let secs = *secs.get_ref();
            if !(5..=7200).contains(&secs) {
                return Err(located(
                    span,
                    "recording.rollover_seconds",
                    "must be 5 to 7200".into(),
                ));
            }
            recording.rollover = Duration::from_secs(secs);
        }
        if let Some(s) = r.sync_seconds {
            let span = s.span();
            let s = *s.get_ref();
            if !(1..=60).contains(&s) {
                return Err(located(
                    span,
                    "recording.sync_seconds",
                    "must be 1 to 60".into(),
                ));
            }
            recording.sync_interval = Duration::from_secs(s);
        }
    }
    Ok(recording)
}

/// `[retention]`, validated; its defaults when the section is absent.
pub(super) fn parse_retention(
    raw: Option<RawRetention>,
    located: &impl Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<RetentionConfig, ConfigError> {
    let mut retention = RetentionConfig {
        max_bytes: None,
        min_free_percent: 10,
        interval: Duration::from_secs(60),
    };
    if let Some(r) = raw {
        if let Some(b) = r.max_bytes {
            let span = b.span();
            let b = b.into_inner();
            // A small number here is almost always meant as GB ("50"), and a cap
            // that small would delete every finished recording at each pass.
            if b < MIN_MAX_BYTES {
                return Err(located(
                    span,
                    "retention.max_bytes",
                    format!(
                        "is in bytes and must be at least {MIN_MAX_BYTES} (1 GiB); \
                         50 GB is 50_000_000_000"
                    ),
                ));
            }
            retention.max_bytes = Some(b);
        }
        if let Some(p) = r.min_free_percent {
            retention.min_free_percent =
                in_range(p, 0..=90, "retention.min_free_percent", located)?;
        }
        if let Some(i) = r.interval_seconds {
            retention.interval = Duration::from_secs(in_range(
                i,
                1..=3600,
                "retention.interval_seconds",
                located,
            )?);
        }
    }
    Ok(retention)
}
