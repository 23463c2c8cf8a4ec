//! `porchlight check`'s exit status, from the real binary on a real store: what a
//! script (or a person after a power cut) relies on to tell "clean" from "fixed" from
//! "still broken" from "could not look".

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use common::Setup;

/// A store with its master key and an empty index, as a first start leaves them.
fn store() -> Setup {
    let setup = Setup::new(&[], "");
    porchlight::store::Store::open_or_create(&setup.data_dir(), &setup.key_dir())
        .expect("create the store and its master key");
    setup
}

/// Where a recording file of camera `shed` goes.
fn recording_file(setup: &Setup, id: &str) -> PathBuf {
    let dir = setup.data_dir().join("recordings").join("shed");
    fs::create_dir_all(&dir).expect("camera dir");
    dir.join(format!("{id}.plr"))
}

/// Runs `porchlight ARGS` and asserts its exit status; returns its output.
fn expect_exit(setup: &Setup, args: &[&str], code: i32) -> Output {
    let out = setup.cli(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "porchlight {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn check_exits_0_when_clean_and_1_when_it_finds_problems() {
    let setup = store();
    expect_exit(&setup, &["check"], 0);
    // A power cut while a file was created: shorter than any header.
    fs::write(recording_file(&setup, "00000000000000a1"), b"PLR").expect("torn file");
    expect_exit(&setup, &["check"], 1);
}

#[test]
fn repair_that_fixes_everything_exits_0() {
    let setup = store();
    let torn = recording_file(&setup, "00000000000000a1");
    fs::write(&torn, b"PLR").expect("torn file");
    expect_exit(&setup, &["check", "--repair"], 0);
    assert!(!torn.exists(), "repair removed the torn file");
    expect_exit(&setup, &["check"], 0);
}

#[test]
fn repair_that_leaves_a_problem_exits_1() {
    let setup = store();
    // Not a recording at all: check leaves it untouched for a person to look at.
    let foreign = recording_file(&setup, "00000000000000b2");
    fs::write(&foreign, vec![b'x'; 4096]).expect("foreign file");
    for args in [&["check", "--repair"][..], &["check", "--rebuild-index"]] {
        let out = expect_exit(&setup, args, 1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("left untouched"), "{args:?}: {stdout}");
        assert!(foreign.exists(), "{args:?} kept the unknown file");
    }
}

#[test]
fn check_that_cannot_run_exits_2_and_a_bad_config_78() {
    let setup = Setup::new(&[], "");
    // No master key: check refuses to create one.
    expect_exit(&setup, &["check"], 2);
    fs::write(&setup.config, "data_dir = 7\n").expect("bad config");
    expect_exit(&setup, &["check", "--repair"], 78);
}

#[test]
fn check_help_states_the_exit_codes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_porchlight"))
        .args(["check", "--help"])
        .output()
        .expect("run porchlight");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Exit status: 0 clean",
        "1 problems found",
        "2 the check",
        "78",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
}

/// `check` may be run as root (the README says so) on the data of the daemon's own
/// user: an index it makes anew must be that user's, or the daemon cannot open it
/// and restarts every few seconds, recording nothing. Needs root (as the tests run
/// in CI); elsewhere it says so and passes.
#[test]
fn an_index_rebuilt_by_root_belongs_to_the_data_directorys_owner() {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: only root can run check on another user's data");
        return;
    }
    const NOBODY: u32 = 65534;
    let setup = store();
    expect_exit(&setup, &["check"], 0);
    let data = setup.data_dir();
    let chowned = std::process::Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(&data)
        .status()
        .expect("run chown");
    assert!(chowned.success());
    // A lost index: the rebuild makes a new one.
    fs::remove_dir_all(data.join("index")).expect("remove the index");
    expect_exit(&setup, &["check", "--rebuild-index"], 0);
    let mut pending = vec![data.join("index")];
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path).expect("stat");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (NOBODY, NOBODY),
            "{} is not the data directory owner's",
            path.display()
        );
        seen += 1;
        if meta.is_dir() {
            for entry in fs::read_dir(&path).expect("list") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    assert!(seen > 1, "the new index has files");
}
