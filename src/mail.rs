//! Security alerts by mail (`[smtp]`). The only user of `lettre`.
//!
//! [`spawn`] starts a task that receives alerts from `auth` and mails each to its
//! user's address (users without one are skipped). A failed delivery is logged and
//! dropped: an alert is also in the UI, and a dead mail server must never hold up a
//! login. The SMTP password never reaches a log line.

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
}

const TIMEOUT: Duration = Duration::from_secs(20);

fn transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let builder = match smtp.security {
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| MailError::Smtp(e.to_string()))?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|e| MailError::Smtp(e.to_string()))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(TIMEOUT));
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(builder.build())
}

/// Sends one plain-text message.
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
    transport(smtp)?
        .send(message)
        .await
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
        AlertKind::SecondStepNotCompleted => {
            "Porchlight: your password was used, the login not completed"
        }
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Starts the mailer; returns where alerts are sent.
pub fn spawn(
    smtp: SmtpConfig,
    index: Index,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::UnboundedSender<AlertNotice> {
    let (tx, mut rx) = mpsc::unbounded_channel::<AlertNotice>();
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
