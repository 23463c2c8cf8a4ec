//! Where log lines go and how they look.
//!
//! Under systemd, stderr is a stream to the journal. journald reads a `<N>` prefix on
//! each line as its syslog priority (`SyslogLevelPrefix=`, on by default), so there
//! every line starts with the level's priority (error 3, warn 4, info 6, debug and
//! trace 7) and carries no timestamp or colour (the journal keeps its own time):
//! `journalctl -u porchlight -p warning` then shows warnings and errors only.
//! Elsewhere (a terminal, a test's log file) the usual `tracing` format is used.
//!
//! The journal is recognised the way `sd_journal_stream_fd(3)` documents: systemd
//! sets `JOURNAL_STREAM=<device>:<inode>` and it matches stderr's own.
//!
//! The filter comes from `PORCHLIGHT_LOG` (`tracing`'s env-filter syntax), `info` by
//! default. What is logged never includes a password, key or share secret: those
//! types have no field in any log statement.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: journal format when stderr is the journal.
pub fn init() {
    let filter =
        || EnvFilter::try_from_env("PORCHLIGHT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if stderr_is_journal() {
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(JournalFormat)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
}

/// True when `JOURNAL_STREAM` names the file stderr is (then a line written to
/// stderr directly, like the binary's fatal error, needs its own `<N>` prefix).
pub fn stderr_is_journal() -> bool {
    let Ok(var) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    match rustix::fs::fstat(std::io::stderr()) {
        Ok(st) => stream_matches(&var, st.st_dev, st.st_ino),
        Err(_) => false,
    }
}

/// `JOURNAL_STREAM` is `<device>:<inode>`, both in decimal.
fn stream_matches(var: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = var.split_once(':') else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

/// journald's priority for a level (syslog's numbers).
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `<priority>target: message field=value …`, one event a line.
struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(writer, "<{}>{}: ", priority(meta.level()), meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn journal_stream_must_match_device_and_inode() {
        assert!(stream_matches("64769:1234", 64769, 1234));
        assert!(!stream_matches("64769:1234", 64769, 1235));
        assert!(!stream_matches("64770:1234", 64769, 1234));
        assert!(!stream_matches("garbage", 64769, 1234));
        assert!(!stream_matches("", 0, 0));
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn journal_lines_start_with_the_syslog_priority() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .event_format(JournalFormat)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(camera = "front", "disk full");
            tracing::warn!("slow");
            tracing::info!("serving");
            tracing::debug!("detail");
        });
        let text =
            String::from_utf8(buffer.0.lock().expect("not poisoned").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        let target = module_path!();
        assert_eq!(
            lines,
            [
                format!("<3>{target}: disk full camera=\"front\""),
                format!("<4>{target}: slow"),
                format!("<6>{target}: serving"),
                format!("<7>{target}: detail"),
            ]
        );
    }
}
