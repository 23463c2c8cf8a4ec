//! The `X-Forwarded-For` walk (`porchlight::web::forwarded_client`), which reads what a
//! client wrote whenever a trusted proxy passes it on. Lines of the input are separate
//! header values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porchlight::config::{IpNetwork, TrustedProxies};

fuzz_target!(|data: &[u8]| {
    let trusted = TrustedProxies::new(
        ["127.0.0.1", "10.0.0.0/8", "::1"]
            .iter()
            .map(|n| IpNetwork::parse(n).expect("network"))
            .collect(),
    );
    let values: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if let Some(ip) = porchlight::web::forwarded_client(&values, &trusted) {
        assert!(
            !trusted.contains(ip),
            "a trusted proxy is never the client: {ip}"
        );
        // Only the rightmost MAX_HOPS entries are read, nearest first.
        let read: Vec<&[u8]> = values
            .iter()
            .rev()
            .flat_map(|v| v.rsplit(|b| *b == b','))
            .take(porchlight::web::MAX_HOPS)
            .collect();
        let address = |e: &[u8]| -> Option<std::net::IpAddr> {
            let ip: std::net::IpAddr = std::str::from_utf8(e).ok()?.trim().parse().ok()?;
            Some(ip.to_canonical())
        };
        // The nearest entry that is not a trusted proxy, and every one right of it is.
        let at = read
            .iter()
            .position(|e| address(e) == Some(ip))
            .expect("the client is one of the entries read");
        for e in &read[..at] {
            let hop = address(e).expect("hops right of the client are addresses");
            assert!(
                trusted.contains(hop),
                "{hop} between the client and us is trusted"
            );
        }
    }
});
