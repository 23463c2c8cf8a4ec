//! Bulk deletion: a camera's recordings, or every camera's, together with the share
//! links that copy them.
//!
//! `retention` deletes recordings and events and knows nothing of share links; a link
//! is a sealed copy with its own key, and its viewers live in [`Shares`]' memory. So
//! "delete all recordings" alone would leave every shared clip watchable until its
//! link expired (up to 30 days), against the promise that nothing of it is left.
//! This module is the one service the web layer calls for either: recordings first
//! (keys first, as erasing all data does), then every link to that footage, through
//! the same path as unsharing (viewers cut off, copy shredded), even when deleting a
//! recording failed (a file that cannot be shredded must not keep every link to the
//! camera alive); the first error is returned. Deleting one
//! recording leaves its links alone: a link is a deliberate copy, ended by unsharing.
//!
//! Calls `retention` and `share`; blocking throughout.

use crate::index::Index;
use crate::model::CameraId;
use crate::retention::{self, RetentionError};
use crate::share::{ShareError, Shares};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error(transparent)]
    Share(#[from] ShareError),
}

/// What a bulk deletion removed, for its audit entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub recordings: usize,
    /// Share links revoked (their copies shredded).
    pub links: usize,
}

/// Deletes every finished recording and event of `camera`, and revokes every share
/// link to its footage. One recording still being written is left (it is finished on
/// its own).
pub fn delete_camera(
    store: &Store,
    index: &Index,
    shares: &Shares,
    camera: &CameraId,
) -> Result<Deleted, DeletionError> {
    let recordings = retention::delete_camera(store, index, camera);
    let links = shares.revoke_all_of(Some(camera));
    Ok(Deleted {
        recordings: recordings?,
        links: links?,
    })
}

/// Deletes every finished recording and event of every camera, and revokes every
/// share link.
pub fn delete_everything(
    store: &Store,
    index: &Index,
    shares: &Shares,
) -> Result<Deleted, DeletionError> {
    let recordings = retention::delete_everything(store, index);
    let links = shares.revoke_all_of(None);
    Ok(Deleted {
        recordings: recordings?,
        links: links?,
    })
}
