//! A maintainer script from `packaging/`, run by `sh` as dpkg runs it, on a temporary
//! directory: only its `NAME=value` lines a test names are changed (to point its paths
//! there), and tools that would touch the machine are stubs in the directory's `bin`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Script {
    pub dir: tempfile::TempDir,
    script: PathBuf,
}

impl Script {
    /// `packaging/NAME` with each `(line, value)` of `set` (a whole line `KEY=...` of
    /// the script) made `KEY=value`, `{root}` in the value standing for the temporary
    /// directory, and each `(tool, status)` of `stubs` a program
    /// that exits with that status.
    pub fn new(name: &str, set: &[(&str, String)], stubs: &[(&str, i32)]) -> Script {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut text = fs::read_to_string(manifest.join("packaging").join(name)).expect(name);
        for (line, value) in set {
            let (key, _) = line.split_once('=').expect("KEY=value");
            let line = format!("\n{line}\n");
            assert!(text.contains(&line), "{name} has no line {line:?}");
            let value = value.replace("{root}", &dir.path().display().to_string());
            text = text.replace(&line, &format!("\n{key}={value}\n"));
        }
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("bin");
        for (tool, status) in stubs {
            fs::write(bin.join(tool), format!("#!/bin/sh\nexit {status}\n")).expect("stub");
            fs::set_permissions(bin.join(tool), fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let script = dir.path().join(name);
        fs::write(&script, text).expect("write script");
        Script { dir, script }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `sh SCRIPT ACTION` with the stubs first on PATH; asserts it succeeds and
    /// returns its standard error.
    pub fn run(&self, action: &str) -> String {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("sh")
            .arg(&self.script)
            .arg(action)
            .env("PATH", path)
            .output()
            .expect("run sh");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{action}: {stderr}");
        stderr
    }
}
