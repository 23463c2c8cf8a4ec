//! The HTTPS certificate: a user-supplied one from `[web] tls_cert`/`tls_key`, or a
//! self-signed one generated at first start into `data_dir/web/` (key mode 0600,
//! certificate 0644 so an admin's copy of it keeps working as a `--cacert`) for the
//! host name, `<host>.local`, `localhost` and the machine's addresses.
//!
//! The self-signed certificate is valid for 825 days (the longest Apple platforms
//! accept) and regenerated 30 days before it runs out (checked at start and by the
//! running daemon, see `certificate.rs`); its SHA-256 fingerprint is logged at every
//! start and shown on every page so a user can compare it with what the browser says
//! before accepting it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;
use tokio_rustls::rustls::sign::CertifiedKey;

use super::certificate::ServedCertificate;
use super::WebError;
use crate::config::WebConfig;

const VALID_DAYS: i64 = 825;
const RENEW_DAYS_BEFORE: i64 = 30;

/// What the HTTPS listener serves.
pub struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    /// The certificate being served; [`super::certificate::keep_current`] swaps it.
    pub served: Arc<ServedCertificate>,
    /// SHA-256 of the leaf certificate at start, `AB:CD:…`.
    pub fingerprint: String,
    /// Whether the certificate came from the configuration (then HSTS is sent).
    pub user_supplied: bool,
}

/// A certificate chain and its key, checked to belong together.
pub struct LoadedCertificate {
    pub key: Arc<CertifiedKey>,
    /// SHA-256 of the leaf certificate, `AB:CD:…`.
    pub fingerprint: String,
    /// SHA-256 over the whole chain and the key, to tell any change apart.
    pub identity: [u8; 32],
}

fn tls_error(what: &str, path: &Path, e: impl std::fmt::Display) -> WebError {
    WebError::Start(format!("{what} {}: {e}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the configured certificate, or the generated one (generating it if needed).
pub fn load(web: &WebConfig, data_dir: &Path) -> Result<TlsSetup, WebError> {
    let loaded = read_certificate(web, data_dir)?;
    let fingerprint = loaded.fingerprint.clone();
    let served = Arc::new(ServedCertificate::new(loaded));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| WebError::Start(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(served.clone());
    // HTTP/2 first: a browser then needs one connection for all its tabs (see
    // server.rs); HTTP/1.1 for everything else, and for WebSockets.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        served,
        fingerprint,
        user_supplied: web.tls.is_some(),
    })
}

/// Reads the configured certificate and key, or the self-signed pair (made or
/// renewed first when it is missing or ends within [`RENEW_DAYS_BEFORE`] days).
pub fn read_certificate(web: &WebConfig, data_dir: &Path) -> Result<LoadedCertificate, WebError> {
    let (cert_path, key_path) = match &web.tls {
        Some(files) => (files.cert.clone(), files.key.clone()),
        None => ensure_self_signed(data_dir)?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| tls_error("cannot read certificate", &cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error("cannot parse certificate", &cert_path, e))?;
    let Some(leaf) = certs.first() else {
        return Err(tls_error("no certificate in", &cert_path, "empty file"));
    };
    let fingerprint = fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| tls_error("cannot read private key", &key_path, e))?;
    let mut identity = Sha256::new();
    for cert in &certs {
        identity.update((cert.len() as u64).to_be_bytes());
        identity.update(cert.as_ref());
    }
    identity.update(key.secret_der());
    let key = CertifiedKey::from_der(certs, key, &provider())
        .map_err(|e| tls_error("certificate and key do not match", &cert_path, e))?;
    Ok(LoadedCertificate {
        key: Arc::new(key),
        fingerprint,
        identity: identity.finalize().into(),
    })
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The machine's host name from `uname(2)`, not `/proc/sys/kernel/hostname`: the
/// packaged unit's `ProcSubset=pid` hides `/proc/sys`, which left the host name and
/// `<host>.local` out of the certificate.
fn host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_str().ok()?;
    let name = name.trim().to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then_some(name)
}

/// Names and addresses the certificate is for.
fn subject_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Some(h) = host_name() {
        names.push(format!("{h}.local"));
        names.push(h);
    }
    names.push("porchlight.local".into());
    names.push("localhost".into());
    names.push("127.0.0.1".into());
    names.push("::1".into());
    if let Ok(ifaces) = if_addrs::get_if_addrs() {
        for i in ifaces.iter().filter(|i| !i.is_loopback()) {
            names.push(i.ip().to_string());
        }
    }
    names.dedup();
    names
}

/// Generates the self-signed certificate unless a valid one is there; returns the
/// certificate and key paths.
fn ensure_self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf), WebError> {
    let dir = data_dir.join("web");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let expiry = dir.join("cert-not-after");
    let now = time::OffsetDateTime::now_utc();
    let still_valid = fs::read_to_string(&expiry)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .is_some_and(|t| t - now.unix_timestamp() > RENEW_DAYS_BEFORE * 86_400);
    if still_valid && cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| tls_error("cannot create", &dir, e))?;
    }
    let mut params = rcgen::CertificateParams::new(subject_names())
        .map_err(|e| WebError::Start(format!("certificate names: {e}")))?;
    params.not_before = now - time::Duration::days(1);
    let not_after = now + time::Duration::days(VALID_DAYS);
    params.not_after = not_after;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Porchlight (self-signed)");
    let signing_key =
        rcgen::KeyPair::generate().map_err(|e| WebError::Start(format!("key generation: {e}")))?;
    let certificate = params
        .self_signed(&signing_key)
        .map_err(|e| WebError::Start(format!("certificate signing: {e}")))?;
    write_private(&key, signing_key.serialize_pem().as_bytes())?;
    // The certificate is public: 0644 (the directory stays 0700).
    write_file(&cert, certificate.pem().as_bytes(), 0o644)?;
    write_private(&expiry, not_after.unix_timestamp().to_string().as_bytes())?;
    tracing::info!(path = %cert.display(), "generated a self-signed HTTPS certificate, valid {VALID_DAYS} days");
    Ok((cert, key))
}

/// Replaces `path` with `data`, mode 0600, via a temporary file and rename.
fn write_private(path: &Path, data: &[u8]) -> Result<(), WebError> {
    write_file(path, data, 0o600)
}

/// Replaces `path` with `data` at `mode` (less the umask), via a temporary file and
/// rename so a crash never leaves half a key or certificate.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), WebError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| tls_error("cannot write", &tmp, e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| tls_error("cannot write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| tls_error("cannot write", path, e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn self_signed_certificate_is_made_once_with_a_private_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let web = WebConfig::default();
        let first = load(&web, dir.path()).expect("generate");
        assert!(!first.user_supplied);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let key = dir.path().join("web/key.pem");
        assert_eq!(
            fs::metadata(&key).expect("key").permissions().mode() & 0o777,
            0o600
        );
        let cert = dir.path().join("web/cert.pem");
        assert_eq!(
            fs::metadata(&cert).expect("cert").permissions().mode() & 0o077,
            0o044 & !current_umask(),
            "the certificate is public"
        );
        let second = load(&web, dir.path()).expect("reuse");
        assert_eq!(first.fingerprint, second.fingerprint, "kept across starts");
    }

    /// This process's umask (read back by setting it to itself).
    fn current_umask() -> u32 {
        let mask = rustix::process::umask(rustix::fs::Mode::empty());
        rustix::process::umask(mask);
        mask.bits()
    }

    #[test]
    fn self_signed_certificate_names_the_uname_host() {
        let uname = rustix::system::uname();
        let host = uname
            .nodename()
            .to_str()
            .expect("utf-8 host name")
            .to_ascii_lowercase();
        let dir = tempfile::tempdir().expect("tempdir");
        load(&WebConfig::default(), dir.path()).expect("generate");
        let pem = dir.path().join("web/cert.pem");
        let der = CertificateDer::from_pem_file(&pem).expect("parse");
        let contains = |name: &str| {
            der.as_ref()
                .windows(name.len())
                .any(|w| w == name.as_bytes())
        };
        assert!(contains(&host), "SAN has {host}");
        assert!(contains(&format!("{host}.local")), "SAN has {host}.local");
    }

    #[test]
    fn configured_certificate_is_used_and_marked_user_supplied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ck = rcgen::generate_simple_self_signed(vec!["nvr.example".to_owned()]).expect("cert");
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        fs::write(&cert, ck.cert.pem()).expect("write");
        fs::write(&key, ck.signing_key.serialize_pem()).expect("write");
        let web = WebConfig {
            tls: Some(crate::config::TlsFiles { cert, key }),
            ..WebConfig::default()
        };
        let setup = load(&web, dir.path()).expect("load");
        assert!(setup.user_supplied);
        assert_eq!(setup.fingerprint, fingerprint(ck.cert.der()));
        assert!(!dir.path().join("web").exists(), "nothing generated");
    }
}
