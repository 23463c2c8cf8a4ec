//! `packaging/postinst configure` itself, run by `sh` as dpkg runs it, on a temporary
//! directory: its paths (`STATE`, `NOTE_DIR`) point there and its owner (`OWNER`,
//! `GROUP`) is whoever runs the test; `getent` and `dpkg-statoverride` are stubs that
//! find the user and the override already there. Nothing else in the script changes.
//! Fast, needs no root; the whole package is tested by `make test-package`.

mod maintainer_script;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use maintainer_script::Script;

/// `postinst` pointed at a temporary directory, owned by whoever runs the test; the
/// user and the override are found already there.
fn configure() -> Script {
    let me = fs::metadata("/proc/self").expect("own process");
    Script::new(
        "postinst",
        &[
            ("STATE=/var/lib/porchlight", "{root}/state".into()),
            ("NOTE_DIR=/var/lib/porchlight-package", "{root}/note".into()),
            ("OWNER=porchlight", me.uid().to_string()),
            ("GROUP=porchlight", me.gid().to_string()),
        ],
        &[("getent", 0), ("dpkg-statoverride", 0), ("adduser", 1)],
    )
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

#[test]
fn a_first_configure_makes_the_state_and_key_dirs_readable_by_porchlight_only() {
    let setup = configure();
    setup.run("configure");
    for dir in ["state", "state/keys"] {
        let meta = fs::symlink_metadata(setup.path(dir)).expect(dir);
        assert!(meta.is_dir(), "{dir} is not a directory");
        assert_eq!(mode(&setup.path(dir)), 0o700, "{dir}");
    }
}

/// `/var/lib/porchlight` is the porchlight user's, so a compromised daemon can put a
/// link at `keys`: root must not chown or chmod what it points to (here a directory
/// of mode 0755 standing for `/etc`), at a reinstall or an upgrade alike.
#[test]
fn configure_never_changes_a_directory_through_a_link_planted_at_keys() {
    let setup = configure();
    let victim = setup.path("etc");
    fs::create_dir(&victim).expect("victim dir");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::create_dir(setup.path("state")).expect("state");
    std::os::unix::fs::symlink(&victim, setup.path("state/keys")).expect("link");
    let said = setup.run("configure");
    assert_eq!(
        mode(&victim),
        0o755,
        "the link's target was changed: {said}"
    );
    let keys = fs::symlink_metadata(setup.path("state/keys")).expect("keys");
    assert!(keys.file_type().is_symlink(), "{said}");
    assert_eq!(fs::read_link(setup.path("state/keys")).ok(), Some(victim));
}

#[test]
fn configure_keeps_an_existing_key_dir_and_its_key() {
    let setup = configure();
    fs::create_dir_all(setup.path("state/keys")).expect("keys");
    fs::set_permissions(setup.path("state/keys"), fs::Permissions::from_mode(0o700))
        .expect("chmod");
    fs::write(setup.path("state/keys/master.key"), b"KEY").expect("key");
    let noted = setup.path("state/.configured-dirs");
    fs::write(&noted, b"stale note").expect("note");
    setup.run("configure");
    assert_eq!(
        fs::read(setup.path("state/keys/master.key")).ok(),
        Some(b"KEY".to_vec())
    );
    assert_eq!(mode(&setup.path("state/keys")), 0o700);
    assert!(
        !noted.exists(),
        "the stale note in the state dir is removed"
    );
}
