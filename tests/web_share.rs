//! Share-link playback cost: a player sends many Range requests for one link, and
//! each must not read the whole copy again. In its own test binary because it
//! counts the bytes the whole process reads (`/proc/self/io`), which other tests
//! running beside it would add to.

mod web_share_fixtures;
mod webutil;

use webutil::{csrf, Client};

/// Bytes this process has read through read syscalls so far (`rchar`): the
/// in-process server's file reads, plus the client's few socket reads.
fn bytes_read_so_far() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("rchar: ").map(|n| n.trim().parse().ok()))
                .flatten()
        })
        .expect("rchar in /proc/self/io")
}

/// Small Range requests on a share link of a ten-minute recording of small
/// fragments (600 one-second fragments of 10 frames of 5 KB: 30 MB): only the
/// first reads the copy through (to build its layout); the next ones read about
/// the range asked for. Prints what each cost (`--nocapture`), and the same for
/// the recording itself (whose layout is cached after its first request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_links_range_requests_do_not_each_reread_the_copy() {
    let server = webutil::Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let base = server.base();
    let id = web_share_fixtures::put_big_recording(&server, 78, 6000, 5_000).to_string();
    let player = owner.get(&format!("/recordings/{id}")).await;
    let token = csrf(&player.body);
    let (link, secret) = web_share_fixtures::share_recording(&mut owner, &id, &token, "24").await;
    let mut viewer = Client::new(&base);
    let r = viewer
        .post(&format!("/s/{link}/open"), &[("secret", &secret)])
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let mut share_reads = Vec::new();
    for (who, c, path) in [
        ("recording", &owner, format!("/recordings/{id}/video.mp4")),
        ("share link", &viewer, format!("/s/{link}/video.mp4")),
    ] {
        for n in 0..3 {
            let (before, t) = (bytes_read_so_far(), std::time::Instant::now());
            let r = c
                .http
                .get(format!("{base}{path}"))
                .header("cookie", c.cookie_header())
                .header("range", "bytes=1000000-1001023")
                .send()
                .await
                .expect("request");
            assert_eq!(r.status().as_u16(), 206);
            let got = r.bytes().await.expect("body").len();
            let read = bytes_read_so_far() - before;
            println!(
                "{who} request {n}: {got} bytes answered, {read} bytes read, {:?}",
                t.elapsed()
            );
            if who == "share link" {
                share_reads.push(read);
            }
        }
    }
    assert!(
        share_reads[0] > 30_000_000,
        "the first request builds the layout from the whole copy: {share_reads:?}"
    );
    assert!(
        share_reads[1..].iter().all(|&n| n < 1_000_000),
        "later requests read only about their range: {share_reads:?}"
    );
}
