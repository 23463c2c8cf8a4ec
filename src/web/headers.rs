//! Security headers on every response, the `Origin` check on every state-changing
//! request, and the HTTP → HTTPS redirect.
//!
//! The CSP allows scripts, styles and media only from this origin (no inline script or
//! style anywhere in the UI), `blob:` media for Media Source Extensions, and nothing
//! may frame the UI. HSTS is sent only with a user-supplied certificate: pinning a
//! self-signed one would lock users out when it is regenerated.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{WebError, WebState};

pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
media-src 'self' blob:; connect-src 'self'; font-src 'self'; form-action 'self'; \
frame-ancestors 'none'; object-src 'none'; base-uri 'none'";

/// Adds the headers every response carries.
pub fn add_security_headers(headers: &mut HeaderMap, hsts: bool) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        headers,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    if hsts {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000",
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

pub async fn security_headers(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    add_security_headers(response.headers_mut(), state.hsts);
    response
}

/// Whether a request's `Origin`/`Sec-Fetch-Site` say it comes from this site.
/// A real `Origin` must name the host the request was sent to. Browsers send
/// `Origin: null` on form posts from pages with `Referrer-Policy: no-referrer` (ours),
/// and old ones send none: then the browser's `Sec-Fetch-Site` must be `same-origin`.
/// With neither, the request is refused.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
    {
        let Some(host) = host else { return false };
        return origin.to_str().ok() == Some(&format!("https://{host}"));
    }
    matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("same-origin")
    )
}

/// Refuses state-changing requests from other sites (CSRF, ASVS 3.5): every method
/// but GET/HEAD/OPTIONS needs a same-origin `Origin` (or `Sec-Fetch-Site`). GET
/// handlers never change state.
pub async fn check_origin(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(req.headers()) {
        tracing::warn!(method = %req.method(), path = %req.uri().path(), "refused a cross-site request");
        return WebError::CrossSite.into_response();
    }
    // A GET that asks to upgrade to a WebSocket is checked by its handler.
    next.run(req).await
}

/// The plain-HTTP listener's only answer: a permanent redirect to HTTPS.
pub fn redirect_to_https<B>(
    req: &axum::http::Request<B>,
    https_port: u16,
    local: Option<SocketAddr>,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(strip_port)
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map(str::to_owned)
        .or_else(|| local.map(|a| a.ip().to_string()))
        .unwrap_or_else(|| "localhost".into());
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let path = if path.starts_with('/') && !path.starts_with("//") {
        path
    } else {
        "/"
    };
    let location = if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    add_security_headers(response.headers_mut(), false);
    response
}

/// `host:port` → `host`, keeping IPv6 brackets.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.split(':').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_must_match_the_host() {
        assert!(same_origin(&headers(&[
            ("host", "nvr:8443"),
            ("origin", "https://nvr:8443")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "nvr:8443"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "nvr:8443"),
            ("origin", "http://nvr:8443")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "nvr:8443"),
            ("origin", "null")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "nvr"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "nvr"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[("host", "nvr")])));
    }

    #[test]
    fn redirect_keeps_host_and_path_and_drops_the_port() {
        let req = axum::http::Request::builder()
            .uri("/cameras?x=1")
            .header("host", "nvr.local:8080")
            .body(())
            .expect("request");
        let r = redirect_to_https(&req, 8443, None);
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            r.headers()["location"],
            "https://nvr.local:8443/cameras?x=1"
        );
        let req = axum::http::Request::builder()
            .uri("/")
            .header("host", "[::1]:80")
            .body(())
            .expect("request");
        assert_eq!(
            redirect_to_https(&req, 443, None).headers()["location"],
            "https://[::1]/"
        );
        let req = axum::http::Request::builder()
            .uri("/")
            .header("host", "evil\"host")
            .body(())
            .expect("request");
        let local: SocketAddr = "192.0.2.1:80".parse().expect("addr");
        assert_eq!(
            redirect_to_https(&req, 443, Some(local)).headers()["location"],
            "https://192.0.2.1/"
        );
    }
}
