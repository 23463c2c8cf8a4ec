//! API tokens of linked services: making, checking and revoking them.
//!
//! A token reads `plt_<id>_<secret>`: `plt_` so a leaked one is recognisable (secret
//! scanners, a reader of a config file), the token's public id (16 hex digits) so it
//! is found without a scan, and 256 random bits from the OS CSPRNG (64 hex digits).
//! The index keeps only the SHA-256 of the whole string: the secret has full entropy,
//! so a slow password hash would add nothing. The hash is compared in constant time.
//!
//! Tokens are shown once, at creation, and never logged: log lines name a token by its
//! id and name only. A token dies when revoked or when the user who made it is gone:
//! it does not expire, and survives a password change and "log out all". So making one
//! from the web ([`Auth::create_token_confirmed`]) asks for the maker's password again
//! (a borrowed or stolen session is not enough) and tells every owner
//! ([`AlertKind::TokenCreated`]).

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{session, Auth, AuthError, ClientInfo, Session};
use crate::index::{AlertKind, AuditKind, Scope, TokenEntry, TokenId, UserId};

/// What every token starts with.
pub const PREFIX: &str = "plt_";
/// `last_used` is written at most this often: a busy integration polling every second
/// must not cost the SD card a write per request.
pub const TOUCH_INTERVAL_MICROS: i64 = 60 * 1_000_000;
/// Longest name the owner may give a token.
pub const MAX_NAME_CHARS: usize = 64;

/// A new token string for `id`.
pub fn new_token(id: TokenId) -> String {
    format!("{PREFIX}{id}_{}", session::random_hex(32))
}

/// The id a presented token claims, if it has a token's shape at all.
pub fn parse(raw: &str) -> Option<TokenId> {
    let rest = raw.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    id.parse().ok()
}

/// What the index stores of a token (hex SHA-256).
pub fn hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Whether `raw` is the token `entry` was made for (constant time).
pub fn matches(raw: &str, entry: &TokenEntry) -> bool {
    let presented = Sha256::digest(raw.as_bytes());
    let Ok(stored) = hex::decode(&entry.hash) else {
        return false;
    };
    bool::from(presented.as_slice().ct_eq(&stored))
}

/// Whether `last_used` is old enough to be worth writing again at `now`.
pub fn needs_touch(entry: &TokenEntry, now: i64) -> bool {
    entry
        .last_used_micros
        .is_none_or(|last| now - last >= TOUCH_INTERVAL_MICROS || now < last)
}

/// A token's name and scopes as the owner chose them: the name trimmed, the scopes
/// sorted without repeats; refused if the name is empty, too long or has control
/// characters, or no scope is chosen.
fn checked(name: &str, scopes: &[Scope]) -> Result<(String, Vec<Scope>), AuthError> {
    let name = clean_name(name)?;
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(AuthError::Invalid("choose at least one scope".into()));
    }
    Ok((name, scopes))
}

/// A token's name as the owner typed it, trimmed; refused if empty, too long or with
/// control characters.
fn clean_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AuthError::Invalid("give the linked service a name".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(format!(
            "the name must be at most {MAX_NAME_CHARS} characters, without control characters"
        )));
    }
    Ok(name.to_owned())
}

impl Auth {
    /// Makes a token for `user` and returns it with its entry: the only time the
    /// token string exists outside the service that will hold it.
    pub fn create_token(
        &self,
        user: UserId,
        name: &str,
        scopes: &[Scope],
    ) -> Result<(TokenEntry, String), AuthError> {
        let (name, scopes) = checked(name, scopes)?;
        let id = TokenId::random();
        let raw = new_token(id);
        let entry = TokenEntry {
            id,
            name,
            scopes,
            user,
            created_micros: self.now(),
            last_used_micros: None,
            last_address: None,
            hash: hash(&raw),
        };
        self.inner.index.put_token(&entry)?;
        self.inner.index.flush()?;
        tracing::info!(user = %user, token = %id, name = %entry.name, scopes = ?entry.scopes, "linked service created");
        Ok((entry, raw))
    }

    /// Makes a token for the logged-in user after checking their password again (a
    /// wrong one counts as a failed login, as for a password change), and tells every
    /// owner. The name and scopes are checked first: a mistake in the form costs no
    /// password attempt.
    pub async fn create_token_confirmed(
        &self,
        current: &Session,
        password: String,
        client: &ClientInfo,
        name: &str,
        scopes: &[Scope],
    ) -> Result<(TokenEntry, String), AuthError> {
        let (name, scopes) = checked(name, scopes)?;
        let (keys, _attempt) = self
            .confirm_own_password(current, password, client, "linked service")
            .await?;
        let (maker, client) = (current.user.clone(), client.clone());
        self.off_thread(move |auth| {
            let made = auth.create_token(maker.id, &name, &scopes)?;
            auth.clear_failures(&keys)?;
            let scopes: Vec<&str> = made.0.scopes.iter().map(|s| s.as_str()).collect();
            auth.raise_to_owners(
                AlertKind::TokenCreated,
                format!(
                    "{:?} made a linked service token {:?} ({}) from {} at address {}. It never expires: if this was not wanted, revoke it under Linked services.",
                    maker.username,
                    made.0.name,
                    scopes.join(", "),
                    super::device::describe(&client.user_agent),
                    client.ip
                ),
            );
            Ok(made)
        })
        .await
    }

    /// Every token, oldest first.
    pub fn tokens(&self) -> Result<Vec<TokenEntry>, AuthError> {
        let mut all = self.inner.index.all_tokens()?;
        all.sort_by_key(|t| (t.created_micros, t.id));
        Ok(all)
    }

    /// Revokes one token at once; false if there is no such token.
    pub fn revoke_token(&self, by: UserId, id: TokenId) -> Result<bool, AuthError> {
        let found = self.inner.index.remove_token(id)?;
        if found {
            tracing::info!(user = %by, token = %id, "linked service revoked");
        }
        Ok(found)
    }

    /// The live token `raw` is, if any: it must exist, match its stored hash and
    /// belong to a user who still exists. Records the use, from `from`, the address
    /// of the request presenting it: at once from an address other than the last
    /// one recorded (a leaked token used elsewhere), else at most once a minute.
    pub fn token(&self, raw: &str, from: IpAddr) -> Result<Option<TokenEntry>, AuthError> {
        let Some(id) = parse(raw) else {
            return Ok(None);
        };
        let Some(mut entry) = self.inner.index.get_token(id)? else {
            return Ok(None);
        };
        if !matches(raw, &entry) {
            return Ok(None);
        }
        if self.inner.index.get_user(entry.user)?.is_none() {
            // Its user was removed without taking it along: finish the job.
            self.inner.index.remove_token(id)?;
            return Ok(None);
        }
        let now = self.now();
        let from_text = from.to_string();
        let moved = entry.last_address.as_deref() != Some(from_text.as_str());
        if moved || needs_touch(&entry, now) {
            entry.last_used_micros = Some(now);
            self.inner.index.touch_token(id, now, &from_text)?;
            entry.last_address = Some(from_text);
            // As often as "last used" moves (once a minute at most from one address),
            // so a busy integration does not flood the log.
            self.inner.audit.record(
                AuditKind::TokenUsed,
                &crate::audit::Actor {
                    user: Some(entry.user),
                    name: format!("linked service {:?}", entry.name),
                    address: Some(from),
                },
                format!("token {id}"),
            );
        }
        Ok(Some(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fixture;
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn only_the_hash_is_stored_and_the_token_is_accepted_until_revoked() {
        let f = fixture();
        let (entry, raw) = f
            .auth
            .create_token(f.owner, "  Home Assistant ", &[Scope::EventsRead])
            .expect("create");
        assert!(raw.starts_with(PREFIX));
        assert_eq!(raw.len(), PREFIX.len() + 16 + 1 + 64, "256-bit secret");
        assert_eq!(entry.name, "Home Assistant");
        let stored = f.index.get_token(entry.id).expect("get").expect("stored");
        let json = serde_json::to_string(&stored).expect("json");
        let secret = raw.rsplit('_').next().expect("secret");
        assert!(!json.contains(secret), "the secret is not stored");
        assert_eq!(stored.hash, hash(&raw));

        assert_eq!(
            f.auth.token(&raw, LOCAL).expect("check").map(|t| t.id),
            Some(entry.id)
        );
        let mut wrong = raw.clone();
        wrong.pop();
        wrong.push(if raw.ends_with('0') { '1' } else { '0' });
        assert!(
            f.auth.token(&wrong, LOCAL).expect("check").is_none(),
            "one digit off"
        );
        assert!(f
            .auth
            .token("plt_nonsense", LOCAL)
            .expect("check")
            .is_none());
        assert!(f.auth.token("", LOCAL).expect("check").is_none());

        assert!(f.auth.revoke_token(f.owner, entry.id).expect("revoke"));
        assert!(
            f.auth.token(&raw, LOCAL).expect("check").is_none(),
            "revoked"
        );
        assert!(!f.auth.revoke_token(f.owner, entry.id).expect("again"));
    }

    #[test]
    fn last_used_is_written_at_most_once_a_minute() {
        let f = fixture();
        let (entry, raw) = f
            .auth
            .create_token(f.owner, "Doorbell", &[Scope::TriggerWrite])
            .expect("create");
        let last = || {
            f.index
                .get_token(entry.id)
                .expect("get")
                .expect("stored")
                .last_used_micros
        };
        assert_eq!(last(), None, "never used");
        let t0 = f.auth.now();
        f.auth.token(&raw, LOCAL).expect("use");
        assert_eq!(last(), Some(t0));
        f.clock.advance_micros(59_000_000);
        f.auth.token(&raw, LOCAL).expect("use");
        assert_eq!(last(), Some(t0), "not rewritten within the minute");
        f.clock.advance_micros(1_000_000);
        f.auth.token(&raw, LOCAL).expect("use");
        assert_eq!(last(), Some(t0 + 60_000_000), "rewritten after a minute");
    }

    /// A leaked token used from a second address within the minute is logged at
    /// once, with that address; back and forth, each move is logged, and the same
    /// address again within the minute is not.
    #[test]
    fn a_use_from_another_address_is_logged_at_once() {
        let f = fixture();
        let (entry, raw) = f
            .auth
            .create_token(f.owner, "Doorbell", &[Scope::TriggerWrite])
            .expect("create");
        let (home, elsewhere): (IpAddr, IpAddr) = (
            "203.0.113.1".parse().expect("ip"),
            "198.51.100.7".parse().expect("ip"),
        );
        let used_from = || {
            f.index
                .audit_entries(&crate::index::AuditQuery {
                    kind: Some(AuditKind::TokenUsed),
                    limit: 100,
                    ..Default::default()
                })
                .expect("audit")
                .into_iter()
                .map(|e| e.address.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        f.auth.token(&raw, home).expect("use");
        f.clock.advance_micros(10_000_000);
        f.auth.token(&raw, elsewhere).expect("use");
        assert_eq!(used_from(), ["198.51.100.7", "203.0.113.1"]);
        let stored = f.index.get_token(entry.id).expect("get").expect("stored");
        assert_eq!(stored.last_address.as_deref(), Some("198.51.100.7"));
        f.clock.advance_micros(10_000_000);
        f.auth.token(&raw, elsewhere).expect("use");
        assert_eq!(used_from().len(), 2, "same address within the minute");
        f.auth.token(&raw, home).expect("use");
        assert_eq!(used_from()[0], "203.0.113.1", "moved back");
        assert_eq!(used_from().len(), 3);
    }

    #[test]
    fn a_token_dies_with_its_user_and_names_and_scopes_are_checked() {
        let f = fixture();
        assert!(matches!(
            f.auth.create_token(f.owner, "   ", &[Scope::LiveRead]),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            f.auth.create_token(f.owner, "x", &[]),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            f.auth
                .create_token(f.owner, "bad\nname", &[Scope::LiveRead]),
            Err(AuthError::Invalid(_))
        ));
        let (_, raw) = f
            .auth
            .create_token(
                UserId(7),
                "Orphan",
                &[Scope::LiveRead, Scope::LiveRead, Scope::EventsRead],
            )
            .expect("create");
        let (mine, _) = f
            .auth
            .create_token(f.owner, "Mine", &[Scope::TriggerWrite])
            .expect("create");
        assert!(
            f.auth.token(&raw, LOCAL).expect("check").is_none(),
            "user 7 does not exist"
        );
        let left: Vec<TokenId> = f
            .auth
            .tokens()
            .expect("list")
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(left, vec![mine.id], "the orphan was removed");
        assert_eq!(f.index.remove_user_tokens(f.owner).expect("remove user"), 1);
        assert!(f.auth.tokens().expect("list").is_empty());
    }
}
