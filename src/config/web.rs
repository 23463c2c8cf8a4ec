//! The `[web]` and `[smtp]` sections: where the UI listens, its certificate, session
//! lifetimes, and how security alerts are mailed.
//!
//! Both sections are optional. Without `[web]` the UI listens on `0.0.0.0:8443` with a
//! self-signed certificate kept in the data directory; without `[smtp]` alerts are only
//! shown in the UI.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::proxies::TrustedProxies;
use super::ConfigError;

/// The web UI's settings.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// HTTPS listener. Default `0.0.0.0:8443`.
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener that only redirects to HTTPS.
    pub http_listen: Option<SocketAddr>,
    /// A user-supplied certificate chain and key (PEM). When absent a self-signed
    /// certificate is generated in `data_dir/web/` at first start.
    pub tls: Option<TlsFiles>,
    /// A session unused this long ends. Default 30 minutes (NIST SP 800-63B AAL2).
    pub session_idle: Duration,
    /// A session ends this long after login whatever its use. Default 12 hours
    /// (NIST SP 800-63B AAL2 re-authentication).
    pub session_max: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client. Default empty: the
    /// client is the TCP peer and the header is ignored.
    pub trusted_proxies: TrustedProxies,
}

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            http_listen: None,
            tls: None,
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// How mail leaves the house.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required). Default; port 587.
    Starttls,
    /// TLS from the first byte (SMTPS); port 465.
    Tls,
    /// No encryption at all: only for a relay on the same host or LAN.
    None,
}

/// `[smtp]`: where security alerts are sent from.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From:` address, e.g. `Porchlight <porchlight@example.org>`.
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log line or an error.
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    listen: Option<Spanned<String>>,
    http_listen: Option<Spanned<String>>,
    tls_cert: Option<Spanned<PathBuf>>,
    tls_key: Option<Spanned<PathBuf>>,
    session_idle_minutes: Option<Spanned<u64>>,
    session_max_hours: Option<Spanned<u64>>,
    trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    host: Spanned<String>,
    port: Option<u16>,
    security: Option<SmtpSecurity>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    from: Spanned<String>,
}

/// `[notify]`: where event notifications go besides the UI and mail.
#[derive(Clone)]
pub struct NotifyConfig {
    /// An ntfy-compatible topic URL (`https://ntfy.example.org/porch`): each
    /// notification is a POST of plain text with `Title`, `Tags` and `Priority`.
    pub webhook: url::Url,
    /// Sent as `Authorization: Bearer …` if set; never logged.
    pub webhook_token: Option<String>,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("webhook", &self.webhook.as_str())
            .field("webhook_token", &self.webhook_token.as_ref().map(|_| "…"))
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    webhook_url: Spanned<String>,
    webhook_token: Option<Spanned<String>>,
}

/// Whether `host` (a name or an address, IPv6 maybe in brackets) is this machine: the
/// one place a secret may travel without TLS.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn parse_notify(
    raw: Option<RawNotify>,
    located: Located<'_>,
) -> Result<Option<NotifyConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let span = raw.webhook_url.span();
    let url = url::Url::parse(raw.webhook_url.get_ref())
        .map_err(|e| located(span.clone(), "notify.webhook_url", e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(located(
            span,
            "notify.webhook_url",
            "must be an http:// or https:// URL".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(located(
            span,
            "notify.webhook_url",
            "must not hold credentials; use webhook_token".into(),
        ));
    }
    if let Some(token) = &raw.webhook_token {
        // The bearer token would cross the network in clear.
        if url.scheme() == "http" && !url.host_str().is_some_and(is_loopback) {
            return Err(located(
                token.span(),
                "notify.webhook_token",
                "is sent in clear over http://: use an https:// webhook_url (http:// only to this machine)".into(),
            ));
        }
    }
    Ok(Some(NotifyConfig {
        webhook: url,
        webhook_token: raw.webhook_token.map(Spanned::into_inner),
    }))
}

pub(super) type Located<'a> = &'a dyn Fn(Range<usize>, &str, String) -> ConfigError;

fn address(
    raw: &Spanned<String>,
    key: &str,
    located: Located<'_>,
) -> Result<SocketAddr, ConfigError> {
    raw.get_ref().parse().map_err(|_| {
        located(
            raw.span(),
            key,
            format!(
                "{:?} is not an address:port such as 0.0.0.0:8443",
                raw.get_ref()
            ),
        )
    })
}

pub(super) fn parse_web(
    raw: Option<RawWeb>,
    located: Located<'_>,
) -> Result<WebConfig, ConfigError> {
    let mut web = WebConfig::default();
    let Some(raw) = raw else { return Ok(web) };
    if let Some(l) = &raw.listen {
        web.listen = address(l, "web.listen", located)?;
    }
    if let Some(l) = &raw.http_listen {
        web.http_listen = Some(address(l, "web.http_listen", located)?);
    }
    web.tls = match (raw.tls_cert, raw.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            for (p, k) in [(&cert, "web.tls_cert"), (&key, "web.tls_key")] {
                if !p.get_ref().is_absolute() {
                    return Err(located(p.span(), k, "must be an absolute path".into()));
                }
            }
            Some(TlsFiles {
                cert: cert.into_inner(),
                key: key.into_inner(),
            })
        }
        (Some(c), None) => {
            return Err(located(
                c.span(),
                "web.tls_key",
                "tls_cert needs tls_key too".into(),
            ))
        }
        (None, Some(k)) => {
            return Err(located(
                k.span(),
                "web.tls_cert",
                "tls_key needs tls_cert too".into(),
            ))
        }
    };
    if let Some(m) = raw.session_idle_minutes {
        if !(1..=7 * 24 * 60).contains(m.get_ref()) {
            return Err(located(
                m.span(),
                "web.session_idle_minutes",
                "must be 1 to 10080".into(),
            ));
        }
        web.session_idle = Duration::from_secs(m.get_ref() * 60);
    }
    if let Some(h) = raw.session_max_hours {
        if !(1..=90 * 24).contains(h.get_ref()) {
            return Err(located(
                h.span(),
                "web.session_max_hours",
                "must be 1 to 2160".into(),
            ));
        }
        web.session_max = Duration::from_secs(h.get_ref() * 3600);
    }
    web.trusted_proxies = super::proxies::parse(raw.trusted_proxies, located)?;
    Ok(web)
}

pub(super) fn parse_smtp(
    raw: Option<RawSmtp>,
    located: Located<'_>,
) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.host.get_ref().trim().is_empty() {
        return Err(located(
            raw.host.span(),
            "smtp.host",
            "must not be empty".into(),
        ));
    }
    if !raw.from.get_ref().contains('@') {
        return Err(located(
            raw.from.span(),
            "smtp.from",
            "must be a mail address".into(),
        ));
    }
    let security = raw.security.unwrap_or(SmtpSecurity::Starttls);
    if security == SmtpSecurity::None && !is_loopback(raw.host.get_ref()) {
        // Without TLS the login crosses the network in clear.
        if let Some((secret, key)) = raw
            .password
            .as_ref()
            .map(|p| (p, "smtp.password"))
            .or(raw.username.as_ref().map(|u| (u, "smtp.username")))
        {
            return Err(located(
                secret.span(),
                key,
                "would be sent in clear with security = \"none\": use starttls or tls (none with a login only to this machine)".into(),
            ));
        }
    }
    let port = raw.port.unwrap_or(match security {
        SmtpSecurity::Tls => 465,
        SmtpSecurity::Starttls => 587,
        SmtpSecurity::None => 25,
    });
    Ok(Some(SmtpConfig {
        host: raw.host.into_inner(),
        port,
        security,
        username: raw.username.map(Spanned::into_inner),
        password: raw.password.map(Spanned::into_inner),
        from: raw.from.into_inner(),
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;
    use super::*;

    #[test]
    fn the_webhook_must_be_http_without_credentials_and_its_token_is_never_shown() {
        let parse = |notify: &str| {
            Config::parse(
                Path::new("t.toml"),
                &format!("data_dir = \"/d\"\n[notify]\n{notify}\n"),
            )
        };
        let ok =
            parse("webhook_url = \"https://ntfy.example.org/porch\"\nwebhook_token = \"tk_1\"")
                .expect("valid");
        let notify = ok.notify.as_ref().expect("notify");
        assert_eq!(notify.webhook.as_str(), "https://ntfy.example.org/porch");
        assert!(
            !format!("{ok:?}").contains("tk_1"),
            "the token is not in Debug"
        );
        for bad in [
            "webhook_url = \"ftp://example.org/x\"",
            "webhook_url = \"https://user:pw@example.org/x\"",
            "webhook_url = \"not a url\"",
        ] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(e.contains("notify.webhook_url"), "{e}");
        }
    }

    #[test]
    fn a_login_or_a_webhook_token_in_clear_leaves_only_to_this_machine() {
        let parse = |section: &str| {
            Config::parse(
                Path::new("t.toml"),
                &format!("data_dir = \"/d\"\n{section}\n"),
            )
        };
        let smtp = |host: &str, security: &str| {
            format!(
                "[smtp]\nhost = \"{host}\"\nsecurity = \"{security}\"\nusername = \"u\"\npassword = \"pw_secret\"\nfrom = \"a@example.org\""
            )
        };
        let e = parse(&smtp("mail.example.org", "none"))
            .expect_err("login in clear")
            .to_string();
        assert!(e.starts_with("t.toml:6:"), "{e}");
        assert!(e.contains("smtp.password") && e.contains("in clear"), "{e}");
        assert!(!e.contains("pw_secret"), "the password is not shown: {e}");
        for (host, security) in [
            ("mail.example.org", "starttls"),
            ("mail.example.org", "tls"),
            ("127.0.0.1", "none"),
            ("localhost", "none"),
            ("::1", "none"),
        ] {
            parse(&smtp(host, security)).expect(host);
        }
        parse("[smtp]\nhost = \"relay.lan\"\nsecurity = \"none\"\nfrom = \"a@example.org\"")
            .expect("no login: a LAN relay is fine");

        let notify =
            |url: &str| format!("[notify]\nwebhook_url = \"{url}\"\nwebhook_token = \"tk_1\"");
        let e = parse(&notify("http://ntfy.lan/porch"))
            .expect_err("token in clear")
            .to_string();
        assert!(
            e.starts_with("t.toml:4:") && e.contains("notify.webhook_token"),
            "{e}"
        );
        assert!(!e.contains("tk_1"), "{e}");
        for ok in [
            "https://ntfy.lan/porch",
            "http://127.0.0.1:8080/porch",
            "http://[::1]/p",
        ] {
            parse(&notify(ok)).expect(ok);
        }
        parse("[notify]\nwebhook_url = \"http://ntfy.lan/porch\"").expect("no token: fine");
    }

    #[test]
    fn web_section_is_optional_and_defaults_to_8443() {
        let c = Config::parse(Path::new("/t.toml"), "").expect("valid");
        assert_eq!(c.web.listen, SocketAddr::from(([0, 0, 0, 0], 8443)));
        assert!(c.web.http_listen.is_none() && c.web.tls.is_none() && c.smtp.is_none());
        assert_eq!(c.web.session_idle, Duration::from_secs(1800));
    }

    #[test]
    fn web_and_smtp_sections_parse_and_hide_the_password() {
        let text = "[web]\nlisten = \"127.0.0.1:9443\"\nhttp_listen = \"127.0.0.1:9080\"\nsession_idle_minutes = 5\n\
                    [smtp]\nhost = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\nfrom = \"p@example.org\"\npassword = \"hunter2\"\n";
        let c = Config::parse(Path::new("/t.toml"), text).expect("valid");
        assert_eq!(c.web.listen.port(), 9443);
        assert_eq!(c.web.http_listen.map(|a| a.port()), Some(9080));
        assert_eq!(c.web.session_idle, Duration::from_secs(300));
        let smtp = c.smtp.expect("smtp");
        assert_eq!((smtp.port, smtp.security), (2525, SmtpSecurity::None));
        assert!(!format!("{smtp:?}").contains("hunter2"));
    }

    #[test]
    fn bad_web_values_are_located() {
        let err =
            Config::parse(Path::new("/t.toml"), "[web]\nlisten = \"nowhere\"\n").expect_err("bad");
        assert!(err.to_string().contains(":2: key `web.listen`"), "{err}");
        let err =
            Config::parse(Path::new("/t.toml"), "[web]\ntls_cert = \"/a.pem\"\n").expect_err("bad");
        assert!(err.to_string().contains("web.tls_key"), "{err}");
    }
}
