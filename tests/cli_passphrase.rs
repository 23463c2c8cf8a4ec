//! `export --passphrase` at a real terminal: the prompt reads without echo, Ctrl-C
//! there gives the terminal its echo back, and Ctrl-Z stops the process with echo on
//! and prompts again when it is continued. Driven through a real pseudo-
//! terminal by Python's `pty` module (/usr/bin/python3, as the test camera uses).

mod common;

use std::process::Command;

use common::Setup;

/// Starts `porchlight ARGS` on a new pty, waits for the prompt and for echo to go
/// off, types Ctrl-C, and prints what it saw as `key=value` words.
const DRIVER: &str = r#"
import os, pty, select, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
def echo():
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)
out = b""
deadline = time.time() + 30
while b"passphrase" not in out and time.time() < deadline:
    if select.select([fd], [], [], 0.2)[0]:
        out += os.read(fd, 1024)
while echo() and time.time() < deadline:
    time.sleep(0.05)
quiet = not echo()
os.write(fd, b"\x03")
_, status = os.waitpid(pid, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
print(f"prompt={b'passphrase' in out} quiet={quiet} echo_after={echo()} code={code}")
"#;

/// Runs a pty `driver` on `export --passphrase` of a fresh setup; returns what the
/// driver printed, that with the daemon's stderr for messages, and whether the
/// export's output file exists.
fn run_driver(driver: &str) -> (String, String, bool) {
    let setup = Setup::new(&[], "");
    let out_file = setup.dir.path().join("out.mp4");
    let output = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(driver)
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

#[test]
fn ctrl_c_at_the_passphrase_prompt_gives_the_terminal_its_echo_back() {
    let (seen, context, exported) = run_driver(DRIVER);
    assert!(
        seen.contains("prompt=True quiet=True"),
        "prompted without echo: {context}"
    );
    assert!(seen.contains("echo_after=True"), "echo restored: {context}");
    assert!(
        seen.contains("code=130"),
        "exit status 128 + SIGINT: {context}"
    );
    assert!(!exported, "nothing exported");
}

/// Starts `porchlight ARGS` on a new pty, waits for the quiet prompt, types Ctrl-Z,
/// and reports whether the process stopped with echo back on; then continues it
/// (as `fg` would) and reports whether the prompt came back without echo; then
/// types Ctrl-C.
const SUSPEND_DRIVER: &str = r#"
import os, pty, select, signal, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
def echo():
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)
def read_until(marker, out, deadline):
    while marker not in out and time.time() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            out += os.read(fd, 1024)
    return out
deadline = time.time() + 30
out = read_until(b"passphrase", b"", deadline)
while echo() and time.time() < deadline:
    time.sleep(0.05)
quiet = not echo()
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
again = read_until(b"passphrase", b"", deadline)
while echo() and time.time() < deadline:
    time.sleep(0.05)
quiet_again = not echo()
os.write(fd, b"\x03")
_, status = os.waitpid(pid, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
print(f"quiet={quiet} stopped={stopped} echo_while_stopped={echo_while_stopped} "
      f"prompt_again={b'passphrase' in again} quiet_again={quiet_again} "
      f"echo_after={echo()} code={code}")
"#;

#[test]
fn ctrl_z_at_the_passphrase_prompt_stops_with_echo_on_and_fg_prompts_again() {
    let (seen, context, exported) = run_driver(SUSPEND_DRIVER);
    assert!(
        seen.contains("quiet=True"),
        "prompted without echo: {context}"
    );
    assert!(seen.contains("stopped=True"), "Ctrl-Z stops: {context}");
    assert!(
        seen.contains("echo_while_stopped=True"),
        "the shell gets its echo while the job is stopped: {context}"
    );
    assert!(
        seen.contains("prompt_again=True quiet_again=True"),
        "continued, it prompts again without echo: {context}"
    );
    assert!(seen.contains("echo_after=True"), "echo restored: {context}");
    assert!(seen.contains("code=130"), "Ctrl-C ends it: {context}");
    assert!(!exported, "nothing exported");
}
