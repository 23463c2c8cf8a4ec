//! `porchlight rotate-master-key`: replaces the master key, re-wrapping every data
//! key it wraps (recordings and thumbnails, in place: video bytes are not rewritten)
//! and re-sealing every secret the index keeps under it.
//!
//! The store does the key file and the files (`store::rotate`, whose module doc has
//! the durable order); this module adds the index: the recordings' copies of their
//! wrapped keys, users' TOTP seeds, sessions' pending seeds and the credentials of
//! cameras added in the web UI. Share copies are sealed under other keys and are
//! not touched; end-to-end files get their header tag rewritten under the new key
//! (their data keys are sealed to viewers, not wrapped by the master key).
//!
//! The daemon must be stopped: the index is opened first, and sled's lock on it
//! makes this fail while `porchlight serve` runs, before any key is made.

use std::collections::HashMap;
use std::fmt;

use crate::auth::TOTP_PURPOSE;
use crate::config::Config;
use crate::index::{CameraEntry, Index, IndexError, UpdateError};
use crate::store::{KeyRotation, Rewrap, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The test hook `--stop-after-files` (a simulated crash).
    #[error(
        "stopped on purpose after re-wrapping {0} file(s); the rotation is unfinished \
         (run porchlight rotate-master-key again)"
    )]
    Stopped(usize),
}

/// What a rotation did. Holds key ids only, never key material.
#[derive(Debug, Default)]
pub struct Summary {
    pub old_key_id: String,
    pub new_key_id: String,
    /// This run finished a rotation an earlier run started.
    pub resumed: bool,
    pub recordings: usize,
    pub thumbnails: usize,
    /// Files an earlier, interrupted run had already re-wrapped.
    pub already_done: usize,
    pub index_entries: usize,
    pub secrets: usize,
    /// Files and secrets that could not be re-wrapped (another key, damaged): left
    /// as they were, which is as unreadable as they already were.
    pub left_alone: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.left_alone {
            writeln!(f, "left alone: {line}")?;
        }
        if self.resumed {
            writeln!(f, "finished an interrupted rotation")?;
        }
        write!(
            f,
            "master key rotated: {} recording(s) and {} thumbnail(s) re-wrapped \
             ({} already done), {} index entr(ies) updated, {} secret(s) re-sealed; \
             old key id {}, new key id {}",
            self.recordings,
            self.thumbnails,
            self.already_done,
            self.index_entries,
            self.secrets,
            self.old_key_id,
            self.new_key_id
        )
    }
}

/// Runs a rotation (or finishes an interrupted one). `stop_after` is a test hook
/// that simulates a crash after that many files were re-wrapped.
pub fn run(config: &Config, stop_after: Option<usize>) -> Result<Summary, RotateError> {
    // First, so a running daemon is reported before anything is written.
    let index = Index::open(&Store::index_dir(&config.data_dir))?;
    let rotation = KeyRotation::begin(&config.data_dir, &config.key_dir)?;
    let mut summary = Summary {
        old_key_id: rotation.old_id().to_string(),
        new_key_id: rotation.new_id().to_string(),
        resumed: rotation.resumed(),
        ..Summary::default()
    };
    tracing::info!(
        old_key_id = %rotation.old_id(),
        new_key_id = %rotation.new_id(),
        resumed = rotation.resumed(),
        "rotating the master key"
    );

    let mut slots = HashMap::new();
    let mut rewrapped = 0;
    let files = [
        (rotation.recording_files()?, true),
        (rotation.thumbnail_files()?, false),
    ];
    for (paths, is_recording) in files {
        for path in paths {
            let done = match rotation.rewrap(&path) {
                Ok(done) => done,
                // Anything else (an I/O error) stops here, the rotation unfinished: a
                // file the old key opens must never be left behind when it goes.
                Err(e) if unreadable_anyway(&e) => {
                    tracing::warn!(path = %path.display(), "not re-wrapped: {e}");
                    summary.left_alone.push(e.to_string());
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match done.status {
                Rewrap::Rewrapped if is_recording => summary.recordings += 1,
                Rewrap::Rewrapped => summary.thumbnails += 1,
                Rewrap::AlreadyNew => summary.already_done += 1,
                Rewrap::Shredded => continue,
            }
            if done.status == Rewrap::Rewrapped {
                rewrapped += 1;
                if stop_after == Some(rewrapped) {
                    return Err(RotateError::Stopped(rewrapped));
                }
            }
            if is_recording {
                slots.insert(done.id, done.key_slot_hex);
            }
        }
    }

    for mut entry in index.all_recordings()? {
        match slots.get(&entry.id.0) {
            Some(slot) if !entry.wrapped_key.is_empty() && *slot != entry.wrapped_key => {
                entry.wrapped_key = slot.clone();
                index.put_recording(&entry)?;
                summary.index_entries += 1;
            }
            _ => {}
        }
    }
    reseal_secrets(&rotation, &index, &mut summary)?;
    index.flush()?;
    rotation.finish()?;
    tracing::info!(new_key_id = %summary.new_key_id, "master key rotated");
    Ok(summary)
}

/// Errors that mean a file cannot be opened with the old key either (sealed under a
/// third key, damaged, not a recording): leaving it as it is loses nothing.
fn unreadable_anyway(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::KeyMismatch { .. }
            | StoreError::KeyUnwrap { .. }
            | StoreError::NotARecording { .. }
            | StoreError::UnsupportedVersion { .. }
            | StoreError::Corrupt { .. }
            | StoreError::NotAuthentic { .. }
    )
}

/// Re-seals one secret: `Ok(None)` if it needs nothing, or if it cannot be opened
/// with the old key either (noted in the summary and left as it was).
fn reseal(
    rotation: &KeyRotation,
    purpose: &str,
    sealed: &str,
    whose: &str,
    summary: &mut Summary,
) -> Result<Option<String>, RotateError> {
    match rotation.reseal_secret(purpose, sealed) {
        Ok(Some(new)) => {
            summary.secrets += 1;
            Ok(Some(new))
        }
        Ok(None) => Ok(None),
        Err(e @ StoreError::SecretUnseal { .. }) => {
            tracing::warn!("{whose}: not re-sealed: {e}");
            summary.left_alone.push(format!("{whose}: {e}"));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn reseal_secrets(
    rotation: &KeyRotation,
    index: &Index,
    summary: &mut Summary,
) -> Result<(), RotateError> {
    for user in index.all_users()? {
        let Some(totp) = &user.totp else { continue };
        let whose = format!("TOTP seed of user {}", user.id.0);
        let Some(new) = reseal(rotation, TOTP_PURPOSE, &totp.secret_sealed, &whose, summary)?
        else {
            continue;
        };
        let old = totp.secret_sealed.clone();
        let changed = index.update_user(user.id, |u| {
            if let Some(t) = u.totp.as_mut().filter(|t| t.secret_sealed == old) {
                t.secret_sealed = new.clone();
            }
            Ok::<(), ()>(())
        });
        match changed {
            Ok(()) | Err(UpdateError::NoSuchUser) | Err(UpdateError::Refused(())) => {}
            Err(UpdateError::Index(e)) => return Err(e.into()),
        }
    }
    for (key, mut session) in index.all_sessions()? {
        let Some(sealed) = &session.pending_totp else {
            continue;
        };
        let whose = "pending TOTP seed of a session";
        if let Some(new) = reseal(rotation, TOTP_PURPOSE, sealed, whose, summary)? {
            session.pending_totp = Some(new);
            index.put_session(&key, &session)?;
        }
    }
    for mut camera in index.cameras()? {
        let (user_purpose, password_purpose) = CameraEntry::purposes(&camera.id);
        let whose = format!("credentials of camera {}", camera.id);
        let mut changed = false;
        for (sealed, purpose) in [
            (&mut camera.sealed_username, &user_purpose),
            (&mut camera.sealed_password, &password_purpose),
        ] {
            let Some(value) = sealed.as_ref() else {
                continue;
            };
            if let Some(new) = reseal(rotation, purpose, value, &whose, summary)? {
                *sealed = Some(new);
                changed = true;
            }
        }
        if changed {
            index.update_camera(&camera)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
