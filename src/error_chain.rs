//! Formats an error with its causes, for messages people read (a camera's problem, a
//! log line, a `check` report). Module errors keep the OS error as their `source`
//! rather than in their own text; without this, "write chunk …" would hide the
//! "No space left on device" that explains it.

use std::error::Error;

/// `error: cause: cause …`, skipping a cause already quoted by the one before.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("write chunk {0}")]
    struct Outer(String, #[source] std::io::Error);

    #[test]
    fn causes_are_appended_once() {
        let e = Outer("x.plr".into(), std::io::Error::from_raw_os_error(28));
        assert_eq!(
            chain(&e),
            "write chunk x.plr: No space left on device (os error 28)"
        );
    }
}
