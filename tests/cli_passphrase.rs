//! `export --passphrase` at a real terminal: the prompt reads without echo, Ctrl-C
//! there gives the terminal its echo back, and Ctrl-Z stops the process with echo on
//! and prompts again when it is continued. Driven through a real pseudo-
//! terminal by Python's `pty` module (/usr/bin/python3, as the test camera uses).

mod common;

use std::process::Command;

use common::Setup;

/// What every pty driver starts with: `porchlight ARGS` forked on a new pty, a
/// 30-second deadline for the whole run, and the steps the drivers share.
const PTY_PRELUDE: &str = r#"
import os, pty, select, signal, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
deadline = time.time() + 30
def echo():
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)
def read_until(marker, out):
    while marker not in out and time.time() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            out += os.read(fd, 1024)
    return out
def prompt_quietly():
    # Reads up to the prompt, waits for echo to go off: (what was read, echo off).
    out = read_until(b"passphrase", b"")
    while echo() and time.time() < deadline:
        time.sleep(0.05)
    return out, not echo()
def interrupt():
    # Types Ctrl-C and waits for the end: the exit code, or -signal if killed.
    os.write(fd, b"\x03")
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
"#;

/// Waits for the prompt and for echo to go off, types Ctrl-C, and prints what it saw
/// as `key=value` words.
const DRIVER: &str = r#"
out, quiet = prompt_quietly()
code = interrupt()
print(f"prompt={b'passphrase' in out} quiet={quiet} echo_after={echo()} code={code}")
"#;

/// Runs a pty `driver` (after [`PTY_PRELUDE`]) on `export --passphrase` of a fresh
/// setup; returns what the driver printed, that with the daemon's stderr for
/// messages, and whether the export's output file exists.
fn run_driver(driver: &str) -> (String, String, bool) {
    let setup = Setup::new(&[], "");
    let out_file = setup.dir.path().join("out.mp4");
    let output = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(format!("{PTY_PRELUDE}{driver}"))
        .arg(env!("CARGO_BIN_EXE_porchlight"))
        .args(["export", "--recording", "0000000000000001", "--passphrase"])
        .arg("--out")
        .arg(&out_file)
        .arg("--config")
        .arg(&setup.config)
        .env_remove("PORCHLIGHT_PASSPHRASE")
        .output()
        .expect("run python3");
    let seen = String::from_utf8_lossy(&output.stdout).into_owned();
    let context = format!(
        "{seen}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (seen, context, out_file.exists())
}

/// Asserts that the driver printed each of `expected`'s words; the other half of each
/// pair says what they mean, for the failure message.
fn assert_saw(seen: &str, context: &str, expected: &[(&str, &str)]) {
    for (words, meaning) in expected {
        assert!(seen.contains(words), "{meaning}: {context}");
    }
}

#[test]
fn ctrl_c_at_the_passphrase_prompt_gives_the_terminal_its_echo_back() {
    let (seen, context, exported) = run_driver(DRIVER);
    assert_saw(
        &seen,
        &context,
        &[
            ("prompt=True quiet=True", "prompted without echo"),
            ("echo_after=True", "echo restored"),
            ("code=130", "exit status 128 + SIGINT"),
        ],
    );
    assert!(!exported, "nothing exported");
}

/// Waits for the quiet prompt, types Ctrl-Z, and reports whether the process stopped
/// with echo back on; then continues it (as `fg` would) and reports whether the prompt
/// came back without echo; then types Ctrl-C.
const SUSPEND_DRIVER: &str = r#"
_, quiet = prompt_quietly()
os.write(fd, b"\x1a")
stopped = False
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WUNTRACED | os.WNOHANG)
    if done and os.WIFSTOPPED(status):
        stopped = True
        break
    time.sleep(0.05)
echo_while_stopped = echo()
os.kill(pid, signal.SIGCONT)
again, quiet_again = prompt_quietly()
code = interrupt()
print(f"quiet={quiet} stopped={stopped} echo_while_stopped={echo_while_stopped} "
      f"prompt_again={b'passphrase' in again} quiet_again={quiet_again} "
      f"echo_after={echo()} code={code}")
"#;

#[test]
fn ctrl_z_at_the_passphrase_prompt_stops_with_echo_on_and_fg_prompts_again() {
    let (seen, context, exported) = run_driver(SUSPEND_DRIVER);
    assert_saw(
        &seen,
        &context,
        &[
            ("quiet=True", "prompted without echo"),
            ("stopped=True", "Ctrl-Z stops"),
            (
                "echo_while_stopped=True",
                "the shell gets its echo while the job is stopped",
            ),
            (
                "prompt_again=True quiet_again=True",
                "continued, it prompts again without echo",
            ),
            ("echo_after=True", "echo restored"),
            ("code=130", "Ctrl-C ends it"),
        ],
    );
    assert!(!exported, "nothing exported");
}
