//! `porchlight rotate-master-key` end to end: video recorded from the real GStreamer
//! camera by the real binary, secrets sealed through the real store into the real
//! sled index, the rotation run by the binary, and ffmpeg as the judge of exports.
//! The TOTP login after a rotation goes through the real HTTPS server (webutil).

mod common;
mod webutil;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::camera::{CameraOptions, TestCamera};
use common::{ffmpeg_decode_errors, CameraSpec, Setup};
use porchlight::auth::TOTP_PURPOSE;
use porchlight::config::RecordingMode;
use porchlight::index::{CameraEntry, EventEntry, Index, SessionEntry, SessionStage, UserId};
use porchlight::model::{CameraId, EventId, Trigger};
use porchlight::store::{Store, StoreError};

const STARTED: &str = "recording started";
const INTERRUPTED: &str =
    "a master-key rotation was interrupted; run porchlight rotate-master-key again";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0 a small thumbnail \xff\xd9";
const SESSION_KEY: [u8; 32] = [7; 32];
/// The end of a version 1 key slot (key id at 34..42, wrapped key at 49..121).
const KEY_SLOT_END: usize = 121;

/// Runs the daemon until it has written `count` more recordings' worth of starts.
fn record(setup: &Setup, runs: usize) {
    for _ in 0..runs {
        let mut daemon = setup.start_daemon();
        daemon.wait_for_log(STARTED, 1, Duration::from_secs(30));
        std::thread::sleep(Duration::from_secs(3));
        daemon.stop();
    }
}

fn added_camera() -> CameraId {
    "side-gate".parse().expect("camera name")
}

/// Seals, through the store, what the index keeps under the master key: a camera
/// added in the UI with credentials, and a session's pending TOTP seed; and writes
/// an event thumbnail. Returns the thumbnail's camera and event.
fn seal_secrets_and_thumbnail(setup: &Setup) -> (CameraId, EventId) {
    let store = Store::open(&setup.data_dir(), &setup.key_dir()).expect("store");
    let index = Index::open(&Store::index_dir(&setup.data_dir())).expect("index");
    let id = added_camera();
    let (user_purpose, password_purpose) = CameraEntry::purposes(&id);
    let added = index
        .add_camera(&CameraEntry {
            id: id.clone(),
            url: "rtsp://192.0.2.7/stream".into(),
            sub_url: None,
            mode: RecordingMode::Off,
            sealed_username: Some(store.seal_secret(&user_purpose, b"admin").expect("seal")),
            sealed_password: Some(
                store
                    .seal_secret(&password_purpose, b"hunter2-gate")
                    .expect("seal"),
            ),
            added_micros: 1,
            added_by: UserId(1),
            settings: Default::default(),
        })
        .expect("add camera");
    assert!(added);
    index
        .put_session(
            &SESSION_KEY,
            &SessionEntry {
                user: UserId(1),
                stage: SessionStage::Enrolment,
                created_micros: 1,
                last_seen_micros: 1,
                csrf: "00".into(),
                ip: "127.0.0.1".into(),
                user_agent: "test".into(),
                device: "00".into(),
                last_ip: None,
                pending_totp: Some(
                    store
                        .seal_secret(TOTP_PURPOSE, b"JBSWY3DPEHPK3PXP")
                        .expect("seal"),
                ),
            },
        )
        .expect("session");
    let camera: CameraId = "porch".parse().expect("name");
    let event = EventId(9);
    store
        .write_thumbnail(&camera, event, 1_000_000, JPEG)
        .expect("thumbnail");
    // Its event, or `check` would shred the thumbnail as an orphan.
    index
        .put_event(&EventEntry {
            id: event,
            camera: camera.clone(),
            start_micros: 1_000_000,
            end_micros: 2_000_000,
            triggers: vec![Trigger::Motion],
            peak_score: 0.5,
            score_curve: vec![128],
            has_thumbnail: true,
            recordings: Vec::new(),
            open: false,
        })
        .expect("event");
    index.flush().expect("flush");
    (camera, event)
}

/// Checks, with the key now in the key directory, that every sealed secret and the
/// thumbnail open and that every index copy of a wrapped key equals its file's.
/// Returns the index's recordings.
fn assert_everything_opens(
    setup: &Setup,
    camera: &CameraId,
    event: EventId,
) -> Vec<porchlight::index::RecordingEntry> {
    let store = Store::open(&setup.data_dir(), &setup.key_dir()).expect("store");
    let index = Index::open(&Store::index_dir(&setup.data_dir())).expect("index");
    assert_eq!(
        store.read_thumbnail(camera, event).expect("thumbnail"),
        JPEG
    );
    let entry = index
        .cameras()
        .expect("cameras")
        .into_iter()
        .find(|c| c.id == added_camera())
        .expect("added camera");
    let (user_purpose, password_purpose) = CameraEntry::purposes(&entry.id);
    let open = |purpose: &str, sealed: &Option<String>| {
        store
            .open_secret(purpose, sealed.as_deref().expect("sealed"))
            .expect("opens with the new key")
            .to_vec()
    };
    assert_eq!(open(&user_purpose, &entry.sealed_username), b"admin");
    assert_eq!(
        open(&password_purpose, &entry.sealed_password),
        b"hunter2-gate"
    );
    let session = index
        .get_session(&SESSION_KEY)
        .expect("read")
        .expect("session");
    assert_eq!(
        open(TOTP_PURPOSE, &session.pending_totp),
        b"JBSWY3DPEHPK3PXP"
    );
    let entries = index.all_recordings().expect("recordings");
    for r in &entries {
        let bytes = fs::read(store.recording_path(&r.camera, r.id)).expect("file");
        assert_eq!(
            r.wrapped_key,
            hex::encode(&bytes[49..KEY_SLOT_END]),
            "index copy of recording {}",
            r.id
        );
    }
    entries
}

fn recording_ids(setup: &Setup) -> Vec<String> {
    setup
        .recordings()
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

fn export_and_decode(setup: &Setup) {
    let ids = recording_ids(setup);
    assert!(!ids.is_empty());
    for id in ids {
        let out = setup.export(&id);
        assert_eq!(ffmpeg_decode_errors(&out), "", "recording {id}");
        fs::remove_file(&out).expect("remove export");
    }
}

/// Copies the key directory's master key to `<temp>/old-keys` (mode 0600).
fn save_old_key(setup: &Setup) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = setup.dir.path().join("old-keys");
    fs::create_dir(&dir).expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    let path = dir.join("master.key");
    fs::copy(setup.key_dir().join("master.key"), &path).expect("copy key");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    dir
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn rotation_rewraps_every_key_in_place_and_the_old_key_opens_nothing() {
    let camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(&[CameraSpec::continuous("porch", &camera.main_url())], "");
    record(&setup, 1);

    // While the daemon runs, the rotation refuses before it writes any key.
    let mut daemon = setup.start_daemon();
    daemon.wait_for_log(STARTED, 1, Duration::from_secs(30));
    let refused = setup.cli(&["rotate-master-key"]);
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("is `porchlight serve` running? stop it first"),
        "{}",
        stderr_of(&refused)
    );
    assert!(!setup.key_dir().join("master.key.rotating").exists());
    std::thread::sleep(Duration::from_secs(3));
    daemon.stop();

    let (thumb_camera, event) = seal_secrets_and_thumbnail(&setup);
    let old_keys = save_old_key(&setup);
    let old_id = Store::open(&setup.data_dir(), &old_keys)
        .expect("old store")
        .key_id()
        .to_string();
    let files = setup.recording_files();
    assert_eq!(files.len(), 2, "two daemon runs, two recordings");
    let before: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).expect("read")).collect();

    let summary = setup.cli_ok(&["rotate-master-key"]);
    let new_store = Store::open(&setup.data_dir(), &setup.key_dir()).expect("new store");
    let new_id = new_store.key_id().to_string();
    assert_ne!(old_id, new_id);
    assert!(
        summary.contains("2 recording(s) and 1 thumbnail(s) re-wrapped"),
        "{summary}"
    );
    assert!(summary.contains("3 secret(s) re-sealed"), "{summary}");
    assert!(
        summary.contains(&format!("old key id {old_id}, new key id {new_id}")),
        "{summary}"
    );
    let key_bytes = fs::read(setup.key_dir().join("master.key")).expect("key");
    assert!(
        !summary.contains(&hex::encode(&key_bytes)),
        "no key in output"
    );
    assert!(!setup.key_dir().join("master.key.rotating").exists());

    // Only the key slot changed: same sizes, same video bytes after the header's slot.
    for (file, old) in files.iter().zip(&before) {
        let new = fs::read(file).expect("read");
        assert_eq!(new.len(), old.len(), "{}", file.display());
        assert_eq!(
            new[KEY_SLOT_END..],
            old[KEY_SLOT_END..],
            "{}",
            file.display()
        );
        assert_eq!(new[..34], old[..34]);
        assert_ne!(new[49..KEY_SLOT_END], old[49..KEY_SLOT_END]);
        assert_eq!(hex::encode(&new[34..42]), new_id);
    }

    drop(new_store);
    let entries = assert_everything_opens(&setup, &thumb_camera, event);
    assert_eq!(entries.len(), 2);

    // The saved old key opens nothing, and says why.
    let old_store = Store::open(&setup.data_dir(), &old_keys).expect("old store");
    for r in &entries {
        let err = old_store
            .open_recording(&r.camera, r.id)
            .err()
            .expect("the old key must not open a rotated recording");
        assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("sealed with master key id {new_id}")),
            "{err}"
        );
    }
    assert!(old_store.read_thumbnail(&thumb_camera, event).is_err());
    drop(old_store);
    // The same through the binary, with the old key put back in the key directory.
    let key_file = setup.key_dir().join("master.key");
    fs::copy(old_keys.join("master.key"), &key_file).expect("old key back");
    let out = setup.dir.path().join("with-old-key.mp4");
    let id = entries[0].id.to_string();
    let refused = setup.cli(&[
        "export",
        "--recording",
        &id,
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains(&format!(
            "was sealed with master key id {new_id}, but the loaded master key is {old_id}"
        )),
        "{}",
        stderr_of(&refused)
    );
    assert!(!out.exists());
    fs::write(&key_file, &key_bytes).expect("new key back");

    let check = setup.cli_ok(&["check"]);
    assert!(check.contains("clean: 2 recording(s)"), "{check}");
    export_and_decode(&setup);
}

#[test]
fn an_interrupted_rotation_blocks_serve_check_and_export_until_it_is_run_again() {
    let camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(&[CameraSpec::continuous("porch", &camera.main_url())], "");
    record(&setup, 2);
    let (thumb_camera, event) = seal_secrets_and_thumbnail(&setup);
    let old_id = Store::open(&setup.data_dir(), &setup.key_dir())
        .expect("store")
        .key_id()
        .to_string();
    let ids = recording_ids(&setup);
    assert_eq!(ids.len(), 2);

    let crashed = setup.cli(&["rotate-master-key", "--stop-after-files", "1"]);
    assert!(!crashed.status.success());
    assert!(
        stderr_of(&crashed).contains("stopped on purpose after re-wrapping 1 file(s)"),
        "{}",
        stderr_of(&crashed)
    );
    assert!(setup.key_dir().join("master.key.rotating").exists());
    let slots: Vec<String> = setup
        .recording_files()
        .iter()
        .map(|f| hex::encode(&fs::read(f).expect("read")[34..42]))
        .collect();
    assert_eq!(
        slots.iter().filter(|id| **id == old_id).count(),
        1,
        "exactly one file was re-wrapped before the stop: {slots:?}"
    );

    // Nothing uses either key alone now.
    let out = setup.dir.path().join("refused.mp4");
    let out_str = out.to_str().expect("utf-8");
    for args in [
        &["check"][..],
        &["check", "--repair"],
        &["export", "--recording", &ids[0], "--out", out_str],
    ] {
        let result = setup.cli(args);
        assert!(!result.status.success(), "{args:?}");
        assert!(
            stderr_of(&result).contains(INTERRUPTED),
            "{args:?}: {}",
            stderr_of(&result)
        );
    }
    assert!(!out.exists());
    let serve = serve_until_exit(&setup.config, Duration::from_secs(30));
    assert!(!serve.status.success());
    assert!(
        stderr_of(&serve).contains(INTERRUPTED),
        "{}",
        stderr_of(&serve)
    );

    let summary = setup.cli_ok(&["rotate-master-key"]);
    assert!(
        summary.contains("finished an interrupted rotation"),
        "{summary}"
    );
    assert!(
        summary.contains("1 recording(s) and 1 thumbnail(s) re-wrapped (1 already done)"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("old key id {old_id}")),
        "{summary}"
    );
    assert!(!setup.key_dir().join("master.key.rotating").exists());

    assert_everything_opens(&setup, &thumb_camera, event);
    let check = setup.cli_ok(&["check"]);
    assert!(check.contains("clean: 2 recording(s)"), "{check}");
    export_and_decode(&setup);
    // A second full run finds nothing left under the old key.
    let again = setup.cli_ok(&["rotate-master-key"]);
    assert!(
        again.contains("2 recording(s) and 1 thumbnail(s) re-wrapped (0 already done)"),
        "{again}"
    );
    export_and_decode(&setup);
}

/// `porchlight serve`, which must exit on its own within `limit` (killed otherwise).
fn serve_until_exit(config: &Path, limit: Duration) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_porchlight"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("serve started despite an unfinished rotation");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_logs_in_with_totp_after_a_rotation() {
    let server = webutil::Server::start("").await;
    let (_, secret, _) = server.owner().await;
    let mut server = server;
    server.stop().await;

    let config = server.dir.path().join("porchlight.toml");
    fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nkey_dir = \"{}\"\n[retention]\nmin_free_percent = 0\n",
            server.data_dir().display(),
            server.dir.path().join("keys").display()
        ),
    )
    .expect("config");
    let rotated = Command::new(env!("CARGO_BIN_EXE_porchlight"))
        .args(["rotate-master-key", "--config"])
        .arg(&config)
        .output()
        .expect("run rotate");
    let summary = String::from_utf8_lossy(&rotated.stdout);
    assert!(rotated.status.success(), "{}", stderr_of(&rotated));
    assert!(summary.contains("1 secret(s) re-sealed"), "{summary}");

    let server = server.restart().await;
    // A later TOTP step, so the code is not refused as a replay of the enrolment's.
    server.advance_secs(60);
    let mut c = server.client();
    server.login(&mut c, &secret).await;
}
