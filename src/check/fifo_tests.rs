//! A FIFO planted under a recording's (or a viewer key file's) name: every reader
//! refuses it at once instead of blocking in `open` (see `store/regular.rs`).

use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::index::RecordingState;
use crate::model::CameraId;
use crate::testutil::{placeholder_entry, store_and_index as fixture};

/// Longer than any of these steps takes on a loaded machine; a hang is for ever.
const DEADLINE: Duration = Duration::from_secs(60);

fn mkfifo(path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
}

/// Start-up recovery, `check`, `check --repair`, `check --rebuild-index`, the
/// viewer key files, playback and shredding each finish with the FIFO reported. Run
/// on another thread, each step against a deadline, so that a regression fails
/// here rather than hanging the test run.
#[test]
fn a_fifo_named_like_a_recording_is_reported_and_never_hangs_a_reader() {
    let (done, steps) = mpsc::channel::<(&'static str, String, &'static str)>();
    std::thread::spawn(move || {
        let (_dir, store, index) = fixture();
        let camera: CameraId = "porch".parse().expect("name");
        let (unindexed, open) = (RecordingId(90), RecordingId(91));
        mkfifo(&store.recording_path(&camera, unindexed));
        mkfifo(&store.recording_path(&camera, open));
        let viewers = store.recording_path(&camera, open);
        let viewers = viewers
            .ancestors()
            .nth(3)
            .expect("data dir")
            .join("viewers");
        mkfifo(&viewers.join("0123456789abcdef.plv"));
        index
            .put_recording(&placeholder_entry(open, RecordingState::Open))
            .expect("index");
        let shown =
            |r: Result<Report, CheckError>| r.map_or_else(|e| e.to_string(), |r| r.to_string());
        let fifo = "is a FIFO, not a regular file";
        let _ = done.send(("start-up recovery", shown(recover(&store, &index)), fifo));
        let _ = done.send(("check", shown(compare(&store, &index, false)), fifo));
        let _ = done.send(("check --repair", shown(compare(&store, &index, true)), fifo));
        let _ = done.send((
            "check --rebuild-index",
            shown(rebuild(&store, &index)),
            fifo,
        ));
        let viewers = store.saved_viewers().map(|v| v.len());
        let _ = done.send(("viewer key files", format!("{viewers:?}"), "Ok(0)"));
        let playback = store.open_recording(&camera, unindexed).err();
        let playback = playback.map_or("opened".into(), |e| e.to_string());
        let _ = done.send(("playback", playback, fifo));
        let shred = store.shred(&camera, unindexed).err();
        let shred = shred.map_or("shredded".into(), |e| e.to_string());
        // Shredding removes the FIFO itself (it holds no key), without opening it.
        let _ = done.send(("shredding", shred, "shredded"));
    });
    let mut last = "the fixture";
    for _ in 0..7 {
        let (step, outcome, expected) = steps
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("the step after {last} hung on a FIFO"));
        assert!(outcome.contains(expected), "{step}: {outcome}");
        last = step;
    }
}
