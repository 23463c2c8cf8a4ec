//! End-to-end mode: the household's switch, whose keys new recordings are sealed
//! to, unlocking a viewer key with a passphrase or recovery key, and replacing
//! either of those (the key pair stays).
//!
//! With the mode on, every new recording's data key is sealed to the viewers'
//! public keys (`store::e2e`) instead of wrapped by the master key. Recording,
//! motion detection and retention need no passphrase: sealing uses public keys
//! only, and deletion overwrites the key slot without opening it. Viewing needs a
//! viewer's private key, which rests in the index only encrypted.
//!
//! Owns: the index's `e2e_viewers` rows and its "turned off" flag (through typed
//! functions), and keeping the store's recipient list equal to them. Unlocking is
//! throttled per viewer with the login rules (`auth::throttle::ACCOUNT`), counters
//! in the index so a restart does not reset them. Knows nothing of HTTP; unlocked
//! keys are kept per session by `crate::unlocked` (the web), or for one export (the
//! CLI).
//!
//! Once the mode is off, [`migrate_all`] re-seals what a viewer's key opens —
//! recordings, then event thumbnails (`e2e_thumbnails.rs`) — under the master key.
//!
//! May call: index, store, auth's throttle and password-strength rules (pure
//! functions). `auth` calls [`remove_viewer`] when an account goes.

use std::sync::{Mutex, PoisonError};

use zeroize::Zeroizing;

use crate::auth::{password, throttle};
use crate::index::{Index, IndexError, UserId, ViewerKeyEntry};
use crate::store::e2e::{
    LockedViewerKey, RecoveryKey, ViewerPublicKey, ViewerSecret, MAX_RECIPIENTS,
};
use crate::store::{Relocked, SavedViewer, Store, StoreError};

/// One passphrase derivation (Argon2id, 128 MiB) at a time in the whole process:
/// a burst of unlock attempts waits its turn instead of taking n × 128 MiB, and each
/// attempt sees the throttle counter the one before it left (parallel guesses are
/// not a way around it).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error("end-to-end encryption is already on for this account")]
    AlreadyEnabled,
    #[error("end-to-end encryption is not on")]
    NotEnabled,
    #[error("turn end-to-end encryption off before migrating recordings to the master key")]
    StillOn,
    #[error("a migration to the master key is already running; wait until it has finished")]
    MigrationRunning,
    #[error("{0}")]
    WeakPassphrase(String),
    #[error("the two passphrases differ")]
    Mismatch,
    /// Deliberately one answer for a wrong passphrase and a wrong recovery key.
    #[error("wrong passphrase or recovery key")]
    WrongSecret,
    #[error("a recording can be sealed to at most {MAX_RECIPIENTS} viewers; remove one first")]
    TooManyViewers,
    #[error("too many wrong passphrases; try again later")]
    Throttled { until_micros: i64 },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a viewer types to unlock.
pub enum Secret {
    Passphrase(Zeroizing<String>),
    RecoveryKey(Zeroizing<String>),
}

impl Secret {
    /// A passphrase, unless the text has the shape of a recovery key (52 base32
    /// characters in groups of four), which a passphrase form may also be given.
    pub fn guess(text: Zeroizing<String>) -> Secret {
        if RecoveryKey::parse(&text).is_ok() {
            Secret::RecoveryKey(text)
        } else {
            Secret::Passphrase(text)
        }
    }
}

fn locked(entry: &ViewerKeyEntry) -> Result<LockedViewerKey, E2eError> {
    let bytes = hex::decode(&entry.locked_key).map_err(|_| StoreError::ViewerKeyInvalid {
        reason: "the stored key is not hex".into(),
    })?;
    Ok(LockedViewerKey::from_bytes(&bytes)?)
}

/// The public keys of every viewer in the index.
pub fn recipients(index: &Index) -> Result<Vec<ViewerPublicKey>, E2eError> {
    index
        .viewer_keys()?
        .iter()
        .map(|(_, e)| Ok(locked(e)?.public_key().clone()))
        .collect()
}

/// Makes the store seal new recordings to the index's viewers (none: mode off or
/// turned off). Called at start-up and after every change of viewers or of the mode.
///
/// More viewers than a recording has slots for ([`MAX_RECIPIENTS`]; [`enable`]
/// refuses that many, but an index written before it did may hold more) is logged
/// as an error and the first ones are kept: failing here would stop the daemon from
/// starting, and then nothing would be recorded at all.
pub fn load(index: &Index, store: &Store) -> Result<usize, E2eError> {
    let mut keys = if index.e2e_paused()? {
        Vec::new()
    } else {
        recipients(index)?
    };
    if keys.len() > MAX_RECIPIENTS {
        tracing::error!(
            viewers = keys.len(),
            "more viewers than a recording can be sealed to: new recordings are sealed \
             to the first {MAX_RECIPIENTS} only; remove the viewers that are not needed"
        );
        keys.truncate(MAX_RECIPIENTS);
    }
    let n = keys.len();
    store.set_recipients(keys)?;
    if n > 0 {
        tracing::info!(
            viewers = n,
            "end-to-end encryption is on: new recordings are sealed to the viewers' keys"
        );
    }
    Ok(n)
}

/// Whether new recordings are sealed to viewers: a viewer key exists and the mode
/// was not turned off.
pub fn is_enabled(index: &Index) -> Result<bool, E2eError> {
    Ok(has_viewers(index)? && !index.e2e_paused()?)
}

/// Whether any viewer key exists (recordings sealed to it may exist, turned off or not).
pub fn has_viewers(index: &Index) -> Result<bool, E2eError> {
    Ok(!index.viewer_keys()?.is_empty())
}

/// Turns the mode off: recordings made from now on are wrapped by the master key
/// again. Every viewer key stays, so what was sealed while it was on still opens
/// after an unlock, until [`migrate_all`] re-seals it. `user` must prove
/// their passphrase (or recovery key), throttled like an unlock, so that a stolen
/// session alone cannot weaken what is recorded next.
pub fn turn_off(
    index: &Index,
    store: &Store,
    user: UserId,
    secret: &Secret,
    now_micros: i64,
) -> Result<(), E2eError> {
    if !is_enabled(index)? {
        return Err(E2eError::NotEnabled);
    }
    drop(unlock(index, Some(user), secret, now_micros)?);
    index.set_e2e_paused(true)?;
    load(index, store)?;
    tracing::info!("end-to-end encryption turned off for new recordings");
    Ok(())
}

/// Turns the mode back on after [`turn_off`], with `user`'s existing key (and every
/// other viewer's): the passphrase is checked as for [`turn_off`].
pub fn turn_back_on(
    index: &Index,
    store: &Store,
    user: UserId,
    secret: &Secret,
    now_micros: i64,
) -> Result<(), E2eError> {
    if !index.e2e_paused()? {
        return Err(E2eError::AlreadyEnabled);
    }
    drop(unlock(index, Some(user), secret, now_micros)?);
    index.set_e2e_paused(false)?;
    load(index, store)?;
    tracing::info!("end-to-end encryption turned back on");
    Ok(())
}

/// Whether `user` has a viewer key.
pub fn is_viewer(index: &Index, user: UserId) -> Result<bool, E2eError> {
    Ok(index.viewer_key(user)?.is_some())
}

/// Turns the mode on with `user` as a viewer: generates their key pair, stores the
/// private key locked under `passphrase` and a new recovery key, and seals every
/// recording from now on to it. Returns the recovery key, to be shown once. One
/// Argon2id run (about a second on a Pi 4): call from a blocking thread.
pub fn enable(
    index: &Index,
    store: &Store,
    user: UserId,
    user_name: &str,
    passphrase: &str,
    repeated: &str,
    now_micros: i64,
) -> Result<RecoveryKey, E2eError> {
    // The checks, the key and its row in one turn: a removal or a second enrolment
    // of the same user cannot slip in between the checks and the row.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    if index.viewer_key(user)?.is_some() {
        return Err(E2eError::AlreadyEnabled);
    }
    // Before anything is stored: a row beyond what `load` can seal to would be
    // written and the request fail after it.
    if index.viewer_keys()?.len() >= MAX_RECIPIENTS {
        return Err(E2eError::TooManyViewers);
    }
    let passphrase = check_new_passphrase(user_name, passphrase, repeated)?;
    let (key, recovery) = LockedViewerKey::generate(passphrase)?;
    index.put_viewer_key(
        user,
        &ViewerKeyEntry {
            locked_key: hex::encode(key.to_bytes()),
            enrolled_micros: now_micros,
        },
    )?;
    // The row first, then its file: a crash between leaves a row that the next
    // start-up saves again ([`sync_saved_viewers`]), never a file whose recovery key
    // nobody was shown that a rebuild would bring back.
    let saved = SavedViewer {
        user: user.0,
        enrolled_micros: now_micros,
        key,
    };
    if let Err(e) = store.save_viewer(&saved) {
        index.remove_viewer_key(user)?;
        return Err(e.into());
    }
    let key = saved.key;
    index.set_e2e_paused(false)?;
    load(index, store)?;
    tracing::info!(viewer = %key.public_key().id(), "end-to-end encryption turned on");
    Ok(recovery)
}

/// The rules for a new passphrase (at enrolment and on a change): typed the same
/// twice, and strong enough for a secret guessed offline
/// (`auth::password::passphrase_weakness`). Only new passphrases are judged: one
/// chosen under an older rule keeps unlocking.
///
/// Returns the passphrase to lock with: trimmed of spaces at either end, as the web
/// unlock trims what is typed, so a phone keyboard's trailing space cannot make a
/// passphrase that no later unlock can match.
fn check_new_passphrase<'a>(
    user_name: &str,
    passphrase: &'a str,
    repeated: &str,
) -> Result<&'a str, E2eError> {
    let passphrase = passphrase.trim();
    if passphrase != repeated.trim() {
        return Err(E2eError::Mismatch);
    }
    if let Some(why) =
        password::passphrase_weakness(passphrase, &[user_name, "recordings", "video"])
    {
        return Err(E2eError::WeakPassphrase(why));
    }
    Ok(passphrase)
}

/// Re-locks `user`'s viewer key under `passphrase` (typed twice as `repeated`), after
/// `current` — their passphrase or recovery key — opened it; the recovery lock stays.
/// The private key does not change, so everything sealed to it still opens. A wrong
/// `current` is throttled and counted exactly like an [`unlock`], and nothing is
/// written. Two Argon2id runs: call from a blocking thread.
///
/// What it protects against: a passphrase seen or guessed *from now on*. Whoever
/// copied the key file (or index) while they also knew the old passphrase already
/// has the private key; only a new viewer key (remove and enrol again) helps then.
#[allow(clippy::too_many_arguments)]
pub fn change_passphrase(
    index: &Index,
    store: &Store,
    user: UserId,
    user_name: &str,
    current: &Secret,
    passphrase: &str,
    repeated: &str,
    now_micros: i64,
) -> Result<(), E2eError> {
    // The new passphrase first: a refusal costs no Argon2 run and no throttle count.
    let passphrase = check_new_passphrase(user_name, passphrase, repeated)?;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let viewer = unlock_in_turn(index, Some(user), current, now_micros)?;
    relock(index, store, user, Relocked::Passphrase, |key| {
        Ok((key.with_new_passphrase(&viewer, passphrase)?, ()))
    })?;
    tracing::info!(viewer = %viewer.public_key().id(), "end-to-end passphrase changed");
    Ok(())
}

/// Locks `user`'s viewer key under a new recovery key, returned to be shown once;
/// the old recovery key stops opening it. Needs the current passphrase (not the old
/// recovery key, which is what is being retired), checked and throttled like an
/// [`unlock`], trimmed of spaces at either end as the web unlock trims it. One
/// Argon2id run: call from a blocking thread.
pub fn new_recovery_key(
    index: &Index,
    store: &Store,
    user: UserId,
    passphrase: &Zeroizing<String>,
    now_micros: i64,
) -> Result<RecoveryKey, E2eError> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let current = Secret::Passphrase(Zeroizing::new(passphrase.trim().to_owned()));
    let viewer = unlock_in_turn(index, Some(user), &current, now_micros)?;
    let recovery = relock(index, store, user, Relocked::Recovery, |key| {
        Ok(key.with_new_recovery(&viewer)?)
    })?;
    tracing::info!(viewer = %viewer.public_key().id(), "end-to-end recovery key replaced");
    Ok(recovery)
}

/// Stores `user`'s viewer key re-locked by `change` (which may hand back something
/// else too, a new recovery key). The caller holds [`ONE_AT_A_TIME`].
///
/// The index row is the commit point (`Store::replace_viewer`): the new file is
/// written beside the old one (`.new`, fsynced with its directory), then the row,
/// then the file is renamed in. A crash or an index error before the row leaves
/// the old row, the old file and the user's old secrets working (the `.new` is
/// removed, now or by [`sync_saved_viewers`] at the next start-up); after the row,
/// the next start-up finishes the rename. So a new recovery key is returned (and
/// shown) only once it is committed, and never comes in without having been shown.
///
/// The row is read again after `change` (an Argon2 run): if it is gone (the account
/// was removed) or changed meanwhile, nothing is written and this is refused with
/// [`E2eError::NotEnabled`], so a removed viewer's key cannot be brought back.
fn relock<T>(
    index: &Index,
    store: &Store,
    user: UserId,
    retired: Relocked,
    change: impl FnOnce(&LockedViewerKey) -> Result<(LockedViewerKey, T), E2eError>,
) -> Result<T, E2eError> {
    let entry = index.viewer_key(user)?.ok_or(E2eError::NotEnabled)?;
    let (key, also) = change(&locked(&entry)?)?;
    if index.viewer_key(user)?.as_ref() != Some(&entry) {
        tracing::warn!(user = %user.0, "viewer key removed or changed during a re-locking; not stored");
        return Err(E2eError::NotEnabled);
    }
    let new_entry = ViewerKeyEntry {
        locked_key: hex::encode(key.to_bytes()),
        enrolled_micros: entry.enrolled_micros,
    };
    let saved = SavedViewer {
        user: user.0,
        enrolled_micros: entry.enrolled_micros,
        key,
    };
    store.replace_viewer(&saved, retired, || -> Result<(), E2eError> {
        if let Err(e) = index.put_viewer_key(user, &new_entry) {
            // A failed flush may leave the new row in memory: put the old one back so
            // that this process, too, keeps the secrets the user knows.
            if let Err(back) = index.put_viewer_key(user, &entry) {
                tracing::error!(user = %user.0, "cannot restore a viewer key row: {back}");
            }
            return Err(e.into());
        }
        Ok(())
    })?;
    Ok(also)
}

/// Enrols `user` as a further viewer while the mode is on: their own passphrase,
/// their own recovery key, and recordings made from now on are sealed to them too.
/// The same checks as [`enable`]; refused with [`E2eError::NotEnabled`] when the
/// mode is off (turning it on is the owner's [`enable`]).
pub fn enrol(
    index: &Index,
    store: &Store,
    user: UserId,
    user_name: &str,
    passphrase: &str,
    repeated: &str,
    now_micros: i64,
) -> Result<RecoveryKey, E2eError> {
    if !is_enabled(index)? {
        return Err(E2eError::NotEnabled);
    }
    enable(
        index, store, user, user_name, passphrase, repeated, now_micros,
    )
}

/// Removes `user`'s viewer key (their account is going): recordings made from now
/// on are no longer sealed to them. Recordings already sealed to them keep their
/// slot (their key is gone from the index, so nothing here can open it). True if
/// they had one.
pub fn remove_viewer(index: &Index, store: &Store, user: UserId) -> Result<bool, E2eError> {
    // In turn with re-lockings (which hold it from reading the row to writing it),
    // so that one in flight cannot write the file and row back after they are gone.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(entry) = index.viewer_key(user)? else {
        return Ok(false);
    };
    // The file first, then the row: a crash between leaves a row whose file the
    // next start-up writes again, never a file a rebuild would bring back.
    store.remove_viewer(locked(&entry)?.public_key().id())?;
    index.remove_viewer_key(user)?;
    load(index, store)?;
    tracing::info!(user = %user.0, "viewer key removed: new recordings are no longer sealed to it");
    Ok(true)
}

/// Keeps every viewer key in a file beside the recordings (`store::viewer_file`), so
/// a lost index does not lose the end-to-end recordings. Called at start-up and by
/// `check --rebuild-index`; returns what it did, one line each.
///
/// - No viewer rows in the index but viewer files on disk (the index was lost or
///   rebuilt): the rows come back from the files. The mode is then on, whatever it
///   was (a new index has no "turned off" flag): new recordings are sealed to the
///   restored viewers, which is the safe side; an owner turns it off again.
/// - Rows without a file (an index written before the files existed, or a crash
///   between a row and its file): the file is written.
/// - A file without a row while other rows exist is left alone and logged: it
///   cannot come from a removal (which removes the file first).
/// - First, a passphrase or recovery key change a crash interrupted ([`relock`]):
///   its `.new` file comes in if the row holds its locks (the row, the commit
///   point, was written), and is removed otherwise (roll back; with no rows at all
///   too, so a rebuilt index gets the secrets the user knows).
/// - A row and a file of the same key and user with different locks: the row is
///   the commit point, so the file is written again from the row.
pub fn sync_saved_viewers(index: &Index, store: &Store) -> Result<Vec<String>, E2eError> {
    let rows = index.viewer_keys()?;
    let mut done = store.settle_viewer_changes(|new| {
        rows.iter().any(|(user, entry)| {
            user.0 == new.user && entry.locked_key == hex::encode(new.key.to_bytes())
        })
    })?;
    let saved = store.saved_viewers()?;
    if rows.is_empty() {
        for viewer in saved {
            let entry = ViewerKeyEntry {
                locked_key: hex::encode(viewer.key.to_bytes()),
                enrolled_micros: viewer.enrolled_micros,
            };
            index.put_viewer_key(UserId(viewer.user), &entry)?;
            done.push(format!(
                "restored end-to-end viewer key {} (user {}) from its file",
                viewer.key.public_key().id(),
                viewer.user
            ));
        }
        if !done.is_empty() {
            index.flush()?;
        }
        return Ok(done);
    }
    let mut on_disk: std::collections::HashMap<_, _> = saved
        .into_iter()
        .map(|v| (v.key.public_key().id(), v))
        .collect();
    for (user, entry) in rows {
        let key = locked(&entry)?;
        let id = key.public_key().id();
        if let Some(file) = on_disk.remove(&id) {
            // Same key, other locks: the row is the commit point of a re-locking
            // (`relock`), so the file is written again from it.
            if file.key != key && file.user == user.0 {
                store.save_viewer(&SavedViewer {
                    user: user.0,
                    enrolled_micros: entry.enrolled_micros,
                    key,
                })?;
                done.push(format!(
                    "wrote the file of viewer key {id} again from its index row"
                ));
            }
            continue;
        }
        store.save_viewer(&SavedViewer {
            user: user.0,
            enrolled_micros: entry.enrolled_micros,
            key,
        })?;
        done.push(format!("saved end-to-end viewer key {id} to a file"));
    }
    for id in on_disk.into_keys() {
        tracing::warn!(viewer = %id, "a viewer key file has no viewer in the index; left alone");
    }
    Ok(done)
}

/// What [`migrate_all`] did with the files of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationCounts {
    pub migrated: usize,
    /// End-to-end files this viewer is not a recipient of (left sealed).
    pub not_mine: usize,
    /// Files that failed (logged; left as they were).
    pub failed: usize,
}

/// What [`migrate_all`] did: recordings and event thumbnails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub recordings: MigrationCounts,
    pub thumbnails: MigrationCounts,
}

/// One line for the activity log.
impl std::fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (r, t) = (self.recordings, self.thumbnails);
        write!(
            f,
            "{} recording(s) and {} thumbnail(s) re-sealed under the master key \
             ({} and {} not sealed to this viewer, {} and {} failed)",
            r.migrated, t.migrated, r.not_mine, t.not_mine, r.failed, t.failed
        )
    }
}

/// After the mode was turned off: re-seals every finished end-to-end recording
/// `viewer` can open under the master key (`Store::migrate_to_master`) and updates
/// its index entry, then every event thumbnail sealed to `viewer`
/// ([`thumbnails::migrate`]). Refused while the mode is on. A file that fails is
/// logged and counted, and the run goes on. Blocking; can take a while.
pub fn migrate_all(
    index: &Index,
    store: &Store,
    viewer: &ViewerSecret,
) -> Result<MigrationReport, E2eError> {
    let Some(_one_run) = store.one_migration() else {
        return Err(E2eError::MigrationRunning);
    };
    if !index.e2e_paused()? {
        return Err(E2eError::StillOn);
    }
    let mut report = MigrationReport::default();
    let counts = &mut report.recordings;
    for entry in index.all_recordings()? {
        if entry.state != crate::index::RecordingState::Finished
            || !store
                .is_end_to_end(&entry.camera, entry.id)
                .unwrap_or(false)
        {
            continue;
        }
        let id = entry.id;
        let still_finished = || -> Result<bool, E2eError> {
            Ok(index
                .get_recording(id)?
                .is_some_and(|now| now.state == crate::index::RecordingState::Finished))
        };
        match store.migrate_to_master(&entry.camera, entry.id, viewer) {
            Ok(done) => {
                #[cfg(test)]
                tests::before_migrated_entry_is_saved(id);
                // Retention may have deleted it meanwhile (or be deleting it): never
                // bring it back. Checked and written in one transaction, which a
                // deletion's `Deleting` mark or removal cannot come between.
                let migrated = index.update_recording(id, |now| {
                    (now.state == crate::index::RecordingState::Finished).then(|| {
                        crate::index::RecordingEntry {
                            wrapped_key: done.wrapped_key.clone(),
                            bytes: done.file_len,
                            ..now
                        }
                    })
                })?;
                if migrated {
                    counts.migrated += 1;
                } else {
                    store.shred(&entry.camera, entry.id)?;
                }
            }
            Err(StoreError::NotARecipient { .. }) => counts.not_mine += 1,
            // Deleted during its migration: the store did not bring it back.
            Err(e) if e.is_not_found() && !still_finished()? => {}
            Err(e) => {
                tracing::error!(recording = %entry.id, "cannot migrate to the master key: {e}");
                counts.failed += 1;
            }
        }
    }
    thumbnails::migrate(index, store, viewer, &mut report.thumbnails)?;
    index.flush()?;
    Ok(report)
}

fn throttle_key(user: Option<UserId>) -> String {
    match user {
        Some(u) => format!("e2e:{}", u.0),
        None => "e2e:cli".into(),
    }
}

/// Unlocks `user`'s viewer key (or, with `None`, whichever viewer key the secret
/// opens: the CLI, which has no account). Wrong attempts are throttled like
/// logins; a refused attempt is not tried at all. One Argon2id run per viewer key
/// tried for a passphrase: call from a blocking thread.
pub fn unlock(
    index: &Index,
    user: Option<UserId>,
    secret: &Secret,
    now_micros: i64,
) -> Result<ViewerSecret, E2eError> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    unlock_in_turn(index, user, secret, now_micros)
}

/// [`unlock`] for a caller already holding [`ONE_AT_A_TIME`] (a re-locking keeps it
/// until the new lock is stored, so two changes of one key cannot interleave).
fn unlock_in_turn(
    index: &Index,
    user: Option<UserId>,
    secret: &Secret,
    now_micros: i64,
) -> Result<ViewerSecret, E2eError> {
    let key = throttle_key(user);
    let mut counter = index.get_throttle(&key)?;
    match throttle::check(&counter, now_micros) {
        throttle::Verdict::Allow => {}
        throttle::Verdict::Wait { until_micros } | throttle::Verdict::Blocked { until_micros } => {
            return Err(E2eError::Throttled { until_micros })
        }
    }
    let viewers = match user {
        Some(u) => index.viewer_key(u)?.into_iter().collect(),
        None => index
            .viewer_keys()?
            .into_iter()
            .map(|(_, e)| e)
            .collect::<Vec<_>>(),
    };
    if viewers.is_empty() {
        return Err(E2eError::NotEnabled);
    }
    for entry in &viewers {
        let locked = locked(entry)?;
        let opened = match secret {
            Secret::RecoveryKey(text) => {
                RecoveryKey::parse(text).and_then(|r| locked.unlock_with_recovery(&r))
            }
            Secret::Passphrase(p) => locked.unlock_with_passphrase(p),
        };
        match opened {
            Ok(viewer) => {
                index.put_throttle(&key, &Default::default())?;
                return Ok(viewer);
            }
            Err(StoreError::ViewerUnlock) => {}
            Err(e) => return Err(e.into()),
        }
    }
    throttle::on_failure(&mut counter, now_micros, throttle::ACCOUNT);
    index.put_throttle(&key, &counter)?;
    Err(E2eError::WrongSecret)
}

#[path = "e2e_thumbnails.rs"]
mod thumbnails;

#[cfg(test)]
#[path = "e2e_tests.rs"]
mod tests;
