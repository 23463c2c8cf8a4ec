//! End-to-end mode against the real parts: the GStreamer test camera, the real
//! `porchlight serve` and `porchlight export` binaries, the real sled index, ffprobe
//! as the judge. What holds the disk and the master key gets nothing recorded after
//! the mode was turned on; the passphrase (or the recovery key) gets it back.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::camera::{CameraOptions, TestCamera};
use common::{ffmpeg_decode_errors, ffprobe, CameraSpec, Setup};
use porchlight::clock::{Clock, SystemClock};
use porchlight::index::{Index, UserId};
use porchlight::store::Store;

const PASSPHRASE: &str = "lantern orchard pebble 1987 quietly";

fn record_for(setup: &Setup, secs: u64) {
    let mut daemon = setup.start_daemon();
    daemon.wait_for_log("recording started", 1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(secs));
    daemon.stop();
}

/// Turns the mode on (with the daemon stopped: the index is not shared); returns the
/// recovery key.
fn enable(setup: &Setup) -> String {
    let data = setup.data_dir();
    let store = Store::open_or_create(&data, &setup.key_dir()).expect("store");
    let index = Index::open(&Store::index_dir(&data)).expect("index");
    let key = porchlight::e2e::enable(
        &index,
        &store,
        UserId(1),
        "owner",
        PASSPHRASE,
        PASSPHRASE,
        SystemClock.now_micros(),
    )
    .expect("enable");
    key.to_text().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn export(
    setup: &Setup,
    id: &str,
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (Output, std::path::PathBuf) {
    let out = setup
        .dir
        .path()
        .join(format!("{id}-{}.mp4", SystemClock.now_micros()));
    let mut args = vec![
        "export",
        "--recording",
        id,
        "--out",
        out.to_str().expect("utf-8"),
    ];
    if !env.is_empty() || stdin.is_some() {
        args.push("--passphrase");
    }
    (setup.cli_with(&args, env, stdin), out)
}

#[test]
fn recordings_after_enabling_need_the_passphrase_and_older_ones_do_not() {
    let camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(
        &[CameraSpec::continuous("front-door", &camera.main_url())],
        "",
    );
    record_for(&setup, 3);
    let before = setup.finished_ids();
    assert!(!before.is_empty(), "a recording before the mode was on");

    let recovery = enable(&setup);
    record_for(&setup, 3);
    let after: Vec<String> = setup
        .finished_ids()
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert!(!after.is_empty(), "a recording after the mode was on");

    // An attacker's copy: the whole data directory and the master key file.
    let stolen = Setup::new(&[], "");
    copy_dir(&setup.data_dir(), &stolen.data_dir());
    copy_dir(&setup.key_dir(), &stolen.key_dir());
    for id in &after {
        let (out, path) = export(&stolen, id, &[], None);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains(&format!(
                "recording {id} is end-to-end encrypted; use --passphrase"
            )),
            "{said}"
        );
        assert!(
            !said.contains("corrupt") && !said.contains("panicked"),
            "{said}"
        );
        assert!(!path.exists(), "no partial output");
    }
    // What was recorded before still exports with the master key alone.
    let (out, path) = export(&stolen, &before[0], &[], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(ffprobe(&path).frames > 0);

    // The passphrase (environment) and the recovery key (standard input) open it.
    let (out, by_pass) = export(
        &stolen,
        &after[0],
        &[("PORCHLIGHT_PASSPHRASE", PASSPHRASE)],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let probe = ffprobe(&by_pass);
    assert!(
        probe.frames > 0 && probe.codec == "h264",
        "{}",
        probe.frames
    );
    let (out, by_recovery) = export(&setup, &after[0], &[], Some(&format!("{recovery}\n")));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fs::read(&by_pass).expect("read"),
        fs::read(&by_recovery).expect("read"),
        "the same recording, however it was unlocked"
    );
    // And the passphrase does not stop older recordings from exporting.
    let (out, _) = export(
        &setup,
        &before[0],
        &[("PORCHLIGHT_PASSPHRASE", PASSPHRASE)],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));

    // Guessing is throttled like logins: after 3 free failures each one makes the
    // next attempt wait 1, 2, 4 … s, and an attempt made while waiting is refused
    // without being looked at. Guess until 6 failures have counted (a 4 s wait) and
    // the last guess was refused; then even the right passphrase is refused.
    let (mut failures, mut refused) = (0, 0);
    for _ in 0..60 {
        let (out, _) = export(
            &stolen,
            &after[0],
            &[("PORCHLIGHT_PASSPHRASE", "wrong guess")],
            None,
        );
        let said = text(&out);
        assert!(!out.status.success());
        assert!(
            !said.contains("wrong guess"),
            "the guess is not echoed: {said}"
        );
        if said.contains("too many wrong passphrases") {
            refused += 1;
            if failures >= 6 {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        } else {
            assert!(said.contains("wrong passphrase or recovery key"), "{said}");
            failures += 1;
        }
    }
    assert!(
        failures >= 6 && refused >= 2,
        "{failures} failures, {refused} refused"
    );
    let (out, _) = export(
        &stolen,
        &after[0],
        &[("PORCHLIGHT_PASSPHRASE", PASSPHRASE)],
        None,
    );
    assert!(
        text(&out).contains("too many wrong passphrases"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_end_to_end_recording_cut_by_a_crash_exports_with_the_passphrase() {
    let camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(
        &[CameraSpec::continuous("front-door", &camera.main_url())],
        "",
    );
    enable(&setup);
    let mut daemon = setup.start_daemon();
    daemon.wait_for_log("recording started", 1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(4));
    daemon.kill9();
    // The restart's recovery has no key to close the sealed file: it keeps it and
    // marks it finished; `check` does not call it faulty.
    record_for(&setup, 2);
    setup.cli_ok(&["check"]);
    let crashed = setup
        .finished_ids()
        .first()
        .cloned()
        .expect("the crashed recording");

    // The passphrase closes it on first use and exports what was synced.
    let pass = [("PORCHLIGHT_PASSPHRASE", PASSPHRASE)];
    let (out, first) = export(&setup, &crashed, &pass, None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ffmpeg_decode_errors(&first),
        "",
        "the crashed recording decodes"
    );
    let frames = ffprobe(&first).frames;
    assert!(
        frames >= 20,
        "about 4 s at 10 fps were kept: {frames} frames"
    );
    // Closed for good: the next export reads the same video without repairing.
    let (out, second) = export(&setup, &crashed, &pass, None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fs::read(&first).expect("read"),
        fs::read(&second).expect("read")
    );
    setup.cli_ok(&["check"]);
}

/// A lost index used to lose every end-to-end recording for good: the locked viewer
/// keys lived only in it. Now they are files too: an index from before the files
/// gets them at start-up, and `check --rebuild-index` brings the viewers back so the
/// recovery key opens the recording again.
#[test]
fn a_lost_index_keeps_end_to_end_recordings_openable_with_the_recovery_key() {
    let camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(&[CameraSpec::continuous("porch", &camera.main_url())], "");
    let recovery = enable(&setup);
    // As an index written before viewer key files existed.
    let viewers = setup.data_dir().join("viewers");
    fs::remove_dir_all(&viewers).expect("remove the viewer key files");
    record_for(&setup, 3);
    let files = fs::read_dir(&viewers).expect("start-up wrote the viewer key files");
    assert_eq!(files.count(), 1);
    let sealed = setup.finished_ids();
    assert!(!sealed.is_empty(), "a recording made with the mode on");

    fs::remove_dir_all(Store::index_dir(&setup.data_dir())).expect("lose the index");
    let report = setup.cli_ok(&["check", "--rebuild-index"]);
    assert!(
        report.contains("restored end-to-end viewer key"),
        "{report}"
    );
    let (out, path) = export(&setup, &sealed[0], &[], Some(&format!("{recovery}\n")));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(ffmpeg_decode_errors(&path), "");
    assert!(ffprobe(&path).frames > 0);
}

/// The end-to-end header tag (see `store::e2e_tag`): a file whose tag does not
/// match the master key, as a forger who can write the data disk but not key_dir
/// makes, is refused by `export --passphrase` and reported by `check`, although the
/// passphrase would open its data key.
#[test]
fn an_end_to_end_file_whose_header_tag_does_not_match_is_refused() {
    let camera = TestCamera::start(CameraOptions::default());
    let setup = Setup::new(&[CameraSpec::continuous("porch", &camera.main_url())], "");
    enable(&setup);
    record_for(&setup, 3);
    let sealed = setup.finished_ids();
    let id = sealed.first().expect("a recording made with the mode on");
    let path = setup
        .data_dir()
        .join("recordings/porch")
        .join(format!("{id}.plr"));
    let mut bytes = fs::read(&path).expect("read");
    assert_ne!(bytes[36..42], [0u8; 6], "written with its tag");
    bytes[36] ^= 0x01;
    fs::write(&path, &bytes).expect("write");

    let (out, exported) = export(&setup, id, &[], Some(&format!("{PASSPHRASE}\n")));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("not written by this Porchlight"), "{said}");
    assert!(!exported.exists(), "nothing exported");
    let checked = text(&setup.cli_with(&["check"], &[], None));
    assert!(
        checked.contains("not written by this Porchlight"),
        "{checked}"
    );
}
