//! Recorder tests on real x264 frames (3 s, 10 fps, a keyframe every 10) through a
//! real store and index.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::machine::Recorder;
use super::ring::{MAX_RING_BYTES, MAX_RING_FRAMES};
use crate::clock::{Clock, SimulatedClock};
use crate::config::{RecordingConfig, RecordingMode};
use crate::index::{Index, RecordingEntry, RecordingState};
use crate::model::{CameraId, Frame, Trigger, VideoParams, TIMESCALE};
use crate::store::e2e::{KdfParams, LockedViewerKey};
use crate::store::mp4::testutil::{encode_test_stream, TestStream};
use crate::store::mp4::ReadAt;
use crate::store::writer::SyncFault;
use crate::store::{FileStatus, Store, StoreError};

const START: i64 = 1_800_000_000_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    stream: TestStream,
    store: Arc<Store>,
    index: Index,
    clock: SimulatedClock,
}

fn fixture() -> Fixture {
    let (dir, store, index) = crate::testutil::store_and_index();
    let stream = encode_test_stream(dir.path());
    let store = Arc::new(store);
    Fixture {
        _dir: dir,
        stream,
        store,
        index,
        clock: SimulatedClock::new(0),
    }
}

impl Fixture {
    fn recorder(&self, mode: RecordingMode, rollover: Duration) -> Recorder {
        let settings = RecordingConfig {
            rollover,
            sync_interval: Duration::from_secs(2),
        };
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        Recorder::new(
            camera(),
            mode,
            self.store.clone(),
            self.index.clone(),
            settings,
            clock,
        )
    }

    /// The stream's frames as ingest would publish them, 0.1 s apart from `START`.
    fn frames(&self) -> Vec<Arc<Frame>> {
        let params = Arc::new(VideoParams {
            codec: "avc1".into(),
            width: self.stream.track.width,
            height: self.stream.track.height,
            sample_entry: self.stream.track.sample_entry.clone(),
        });
        let mut pts = 0i64;
        self.stream
            .samples
            .iter()
            .map(|sample| {
                let frame = Arc::new(Frame {
                    session: 1,
                    pts,
                    wall_micros: START + pts * 1_000_000 / i64::from(TIMESCALE),
                    is_key: sample.is_sync,
                    data: sample.data.clone(),
                    params: params.clone(),
                });
                pts += i64::from(sample.duration);
                frame
            })
            .collect()
    }
}

fn camera() -> CameraId {
    "cam".parse().expect("name")
}

/// A recorder that rolls over every second: every frame lands in exactly one file,
/// and each file starts exactly where the previous one ended.
#[test]
fn roll_over_loses_and_duplicates_no_frame() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Continuous, Duration::from_secs(1));
    let frames = f.frames();
    let end_pts = frames.last().map_or(0, |l| l.pts) + 9000;
    for frame in frames {
        recorder.on_frame(frame);
    }
    recorder.close(Some(end_pts), "test end");

    let entries = f.index.all_recordings().expect("entries");
    assert_eq!(entries.len(), 3, "3 s at a 1 s roll-over: {entries:?}");
    assert_eq!(
        entries.iter().map(|e| e.frames).sum::<u64>(),
        f.stream.samples.len() as u64
    );
    assert_eq!(entries[0].start_micros, START);
    for pair in entries.windows(2) {
        assert_eq!(
            pair[0].end_micros, pair[1].start_micros,
            "files join exactly"
        );
    }
    let mut total = 0;
    for entry in &entries {
        assert_eq!(entry.state, RecordingState::Finished);
        let mut reader = f.store.open_recording(&camera(), entry.id).expect("open");
        let parsed = reader.parse().expect("parse");
        assert!(parsed.samples[0].is_sync, "each file starts at a keyframe");
        assert_eq!(parsed.samples.len() as u64, entry.frames);
        for s in &parsed.samples {
            let mut data = vec![0; s.size as usize];
            reader.read_exact_at(s.offset, &mut data).expect("read");
            assert_eq!(
                data, f.stream.samples[total].data,
                "frame {total} is byte-identical"
            );
            total += 1;
        }
    }
}

#[test]
fn events_mode_records_only_while_triggered() {
    let f = fixture();
    f.clock.advance_micros(1_000_000);
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    recorder.post_roll = Duration::ZERO;
    assert_eq!(recorder.wanted(1_000_000), None);
    recorder.on_trigger(Trigger::External, None, Duration::from_secs(10));
    assert_eq!(recorder.wanted(5_000_000), Some(Trigger::External));
    assert_eq!(recorder.wanted(11_000_000), None, "10 s after the trigger");
    recorder.mode = RecordingMode::Off;
    assert_eq!(recorder.wanted(5_000_000), None, "off never records");
}

/// Events mode with 1 s pre-roll: a 0.2 s trigger at 2.0 s (0.3 s post-roll) records
/// from the keyframe at 1.0 s to 2.5 s, as one event holding that one recording.
#[test]
fn a_trigger_records_from_the_preroll_keyframe_until_the_post_roll_ends() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    recorder.pre_roll = Duration::from_secs(1);
    recorder.post_roll = Duration::from_millis(300);
    for (i, frame) in f.frames().into_iter().enumerate() {
        // The host's clock reads each frame's time as it arrives.
        f.clock
            .advance_micros(frame.wall_micros - f.clock.now_micros());
        if i == 20 {
            recorder.on_trigger(Trigger::External, None, Duration::from_millis(200));
            assert!(
                f.index.all_events().expect("events")[0].open,
                "an open event is visible at once"
            );
        }
        recorder.on_frame(frame);
    }
    let recordings = f.index.all_recordings().expect("recordings");
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let r = &recordings[0];
    assert_eq!(
        r.start_micros,
        START + 1_000_000,
        "starts at the keyframe a pre-roll before"
    );
    assert_eq!(
        r.frames, 15,
        "frames 10..25: 1 s of pre-roll, 0.2 s trigger, 0.3 s post-roll"
    );
    assert_eq!(r.trigger, Trigger::External);
    let events = f.index.all_events().expect("events");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert!(!e.open);
    assert_eq!(e.recordings, vec![r.id]);
    assert_eq!(
        (e.start_micros, e.end_micros),
        (START + 1_000_000, START + 2_500_000)
    );
    assert_eq!(e.triggers, vec![Trigger::External]);
}

/// The recorder thread takes inputs in batches: a trigger that waited in the queue
/// still counts from when it was sent.
#[test]
fn a_trigger_that_waited_in_the_queue_counts_from_when_it_was_sent() {
    let f = fixture();
    f.clock.advance_micros(10_000_000);
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    recorder.post_roll = Duration::ZERO;
    let sent = std::time::Instant::now()
        .checked_sub(Duration::from_secs(2))
        .expect("the machine has been up for 2 s");
    let input = super::RecorderInput::Trigger {
        kind: Trigger::External,
        duration: Duration::from_secs(3),
        sent,
    };
    super::handle(&mut recorder, input);
    // Sent 2 s ago for 3 s: wanted until 1 s from now, not 3.
    assert_eq!(recorder.wanted(10_500_000), Some(Trigger::External));
    assert_eq!(recorder.wanted(11_500_000), None);
}

/// End-to-end mode: after a failed write the daemon cannot read the file back (it
/// has no viewer key), yet the entry is finished from what was written instead of
/// staying `Open` (unplayable, undeletable, skipped by retention) until a restart.
#[test]
fn a_failed_end_to_end_recording_is_finished_not_left_open() {
    let f = fixture();
    f.enable_end_to_end();
    let mut recorder = f.recorder(RecordingMode::Continuous, Duration::from_secs(600));
    // Frames 0..15: the keyframe at 1.0 s writes out the first ten.
    for frame in f.frames().into_iter().take(15) {
        recorder.on_frame(frame);
    }
    let disk_full = StoreError::Io {
        action: "write chunk",
        path: "/dev/full".into(),
        source: std::io::Error::from_raw_os_error(28),
    };
    recorder.fail(disk_full);

    let entries = f.index.all_recordings().expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let path = f.store.recording_path(&camera(), entry.id);
    assert!(matches!(
        f.store.status(&camera(), entry.id),
        FileStatus::EndToEnd(_)
    ));
    assert_eq!(entry.state, RecordingState::Finished);
    assert_eq!(entry.frames, 10, "the frames that reached the file");
    assert_eq!(entry.end_micros, START + 1_000_000);
    assert_eq!(entry.bytes, std::fs::metadata(&path).expect("stat").len());
}

impl Fixture {
    /// Turns end-to-end mode on: new recordings are sealed to a fresh viewer key.
    fn enable_end_to_end(&self) {
        let quick = KdfParams {
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
        };
        let (viewer, _) =
            LockedViewerKey::generate_with("a passphrase for the test", quick).expect("viewer key");
        self.store
            .set_recipients(vec![viewer.public_key().clone()])
            .expect("enable end-to-end");
    }

    /// A keyframe then `count` frames made by `next(i)` from the fixture's first
    /// P-frame, all under the fixture's parameters.
    fn keyframe_then(
        &self,
        count: usize,
        next: impl Fn(usize, &Frame) -> Frame,
    ) -> Vec<Arc<Frame>> {
        let frames = self.frames();
        let p_frame = frames[1].clone();
        let mut out = vec![frames[0].clone()];
        out.extend((0..count).map(|i| Arc::new(next(i, &p_frame))));
        out
    }
}

/// A camera that sends one keyframe and then only P-frames: the pre-roll ring has no
/// later keyframe to drop up to, yet stays bounded.
#[test]
fn preroll_stays_bounded_without_a_second_keyframe() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    let frames = f.keyframe_then(10_000, |i, p| Frame {
        pts: p.pts * (i as i64 + 1),
        wall_micros: START + (i as i64 + 1) * 100_000,
        ..p.clone()
    });
    for frame in frames {
        recorder.on_frame(frame);
        assert!(recorder.preroll.len() <= MAX_RING_FRAMES);
    }
}

/// Timestamps that never advance (all 0): no keyframe is ever old enough to drop
/// before, yet the ring stays bounded.
#[test]
fn preroll_stays_bounded_when_timestamps_stand_still() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    let frames = f.frames();
    for i in 0..10_000 {
        let frame = &frames[i % frames.len()];
        recorder.on_frame(Arc::new(Frame {
            pts: 0,
            wall_micros: START,
            ..(**frame).clone()
        }));
        assert!(recorder.preroll.len() <= MAX_RING_FRAMES);
    }
}

/// Big frames hit the byte cap long before the frame cap; the ring then drops whole
/// keyframe groups from its front and still starts at a keyframe.
#[test]
fn preroll_stays_bounded_in_bytes() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    // One shared megabyte: 200 frames "hold" 200 MB without allocating it.
    let megabyte = bytes::Bytes::from(vec![0u8; 1024 * 1024]);
    for frame in f.frames().iter().cycle().take(200) {
        recorder.on_frame(Arc::new(Frame {
            pts: 0,
            data: megabyte.clone(),
            ..(**frame).clone()
        }));
        assert!(recorder.preroll.bytes() <= MAX_RING_BYTES);
    }
    assert!(recorder.preroll.front().expect("frames kept").is_key);
}

/// Continuous mode, timestamps that stand still and no second keyframe: the held
/// frames are written out anyway instead of piling up in memory.
#[test]
fn continuous_recording_writes_frames_whose_timestamps_stand_still() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Continuous, Duration::from_secs(600));
    let frames = f.keyframe_then(10_000, |_, p| Frame {
        pts: 0,
        ..p.clone()
    });
    let sent = frames.len() as u64;
    for frame in frames {
        recorder.on_frame(frame);
    }
    let open = recorder.open.as_ref().expect("recording");
    assert!(
        open.entry.frames + 256 >= sent,
        "{} of {sent} frames written",
        open.entry.frames
    );
}

/// An event that ends mid-group (at 1.4 s, keyframes at 1.0 s and 2.0 s) and a
/// trigger at 1.6 s: the second recording reaches back to the 1.0 s keyframe, so
/// nothing from 1.4 s to 2.0 s is missing from both files.
#[test]
fn a_trigger_soon_after_an_event_ended_mid_group_keeps_its_preroll() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    recorder.pre_roll = Duration::from_secs(1);
    recorder.post_roll = Duration::ZERO;
    for (i, frame) in f.frames().into_iter().enumerate() {
        f.clock
            .advance_micros(frame.wall_micros - f.clock.now_micros());
        match i {
            12 => recorder.on_trigger(Trigger::External, None, Duration::from_millis(200)),
            16 => recorder.on_trigger(Trigger::External, None, Duration::from_millis(600)),
            _ => {}
        }
        recorder.on_frame(frame);
    }
    let mut recordings = f.index.all_recordings().expect("recordings");
    recordings.sort_by_key(|r| r.start_micros);
    assert_eq!(recordings.len(), 2, "{recordings:?}");
    assert_eq!(recordings[0].end_micros, START + 1_400_000);
    assert!(
        recordings[1].start_micros <= START + 1_400_000,
        "the second recording starts at {} s",
        (recordings[1].start_micros - START) as f64 / 1e6
    );
}

/// The camera changes its parameters at the keyframe at 2.0 s, and a trigger at 2.5 s
/// reaches back 5 s: the recording starts at the new parameters' first keyframe, so
/// its one sample entry fits every frame in it.
#[test]
fn preroll_does_not_reach_back_across_new_parameters() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    recorder.post_roll = Duration::ZERO;
    let frames = f.frames();
    let old = frames[0].params.clone();
    let new = Arc::new(VideoParams {
        width: old.width / 2,
        ..(*old).clone()
    });
    for (i, frame) in frames.into_iter().enumerate() {
        let frame = if i >= 20 {
            Arc::new(Frame {
                params: new.clone(),
                ..(*frame).clone()
            })
        } else {
            frame
        };
        f.clock
            .advance_micros(frame.wall_micros - f.clock.now_micros());
        if i == 25 {
            recorder.on_trigger(Trigger::External, None, Duration::from_millis(200));
        }
        recorder.on_frame(frame);
    }
    let recordings = f.index.all_recordings().expect("recordings");
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let r = &recordings[0];
    let mut reader = f.store.open_recording(&camera(), r.id).expect("open");
    let parsed = reader.parse().expect("parse");
    assert_eq!(
        (parsed.track.width, r.start_micros),
        (new.width, START + 2_000_000),
        "the file holds only frames with the new parameters"
    );
}

/// Frames 15..18 are lost upstream; a trigger at 2.5 s reaching back 5 s starts its
/// recording at the first keyframe after the hole, not before it.
#[test]
fn preroll_does_not_reach_back_across_a_gap() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    recorder.post_roll = Duration::ZERO;
    for (i, frame) in f.frames().into_iter().enumerate() {
        f.clock
            .advance_micros(frame.wall_micros - f.clock.now_micros());
        match i {
            15..=17 => continue,
            18 => super::handle(&mut recorder, super::RecorderInput::Gap),
            25 => recorder.on_trigger(Trigger::External, None, Duration::from_millis(200)),
            _ => {}
        }
        recorder.on_frame(frame);
    }
    let recordings = f.index.all_recordings().expect("recordings");
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    assert_eq!(recordings[0].start_micros, START + 2_000_000);
}

/// The camera's clock ran ahead of the host's (20 s after days of drift): a trigger
/// still records, because the event's end is on the frames' clock.
#[test]
fn a_trigger_records_when_the_camera_clock_runs_ahead_of_the_host() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Events, Duration::from_secs(600));
    recorder.pre_roll = Duration::from_secs(1);
    recorder.post_roll = Duration::from_millis(300);
    for (i, frame) in f.frames().into_iter().enumerate() {
        let host = frame.wall_micros - 20_000_000;
        f.clock.advance_micros(host - f.clock.now_micros());
        if i == 20 {
            recorder.on_trigger(Trigger::External, None, Duration::from_millis(200));
        }
        recorder.on_frame(frame);
    }
    let recordings = f.index.all_recordings().expect("recordings");
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    assert_eq!(recordings[0].start_micros, START + 1_000_000);
    assert_eq!(
        recordings[0].frames, 15,
        "frames 10..25, as on a true clock"
    );
}

/// End-to-end mode turned on while a continuous recording is open: the video captured
/// after it must not wait for the roll-over (minutes away) to be sealed to the
/// viewers. The recording rolls over at the next keyframe.
#[test]
fn turning_end_to_end_on_rolls_the_open_recording_over_at_the_next_keyframe() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Continuous, Duration::from_secs(600));
    let frames = f.frames();
    let end_pts = frames.last().map_or(0, |l| l.pts) + 9000;
    let mut frames = frames.into_iter();
    for frame in frames.by_ref().take(15) {
        recorder.on_frame(frame);
    }
    f.enable_end_to_end();
    for frame in frames {
        recorder.on_frame(frame);
    }
    recorder.close(Some(end_pts), "test end");

    let entries = f.index.all_recordings().expect("entries");
    assert_eq!(entries.len(), 2, "{entries:?}");
    let status = |e: &RecordingEntry| f.store.status(&camera(), e.id);
    assert_eq!(status(&entries[0]), FileStatus::Readable);
    assert_eq!(entries[0].frames, 20, "up to the keyframe after the change");
    assert_eq!(entries[0].end_micros, START + 2_000_000);
    assert!(matches!(status(&entries[1]), FileStatus::EndToEnd(_)));
    assert_eq!(entries[1].start_micros, START + 2_000_000);
    assert_eq!(
        entries[1].frames,
        f.stream.samples.len() as u64 - 20,
        "every later frame is sealed to the viewer"
    );
}

/// A picture taken while end-to-end mode was on stays sealed to the viewers when
/// the mode is turned off before its event closes.
#[test]
fn a_thumbnail_taken_while_end_to_end_was_on_stays_sealed_to_the_viewers() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Continuous, Duration::from_secs(600));
    let mut frames = f.frames().into_iter();
    for frame in frames.by_ref().take(5) {
        recorder.on_frame(frame);
    }
    f.enable_end_to_end();
    recorder.on_motion(super::machine::MotionUpdate {
        score: 0.5,
        active: true,
        started_micros: None,
        thumbnail: Some(b"\xff\xd8 the front door".to_vec()),
    });
    f.store.set_recipients(Vec::new()).expect("turned off");
    for frame in frames {
        recorder.on_frame(frame);
    }
    recorder.close_event(START + 60_000_000);

    let events = f.index.all_events().expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].has_thumbnail);
    assert!(
        matches!(
            f.store.read_thumbnail(&camera(), events[0].id),
            Err(StoreError::EndToEnd { .. })
        ),
        "sealed to the viewer, not the master key"
    );
}

/// The directory's recording files (the camera's directory may not exist).
fn recording_files(f: &Fixture) -> Vec<std::path::PathBuf> {
    let probe = f
        .store
        .recording_path(&camera(), crate::model::RecordingId::random());
    let dir = probe.parent().expect("a camera directory");
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| {
            entries
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension() == probe.extension())
                .collect()
        },
    )
}

/// Which operation of the store's writer a test makes fail.
#[derive(Clone, Copy)]
enum Failing {
    /// The next sync, as a disk's writeback error would.
    Sync,
    /// The next chunk write, as a full or failing disk would.
    Write,
}

/// Records frames 0..12 and syncs (the first ten frames are durable), then writes
/// frames up to 20 and has the next sync or write fail. Returns the recorder (its
/// salvage not yet run), the error, the file and the file's length at the good sync.
fn record_until_io_fails(
    f: &Fixture,
    failing: Failing,
) -> (Recorder, StoreError, std::path::PathBuf, u64) {
    let mut recorder = f.recorder(RecordingMode::Continuous, Duration::from_secs(600));
    let frames = f.frames();
    for frame in frames[..12].iter().cloned() {
        recorder.on_frame(frame);
    }
    let open = recorder.open.as_mut().expect("recording");
    open.sync().expect("the first sync succeeds");
    let path = f.store.recording_path(&camera(), open.entry.id);
    let synced_len = std::fs::metadata(&path).expect("stat").len();
    for frame in frames[12..22].iter().cloned() {
        recorder.on_frame(frame);
    }
    let open = recorder.open.as_mut().expect("recording");
    assert_eq!(
        open.unfinished().entry.frames,
        20,
        "ten more frames written"
    );
    let failed = match failing {
        Failing::Sync => {
            open.writer_for_tests()
                .fail_syncs_for_tests(SyncFault::Every);
            // What `tick` does when the sync interval is up.
            open.sync().expect_err("the sync fails")
        }
        Failing::Write => {
            open.writer_for_tests().fail_writes_for_tests();
            // What `on_frame` does, up to the next fragment's write.
            frames[22..]
                .iter()
                .find_map(|frame| open.push(frame.clone()).err())
                .expect("a write fails")
        }
    };
    (recorder, failed, path, synced_len)
}

/// [`record_until_io_fails`], then the salvage. Checks the salvaged entry keeps
/// only the first ten frames (finished, ending at 1 s) and returns it, its file and
/// the file's length at the good sync.
fn salvage_after_io_fails(
    f: &Fixture,
    failing: Failing,
) -> (RecordingEntry, std::path::PathBuf, u64) {
    let (mut recorder, failed, path, synced_len) = record_until_io_fails(f, failing);
    recorder.fail(failed);

    let mut entries = f.index.all_recordings().expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = entries.remove(0);
    assert_eq!(entry.state, RecordingState::Finished);
    assert_eq!(
        entry.frames, 10,
        "only the frames the good sync made durable"
    );
    assert_eq!(entry.end_micros, START + 1_000_000);
    (entry, path, synced_len)
}

/// Checks the file at `path` ends right after `synced_len` with its final chunk and
/// plays the first ten frames of the stream.
fn assert_cut_back_and_readable(f: &Fixture, entry: &RecordingEntry, path: &Path, synced_len: u64) {
    let final_chunk = 21;
    let file_len = std::fs::metadata(path).expect("stat").len();
    assert_eq!(
        file_len,
        synced_len + final_chunk,
        "nothing past the good sync"
    );
    assert_eq!(entry.bytes, file_len);
    assert_eq!(f.store.needs_recovery(path).expect("readable"), None);
    let mut reader = f.store.open_recording(&camera(), entry.id).expect("open");
    let parsed = reader.parse().expect("parse");
    assert_eq!(parsed.samples.len(), 10);
    for (i, s) in parsed.samples.iter().enumerate() {
        let mut data = vec![0; s.size as usize];
        reader.read_exact_at(s.offset, &mut data).expect("decrypts");
        assert_eq!(data, f.stream.samples[i].data, "frame {i}");
    }
}

/// After a failed fsync the frames written since the last good one still read back
/// from the page cache, but may never reach the disk: the salvage keeps only what
/// the last successful sync made durable, so no authentic final chunk can end up
/// after a hole of lost chunks.
#[test]
fn a_failed_sync_cuts_the_recording_back_to_the_last_good_sync() {
    let f = fixture();
    let (entry, path, synced_len) = salvage_after_io_fails(&f, Failing::Sync);
    assert_cut_back_and_readable(&f, &entry, &path, synced_len);
}

/// The same in end-to-end mode, where the daemon cannot read the file back: the
/// file is cut back all the same and the entry counts only the synced frames.
#[test]
fn a_failed_sync_cuts_an_end_to_end_recording_back_to_the_last_good_sync() {
    let f = fixture();
    f.enable_end_to_end();
    let (entry, path, synced_len) = salvage_after_io_fails(&f, Failing::Sync);
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), synced_len);
    assert_eq!(entry.bytes, synced_len);
}

/// A failed write is treated as a failed sync: the disk that refused it may have
/// failed the writeback of the unsynced chunks before it too (which no later fsync
/// reports), so they are not kept however well they read back.
#[test]
fn a_failed_write_cuts_the_recording_back_to_the_last_good_sync() {
    let f = fixture();
    let (entry, path, synced_len) = salvage_after_io_fails(&f, Failing::Write);
    assert_cut_back_and_readable(&f, &entry, &path, synced_len);
}

/// A sync fails and the salvage cannot cut the file back either (here a directory
/// stands in the file's place meanwhile, so it cannot be opened for writing; root
/// passes any permission check). The recording is left open, and start-up recovery
/// cuts it back to the last good sync rather than keeping the unsynced chunks that
/// still authenticate from the page cache.
#[test]
fn a_recording_the_salvage_cannot_cut_back_is_cut_back_at_start_up() {
    let f = fixture();
    let (mut recorder, failed, path, synced_len) = record_until_io_fails(&f, Failing::Sync);
    let aside = path.with_extension("aside");
    std::fs::rename(&path, &aside).expect("move the file aside");
    std::fs::create_dir(&path).expect("a directory in its place");
    recorder.fail(failed);
    std::fs::remove_dir(&path).expect("remove the directory");
    std::fs::rename(&aside, &path).expect("put the file back");
    let entries = f.index.all_recordings().expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].state, RecordingState::Open, "left for start-up");
    assert!(
        std::fs::metadata(&path).expect("stat").len() > synced_len,
        "the unsynced chunks are still in the file"
    );

    let report = crate::check::recover(&f.store, &f.index).expect("recover");
    let entry = f
        .index
        .get_recording(entries[0].id)
        .expect("index")
        .expect("kept");
    assert_eq!(entry.state, RecordingState::Finished, "{report}");
    assert_eq!(entry.durable_len, None);
    assert_eq!(entry.frames, 10, "only what the good sync made durable");
    assert_cut_back_and_readable(&f, &entry, &path, synced_len);
}

/// A recording that cannot start (here its video parameters make no valid MP4
/// track) leaves neither an `Open` entry nor a header-only file behind, however
/// many keyframes try again.
#[test]
fn a_recording_that_cannot_start_leaves_no_entry_and_no_file() {
    let f = fixture();
    let mut recorder = f.recorder(RecordingMode::Continuous, Duration::from_secs(600));
    let bad = Arc::new(VideoParams {
        codec: "avc1".into(),
        width: 70_000,
        height: 10,
        sample_entry: f.stream.track.sample_entry.clone(),
    });
    let mut keyframes = 0;
    for frame in f.frames() {
        keyframes += usize::from(frame.is_key);
        recorder.on_frame(Arc::new(Frame {
            params: bad.clone(),
            ..(*frame).clone()
        }));
    }
    assert!(keyframes >= 2, "several starts were tried");
    assert!(recorder.open.is_none());
    assert!(recorder.problem.is_some(), "the problem is shown");
    assert_eq!(f.index.all_recordings().expect("entries"), vec![]);
    assert_eq!(recording_files(&f), Vec::<std::path::PathBuf>::new());
}

/// End-to-end mode, closing fails at its last fsync after the held frames were
/// written and synced: the file holds them, so it is kept (not discarded as empty)
/// and its entry counts them.
#[test]
fn a_recording_whose_closing_fsync_fails_keeps_the_frames_written_at_close() {
    let f = fixture();
    f.enable_end_to_end();
    let mut recorder = f.recorder(RecordingMode::Continuous, Duration::from_secs(600));
    let frames = f.frames();
    // Three frames, all still held (less than half a second).
    for frame in frames[..3].iter().cloned() {
        recorder.on_frame(frame);
    }
    recorder
        .open
        .as_mut()
        .expect("recording")
        .writer_for_tests()
        .fail_syncs_for_tests(SyncFault::Closing);
    recorder.close(Some(frames[3].pts), "test end");

    let entries = f.index.all_recordings().expect("entries");
    assert_eq!(entries.len(), 1, "the file is kept: {entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.state, RecordingState::Finished);
    assert_eq!(entry.frames, 3);
    assert_eq!(entry.end_micros, START + 300_000);
    let path = f.store.recording_path(&camera(), entry.id);
    assert_eq!(entry.bytes, std::fs::metadata(&path).expect("stat").len());
}
