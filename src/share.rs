//! Share links: a copy of one recording, or of one event's clip (which may span
//! several recordings), that someone without an account can watch and download
//! through a link, until it expires, runs out of views or is unshared.
//!
//! The link is `/s/<id>#<secret>`. The secret (256 random bits, hex) travels only in
//! the URL fragment, which browsers never send; the page's script posts it once to
//! [`Shares::open`] and gets a viewer token (a cookie scoped to that link's path) for
//! the video requests. The daemon keeps only a check value of the secret
//! (`store::crypto::share_check`); the copy is sealed under a key derived from the
//! secret, so at rest it is unreadable without the link. While someone watches, the
//! secret is held in memory with their viewer token (an hour at most) and is never
//! written anywhere.
//!
//! Guessing is pointless (2^256) but still throttled per address, and the check value
//! is compared in constant time. Unknown link, wrong secret, expired and used-up all
//! get the same answer.
//!
//! Viewer tokens are held in memory, bounded per link, per client address and in all
//! ([`MAX_VIEWERS_PER_LINK`], [`MAX_VIEWERS_PER_ADDRESS`], [`MAX_VIEWERS`]); an open
//! beyond a bound is refused, never made room for by dropping another viewer's
//! token. The web layer rate-limits opens per address and writes each view to the
//! activity log ([`Shares::log_view`]) once per link and address an hour.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::audit::{Actor, Audit};
use crate::auth::throttle;
use crate::clock::Clock;
use crate::export::{self, ExportError};
use crate::index::{AuditKind, Index, IndexError, RecordingState, ShareEntry, UserId, ViewRefused};
use crate::model::{CameraId, EventId, RecordingId};
use crate::store::crypto::{share_check, MasterKey, SHARE_SECRET_LEN};
use crate::store::e2e::ViewerSecret;
use crate::store::{Clip, RecordingReader, Store, StoreError};

/// How long a viewer token lasts (it never outlives the link).
pub const VIEWER_LIFETIME: Duration = Duration::from_secs(3600);
/// Viewer tokens held at most, for all links together. A full table refuses new
/// opens (429) rather than dropping someone's token: whoever fills it must not be
/// able to cut off the people already watching.
pub const MAX_VIEWERS: usize = 1024;
/// Viewer tokens one link may hold at once (each open of its page makes one, for an
/// hour): room for a family reloading the page all evening, while a holder opening
/// it in a loop fills only this link's share of [`MAX_VIEWERS`].
pub const MAX_VIEWERS_PER_LINK: usize = 128;
/// Viewer tokens one client address (IPv6 by /64, as the guessing throttle counts)
/// may hold at once, over all links: a flood from one address costs that address.
pub const MAX_VIEWERS_PER_ADDRESS: usize = 32;
/// Longest a link may live.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// Deliberately one answer for unknown, wrong secret, expired and used up.
    #[error("no such share link, or it has expired")]
    NotFound,
    #[error("too many attempts; try again later")]
    Throttled { until_micros: i64 },
    /// A right secret, but the link, the address or all links together hold as many
    /// viewer tokens as they may; nothing was counted.
    #[error("link {link:016x} not opened: {why}")]
    TooManyViewers { link: u64, why: &'static str },
    #[error("recording {0} is still being written; share it when it is finished")]
    NotFinished(RecordingId),
    #[error("no recording {0}")]
    NoSuchRecording(RecordingId),
    #[error("no event {0}")]
    NoSuchEvent(EventId),
    #[error("event {0} is still being recorded; share it when it is over")]
    EventNotFinished(EventId),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which file a link's copy is on disk: inode, length and modification time. A
/// layout cached for a copy is used only while this still names the same file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyIdentity {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

/// What the owner gets once, at creation: the only time the secret exists outside
/// the browser that holds the link.
pub struct CreatedLink {
    pub id: u64,
    pub secret: Zeroizing<String>,
}

/// A link being made: its id, its secret, and the key its copy is sealed under.
struct NewLink {
    id: u64,
    secret: Zeroizing<[u8; SHARE_SECRET_LEN]>,
    key: MasterKey,
}

/// What a new link shows, once its copy is written; `what` names it in the log.
struct LinkTarget<'a> {
    recording: RecordingId,
    /// Every recording the copy was made from.
    sources: &'a [RecordingId],
    event: Option<EventId>,
    camera: &'a CameraId,
    start_micros: i64,
    end_micros: i64,
    bytes: u64,
    what: String,
}

/// A link just opened: the viewer token for its cookie, and the view it counted.
pub struct Opened {
    pub token: String,
    pub view: View,
}

/// One counted view of a link, for its activity log entry
/// ([`Shares::log_view`]).
pub struct View {
    link: u64,
    /// Whose link it is: the entry is theirs.
    owner: UserId,
    /// Which view this was, and of how many allowed.
    number: u32,
    max: Option<u32>,
}

struct Viewer {
    link: u64,
    /// The client address it was opened from, as [`throttle::address_key`] counts it.
    from: String,
    secret: Zeroizing<[u8; SHARE_SECRET_LEN]>,
    expires_micros: i64,
}

/// The share-link service. Cheap to clone.
#[derive(Clone)]
pub struct Shares {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    index: Index,
    clock: Arc<dyn Clock>,
    audit: Audit,
    /// SHA-256 of a viewer token → who it lets watch what.
    viewers: Mutex<HashMap<[u8; 32], Viewer>>,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random number generator is available");
    b
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn check_limits(lifetime: Duration, max_views: Option<u32>) -> Result<(), ShareError> {
    if lifetime.is_zero() || lifetime > MAX_LIFETIME {
        return Err(ShareError::Invalid(
            "a link lives between one hour and 30 days".into(),
        ));
    }
    if max_views == Some(0) {
        return Err(ShareError::Invalid("a view limit is at least 1".into()));
    }
    Ok(())
}

/// Parses a link id as shown in URLs (16 hex digits).
pub fn parse_link_id(raw: &str) -> Option<u64> {
    (raw.len() == 16 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(raw, 16).ok())
        .flatten()
}

impl Shares {
    pub fn new(store: Arc<Store>, index: Index, clock: Arc<dyn Clock>, audit: Audit) -> Shares {
        Shares {
            inner: Arc::new(Inner {
                store,
                index,
                clock,
                audit,
                viewers: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_micros()
    }

    fn viewers(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Viewer>> {
        self.inner
            .viewers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Copies `recording` for a new link. Blocking (it copies the file).
    pub fn create(
        &self,
        actor: &Actor,
        recording: RecordingId,
        lifetime: Duration,
        max_views: Option<u32>,
    ) -> Result<CreatedLink, ShareError> {
        self.create_as(actor, recording, lifetime, max_views, None)
    }

    /// [`create`](Self::create), reading an end-to-end recording with the sharer's
    /// unlocked `viewer` key (without it such a recording cannot be copied).
    pub fn create_as(
        &self,
        actor: &Actor,
        recording: RecordingId,
        lifetime: Duration,
        max_views: Option<u32>,
        viewer: Option<&ViewerSecret>,
    ) -> Result<CreatedLink, ShareError> {
        check_limits(lifetime, max_views)?;
        let entry = self
            .inner
            .index
            .get_recording(recording)?
            .ok_or(ShareError::NoSuchRecording(recording))?;
        if entry.state != RecordingState::Finished {
            return Err(ShareError::NotFinished(recording));
        }
        let link = self.new_link()?;
        let bytes = self.inner.store.copy_for_share_as(
            &entry.camera,
            entry.id,
            link.id,
            &link.key,
            viewer,
        )?;
        let target = LinkTarget {
            recording,
            sources: &[recording],
            event: None,
            camera: &entry.camera,
            start_micros: entry.start_micros,
            end_micros: entry.end_micros,
            bytes,
            what: format!("recording {recording} of camera {}", entry.camera),
        };
        self.save(link, target, lifetime, max_views, actor)
    }

    /// Copies event `event`'s clip for a new link: its frames from the keyframe at or
    /// before its start (which includes the pre-roll) to its end, across every
    /// recording it spans, as one file; end-to-end recordings are read with the
    /// sharer's unlocked `viewer` key. Blocking (it copies the frames).
    pub fn create_for_event(
        &self,
        actor: &Actor,
        event: EventId,
        lifetime: Duration,
        max_views: Option<u32>,
        viewer: Option<&ViewerSecret>,
    ) -> Result<CreatedLink, ShareError> {
        check_limits(lifetime, max_views)?;
        let entry = self
            .inner
            .index
            .get_event(event)?
            .ok_or(ShareError::NoSuchEvent(event))?;
        if entry.open {
            return Err(ShareError::EventNotFinished(event));
        }
        for r in &entry.recordings {
            match self.inner.index.get_recording(*r)? {
                Some(rec) if rec.state == RecordingState::Finished => {}
                Some(rec) if rec.state == RecordingState::Open => {
                    return Err(ShareError::NotFinished(*r))
                }
                _ => return Err(ShareError::NoSuchRecording(*r)),
            }
        }
        let span = export::Request::Span {
            camera: entry.camera.clone(),
            from_micros: entry.start_micros,
            to_micros: entry.end_micros,
        };
        let selection = export::select(&self.inner.store, &self.inner.index, &span, viewer)?;
        let first = selection
            .used
            .first()
            .ok_or(ShareError::NoSuchEvent(event))?;
        let (recording, start_micros) = (first.id, first.start_micros);
        let sources: Vec<RecordingId> = selection.used.iter().map(|e| e.id).collect();
        let link = self.new_link()?;
        let clip = Clip {
            camera: &entry.camera,
            sources: &sources,
            track: &selection.track,
            samples: &selection.samples,
            start_micros,
            viewer,
        };
        let bytes = self
            .inner
            .store
            .copy_clip_for_share(&clip, link.id, &link.key)?;
        let target = LinkTarget {
            recording,
            sources: &sources,
            event: Some(event),
            camera: &entry.camera,
            start_micros: entry.start_micros,
            end_micros: entry.end_micros,
            bytes,
            what: format!(
                "event {event} of camera {} ({} recording(s))",
                entry.camera,
                sources.len()
            ),
        };
        self.save(link, target, lifetime, max_views, actor)
    }

    /// A fresh link id (unused, never 0), a secret and the key its copy is sealed under.
    fn new_link(&self) -> Result<NewLink, ShareError> {
        let id = loop {
            let id = u64::from_be_bytes(random());
            if id != 0 && self.inner.index.get_share(id)?.is_none() {
                break id;
            }
        };
        let secret = Zeroizing::new(random::<SHARE_SECRET_LEN>());
        let key = MasterKey::for_share_link(&secret);
        Ok(NewLink { id, secret, key })
    }

    /// Saves the entry of `link`, whose copy of `target` is written, and hands out its
    /// secret; removes the copy if the index refuses.
    fn save(
        &self,
        link: NewLink,
        target: LinkTarget<'_>,
        lifetime: Duration,
        max_views: Option<u32>,
        actor: &Actor,
    ) -> Result<CreatedLink, ShareError> {
        let now = self.now();
        let share = ShareEntry {
            id: link.id,
            recording: target.recording,
            event: target.event,
            camera: target.camera.clone(),
            start_micros: target.start_micros,
            end_micros: target.end_micros,
            created_by: actor.user.unwrap_or(crate::index::UserId(0)),
            created_by_name: actor.name.clone(),
            created_micros: now,
            expires_micros: now.saturating_add(lifetime.as_micros() as i64),
            max_views,
            views: 0,
            check: hex::encode(share_check(&link.secret)),
            bytes: target.bytes,
        };
        if let Err(e) = self.inner.index.put_share(&share) {
            let _ = self.inner.store.delete_share(share.id);
            return Err(e.into());
        }
        // A bulk deletion (`deletion`) deletes the recordings, then revokes the links it
        // finds; a copy made meanwhile would be saved after that list and outlive the
        // footage. So the sources are read again once the link is saved: either the
        // deletion's list has the link, or this sees the deletion.
        for &source in target.sources {
            let kept = self.inner.index.get_recording(source)?;
            if kept.is_none_or(|r| r.state == RecordingState::Deleting) {
                self.remove(&share)?;
                return Err(ShareError::NoSuchRecording(source));
            }
        }
        let name = format!("{:016x}", share.id);
        let what = target.what;
        tracing::info!(link = %name, what = %what, "share link created");
        self.inner.audit.record(
            AuditKind::ShareCreated,
            actor,
            format!("link {name} to {what}"),
        );
        Ok(CreatedLink {
            id: link.id,
            secret: Zeroizing::new(hex::encode(*link.secret)),
        })
    }

    /// Checks a link's secret and counts a view; returns a viewer token, and the view
    /// for the activity log. The caller logs it with [`log_view`](Self::log_view)
    /// (the web layer, once per link and address an hour, so that a flood of opens
    /// does not flood the log). Blocking.
    pub fn open(&self, link: u64, secret_hex: &str, from: IpAddr) -> Result<Opened, ShareError> {
        let now = self.now();
        let throttle_key = format!("share:{}", throttle::address_key(from));
        let mut record = self.inner.index.get_throttle(&throttle_key)?;
        if let throttle::Verdict::Wait { until_micros }
        | throttle::Verdict::Blocked { until_micros } = throttle::check(&record, now)
        {
            return Err(ShareError::Throttled { until_micros });
        }
        let mut secret = Zeroizing::new([0u8; SHARE_SECRET_LEN]);
        let parsed = secret_hex.len() == SHARE_SECRET_LEN * 2
            && hex::decode_to_slice(secret_hex, secret.as_mut()).is_ok();
        let expected = self.inner.index.get_share(link)?;
        let matches = match (&expected, parsed) {
            (Some(entry), true) => {
                let given = hex::encode(share_check(&secret));
                bool::from(given.as_bytes().ct_eq(entry.check.as_bytes()))
            }
            _ => false,
        };
        let address = throttle::address_key(from);
        if matches {
            // Before the view is counted: a refused open must not use up a view.
            self.room_for(link, &address, now)?;
        }
        let counted = if matches {
            match self.inner.index.count_share_view(link, now) {
                Ok(entry) => Some(entry),
                Err(ViewRefused::Gone) => None,
                Err(ViewRefused::Index(e)) => return Err(e.into()),
            }
        } else {
            None
        };
        let Some(entry) = counted else {
            if !matches {
                throttle::on_failure(&mut record, now, throttle::ADDRESS);
                self.inner.index.put_throttle(&throttle_key, &record)?;
                tracing::warn!(link = %format!("{link:016x}"), %from, "share link refused: unknown link or wrong secret");
            }
            return Err(ShareError::NotFound);
        };
        let token = hex::encode(random::<32>());
        let viewer = Viewer {
            link,
            from: address,
            secret,
            expires_micros: entry
                .expires_micros
                .min(now.saturating_add(VIEWER_LIFETIME.as_micros() as i64)),
        };
        // Opens racing this one past `room_for` may overshoot the limits by as many
        // as run at once (the blocking pool): bounded, and nobody is evicted.
        self.viewers().insert(token_key(&token), viewer);
        Ok(Opened {
            token,
            view: View {
                link,
                owner: entry.created_by,
                number: entry.views,
                max: entry.max_views,
            },
        })
    }

    /// Writes `view` (opened from `from`) to the activity log, for the link's owner;
    /// says whether it was written (a failure is logged all the same). Blocking.
    pub fn log_view(&self, view: &View, from: IpAddr) -> bool {
        self.inner.audit.record_checked(
            AuditKind::ShareViewed,
            &Actor {
                user: Some(view.owner),
                name: "someone with the link".into(),
                address: Some(from),
            },
            format!(
                "link {:016x} (view {}{})",
                view.link,
                view.number,
                view.max.map_or_else(String::new, |m| format!(" of {m}"))
            ),
        )
    }

    /// Whether one more viewer token of `link` from `address` fits: under
    /// [`MAX_VIEWERS_PER_LINK`], [`MAX_VIEWERS_PER_ADDRESS`] and [`MAX_VIEWERS`]
    /// (after forgetting expired ones). Refusing, instead of dropping the oldest
    /// token as before, keeps a flood of opens from cutting off other links'
    /// viewers: it only costs the link or address that floods.
    fn room_for(&self, link: u64, address: &str, now: i64) -> Result<(), ShareError> {
        let mut viewers = self.viewers();
        viewers.retain(|_, v| v.expires_micros > now);
        let (mut of_link, mut of_address) = (0, 0);
        for v in viewers.values() {
            of_link += usize::from(v.link == link);
            of_address += usize::from(v.from == address);
        }
        let why = if of_link >= MAX_VIEWERS_PER_LINK {
            "the link is open in too many browsers"
        } else if of_address >= MAX_VIEWERS_PER_ADDRESS {
            "too many viewer tokens from this address"
        } else if viewers.len() >= MAX_VIEWERS {
            "too many viewer tokens in all"
        } else {
            return Ok(());
        };
        // Not logged here: the web layer logs refusals (429s at debug, so a flood of
        // them cannot flood the journal).
        Err(ShareError::TooManyViewers { link, why })
    }

    /// The link a viewer token lets its holder watch, if it still may.
    pub fn viewer_link(&self, token: &str) -> Option<u64> {
        let now = self.now();
        self.viewers()
            .get(&token_key(token))
            .filter(|v| v.expires_micros > now)
            .map(|v| v.link)
    }

    /// Opens the copy for a viewer of `link`. Blocking.
    pub fn reader(&self, link: u64, token: &str) -> Result<RecordingReader, ShareError> {
        let secret = {
            let viewers = self.viewers();
            let v = viewers
                .get(&token_key(token))
                .filter(|v| v.link == link && v.expires_micros > self.now())
                .ok_or(ShareError::NotFound)?;
            v.secret.clone()
        };
        if self.inner.index.get_share(link)?.is_none() {
            return Err(ShareError::NotFound);
        }
        let key = MasterKey::for_share_link(&secret);
        Ok(self.inner.store.open_share(link, &key)?)
    }

    /// The identity of `link`'s copy on disk (one `stat`). Blocking.
    pub fn copy_identity(&self, link: u64) -> Result<CopyIdentity, ShareError> {
        use std::os::unix::fs::MetadataExt;
        let path = self.inner.store.share_path(link);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            // Unshared or expired just now: the same answer as any gone link.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ShareError::NotFound),
            Err(source) => {
                return Err(StoreError::Io {
                    action: "stat",
                    path,
                    source,
                }
                .into())
            }
        };
        Ok(CopyIdentity {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }

    pub fn get(&self, link: u64) -> Result<Option<ShareEntry>, ShareError> {
        Ok(self.inner.index.get_share(link)?)
    }

    /// Every link, newest first, after deleting those that expired.
    pub fn list(&self) -> Result<Vec<ShareEntry>, ShareError> {
        self.purge_expired()?;
        let mut all = self.inner.index.all_shares()?;
        all.sort_by_key(|s| std::cmp::Reverse(s.created_micros));
        Ok(all)
    }

    /// Deletes the copy and the link; viewers are cut off at once. False if there was
    /// no such link. Blocking.
    pub fn unshare(&self, link: u64, actor: &Actor) -> Result<bool, ShareError> {
        let Some(entry) = self.inner.index.get_share(link)? else {
            return Ok(false);
        };
        self.remove(&entry)?;
        self.inner.audit.record(
            AuditKind::ShareUnshared,
            actor,
            match entry.event {
                Some(event) => format!(
                    "link {link:016x} to event {event} of camera {}",
                    entry.camera
                ),
                None => format!(
                    "link {link:016x} to recording {} of camera {}",
                    entry.recording, entry.camera
                ),
            },
        );
        Ok(true)
    }

    /// Revokes every link to footage of `camera` (of every camera with `None`) as
    /// [`unshare`](Self::unshare) does — viewers cut off, copy shredded — for bulk
    /// deletion: a link is a copy, so deleting "all recordings" must take the copies
    /// too. The caller's one audit entry counts them. Returns how many went. Blocking.
    pub fn revoke_all_of(&self, camera: Option<&CameraId>) -> Result<usize, ShareError> {
        let mut n = 0;
        for entry in self.inner.index.all_shares()? {
            if camera.is_none_or(|c| *c == entry.camera) {
                self.remove(&entry)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn remove(&self, entry: &ShareEntry) -> Result<(), ShareError> {
        self.viewers().retain(|_, v| v.link != entry.id);
        // The copy first: a crash in between leaves an entry whose file is gone (the
        // link then answers "no such link"), never a readable copy without an entry.
        self.inner.store.delete_share(entry.id)?;
        self.inner.index.remove_share(entry.id)?;
        tracing::info!(link = %format!("{:016x}", entry.id), "share link removed");
        Ok(())
    }

    /// Deletes links past their expiry, and used-up links nobody is still watching.
    /// Also forgets expired viewer tokens with the secrets they held (wiped on drop),
    /// so a secret stays in memory no longer than its token lasts.
    pub fn purge_expired(&self) -> Result<usize, ShareError> {
        let now = self.now();
        let watched: Vec<u64> = {
            let mut viewers = self.viewers();
            viewers.retain(|_, v| v.expires_micros > now);
            viewers.values().map(|v| v.link).collect()
        };
        let mut n = 0;
        for entry in self.inner.index.all_shares()? {
            let expired = now >= entry.expires_micros;
            let used_up = !entry.is_live(now) && !watched.contains(&entry.id);
            if expired || used_up {
                self.remove(&entry)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
#[path = "share_tests.rs"]
mod tests;
