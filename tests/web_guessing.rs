//! The guessing defence against what a determined stranger on the LAN can send: many
//! guesses at once, and failures aimed at locking others out. Real daemon over HTTPS,
//! simulated clock; a stranger's connections come from 127.0.0.2.

#[path = "webutil/mod.rs"]
mod webutil;

use std::net::{IpAddr, Ipv4Addr};

use webutil::{csrf, Server, OWNER, PASSWORD};

const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_sent_at_once_are_looked_at_one_by_one() {
    let server = Server::start("").await;
    server.owner().await;
    // Thirty guesses in flight together, as one HTTP/2 connection's streams could be.
    let mut guessers: Vec<_> = (0..30).map(|_| server.client_from(STRANGER)).collect();
    let replies = futures::future::join_all(
        guessers
            .iter_mut()
            .enumerate()
            .map(|(i, c)| async move { c.post_login(OWNER, &format!("guess {i}")).await }),
    )
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let looked_at = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    // Three free failures, a fourth that is looked at and sets a delay; with the
    // clock standing still every other guess must wait.
    assert_eq!((looked_at, refused), (4, 26), "{statuses:?}");
}

/// Blocks the account name `OWNER` from the stranger's address: ten failures, each
/// after the previous delay.
async fn block_the_owners_name(server: &Server) {
    let mut stranger = server.client_from(STRANGER);
    for i in 0..10 {
        server.advance_secs(64);
        let r = stranger.post_login(OWNER, "wrong guess").await;
        assert_eq!(r.status, 401, "failure {i}: {}", r.body);
    }
    let r = stranger.post_login(OWNER, PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("blocked"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_account_name_does_not_stop_its_owner_changing_the_password() {
    let server = Server::start("").await;
    let (mut laptop, _, _) = server.owner().await;
    block_the_owners_name(&server).await;
    // The alert says to change the password; the owner's own browser can.
    let page = laptop.get("/account/password").await;
    assert_eq!(page.status, 200);
    let r = laptop
        .post(
            "/account/password",
            &[
                ("csrf", &csrf(&page.body)),
                ("current", PASSWORD),
                ("new", "a new correct horse staple 99"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("were logged out"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_block_the_setup() {
    let server = Server::start("").await;
    let mut stranger = server.client_from(STRANGER);
    for i in 0..11 {
        server.advance_secs(64);
        let r = stranger
            .post(
                "/setup",
                &[
                    ("code", "0000-0000-0000"),
                    ("username", "mallory"),
                    ("email", "m@example.org"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert!(matches!(r.status, 401 | 429), "attempt {i}: {}", r.status);
    }
    // The household's own address still sets up with the real code.
    server.owner().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_block_invitations() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let secret = webutil::invite(&mut owner, "for the neighbour").await;
    let mut stranger = server.client_from(STRANGER);
    for i in 0..11 {
        server.advance_secs(64);
        let r = stranger
            .post(
                "/invite",
                &[
                    ("invitation", "0".repeat(64).as_str()),
                    ("username", "mallory"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert!(matches!(r.status, 401 | 429), "attempt {i}: {}", r.status);
    }
    let (_, r) =
        webutil::accept_invitation(&server, &secret, "neighbour", "a fine long pass phrase 7")
            .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), "/enrol");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setups_racing_with_the_right_code_make_one_owner() {
    let server = Server::start("").await;
    let code = server.setup_code();
    let mut browsers: Vec<_> = (0..8).map(|_| server.client()).collect();
    let replies = futures::future::join_all(browsers.iter_mut().enumerate().map(|(i, c)| {
        let code = code.clone();
        async move {
            let name = format!("owner{i}");
            c.post(
                "/setup",
                &[
                    ("code", code.as_str()),
                    ("username", name.as_str()),
                    ("email", "o@example.org"),
                    ("password", PASSWORD),
                ],
            )
            .await
        }
    }))
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_password_without_its_code_is_reported_to_the_user() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let told = |body: &str| body.matches("the login was not completed").count();
    assert_eq!(told(&owner.get("/alerts").await.body), 0);

    // Someone with the password reaches the code page and leaves by "log out".
    let mut stranger = server.client_from(STRANGER);
    let r = stranger.post_login(OWNER, PASSWORD).await;
    assert_eq!((r.status, r.location()), (303, "/login/code"), "{}", r.body);
    let page = stranger.get("/login/code").await;
    let r = stranger
        .post("/logout", &[("csrf", &csrf(&page.body))])
        .await;
    assert_eq!(r.status, 303);
    let alerts = owner.get("/alerts").await.body;
    assert_eq!(told(&alerts), 1, "{alerts}");
    assert!(alerts.contains("127.0.0.2"), "where it came from: {alerts}");

    // Once told, not again within the quiet time: no mail flood.
    let r = stranger.post_login(OWNER, PASSWORD).await;
    assert_eq!(r.status, 303);
    let page = stranger.get("/login/code").await;
    stranger
        .post("/logout", &[("csrf", &csrf(&page.body))])
        .await;
    assert_eq!(told(&owner.get("/alerts").await.body), 1);

    // After it, a login left at the code page until it expires is told too.
    server.advance_secs(16 * 60);
    owner.get("/").await;
    let r = stranger.post_login(OWNER, PASSWORD).await;
    assert_eq!(r.status, 303);
    server.advance_secs(11 * 60);
    assert_eq!(stranger.get("/login/code").await.location(), "/login");
    assert_eq!(told(&owner.get("/alerts").await.body), 2);
}
