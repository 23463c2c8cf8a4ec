//! The event a recorder is in the middle of: when it ends, what triggered it, its
//! score curve and best thumbnail so far.

use crate::index::events::SCORE_CURVE_STEP_SECS;
use crate::index::EventEntry;
use crate::model::{CameraId, EventId, RecordingId, Trigger};
use crate::store::e2e::ViewerPublicKey;

/// Longest score curve kept (an hour at one point a second); longer events keep
/// their peak but stop extending the curve.
const MAX_CURVE_POINTS: usize = 3600;

/// A picture offered for an event, with the viewers end-to-end mode sealed to when
/// it was taken: a picture taken while the mode was on stays sealed to them even if
/// the mode is off by the time the event closes.
pub struct Thumbnail {
    pub jpeg: Vec<u8>,
    pub sealed_to: Vec<ViewerPublicKey>,
}

pub struct OpenEvent {
    pub entry: EventEntry,
    /// Wall time (µs) until which the triggers so far ask for recording.
    pub until_micros: i64,
    best_thumbnail: Option<(f32, Thumbnail)>,
    /// The end last written to the index, so an open event is saved as it grows
    /// (about once a second), not on every trigger.
    saved_end_micros: i64,
}

impl OpenEvent {
    pub fn new(camera: CameraId, kind: Trigger, start_micros: i64, until_micros: i64) -> OpenEvent {
        OpenEvent {
            entry: EventEntry {
                id: EventId::random(),
                camera,
                start_micros,
                end_micros: until_micros,
                triggers: vec![kind],
                peak_score: 0.0,
                score_curve: Vec::new(),
                has_thumbnail: false,
                recordings: Vec::new(),
                open: true,
            },
            until_micros,
            best_thumbnail: None,
            saved_end_micros: i64::MIN,
        }
    }

    /// Whether the index's copy is more than a second behind; marks it saved.
    pub fn take_save(&mut self) -> bool {
        if self.entry.end_micros.saturating_sub(self.saved_end_micros) >= 1_000_000 {
            self.saved_end_micros = self.entry.end_micros;
            true
        } else {
            false
        }
    }

    /// Another trigger while open: extend, never shorten.
    pub fn extend(&mut self, kind: Trigger, until_micros: i64) {
        if !self.entry.triggers.contains(&kind) {
            self.entry.triggers.push(kind);
        }
        self.until_micros = self.until_micros.max(until_micros);
        self.entry.end_micros = self.until_micros;
    }

    pub fn add_recording(&mut self, id: RecordingId) {
        if !self.entry.recordings.contains(&id) {
            self.entry.recordings.push(id);
        }
    }

    /// A motion analysis result at `at_micros`.
    pub fn add_score(&mut self, at_micros: i64, score: f32, thumbnail: Option<Thumbnail>) {
        let score = score.clamp(0.0, 1.0);
        self.entry.peak_score = self.entry.peak_score.max(score);
        let step = i64::from(SCORE_CURVE_STEP_SECS) * 1_000_000;
        let slot = ((at_micros - self.entry.start_micros).max(0) / step) as usize;
        if slot < MAX_CURVE_POINTS {
            if self.entry.score_curve.len() <= slot {
                self.entry.score_curve.resize(slot + 1, 0);
            }
            let point = (score * 255.0).round() as u8;
            self.entry.score_curve[slot] = self.entry.score_curve[slot].max(point);
        }
        if let Some(picture) = thumbnail {
            if self
                .best_thumbnail
                .as_ref()
                .is_none_or(|(best, _)| score > *best)
            {
                self.best_thumbnail = Some((score, picture));
            }
        }
    }

    /// Closes the event at `end_micros`; returns the entry and the thumbnail to seal.
    pub fn close(mut self, end_micros: i64) -> (EventEntry, Option<Thumbnail>) {
        self.entry.end_micros = end_micros.max(self.entry.start_micros);
        self.entry.open = false;
        let thumbnail = self.best_thumbnail.map(|(_, picture)| picture);
        self.entry.has_thumbnail = thumbnail.is_some();
        (self.entry, thumbnail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_extend_and_the_curve_keeps_each_seconds_peak() {
        let mut e = OpenEvent::new("cam".parse().expect("name"), Trigger::Motion, 0, 5_000_000);
        e.extend(Trigger::External, 3_000_000);
        assert_eq!(e.until_micros, 5_000_000, "never shortened");
        e.extend(Trigger::Motion, 9_000_000);
        assert_eq!(e.entry.triggers, vec![Trigger::Motion, Trigger::External]);
        let picture = |jpeg: &[u8]| {
            Some(Thumbnail {
                jpeg: jpeg.to_vec(),
                sealed_to: Vec::new(),
            })
        };
        e.add_score(1_200_000, 0.5, picture(b"a"));
        e.add_score(1_700_000, 0.25, picture(b"b"));
        e.add_score(3_100_000, 1.0, None);
        assert_eq!(e.entry.score_curve, vec![0, 128, 0, 255]);
        let (entry, thumbnail) = e.close(9_000_000);
        assert_eq!(entry.peak_score, 1.0);
        assert_eq!(
            thumbnail.map(|t| t.jpeg),
            Some(b"a".to_vec()),
            "the best frame that came with a picture"
        );
        assert!(entry.has_thumbnail && !entry.open);
    }
}
