//! Plain types that travel between the stages: typed ids, frames, triggers.
//!
//! Every stage speaks these; none of them knows about sled, retina or HTTP, so a
//! `RecordingId` can never be passed where a `CameraId` is expected and the types can
//! be shared by the camera, recorder, store, index and (later) web layers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The clock rate every frame time is expressed in (the RTP clock of H.264/H.265).
pub const TIMESCALE: u32 = 90_000;

/// A camera's stable identifier: its configured name, restricted to characters that
/// are safe in file names, URLs and log lines (`[a-z0-9_-]`, 1–64 long, starting with a
/// letter or digit). Restricting the name is what keeps a hostile name out of paths.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CameraId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("camera name {0:?} is not allowed: use 1-64 characters a-z, 0-9, '-' or '_', starting with a letter or digit")]
pub struct BadCameraName(pub String);

impl CameraId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CameraId {
    type Err = BadCameraName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        let first_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if first_ok && s.len() <= 64 && s.chars().all(ok_char) {
            Ok(CameraId(s.to_owned()))
        } else {
            Err(BadCameraName(s.chars().take(80).collect()))
        }
    }
}

impl TryFrom<String> for CameraId {
    type Error = BadCameraName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CameraId> for String {
    fn from(id: CameraId) -> String {
        id.0
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Defines a 64-bit random identifier shown as 16 lower-case hex digits. Random rather
/// than sequential so ids survive an index rebuild unchanged (they are stored in the
/// files) and reveal nothing about how much was recorded. Not a secret: never use one
/// as a capability.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(pub u64);

        impl $name {
            /// A fresh random id from the operating system's CSPRNG.
            pub fn random() -> $name {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).expect("the OS random number generator is available");
                $name(u64::from_be_bytes(bytes))
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bad = || BadId { what: $what, given: s.chars().take(40).collect() };
                if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                u64::from_str_radix(s, 16).map($name).map_err(|_| bad())
            }
        }

        impl TryFrom<String> for $name {
            type Error = BadId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:016x}", self.0)
            }
        }
    };
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{given:?} is not a {what} id (16 hex digits expected)")]
pub struct BadId {
    pub what: &'static str,
    pub given: String,
}

hex_id!(
    /// A recording (one file) of one camera.
    RecordingId,
    "recording"
);
hex_id!(
    /// An event: a span of triggered activity (motion, doorbell, live view) on one
    /// camera, which may cover several recordings.
    EventId,
    "event"
);

/// Why a recording was made. Stored in the index and in each file's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Continuous,
    Motion,
    External,
    LiveView,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Continuous => "continuous",
            Trigger::Motion => "motion",
            Trigger::External => "external",
            Trigger::LiveView => "live_view",
        }
    }
}

impl FromStr for Trigger {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "continuous" => Ok(Trigger::Continuous),
            "motion" => Ok(Trigger::Motion),
            "external" => Ok(Trigger::External),
            "live_view" => Ok(Trigger::LiveView),
            other => Err(format!("unknown trigger {other:?}")),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a decoder or MP4 writer needs to know about a video stream. Shared by every
/// frame of one camera session until the camera changes its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoParams {
    /// RFC 6381 codec string, e.g. `avc1.4D401F`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// The complete ISO BMFF sample entry box (`avc1`/`hvc1` with its configuration).
    pub sample_entry: Vec<u8>,
}

/// One encoded video frame as the camera sent it (AVCC: 4-byte length-prefixed NAL
/// units, parameter sets out of band in `params`).
#[derive(Clone, Debug)]
pub struct Frame {
    /// Which connection to the camera produced it. A new value means the timeline
    /// restarted, so a recorder must not join frames across it.
    pub session: u64,
    /// Presentation time on the RTP clock, in [`TIMESCALE`] units since the session's
    /// first frame. Monotonic within a session unless the camera misbehaves.
    pub pts: i64,
    /// Wall-clock time of the frame in microseconds since the Unix epoch: the wall time
    /// at PLAY plus the RTP clock's elapsed time, so it never jumps with the host clock.
    pub wall_micros: i64,
    pub is_key: bool,
    pub data: Bytes,
    pub params: Arc<VideoParams>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_look_alikes() {
        let id = RecordingId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<RecordingId>(), Ok(id));
        for bad in [
            "",
            "0",
            "+0abcdef01234567",
            "00abcdef0123456g",
            "00abcdef012345678",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn camera_names_that_could_escape_a_path_are_refused() {
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "A",
            "-x",
            "x y",
            "<script>",
            &"a".repeat(65),
        ] {
            assert!(bad.parse::<CameraId>().is_err(), "{bad:?}");
        }
        assert!("front-door_2".parse::<CameraId>().is_ok());
    }
}
