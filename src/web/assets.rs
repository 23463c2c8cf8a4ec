//! CSS and JavaScript, compiled into the binary so the UI works with no internet and
//! no files to install. Served with a content hash as ETag.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::extract::Path;
use super::WebError;

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/static/app.css"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/live.js"),
    ),
    (
        "invite.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/invite.js"),
    ),
    (
        "notify.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/notify.js"),
    ),
    (
        "share.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/share.js"),
    ),
    (
        "zones.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/zones.js"),
    ),
];

pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, WebError> {
    let Some((_, mime, body)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return Err(WebError::NotFound(format!("static file {file:?}")));
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(body)[..8]));
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, *mime)], *body).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
