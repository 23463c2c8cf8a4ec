//! TOTP (RFC 6238): SHA-1, 6 digits, 30 s steps, one step of skew either way, and
//! each step accepted at most once per user (the caller stores the last accepted
//! step). Time is an argument, never read here.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
/// Steps accepted before and after the current one.
pub const SKEW: u64 = 1;
pub const SECRET_LEN: usize = 20;
pub const ISSUER: &str = "Porchlight";

/// A fresh 160-bit secret from the OS CSPRNG, base32.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_LEN];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    Secret::from(bytes).to_base32()
}

fn totp(secret_b32: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_b32).ok()?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(SKEW as u16)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .build()
        .ok()
}

/// The code for Unix time `unix_secs` (what an authenticator app shows then).
pub fn code_at(secret_b32: &str, unix_secs: u64) -> Option<String> {
    Some(totp(secret_b32)?.generate(unix_secs).to_string())
}

/// The step `code` is valid for at `unix_secs`, if any, and only if it is later than
/// `last_step` (so a code, once used, never works again). The newest matching step
/// wins; comparison is constant-time.
pub fn verify(secret_b32: &str, code: &str, unix_secs: u64, last_step: Option<u64>) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret_b32)?;
    let now = unix_secs / STEP_SECS;
    let mut found = None;
    for step in now.saturating_sub(SKEW)..=now + SKEW {
        let expected = totp.generate(step * STEP_SECS).to_string();
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found.filter(|step| last_step.is_none_or(|last| *step > last))
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(secret_b32: &str, account: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(ISSUER),
        enc(account).replace('+', "%20"),
        enc(ISSUER)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret, "12345678901234567890".
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_match_rfc_6238_vectors() {
        // Appendix B lists 8 digits; the 6-digit code is its last six.
        assert_eq!(code_at(RFC_SECRET, 59).as_deref(), Some("287082"));
        assert_eq!(
            code_at(RFC_SECRET, 1_111_111_109).as_deref(),
            Some("081804")
        );
        assert_eq!(
            code_at(RFC_SECRET, 2_000_000_000).as_deref(),
            Some("279037")
        );
    }

    #[test]
    fn one_step_of_skew_is_accepted_and_two_are_not() {
        let t = 1_800_000_000;
        let code = code_at(RFC_SECRET, t).expect("code");
        assert_eq!(verify(RFC_SECRET, &code, t, None), Some(t / 30));
        assert!(verify(RFC_SECRET, &code, t + 30, None).is_some());
        assert!(verify(RFC_SECRET, &code, t - 30, None).is_some());
        assert_eq!(verify(RFC_SECRET, &code, t + 60, None), None);
        assert_eq!(verify(RFC_SECRET, &code, t - 60, None), None);
    }

    #[test]
    fn a_code_is_refused_once_its_step_was_used() {
        let t = 1_800_000_000;
        let code = code_at(RFC_SECRET, t).expect("code");
        let step = verify(RFC_SECRET, &code, t, None).expect("first use");
        assert_eq!(verify(RFC_SECRET, &code, t, Some(step)), None, "replay");
        assert_eq!(verify(RFC_SECRET, &code, t + 29, Some(step)), None);
        // An older code (the previous step's) is refused after a newer one was used.
        let old = code_at(RFC_SECRET, t - 30).expect("code");
        assert_eq!(verify(RFC_SECRET, &old, t, Some(step)), None);
        let next = code_at(RFC_SECRET, t + 30).expect("code");
        assert_eq!(
            verify(RFC_SECRET, &next, t + 30, Some(step)),
            Some(step + 1)
        );
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in ["", "12345", "1234567", "abcdef", "12 34 5x"] {
            assert_eq!(verify(RFC_SECRET, bad, 59, None), None, "{bad:?}");
        }
        assert_eq!(
            verify(RFC_SECRET, "287 082", 59, None),
            Some(1),
            "spaces are ignored"
        );
    }

    #[test]
    fn new_secrets_are_160_bits_and_uri_is_well_formed() {
        let s = new_secret();
        assert_eq!(s.len(), 32);
        assert_ne!(s, new_secret());
        let uri = otpauth_uri(&s, "jo smith");
        assert!(
            uri.starts_with("otpauth://totp/Porchlight:jo%20smith?secret="),
            "{uri}"
        );
        assert!(uri.ends_with("&issuer=Porchlight&algorithm=SHA1&digits=6&period=30"));
    }
}
