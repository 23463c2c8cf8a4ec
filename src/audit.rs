//! The audit log service: records who did what (logins, device log-outs, viewing,
//! downloading and deleting video) and lists it back for the owner and, limited to
//! their own entries, for each user.
//!
//! Storage is [`crate::index`]'s append-only `audit` tree. Recording an entry never
//! fails the action it describes: a person who just deleted a recording must not be
//! told it failed because the log could not be written (the recording is gone either
//! way). A write that fails is logged at error level instead, so the gap is visible.
//! Entries are small (≈200 bytes); a busy house writes a few hundred a day, well under
//! 100 MB in a decade, so nothing prunes them. The one way to empty the log is the
//! owner's "erase all data" (`crate::data_rights`), which leaves an entry saying so.

use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::Clock;
use crate::index::{AuditEntry, AuditKind, AuditQuery, Index, IndexError, UserId};

/// How many entries a page shows at most.
pub const PAGE_LIMIT: usize = 500;

/// Who did it, for an entry.
#[derive(Clone, Debug)]
pub struct Actor {
    /// The account the entry belongs to (see [`AuditEntry::user`]).
    pub user: Option<UserId>,
    /// The shown name: a user name, or what was typed at a failed login.
    pub name: String,
    pub address: Option<IpAddr>,
}

impl Actor {
    pub fn user(id: UserId, name: &str, address: Option<IpAddr>) -> Actor {
        Actor {
            user: Some(id),
            name: name.to_owned(),
            address,
        }
    }
}

/// Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    index: Index,
    clock: Arc<dyn Clock>,
}

impl Audit {
    pub fn new(index: Index, clock: Arc<dyn Clock>) -> Audit {
        Audit { index, clock }
    }

    /// Appends an entry. Call from a blocking context (it writes to sled).
    pub fn record(&self, kind: AuditKind, actor: &Actor, subject: impl Into<String>) {
        self.record_checked(kind, actor, subject);
    }

    /// Like [`record`](Self::record), and says whether the entry was written (a
    /// failure is logged all the same): for a caller that remembers what it logged,
    /// so that a failed write is not remembered as written.
    pub fn record_checked(
        &self,
        kind: AuditKind,
        actor: &Actor,
        subject: impl Into<String>,
    ) -> bool {
        let entry = AuditEntry {
            time_micros: self.clock.now_micros(),
            kind,
            user: actor.user,
            // What was typed at a login form is bounded before it is stored.
            actor: actor.name.chars().take(64).collect(),
            subject: subject.into(),
            address: actor.address.map(|a| a.to_string()),
        };
        if let Err(e) = self.index.add_audit(&entry) {
            tracing::error!(kind = %kind, "cannot write an audit log entry: {e}");
            return false;
        }
        true
    }

    /// Entries matching `query`, newest first, at most [`PAGE_LIMIT`].
    pub fn list(&self, mut query: AuditQuery) -> Result<Vec<AuditEntry>, IndexError> {
        query.limit = query.limit.clamp(1, PAGE_LIMIT);
        self.index.audit_entries(&query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimulatedClock;

    #[test]
    fn records_carry_the_clock_time_and_a_bounded_actor_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let clock = SimulatedClock::new(1_000_000);
        let audit = Audit::new(index, Arc::new(clock.clone()));
        let typed = "x".repeat(500);
        let actor = Actor {
            user: None,
            name: typed,
            address: Some("192.0.2.7".parse().expect("ip")),
        };
        audit.record(AuditKind::LoginFailed, &actor, "password");
        clock.advance_micros(5);
        audit.record(
            AuditKind::LoginOk,
            &Actor::user(UserId(3), "alice", None),
            "",
        );
        let all = audit
            .list(AuditQuery {
                limit: 0,
                ..Default::default()
            })
            .expect("list");
        assert_eq!(all.len(), 1, "a limit of 0 still shows one entry");
        let all = audit
            .list(AuditQuery {
                limit: 10,
                ..Default::default()
            })
            .expect("list");
        assert_eq!(all[0].time_micros, 1_000_005);
        assert_eq!(all[0].user, Some(UserId(3)));
        assert_eq!(all[1].actor.chars().count(), 64);
        assert_eq!(all[1].address.as_deref(), Some("192.0.2.7"));
    }
}
