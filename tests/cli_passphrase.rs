//! `export --passphrase` at a real terminal: the prompt reads without echo, and
//! Ctrl-C there gives the terminal its echo back. Driven through a real pseudo-
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

#[test]
fn ctrl_c_at_the_passphrase_prompt_gives_the_terminal_its_echo_back() {
    let setup = Setup::new(&[], "");
    let out_file = setup.dir.path().join("out.mp4");
    let output = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(DRIVER)
        .arg(env!("CARGO_BIN_EXE_porchlight"))
        .args(["export", "--recording", "0000000000000001", "--passphrase"])
        .arg("--out")
        .arg(&out_file)
        .arg("--config")
        .arg(&setup.config)
        .env_remove("PORCHLIGHT_PASSPHRASE")
        .output()
        .expect("run python3");
    let seen = String::from_utf8_lossy(&output.stdout);
    let context = format!(
        "{seen}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        seen.contains("prompt=True quiet=True"),
        "prompted without echo: {context}"
    );
    assert!(seen.contains("echo_after=True"), "echo restored: {context}");
    assert!(
        seen.contains("code=130"),
        "exit status 128 + SIGINT: {context}"
    );
    assert!(!out_file.exists(), "nothing exported");
}
