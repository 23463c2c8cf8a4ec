//! The key directory swapped for another after it was checked: whatever happens
//! next acts on the checked directory, never on the one the path names by then.
//! The rotation's and the marker's cases are beside their code (`rotate_tests`,
//! `e2e_tag_tests`); they use [`swap_in_decoy`] too.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::*;
use crate::store::crypto::{KeyId, MasterKey, KEY_LEN};

/// A test's action on the key directory's path (see [`after_check`]).
type PathHook = Box<dyn FnOnce(&Path)>;

thread_local! {
    /// What a test does right after `KeyDir::open` checked the directory.
    static AFTER_CHECK: RefCell<Option<PathHook>> = const { RefCell::new(None) };
}

/// The seam `KeyDir::open` calls once its checks passed (tests only). A hook runs
/// once.
pub(super) fn after_check(path: &Path) {
    if let Some(hook) = AFTER_CHECK.with(|hook| hook.borrow_mut().take()) {
        hook(path);
    }
}

/// Renames `key_dir` to `<key_dir>.checked` (returned) and puts a decoy in its
/// place: a directory anyone may write to (its own check would refuse it) holding
/// another master key (its id returned) and no end-to-end tags marker.
pub(crate) fn swap_in_decoy(key_dir: &Path) -> (PathBuf, KeyId) {
    let checked = key_dir.with_extension("checked");
    fs::rename(key_dir, &checked).expect("move the checked directory away");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(key_dir)
        .expect("mkdir decoy");
    fs::set_permissions(key_dir, fs::Permissions::from_mode(0o777)).expect("chmod decoy");
    let bytes = [0x5a; KEY_LEN];
    let key = key_dir.join(MASTER_KEY_FILE);
    fs::write(&key, bytes).expect("write the decoy key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod decoy key");
    (checked, MasterKey::from_bytes(Zeroizing::new(bytes)).id())
}

/// The key is read from the directory whose mode and owner were checked: a
/// world-writable directory with someone else's key, renamed into place between
/// the check and the open, is never read.
#[test]
fn a_key_directory_swapped_after_its_check_is_not_read_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    let genuine = MasterKey::load_or_create(&key_dir).expect("create").id();
    let decoy = std::rc::Rc::new(std::cell::Cell::new(None));
    let seen = decoy.clone();
    AFTER_CHECK.with(|hook| {
        *hook.borrow_mut() = Some(Box::new(move |path: &Path| {
            seen.set(Some(swap_in_decoy(path).1));
        }))
    });
    let loaded = MasterKey::load(&key_dir).expect("load");
    let decoy = decoy.get().expect("the directory was swapped");
    assert_ne!(loaded.id(), decoy, "read the swapped-in directory's key");
    assert_eq!(loaded.id(), genuine);
}

/// A new key is made in the directory that was checked (the `mkdir -p` one
/// here), not in one swapped in before the key file is written, and a decoy's
/// own key there is neither used nor touched.
#[test]
fn a_new_key_is_created_in_the_checked_directory_not_a_swapped_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    let checked = std::rc::Rc::new(RefCell::new(None));
    let seen = checked.clone();
    // The first check is of a missing directory (no hook call: it is not opened);
    // the second is of the directory just made.
    AFTER_CHECK.with(|hook| {
        *hook.borrow_mut() = Some(Box::new(move |path: &Path| {
            *seen.borrow_mut() = Some(swap_in_decoy(path));
        }))
    });
    let created = MasterKey::load_or_create(&key_dir).expect("create");
    let (checked, decoy) = checked.borrow_mut().take().expect("swapped");
    assert_ne!(created.id(), decoy);
    let reloaded = MasterKey::load(&checked).expect("the key is in the checked directory");
    assert_eq!(reloaded.id(), created.id());
    assert_eq!(
        fs::read(key_dir.join(MASTER_KEY_FILE)).expect("decoy key"),
        [0x5a; KEY_LEN],
        "the decoy's key is untouched"
    );
    assert!(!key_dir.join(crate::store::crypto::E2E_TAGS_MARKER).exists());
}
