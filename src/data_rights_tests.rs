//! The archive of everything on a real store and sled index in a temp dir.

use super::*;
use crate::index::RecordingEntry;
use crate::model::{CameraId, RecordingId, Trigger};
use crate::store::mp4::testutil::{synthetic_track, write_recording};
use crate::store::mp4::Sample;
use crate::store::NewRecording;

/// A finished recording of 20 frames of 30 kB (several 64 KiB sealed chunks of video
/// after its first fragment's header), sealed by the store and indexed.
fn put_recording(store: &Store, index: &Index, camera: &str, start_micros: i64) -> RecordingId {
    let samples: Vec<Sample> = (0..20u8)
        .map(|i| Sample {
            duration: 9000,
            is_sync: i % 10 == 0,
            data: bytes::Bytes::from(vec![i; 30_000]),
        })
        .collect();
    let (body, _) = write_recording(&synthetic_track(), &samples, &[10], 0);
    let camera: CameraId = camera.parse().expect("name");
    let id = RecordingId::random();
    let (mut writer, wrapped_key) = store
        .create_recording(&NewRecording {
            id,
            camera: camera.clone(),
            start_micros,
            trigger: Trigger::Motion,
        })
        .expect("create");
    writer.write_all(&body).expect("write");
    let finished = writer.finish().expect("finish");
    index
        .put_recording(&RecordingEntry {
            id,
            camera,
            start_micros,
            end_micros: start_micros + 2_000_000,
            frames: 20,
            bytes: finished.file_len,
            trigger: Trigger::Motion,
            wrapped_key,
            state: RecordingState::Finished,
            durable_len: None,
        })
        .expect("index");
    id
}

/// The entries of a ustar archive: (name, bytes).
fn untar(mut archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    while archive.len() >= 512 && archive[0] != 0 {
        let header = &archive[..512];
        let name = String::from_utf8_lossy(&header[..100])
            .trim_end_matches('\0')
            .to_owned();
        let size_text = String::from_utf8_lossy(&header[124..136]);
        let size = usize::from_str_radix(size_text.trim_matches(|c| c == '\0' || c == ' '), 8)
            .expect("octal size");
        entries.push((name, archive[512..512 + size].to_vec()));
        archive = &archive[512 + size.div_ceil(512) * 512..];
    }
    entries
}

#[test]
fn a_damaged_chunk_leaves_one_recording_out_of_the_archive_not_the_rest() {
    let (_dir, store, index) = crate::testutil::store_and_index();
    let damaged = put_recording(&store, &index, "door", 1_000_000);
    let intact = put_recording(&store, &index, "door", 5_000_000);
    // One byte a quarter into the file: in the middle of the first fragment's video
    // (300 kB after its header), not in a chunk holding a sample table, so the
    // recording still opens and is laid out.
    let path = store.recording_path(&"door".parse().expect("name"), damaged);
    let mut sealed = std::fs::read(&path).expect("read");
    let inside_the_video = sealed.len() / 4;
    sealed[inside_the_video] ^= 0x40;
    std::fs::write(&path, &sealed).expect("write");

    let mut archive = Vec::new();
    let summary = write_everything(&store, &index, 10_000_000, &mut archive, None)
        .expect("the archive is written");
    assert_eq!((summary.recordings, summary.failed), (1, 1));
    let entries = untar(&archive);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&format!("recordings/door/{intact}.mp4").as_str()),
        "{names:?}"
    );
    assert!(
        !names.contains(&format!("recordings/door/{damaged}.mp4").as_str()),
        "{names:?}"
    );
    let errors = entries
        .iter()
        .find(|(n, _)| n == "export-errors.txt")
        .map(|(_, e)| String::from_utf8_lossy(e).into_owned())
        .expect("export-errors.txt");
    assert!(errors.contains(&format!("recording {damaged}")), "{errors}");
}

/// A clock that, once armed, opens two events each time it is read: cameras starting
/// to record while an erase runs (the erase reads it for each link it unshares).
struct EventsMeanwhile {
    index: Index,
    armed: std::sync::atomic::AtomicBool,
    next: std::sync::atomic::AtomicU64,
}

impl crate::clock::Clock for EventsMeanwhile {
    fn now_micros(&self) -> i64 {
        use std::sync::atomic::Ordering;
        if self.armed.load(Ordering::SeqCst) {
            for _ in 0..2 {
                let id = crate::model::EventId(1000 + self.next.fetch_add(1, Ordering::SeqCst));
                self.index
                    .put_event(&EventEntry {
                        id,
                        camera: "yard".parse().expect("name"),
                        start_micros: 9_000_000,
                        end_micros: 9_000_000,
                        triggers: vec![Trigger::Motion],
                        peak_score: 0.5,
                        score_curve: Vec::new(),
                        has_thumbnail: false,
                        recordings: Vec::new(),
                        open: true,
                    })
                    .expect("event");
            }
        }
        5_000_000
    }
}

/// An owner's full session, as erasing needs it.
fn owner_session(index: &Index) -> Session {
    use crate::index::{SessionEntry, SessionStage};
    let user = UserEntry {
        id: UserId(1),
        username: "owner".into(),
        role: Role::Owner,
        password_hash: String::new(),
        email: None,
        totp: None,
        recovery_codes: Vec::new(),
        created_micros: 0,
        known_devices: Vec::new(),
        support: None,
        reenrolment: None,
    };
    index.create_user(&user).expect("owner");
    Session {
        key: [7; 32],
        entry: SessionEntry {
            user: user.id,
            stage: SessionStage::Full,
            created_micros: 0,
            last_seen_micros: 0,
            csrf: String::new(),
            ip: "192.0.2.1".into(),
            last_ip: None,
            user_agent: String::new(),
            device: String::new(),
            pending_totp: None,
        },
        user,
    }
}

#[test]
fn events_opened_while_erasing_do_not_break_the_count_of_those_erased() {
    use std::sync::Arc;
    let (dir, store, index) = crate::testutil::store_and_index();
    let store = Arc::new(store);
    let owner = owner_session(&index);
    let recording = put_recording(&store, &index, "porch", 1_000_000);
    crate::testutil::event_of(
        &store,
        &index,
        &"porch".parse().expect("name"),
        recording,
        1,
    );
    let clock = Arc::new(EventsMeanwhile {
        index: index.clone(),
        armed: false.into(),
        next: 0.into(),
    });
    let audit = crate::audit::Audit::new(index.clone(), clock.clone());
    let shares = Shares::new(store.clone(), index.clone(), clock.clone(), audit);
    let link = shares
        .create(
            &session_actor(&owner),
            recording,
            std::time::Duration::from_secs(3600),
            None,
        )
        .expect("share");
    let auth = Auth::new(
        index.clone(),
        store.clone(),
        Arc::new(crate::clock::SimulatedClock::new(5_000_000)),
        crate::auth::Lifetimes {
            idle: std::time::Duration::from_secs(3600),
            max: std::time::Duration::from_secs(86400),
        },
        dir.path().join("data"),
        None,
    )
    .expect("auth");
    clock.armed.store(true, std::sync::atomic::Ordering::SeqCst);

    let erased = erase_all(&store, &index, &shares, &auth, &owner).expect("erase");
    assert_eq!(erased.recordings, 1);
    assert_eq!(erased.share_links, 1);
    assert_eq!(
        erased.events, 1,
        "the one event there was, not those opened since"
    );
    let opened = index.all_events().expect("events");
    assert!(
        !opened.is_empty() && opened.iter().all(|e| e.open && e.id != EventId(1)),
        "only the events opened meanwhile are left: {opened:?}"
    );
    assert!(!store.share_path(link.id).exists());
}
