//! Thumbnails and share copies the index no longer knows.
//!
//! Both hold picture content (an event's JPEG, a copy of a recording). One whose
//! entry is gone was left by a crash between writing the file and its entry, or by a
//! lost index; left alone it would stay on disk for ever, outside retention and
//! "delete everything". Neither can be indexed again (an event's and a link's details
//! live only in the index), so repair shreds them. The exception is an event whose
//! entry is there but was saved before its thumbnail was recorded in it (a crash
//! while the event closed): a thumbnail that reads back is linked to it again.

use std::collections::{HashMap, HashSet};

use super::{CheckError, Report};
use crate::error_chain::chain;
use crate::index::{EventEntry, Index};
use crate::model::EventId;
use crate::store::{Extra, Store, StoreError};

/// Reports (or, with `repair`, resolves) every thumbnail and share copy without an
/// entry.
pub(super) fn sweep(
    store: &Store,
    index: &Index,
    repair: bool,
    report: &mut Report,
) -> Result<(), CheckError> {
    let events: HashMap<EventId, EventEntry> =
        index.all_events()?.into_iter().map(|e| (e.id, e)).collect();
    for (camera, event) in store.list_thumbnails()? {
        let owner = events.get(&event).filter(|e| e.camera == camera);
        match owner {
            Some(entry) if entry.has_thumbnail => {}
            Some(entry) if reads_back(store, entry) => {
                if repair {
                    let mut entry = entry.clone();
                    entry.has_thumbnail = true;
                    index.put_event(&entry)?;
                    report.actions.push(format!(
                        "linked event {event}'s thumbnail to it again (a crash came between the two)"
                    ));
                } else {
                    report.findings.push(format!(
                        "event {event}'s thumbnail is not recorded in its entry; --repair links it"
                    ));
                }
            }
            _ => remove(
                store,
                Extra::Thumbnail(camera.clone(), event),
                format!("the thumbnail of event {event} of camera {camera}, which has no event"),
                repair,
                report,
            ),
        }
    }
    let links: HashSet<u64> = index.all_shares()?.into_iter().map(|s| s.id).collect();
    for link in store.list_share_copies()? {
        if !links.contains(&link) {
            remove(
                store,
                Extra::ShareCopy(link),
                format!("the copy of share link {link:016x}, which has no link"),
                repair,
                report,
            );
        }
    }
    Ok(())
}

/// The thumbnail authenticates to its end (one sealed to viewers cannot be read
/// here; its header was written whole, so it is kept).
fn reads_back(store: &Store, entry: &EventEntry) -> bool {
    match store.read_thumbnail(&entry.camera, entry.id) {
        Ok(_) | Err(StoreError::EndToEnd { .. }) => true,
        Err(_) => false,
    }
}

/// Shreds `extra`; one whose header is too damaged to shred is unlinked.
fn remove(store: &Store, extra: Extra, what: String, repair: bool, report: &mut Report) {
    if !repair {
        report.findings.push(format!("{what}; --repair shreds it"));
        return;
    }
    // `shred_thumbnail` falls back to unlinking by itself; a share copy does here.
    let removed = match &extra {
        Extra::Thumbnail(camera, event) => store.shred_thumbnail(camera, *event),
        Extra::ShareCopy(link) => store
            .delete_share(*link)
            .or_else(|_| store.unlink_extra(extra)),
    };
    match removed {
        Ok(()) => report.actions.push(format!("shredded {what}")),
        Err(e) => report
            .findings
            .push(format!("cannot remove {what}: {}", chain(&e))),
    }
}
