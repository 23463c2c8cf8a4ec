//! Accounts in the index: tree `users` (user id u64 BE → JSON [`UserEntry`]) and tree
//! `usernames` (lower-cased user name → user id), changed together in one transaction.
//!
//! Secrets are stored only as what the auth module derived from them: an Argon2id PHC
//! string for the password, salted SHA-256 for recovery codes, a hash for device
//! cookies. The TOTP seed must be kept as is (the server computes codes from it).

use std::fmt;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{Index, IndexError};

/// A user's identifier: 64 random bits, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserId(pub u64);

impl UserId {
    pub fn random() -> UserId {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        UserId(u64::from_be_bytes(bytes))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What a user may do is decided by `auth::policy` from this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Shared,
    /// A helper with time-limited access for troubleshooting (see [`SupportGrant`]).
    Support,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Shared => "shared user",
            Role::Support => "support",
        }
    }
}

/// What a support account may see, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportGrant {
    /// The account stops working (and is removed) at this time.
    pub expires_micros: i64,
    /// The recordings the owner ticked; nothing else of the video.
    pub recordings: Vec<crate::model::RecordingId>,
    pub granted_by: UserId,
}

/// An enrolled TOTP authenticator.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEntry {
    /// The shared secret, base32 (RFC 4648, no padding).
    /// The base32 seed sealed under the master key (hex), never in clear.
    pub secret_sealed: String,
    /// The last time step a code was accepted for; a code for this step or an earlier
    /// one is refused (replay).
    pub last_step: u64,
}

impl fmt::Debug for TotpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEntry")
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// One single-use recovery code, salted and hashed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodeEntry {
    pub salt: String,
    pub hash: String,
    pub used: bool,
}

/// The one-time code the owner was given when resetting this user's two-step
/// verification: enrolling again needs it besides the password, so the password alone
/// never re-opens an account whose second factor was reset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReenrolmentCode {
    /// Salted hash, as recovery codes are stored (`used` stays false: it is deleted
    /// when used).
    pub code: RecoveryCodeEntry,
    pub expires_micros: i64,
}

impl fmt::Debug for RecoveryCodeEntry {
    /// Leaves out the salt and hash: a hash of a short code is worth guessing at.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryCodeEntry")
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    pub id: UserId,
    /// As the user typed it; look-ups are case-insensitive.
    pub username: String,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Where security alerts are mailed, if anywhere.
    pub email: Option<String>,
    pub totp: Option<TotpEntry>,
    pub recovery_codes: Vec<RecoveryCodeEntry>,
    pub created_micros: i64,
    /// Hashes of device cookies this user has completed a login from (newest last).
    pub known_devices: Vec<String>,
    /// Only for [`Role::Support`].
    #[serde(default)]
    pub support: Option<SupportGrant>,
    /// Set by the owner's reset of two-step verification until the user enrols again.
    #[serde(default)]
    pub reenrolment: Option<ReenrolmentCode>,
}

impl UserEntry {
    /// Whether the owner reset this account's two-step verification and it is not set
    /// up again, so enrolment needs the owner's one-time code (`reenrolment`). An
    /// account reset before that code existed has none; it is told from an invitee
    /// who never enrolled (who enrols with the password alone) by its known devices:
    /// only a completed login, always after enrolment, adds one, and no reset ever
    /// removed them.
    pub fn two_step_reset(&self) -> bool {
        self.totp.is_none() && (self.reenrolment.is_some() || !self.known_devices.is_empty())
    }
}

impl fmt::Debug for UserEntry {
    /// Leaves out the password hash and the secrets' hashes (the TOTP entry and
    /// recovery codes print without them), and the e-mail address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEntry")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("totp", &self.totp)
            .field("recovery_codes", &self.recovery_codes)
            .field("created_micros", &self.created_micros)
            .field("support", &self.support)
            .field("reenrolment_pending", &self.reenrolment.is_some())
            .finish_non_exhaustive()
    }
}

fn username_key(username: &str) -> Vec<u8> {
    username.to_lowercase().into_bytes()
}

fn corrupt(key: &str, e: impl fmt::Display) -> IndexError {
    IndexError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    }
}

fn decode_user(key: &[u8], value: &[u8]) -> Result<UserEntry, IndexError> {
    serde_json::from_slice(value).map_err(|e| corrupt(&format!("users/{}", hex::encode(key)), e))
}

/// Why [`Index::update_user`] did not apply a change.
#[derive(Debug)]
pub enum UpdateError<E> {
    /// The closure refused; nothing was written.
    Refused(E),
    NoSuchUser,
    Index(IndexError),
}

impl Index {
    fn users(&self) -> Result<(sled::Tree, sled::Tree), IndexError> {
        Ok((self.db.open_tree("users")?, self.db.open_tree("usernames")?))
    }

    /// Adds a user; fails with `Ok(false)` if the name (any case) is taken.
    pub fn create_user(&self, user: &UserEntry) -> Result<bool, IndexError> {
        let (users, names) = self.users()?;
        let value = serde_json::to_vec(user).map_err(|e| corrupt("users", e))?;
        let name = username_key(&user.username);
        let id = user.id.0.to_be_bytes();
        let created = (&users, &names)
            .transaction(|(users, names)| {
                if names.get(&name)?.is_some() || users.get(id)?.is_some() {
                    return Ok(false);
                }
                names.insert(name.as_slice(), &id)?;
                users.insert(&id, value.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(true)
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => IndexError::Database(e),
                TransactionError::Abort(()) => corrupt("users", "transaction aborted"),
            })?;
        self.db.flush()?;
        Ok(created)
    }

    /// Removes a user and their name; false if there was none.
    pub fn remove_user(&self, id: UserId) -> Result<bool, IndexError> {
        let Some(user) = self.get_user(id)? else {
            return Ok(false);
        };
        let (users, names) = self.users()?;
        let name = username_key(&user.username);
        let key = id.0.to_be_bytes();
        (&users, &names)
            .transaction(|(users, names)| {
                users.remove(&key)?;
                if names.get(&name)?.as_deref() == Some(&key[..]) {
                    names.remove(name.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => IndexError::Database(e),
                TransactionError::Abort(()) => corrupt("users", "transaction aborted"),
            })?;
        self.db.flush()?;
        Ok(true)
    }

    pub fn get_user(&self, id: UserId) -> Result<Option<UserEntry>, IndexError> {
        let (users, _) = self.users()?;
        let key = id.0.to_be_bytes();
        users.get(key)?.map(|v| decode_user(&key, &v)).transpose()
    }

    pub fn find_user(&self, username: &str) -> Result<Option<UserEntry>, IndexError> {
        let (_, names) = self.users()?;
        match names.get(username_key(username))? {
            None => Ok(None),
            Some(id) => {
                let id = <[u8; 8]>::try_from(id.as_ref())
                    .map_err(|_| corrupt("usernames", "id is not 8 bytes"))?;
                self.get_user(UserId(u64::from_be_bytes(id)))
            }
        }
    }

    pub fn all_users(&self) -> Result<Vec<UserEntry>, IndexError> {
        let (users, _) = self.users()?;
        users
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode_user(&k, &v)
            })
            .collect()
    }

    /// Reads, changes and writes one user atomically: concurrent updates (two
    /// requests with the same TOTP code) are serialised, so `change` sees the result
    /// of the other. `change` may run more than once and must not have side effects.
    /// The user name cannot be changed here.
    pub fn update_user<T, E: Clone>(
        &self,
        id: UserId,
        change: impl Fn(&mut UserEntry) -> Result<T, E>,
    ) -> Result<T, UpdateError<E>> {
        let (users, _) = self.users().map_err(UpdateError::Index)?;
        let key = id.0.to_be_bytes();
        let result = users.transaction(|tx| {
            let Some(value) = tx.get(key)? else {
                return Err(ConflictableTransactionError::Abort(UpdateError::NoSuchUser));
            };
            let mut user = decode_user(&key, &value)
                .map_err(|e| ConflictableTransactionError::Abort(UpdateError::Index(e)))?;
            let before = user.username.clone();
            let out = change(&mut user)
                .map_err(|e| ConflictableTransactionError::Abort(UpdateError::Refused(e)))?;
            user.username = before;
            let value = serde_json::to_vec(&user).map_err(|e| {
                ConflictableTransactionError::Abort(UpdateError::Index(corrupt("users", e)))
            })?;
            tx.insert(&key, value)?;
            Ok(out)
        });
        let out = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => UpdateError::Index(IndexError::Database(e)),
        })?;
        self.db.flush().map_err(|e| UpdateError::Index(e.into()))?;
        Ok(out)
    }
}

impl<E: Clone> Clone for UpdateError<E> {
    fn clone(&self) -> Self {
        match self {
            UpdateError::Refused(e) => UpdateError::Refused(e.clone()),
            UpdateError::NoSuchUser => UpdateError::NoSuchUser,
            UpdateError::Index(e) => UpdateError::Index(corrupt("users", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserEntry {
        UserEntry {
            id: UserId::random(),
            username: name.into(),
            role: Role::Owner,
            password_hash: "$argon2id$…".into(),
            email: None,
            totp: None,
            recovery_codes: Vec::new(),
            created_micros: 1,
            known_devices: Vec::new(),
            support: None,
            reenrolment: None,
        }
    }

    #[test]
    fn user_names_are_unique_ignoring_case_and_found_either_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let alice = user("Alice");
        assert!(index.create_user(&alice).expect("create"));
        assert!(!index.create_user(&user("alice")).expect("create"));
        assert_eq!(index.find_user("ALICE").expect("find"), Some(alice.clone()));
        assert_eq!(index.find_user("bob").expect("find"), None);
        assert_eq!(index.all_users().expect("all").len(), 1);
    }

    #[test]
    fn update_user_applies_or_refuses_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let alice = user("alice");
        index.create_user(&alice).expect("create");
        let r: Result<(), UpdateError<&str>> = index.update_user(alice.id, |u| {
            u.email = Some("a@example.org".into());
            Ok(())
        });
        assert!(r.is_ok());
        let r: Result<(), UpdateError<&str>> = index.update_user(alice.id, |u| {
            u.email = None;
            Err("no")
        });
        assert!(matches!(r, Err(UpdateError::Refused("no"))));
        let stored = index.get_user(alice.id).expect("get").expect("exists");
        assert_eq!(stored.email.as_deref(), Some("a@example.org"));
        let r: Result<(), UpdateError<&str>> = index.update_user(UserId(7), |_| Ok(()));
        assert!(matches!(r, Err(UpdateError::NoSuchUser)));
    }
}
