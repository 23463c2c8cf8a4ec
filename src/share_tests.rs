use super::*;
use crate::clock::SimulatedClock;
use crate::index::{RecordingEntry, UserId};
use crate::model::Trigger;
use crate::store::mp4::ReadAt;
use crate::store::NewRecording;

const HOUR: Duration = Duration::from_secs(3600);

/// Something another request does, run (once) the next time the links' clock is read.
type Hook = Arc<std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>>;

/// The links' clock: the simulated time, and the hook.
struct HookedClock {
    time: SimulatedClock,
    hook: Hook,
}

impl crate::clock::Clock for HookedClock {
    fn now_micros(&self) -> i64 {
        let hook = self.hook.lock().expect("hook").take();
        if let Some(run) = hook {
            run();
        }
        self.time.now_micros()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    shares: Shares,
    store: Arc<Store>,
    clock: SimulatedClock,
    hook: Hook,
    recording: RecordingId,
    body: Vec<u8>,
    owner: Actor,
}

fn fixture() -> Fixture {
    let (dir, store, index) = crate::testutil::store_and_index();
    let store = Arc::new(store);
    let clock = SimulatedClock::new(1_000_000_000);
    let camera: crate::model::CameraId = "porch".parse().expect("name");
    let id = RecordingId(11);
    let (mut writer, wrapped_key) = store
        .create_recording(&NewRecording {
            id,
            camera: camera.clone(),
            start_micros: 5,
            trigger: Trigger::Motion,
        })
        .expect("create");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
    writer.write_all(&body).expect("write");
    let finished = writer.finish().expect("finish");
    index
        .put_recording(&RecordingEntry {
            id,
            camera,
            start_micros: 5,
            end_micros: 10,
            frames: 1,
            bytes: finished.file_len,
            trigger: Trigger::Motion,
            wrapped_key,
            state: RecordingState::Finished,
            durable_len: None,
        })
        .expect("index");
    let audit = Audit::new(index.clone(), Arc::new(clock.clone()));
    let hook = Hook::default();
    let links_clock = HookedClock {
        time: clock.clone(),
        hook: hook.clone(),
    };
    let shares = Shares::new(store.clone(), index, Arc::new(links_clock), audit);
    Fixture {
        _dir: dir,
        shares,
        store,
        clock,
        hook,
        recording: id,
        body,
        owner: Actor::user(UserId(1), "owner", None),
    }
}

fn ip() -> IpAddr {
    "192.0.2.1".parse().expect("ip")
}

fn read_all(mut r: RecordingReader) -> Vec<u8> {
    let mut out = vec![0u8; r.len() as usize];
    r.read_exact_at(0, &mut out).expect("read");
    out
}

#[test]
fn the_link_secret_opens_the_copy_and_unsharing_cuts_viewers_off() {
    let f = fixture();
    let link = f
        .shares
        .create(&f.owner, f.recording, HOUR, None)
        .expect("create");
    let token = f
        .shares
        .open(link.id, &link.secret, ip())
        .expect("open")
        .token;
    assert_eq!(f.shares.viewer_link(&token), Some(link.id));
    assert_eq!(
        read_all(f.shares.reader(link.id, &token).expect("reader")),
        f.body
    );
    // A token is for its own link only.
    assert!(matches!(
        f.shares.reader(link.id ^ 1, &token),
        Err(ShareError::NotFound)
    ));
    assert!(f.shares.unshare(link.id, &f.owner).expect("unshare"));
    assert!(!f.store.share_path(link.id).exists(), "the copy is gone");
    assert!(matches!(
        f.shares.reader(link.id, &token),
        Err(ShareError::NotFound)
    ));
    assert!(matches!(
        f.shares.open(link.id, &link.secret, ip()),
        Err(ShareError::NotFound)
    ));
    assert!(!f.shares.unshare(link.id, &f.owner).expect("again"));
}

#[test]
fn revoking_a_cameras_links_cuts_their_viewers_off_and_leaves_other_cameras() {
    let f = fixture();
    let link = f
        .shares
        .create(&f.owner, f.recording, HOUR, None)
        .expect("create");
    let token = f
        .shares
        .open(link.id, &link.secret, ip())
        .expect("open")
        .token;
    let yard: CameraId = "yard".parse().expect("name");
    assert_eq!(f.shares.revoke_all_of(Some(&yard)).expect("revoke"), 0);
    assert!(f.shares.reader(link.id, &token).is_ok(), "another camera's");
    let porch: CameraId = "porch".parse().expect("name");
    assert_eq!(f.shares.revoke_all_of(Some(&porch)).expect("revoke"), 1);
    assert!(!f.store.share_path(link.id).exists(), "the copy is gone");
    assert!(matches!(
        f.shares.reader(link.id, &token),
        Err(ShareError::NotFound)
    ));
    assert_eq!(f.shares.viewer_link(&token), None);
    assert_eq!(f.shares.revoke_all_of(None).expect("again"), 0);
}

#[test]
fn the_periodic_purge_forgets_expired_viewers_and_their_secrets() {
    let f = fixture();
    let link = f
        .shares
        .create(&f.owner, f.recording, 24 * HOUR, None)
        .expect("create");
    let token = f
        .shares
        .open(link.id, &link.secret, ip())
        .expect("open")
        .token;
    assert_eq!(f.shares.viewers().len(), 1);
    f.clock.advance_micros(2 * HOUR.as_micros() as i64);
    assert_eq!(
        f.shares.purge_expired().expect("purge"),
        0,
        "the link lives"
    );
    assert!(
        f.shares.viewers().is_empty(),
        "no viewer, so no secret, is left in memory"
    );
    assert_eq!(f.shares.viewer_link(&token), None);
}

#[test]
fn wrong_secrets_get_the_same_answer_as_unknown_links_and_are_throttled() {
    let f = fixture();
    let link = f
        .shares
        .create(&f.owner, f.recording, HOUR, None)
        .expect("create");
    let mut wrong = link.secret.to_string().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).expect("hex");
    let mut throttled = false;
    for attempt in 0..20 {
        match f.shares.open(link.id, &wrong, ip()) {
            Err(ShareError::NotFound) => {}
            Err(ShareError::Throttled { .. }) => {
                throttled = true;
                assert!(attempt >= 3, "a few mistakes are allowed");
                break;
            }
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
    }
    assert!(throttled, "guessing gets throttled");
    assert!(matches!(
        f.shares
            .open(link.id ^ 1, "zz", "192.0.2.9".parse().expect("ip")),
        Err(ShareError::NotFound)
    ));
    // Another address is not affected, and the right secret works.
    assert!(f
        .shares
        .open(link.id, &link.secret, "192.0.2.2".parse().expect("ip"))
        .is_ok());
}

#[test]
fn links_expire_and_view_limits_hold_and_the_copies_are_deleted() {
    let f = fixture();
    let limited = f
        .shares
        .create(&f.owner, f.recording, HOUR, Some(1))
        .expect("create");
    let timed = f
        .shares
        .create(&f.owner, f.recording, HOUR, None)
        .expect("create");
    let token = f
        .shares
        .open(limited.id, &limited.secret, ip())
        .expect("1st")
        .token;
    assert!(matches!(
        f.shares.open(limited.id, &limited.secret, ip()),
        Err(ShareError::NotFound)
    ));
    assert!(
        f.shares.reader(limited.id, &token).is_ok(),
        "the one allowed viewer keeps watching"
    );
    assert_eq!(f.shares.list().expect("list").len(), 2);
    f.clock.advance_micros(HOUR.as_micros() as i64);
    assert!(f.shares.list().expect("list").is_empty(), "both gone");
    assert!(!f.store.share_path(limited.id).exists());
    assert!(!f.store.share_path(timed.id).exists());
    assert!(f.shares.reader(limited.id, &token).is_err());
    assert!(matches!(
        f.shares.create(&f.owner, f.recording, Duration::ZERO, None),
        Err(ShareError::Invalid(_))
    ));
}

/// A link whose copy is made while its camera's recordings are bulk-deleted (from
/// another tab) is saved after the deletion listed the links to revoke: it must not
/// outlive the footage.
#[test]
fn a_link_made_while_its_camera_is_bulk_deleted_does_not_outlive_the_deletion() {
    let f = fixture();
    let (store, index, shares) = (
        f.store.clone(),
        f.shares.inner.index.clone(),
        f.shares.clone(),
    );
    // The clock is read once the copy is made, right before the link is saved.
    *f.hook.lock().expect("hook") = Some(Box::new(move || {
        let porch: CameraId = "porch".parse().expect("name");
        crate::deletion::delete_camera(&store, &index, &shares, &porch).expect("delete");
    }));
    let made = f.shares.create(&f.owner, f.recording, HOUR, None);
    assert!(
        matches!(made, Err(ShareError::NoSuchRecording(r)) if r == f.recording),
        "{:?}",
        made.map(|l| l.id)
    );
    assert!(f
        .shares
        .inner
        .index
        .all_shares()
        .expect("shares")
        .is_empty());
    assert_eq!(
        f.store.share_copies_bytes().expect("measure"),
        0,
        "no copy left"
    );
}

/// A recording that cannot be shredded fails the bulk deletion, but must not keep the
/// camera's links alive.
#[test]
fn a_failed_bulk_deletion_still_revokes_the_cameras_links() {
    let f = fixture();
    let link = f
        .shares
        .create(&f.owner, f.recording, HOUR, None)
        .expect("create");
    let porch: CameraId = "porch".parse().expect("name");
    // Its header's magic gone: the store refuses to shred what it cannot recognise.
    let path = f.store.recording_path(&porch, f.recording);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[..4].copy_from_slice(b"XXXX");
    std::fs::write(&path, bytes).expect("write");
    let index = f.shares.inner.index.clone();
    let deleted = crate::deletion::delete_camera(&f.store, &index, &f.shares, &porch);
    assert!(deleted.is_err(), "the unshreddable recording is reported");
    assert!(
        index.all_shares().expect("shares").is_empty(),
        "the link is revoked"
    );
    assert!(!f.store.share_path(link.id).exists(), "its copy is gone");
}
