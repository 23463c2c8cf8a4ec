//! Invitations for shared users. Tree `invitations`: SHA-256 of the invitation's
//! secret (32 bytes) → JSON [`InvitationEntry`]. The secret itself is never stored;
//! an invitation is taken (removed) atomically when it is used, so it works once.

use serde::{Deserialize, Serialize};

use super::users::{Role, SupportGrant, UserId};
use super::{Index, IndexError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationEntry {
    pub created_by: UserId,
    /// Who it is for, as the owner wrote it (shown in the list only).
    pub note: String,
    pub created_micros: i64,
    pub expires_micros: i64,
    /// What accepting it makes: a shared user (the default) or a support account.
    #[serde(default = "shared")]
    pub role: Role,
    /// For a support invitation: what the account may see, until when.
    #[serde(default)]
    pub support: Option<SupportGrant>,
}

fn shared() -> Role {
    Role::Shared
}

fn corrupt(e: impl std::fmt::Display) -> IndexError {
    IndexError::Corrupt {
        key: "invitations".into(),
        reason: e.to_string(),
    }
}

impl Index {
    pub fn put_invitation(
        &self,
        hash: &[u8; 32],
        entry: &InvitationEntry,
    ) -> Result<(), IndexError> {
        let value = serde_json::to_vec(entry).map_err(corrupt)?;
        self.db.open_tree("invitations")?.insert(hash, value)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn get_invitation(&self, hash: &[u8; 32]) -> Result<Option<InvitationEntry>, IndexError> {
        match self.db.open_tree("invitations")?.get(hash)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(corrupt),
        }
    }

    /// Removes and returns an invitation: of two requests racing with the same
    /// secret, exactly one gets it.
    pub fn take_invitation(&self, hash: &[u8; 32]) -> Result<Option<InvitationEntry>, IndexError> {
        let taken = self.db.open_tree("invitations")?.remove(hash)?;
        self.db.flush()?;
        taken
            .map(|v| serde_json::from_slice(&v).map_err(corrupt))
            .transpose()
    }

    /// Every invitation with its hash.
    pub fn all_invitations(&self) -> Result<Vec<([u8; 32], InvitationEntry)>, IndexError> {
        let mut out = Vec::new();
        for kv in self.db.open_tree("invitations")?.iter() {
            let (k, v) = kv?;
            let hash =
                <[u8; 32]>::try_from(k.as_ref()).map_err(|_| corrupt("key is not 32 bytes"))?;
            out.push((hash, serde_json::from_slice(&v).map_err(corrupt)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_is_taken_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path()).expect("open");
        let entry = InvitationEntry {
            created_by: UserId(1),
            note: "grandma".into(),
            created_micros: 1,
            expires_micros: 2,
            role: Role::Shared,
            support: None,
        };
        index.put_invitation(&[7; 32], &entry).expect("put");
        assert_eq!(
            index.all_invitations().expect("all"),
            vec![([7; 32], entry.clone())]
        );
        assert_eq!(
            index.get_invitation(&[7; 32]).expect("get"),
            Some(entry.clone())
        );
        assert_eq!(index.take_invitation(&[7; 32]).expect("take"), Some(entry));
        assert_eq!(index.take_invitation(&[7; 32]).expect("again"), None);
        assert!(index.all_invitations().expect("all").is_empty());
    }
}
