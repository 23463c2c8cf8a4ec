//! A camera whose timestamps jump backwards (a clock reset, a firmware hiccup, an
//! encoder restart that keeps the RTSP session): the real test camera behind a proxy
//! in this test that rewrites the RTP timestamps of the interleaved video packets.
//! The daemon keeps recording across each jump, every recording checks and decodes,
//! none claims more video than the wall clock allowed, and no fd or thread leaks.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::camera::{CameraOptions, TestCamera};
use common::{ffmpeg_decode_errors, ffprobe, Setup};

/// How far each jump goes back: 10 s of the 90 kHz video clock.
const JUMP_TICKS: u32 = 10 * 90_000;
const JUMPS: u32 = 3;
const FD_SLACK: usize = 4;
const THREAD_SLACK: usize = 4;

/// Forwards an RTSP-over-TCP connection; camera → daemon RTP packets on even
/// (media) channels get `offset` subtracted from their timestamp.
struct RewritingProxy {
    port: u16,
    offset: Arc<AtomicU32>,
    /// Packets sent with a non-zero offset: proof the jumps reached the daemon.
    rewritten: Arc<AtomicU32>,
}

impl RewritingProxy {
    fn start(upstream_port: u16) -> RewritingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let offset = Arc::new(AtomicU32::new(0));
        let rewritten = Arc::new(AtomicU32::new(0));
        let (off, count) = (offset.clone(), rewritten.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(camera) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let (c2, cam2) = (
                    client.try_clone().expect("clone"),
                    camera.try_clone().expect("clone"),
                );
                let (o, n) = (off.clone(), count.clone());
                std::thread::spawn(move || copy_plain(client, camera));
                std::thread::spawn(move || copy_rewriting(cam2, c2, o, n));
            }
        });
        RewritingProxy {
            port,
            offset,
            rewritten,
        }
    }

    fn jump_back(&self) {
        self.offset.fetch_add(JUMP_TICKS, Ordering::SeqCst);
    }
}

fn copy_plain(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
}

/// Splits the camera's byte stream into RTSP messages and `$`-framed packets
/// (RFC 2326 §10.12) and rewrites the timestamp (bytes 4..8 of the RTP header).
fn copy_rewriting(
    mut from: TcpStream,
    mut to: TcpStream,
    offset: Arc<AtomicU32>,
    rewritten: Arc<AtomicU32>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    'read: loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let Some(len) = next_message_len(&buf) else {
                continue 'read;
            };
            let mut message: Vec<u8> = buf.drain(..len).collect();
            if message[0] == b'$' && message[1].is_multiple_of(2) && message.len() >= 12 {
                let rtp = &mut message[4..];
                let ts = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
                let back = offset.load(Ordering::SeqCst);
                if back > 0 {
                    rewritten.fetch_add(1, Ordering::SeqCst);
                }
                let ts = ts.wrapping_sub(back);
                rtp[4..8].copy_from_slice(&ts.to_be_bytes());
            }
            if to.write_all(&message).is_err() {
                break 'read;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

/// Length of the complete message at the start of `buf`, if it has all arrived.
fn next_message_len(buf: &[u8]) -> Option<usize> {
    if buf.first() == Some(&b'$') {
        let len = usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]));
        return (buf.len() >= 4 + len).then_some(4 + len);
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let body = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    (buf.len() >= head_end + body).then_some(head_end + body)
}

/// Seconds of video in an exported MP4, from ffprobe's container duration.
fn video_seconds(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of"])
        .args(["default=noprint_wrappers=1:nokey=1"])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe duration of {}", path.display()))
}

#[test]
fn timestamps_jumping_backwards_keep_recording_and_every_recording_decodes() {
    let camera = TestCamera::start(CameraOptions::default());
    let proxy = RewritingProxy::start(camera.port());
    let setup = Setup::new(&[], "");
    setup.append_config(&format!(
        "[[camera]]\nname = \"porch\"\nurl = \"rtsp://127.0.0.1:{}/main\"\nmode = \"continuous\"\nstall_timeout_seconds = 3\n",
        proxy.port
    ));

    let mut daemon = setup.start_daemon();
    daemon.wait_for_log("camera porch: streaming", 1, Duration::from_secs(30));
    let streaming_since = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let (fds0, threads0) = daemon.fds_and_threads();

    for _ in 0..JUMPS {
        proxy.jump_back();
        std::thread::sleep(Duration::from_secs(4));
    }
    // Recording goes on after the last jump: wait for the file to grow.
    let grown = |setup: &Setup| -> u64 {
        setup
            .recording_files()
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    };
    let size_then = grown(&setup);
    std::thread::sleep(Duration::from_secs(4));
    let size_now = grown(&setup);
    assert!(
        size_now > size_then,
        "video is still being written after the last jump ({size_then} → {size_now} bytes); log:\n{}",
        daemon.log_text()
    );
    assert!(
        proxy.rewritten.load(Ordering::SeqCst) > 0,
        "the proxy saw no RTP packet to rewrite (not RTP over TCP?)"
    );
    let (fds1, threads1) = daemon.fds_and_threads();
    let wall = streaming_since.elapsed().as_secs_f64();
    assert!(
        fds1 <= fds0 + FD_SLACK && threads1 <= threads0 + THREAD_SLACK,
        "fds {fds0} → {fds1}, threads {threads0} → {threads1}"
    );
    daemon.stop();

    let log = daemon.log_text();
    // "… by 9.9 s" at 10 fps: the jump less the one frame interval it is placed at.
    let said: Vec<f64> = log
        .lines()
        .filter_map(|l| {
            l.split("camera porch: timestamps jumped backwards by ")
                .nth(1)
        })
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        said.len(),
        JUMPS as usize,
        "each jump is logged once; log:\n{log}"
    );
    assert!(said.iter().all(|s| (9.0..=10.0).contains(s)), "{said:?}");
    setup.cli_ok(&["check"]);
    let recordings = setup.recordings();
    assert!(!recordings.is_empty(), "recordings: {recordings:?}");
    let mut total = 0.0;
    for r in &recordings {
        let id = r["id"].as_str().expect("id");
        let out = setup.export(id);
        assert_eq!(ffmpeg_decode_errors(&out), "", "recording {id} decodes");
        assert!(ffprobe(&out).frames > 0, "recording {id} has frames");
        let secs = video_seconds(&out);
        assert!(
            secs <= wall + 2.0,
            "recording {id} claims {secs:.1} s of video in {wall:.1} s of streaming"
        );
        total += secs;
    }
    println!(
        "{} recording(s), {total:.1} s of video in {wall:.1} s",
        recordings.len()
    );
    assert!(
        total >= wall - 6.0,
        "{total:.1} s of video kept in {wall:.1} s of streaming across {JUMPS} jumps"
    );
}
