//! Recovery codes: ten single-use codes given once at enrolment, each 80 random bits
//! written as four groups of four characters (`7KQM-2XWP-…`). Stored as SHA-256 of a
//! 16-byte random salt and the normalised code (ASVS 6.5.2); 80 bits make an offline
//! search hopeless even with a fast hash, so a slow one is not needed here.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::index::RecoveryCodeEntry;

pub const COUNT: usize = 10;
/// Crockford-like alphabet: no 0/O, 1/I/L confusion.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ*";
const GROUPS: usize = 4;
const GROUP_LEN: usize = 4;

/// Fresh codes (to show once) and what to store.
pub fn generate() -> (Vec<String>, Vec<RecoveryCodeEntry>) {
    (0..COUNT).map(|_| one()).unzip()
}

/// One fresh code (to show once) and what to store. Also the owner's one-time
/// re-enrolment code after resetting someone's two-step verification: same format,
/// same storage, same 80 bits.
pub fn one() -> (String, RecoveryCodeEntry) {
    let mut raw = [0u8; GROUPS * GROUP_LEN];
    getrandom::fill(&mut raw).expect("the OS random number generator is available");
    // 31 symbols would bias; use 5 bits of each byte over a 32-symbol alphabet,
    // whose last symbol is replaced so the code stays typeable.
    let chars: Vec<u8> = raw
        .iter()
        .map(|b| match ALPHABET[usize::from(b & 31)] {
            b'*' => b'X',
            c => c,
        })
        .collect();
    let code = chars
        .chunks(GROUP_LEN)
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    let stored = store(&code);
    (code, stored)
}

fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn digest(salt: &[u8], code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(normalise(code).as_bytes());
    h.finalize().into()
}

fn store(code: &str) -> RecoveryCodeEntry {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random number generator is available");
    RecoveryCodeEntry {
        salt: hex::encode(salt),
        hash: hex::encode(digest(&salt, code)),
        used: false,
    }
}

/// Which unused stored code `code` is, if any. Every entry is checked (constant
/// work whatever matches).
pub fn find(stored: &[RecoveryCodeEntry], code: &str) -> Option<usize> {
    if normalise(code).len() != GROUPS * GROUP_LEN {
        return None;
    }
    let mut found = None;
    for (i, entry) in stored.iter().enumerate() {
        let (Ok(salt), Ok(hash)) = (hex::decode(&entry.salt), hex::decode(&entry.hash)) else {
            continue;
        };
        let matches = bool::from(digest(&salt, code).as_slice().ct_eq(&hash));
        if matches && !entry.used {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_each_work_once_in_any_case() {
        let (codes, mut stored) = generate();
        assert_eq!(codes.len(), 10);
        assert!(codes
            .iter()
            .all(|c| c.len() == 19 && c.matches('-').count() == 3));
        assert!(stored.iter().all(|s| !s.hash.contains(&codes[0])));
        let i = find(&stored, &codes[3].to_lowercase().replace('-', " ")).expect("valid");
        assert_eq!(i, 3);
        stored[i].used = true;
        assert_eq!(find(&stored, &codes[3]), None, "single use");
        assert_eq!(find(&stored, "AAAA-BBBB-CCCC-DDDD"), None);
        assert_eq!(find(&stored, ""), None);
    }
}
