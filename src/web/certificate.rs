//! The certificate the HTTPS listener serves, kept current while the daemon runs.
//!
//! Certificates are renewed behind a long-running daemon's back: certbot or an
//! internal CA replaces `tls_cert`/`tls_key` every few weeks, and the self-signed one
//! reaches its renewal date after two years of uptime. So the files are read again
//! when asked ([`super::Running::reload_certificate`]: the daemon does on SIGHUP,
//! `systemctl reload porchlight`, e.g. from a certbot deploy hook) and every
//! [`CHECK_INTERVAL`]; a changed chain or key is served from the next TLS handshake
//! on, and every page's fingerprint follows. A pair that cannot be read, or whose key does not
//! match, is refused with a warning naming the file and the old one stays served:
//! a half-written renewal never takes HTTPS down.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::tls::{read_certificate, LoadedCertificate};
use crate::config::WebConfig;

/// How often the certificate files are looked at without a SIGHUP.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The certificate chain and key given to every new TLS handshake.
pub struct ServedCertificate {
    current: RwLock<Current>,
}

struct Current {
    key: Arc<CertifiedKey>,
    fingerprint: Arc<str>,
    /// Of the whole chain and the key: a fixed intermediate counts as a change.
    identity: [u8; 32],
}

impl ServedCertificate {
    pub fn new(loaded: LoadedCertificate) -> Self {
        ServedCertificate {
            current: RwLock::new(Current {
                key: loaded.key,
                fingerprint: loaded.fingerprint.into(),
                identity: loaded.identity,
            }),
        }
    }

    /// SHA-256 of the leaf certificate being served, `AB:CD:…`.
    pub fn fingerprint(&self) -> Arc<str> {
        self.read(|c| c.fingerprint.clone())
    }

    /// Serves `loaded` from now on; false when it is the chain and key already served.
    pub fn replace(&self, loaded: LoadedCertificate) -> bool {
        // A poisoned lock only means a reader panicked; the pair in it is whole.
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.identity == loaded.identity {
            return false;
        }
        *current = Current {
            key: loaded.key,
            fingerprint: loaded.fingerprint.into(),
            identity: loaded.identity,
        };
        true
    }

    fn read<T>(&self, f: impl FnOnce(&Current) -> T) -> T {
        f(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl fmt::Debug for ServedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServedCertificate")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl ResolvesServerCert for ServedCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.read(|c| c.key.clone()))
    }
}

/// Reads the certificate again when `reload` is notified and every
/// [`CHECK_INTERVAL`] until `shutdown`, serving it when it changed (see the module
/// header).
pub async fn keep_current(
    served: Arc<ServedCertificate>,
    web: WebConfig,
    data_dir: PathBuf,
    reload: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let asked = tokio::select! {
            () = tokio::time::sleep(CHECK_INTERVAL) => false,
            () = reload.notified() => true,
            _ = super::stopped(&mut shutdown) => return,
        };
        let (w, d) = (web.clone(), data_dir.clone());
        let loaded = tokio::task::spawn_blocking(move || read_certificate(&w, &d)).await;
        match loaded {
            Ok(Ok(loaded)) => {
                let new = loaded.fingerprint.clone();
                if served.replace(loaded) {
                    tracing::info!("web: now serving a new HTTPS certificate, SHA-256 {new}");
                } else if asked {
                    tracing::info!("web: HTTPS certificate unchanged, SHA-256 {new}");
                }
            }
            Ok(Err(e)) => tracing::warn!(
                "web: HTTPS certificate not reloaded: {e}; still serving SHA-256 {}",
                served.fingerprint()
            ),
            Err(e) => tracing::warn!("web: HTTPS certificate not reloaded: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_near_its_end_is_renewed_and_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let web = WebConfig::default();
        let served = ServedCertificate::new(read_certificate(&web, dir.path()).expect("make"));
        let first = served.fingerprint();
        assert!(
            !served.replace(read_certificate(&web, dir.path()).expect("reread")),
            "an unchanged certificate is kept"
        );
        // Ten days left: inside the renewal window.
        let ends = time::OffsetDateTime::now_utc().unix_timestamp() + 10 * 86_400;
        std::fs::write(dir.path().join("web/cert-not-after"), ends.to_string()).expect("write");
        assert!(served.replace(read_certificate(&web, dir.path()).expect("renew")));
        assert_ne!(served.fingerprint(), first, "a new certificate is served");
    }

    #[test]
    fn the_same_leaf_with_a_fixed_chain_is_served_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leaf =
            rcgen::generate_simple_self_signed(vec!["nvr.example".to_owned()]).expect("leaf");
        let other = rcgen::generate_simple_self_signed(vec!["ca.example".to_owned()])
            .expect("an intermediate's stand-in");
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, leaf.cert.pem()).expect("write");
        std::fs::write(&key, leaf.signing_key.serialize_pem()).expect("write");
        let web = WebConfig {
            tls: Some(crate::config::TlsFiles {
                cert: cert.clone(),
                key,
            }),
            ..WebConfig::default()
        };
        let served = ServedCertificate::new(read_certificate(&web, dir.path()).expect("load"));
        std::fs::write(&cert, leaf.cert.pem() + &other.cert.pem()).expect("write chain");
        let fixed = read_certificate(&web, dir.path()).expect("reload");
        assert_eq!(*served.fingerprint(), *fixed.fingerprint, "the same leaf");
        assert!(
            served.replace(fixed),
            "a changed chain is a new certificate"
        );
        assert_eq!(
            served.read(|c| c.key.cert.len()),
            2,
            "the whole chain is served"
        );
    }
}
