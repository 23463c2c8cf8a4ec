//! Security alerts a stranger can cause must not become a flood: a slow, patient
//! guesser is told to the owner once, not at every block. Real daemon over HTTPS,
//! simulated clock; the stranger's connections come from 127.0.0.2.

mod webutil;

use std::net::{IpAddr, Ipv4Addr};

use webutil::{Server, OWNER};

const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_wrong_password_every_15_minutes_is_one_alert_not_one_per_block() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let blocked = |body: &str| body.matches("are blocked for").count();
    let mut stranger = server.client_from(STRANGER);
    // Every 15 minutes for 4 hours: the 10th failure blocks the name, and each one
    // after it (made as the last block ends) blocks it again.
    for i in 0..=16 {
        let r = stranger.post_login(OWNER, "wrong guess").await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
        server.advance_secs(15 * 60);
        // The owner's page is open: their session stays live.
        assert_eq!(owner.get("/").await.status, 200);
    }
    let alerts = owner.get("/alerts").await.body;
    assert_eq!(blocked(&alerts), 1, "{alerts}");
}

/// Blocks the account name `name` from `ip`: ten failures, each after the previous
/// delay.
async fn block_name(server: &Server, name: &str, ip: IpAddr) {
    let mut guesser = server.client_from(ip);
    for i in 0..10 {
        server.advance_secs(64);
        let r = guesser.post_login(name, "wrong guess").await;
        assert_eq!(r.status, 401, "failure {i} for {name}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_within_the_hour_are_told_together() {
    let server = Server::start("").await;
    let (mut owner, _, _) = server.owner().await;
    let blocked = |body: &str| body.matches("are blocked for").count();
    let from = |last: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
    for (name, last) in [("alice", 3), ("bob", 4), ("carol", 5)] {
        block_name(&server, name, from(last)).await;
        // The owner's page is open: their session stays live.
        assert_eq!(owner.get("/").await.status, 200);
    }
    let alerts = owner.get("/alerts").await.body;
    assert_eq!(blocked(&alerts), 1, "one alert in the hour: {alerts}");
    assert!(alerts.contains("alice"), "{alerts}");

    for _ in 0..4 {
        server.advance_secs(15 * 60);
        assert_eq!(owner.get("/").await.status, 200);
    }
    block_name(&server, "dave", from(6)).await;
    let alerts = owner.get("/alerts").await.body;
    assert_eq!(blocked(&alerts), 2, "{alerts}");
    assert!(
        alerts.contains("Also 2 other account name(s) or address(es) blocked since"),
        "the held-back blocks are counted: {alerts}"
    );
}
