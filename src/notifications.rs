//! Event notifications to people: when a motion or doorbell event begins, every
//! owner and shared user whose preferences want it (that camera, that kind, outside
//! their quiet hours) is told — in the open web UI (server-sent events), by mail
//! when mail is configured and they asked for it, and through the owner's
//! ntfy-compatible webhook when one is configured and an owner who wants the event
//! did not turn it off. The webhook is the house's (the owner's phone): only owners'
//! preferences decide it; a shared user's decide their own pages and mail only.
//!
//! Security notices (`auth`'s alerts: new device, password or two-step changed, new
//! shared user, support access, share link, …) go out here too, whatever anyone's
//! preferences say: to the user's open pages and to the mailer; and through the
//! webhook when one is configured and the notice is an owner's own (its text speaks
//! to the owner: "your password was changed").
//!
//! What leaves the house is one line of text (kind, camera, time; for a security
//! notice only its kind) to the targets the owner configured: never a picture, never
//! a name, address or device, never a link with a secret.
//!
//! Open pages are told first and at once; mail and the webhook are queued to their
//! own workers ([`outbox`]), so a silent mail or webhook server never stops this
//! loop nor the notices of later events.

mod outbox;

use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use crate::auth::AlertNotice;
use crate::clock::rfc3339;
use crate::config::{NotifyConfig, SmtpConfig};
use crate::index::{EventEntry, Index, NotificationPrefs, Role, UserEntry, UserId};
use crate::model::Trigger;
use crate::recorder::{EventNotice, EventPhase};
use outbox::{Mail, Outbox, Post};

/// How long a webhook delivery may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Notices an open page may fall behind before it misses some.
const UI_BACKLOG: usize = 64;

/// What an event notifies as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Motion,
    Doorbell,
}

impl Kind {
    /// Motion and doorbell events notify; continuous marks and live views do not
    /// (someone watching needs no alert about it).
    pub fn of(event: &EventEntry) -> Option<Kind> {
        Kind::of_triggers(event.triggers.iter().copied())
    }

    fn of_triggers(mut triggers: impl Iterator<Item = Trigger> + Clone) -> Option<Kind> {
        if triggers.clone().any(|t| t == Trigger::External) {
            Some(Kind::Doorbell)
        } else if triggers.any(|t| t == Trigger::Motion) {
            Some(Kind::Motion)
        } else {
            None
        }
    }

    /// What a notice about an event is news of, if anything: its kind when it starts,
    /// and when a trigger joins an open event and changes what the event notifies as
    /// (a doorbell pressed during motion, motion while someone watches live). Motion
    /// joining a doorbell's event, and the end of an event, are not news.
    pub fn news(phase: EventPhase, event: &EventEntry) -> Option<Kind> {
        let now = Kind::of(event)?;
        match phase {
            EventPhase::Started => Some(now),
            EventPhase::Joined(added) => {
                let before = event.triggers.iter().copied().filter(|t| *t != added);
                (Kind::of_triggers(before) != Some(now)).then_some(now)
            }
            EventPhase::Finished => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Motion => "motion",
            Kind::Doorbell => "doorbell",
        }
    }
}

/// One notification for one user's open pages.
#[derive(Clone, Debug)]
pub struct UiNotice {
    pub user: UserId,
    pub title: String,
    /// The camera's recordings page of that day.
    pub link: String,
}

/// The UI side of the service: open pages subscribe here. Cheap to clone.
#[derive(Clone)]
pub struct Notifications {
    ui: broadcast::Sender<UiNotice>,
}

impl Notifications {
    pub fn subscribe(&self) -> broadcast::Receiver<UiNotice> {
        self.ui.subscribe()
    }
}

/// Whether `user` wants an event of `kind` on `event.camera` at local `minute`.
pub fn wants(
    user: &UserEntry,
    prefs: &NotificationPrefs,
    event: &EventEntry,
    kind: Kind,
    minute: u16,
) -> bool {
    // Support helpers see health, not events; owners and shared users get notified.
    if !matches!(user.role, Role::Owner | Role::Shared) || prefs.is_quiet(minute) {
        return false;
    }
    let camera = prefs.camera(&event.camera);
    match kind {
        Kind::Motion => camera.motion,
        Kind::Doorbell => camera.doorbell,
    }
}

fn zoned(micros: i64) -> Option<jiff::ZonedDateTime> {
    Some(
        jiff::Timestamp::from_microsecond(micros)
            .ok()?
            .to_zoned_datetime(jiff::tz::TimeZone::system()),
    )
}

/// Local minutes after midnight of `micros`.
fn local_minute(micros: i64) -> u16 {
    zoned(micros).map_or(0, |z| (z.hour() as u16) * 60 + z.minute() as u16)
}

fn local_day(micros: i64) -> String {
    zoned(micros)
        .map(|z| z.date().to_string())
        .unwrap_or_default()
}

fn local_time(micros: i64) -> String {
    zoned(micros)
        .map(|z| z.strftime("%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// What a notice of `kind` says, naming the moment of its news (the event's start, or
/// when a doorbell joined it).
struct Texts {
    /// For pages, the mail's subject and the webhook.
    title: String,
    /// The camera's recordings page of that day.
    link: String,
    mail: String,
}

fn texts(kind: Kind, notice: &EventNotice) -> Texts {
    let (event, at_micros) = (&notice.event, notice.at_micros);
    let title = format!(
        "{} at {}, {}",
        match kind {
            Kind::Motion => "Motion",
            Kind::Doorbell => "Doorbell",
        },
        event.camera,
        local_time(at_micros)
    );
    let link = format!(
        "/cameras/{}/recordings?day={}",
        event.camera,
        local_day(at_micros)
    );
    let mail = format!(
        "{title}.\n\nTime: {}\nOpen Porchlight to watch it.\n\n-- \nPorchlight, your home video recorder\n(Change what you are told in Notifications.)\n",
        rfc3339(at_micros)
    );
    Texts { title, link, mail }
}

/// Starts the service: listens to `events` until `shutdown`.
pub fn spawn(
    index: Index,
    mut events: broadcast::Receiver<EventNotice>,
    mut alerts: mpsc::UnboundedReceiver<AlertNotice>,
    mailer: Option<mpsc::Sender<AlertNotice>>,
    smtp: Option<SmtpConfig>,
    webhook: Option<NotifyConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> Notifications {
    let (ui, _) = broadcast::channel(UI_BACKLOG);
    let service = Notifications { ui: ui.clone() };
    let http = webhook.as_ref().and_then(|_| {
        reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // HTTP(S)_PROXY in the daemon's environment must not route the owner's
            // notifications (and their token) through someone else's machine.
            .no_proxy()
            .build()
            .map_err(|e| tracing::error!("webhook client: {e}; webhook notifications are off"))
            .ok()
    });
    let outbox = Outbox::spawn(smtp, webhook.clone().zip(http));
    tokio::spawn(async move {
        let mut alerts_open = true;
        loop {
            let notice = tokio::select! {
                a = alerts.recv(), if alerts_open => Err(a),
                n = events.recv() => Ok(n),
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let notice = match notice {
                Ok(n) => n,
                Err(Some(alert)) => {
                    let idx = index.clone();
                    let user = alert.user;
                    let owner = tokio::task::spawn_blocking(move || idx.get_user(user)).await;
                    let owner = match owner {
                        Ok(Ok(u)) => u.is_some_and(|u| u.role == Role::Owner),
                        Ok(Err(e)) => {
                            tracing::error!("notifications: cannot read a user: {e}");
                            false
                        }
                        Err(e) => {
                            tracing::error!("notifications: {e}");
                            false
                        }
                    };
                    security_notice(&ui, mailer.as_ref(), &outbox, owner, alert);
                    continue;
                }
                Err(None) => {
                    alerts_open = false;
                    continue;
                }
            };
            let notice = match notice {
                Ok(n) => n,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("notifications fell behind: {n} event(s) not notified");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(kind) = Kind::news(notice.phase, &notice.event) else {
                continue;
            };
            // A doorbell joining motion is told (and quiet hours judged) at the ring,
            // not at the motion's start.
            let Texts { title, link, mail } = texts(kind, &notice);
            let event = notice.event;
            let idx = index.clone();
            let minute = local_minute(notice.at_micros);
            let ev = event.clone();
            let recipients = tokio::task::spawn_blocking(
                move || -> Result<Vec<(UserEntry, NotificationPrefs)>, crate::index::IndexError> {
                    let mut out = Vec::new();
                    for user in idx.all_users()? {
                        let prefs = idx.notification_prefs(user.id)?;
                        if wants(&user, &prefs, &ev, kind, minute) {
                            out.push((user, prefs));
                        }
                    }
                    Ok(out)
                },
            )
            .await;
            let recipients = match recipients {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::error!("notifications: cannot read users: {e}");
                    continue;
                }
                Err(e) => {
                    tracing::error!("notifications: {e}");
                    continue;
                }
            };
            let mut webhook_wanted = false;
            for (user, prefs) in &recipients {
                let _ = ui.send(UiNotice {
                    user: user.id,
                    title: title.clone(),
                    link: link.clone(),
                });
                webhook_wanted |= user.role == Role::Owner && prefs.webhook;
                if let (true, true, Some(to)) = (prefs.email, outbox.has_mail(), &user.email) {
                    outbox.mail(Mail {
                        user: user.id,
                        to: to.clone(),
                        subject: format!("Porchlight: {title}"),
                        body: mail.clone(),
                    });
                }
            }
            if webhook_wanted {
                let priority = match kind {
                    Kind::Doorbell => "high",
                    Kind::Motion => "default",
                };
                outbox.webhook(Post {
                    tags: kind.label(),
                    priority,
                    title,
                });
            }
        }
    });
    service
}

/// A security alert to the user's open pages (with its text: it is their own), to
/// the mailer, and, when the user is an owner, to the house webhook (its kind only).
/// Queues, never waits.
fn security_notice(
    ui: &broadcast::Sender<UiNotice>,
    mailer: Option<&mpsc::Sender<AlertNotice>>,
    outbox: &Outbox,
    owner: bool,
    notice: AlertNotice,
) {
    let _ = ui.send(UiNotice {
        user: notice.user,
        title: format!("Security: {}", notice.alert.message),
        link: "/alerts".into(),
    });
    let kind = notice.alert.kind;
    if let Some(mailer) = mailer {
        outbox::offer(mailer, notice, "security mail");
    }
    if !owner {
        return;
    }
    outbox.webhook(Post {
        tags: "security",
        priority: "high",
        title: crate::mail::subject(kind).to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventId;

    fn event(triggers: &[Trigger]) -> EventEntry {
        EventEntry {
            id: EventId(1),
            camera: "porch".parse().expect("name"),
            start_micros: 0,
            end_micros: 0,
            triggers: triggers.to_vec(),
            peak_score: 0.0,
            score_curve: vec![],
            has_thumbnail: false,
            recordings: vec![],
            open: true,
        }
    }

    #[test]
    fn a_doorbell_during_motion_is_news_and_motion_during_a_doorbell_is_not() {
        use EventPhase::{Finished, Joined, Started};
        use Trigger::{Continuous, External, LiveView, Motion};
        let cases: [(EventPhase, &[Trigger], Option<Kind>); 9] = [
            (Started, &[Motion], Some(Kind::Motion)),
            (Started, &[External], Some(Kind::Doorbell)),
            (Started, &[LiveView], None),
            (Joined(External), &[Motion, External], Some(Kind::Doorbell)),
            (
                Joined(External),
                &[LiveView, External],
                Some(Kind::Doorbell),
            ),
            (Joined(Motion), &[LiveView, Motion], Some(Kind::Motion)),
            (Joined(Motion), &[External, Motion], None),
            (Joined(LiveView), &[Motion, LiveView], None),
            (Finished, &[Continuous, External], None),
        ];
        for (phase, triggers, news) in cases {
            assert_eq!(
                Kind::news(phase, &event(triggers)),
                news,
                "{phase:?} {triggers:?}"
            );
        }
    }

    #[test]
    fn a_doorbell_during_motion_is_told_at_the_ring_not_at_the_motions_start() {
        let motion = 1_700_000_000_000_000;
        let ring = motion + 120_000_000;
        let notice = EventNotice {
            phase: EventPhase::Joined(Trigger::External),
            event: EventEntry {
                start_micros: motion,
                ..event(&[Trigger::Motion, Trigger::External])
            },
            at_micros: ring,
        };
        let kind = Kind::news(notice.phase, &notice.event).expect("news");
        let Texts { title, link, mail } = texts(kind, &notice);
        assert_eq!(title, format!("Doorbell at porch, {}", local_time(ring)));
        assert_ne!(local_time(ring), local_time(motion));
        assert!(
            mail.contains(&format!("Time: {}\n", rfc3339(ring))),
            "{mail}"
        );
        assert!(link.ends_with(&local_day(ring)), "{link}");
    }
}
