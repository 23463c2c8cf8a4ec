//! Playback and download: a recording as a moov-first MP4 streamed with HTTP `Range`.
//!
//! The MP4 is virtual ([`ProgressiveMp4`]): its header is built once per recording from
//! the sample table (cached, [`LayoutCache`]) and its payload is read from the sealed
//! file on demand, decrypting only the chunks a range touches. A response is produced
//! on a blocking thread in 64 KiB pieces through a small channel, so memory per
//! response is bounded whatever the recording's size, and a client that stops reading
//! stops the reading. A response may carry a [`StillAllowed`] check, asked before each
//! piece is sent, so that what ends access (a share link unshared or expired, a
//! session ended, a recording deleted) also ends a response already streaming, not
//! only the next request.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use tokio::sync::mpsc;

use super::extract::{still_allowed_blocking, FullSession, Path};
use super::pages::blocking;
use super::pages::recordings::entry_of;
use super::{view, WebError, WebState};
use crate::auth::policy::Action;
use crate::auth::policy::Object;
use crate::index::AuditKind;
use crate::index::{RecordingEntry, RecordingState};
use crate::model::RecordingId;
use crate::store::e2e::ViewerSecret;
use crate::store::mp4::{ProgressiveMp4, ReadAt};
use crate::store::RecordingReader;

/// Recordings whose layout is kept (a layout is ~16 bytes a frame: ~100 KB for ten
/// minutes at 10 fps).
const CACHED_LAYOUTS: usize = 16;
const PIECE: usize = 64 * 1024;

/// Recently played MP4 layouts, most recent last: of recordings (by id) and of
/// share links' copies (by link and [`CopyIdentity`]). Building one reads every
/// fragment header of the file, which for small fragments is the whole file.
pub struct LayoutCache<K = RecordingId> {
    entries: Mutex<Vec<(K, Arc<ProgressiveMp4>)>>,
}

impl<K> Default for LayoutCache<K> {
    fn default() -> Self {
        LayoutCache {
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl<K: PartialEq> LayoutCache<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(K, Arc<ProgressiveMp4>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &K) -> Option<Arc<ProgressiveMp4>> {
        let mut e = self.lock();
        let i = e.iter().position(|(k, _)| k == id)?;
        let hit = e.remove(i);
        let layout = hit.1.clone();
        e.push(hit);
        Some(layout)
    }

    pub fn put(&self, id: K, layout: Arc<ProgressiveMp4>) {
        let mut e = self.lock();
        e.retain(|(k, _)| *k != id);
        e.push((id, layout));
        let excess = e.len().saturating_sub(CACHED_LAYOUTS);
        e.drain(..excess);
    }

    pub fn forget(&self, id: K) {
        self.forget_if(|k| *k == id);
    }

    /// Drops every layout whose key `gone` accepts (all copies of an unshared link).
    pub fn forget_if(&self, gone: impl Fn(&K) -> bool) {
        self.lock().retain(|(k, _)| !gone(k));
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// A single byte range `[start, end)` of a `len`-byte resource, from a `Range` header.
/// `None`: serve the whole resource (no header, or one we do not honour such as
/// several ranges). `Err`: 416.
pub fn parse_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, WebError> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let unsatisfiable = || WebError::RangeNotSatisfiable { len };
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| unsatisfiable())?;
        if n == 0 || len == 0 {
            return Err(unsatisfiable());
        }
        (len.saturating_sub(n), len)
    } else {
        let start: u64 = a.parse().map_err(|_| unsatisfiable())?;
        let end = if b.is_empty() {
            len
        } else {
            let last: u64 = b.parse().map_err(|_| unsatisfiable())?;
            if last < start {
                return Err(unsatisfiable());
            }
            last.saturating_add(1).min(len)
        };
        if start >= len {
            return Err(unsatisfiable());
        }
        (start, end)
    };
    Ok(Some(range))
}

/// Opens the sealed file a response reads from: a recording, or a share link's copy.
/// Called on a blocking thread, once per response.
pub type Opener = Arc<dyn Fn() -> Result<RecordingReader, WebError> + Send + Sync>;

/// Whether a response may go on sending. Asked before each [`PIECE`] leaves (so it
/// must be cheap): access can end while a long response is streaming, and the rest
/// of the video must then not arrive.
pub type StillAllowed = Arc<dyn Fn() -> bool + Send + Sync>;

/// A recording's opener: with the master key, or for an end-to-end recording with
/// the session's unlocked viewer key.
fn recording_opener(
    state: &WebState,
    entry: &RecordingEntry,
    viewer: Option<Arc<ViewerSecret>>,
) -> Opener {
    let (store, camera, id) = (state.store.clone(), entry.camera.clone(), entry.id);
    let finished = entry.state == RecordingState::Finished;
    Arc::new(move || match &viewer {
        Some(v) if finished => Ok(store.open_finished_as(&camera, id, v)?),
        Some(v) => Ok(store.open_recording_as(&camera, id, v)?),
        None => Ok(store.open_recording(&camera, id)?),
    })
}

/// For an end-to-end encrypted recording, the session's unlocked viewer key (its
/// use restarts the idle timeout); `None` for a recording the master key opens. A
/// locked session gets [`WebError::Locked`]: the "unlock to view" page. Checked
/// before any layout is looked up, so a layout cached for an unlocked session is
/// never served to a locked one.
pub(super) async fn viewer_for(
    state: &WebState,
    session: &FullSession,
    entry: &RecordingEntry,
) -> Result<Option<Arc<ViewerSecret>>, WebError> {
    let (store, camera, id) = (state.store.clone(), entry.camera.clone(), entry.id);
    // A header that cannot be read is not this check's to report: opening the
    // recording reports it, with its cause (and the player page needs no file).
    if !blocking(move || Ok(store.is_end_to_end(&camera, id).unwrap_or(false))).await? {
        return Ok(None);
    }
    state
        .unlocked
        .get(&session.0.key, state.clock.now_micros())
        .map(Some)
        .ok_or_else(|| WebError::Locked(entry.id.to_string()))
}

/// Builds the moov-first layout of what `open` opens.
pub async fn build_layout(open: Opener, what: String) -> Result<Arc<ProgressiveMp4>, WebError> {
    let built = blocking(move || {
        let mut reader = open()?;
        let parsed = reader
            .parse()
            .map_err(|e| WebError::Internal(format!("{what}: {e}")))?;
        ProgressiveMp4::new(&[parsed.track], &parsed.samples)
            .map_err(|e| WebError::Internal(format!("{what}: {e}")))
    })
    .await?;
    Ok(Arc::new(built))
}

async fn layout(
    state: &WebState,
    entry: &RecordingEntry,
    viewer: Option<Arc<ViewerSecret>>,
) -> Result<Arc<ProgressiveMp4>, WebError> {
    if entry.state != RecordingState::Finished {
        return Err(WebError::NotFound(format!(
            "recording {} is still being written",
            entry.id
        )));
    }
    if let Some(l) = state.layouts.get(&entry.id) {
        return Ok(l);
    }
    let built = build_layout(
        recording_opener(state, entry, viewer),
        format!("recording {}", entry.id),
    )
    .await?;
    state.layouts.put(entry.id, built.clone());
    Ok(built)
}

/// Sends what is written to it down a channel in [`PIECE`]-sized buffers.
pub(super) struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
    /// The client stopped reading (the response was dropped).
    gone: bool,
    /// Asked before each piece is sent; `None`: access cannot end mid-response.
    allowed: Option<StillAllowed>,
    /// Access ended while streaming: the rest was withheld.
    cut_off: bool,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<Result<Bytes, io::Error>>, allowed: Option<StillAllowed>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(PIECE),
            gone: false,
            allowed,
            cut_off: false,
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.allowed.as_ref().is_some_and(|allowed| !allowed()) {
            self.cut_off = true;
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "access ended while the response was streaming",
            ));
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx.blocking_send(Ok(piece)).map_err(|_| {
            self.gone = true;
            io::Error::new(io::ErrorKind::BrokenPipe, "client went away")
        })
    }
}

fn channel_body(rx: mpsc::Receiver<Result<Bytes, io::Error>>) -> Body {
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// A response body that `produce` writes on a blocking thread, through the same
/// bounded channel as playback (a few [`PIECE`]s in flight whatever the size; a client
/// that stops reading stops the producer). An error ends the body with an error, so
/// the client sees a failed download rather than a short file; the detail is logged.
pub(super) fn blocking_body<E: std::fmt::Display>(
    what: String,
    allowed: Option<StillAllowed>,
    produce: impl FnOnce(&mut ChannelWriter) -> Result<(), E> + Send + 'static,
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter::new(tx.clone(), allowed);
        let result = produce(&mut out).map_err(|e| e.to_string());
        let result = result.and_then(|()| out.flush().map_err(|e| e.to_string()));
        match result {
            Ok(()) => {}
            Err(_) if out.gone => tracing::info!("{what}: the client went away"),
            Err(_) if out.cut_off => {
                tracing::info!("{what}: access ended; the rest is withheld");
                let _ = tx.blocking_send(Err(io::Error::other("access ended")));
            }
            Err(e) => {
                tracing::error!("{what}: {e}");
                let _ = tx.blocking_send(Err(io::Error::other("failed")));
            }
        }
    });
    channel_body(rx)
}

fn stream_range(
    open: Opener,
    allowed: Option<StillAllowed>,
    what: String,
    mp4: Arc<ProgressiveMp4>,
    start: u64,
    end: u64,
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = match open() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("playback of {what}: {e}");
                let _ = tx.blocking_send(Err(io::Error::other("cannot open the recording")));
                return;
            }
        };
        let mut out = ChannelWriter::new(tx.clone(), allowed);
        let result = mp4
            .write_range(
                start,
                end,
                &mut |_, offset, buf| reader.read_exact_at(offset, buf),
                &mut out,
            )
            .and_then(|()| out.flush().map_err(crate::store::mp4::Mp4Error::Write));
        if let Err(e) = result {
            if out.cut_off {
                // Ended with an error, so the client sees a failed download, not a
                // short file.
                tracing::info!("playback of {what}: access ended; the rest is withheld");
                let _ = tx.blocking_send(Err(io::Error::other("access ended")));
            } else if !matches!(&e, crate::store::mp4::Mp4Error::Write(w) if w.kind() == io::ErrorKind::BrokenPipe)
            {
                tracing::error!("playback of bytes {start}-{end} of {what}: {e}");
                let _ = tx.blocking_send(Err(io::Error::other("read failed")));
            }
        }
    });
    channel_body(rx)
}

/// Playback or download of a recording. `HEAD` (which axum routes to a GET handler)
/// gets the headers only: no audit entry, nothing decrypted.
async fn respond(
    state: WebState,
    session: FullSession,
    id: String,
    headers: HeaderMap,
    download: bool,
    method: Method,
) -> Result<Response, WebError> {
    let entry = entry_of(&state, &session, &id).await?;
    let action = if download {
        Action::DownloadRecording
    } else {
        Action::PlayRecording
    };
    session.require(action, Object::ThisRecording(&entry.camera, entry.id))?;
    let viewer = viewer_for(&state, &session, &entry).await?;
    let mp4 = layout(&state, &entry, viewer.clone()).await?;
    let range = requested_range(&headers, mp4.len())?;
    let file_name = download.then(|| {
        format!(
            "{}_{}.mp4",
            entry.camera,
            view::file_stamp(entry.start_micros)
        )
    });
    if method == Method::HEAD {
        return Ok(mp4_head(&mp4, range, file_name));
    }
    // Every range gives access, so any may be the one logged; a resumed download
    // and the player's range requests (after its page) are logged once.
    let kind = if download {
        AuditKind::RecordingDownloaded
    } else {
        AuditKind::RecordingViewed
    };
    audit_recording(&state, &session, &entry, kind).await?;
    let open = recording_opener(&state, &entry, viewer);
    // Access ending (logged out, the user removed, rights withdrawn) ends a response
    // already streaming, as for share links and live view; so does the recording
    // being deleted (the open file would otherwise play on after its key was shredded).
    let (auth, index, key, camera, rid) = (
        state.auth.clone(),
        state.index.clone(),
        session.0.key,
        entry.camera.clone(),
        entry.id,
    );
    let allowed: StillAllowed = Arc::new(move || {
        still_allowed_blocking(&auth, key, action, Object::ThisRecording(&camera, rid))
            && not_deleted(&index, rid)
    });
    Ok(mp4_response(
        open,
        Some(allowed),
        format!("recording {}", entry.id),
        mp4,
        range,
        file_name,
    ))
}

/// Whether recording `id` is still in the index and not being deleted: one index
/// read, cheap enough per [`PIECE`]. An index that cannot answer ends the response.
fn not_deleted(index: &crate::index::Index, id: RecordingId) -> bool {
    match index.get_recording(id) {
        Ok(Some(entry)) => entry.state != RecordingState::Deleting,
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(recording = %id, "playback: cannot check the recording is still there: {e}");
            false
        }
    }
}

/// Writes `kind` (viewed or downloaded) of `entry` for `session` to the activity log,
/// unless this session's same access to it from the same address is logged already
/// (see [`super::audit_once`]).
pub(super) async fn audit_recording(
    state: &WebState,
    session: &FullSession,
    entry: &RecordingEntry,
    kind: AuditKind,
) -> Result<(), WebError> {
    let now = state.clock.now_micros();
    // The address the entry names: where this request came from (the session's
    // lookup hands it back as its last address, written to the index or not).
    let actor = crate::auth::session_actor(&session.0);
    let key = (
        session.0.key,
        actor.address,
        super::audit_once::Subject::Recording(entry.id),
        kind,
    );
    let (log, subject) = (
        state.auth.audit().clone(),
        format!("recording {} of camera {}", entry.id, entry.camera),
    );
    // A failed write is logged by `record_checked` and does not fail the request.
    let write = blocking(move || Ok(log.record_checked(kind, &actor, subject)));
    state.audited_once.write_once(key, now, write).await
}

/// The `Range` a request asks for, checked against the resource's length.
pub fn requested_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, WebError> {
    parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    )
}

/// A 200 or 206 streaming `range` (all if `None`) of `mp4`; an attachment when
/// `file_name` is given. With `allowed`, the body ends with an error as soon as it
/// answers false.
pub fn mp4_response(
    open: Opener,
    allowed: Option<StillAllowed>,
    what: String,
    mp4: Arc<ProgressiveMp4>,
    range: Option<(u64, u64)>,
    file_name: Option<String>,
) -> Response {
    let (start, end) = range.unwrap_or((0, mp4.len()));
    let body = stream_range(open, allowed, what, mp4.clone(), start, end);
    mp4_headers(Response::new(body), &mp4, range, file_name)
}

/// [`mp4_response`]'s answer to `HEAD`: the same headers, no body, nothing read.
pub fn mp4_head(
    mp4: &ProgressiveMp4,
    range: Option<(u64, u64)>,
    file_name: Option<String>,
) -> Response {
    mp4_headers(Response::new(Body::empty()), mp4, range, file_name)
}

fn mp4_headers(
    mut response: Response,
    mp4: &ProgressiveMp4,
    range: Option<(u64, u64)>,
    file_name: Option<String>,
) -> Response {
    let len = mp4.len();
    let (start, end) = range.unwrap_or((0, len));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    if let Some(name) = file_name {
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

pub async fn video(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    headers: HeaderMap,
    method: Method,
) -> Result<Response, WebError> {
    respond(state, session, id, headers, false, method).await
}

pub async fn download(
    State(state): State<WebState>,
    session: FullSession,
    Path(id): Path<String>,
    headers: HeaderMap,
    method: Method,
) -> Result<Response, WebError> {
    respond(state, session, id, headers, true, method).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(h: &str, len: u64) -> Result<Option<(u64, u64)>, WebError> {
        parse_range(Some(h), len)
    }

    #[test]
    fn single_ranges_are_parsed_and_clamped() {
        assert_eq!(parse_range(None, 100).expect("ok"), None);
        assert_eq!(range("bytes=0-9", 100).expect("ok"), Some((0, 10)));
        assert_eq!(range("bytes=90-", 100).expect("ok"), Some((90, 100)));
        assert_eq!(range("bytes=-10", 100).expect("ok"), Some((90, 100)));
        assert_eq!(range("bytes=-500", 100).expect("ok"), Some((0, 100)));
        assert_eq!(range("bytes=50-5000", 100).expect("ok"), Some((50, 100)));
        assert_eq!(
            range("bytes=0-1,5-6", 100).expect("ok"),
            None,
            "multi-range: whole"
        );
        assert_eq!(range("items=0-1", 100).expect("ok"), None);
    }

    #[test]
    fn unsatisfiable_ranges_are_416() {
        for h in [
            "bytes=100-",
            "bytes=5-1",
            "bytes=-0",
            "bytes=x-1",
            "bytes=",
            "bytes=200-300",
        ] {
            assert!(
                matches!(
                    range(h, 100),
                    Err(WebError::RangeNotSatisfiable { len: 100 })
                ),
                "{h}"
            );
        }
    }
}
