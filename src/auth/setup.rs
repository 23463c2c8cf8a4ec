//! The one-time setup code that guards creating the owner account.
//!
//! With no owner, start-up makes a fresh code, logs it once and writes it to
//! `data_dir/setup-code` (mode 0600, replaced at every start). The first visitor must
//! type it; once the owner exists the file is removed and the setup page is gone.
//! 12 characters from a 32-symbol alphabet: 60 bits, behind the same throttling as
//! passwords.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZX";
pub const FILE_NAME: &str = "setup-code";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// A new code such as `7KQM-2XWP-R9TD`.
pub fn new_code() -> String {
    let mut raw = [0u8; 12];
    getrandom::fill(&mut raw).expect("the OS random number generator is available");
    let chars: Vec<u8> = raw.iter().map(|b| ALPHABET[usize::from(b & 31)]).collect();
    chars
        .chunks(4)
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

fn normalise(code: &str) -> Vec<u8> {
    code.bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase())
        .collect()
}

/// Constant-time comparison ignoring case, spaces and dashes.
pub fn matches(expected: &str, typed: &str) -> bool {
    let (a, b) = (normalise(expected), normalise(typed));
    a.len() == b.len() && bool::from(a.ct_eq(&b))
}

/// Writes the code to its file, readable by the daemon's user only.
pub fn write_file(data_dir: &Path, code: &str) -> std::io::Result<PathBuf> {
    let path = path(data_dir);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(f, "{code}")?;
    f.sync_all()?;
    Ok(path)
}

pub fn remove_file(data_dir: &Path) {
    let path = path(data_dir);
    if let Err(e) = fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), "cannot remove the used setup code file: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn code_file_is_private_and_codes_compare_loosely() {
        let dir = tempfile::tempdir().expect("tempdir");
        let code = new_code();
        assert_eq!(code.len(), 14);
        let p = write_file(dir.path(), &code).expect("write");
        let mode = fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_to_string(&p).expect("read").trim(), code);
        assert!(matches(&code, &code.to_lowercase().replace('-', " ")));
        assert!(!matches(&code, "AAAA-BBBB-CCCC"));
        assert!(!matches(&code, ""));
        write_file(dir.path(), "second").expect("rewrite");
        remove_file(dir.path());
        assert!(!p.exists());
    }
}
