//! The `X-Forwarded-For` walk (`porchlight::web::forwarded_client`), which reads what a
//! client wrote whenever a trusted proxy passes it on. Lines of the input are separate
//! header values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porchlight::config::{IpNetwork, TrustedProxies};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let trusted = TrustedProxies::new(
        ["127.0.0.1", "10.0.0.0/8", "::1"]
            .iter()
            .map(|n| IpNetwork::parse(n).expect("network"))
            .collect(),
    );
    let values: Vec<&str> = text.lines().collect();
    if let Some(ip) = porchlight::web::forwarded_client(&values, &trusted) {
        assert!(
            !trusted.contains(ip),
            "a trusted proxy is never the client: {ip}"
        );
        let entries: Vec<&str> = values.iter().flat_map(|v| v.split(',')).collect();
        assert!(entries.len() <= porchlight::web::MAX_HOPS);
        // The nearest entry that is not a trusted proxy, and every one right of it is.
        let at = entries
            .iter()
            .rposition(|e| e.trim().parse().map(|p: std::net::IpAddr| p.to_canonical()) == Ok(ip))
            .expect("the client is one of the entries");
        for e in &entries[at + 1..] {
            let hop: std::net::IpAddr = e
                .trim()
                .parse()
                .expect("hops right of the client are addresses");
            assert!(
                trusted.contains(hop),
                "{hop} between the client and us is trusted"
            );
        }
    }
});
