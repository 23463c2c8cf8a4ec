//! Opening the store at start-up without ever replacing a lost master key.
//!
//! The daemon used to create `master.key` whenever it was missing. When `key_dir`
//! sits on a disk that did not mount (its mount point still exists) or the key was
//! deleted, that silently made a new key: every earlier recording, TOTP seed and
//! sealed camera password stopped opening, and new recordings went under a key that
//! vanished when the real disk came back. So a key is created only on a true first
//! start: nothing sealed on disk (`Store::first_sealed_file`) and no account,
//! recording, sealed camera credential or end-to-end viewer in the index. Anything
//! else is a refusal that names `key_dir`, and nothing is created — not even a
//! missing `key_dir` (a `mkdir -p` would fill in the mount point of an absent disk).
//!
//! Calls `store` and `index`; wired by `daemon::start` after the index is open.

use std::path::Path;

use super::DaemonError;
use crate::config::Config;
use crate::index::Index;
use crate::store::{Store, StoreError};

/// Opens the store with the existing master key, or creates one on a first start,
/// then tags (once) the end-to-end files written before header tags existed, so
/// that start-up recovery, which runs next, never has to trust an untagged one.
pub(super) fn open_store(config: &Config, index: &Index) -> Result<Store, DaemonError> {
    let store = open_or_create(config, index)?;
    store.tag_untagged_e2e_files()?;
    Ok(store)
}

fn open_or_create(config: &Config, index: &Index) -> Result<Store, DaemonError> {
    match Store::open(&config.data_dir, &config.key_dir) {
        Err(StoreError::MasterKeyMissing { .. }) => {}
        other => return Ok(other?),
    }
    if let Some(found) = existing_data(&config.data_dir, index)? {
        let missing = if config.key_dir.is_dir() {
            format!(
                "master key {} is missing",
                config.key_dir.join("master.key").display()
            )
        } else {
            format!("key directory {} does not exist", config.key_dir.display())
        };
        return Err(DaemonError::MasterKeyLost {
            missing,
            data_dir: config.data_dir.clone(),
            key_dir: config.key_dir.clone(),
            found,
        });
    }
    Ok(Store::open_or_create(&config.data_dir, &config.key_dir)?)
}

/// What in `data_dir` only the lost key could open, described for the error;
/// `None` for a data directory that is new (or holds nothing sealed yet).
fn existing_data(data_dir: &Path, index: &Index) -> Result<Option<String>, DaemonError> {
    if let Some(file) = Store::first_sealed_file(data_dir)? {
        return Ok(Some(format!("sealed files such as {}", file.display())));
    }
    let counts = [
        (index.all_users()?.len(), "account(s)"),
        (index.all_recordings()?.len(), "recording(s)"),
        (
            index
                .cameras()?
                .iter()
                .filter(|c| c.sealed_username.is_some() || c.sealed_password.is_some())
                .count(),
            "camera password(s)",
        ),
        (index.viewer_keys()?.len(), "end-to-end viewer(s)"),
    ];
    let held: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    Ok((!held.is_empty()).then(|| format!("an index with {}", held.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::RecordingState;
    use crate::model::RecordingId;

    fn config(dir: &Path) -> Config {
        let text = format!(
            "data_dir = \"{}\"\nkey_dir = \"{}\"\n",
            dir.join("data").display(),
            dir.join("keys").display()
        );
        let path = dir.join("porchlight.toml");
        std::fs::write(&path, text).expect("write config");
        Config::load(&path).expect("config")
    }

    fn refusal(config: &Config, index: &Index) -> String {
        match open_store(config, index) {
            Ok(_) => panic!("opened with a new key"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_new_data_dir_gets_a_key_and_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let index = Index::open(&Store::index_dir(&config.data_dir)).expect("index");
        let first = open_store(&config, &index).expect("first start").key_id();
        let again = open_store(&config, &index).expect("second start").key_id();
        assert_eq!(first, again);
    }

    #[test]
    fn a_missing_key_over_indexed_recordings_is_refused_and_none_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let index = Index::open(&Store::index_dir(&config.data_dir)).expect("index");
        index
            .put_recording(&crate::testutil::placeholder_entry(
                RecordingId::random(),
                RecordingState::Finished,
            ))
            .expect("put");
        let text = refusal(&config, &index);
        assert!(text.contains("1 recording(s)"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
        assert!(!config.key_dir.exists(), "key_dir was not created");

        std::fs::create_dir(&config.key_dir).expect("mkdir");
        let text = refusal(&config, &index);
        assert!(text.contains("master.key is missing"), "{text}");
        assert!(!config.key_dir.join("master.key").exists());
    }

    #[test]
    fn a_missing_key_over_sealed_files_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let thumbs = config.data_dir.join("thumbnails").join("porch");
        std::fs::create_dir_all(&thumbs).expect("mkdir");
        std::fs::write(thumbs.join("0000000000000001.plt"), b"sealed").expect("write");
        let index = Index::open(&Store::index_dir(&config.data_dir)).expect("index");
        let text = refusal(&config, &index);
        assert!(text.contains("0000000000000001.plt"), "{text}");
        assert!(!config.key_dir.exists());
    }

    /// An installation as an upgrade from before end-to-end header tags finds it: a
    /// master key without the marker, and an old (untagged) end-to-end thumbnail of
    /// event 5, camera `porch`. Returns its config, index, the thumbnail's path and
    /// the viewer it is sealed to.
    fn upgraded_install(
        dir: &Path,
    ) -> (
        Config,
        Index,
        std::path::PathBuf,
        crate::store::e2e::ViewerSecret,
    ) {
        use crate::store::format::HeaderFields;
        use crate::store::writer::testing::{forge_e2e, quick_viewer};
        let config = config(dir);
        let index = Index::open(&Store::index_dir(&config.data_dir)).expect("index");
        drop(open_store(&config, &index).expect("first start"));
        std::fs::remove_file(config.key_dir.join("e2e-tags-v1")).expect("a new key has the marker");
        let (locked, viewer) = quick_viewer("a long passphrase");
        let path = config
            .data_dir
            .join("thumbnails/porch/0000000000000005.plt");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        let fields = HeaderFields::new(5, "porch", 0, "thumbnail");
        forge_e2e(
            &path,
            &fields,
            &[locked.public_key().clone()],
            b"jpeg",
            [0; 6],
        );
        (config, index, path, viewer)
    }

    /// The old thumbnail of [`upgraded_install`] reads, for `viewer`.
    fn thumbnail_reads(store: &Store, viewer: &crate::store::e2e::ViewerSecret) {
        let camera = "porch".parse().expect("name");
        let jpeg = store
            .read_thumbnail_as(&camera, crate::model::EventId(5), Some(viewer))
            .expect("still reads");
        assert_eq!(jpeg, b"jpeg");
    }

    /// An installation upgraded from before end-to-end header tags: its first start
    /// tags the old (untagged) end-to-end thumbnail and writes the marker, after
    /// which the file still reads.
    #[test]
    fn the_first_start_after_an_upgrade_tags_old_end_to_end_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, index, path, viewer) = upgraded_install(dir.path());

        let store = open_store(&config, &index).expect("start after the upgrade");
        assert!(config.key_dir.join("e2e-tags-v1").exists());
        assert_ne!(std::fs::read(&path).expect("read")[36..42], [0u8; 6]);
        thumbnail_reads(&store, &viewer);
    }

    /// A directory bind-mounted read-only over itself (root can write through any
    /// mode, not to a read-only mount); unmounted on drop.
    struct ReadOnlyMount(std::path::PathBuf);

    impl ReadOnlyMount {
        fn new(dir: &Path) -> ReadOnlyMount {
            let mount = |options: &[&str]| {
                let out = std::process::Command::new("mount")
                    .args(options)
                    .arg(dir)
                    .arg(dir)
                    .output()
                    .expect("run mount");
                assert!(
                    out.status.success(),
                    "this test needs root to bind-mount {} read-only: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            mount(&["--bind"]);
            let guard = ReadOnlyMount(dir.to_owned());
            mount(&["-o", "remount,bind,ro"]);
            guard
        }
    }

    impl Drop for ReadOnlyMount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }

    /// The same upgrade with a key directory the daemon cannot write: it refuses to
    /// start (untagged files would otherwise stay accepted, and each start would tag
    /// whatever was planted since), says which directory and what to do, and loses
    /// nothing: once the directory is writable the next start finishes the job.
    #[test]
    fn an_upgrade_with_a_key_dir_it_cannot_write_refuses_to_start_and_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, index, _, viewer) = upgraded_install(dir.path());
        let marker = config.key_dir.join("e2e-tags-v1");
        {
            let _read_only = ReadOnlyMount::new(&config.key_dir);
            let text = match open_store(&config, &index) {
                Ok(_) => panic!("started while untagged end-to-end files are accepted"),
                Err(e) => crate::error_chain::chain(&e),
            };
            let key_dir = config.key_dir.display().to_string();
            for needed in [
                &format!("key directory {key_dir} writable"),
                "chown",
                "read-write",
                "check --repair",
                "Nothing was lost",
            ] {
                assert!(text.contains(needed), "{needed:?} missing from: {text}");
            }
            assert!(!marker.exists());
        }
        let store = open_store(&config, &index).expect("start once key_dir is writable");
        assert!(marker.exists());
        thumbnail_reads(&store, &viewer);
    }
}
