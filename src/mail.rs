//! Security alerts by mail (`[smtp]`). The only user of `lettre`.
//!
//! [`spawn`] starts a task that receives alerts from `auth` and mails each to its
//! user's address (users without one are skipped). A failed delivery is logged and
//! dropped: an alert is also in the UI, and a dead mail server must never hold up a
//! login. The SMTP password never reaches a log line.
//!
//! Every [`send`] is bounded by [`SEND_TIMEOUT`] as a whole: lettre's own timeout
//! covers only the TCP connect, so a server that accepts and then stays silent (a
//! black hole, or port 465 spoken to with STARTTLS) would otherwise hold a sender
//! forever. The mailer's queue is bounded too ([`QUEUE`]); when it is full a new
//! alert is not mailed (it is still stored and shown) and that is logged.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{mpsc, watch};

use crate::auth::AlertNotice;
use crate::config::{SmtpConfig, SmtpSecurity};
use crate::index::{AlertKind, Index};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("bad address {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("SMTP: no answer within {} s", SEND_TIMEOUT.as_secs())]
    Timeout,
}

/// How long the TCP connect may take (lettre's own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one whole delivery may take: connect, greeting, EHLO, STARTTLS, AUTH
/// and DATA.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Alerts waiting for the mailer before new ones are dropped (logged).
pub const QUEUE: usize = 64;

fn transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let builder = match smtp.security {
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| MailError::Smtp(e.to_string()))?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|e| MailError::Smtp(e.to_string()))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(CONNECT_TIMEOUT));
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(builder.build())
}

/// Sends one plain-text message, giving up after [`SEND_TIMEOUT`].
pub async fn send(
    smtp: &SmtpConfig,
    to: &str,
    subject: &str,
    body: String,
) -> Result<(), MailError> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|_| MailError::Address(smtp.from.clone()))?;
    let to: Mailbox = to.parse().map_err(|_| MailError::Address(to.to_owned()))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .body(body)
        .map_err(|e| MailError::Build(e.to_string()))?;
    let transport = transport(smtp)?;
    tokio::time::timeout(SEND_TIMEOUT, transport.send(message))
        .await
        .map_err(|_| MailError::Timeout)?
        .map_err(|e| MailError::Smtp(e.to_string()))?;
    Ok(())
}

/// The one line a security alert is known by outside the page: a mail's subject and
/// the webhook's text (no names, addresses or devices).
pub fn subject(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::NewDevice => "Porchlight: new login to your account",
        AlertKind::LoginBlocked => "Porchlight: logins blocked after failed attempts",
        AlertKind::NewSharedUser => "Porchlight: a new shared user",
        AlertKind::SupportGranted => "Porchlight: support access granted",
        AlertKind::PasswordChanged => "Porchlight: your password was changed",
        AlertKind::ShareCreated => "Porchlight: a share link was made",
        AlertKind::AccountDeleted => "Porchlight: a shared user deleted their account",
        AlertKind::TwoFactorChanged => "Porchlight: your two-step verification was changed",
        AlertKind::TokenCreated => "Porchlight: a linked service token was made",
        AlertKind::E2ePassphraseChanged => "Porchlight: your end-to-end passphrase was changed",
        AlertKind::E2eRecoveryKeyReplaced => "Porchlight: you have a new end-to-end recovery key",
        AlertKind::SecondStepNotCompleted => {
            "Porchlight: your password was used, the login not completed"
        }
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Starts the mailer; returns where alerts are sent (bounded: use `try_send`, so a
/// stalled mail server never holds up the sender).
pub fn spawn(
    smtp: SmtpConfig,
    index: Index,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::Sender<AlertNotice> {
    let (tx, mut rx) = mpsc::channel::<AlertNotice>(QUEUE);
    tokio::spawn(async move {
        loop {
            let notice = tokio::select! {
                n = rx.recv() => match n { Some(n) => n, None => break },
                _ = stopped(&mut shutdown) => break,
            };
            let user = {
                let index = index.clone();
                tokio::task::spawn_blocking(move || index.get_user(notice.user)).await
            };
            let email = match user {
                Ok(Ok(Some(u))) => u.email,
                _ => None,
            };
            let Some(email) = email else {
                tracing::debug!(user = %notice.user, "alert not mailed: the user has no address");
                continue;
            };
            let body = format!(
                "{}\n\nTime: {}\n\n-- \nPorchlight, your home video recorder\n",
                notice.alert.message,
                crate::clock::rfc3339(notice.alert.time_micros)
            );
            match send(&smtp, &email, subject(notice.alert.kind), body).await {
                Ok(()) => tracing::info!(user = %notice.user, "security alert mailed"),
                Err(e) => tracing::warn!(user = %notice.user, "security alert not mailed: {e}"),
            }
        }
    });
    tx
}
