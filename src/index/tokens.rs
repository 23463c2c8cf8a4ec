//! API tokens of linked services (Home Assistant, a doorbell button) in the index:
//! tree `tokens`, token id (u64 BE) → JSON [`TokenEntry`].
//!
//! Only the SHA-256 of a token's secret is stored (`auth::token` makes and checks
//! secrets), so a copy of the index lets no service in. Each token names the user who
//! made it: when that user is removed, [`Index::remove_user_tokens`] ends their tokens
//! with their sessions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::users::UserId;
use super::{Index, IndexError};

/// A token's public identifier: 64 random bits, shown as 16 hex digits. It is part of
/// the token string (so a presented token is found without scanning) and of the
/// revoke form; it is not a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TokenId(pub u64);

impl TokenId {
    pub fn random() -> TokenId {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        TokenId(u64::from_be_bytes(bytes))
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for TokenId {
    type Err = ();
    /// Exactly 16 hex digits; anything else is not a token id.
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        u64::from_str_radix(s, 16).map(TokenId).map_err(|_| ())
    }
}

/// What a token may do: a fixed set, so a typo in a form cannot invent a permission.
/// `auth::policy` decides what each scope allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Read events (`GET /api/v1/events`, the event stream).
    #[serde(rename = "events:read")]
    EventsRead,
    /// Watch live video (reserved for a live API; no route uses it yet).
    #[serde(rename = "live:read")]
    LiveRead,
    /// Trigger a camera's recording (the doorbell).
    #[serde(rename = "trigger:write")]
    TriggerWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::EventsRead, Scope::LiveRead, Scope::TriggerWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EventsRead => "events:read",
            Scope::LiveRead => "live:read",
            Scope::TriggerWrite => "trigger:write",
        }
    }
}

impl FromStr for Scope {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub id: TokenId,
    /// What the owner called it ("Home Assistant").
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The user who made it; the token dies with them.
    pub user: UserId,
    pub created_micros: i64,
    /// Last accepted use, written at most once a minute (`auth::token::needs_touch`)
    /// or when the address changes.
    pub last_used_micros: Option<i64>,
    /// Where that use came from (`None` before its first use, or in an entry written
    /// before this was kept): a use from elsewhere is logged at once.
    #[serde(default)]
    pub last_address: Option<String>,
    /// SHA-256 of the whole token string (hex). The token itself is never stored.
    pub hash: String,
}

impl fmt::Debug for TokenEntry {
    /// Leaves out the hash: nothing about the secret belongs in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Index {
    fn tokens(&self) -> Result<sled::Tree, IndexError> {
        Ok(self.db.open_tree("tokens")?)
    }

    /// Inserts or replaces a token. Not flushed (a last-used update need not be
    /// durable); `auth` flushes after creating one.
    pub fn put_token(&self, entry: &TokenEntry) -> Result<(), IndexError> {
        let value = serde_json::to_vec(entry).map_err(|e| IndexError::Corrupt {
            key: format!("tokens/{}", entry.id),
            reason: e.to_string(),
        })?;
        self.tokens()?.insert(entry.id.0.to_be_bytes(), value)?;
        Ok(())
    }

    pub fn get_token(&self, id: TokenId) -> Result<Option<TokenEntry>, IndexError> {
        match self.tokens()?.get(id.0.to_be_bytes())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| IndexError::Corrupt {
                    key: format!("tokens/{id}"),
                    reason: e.to_string(),
                }),
        }
    }

    /// Every token. A damaged entry is skipped with a warning (it only locks a
    /// service out).
    pub fn all_tokens(&self) -> Result<Vec<TokenEntry>, IndexError> {
        let mut out = Vec::new();
        for kv in self.tokens()?.iter() {
            let (_, v) = kv?;
            match serde_json::from_slice(&v) {
                Ok(entry) => out.push(entry),
                Err(e) => tracing::warn!("skipping damaged token entry: {e}"),
            }
        }
        Ok(out)
    }

    /// Records a use of a token at `at_micros` from `from`, only if the token still
    /// exists: a request that checked a token just before it was revoked must not
    /// write it back.
    pub fn touch_token(&self, id: TokenId, at_micros: i64, from: &str) -> Result<(), IndexError> {
        self.tokens()?.update_and_fetch(id.0.to_be_bytes(), |old| {
            let old = old?;
            let Ok(mut entry) = serde_json::from_slice::<TokenEntry>(old) else {
                return Some(old.to_vec());
            };
            entry.last_used_micros = Some(at_micros);
            entry.last_address = Some(from.to_owned());
            Some(serde_json::to_vec(&entry).unwrap_or_else(|_| old.to_vec()))
        })?;
        Ok(())
    }

    /// Revokes a token now (flushed); false if there was none.
    pub fn remove_token(&self, id: TokenId) -> Result<bool, IndexError> {
        let found = self.tokens()?.remove(id.0.to_be_bytes())?.is_some();
        self.db.flush()?;
        Ok(found)
    }

    /// Removes every token `user` made (the user is being removed); returns how many.
    pub fn remove_user_tokens(&self, user: UserId) -> Result<usize, IndexError> {
        let tree = self.tokens()?;
        let mut n = 0;
        for entry in self.all_tokens()? {
            if entry.user == user {
                tree.remove(entry.id.0.to_be_bytes())?;
                n += 1;
            }
        }
        self.db.flush()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, user: u64) -> TokenEntry {
        TokenEntry {
            id: TokenId(id),
            name: "Doorbell button".into(),
            scopes: vec![Scope::TriggerWrite],
            user: UserId(user),
            created_micros: 1,
            last_used_micros: None,
            last_address: None,
            hash: "ab".repeat(32),
        }
    }

    #[test]
    fn tokens_are_stored_by_id_revoked_one_by_one_and_per_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        index.put_token(&entry(1, 7)).expect("put");
        index.put_token(&entry(2, 7)).expect("put");
        index.put_token(&entry(3, 8)).expect("put");
        assert_eq!(index.get_token(TokenId(1)).expect("get"), Some(entry(1, 7)));
        assert!(index.remove_token(TokenId(1)).expect("revoke"));
        assert!(!index.remove_token(TokenId(1)).expect("again"));
        assert_eq!(index.get_token(TokenId(1)).expect("get"), None);
        assert_eq!(index.get_token(TokenId(2)).expect("get"), Some(entry(2, 7)));
        assert_eq!(index.remove_user_tokens(UserId(7)).expect("user"), 1);
        let left: Vec<TokenId> = index
            .all_tokens()
            .expect("all")
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(left, vec![TokenId(3)]);
    }

    #[test]
    fn a_use_recorded_after_revocation_does_not_bring_the_token_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        index.put_token(&entry(1, 7)).expect("put");
        index
            .touch_token(TokenId(1), 99, "192.0.2.1")
            .expect("touch");
        assert_eq!(
            index
                .get_token(TokenId(1))
                .expect("get")
                .and_then(|t| t.last_used_micros),
            Some(99)
        );
        assert!(index.remove_token(TokenId(1)).expect("revoke"));
        index
            .touch_token(TokenId(1), 100, "192.0.2.1")
            .expect("touch");
        assert_eq!(index.get_token(TokenId(1)).expect("get"), None);
    }

    #[test]
    fn scopes_round_trip_through_their_names_and_nothing_else_is_a_scope() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(
                serde_json::to_string(&scope).expect("json"),
                format!("\"{}\"", scope.as_str())
            );
        }
        assert!("admin".parse::<Scope>().is_err());
        assert!("events:write".parse::<Scope>().is_err());
        assert_eq!("00000000000000ff".parse::<TokenId>(), Ok(TokenId(255)));
        assert!("ff".parse::<TokenId>().is_err());
        assert!("+000000000000fff".parse::<TokenId>().is_err());
    }

    #[test]
    fn debug_output_leaves_out_the_hash() {
        let text = format!("{:?}", entry(1, 7));
        assert!(!text.contains("abab"), "{text}");
    }
}
