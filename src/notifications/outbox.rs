//! Deliveries that wait on a server outside the house — event mail and the webhook —
//! each done by its own worker task fed through a bounded queue ([`QUEUE`]).
//!
//! Why: the notifications loop also tells open pages, and it must never await a mail
//! or webhook server. A server that accepts and then stays silent would otherwise
//! stop that loop, its event channel would overflow, and later notices would be lost
//! everywhere. Now a stalled server delays only its own deliveries; when its queue is
//! full the new delivery is dropped and logged (the event is still recorded and on
//! the open pages).

use std::future::Future;

use tokio::sync::mpsc;

use crate::config::{NotifyConfig, SmtpConfig};
use crate::index::UserId;

/// Deliveries of one kind that may wait for their worker before new ones are dropped.
pub const QUEUE: usize = 64;

/// One event notification by mail.
pub struct Mail {
    pub user: UserId,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// One POST to the owner's webhook.
pub struct Post {
    pub tags: &'static str,
    pub priority: &'static str,
    pub title: String,
}

/// Where deliveries are queued; a target that is not configured has no queue.
pub struct Outbox {
    mail: Option<mpsc::Sender<Mail>>,
    webhook: Option<mpsc::Sender<Post>>,
}

impl Outbox {
    /// Starts a worker per configured target. The workers end when the outbox is
    /// dropped (the notifications loop ends on shutdown).
    pub fn spawn(
        smtp: Option<SmtpConfig>,
        webhook: Option<(NotifyConfig, reqwest::Client)>,
    ) -> Outbox {
        let mail = smtp.map(|smtp| {
            worker(move |m: Mail| {
                let smtp = smtp.clone();
                async move {
                    match crate::mail::send(&smtp, &m.to, &m.subject, m.body).await {
                        Ok(()) => tracing::info!(user = %m.user, "event notification mailed"),
                        Err(e) => {
                            tracing::warn!(user = %m.user, "event notification not mailed: {e}")
                        }
                    }
                }
            })
        });
        let webhook = webhook.map(|(cfg, client)| {
            worker(move |p: Post| {
                let (cfg, client) = (cfg.clone(), client.clone());
                async move { post_webhook(&client, &cfg, p).await }
            })
        });
        Outbox { mail, webhook }
    }

    pub fn has_mail(&self) -> bool {
        self.mail.is_some()
    }

    pub fn mail(&self, m: Mail) {
        if let Some(tx) = &self.mail {
            offer(tx, m, "event mail");
        }
    }

    pub fn webhook(&self, p: Post) {
        if let Some(tx) = &self.webhook {
            offer(tx, p, "webhook");
        }
    }
}

/// A task that delivers what arrives on a bounded queue, one at a time.
fn worker<T, F, Fut>(mut deliver: F) -> mpsc::Sender<T>
where
    T: Send + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (tx, mut rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            deliver(job).await;
        }
    });
    tx
}

/// Queues `job` without waiting; a full queue drops it, which is logged.
pub fn offer<T>(tx: &mpsc::Sender<T>, job: T, what: &str) {
    match tx.try_send(job) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                "{what} queue full (its server is slow or silent): one notification dropped"
            )
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            tracing::warn!("{what} worker has stopped: one notification dropped")
        }
    }
}

/// One POST in ntfy's format: the text as the body, `Title`, `Tags`, `Priority`.
/// The client's own timeout bounds it.
async fn post_webhook(client: &reqwest::Client, cfg: &NotifyConfig, p: Post) {
    let mut req = client
        .post(cfg.webhook.clone())
        .header("Title", "Porchlight")
        .header("Tags", p.tags)
        .header("Priority", p.priority)
        .body(p.title);
    if let Some(token) = &cfg.webhook_token {
        req = req.bearer_auth(token);
    }
    // The URL is the owner's; only its host goes to the log (a path may hold a topic
    // name they consider private).
    let host = cfg.webhook.host_str().unwrap_or("?");
    match req.send().await {
        Ok(r) if r.status().is_success() => tracing::info!(host, "webhook notified"),
        Ok(r) => tracing::warn!(
            host,
            status = r.status().as_u16(),
            "webhook refused the notification"
        ),
        Err(e) => tracing::warn!(host, "webhook not reached: {}", e.without_url()),
    }
}
