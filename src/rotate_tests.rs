//! The rotation service on a real store, key directory and sled index in a temp dir:
//! what it leaves alone, and that it stops (unfinished) rather than leave behind a
//! file only the old key opens.

use std::fs;
use std::path::Path;

use super::*;
use crate::model::{CameraId, EventId, RecordingId, Trigger};
use crate::store::crypto::MasterKey;
use crate::store::NewRecording;

fn config(dir: &Path) -> Config {
    let text = format!(
        "data_dir = \"{}\"\nkey_dir = \"{}\"\n[retention]\nmin_free_percent = 0\n",
        dir.join("data").display(),
        dir.join("keys").display()
    );
    Config::parse(&dir.join("porchlight.toml"), &text).expect("config")
}

fn porch() -> CameraId {
    "porch".parse().expect("name")
}

#[test]
fn an_io_error_stops_the_rotation_unfinished_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let old_id = {
        let store = Store::open_or_create(&config.data_dir, &config.key_dir).expect("store");
        store
            .write_thumbnail(&porch(), EventId(3), 0, b"jpeg")
            .expect("thumbnail");
        store.key_id()
    };
    // A directory where a recording file should be: it cannot be opened for writing.
    let blocker = config.data_dir.join("recordings/porch/5.plr");
    fs::create_dir_all(&blocker).expect("mkdir");

    let err = run(&config, None).expect_err("stopped");
    assert!(
        matches!(err, RotateError::Store(StoreError::Io { .. })),
        "{err}"
    );
    assert!(config.key_dir.join("master.key.rotating").exists());
    let refused = Store::open(&config.data_dir, &config.key_dir)
        .err()
        .expect("refused");
    assert!(
        matches!(refused, StoreError::RotationInterrupted { .. }),
        "{refused}"
    );

    fs::remove_dir(&blocker).expect("rmdir");
    let summary = run(&config, None).expect("finished");
    assert!(summary.resumed);
    assert_eq!(summary.thumbnails, 1);
    assert_eq!(summary.old_key_id, old_id.to_string());
    let store = Store::open(&config.data_dir, &config.key_dir).expect("store");
    assert_eq!(store.key_id().to_string(), summary.new_key_id);
    assert_eq!(
        store
            .read_thumbnail(&porch(), EventId(3))
            .expect("opens with the new key"),
        b"jpeg"
    );
}

#[test]
fn files_and_secrets_under_another_key_are_left_alone_and_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    Store::open_or_create(&config.data_dir, &config.key_dir).expect("store");
    // A recording written under some other master key (another installation's).
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = Store::open_or_create(&config.data_dir, other_dir.path()).expect("other");
    let (mut writer, _) = other
        .create_recording(&NewRecording {
            id: RecordingId(8),
            camera: porch(),
            start_micros: 0,
            trigger: Trigger::Motion,
        })
        .expect("create");
    writer.write_all(b"not really video").expect("write");
    writer.finish().expect("finish");
    let path = other.recording_path(&porch(), RecordingId(8));
    let before = fs::read(&path).expect("read");
    let stranger = MasterKey::load(other_dir.path()).expect("key");
    let foreign_seed = hex::encode(stranger.seal_secret(TOTP_PURPOSE, b"seed").expect("seal"));
    drop(other);
    {
        let index = Index::open(&Store::index_dir(&config.data_dir)).expect("index");
        index
            .put_session(
                &[1; 32],
                &crate::index::SessionEntry {
                    user: crate::index::UserId(1),
                    stage: crate::index::SessionStage::Enrolment,
                    created_micros: 0,
                    last_seen_micros: 0,
                    csrf: String::new(),
                    ip: String::new(),
                    user_agent: String::new(),
                    device: String::new(),
                    last_ip: None,
                    pending_totp: Some(foreign_seed.clone()),
                },
            )
            .expect("session");
        index.flush().expect("flush");
    }

    let summary = run(&config, None).expect("rotation finishes");
    assert_eq!(summary.recordings, 0);
    assert_eq!(summary.secrets, 0);
    assert_eq!(summary.left_alone.len(), 2, "{:?}", summary.left_alone);
    assert!(
        summary.left_alone[0].contains("was sealed with master key id"),
        "{summary}"
    );
    assert!(summary.to_string().contains("left alone: "), "{summary}");
    assert_eq!(fs::read(&path).expect("read"), before, "file untouched");
    let index = Index::open(&Store::index_dir(&config.data_dir)).expect("index");
    let session = index.get_session(&[1; 32]).expect("read").expect("session");
    assert_eq!(session.pending_totp, Some(foreign_seed), "secret untouched");
}

/// Reads the whole plaintext of an end-to-end file with `master` and `viewer`.
fn read_e2e(
    path: &Path,
    master: &MasterKey,
    viewer: &crate::store::e2e::ViewerSecret,
) -> Result<Vec<u8>, StoreError> {
    let mut reader = crate::store::reader::SealedReader::open_with(path, master, Some(viewer))?;
    reader.verify_complete()?;
    let mut out = vec![0; reader.plaintext_len() as usize];
    let n = reader.read_at(0, &mut out)?;
    out.truncate(n);
    Ok(out)
}

#[test]
fn end_to_end_files_are_retagged_under_the_new_key_and_a_crash_between_is_finished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let (locked, viewer) = crate::store::writer::testing::quick_viewer("a long passphrase");
    let store = Store::open_or_create(&config.data_dir, &config.key_dir).expect("store");
    store
        .set_recipients(vec![locked.public_key().clone()])
        .expect("enable");
    let mut paths = Vec::new();
    for id in [RecordingId(21), RecordingId(22)] {
        let (mut writer, _) = store
            .create_recording(&NewRecording {
                id,
                camera: porch(),
                start_micros: 0,
                trigger: Trigger::Motion,
            })
            .expect("create");
        writer.write_all(b"end-to-end video").expect("write");
        writer.finish().expect("finish");
        paths.push(store.recording_path(&porch(), id));
    }
    drop(store);
    let old = MasterKey::load(&config.key_dir).expect("old key");

    // A crash after the first file: one tag under the new key, one under the old.
    let err = run(&config, Some(1)).expect_err("stopped");
    assert!(matches!(err, RotateError::Stopped(1)), "{err}");
    let summary = run(&config, None).expect("finished");
    assert!(summary.resumed);
    assert_eq!(
        (summary.recordings, summary.already_done),
        (1, 1),
        "{summary}"
    );
    assert!(summary.left_alone.is_empty(), "{summary}");

    let new = MasterKey::load(&config.key_dir).expect("new key");
    assert_ne!(new.id(), old.id());
    for path in &paths {
        assert_eq!(
            read_e2e(path, &new, &viewer).expect("reads under the new key"),
            b"end-to-end video"
        );
        let err = read_e2e(path, &old, &viewer).expect_err("old key's tag is gone");
        assert!(matches!(err, StoreError::NotAuthentic { .. }), "{err}");
    }
}
