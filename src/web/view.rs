//! Templates (askama, in `web/templates/`) and the small helpers they need: local time
//! formatting (the host's time zone, DST-correct via jiff) and the day timeline SVG.

use std::sync::OnceLock;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::WebError;
use crate::auth::policy::{self, Action, Object};
use crate::auth::Session;

/// The host's time zone, read once (`/etc/localtime` or `TZ`).
pub fn tz() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(TimeZone::system)
}

fn zoned(micros: i64) -> Option<jiff::ZonedDateTime> {
    Some(
        Timestamp::from_microsecond(micros)
            .ok()?
            .to_zoned_datetime(tz().clone()),
    )
}

/// `14:03:22`
pub fn time_of_day(micros: i64) -> String {
    zoned(micros).map_or_else(String::new, |z| z.strftime("%H:%M:%S").to_string())
}

/// `2026-05-01 14:03`
pub fn date_time(micros: i64) -> String {
    zoned(micros).map_or_else(String::new, |z| z.strftime("%Y-%m-%d %H:%M").to_string())
}

/// `2026-05-01 14:03:22`
pub fn date_time_seconds(micros: i64) -> String {
    zoned(micros).map_or_else(String::new, |z| z.strftime("%Y-%m-%d %H:%M:%S").to_string())
}

/// `2026-05-01_14-03-22`, for file names.
pub fn file_stamp(micros: i64) -> String {
    zoned(micros).map_or_else(
        || "unknown".into(),
        |z| z.strftime("%Y-%m-%d_%H-%M-%S").to_string(),
    )
}

/// The local calendar day of `micros`.
pub fn day_of(micros: i64) -> Option<Date> {
    zoned(micros).map(|z| z.date())
}

/// `[start, end)` of a local day in Unix µs (a DST day is 23 or 25 hours long).
pub fn day_bounds(day: Date) -> Option<(i64, i64)> {
    let start = day
        .to_zoned_datetime(tz().clone())
        .ok()?
        .timestamp()
        .as_microsecond();
    let end = day
        .tomorrow()
        .ok()?
        .to_zoned_datetime(tz().clone())
        .ok()?
        .timestamp()
        .as_microsecond();
    Some((start, end))
}

/// `1 min 05 s`
pub fn duration(micros: i64) -> String {
    let s = (micros / 1_000_000).max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// The header's navigation: only for a full login.
pub struct Nav {
    pub user: String,
    pub csrf: String,
    pub alerts: usize,
    /// Show the owner's pages (Users, Shared videos).
    pub owner_pages: bool,
    /// Show the link to the linked services page (whoever may manage them).
    pub linked_services: bool,
    /// This user gets event notifications (the page listens for them).
    pub notices: bool,
}

impl Nav {
    pub fn of(session: &Session, alerts: usize) -> Option<Nav> {
        Some(Nav {
            user: session.user.username.clone(),
            csrf: session.entry.csrf.clone(),
            alerts,
            owner_pages: policy::allowed(&session.principal(), Action::ManageUsers, Object::System),
            linked_services: policy::allowed(
                &session.principal(),
                Action::ManageLinkedServices,
                Object::System,
            ),
            notices: policy::allowed(
                &session.principal(),
                Action::ManageOwnNotifications,
                Object::User(session.user.id),
            ),
        })
    }
}

/// What every page shows around its content.
pub struct Frame {
    pub nav: Option<Nav>,
    pub fingerprint: String,
}

/// Renders a template as an HTML response.
pub fn render(t: &impl Template) -> Result<Response, WebError> {
    t.render()
        .map(|html| Html(html).into_response())
        .map_err(|e| WebError::Internal(format!("template: {e}")))
}

/// One bar on a day timeline: a recording (video exists) or an event (activity).
pub struct Span {
    pub start_micros: i64,
    pub end_micros: i64,
    pub href: String,
    pub event: bool,
}

/// A 24-hour timeline as inline SVG: one unit per minute (1440 wide), grey bars where
/// there is video and amber ones where there was activity (events), a tick every 3 hours (the hour labels are HTML under it, so they
/// do not stretch with the bar). Drawn on the server; no script, no style
/// attribute (the CSP forbids inline style).
pub fn timeline_svg(day_start: i64, day_end: i64, spans: &[Span]) -> String {
    let len = (day_end - day_start).max(1) as f64;
    let x = |t: i64| (t.clamp(day_start, day_end) - day_start) as f64 / len * 1440.0;
    let mut svg = String::from(
        "<svg class=\"timeline\" viewBox=\"0 0 1440 44\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"Recorded video over the day\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"0\" y=\"8\" width=\"1440\" height=\"28\" fill=\"#1e2630\"/>",
    );
    // Recordings first, events over them.
    for s in spans
        .iter()
        .filter(|s| !s.event)
        .chain(spans.iter().filter(|s| s.event))
    {
        let (a, b) = (x(s.start_micros), x(s.end_micros));
        if b <= 0.0 || a >= 1440.0 {
            continue;
        }
        let (class, fill) = if s.event {
            ("event", "#f0a030")
        } else {
            ("recording", "#4a5866")
        };
        svg.push_str(&format!(
            "<a href=\"{}\"><rect class=\"{class}\" x=\"{a:.1}\" y=\"8\" width=\"{:.1}\" height=\"28\" fill=\"{fill}\"/></a>",
            askama_escape(&s.href),
            (b - a).max(2.0)
        ));
    }
    for h in (0..=24).step_by(3) {
        let px = f64::from(h) * 60.0;
        svg.push_str(&format!(
            "<line x1=\"{px}\" y1=\"36\" x2=\"{px}\" y2=\"42\" stroke=\"#8a96a3\" stroke-width=\"2\"/>"
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// HTML-escapes text for the hand-built SVG.
fn askama_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_places_bars_by_minute_and_escapes_links() {
        let day = 1_000_000_000_000;
        let hour = 3_600_000_000;
        let svg = timeline_svg(
            day,
            day + 24 * hour,
            &[Span {
                start_micros: day + 6 * hour,
                end_micros: day + 7 * hour,
                href: "/recordings/1\"><script>".into(),
                event: true,
            }],
        );
        assert!(svg.contains("class=\"event\" x=\"360.0\""), "{svg}");
        assert!(svg.contains("width=\"60.0\""));
        assert!(!svg.contains("<script>"));
        assert_eq!(svg.matches("<line").count(), 9, "a tick every 3 hours");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(5_000_000), "5 s");
        assert_eq!(duration(65_000_000), "1 min 05 s");
        assert_eq!(duration(3_700_000_000), "1 h 01 min");
    }
}
