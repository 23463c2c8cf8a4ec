//! Data rights (issue 5): each user's personal data as JSON, the owner's archive of
//! everything, and the owner's "erase all data".
//!
//! What is never in any of them: password hashes, TOTP seeds, recovery codes (their
//! hashes included), session ids or the handles derived from them, API tokens or
//! their hashes, invitation and share-link secrets or check values. The JSON types
//! below are built field by field from the index's entries (never by serialising an
//! entry whole), so a secret added to an entry later does not leak by default.
//!
//! Erasing destroys keys first: every recording, thumbnail and share copy is
//! crypto-shredded (`retention`, `share`) before any index entry about the house is
//! removed, so a crash half-way leaves less readable, never more. The owner's account
//! stays; the audit log is replaced by one entry saying it was erased.
//!
//! Calls the index, store, auth, share and export services; blocking throughout.

use std::collections::HashSet;
use std::io::Write;

use serde::Serialize;

use crate::archive::{ArchiveError, TarWriter};
use crate::auth::{session_actor, Auth, AuthError, Session};
use crate::clock::rfc3339;
use crate::export::{self, ExportError, RecordingInfo, Request};
use crate::index::{
    AlertEntry, AuditEntry, AuditKind, AuditQuery, EventEntry, Index, IndexError,
    NotificationPrefs, RecordingState, Role, UserEntry, UserId,
};
use crate::model::EventId;
use crate::retention::{self, RetentionError};
use crate::share::{ShareError, Shares};
use crate::store::Store;

/// The version of the JSON layouts below; bumped when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error(transparent)]
    Share(#[from] ShareError),
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("only the owner can do this")]
    NotOwner,
}

/// An account, without any secret.
#[derive(Debug, Serialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub email: Option<String>,
    pub created: String,
    pub two_step_enrolled: bool,
    /// Support access ends then (support helpers only).
    pub support_access_until: Option<String>,
}

impl From<&UserEntry> for Account {
    fn from(u: &UserEntry) -> Account {
        Account {
            id: u.id.to_string(),
            name: u.username.clone(),
            role: u.role.label(),
            email: u.email.clone(),
            created: rfc3339(u.created_micros),
            two_step_enrolled: u.totp.is_some(),
            support_access_until: u.support.as_ref().map(|g| rfc3339(g.expires_micros)),
        }
    }
}

/// A logged-in device (no session id, no handle).
#[derive(Debug, Serialize)]
pub struct Device {
    pub description: String,
    pub ip: String,
    pub first_seen: String,
    pub last_seen: String,
    pub this_device: bool,
}

#[derive(Debug, Serialize)]
pub struct AuditLine {
    pub time: String,
    pub kind: AuditKind,
    pub actor: String,
    pub subject: String,
    pub address: Option<String>,
}

impl From<AuditEntry> for AuditLine {
    fn from(e: AuditEntry) -> AuditLine {
        AuditLine {
            time: rfc3339(e.time_micros),
            kind: e.kind,
            actor: e.actor,
            subject: e.subject,
            address: e.address,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AlertLine {
    pub time: String,
    pub message: String,
}

impl From<AlertEntry> for AlertLine {
    fn from(a: AlertEntry) -> AlertLine {
        AlertLine {
            time: rfc3339(a.time_micros),
            message: a.message,
        }
    }
}

/// One user's personal data (`/my-data.json`).
#[derive(Debug, Serialize)]
pub struct PersonalData {
    pub format_version: u32,
    pub generated: String,
    pub account: Account,
    pub devices: Vec<Device>,
    pub notification_preferences: NotificationPrefs,
    /// Everything the audit log holds about this account, newest first.
    pub audit_entries: Vec<AuditLine>,
    pub security_alerts: Vec<AlertLine>,
}

/// Every audit entry (of `user`, if given), with no page limit, newest first.
fn all_audit(index: &Index, user: Option<UserId>) -> Result<Vec<AuditLine>, IndexError> {
    Ok(index
        .audit_entries(&AuditQuery {
            user,
            limit: usize::MAX,
            ..Default::default()
        })?
        .into_iter()
        .map(AuditLine::from)
        .collect())
}

/// The personal data of the session's user.
pub fn personal_data(
    auth: &Auth,
    index: &Index,
    session: &Session,
) -> Result<PersonalData, DataError> {
    let user = &session.user;
    let devices = auth
        .devices(session)?
        .into_iter()
        .map(|d| Device {
            description: d.description,
            ip: d.ip,
            first_seen: rfc3339(d.first_seen_micros),
            last_seen: rfc3339(d.last_seen_micros),
            this_device: d.this_device,
        })
        .collect();
    Ok(PersonalData {
        format_version: FORMAT_VERSION,
        generated: rfc3339(auth.now()),
        account: Account::from(user),
        devices,
        notification_preferences: index.notification_prefs(user.id)?,
        audit_entries: all_audit(index, Some(user.id))?,
        security_alerts: auth
            .alerts(user.id)?
            .into_iter()
            .map(AlertLine::from)
            .collect(),
    })
}

#[derive(Debug, Serialize)]
struct EventLine {
    id: String,
    camera: String,
    start: String,
    end: String,
    triggers: Vec<String>,
    peak_score: f32,
    recordings: Vec<String>,
    /// The thumbnail's path in the archive, if it has one.
    thumbnail: Option<String>,
}

#[derive(Debug, Serialize)]
struct RecordingLine {
    #[serde(flatten)]
    info: RecordingInfo,
    /// The MP4's path in the archive (finished recordings only).
    file: Option<String>,
}

#[derive(Debug, Serialize)]
struct ShareLine {
    id: String,
    recording: String,
    /// Set when the link is to an event's clip rather than one recording.
    event: Option<String>,
    camera: String,
    created_by: String,
    created: String,
    expires: String,
    views: u32,
    max_views: Option<u32>,
}

#[derive(Debug, Serialize)]
struct TokenLine {
    name: String,
    scopes: Vec<String>,
    created: String,
    last_used: Option<String>,
}

/// `data.json` of the archive of everything.
#[derive(Debug, Serialize)]
struct Everything {
    format_version: u32,
    generated: String,
    users: Vec<Account>,
    events: Vec<EventLine>,
    recordings: Vec<RecordingLine>,
    share_links: Vec<ShareLine>,
    linked_services: Vec<TokenLine>,
    /// The whole audit log, newest first.
    audit_log: Vec<AuditLine>,
}

fn recording_file(info: &RecordingInfo) -> String {
    format!("recordings/{}/{}.mp4", info.camera, info.id)
}

fn thumbnail_file(event: &EventEntry) -> String {
    format!("thumbnails/{}/{}.jpg", event.camera, event.id)
}

/// `planned`, once every chunk it reads has been authenticated (a full decrypt whose
/// output is dropped). An archive entry's size is written before its bytes, so a
/// damaged chunk found while writing would end the whole archive in a truncated
/// entry; found here, only that recording is left out.
fn verified(store: &Store, planned: export::Planned) -> Result<export::Planned, ExportError> {
    planned.write_to(store, &mut std::io::sink())?;
    Ok(planned)
}

/// What an archive held.
#[derive(Debug, Default)]
pub struct ArchiveSummary {
    pub recordings: usize,
    pub thumbnails: usize,
    /// Recordings that could not be exported (named in `export-errors.txt`).
    pub failed: usize,
}

/// Writes the archive of everything to `out`: `data.json`, each finished recording as
/// `recordings/<camera>/<id>.mp4`, each event thumbnail as
/// `thumbnails/<camera>/<event>.jpg`, and `export-errors.txt` if a recording could not
/// be exported. Streams: one recording's layout at a time is in memory, never the
/// video. `data.json` itself is built in memory (its size goes in its header first).
pub fn write_everything(
    store: &Store,
    index: &Index,
    now_micros: i64,
    out: impl Write,
    viewer: Option<std::sync::Arc<crate::store::e2e::ViewerSecret>>,
) -> Result<ArchiveSummary, DataError> {
    let mtime = u64::try_from(now_micros / 1_000_000).unwrap_or(0);
    let mut recordings: Vec<_> = index
        .all_recordings()?
        .into_iter()
        .filter(|r| r.state != RecordingState::Deleting)
        .collect();
    recordings.sort_by(|a, b| (&a.camera, a.start_micros).cmp(&(&b.camera, b.start_micros)));
    let mut events = index.all_events()?;
    events.sort_by(|a, b| (&a.camera, a.start_micros).cmp(&(&b.camera, b.start_micros)));
    let everything = Everything {
        format_version: FORMAT_VERSION,
        generated: rfc3339(now_micros),
        users: index.all_users()?.iter().map(Account::from).collect(),
        events: events
            .iter()
            .map(|e| EventLine {
                id: e.id.to_string(),
                camera: e.camera.to_string(),
                start: rfc3339(e.start_micros),
                end: rfc3339(e.end_micros),
                triggers: e.triggers.iter().map(|t| t.as_str().to_owned()).collect(),
                peak_score: e.peak_score,
                recordings: e.recordings.iter().map(|r| r.to_string()).collect(),
                thumbnail: e.has_thumbnail.then(|| thumbnail_file(e)),
            })
            .collect(),
        recordings: recordings
            .iter()
            .map(|r| {
                let info = RecordingInfo::from(r);
                let file = (r.state == RecordingState::Finished).then(|| recording_file(&info));
                RecordingLine { info, file }
            })
            .collect(),
        share_links: index
            .all_shares()?
            .into_iter()
            .map(|s| ShareLine {
                id: format!("{:016x}", s.id),
                recording: s.recording.to_string(),
                event: s.event.map(|e| e.to_string()),
                camera: s.camera.to_string(),
                created_by: s.created_by_name,
                created: rfc3339(s.created_micros),
                expires: rfc3339(s.expires_micros),
                views: s.views,
                max_views: s.max_views,
            })
            .collect(),
        linked_services: index
            .all_tokens()?
            .into_iter()
            .map(|t| TokenLine {
                name: t.name,
                scopes: t.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                created: rfc3339(t.created_micros),
                last_used: t.last_used_micros.map(rfc3339),
            })
            .collect(),
        audit_log: all_audit(index, None)?,
    };
    let mut tar = TarWriter::new(out);
    tar.append("data.json", &serde_json::to_vec_pretty(&everything)?, mtime)?;
    drop(everything);

    let mut summary = ArchiveSummary::default();
    let mut errors = String::new();
    for r in recordings
        .iter()
        .filter(|r| r.state == RecordingState::Finished)
    {
        // End-to-end recordings and thumbnails go in only when the owner's session
        // has unlocked them (`viewer`); otherwise they are listed as not exported.
        let planned = match export::plan_as(store, index, &Request::Recording(r.id), viewer.clone())
            .and_then(|planned| verified(store, planned))
        {
            Ok(p) => p,
            Err(e) => {
                // A damaged recording must not make the rest unexportable.
                tracing::error!(recording = %r.id, "archive of everything: {e}");
                errors.push_str(&format!("recording {} of camera {}: {e}\n", r.id, r.camera));
                summary.failed += 1;
                continue;
            }
        };
        let name = recording_file(&RecordingInfo::from(r));
        let start = u64::try_from(r.start_micros / 1_000_000).unwrap_or(0);
        tar.begin(&name, planned.len(), start)?;
        planned.write_to(store, &mut tar)?;
        tar.end()?;
        summary.recordings += 1;
    }
    for e in events.iter().filter(|e| e.has_thumbnail) {
        match store.read_thumbnail_as(&e.camera, e.id, viewer.as_deref()) {
            Ok(jpeg) => {
                let start = u64::try_from(e.start_micros / 1_000_000).unwrap_or(0);
                tar.append(&thumbnail_file(e), &jpeg, start)?;
                summary.thumbnails += 1;
            }
            Err(err) => {
                tracing::error!(event = %e.id, "archive of everything: thumbnail: {err}");
                errors.push_str(&format!("thumbnail of event {}: {err}\n", e.id));
            }
        }
    }
    if !errors.is_empty() {
        tar.append("export-errors.txt", errors.as_bytes(), mtime)?;
    }
    tar.finish()?;
    Ok(summary)
}

/// What "erase all data" removed.
#[derive(Debug, Default)]
pub struct Erased {
    pub recordings: usize,
    pub events: usize,
    pub share_links: usize,
    pub tokens: usize,
    pub invitations: usize,
    pub users: usize,
    pub audit_entries: usize,
    /// Recordings still being written (left to their recorder; see the page).
    pub still_recording: usize,
}

impl Erased {
    fn summary(&self) -> String {
        format!(
            "all data erased: {} recording(s), {} event(s), {} share link(s), {} linked service(s), {} invitation(s), {} other account(s) and the audit log{}",
            self.recordings,
            self.events,
            self.share_links,
            self.tokens,
            self.invitations,
            self.users,
            if self.still_recording > 0 {
                format!("; {} recording(s) in progress were left", self.still_recording)
            } else {
                String::new()
            }
        )
    }
}

/// Erases everything but the owner's account, keys first: recordings and thumbnails
/// (crypto-shredded), share copies (shredded), then events, share links, API tokens,
/// invitations, every other account with its sessions, alerts and preferences, the
/// owner's past security alerts, and finally the audit log, which is left holding one
/// entry that says what was erased. Login throttling counters stay (they expire on
/// their own and protect the owner's account).
/// A recording still being written is left to its recorder (it is finished on its
/// own and can be erased after).
pub fn erase_all(
    store: &Store,
    index: &Index,
    shares: &Shares,
    auth: &Auth,
    owner: &Session,
) -> Result<Erased, DataError> {
    if owner.user.role != Role::Owner {
        return Err(DataError::NotOwner);
    }
    let actor = session_actor(owner);
    let mut erased = Erased::default();
    let events_before: Vec<EventId> = index.all_events()?.into_iter().map(|e| e.id).collect();
    // Keys first.
    erased.recordings = retention::delete_everything(store, index)?;
    for link in index.all_shares()? {
        if shares.unshare(link.id, &actor)? {
            erased.share_links += 1;
        }
    }
    // A thumbnail or share copy a crash orphaned is in none of the entries above.
    let orphans = crate::check::shred_orphaned_extras(store, index)?;
    if !orphans.is_empty() {
        tracing::info!("erasing everything: {orphans}");
    }
    // Counted by id, not as a difference of totals: a recorder may open events while
    // this runs, and more events after than before must not underflow.
    let left: HashSet<EventId> = index.all_events()?.into_iter().map(|e| e.id).collect();
    erased.events = events_before.iter().filter(|id| !left.contains(id)).count();
    erased.still_recording = index
        .all_recordings()?
        .iter()
        .filter(|r| r.state == RecordingState::Open)
        .count();
    // Then who else could get in, and the records.
    for token in index.all_tokens()? {
        if index.remove_token(token.id)? {
            erased.tokens += 1;
        }
    }
    for (hash, _) in index.all_invitations()? {
        if index.take_invitation(&hash)?.is_some() {
            erased.invitations += 1;
        }
    }
    for user in index.all_users()? {
        if user.role != Role::Owner {
            auth.remove_account(&user)?;
            erased.users += 1;
        }
    }
    // The owner's past alerts name people and addresses too; history goes with the log.
    index.remove_user_alerts(owner.user.id)?;
    let last = AuditEntry {
        time_micros: auth.now(),
        kind: AuditKind::AllDataErased,
        user: actor.user,
        actor: actor.name.clone(),
        subject: erased.summary(),
        address: actor.address.map(|a| a.to_string()),
    };
    erased.audit_entries = index.erase_audit_log(&last)?;
    tracing::warn!(user = %owner.user.id, "{}", erased.summary());
    Ok(erased)
}

#[cfg(test)]
#[path = "data_rights_tests.rs"]
mod tests;
