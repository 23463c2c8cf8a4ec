//! The owner's "discovered cameras" page: what announced itself on the LAN over mDNS
//! or answered an ONVIF probe (`crate::discovery`), with the cameras already
//! configured marked as such. Opening it asks for a fresh ONVIF probe.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::frame_for;
use crate::auth::policy::{Action, Object};
use crate::discovery::{DiscoveredCamera, Source};
use crate::web::extract::FullSession;
use crate::web::view::{self, render, Frame};
use crate::web::{WebError, WebState};

/// One discovered instance, ready to show (askama escapes every field: names and
/// TXT values come from the LAN and are untrusted).
pub struct Row {
    pub instance: String,
    /// `mDNS` or `ONVIF`.
    pub source: &'static str,
    pub service_type: String,
    pub host: String,
    pub addresses: String,
    pub port: u16,
    pub path: String,
    pub model: String,
    /// The suggested RTSP URL (`_rtsp._tcp` and ONVIF), without credentials.
    pub url: String,
    /// Whether `url` is a guess (ONVIF: `rtsp://HOST:554/`), not an announcement.
    pub guessed: bool,
    /// ONVIF: the device-service URL it gave (shown only, never fetched).
    pub device_url: String,
    /// The same device heard the other way (same address): `mDNS: Front door`.
    pub also: String,
    /// The configured camera it already is, if any.
    pub configured: Option<String>,
    /// `/cameras/add?…` with the URL and a suggested name; empty without a URL.
    pub add_link: String,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Template)]
#[template(path = "discovered.html")]
struct DiscoveredPage {
    frame: Frame,
    enabled: bool,
    rows: Vec<Row>,
    csrf: String,
    /// Cameras added in the web UI (removable here).
    added: Vec<String>,
}

pub async fn list(
    State(state): State<WebState>,
    session: FullSession,
) -> Result<Response, WebError> {
    session.require(Action::ManageCameras, Object::System)?;
    if let Some(d) = &state.discovery {
        d.search();
    }
    let cameras = state.registry.all();
    let found = state
        .discovery
        .as_ref()
        .map(|d| d.list())
        .unwrap_or_default();
    let rows = found
        .iter()
        .cloned()
        .map(|d| Row {
            configured: cameras
                .iter()
                .find(|c| d.matches(&c.config.url))
                .map(|c| c.id().to_string()),
            url: d
                .suggested_rtsp_url()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            guessed: d.source == Source::Onvif,
            device_url: d.device_url.clone().unwrap_or_default(),
            also: heard_otherwise(&d, &found),
            add_link: d
                .suggested_rtsp_url()
                .and_then(|u| {
                    let mut query = vec![
                        ("url", u.to_string()),
                        ("name", suggested_name(&d.instance)),
                    ];
                    if d.source == Source::Onvif {
                        query.push(("onvif", d.fullname.clone()));
                    }
                    serde_urlencoded::to_string(query).ok()
                })
                .map(|q| format!("/cameras/add?{q}"))
                .unwrap_or_default(),
            instance: d.instance,
            source: d.source.label(),
            service_type: d.service_type,
            host: d.host,
            addresses: d
                .addresses
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            port: d.port,
            path: d.path.unwrap_or_default(),
            model: d.model.unwrap_or_default(),
            first_seen: view::date_time(d.first_seen_micros),
            last_seen: view::date_time(d.last_seen_micros),
        })
        .collect();
    let index = state.index.clone();
    let added = super::blocking(move || {
        Ok(index
            .cameras()?
            .into_iter()
            .map(|c| c.id.to_string())
            .collect())
    })
    .await?;
    render(&DiscoveredPage {
        frame: frame_for(&state, &session.0).await?,
        enabled: state.discovery.is_some(),
        rows,
        csrf: session.0.entry.csrf.clone(),
        added,
    })
}

/// The entries from the other source at one of `d`'s addresses (a camera that both
/// announces itself over mDNS and answers ONVIF), as `ONVIF: Front door`. Both rows
/// stay: each says something the other does not (the announced stream, the ONVIF
/// device URL).
fn heard_otherwise(d: &DiscoveredCamera, all: &[DiscoveredCamera]) -> String {
    all.iter()
        .filter(|o| o.source != d.source && o.addresses.iter().any(|a| d.addresses.contains(a)))
        .map(|o| format!("{}: {}", o.source.label(), o.instance))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A camera id from an announced name: `Front Door (2)` → `front-door-2`.
fn suggested_name(instance: &str) -> String {
    let mut name = String::new();
    for c in instance.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    name.truncate(64);
    name.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggested_names_are_camera_ids() {
        assert_eq!(super::suggested_name("Front Door (2)"), "front-door-2");
        assert_eq!(super::suggested_name("<script>"), "script");
        assert_eq!(super::suggested_name("Ünïcode"), "n-code");
    }
}
