//! Authorisation: the one place that decides whether a principal may do an action on
//! an object. Every web handler asks [`allowed`] (through `web`'s `require`); a handler
//! that does not ask cannot reach anything but public pages.
//!
//! Issue 4 has only owners; the shared user of issue 5 is already modelled so the rules
//! exist before the role is reachable: a shared user watches and downloads but never
//! deletes or changes anything of the house.
//!
//! A linked service (an API token) may do exactly what its scopes name and nothing
//! else: `events:read` reads events, `trigger:write` triggers a camera, `live:read`
//! sees a camera's live picture (the API's snapshot). It never reaches pages,
//! recordings or settings.

use crate::index::{Role, Scope, TokenId, UserId};
use crate::model::{CameraId, RecordingId};

/// Who is asking. Only fully logged-in sessions (both factors) are users here; a
/// half-finished login is anonymous as far as these rules go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User {
        id: UserId,
        role: Role,
    },
    /// A browser that proved it holds share link `link`'s secret (its viewer token).
    LinkHolder {
        link: u64,
    },
    /// A linked service presenting an API token.
    Token {
        id: TokenId,
        scopes: Vec<Scope>,
    },
    /// A helper with time-limited support access: camera health and diagnostics,
    /// and only the recordings the owner ticked.
    Support {
        id: UserId,
        recordings: Vec<RecordingId>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// See the cameras and their state (the dashboard).
    ViewCameras,
    LiveView,
    ListRecordings,
    PlayRecording,
    DownloadRecording,
    DeleteRecording,
    DeleteCameraRecordings,
    DeleteEverything,
    /// See and end the user's own sessions.
    ManageOwnDevices,
    /// See the user's own security alerts.
    ViewOwnAlerts,
    /// The audit log: everyone's on [`Object::System`], a user's own on
    /// [`Object::User`].
    ViewAuditLog,
    /// The Control Centre: the whole house on [`Object::System`], the user's own
    /// account on [`Object::User`].
    ViewControlCentre,
    /// Make a share link (a copy) of a recording.
    ShareRecording,
    /// List share links and unshare them.
    ManageShares,
    /// Watch and download the clip of a share link.
    WatchSharedClip,
    /// Invite and remove shared users.
    ManageUsers,
    /// Read events (what happened, when, on which camera) without the video.
    ReadEvents,
    /// Start a recording from outside (doorbell, integration).
    TriggerCamera,
    /// Create, list and revoke API tokens.
    ManageLinkedServices,
    /// Camera health and diagnostics (no video).
    ViewDiagnostics,
    /// Grant and revoke support access.
    ManageSupport,
    /// Choose and receive one's own event notifications.
    ManageOwnNotifications,
    /// Change one's own password.
    ChangeOwnPassword,
    /// Set up one's own two-step verification again (a new authenticator app).
    ChangeOwnTwoStep,
    /// Download one's own personal data (account, devices, preferences, audit
    /// entries, alerts) on [`Object::User`].
    DownloadOwnData,
    /// Delete one's own account: a shared user only (the owner's account holds the
    /// house; a support helper's access is the owner's to end).
    DeleteOwnAccount,
    /// Download an archive of everything: all data and every recording.
    ExportEverything,
    /// Erase all data: recordings, events, links, tokens, other users, the audit log.
    EraseEverything,
    /// See cameras discovered on the LAN, add (adopt) and change cameras.
    ManageCameras,
    /// Turn on end-to-end encryption for the house (new recordings sealed to viewers).
    EnableEndToEnd,
    /// Unlock (and lock) one's own end-to-end viewer key for one's own session, on
    /// [`Object::User`]. A support helper has no viewer key and gets none.
    UnlockOwnViewerKey,
    /// Enrol a passphrase of one's own as a further viewer once the owner has turned
    /// end-to-end encryption on, on [`Object::User`]: recordings made from then on
    /// can be watched from one's own account. Not for support helpers.
    EnrolOwnViewerKey,
}

/// What the action is on.
#[derive(Clone, Copy, Debug)]
pub enum Object<'a> {
    System,
    Camera(&'a CameraId),
    /// A recording of this camera (any of them: a page's controls, a whole day).
    Recording(&'a CameraId),
    /// This one recording of this camera.
    ThisRecording(&'a CameraId, RecordingId),
    /// Something belonging to this user (their devices, their alerts).
    User(UserId),
    /// A share link's clip.
    Share(u64),
}

pub const ALL_ACTIONS: [Action; 32] = [
    Action::ViewCameras,
    Action::LiveView,
    Action::ListRecordings,
    Action::PlayRecording,
    Action::DownloadRecording,
    Action::DeleteRecording,
    Action::DeleteCameraRecordings,
    Action::DeleteEverything,
    Action::ManageOwnDevices,
    Action::ViewOwnAlerts,
    Action::ViewAuditLog,
    Action::ViewControlCentre,
    Action::ShareRecording,
    Action::ManageShares,
    Action::WatchSharedClip,
    Action::ManageUsers,
    Action::ReadEvents,
    Action::TriggerCamera,
    Action::ManageLinkedServices,
    Action::ViewDiagnostics,
    Action::ManageSupport,
    Action::ManageOwnNotifications,
    Action::DownloadOwnData,
    Action::DeleteOwnAccount,
    Action::ExportEverything,
    Action::EraseEverything,
    Action::ChangeOwnPassword,
    Action::ChangeOwnTwoStep,
    Action::ManageCameras,
    Action::EnableEndToEnd,
    Action::UnlockOwnViewerKey,
    Action::EnrolOwnViewerKey,
];

pub fn allowed(who: &Principal, action: Action, object: Object<'_>) -> bool {
    let (id, role) = match who {
        Principal::Anonymous => return false,
        // A link opens its own clip and nothing else of the house.
        Principal::LinkHolder { link } => {
            return matches!((action, object), (Action::WatchSharedClip, Object::Share(l)) if l == *link)
        }
        Principal::Token { scopes, .. } => return token_allowed(scopes, action, object),
        Principal::Support { id, recordings } => {
            return support_allowed(*id, recordings, action, object)
        }
        Principal::User { id, role } => (id, role),
    };
    match (action, object) {
        (
            Action::ManageOwnDevices
            | Action::ViewOwnAlerts
            | Action::ViewAuditLog
            | Action::ViewControlCentre,
            Object::User(owner),
        ) => owner == *id,
        (
            Action::ManageOwnNotifications
            | Action::DownloadOwnData
            | Action::ChangeOwnPassword
            | Action::ChangeOwnTwoStep,
            Object::User(owner),
        ) => owner == *id,
        (Action::DeleteOwnAccount, Object::User(owner)) => owner == *id && *role == Role::Shared,
        (Action::UnlockOwnViewerKey | Action::EnrolOwnViewerKey, Object::User(owner)) => {
            owner == *id
        }
        (Action::EnableEndToEnd, Object::System) => *role == Role::Owner,
        (Action::ExportEverything | Action::EraseEverything, Object::System) => {
            *role == Role::Owner
        }
        (Action::ManageOwnDevices | Action::ViewOwnAlerts, _) => false,
        (Action::ViewAuditLog | Action::ViewControlCentre, Object::System) => *role == Role::Owner,
        (Action::ViewCameras, Object::System) => true,
        (Action::LiveView, Object::Camera(_)) => true,
        (Action::ListRecordings, Object::Camera(_)) => true,
        (
            Action::PlayRecording | Action::DownloadRecording,
            Object::Recording(_) | Object::ThisRecording(..),
        ) => true,
        (Action::DeleteRecording, Object::Recording(_) | Object::ThisRecording(..)) => {
            *role == Role::Owner
        }
        (Action::DeleteCameraRecordings, Object::Camera(_)) => *role == Role::Owner,
        (Action::DeleteEverything, Object::System) => *role == Role::Owner,
        (Action::ShareRecording, Object::Recording(_) | Object::ThisRecording(..)) => {
            *role == Role::Owner
        }
        (Action::ManageShares | Action::ManageUsers, Object::System) => *role == Role::Owner,
        // Account holders watch recordings as themselves, not through links.
        (Action::WatchSharedClip, _) => false,
        (Action::ReadEvents, Object::System) => true,
        // Starting a recording changes what the house keeps: the owner's call.
        (Action::TriggerCamera, Object::Camera(_)) => *role == Role::Owner,
        (Action::ManageLinkedServices, Object::System) => *role == Role::Owner,
        (Action::ViewDiagnostics | Action::ManageSupport, Object::System) => *role == Role::Owner,
        // What the house records, and which devices on the LAN it looks at.
        (Action::ManageCameras, Object::System) => *role == Role::Owner,
        // An action on the wrong kind of object is a bug in the caller: deny.
        _ => false,
    }
}

/// Support access: health and diagnostics, the ticked recordings (watch and
/// download), and the helper's own account pages. Nothing that changes anything.
fn support_allowed(
    id: UserId,
    recordings: &[RecordingId],
    action: Action,
    object: Object<'_>,
) -> bool {
    match (action, object) {
        (Action::ViewCameras | Action::ViewDiagnostics, Object::System) => true,
        (Action::PlayRecording | Action::DownloadRecording, Object::ThisRecording(_, r)) => {
            recordings.contains(&r)
        }
        (
            Action::ManageOwnDevices
            | Action::ViewOwnAlerts
            | Action::ViewAuditLog
            | Action::ViewControlCentre
            | Action::DownloadOwnData
            | Action::ChangeOwnPassword
            | Action::ChangeOwnTwoStep,
            Object::User(user),
        ) => user == id,
        _ => false,
    }
}

/// A token's rules: each scope allows one action, on any camera.
fn token_allowed(scopes: &[Scope], action: Action, object: Object<'_>) -> bool {
    let needed = match (action, object) {
        (Action::ReadEvents, Object::System) => Scope::EventsRead,
        (Action::TriggerCamera, Object::Camera(_)) => Scope::TriggerWrite,
        (Action::LiveView, Object::Camera(_)) => Scope::LiveRead,
        _ => return false,
    };
    scopes.contains(&needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object_for(action: Action, cam: &CameraId, user: UserId) -> Object<'_> {
        match action {
            Action::ViewCameras
            | Action::DeleteEverything
            | Action::ReadEvents
            | Action::ManageLinkedServices => Object::System,
            Action::LiveView
            | Action::ListRecordings
            | Action::DeleteCameraRecordings
            | Action::TriggerCamera => Object::Camera(cam),
            Action::PlayRecording | Action::DownloadRecording | Action::DeleteRecording => {
                Object::ThisRecording(cam, RecordingId(5))
            }
            Action::ManageOwnDevices | Action::ViewOwnAlerts => Object::User(user),
            Action::ViewAuditLog
            | Action::ViewControlCentre
            | Action::ManageOwnNotifications
            | Action::DownloadOwnData
            | Action::ChangeOwnPassword
            | Action::ChangeOwnTwoStep
            | Action::DeleteOwnAccount => Object::User(user),
            Action::ExportEverything | Action::EraseEverything => Object::System,
            Action::ShareRecording => Object::Recording(cam),
            Action::ManageShares
            | Action::ManageUsers
            | Action::ViewDiagnostics
            | Action::ManageSupport
            | Action::ManageCameras
            | Action::EnableEndToEnd => Object::System,
            Action::UnlockOwnViewerKey | Action::EnrolOwnViewerKey => Object::User(user),
            Action::WatchSharedClip => Object::Share(7),
        }
    }

    /// Every action × principal, against a table written out by hand.
    #[test]
    fn every_action_for_every_principal_matches_the_table() {
        let cam: CameraId = "front".parse().expect("name");
        let me = UserId(1);
        let user = |role| Principal::User { id: me, role };
        let token = |scopes: &[Scope]| Principal::Token {
            id: TokenId(9),
            scopes: scopes.to_vec(),
        };
        let support = |r: u64| Principal::Support {
            id: me,
            recordings: vec![RecordingId(r)],
        };
        // The principals, in the order of the table's columns.
        let principals = [
            ("anonymous", Principal::Anonymous),
            ("owner", user(Role::Owner)),
            ("shared user", user(Role::Shared)),
            ("token with every scope", token(&Scope::ALL)),
            ("token without scopes", token(&[])),
            ("holder of this link", Principal::LinkHolder { link: 7 }),
            ("holder of another link", Principal::LinkHolder { link: 8 }),
            ("support, this recording ticked", support(5)),
            ("support, another recording ticked", support(6)),
        ];
        use Action::*;
        // One row per action, one character per principal above: y allowed, . refused.
        let table = [
            (ViewCameras, ".yy....yy"),
            (LiveView, ".yyy....."),
            (ListRecordings, ".yy......"),
            (PlayRecording, ".yy....y."),
            (DownloadRecording, ".yy....y."),
            (DeleteRecording, ".y......."),
            (DeleteCameraRecordings, ".y......."),
            (DeleteEverything, ".y......."),
            (ManageOwnDevices, ".yy....yy"),
            (ViewOwnAlerts, ".yy....yy"),
            (ViewAuditLog, ".yy....yy"),
            (ViewControlCentre, ".yy....yy"),
            (ShareRecording, ".y......."),
            (ManageShares, ".y......."),
            (WatchSharedClip, ".....y..."),
            (ManageUsers, ".y......."),
            (ReadEvents, ".yyy....."),
            (TriggerCamera, ".y.y....."),
            (ManageLinkedServices, ".y......."),
            (ViewDiagnostics, ".y.....yy"),
            (ManageSupport, ".y......."),
            (ManageOwnNotifications, ".yy......"),
            (DownloadOwnData, ".yy....yy"),
            (DeleteOwnAccount, "..y......"),
            (ExportEverything, ".y......."),
            (EraseEverything, ".y......."),
            (ChangeOwnPassword, ".yy....yy"),
            (ChangeOwnTwoStep, ".yy....yy"),
            (ManageCameras, ".y......."),
            (EnableEndToEnd, ".y......."),
            (UnlockOwnViewerKey, ".yy......"),
            (EnrolOwnViewerKey, ".yy......"),
        ];
        assert_eq!(table.len(), ALL_ACTIONS.len(), "a new action needs a row");
        for (action, row) in table {
            assert_eq!(
                row.len(),
                principals.len(),
                "{action:?}: one mark per principal"
            );
            let o = object_for(action, &cam, me);
            for ((who, principal), mark) in principals.iter().zip(row.chars()) {
                assert_eq!(
                    allowed(principal, action, o),
                    mark == 'y',
                    "{action:?} for {who}"
                );
            }
        }
    }

    /// Each scope allows its own action and nothing that another scope allows.
    #[test]
    fn each_scope_allows_exactly_its_action() {
        let cam: CameraId = "front".parse().expect("name");
        let grants = [
            (Scope::EventsRead, Action::ReadEvents),
            (Scope::TriggerWrite, Action::TriggerCamera),
            (Scope::LiveRead, Action::LiveView),
        ];
        assert_eq!(grants.len(), Scope::ALL.len(), "a new scope needs a row");
        for (scope, granted) in grants {
            let token = Principal::Token {
                id: TokenId(1),
                scopes: vec![scope],
            };
            for action in ALL_ACTIONS {
                let o = object_for(action, &cam, UserId(1));
                assert_eq!(
                    allowed(&token, action, o),
                    action == granted,
                    "{scope} → {action:?}"
                );
            }
        }
        let trigger = Principal::Token {
            id: TokenId(1),
            scopes: vec![Scope::TriggerWrite],
        };
        assert!(
            !allowed(&trigger, Action::TriggerCamera, Object::System),
            "a trigger is on a camera"
        );
    }

    #[test]
    fn another_users_devices_and_mismatched_objects_are_refused() {
        let cam: CameraId = "front".parse().expect("name");
        let owner = Principal::User {
            id: UserId(1),
            role: Role::Owner,
        };
        assert!(!allowed(
            &owner,
            Action::ManageOwnDevices,
            Object::User(UserId(2))
        ));
        assert!(!allowed(
            &owner,
            Action::DeleteEverything,
            Object::Camera(&cam)
        ));
        assert!(!allowed(
            &owner,
            Action::ViewCameras,
            Object::Recording(&cam)
        ));
        assert!(!allowed(
            &owner,
            Action::ViewAuditLog,
            Object::User(UserId(2))
        ));
    }

    #[test]
    fn nobody_downloads_or_deletes_another_users_account() {
        let shared = Principal::User {
            id: UserId(2),
            role: Role::Shared,
        };
        let owner = Principal::User {
            id: UserId(1),
            role: Role::Owner,
        };
        for who in [&shared, &owner] {
            for action in [
                Action::DownloadOwnData,
                Action::DeleteOwnAccount,
                Action::ChangeOwnTwoStep,
            ] {
                assert!(!allowed(who, action, Object::User(UserId(3))), "{action:?}");
            }
        }
        assert!(
            !allowed(&owner, Action::DeleteOwnAccount, Object::User(UserId(1))),
            "the owner's account is not deleted this way"
        );
        for action in [Action::ExportEverything, Action::EraseEverything] {
            assert!(!allowed(&shared, action, Object::System), "{action:?}");
            assert!(
                !allowed(&owner, action, Object::User(UserId(1))),
                "{action:?}"
            );
        }
    }

    #[test]
    fn only_the_owner_sees_everyones_audit_log_and_the_whole_control_centre() {
        let owner = Principal::User {
            id: UserId(1),
            role: Role::Owner,
        };
        let shared = Principal::User {
            id: UserId(2),
            role: Role::Shared,
        };
        for action in [Action::ViewAuditLog, Action::ViewControlCentre] {
            assert!(allowed(&owner, action, Object::System));
            assert!(!allowed(&shared, action, Object::System));
        }
        assert!(allowed(
            &shared,
            Action::ViewAuditLog,
            Object::User(UserId(2))
        ));
        assert!(!allowed(
            &shared,
            Action::ViewAuditLog,
            Object::User(UserId(1))
        ));
        assert!(!allowed(
            &Principal::Anonymous,
            Action::ViewAuditLog,
            Object::System
        ));
    }
}
