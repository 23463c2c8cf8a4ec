//! `packaging/postrm` itself, run by `sh` as dpkg runs it (`remove`, then the conffile
//! deleted, then `purge`), on a temporary directory: the script's two paths
//! (`STATE=/var/lib/porchlight`, `CONFIG=/etc/porchlight/porchlight.toml`,
//! `NOTE_DIR=/var/lib/porchlight-package`) are pointed there, nothing else in it is
//! changed. Fast, needs no root; the whole
//! package is tested by `make test-package`.

mod maintainer_script;

use std::fs;
use std::path::PathBuf;

use maintainer_script::Script;

struct Root {
    script: Script,
}

impl Root {
    fn new() -> Root {
        let script = Script::new(
            "postrm",
            &[
                (
                    "STATE=/var/lib/porchlight",
                    "{root}/var/lib/porchlight".into(),
                ),
                (
                    "CONFIG=/etc/porchlight/porchlight.toml",
                    "{root}/etc/porchlight/porchlight.toml".into(),
                ),
                (
                    "NOTE_DIR=/var/lib/porchlight-package",
                    "{root}/var/lib/porchlight-package".into(),
                ),
            ],
            // The statoverride is the machine's: a stub that finds none.
            &[("dpkg-statoverride", 1)],
        );
        fs::create_dir_all(script.path("etc/porchlight")).expect("etc");
        Root { script }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.script.path(rel)
    }

    /// Writes `rel` (and its directories) under the root.
    fn put(&self, rel: &str, bytes: &[u8]) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        fs::write(path, bytes).expect("write");
    }

    /// The config, its `{root}` replaced by the root's path.
    fn config(&self, toml: &str) {
        let text = toml.replace("{root}", &self.script.dir.path().display().to_string());
        fs::write(self.path("etc/porchlight/porchlight.toml"), text).expect("config");
    }

    /// `postrm ACTION`; returns its standard error.
    fn postrm(&self, action: &str) -> String {
        self.script.run(action)
    }

    /// What dpkg does for `apt purge`: remove, the conffile deleted, purge.
    fn remove_and_purge(&self) -> String {
        self.postrm("remove");
        fs::remove_file(self.path("etc/porchlight/porchlight.toml")).expect("conffile");
        self.postrm("purge")
    }

    /// A symbolic link at `rel` (and its directories) to `target` under the root.
    fn link(&self, rel: &str, target: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::os::unix::fs::symlink(self.path(target), path).expect("symlink");
    }

    /// The default layout after some recording: key, index, recordings, certificate.
    fn default_state(&self) {
        self.put("var/lib/porchlight/keys/master.key", b"KEY");
        self.put("var/lib/porchlight/index/db", b"index");
        self.put(
            "var/lib/porchlight/recordings/porch/00000000000000a1.plr",
            b"rec",
        );
        self.put("var/lib/porchlight/web/cert.pem", b"cert");
    }
}

#[test]
fn purge_with_the_default_dirs_deletes_var_lib_porchlight() {
    for toml in [
        "data_dir = \"{root}/var/lib/porchlight\"\nkey_dir = \"{root}/var/lib/porchlight/keys\"\n",
        // Named only in whole-line comments, which assign nothing: the defaults.
        "# data_dir = \"{root}/mnt/usb\"\n# key_dir = \"{root}/mnt/usb/keys\"\n",
    ] {
        let root = Root::new();
        root.default_state();
        root.config(toml);
        let said = root.remove_and_purge();
        assert!(
            !root.path("var/lib/porchlight").exists(),
            "{toml:?}: {said}"
        );
        assert!(
            said.contains("WARNING: purge deletes /var/lib/porchlight"),
            "{toml:?}: {said}"
        );
    }
}

#[test]
fn purge_keeps_the_master_key_of_recordings_moved_to_another_disk() {
    let root = Root::new();
    root.default_state();
    root.put(
        "mnt/usb/porchlight/recordings/porch/00000000000000b2.plr",
        b"usb",
    );
    // The packaged config with only data_dir edited: the key stays where it was.
    root.config(
        "# Porchlight\ndata_dir = \"{root}/mnt/usb/porchlight\"  # the big disk\n\
         key_dir = \"{root}/var/lib/porchlight/keys\"\n\n[web]\nlisten = \"0.0.0.0:8443\"\n",
    );
    let said = root.remove_and_purge();
    assert_eq!(
        fs::read(root.path("var/lib/porchlight/keys/master.key")).ok(),
        Some(b"KEY".to_vec()),
        "the key of the other disk's recordings is kept: {said}"
    );
    for gone in ["index", "recordings", "web", ".configured-dirs"] {
        let path = root.path(&format!("var/lib/porchlight/{gone}"));
        assert!(
            !path.exists(),
            "{gone} is the package's default data: {said}"
        );
    }
    assert!(root
        .path("mnt/usb/porchlight/recordings/porch/00000000000000b2.plr")
        .exists());
    assert!(
        said.contains("/var/lib/porchlight/keys: it holds a master key"),
        "{said}"
    );
    assert!(
        said.contains("/mnt/usb/porchlight (configured outside"),
        "{said}"
    );
}

#[test]
fn purge_keeps_the_keys_when_the_configuration_could_not_be_read() {
    for config in [
        // A string this script does not read for sure.
        Some("data_dir = \"{root}/mnt/usb\\u0041\"\n"),
        // The key named on a line its parser does not read: a quoted key, a literal
        // quoted key, a line after an array whose inner line opens with "[".
        Some("\"data_dir\" = \"{root}/mnt/usb\"\n"),
        Some("'data_dir' = '{root}/mnt/usb'\n"),
        Some("x = [\n  [1],\n]\ndata_dir = \"{root}/mnt/usb\"\n"),
        // No note at all (removed by an older version, or the conffile was gone).
        None,
    ] {
        let root = Root::new();
        root.default_state();
        if let Some(toml) = config {
            root.config(toml);
        }
        let said = match config {
            Some(_) => root.remove_and_purge(),
            None => root.postrm("purge"),
        };
        assert!(
            root.path("var/lib/porchlight/keys/master.key").exists(),
            "{config:?}: {said}"
        );
        assert!(!root.path("var/lib/porchlight/recordings").exists());
        assert!(said.contains("every master key was kept"), "{said}");
    }
}

#[test]
fn purge_never_touches_a_key_dir_outside_var_lib_porchlight() {
    let root = Root::new();
    root.default_state();
    root.put("srv/keys/master.key", b"OTHER");
    root.config("data_dir = \"{root}/var/lib/porchlight\"\nkey_dir = \"{root}/srv/keys/\"\n");
    let said = root.remove_and_purge();
    assert!(!root.path("var/lib/porchlight").exists(), "{said}");
    assert!(root.path("srv/keys/master.key").exists());
    assert!(said.contains("/srv/keys (configured outside"), "{said}");
    // The warning does not claim to delete the key it keeps.
    let keys = root.path("srv/keys").display().to_string();
    assert!(!said.contains(&format!("master key in {keys}")), "{said}");
}

/// The state directory moved to another disk and linked back (`mv /var/lib/porchlight
/// /mnt/usb/pl && ln -s /mnt/usb/pl /var/lib/porchlight`): purge removes the link and
/// nothing behind it, whatever the config said (or if nothing was noted).
#[test]
fn purge_through_a_symlinked_state_dir_removes_only_the_link() {
    for config in [
        Some("data_dir = \"{root}/mnt/usb/pl\"\nkey_dir = \"{root}/mnt/usb/pl/keys\"\n"),
        Some("data_dir = \"{root}/var/lib/porchlight\"\n"),
        None,
    ] {
        let root = Root::new();
        let files = [
            ("mnt/usb/pl/keys/master.key", "KEY"),
            ("mnt/usb/pl/index/db", "index"),
            ("mnt/usb/pl/recordings/porch/00000000000000a1.plr", "rec"),
        ];
        for (rel, text) in files {
            root.put(rel, text.as_bytes());
        }
        root.link("var/lib/porchlight", "mnt/usb/pl");
        let said = match config {
            Some(toml) => {
                root.config(toml);
                root.remove_and_purge()
            }
            None => root.postrm("purge"),
        };
        for (rel, text) in files {
            assert_eq!(
                fs::read_to_string(root.path(rel)).ok().as_deref(),
                Some(text),
                "{config:?}: {rel} is behind the link: {said}"
            );
        }
        assert!(
            fs::symlink_metadata(root.path("var/lib/porchlight")).is_err(),
            "{config:?}: the link is the package's: {said}"
        );
        let usb = root.path("mnt/usb/pl").display().to_string();
        assert!(said.contains(&format!("kept {usb}")), "{config:?}: {said}");
        assert!(!said.contains("WARNING"), "{config:?}: {said}");
    }
}

/// `data_dir` named through a link into /var/lib/porchlight is in it: the recordings go
/// with it, and purge says so instead of claiming to keep them elsewhere.
#[test]
fn purge_sees_a_data_dir_that_links_into_var_lib_porchlight() {
    let root = Root::new();
    root.default_state();
    root.link("srv/porchlight", "var/lib/porchlight");
    root.config("data_dir = \"{root}/srv/porchlight\"\nkey_dir = \"{root}/srv/porchlight/keys\"\n");
    let said = root.remove_and_purge();
    assert!(!root.path("var/lib/porchlight").exists(), "{said}");
    assert!(
        said.contains("WARNING: purge deletes /var/lib/porchlight"),
        "{said}"
    );
    assert!(!said.contains("configured outside"), "{said}");
}

/// The reverse: `data_dir` is a link in /var/lib/porchlight to another disk, so the
/// recordings are elsewhere and their key stays.
#[test]
fn purge_keeps_the_key_when_data_dir_links_out_of_var_lib_porchlight() {
    let root = Root::new();
    root.default_state();
    root.put("mnt/usb/data/recordings/porch/00000000000000b2.plr", b"usb");
    root.link("var/lib/porchlight/data", "mnt/usb/data");
    root.config(
        "data_dir = \"{root}/var/lib/porchlight/data\"\n\
         key_dir = \"{root}/var/lib/porchlight/keys\"\n",
    );
    let said = root.remove_and_purge();
    assert!(
        root.path("var/lib/porchlight/keys/master.key").exists(),
        "{said}"
    );
    assert!(root
        .path("mnt/usb/data/recordings/porch/00000000000000b2.plr")
        .exists());
    assert!(!root.path("var/lib/porchlight/index").exists(), "{said}");
    let usb = root.path("mnt/usb/data").display().to_string();
    assert!(
        said.contains(&format!("kept {usb} (configured outside")),
        "{said}"
    );
}

/// `key_dir` set to /var/lib/porchlight itself, data elsewhere: the master key files
/// lie directly in the state directory and are kept; the rest of it goes.
#[test]
fn purge_keeps_a_master_key_directly_in_var_lib_porchlight() {
    let root = Root::new();
    root.put("var/lib/porchlight/master.key", b"KEY");
    root.put("var/lib/porchlight/master.key.old", b"OLD");
    root.put("var/lib/porchlight/index/db", b"index");
    root.put("srv/x/recordings/porch/00000000000000b2.plr", b"rec");
    root.config("data_dir = \"{root}/srv/x\"\nkey_dir = \"{root}/var/lib/porchlight\"\n");
    let said = root.remove_and_purge();
    for (key, text) in [("master.key", "KEY"), ("master.key.old", "OLD")] {
        assert_eq!(
            fs::read_to_string(root.path(&format!("var/lib/porchlight/{key}")))
                .ok()
                .as_deref(),
            Some(text),
            "{key}: {said}"
        );
        assert!(
            said.contains(&format!("/var/lib/porchlight/{key}: it is a master key")),
            "{said}"
        );
    }
    assert!(!root.path("var/lib/porchlight/index").exists(), "{said}");
    assert!(root
        .path("srv/x/recordings/porch/00000000000000b2.plr")
        .exists());
}

/// /var/lib/porchlight belongs to the porchlight user, so a compromised daemon can plant
/// links in it; root (postrm) writes nothing there, so a link's target stays untouched
/// (here an existing file and a dangling link to a file root would create).
#[test]
fn remove_never_writes_through_a_link_planted_in_var_lib_porchlight() {
    for target in ["etc/shadow", "etc/sudoers.d/x"] {
        let root = Root::new();
        root.default_state();
        fs::create_dir_all(root.path("etc/sudoers.d")).expect("dir");
        root.put("etc/shadow", b"root:secret\n");
        root.link("var/lib/porchlight/.configured-dirs", target);
        root.config("data_dir = \"{root}/var/lib/porchlight\"\n");
        let said = root.postrm("remove");
        let untouched = |said: &str| {
            assert_eq!(
                fs::read(root.path("etc/shadow")).ok(),
                Some(b"root:secret\n".to_vec()),
                "{target}: {said}"
            );
            assert!(!root.path("etc/sudoers.d/x").exists(), "{target}: {said}");
        };
        untouched(&said);
        let note_dir = root.path("var/lib/porchlight-package");
        let note = fs::symlink_metadata(note_dir.join("configured-dirs"));
        assert!(note.is_ok_and(|m| m.is_file()), "{target}: {said}");
        assert_eq!(
            fs::metadata(&note_dir)
                .map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o7777
                })
                .ok(),
            Some(0o700)
        );
        fs::remove_file(root.path("etc/porchlight/porchlight.toml")).expect("conffile");
        let said = said + &root.postrm("purge");
        untouched(&said);
        assert!(!root.path("var/lib/porchlight").exists(), "{said}");
        assert!(!note_dir.exists(), "purge deletes the note: {said}");
    }
}

/// The note is read only as a regular file: a link there (only root could make one) is
/// treated as no note, so every master key is kept.
#[test]
fn purge_reads_no_note_through_a_symlink() {
    let root = Root::new();
    root.default_state();
    root.config("data_dir = \"{root}/mnt/usb\"\n");
    root.postrm("remove");
    let state = root.path("var/lib/porchlight").display().to_string();
    root.put(
        "forged",
        format!("data_dir={state}\nkey_dir={state}/keys\n").as_bytes(),
    );
    let note = "var/lib/porchlight-package/configured-dirs";
    fs::remove_file(root.path(note)).expect("note");
    root.link(note, "forged");
    fs::remove_file(root.path("etc/porchlight/porchlight.toml")).expect("conffile");
    let said = root.postrm("purge");
    assert!(
        root.path("var/lib/porchlight/keys/master.key").exists(),
        "{said}"
    );
    assert!(said.contains("every master key was kept"), "{said}");
}
