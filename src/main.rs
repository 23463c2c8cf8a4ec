//! The `porchlight` binary: command-line parsing and wiring only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

use porchlight::config::{Config, ConfigError, DEFAULT_PATH};
use porchlight::{check, clock, daemon, export, rotate};

#[derive(Parser)]
#[command(
    name = "porchlight",
    about = "Self-hosted, privacy-first home NVR",
    version
)]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: record the configured cameras until SIGTERM.
    Serve,
    /// List recordings.
    Recordings {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this camera.
        #[arg(long)]
        camera: Option<String>,
    },
    /// Decrypt recordings to a standard MP4 (moov first).
    Export {
        /// One recording by id.
        #[arg(long, conflicts_with_all = ["camera", "from", "to"])]
        recording: Option<String>,
        /// A camera's video between --from and --to (RFC 3339).
        #[arg(long, requires_all = ["from", "to"])]
        camera: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Output file; refused if it exists.
        #[arg(long)]
        out: PathBuf,
        /// Unlock end-to-end encrypted recordings with a viewer's passphrase (or
        /// recovery key), read from the PORCHLIGHT_PASSPHRASE environment variable or
        /// from standard input (a prompt without echo on a terminal); never an argument,
        /// which other users could see in the process list.
        #[arg(long)]
        passphrase: bool,
    },
    /// Compare the index with the files; report (default), repair, or rebuild.
    ///
    /// Exit status: 0 clean (after --repair or --rebuild-index: nothing is left to
    /// fix); 1 problems found, or some remain that --repair or --rebuild-index could
    /// not fix (each is printed as "problem:"); 2 the check could not run (the daemon
    /// holds the index, the master key is missing, a bad command line; the message on
    /// standard error says why); 78 the configuration file is invalid.
    Check {
        /// Only load and validate the configuration file (no store, no index), so it
        /// works while the daemon runs and holds the index's lock: run it after
        /// editing, before restarting.
        #[arg(long, conflicts_with_all = ["repair", "rebuild_index"])]
        config_only: bool,
        /// Fix what is found: finish interrupted work, index unindexed files, drop
        /// entries whose file is gone.
        #[arg(long)]
        repair: bool,
        /// Recreate the index from the recording files alone.
        #[arg(long, conflicts_with = "repair")]
        rebuild_index: bool,
    },
    /// Replace the master key (daemon stopped): re-wrap every recording's and
    /// thumbnail's data key in place and re-seal the index's secrets. Crash-safe: an
    /// interrupted rotation is finished by running this again.
    RotateMasterKey {
        /// Test hook: stop (as a crash would) after re-wrapping this many files.
        #[arg(long, hide = true)]
        stop_after_files: Option<usize>,
    },
    /// Print the version.
    Version,
}

/// `EX_CONFIG` from sysexits.h: the configuration is wrong. The unit's
/// `RestartPreventExitStatus=78` stops systemd restarting a daemon that cannot start
/// until someone edits the file (`Restart=on-failure` with `RestartSec=5s` would
/// otherwise retry forever, never reaching the start limit).
const EXIT_CONFIG: u8 = 78;

/// `check` found problems, or some remain after `--repair`/`--rebuild-index`: a
/// script (or a person after a power cut) must be able to tell "fixed" from "still
/// broken" without parsing the report.
const EXIT_CHECK_PROBLEMS: u8 = 1;

/// `check` could not run at all (index locked by the daemon, no master key, an I/O
/// error): kept apart from [`EXIT_CHECK_PROBLEMS`] so that "could not look" is never
/// read as "looked and found problems". The same code clap uses for a bad command line.
const EXIT_CHECK_FAILED: u8 = 2;

/// How often `serve` looks at the clock's synchronisation: a Pi that reaches a time
/// server a few minutes after boot stops warning soon after.
const CLOCK_CHECK_SECS: u64 = 300;

fn main() -> ExitCode {
    porchlight::logging::init();
    let cli = Cli::parse();
    let is_check = matches!(cli.command, Command::Check { .. });
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Under systemd, "<3>" makes journald file the line at priority err
            // (without it the fatal line would be at the stream's default, info).
            let prefix = if porchlight::logging::stderr_is_journal() {
                "<3>"
            } else {
                ""
            };
            eprintln!("{prefix}porchlight: {e:#}");
            if e.chain().any(|cause| cause.is::<ConfigError>()) {
                ExitCode::from(EXIT_CONFIG)
            } else if is_check {
                ExitCode::from(EXIT_CHECK_FAILED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Version = cli.command {
        println!("porchlight {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Version => unreachable!("handled above"),
        Command::Serve => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            // Recording starts whatever the clock; a clock not (known to be)
            // synchronised is logged at start and at each change.
            runtime.spawn(clock::watch_sync(
                PathBuf::from(clock::TIMESYNC_DIR),
                std::time::Duration::from_secs(CLOCK_CHECK_SECS),
            ));
            runtime.block_on(daemon::serve(config))?;
            // Ingest tasks may still be parked in a socket read; do not wait for them.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
        }
        Command::Recordings { json, camera } => {
            let camera = camera.map(|c| c.parse()).transpose()?;
            let list = export::list(&config, camera.as_ref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<16}  {:<16}  {:<25}  {:<25}  {:>7}  {:>10}  trigger",
                    "id", "camera", "start", "end", "frames", "bytes"
                );
                for r in list {
                    println!(
                        "{:<16}  {:<16}  {:<25}  {:<25}  {:>7}  {:>10}  {}",
                        r.id, r.camera, r.start, r.end, r.frames, r.bytes, r.trigger
                    );
                }
            }
        }
        Command::Export {
            recording,
            camera,
            from,
            to,
            out,
            passphrase,
        } => {
            let request = match (recording, camera, from, to) {
                (Some(id), _, _, _) => export::Request::Recording(id.parse()?),
                (None, Some(camera), Some(from), Some(to)) => export::Request::Span {
                    camera: camera.parse()?,
                    from_micros: clock::parse_rfc3339(&from)
                        .with_context(|| format!("--from {from:?} is not an RFC 3339 time"))?,
                    to_micros: clock::parse_rfc3339(&to)
                        .with_context(|| format!("--to {to:?} is not an RFC 3339 time"))?,
                },
                _ => anyhow::bail!("give --recording ID, or --camera NAME --from T --to T"),
            };
            let secret = if passphrase {
                Some(porchlight::e2e::Secret::guess(read_passphrase()?))
            } else {
                None
            };
            remove_partial_export_on_signals()?;
            let now = clock::Clock::now_micros(&clock::SystemClock);
            let summary = export::export(&config, &request, &out, secret.as_ref(), now)?;
            println!("{summary}");
        }
        Command::Check {
            config_only: true, ..
        } => {
            // Config::load above has validated the whole file.
            println!("{}: configuration is valid", cli.config.display());
        }
        Command::Check {
            config_only: false,
            repair,
            rebuild_index,
        } => {
            let mode = if rebuild_index {
                check::Mode::RebuildIndex
            } else if repair {
                check::Mode::Repair
            } else {
                check::Mode::Report
            };
            let report = check::run(&config, mode)?;
            println!("{report}");
            // After --repair or --rebuild-index the findings are what could not be
            // fixed: those still fail the command, or a script would believe them gone.
            if !report.is_clean() {
                if mode != check::Mode::Report {
                    eprintln!(
                        "porchlight: {} problem(s) remain after the repair",
                        report.findings.len()
                    );
                }
                return Ok(ExitCode::from(EXIT_CHECK_PROBLEMS));
            }
        }
        Command::RotateMasterKey { stop_after_files } => {
            let summary = rotate::run(&config, stop_after_files)?;
            println!("{summary}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The end-to-end passphrase for `export --passphrase`: `PORCHLIGHT_PASSPHRASE` if
/// set, else one line of standard input, prompted for without echo on a terminal.
fn read_passphrase() -> anyhow::Result<Zeroizing<String>> {
    use std::io::{BufRead, IsTerminal};
    if let Ok(value) = std::env::var("PORCHLIGHT_PASSPHRASE") {
        return Ok(Zeroizing::new(value));
    }
    let stdin = std::io::stdin();
    let mut line = Zeroizing::new(String::new());
    if stdin.is_terminal() {
        use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};
        let saved = tcgetattr(&stdin).context("cannot read the terminal settings")?;
        let at_prompt = Arc::new(Mutex::new(true));
        // Before echo goes off: Ctrl-C (or a kill) while the prompt waits must not
        // leave the user's terminal without echo after the process has gone, and
        // Ctrl-Z must not leave the shell without echo while the job is stopped.
        watch_terminal_signals(saved.clone(), at_prompt.clone())?;
        prompt_without_echo().context("cannot turn off echo")?;
        let read = stdin.lock().read_line(&mut line);
        {
            // Held while echo comes back, so a Ctrl-Z continued just now cannot
            // turn it off again after the prompt is over.
            let mut prompting = at_prompt.lock().unwrap_or_else(|e| e.into_inner());
            *prompting = false;
            tcsetattr(&stdin, OptionalActions::Now, &saved).context("cannot restore echo")?;
        }
        eprintln!();
        read.context("cannot read the passphrase")?;
    } else {
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the passphrase from standard input")?;
    }
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    anyhow::ensure!(!trimmed.is_empty(), "no passphrase given");
    Ok(trimmed)
}

/// Replaces the default action of SIGINT, SIGTERM, SIGHUP and SIGQUIT during an
/// export with: remove the export's temporary file, then exit as the signal would
/// have (128 + its number). Without it the file would be left behind (under its
/// hidden temporary name, never at `--out`). With `--passphrase` from a terminal,
/// [`watch_terminal_signals`] is listening too and removes it as well.
fn remove_partial_export_on_signals() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal watcher")?;
    let mut signals = Vec::new();
    {
        let _context = runtime.enter();
        for kind in [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
            SignalKind::quit(),
        ] {
            let stream = signal(kind).context("cannot watch for Ctrl-C")?;
            signals.push((kind.as_raw_value(), stream));
        }
    }
    std::thread::spawn(move || {
        let number = first_signal(&runtime, &mut signals);
        export::exit_removing_partial_exports(128 + number)
    });
    Ok(())
}

/// Waits on `runtime` for the first of `signals` (number, stream); its number.
fn first_signal(
    runtime: &tokio::runtime::Runtime,
    signals: &mut [(i32, tokio::signal::unix::Signal)],
) -> i32 {
    runtime.block_on(async {
        let waits = signals.iter_mut().map(|(number, stream)| {
            let number = *number;
            Box::pin(async move {
                stream.recv().await;
                number
            })
        });
        futures::future::select_all(waits).await.0
    })
}

/// Prints the prompt and turns echo off, from the terminal's settings as they are
/// now (after a Ctrl-Z and `fg` the shell may have changed them).
fn prompt_without_echo() -> rustix::io::Result<()> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    use std::io::Write;
    eprint!("End-to-end passphrase or recovery key: ");
    std::io::stderr().flush().ok();
    let stdin = std::io::stdin();
    let mut quiet = tcgetattr(&stdin)?;
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)
}

/// Replaces the default action of SIGINT, SIGTERM, SIGHUP and SIGQUIT (which would
/// end the process with the terminal as it is, echo off at the passphrase prompt)
/// with: put `saved` back, then exit as the signal would have (128 + its number, so
/// 130 for Ctrl-C). SIGTSTP (Ctrl-Z) puts `saved` back, then stops the process
/// (SIGSTOP, which is what Ctrl-Z would have done); once continued (`fg`), and
/// only while `at_prompt`, the prompt is printed again with echo off. This is what
/// sudo does at its password prompt. A thread waits for the signals for the rest of
/// the process (a handler cannot be taken back out), so an interrupt during the
/// export that follows still ends the process, and Ctrl-Z still stops it.
/// (`unsafe_code` is forbidden here, so the handler is tokio's safe one.)
fn watch_terminal_signals(
    saved: rustix::termios::Termios,
    at_prompt: Arc<Mutex<bool>>,
) -> anyhow::Result<()> {
    use futures::FutureExt;
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal watcher")?;
    let mut signals = Vec::new();
    let mut continued;
    {
        let _context = runtime.enter();
        // The stop below is a group stop, which the main thread may carry out well
        // after `kill` has returned here: only SIGCONT says the process was stopped
        // and has been continued.
        continued = signal(SignalKind::from_raw(rustix::process::Signal::CONT.as_raw()))
            .context("cannot watch for the process being continued")?;
        for kind in [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
            SignalKind::quit(),
            SignalKind::from_raw(rustix::process::Signal::TSTP.as_raw()),
        ] {
            let stream = signal(kind).context("cannot watch for Ctrl-C")?;
            signals.push((kind.as_raw_value(), stream));
        }
    }
    std::thread::spawn(move || loop {
        let number = first_signal(&runtime, &mut signals);
        let restored = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &saved,
        );
        if let Err(e) = restored {
            eprintln!("\nporchlight: cannot restore the terminal's echo ({e}); type `stty sane`");
        }
        if number != rustix::process::Signal::TSTP.as_raw() {
            eprintln!();
            export::exit_removing_partial_exports(128 + number);
        }
        if *at_prompt.lock().unwrap_or_else(|e| e.into_inner()) {
            eprintln!();
        }
        // A SIGCONT from before (sent to a running process) must not end the wait;
        // the yield lets the signal driver hand over one already received.
        runtime.block_on(async {
            tokio::task::yield_now().await;
            while continued.recv().now_or_never().is_some() {}
        });
        let stopped =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
        if stopped.is_ok() {
            runtime.block_on(continued.recv());
        }
        let prompting = at_prompt.lock().unwrap_or_else(|e| e.into_inner());
        if *prompting {
            if let Err(e) = prompt_without_echo() {
                eprintln!(
                    "\nporchlight: cannot turn off echo again ({e}); the passphrase would show"
                );
                std::process::exit(1);
            }
        }
    });
    Ok(())
}
