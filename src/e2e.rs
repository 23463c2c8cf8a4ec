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
/// after an unlock (there is no migration of those recordings yet). `user` must prove
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

/// What [`migrate_all`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub migrated: usize,
    /// End-to-end recordings this viewer is not a recipient of (left sealed).
    pub not_mine: usize,
    /// Recordings that failed (logged; left as they were).
    pub failed: usize,
}

/// After the mode was turned off: re-seals every finished end-to-end recording
/// `viewer` can open under the master key (`Store::migrate_to_master`) and updates
/// its index entry. Refused while the mode is on. Blocking; can take a while.
pub fn migrate_all(
    index: &Index,
    store: &Store,
    viewer: &ViewerSecret,
) -> Result<MigrationReport, E2eError> {
    if !index.e2e_paused()? {
        return Err(E2eError::StillOn);
    }
    let mut report = MigrationReport::default();
    for mut entry in index.all_recordings()? {
        if entry.state != crate::index::RecordingState::Finished
            || !store
                .is_end_to_end(&entry.camera, entry.id)
                .unwrap_or(false)
        {
            continue;
        }
        match store.migrate_to_master(&entry.camera, entry.id, viewer) {
            Ok(done) => {
                // Retention may have deleted it meanwhile: never bring it back.
                match index.get_recording(entry.id)? {
                    Some(now) if now.state == crate::index::RecordingState::Finished => {
                        entry.wrapped_key = done.wrapped_key;
                        entry.bytes = done.file_len;
                        index.put_recording(&entry)?;
                        report.migrated += 1;
                    }
                    _ => store.shred(&entry.camera, entry.id)?,
                }
            }
            Err(StoreError::NotARecipient { .. }) => report.not_mine += 1,
            Err(e) => {
                tracing::error!(recording = %entry.id, "cannot migrate to the master key: {e}");
                report.failed += 1;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "lantern orchard pebble 1987 quietly";

    use crate::testutil::store_and_index as fixture;

    fn pass(text: &str) -> Secret {
        Secret::Passphrase(Zeroizing::new(text.to_owned()))
    }

    #[test]
    fn a_seventeenth_viewer_is_refused_and_the_index_still_loads() {
        let (_dir, store, index) = fixture();
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        for n in 2..=MAX_RECIPIENTS as u64 {
            enrol(
                &index,
                &store,
                UserId(n),
                &format!("user{n}"),
                PASS,
                PASS,
                0,
            )
            .expect("enrol");
        }
        let last = MAX_RECIPIENTS as u64 + 1;
        assert!(matches!(
            enrol(&index, &store, UserId(last), "one too many", PASS, PASS, 0),
            Err(E2eError::TooManyViewers)
        ));
        assert_eq!(index.viewer_keys().expect("read").len(), MAX_RECIPIENTS);
        assert_eq!(load(&index, &store).expect("load"), MAX_RECIPIENTS);
    }

    /// An index written before enrolment was capped: the daemon still starts.
    #[test]
    fn more_viewers_than_slots_in_the_index_still_load_sealed_to_the_first() {
        let (_dir, store, index) = fixture();
        for n in 1..=MAX_RECIPIENTS as u64 + 1 {
            let (key, _) = LockedViewerKey::generate_with(PASS, FAST).expect("key");
            let entry = ViewerKeyEntry {
                locked_key: hex::encode(key.to_bytes()),
                enrolled_micros: 0,
            };
            index.put_viewer_key(UserId(n), &entry).expect("put");
        }
        assert_eq!(load(&index, &store).expect("load"), MAX_RECIPIENTS);
        assert_eq!(store.recipients().len(), MAX_RECIPIENTS);
    }

    /// Viewer rows written before viewer files existed get their files; a fresh
    /// index gets the rows back from the files, and the recovery key unlocks.
    #[test]
    fn viewer_keys_are_saved_to_files_and_restored_into_an_empty_index() {
        let (dir, store, index) = fixture();
        let recovery = enable(&index, &store, UserId(1), "owner", PASS, PASS, 5).expect("enable");
        assert_eq!(store.saved_viewers().expect("list").len(), 1);
        let viewers = dir.path().join("data").join("viewers");
        std::fs::remove_dir_all(&viewers).expect("as before the files existed");
        let done = sync_saved_viewers(&index, &store).expect("sync");
        assert_eq!(done.len(), 1, "{done:?}");
        assert!(sync_saved_viewers(&index, &store)
            .expect("again")
            .is_empty());

        let fresh = Index::open(&dir.path().join("new index")).expect("index");
        let done = sync_saved_viewers(&fresh, &store).expect("restore");
        assert_eq!(done.len(), 1, "{done:?}");
        assert!(is_enabled(&fresh).expect("read"));
        let recovery = Secret::guess(Zeroizing::new(recovery.to_text().to_string()));
        unlock(&fresh, None, &recovery, 0).expect("the recovery key unlocks");
        unlock(&fresh, Some(UserId(1)), &pass(PASS), 0).expect("and the passphrase");

        assert!(remove_viewer(&fresh, &store, UserId(1)).expect("remove"));
        assert!(
            store.saved_viewers().expect("list").is_empty(),
            "file removed"
        );
    }

    #[test]
    fn enabling_sets_the_store_recipients_and_survives_a_reload() {
        let (_dir, store, index) = fixture();
        assert!(!is_enabled(&index).expect("read"));
        let recovery = enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        assert_eq!(store.recipients().len(), 1);
        assert!(matches!(
            enable(&index, &store, UserId(1), "owner", PASS, PASS, 0),
            Err(E2eError::AlreadyEnabled)
        ));
        store.set_recipients(Vec::new()).expect("clear");
        assert_eq!(load(&index, &store).expect("load"), 1);
        assert_eq!(store.recipients().len(), 1);
        let viewer = unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("unlock");
        assert_eq!(viewer.public_key(), &store.recipients()[0]);
        let by_recovery = unlock(
            &index,
            None,
            &Secret::guess(Zeroizing::new(recovery.to_text().to_lowercase())),
            0,
        )
        .expect("recovery key unlocks");
        assert_eq!(by_recovery.public_key(), viewer.public_key());
    }

    #[test]
    fn a_removed_viewer_is_not_a_recipient_of_recordings_made_after_removal() {
        use crate::model::{CameraId, RecordingId, Trigger};
        use crate::store::NewRecording;
        let (_dir, store, index) = fixture();
        const OTHER: &str = "velvet harbour compass 2231 slowly";
        assert!(matches!(
            enrol(&index, &store, UserId(2), "guest", OTHER, OTHER, 0),
            Err(E2eError::NotEnabled)
        ));
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        enrol(&index, &store, UserId(2), "guest", OTHER, OTHER, 0).expect("enrol");
        assert_eq!(store.recipients().len(), 2);
        let owner = unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("unlock");
        let guest = unlock(&index, Some(UserId(2)), &pass(OTHER), 0).expect("unlock");
        let camera: CameraId = "porch".parse().expect("camera");
        let record = || {
            let new = NewRecording {
                id: RecordingId::random(),
                camera: camera.clone(),
                start_micros: 0,
                trigger: Trigger::Motion,
            };
            let (mut w, _) = store.create_recording(&new).expect("create");
            w.write_all(b"video").expect("write");
            w.finish().expect("finish");
            new.id
        };
        let shared = record();
        for viewer in [&owner, &guest] {
            store
                .open_recording_as(&camera, shared, viewer)
                .expect("both are recipients");
        }

        assert!(remove_viewer(&index, &store, UserId(2)).expect("remove"));
        assert!(!remove_viewer(&index, &store, UserId(2)).expect("again"));
        assert_eq!(store.recipients(), vec![owner.public_key().clone()]);
        let after = record();
        store
            .open_recording_as(&camera, after, &owner)
            .expect("the owner still is");
        assert!(matches!(
            store.open_recording_as(&camera, after, &guest).err(),
            Some(StoreError::NotARecipient { .. })
        ));
        // Removing the last viewer turns the mode off for new recordings.
        assert!(remove_viewer(&index, &store, UserId(1)).expect("remove"));
        assert!(store.recipients().is_empty());
        assert!(!is_enabled(&index).expect("read"));
    }

    #[test]
    fn turning_off_keeps_the_keys_and_needs_the_passphrase() {
        let (_dir, store, index) = fixture();
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let key = store.recipients();
        assert!(matches!(
            turn_off(&index, &store, UserId(1), &pass("wrong guess"), 0),
            Err(E2eError::WrongSecret)
        ));
        assert_eq!(store.recipients(), key, "still on");
        turn_off(&index, &store, UserId(1), &pass(PASS), 0).expect("off");
        assert!(store.recipients().is_empty() && !is_enabled(&index).expect("read"));
        assert!(has_viewers(&index).expect("read"), "the keys stay");
        // A restart keeps it off; the key still unlocks what was sealed.
        assert_eq!(load(&index, &store).expect("load"), 0);
        unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("unlock");
        turn_back_on(&index, &store, UserId(1), &pass(PASS), 0).expect("on");
        assert_eq!(store.recipients(), key);
        assert!(matches!(
            turn_back_on(&index, &store, UserId(1), &pass(PASS), 0),
            Err(E2eError::AlreadyEnabled)
        ));
    }

    #[test]
    fn weak_or_mismatched_passphrases_are_refused() {
        let (_dir, store, index) = fixture();
        for (a, b) in [
            ("password1", "password1"),
            (PASS, "something else entirely"),
        ] {
            assert!(enable(&index, &store, UserId(1), "owner", a, b, 0).is_err());
        }
        assert!(!is_enabled(&index).expect("read"));
        assert!(store.recipients().is_empty());
    }

    const NEW: &str = "copper meadow lantern 4410 gently";
    /// Cheap Argon2 for keys made directly (not through `enable`).
    const FAST: crate::store::e2e::KdfParams = crate::store::e2e::KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    /// User 1 ("owner") changes their passphrase.
    fn change(
        index: &Index,
        store: &Store,
        current: &Secret,
        new: &str,
        repeated: &str,
    ) -> Result<(), E2eError> {
        change_passphrase(index, store, UserId(1), "owner", current, new, repeated, 0)
    }

    fn viewer_file(dir: &std::path::Path) -> Vec<u8> {
        let viewers = dir.join("data").join("viewers");
        let files: Vec<_> = std::fs::read_dir(&viewers)
            .expect("viewers")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        std::fs::read(&files[0]).expect("read")
    }

    #[test]
    fn a_changed_passphrase_replaces_the_old_one_and_keeps_the_key() {
        let (dir, store, index) = fixture();
        let recovery = enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let before = store.recipients();
        let file_before = viewer_file(dir.path());

        // A wrong current passphrase: refused, counted, nothing written.
        assert!(matches!(
            change(&index, &store, &pass("wrong"), NEW, NEW),
            Err(E2eError::WrongSecret)
        ));
        assert_eq!(index.get_throttle("e2e:1").expect("read").failures, 1);
        assert_eq!(viewer_file(dir.path()), file_before, "file unchanged");
        // A weak or mismatched new one: refused before the current one is tried.
        for (a, b) in [("password1", "password1"), (NEW, "something else")] {
            assert!(change(&index, &store, &pass(PASS), a, b).is_err());
        }
        assert_eq!(index.get_throttle("e2e:1").expect("read").failures, 1);

        change(&index, &store, &pass(PASS), NEW, NEW).expect("change");
        assert!(matches!(
            unlock(&index, Some(UserId(1)), &pass(PASS), 0),
            Err(E2eError::WrongSecret)
        ));
        let viewer = unlock(&index, Some(UserId(1)), &pass(NEW), 0).expect("new one");
        assert_eq!(vec![viewer.public_key().clone()], before, "same key");
        let recovery = Secret::guess(Zeroizing::new(recovery.to_text().to_string()));
        unlock(&index, Some(UserId(1)), &recovery, 0).expect("the recovery key still");
        // The file says the same as the index, and a restart's sync changes nothing.
        let saved = store.saved_viewers().expect("list");
        saved[0]
            .key
            .unlock_with_passphrase(NEW)
            .expect("file has the new lock");
        assert!(sync_saved_viewers(&index, &store).expect("sync").is_empty());

        // The recovery key may stand in for the forgotten passphrase.
        change(&index, &store, &recovery, PASS, PASS).expect("change with the recovery key");
        unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("unlocks");
    }

    #[test]
    fn a_new_recovery_key_retires_the_old_one() {
        let (_dir, store, index) = fixture();
        let old = enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let old_text = old.to_text();
        let old = Secret::guess(old_text.clone());
        let pass_text = Zeroizing::new(PASS.to_owned());
        let wrong = Zeroizing::new("wrong".to_owned());
        assert!(matches!(
            new_recovery_key(&index, &store, UserId(1), &wrong, 0),
            Err(E2eError::WrongSecret)
        ));
        let new = new_recovery_key(&index, &store, UserId(1), &pass_text, 0).expect("new");
        assert!(matches!(
            unlock(&index, Some(UserId(1)), &old, 0),
            Err(E2eError::WrongSecret)
        ));
        let new = Secret::guess(Zeroizing::new(new.to_text().to_string()));
        unlock(&index, Some(UserId(1)), &new, 0).expect("the new one unlocks");
        unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("and the passphrase");
        let saved = store.saved_viewers().expect("list");
        assert!(saved[0]
            .key
            .unlock_with_recovery(&RecoveryKey::parse(&old_text).expect("parse"))
            .is_err());
    }

    /// User 1's row, its key, and that key re-locked under `NEW` (cheaply).
    fn relocked_row() -> impl Fn(&Index) -> (ViewerKeyEntry, LockedViewerKey, LockedViewerKey) {
        |index| {
            let row = index.viewer_key(UserId(1)).expect("read").expect("row");
            let key = locked(&row).expect("key");
            let viewer = key.unlock_with_passphrase(PASS).expect("unlock");
            let new = key
                .with_new_passphrase_with(&viewer, NEW, FAST)
                .expect("relock");
            (row, key, new)
        }
    }

    /// What a re-locking leaves beside the old file before its rename: the old
    /// file's header with `key` (layout in `store::viewer_file`).
    fn leave_new_file(dir: &std::path::Path, key: &LockedViewerKey) -> std::path::PathBuf {
        let viewers = dir.join("data").join("viewers");
        let id = key.public_key().id();
        let mut bytes = std::fs::read(viewers.join(format!("{id}.plv"))).expect("old file");
        bytes.truncate(25);
        bytes.extend_from_slice(&key.to_bytes());
        let tmp = viewers.join(format!("{id}.plv.new"));
        std::fs::write(&tmp, bytes).expect("write .new");
        tmp
    }

    /// A crash after a change's `.new` file was written but before its index row
    /// (the commit point), or an index error there: the next start-up rolls back,
    /// so the old passphrase works and the new one (never confirmed) does not; the
    /// same with a lost index.
    #[test]
    fn a_change_interrupted_before_its_row_is_rolled_back() {
        for lost_index in [false, true] {
            let (dir, store, index) = fixture();
            enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
            let (row, key, new) = relocked_row()(&index);
            let tmp = leave_new_file(dir.path(), &new);
            let index = if lost_index {
                Index::open(&dir.path().join("new index")).expect("index")
            } else {
                index
            };
            let done = sync_saved_viewers(&index, &store).expect("sync");
            assert!(!done.is_empty(), "{done:?}");
            assert!(!tmp.exists(), "the uncommitted file is removed");
            let now = index.viewer_key(UserId(1)).expect("read").expect("row");
            assert_eq!(
                now, row,
                "the old row (lost index: restored from the old file)"
            );
            unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("the old passphrase");
            assert!(matches!(
                unlock(&index, Some(UserId(1)), &pass(NEW), 0),
                Err(E2eError::WrongSecret)
            ));
            assert_eq!(store.saved_viewers().expect("list")[0].key, key);
        }
    }

    /// A crash after the row was written (here also after the old file's retired
    /// lock was zeroed): the next start-up finishes the rename.
    #[test]
    fn a_change_interrupted_after_its_row_is_rolled_forward() {
        let (dir, store, index) = fixture();
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let (row, _, new) = relocked_row()(&index);
        let tmp = leave_new_file(dir.path(), &new);
        let entry = ViewerKeyEntry {
            locked_key: hex::encode(new.to_bytes()),
            ..row
        };
        index.put_viewer_key(UserId(1), &entry).expect("the row");
        let old = tmp.with_extension("");
        let mut bytes = std::fs::read(&old).expect("old");
        let part = LockedViewerKey::PASSPHRASE_PART;
        bytes[25 + part.start..25 + part.end].fill(0);
        std::fs::write(&old, bytes).expect("zeroed");

        let done = sync_saved_viewers(&index, &store).expect("sync");
        assert_eq!(done.len(), 1, "{done:?}");
        assert!(!tmp.exists());
        assert_eq!(store.saved_viewers().expect("list")[0].key, new);
        unlock(&index, Some(UserId(1)), &pass(NEW), 0).expect("the new passphrase");
    }

    /// A file and a row of the same key with other locks: the row is the commit
    /// point, so the file is written again from it (never the row from the file).
    #[test]
    fn a_file_that_differs_from_its_row_is_written_again_from_the_row() {
        let (_dir, store, index) = fixture();
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let (row, key, new) = relocked_row()(&index);
        store
            .save_viewer(&SavedViewer {
                user: 1,
                enrolled_micros: row.enrolled_micros,
                key: new,
            })
            .expect("a file the row does not match");
        let done = sync_saved_viewers(&index, &store).expect("sync");
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(index.viewer_key(UserId(1)).expect("read"), Some(row));
        unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("the row's passphrase");
        assert_eq!(store.saved_viewers().expect("list")[0].key, key);
    }

    /// A shared user's account is removed while their passphrase change runs its
    /// Argon2 (here: in the middle of `relock`'s change step): the change is
    /// refused and neither row nor file comes back.
    #[test]
    fn a_viewer_removed_during_a_relocking_is_not_brought_back() {
        let (dir, store, index) = fixture();
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let (_, _, new) = relocked_row()(&index);
        let relocked = relock(&index, &store, UserId(1), Relocked::Passphrase, |_| {
            assert!(remove_viewer(&index, &store, UserId(1)).expect("remove"));
            Ok((new, ()))
        });
        assert!(
            matches!(relocked, Err(E2eError::NotEnabled)),
            "{relocked:?}"
        );
        assert_eq!(index.viewer_key(UserId(1)).expect("read"), None);
        let viewers = dir.path().join("data").join("viewers");
        let left = std::fs::read_dir(&viewers).expect("dir").count();
        assert_eq!(left, 0, "no file and no .new");
        assert!(store.recipients().is_empty());
    }

    /// `remove_viewer` waits for a re-locking (or unlock) in progress: it takes
    /// [`ONE_AT_A_TIME`]. Held here by the test for a moment.
    #[test]
    fn removing_a_viewer_waits_its_turn() {
        let (_dir, store, index) = fixture();
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        std::thread::scope(|scope| {
            let removal = scope.spawn(|| remove_viewer(&index, &store, UserId(1)));
            std::thread::sleep(std::time::Duration::from_millis(300));
            assert!(
                index.viewer_key(UserId(1)).expect("read").is_some(),
                "not removed while a change holds the turn"
            );
            drop(turn);
            assert!(removal.join().expect("join").expect("remove"));
        });
        assert_eq!(index.viewer_key(UserId(1)).expect("read"), None);
    }

    /// Spaces around a new passphrase (a phone keyboard's trailing space) are
    /// trimmed, as the web unlock trims what is typed, at turning on, at a change
    /// and for a new recovery key.
    #[test]
    fn spaces_around_a_new_passphrase_are_trimmed_like_at_unlock() {
        let (_dir, store, index) = fixture();
        let spaced = format!(" {PASS} ");
        enable(&index, &store, UserId(1), "owner", &spaced, PASS, 0).expect("enable");
        unlock(&index, Some(UserId(1)), &pass(PASS), 0).expect("trimmed at turning on");
        let spaced = format!("{NEW} ");
        change(&index, &store, &pass(PASS), &spaced, &spaced).expect("change");
        unlock(&index, Some(UserId(1)), &pass(NEW), 0).expect("trimmed at a change");
        let typed = Zeroizing::new(format!("{NEW}  "));
        new_recovery_key(&index, &store, UserId(1), &typed, 0).expect("trimmed there too");
    }

    /// New passphrases need the stricter rule; one chosen under the login rule
    /// before it existed still unlocks and may be changed.
    #[test]
    fn a_login_grade_passphrase_is_refused_when_new_but_an_old_one_still_works() {
        const LOGIN_GRADE: &str = "purple elephant";
        let (_dir, store, index) = fixture();
        assert!(crate::auth::password::weakness(LOGIN_GRADE, &["owner"]).is_none());
        assert!(matches!(
            enable(
                &index,
                &store,
                UserId(1),
                "owner",
                LOGIN_GRADE,
                LOGIN_GRADE,
                0
            ),
            Err(E2eError::WeakPassphrase(_))
        ));
        // As an older version stored it.
        let (key, _) = LockedViewerKey::generate_with(LOGIN_GRADE, FAST).expect("key");
        let entry = ViewerKeyEntry {
            locked_key: hex::encode(key.to_bytes()),
            enrolled_micros: 0,
        };
        index.put_viewer_key(UserId(1), &entry).expect("put");
        unlock(&index, Some(UserId(1)), &pass(LOGIN_GRADE), 0).expect("still unlocks");
        assert!(matches!(
            change(&index, &store, &pass(LOGIN_GRADE), LOGIN_GRADE, LOGIN_GRADE),
            Err(E2eError::WeakPassphrase(_))
        ));
        change(&index, &store, &pass(LOGIN_GRADE), NEW, NEW).expect("changed to a strong one");
    }

    #[test]
    fn wrong_passphrases_are_throttled_and_a_right_one_waits_its_turn() {
        let (_dir, store, index) = fixture();
        enable(&index, &store, UserId(1), "owner", PASS, PASS, 0).expect("enable");
        let user = Some(UserId(1));
        let mut now = 1_000_000;
        for _ in 0..throttle::ACCOUNT.free {
            assert!(matches!(
                unlock(&index, user, &pass("wrong guess"), now),
                Err(E2eError::WrongSecret)
            ));
        }
        // The next failure starts a delay: even the right passphrase is refused
        // unlooked-at until it has passed.
        assert!(matches!(
            unlock(&index, user, &pass("wrong guess"), now),
            Err(E2eError::WrongSecret)
        ));
        assert!(matches!(
            unlock(&index, user, &pass(PASS), now),
            Err(E2eError::Throttled { .. })
        ));
        now += 61_000_000;
        unlock(&index, user, &pass(PASS), now).expect("after the delay");
        // Success cleared the counter.
        assert_eq!(
            index.get_throttle("e2e:1").expect("read"),
            Default::default()
        );
        // Another user's counter is separate; a user without a key has nothing.
        assert!(matches!(
            unlock(&index, Some(UserId(2)), &pass(PASS), now),
            Err(E2eError::NotEnabled)
        ));
    }
}
