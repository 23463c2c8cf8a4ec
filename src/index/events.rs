//! The `events` table: spans of triggered activity (motion, doorbell, live view).
//!
//! An event may cover several recordings (a roll-over in the middle of it) and, in
//! continuous mode, only part of one. Its thumbnail, if any, is a sealed file kept by
//! the store under the event's id.

use serde::{Deserialize, Serialize};

use super::table::Row;
use super::{Index, IndexError};
use crate::model::{CameraId, EventId, RecordingId, Trigger};

/// Seconds per point of [`EventEntry::score_curve`].
pub const SCORE_CURVE_STEP_SECS: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEntry {
    pub id: EventId,
    pub camera: CameraId,
    pub start_micros: i64,
    pub end_micros: i64,
    /// Every kind of trigger that contributed, in order of first appearance.
    pub triggers: Vec<Trigger>,
    /// Highest motion score seen (fraction of the analysed picture that changed).
    pub peak_score: f32,
    /// The highest score in each second from the start (0–255 = 0–100 %): enough to
    /// draw the event on a timeline without reading video.
    pub score_curve: Vec<u8>,
    pub has_thumbnail: bool,
    /// Recordings holding the event's video, in time order.
    pub recordings: Vec<RecordingId>,
    /// Still being recorded (its end moves).
    pub open: bool,
}

impl Row for EventEntry {
    fn id(&self) -> u64 {
        self.id.0
    }
    fn camera(&self) -> &CameraId {
        &self.camera
    }
    fn start_micros(&self) -> i64 {
        self.start_micros
    }
}

impl Index {
    pub fn put_event(&self, event: &EventEntry) -> Result<(), IndexError> {
        self.events.put(event)
    }

    pub fn get_event(&self, id: EventId) -> Result<Option<EventEntry>, IndexError> {
        self.events.get(id.0)
    }

    pub fn remove_event(&self, id: EventId) -> Result<(), IndexError> {
        self.events.remove(id.0)
    }

    /// All events, by camera then start time.
    pub fn all_events(&self) -> Result<Vec<EventEntry>, IndexError> {
        self.events.all()
    }

    /// One camera's events overlapping `[from, to)`, by start time.
    pub fn camera_events(
        &self,
        camera: &CameraId,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Vec<EventEntry>, IndexError> {
        let mut rows = self.events.camera_until(camera, to_micros)?;
        rows.retain(|e| e.end_micros > from_micros || e.open);
        Ok(rows)
    }

    /// The newest `limit` events starting at or after `since_micros`, newest first,
    /// of one camera or of all.
    pub fn newest_events(
        &self,
        camera: Option<&CameraId>,
        since_micros: i64,
        limit: usize,
    ) -> Result<Vec<EventEntry>, IndexError> {
        self.events.newest(camera, since_micros, limit)
    }

    /// Events that list `recording` among their recordings.
    pub fn events_of_recording(
        &self,
        camera: &CameraId,
        recording: RecordingId,
    ) -> Result<Vec<EventEntry>, IndexError> {
        let mut rows = self.events.camera_until(camera, i64::MAX)?;
        rows.retain(|e| e.recordings.contains(&recording));
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_found_by_camera_span_and_recording() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let camera: CameraId = "door".parse().expect("name");
        let event = EventEntry {
            id: EventId(7),
            camera: camera.clone(),
            start_micros: 10_000_000,
            end_micros: 20_000_000,
            triggers: vec![Trigger::Motion, Trigger::External],
            peak_score: 0.25,
            score_curve: vec![0, 64, 12],
            has_thumbnail: true,
            recordings: vec![RecordingId(1), RecordingId(2)],
            open: false,
        };
        index.put_event(&event).expect("put");
        assert_eq!(
            index.get_event(EventId(7)).expect("get"),
            Some(event.clone())
        );
        assert_eq!(
            index
                .camera_events(&camera, 15_000_000, 16_000_000)
                .expect("span")
                .len(),
            1
        );
        assert!(index
            .camera_events(&camera, 20_000_000, 30_000_000)
            .expect("span")
            .is_empty());
        assert_eq!(
            index
                .events_of_recording(&camera, RecordingId(2))
                .expect("of")
                .len(),
            1
        );
        assert!(index
            .events_of_recording(&camera, RecordingId(3))
            .expect("of")
            .is_empty());
        index.remove_event(EventId(7)).expect("remove");
        assert!(index.all_events().expect("all").is_empty());
    }

    #[test]
    fn the_newest_events_come_from_every_camera_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        // "door" is a prefix of "door-2": their keys must not run together.
        for (n, (camera, start)) in [
            ("door", 5),
            ("door-2", 9),
            ("door", 1),
            ("yard", 7),
            ("door-2", 3),
        ]
        .into_iter()
        .enumerate()
        {
            index
                .put_event(&EventEntry {
                    id: EventId(n as u64),
                    camera: camera.parse().expect("name"),
                    start_micros: start,
                    end_micros: start + 1,
                    triggers: vec![Trigger::Motion],
                    peak_score: 0.5,
                    score_curve: Vec::new(),
                    has_thumbnail: false,
                    recordings: Vec::new(),
                    open: false,
                })
                .expect("put");
        }
        let starts =
            |rows: Vec<EventEntry>| rows.iter().map(|e| e.start_micros).collect::<Vec<_>>();
        assert_eq!(
            starts(index.newest_events(None, i64::MIN, 3).expect("newest")),
            [9, 7, 5]
        );
        assert_eq!(
            starts(index.newest_events(None, 4, 10).expect("since")),
            [9, 7, 5]
        );
        let door: CameraId = "door".parse().expect("name");
        assert_eq!(
            starts(
                index
                    .newest_events(Some(&door), i64::MIN, 10)
                    .expect("door")
            ),
            [5, 1]
        );
        assert_eq!(
            starts(index.newest_events(None, i64::MIN, 10).expect("all")).len(),
            5
        );
    }
}
