//! What many modules' tests start from: a fresh store and index on a real disk.

use crate::index::Index;
use crate::store::Store;

/// A fresh store (data and keys) and its index in a temporary directory; the
/// directory lives as long as the first element is kept.
pub(crate) fn store_and_index() -> (tempfile::TempDir, Store, Index) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let store = Store::open_or_create(&data, &dir.path().join("keys")).expect("store");
    let index = Index::open(&Store::index_dir(&data)).expect("index");
    (dir, store, index)
}
