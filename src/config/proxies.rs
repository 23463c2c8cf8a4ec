//! `[web] trusted_proxies`: the reverse proxies (addresses or CIDR networks) whose
//! `X-Forwarded-For` header is believed about who the client is.
//!
//! Empty by default: then every client is its TCP peer and the header is ignored.
//! The list is parsed here, with the file's line and key on a bad entry; the web layer
//! asks [`TrustedProxies::contains`] when it resolves a request's client address.

use std::fmt;
use std::net::IpAddr;

use toml::Spanned;

use super::web::Located;
use super::ConfigError;

/// At most this many entries: a homelab has one or two proxies, and every request
/// walks the list.
const MAX_ENTRIES: usize = 64;

/// One entry: an address and how many leading bits must match (32 or 128 for a
/// single address). The host bits of `addr` are zero (checked when parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// `192.0.2.7`, `10.0.0.0/8`, `::1`, `fd00::/8`. A network whose address has
    /// host bits set (`10.0.0.1/8`) is refused: it is more likely a typo than meant.
    pub fn parse(text: &str) -> Result<IpNetwork, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("{text:?} is not an IP address or a network such as 10.0.0.0/8")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        if addr.to_canonical() != addr {
            return Err(format!("{text:?}: write the IPv4 address itself"));
        }
        if bits(addr) & !mask(addr, prefix) != 0 {
            return Err(format!(
                "{text:?} has bits set past its /{prefix} prefix (a network starts at its first address)"
            ));
        }
        let net = IpNetwork { addr, prefix };
        Ok(net)
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && bits(ip) & mask(ip, self.prefix) == bits(self.addr)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let single = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == single {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// The address as a number (IPv4 in the low 32 bits).
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The first `prefix` bits of an address of `ip`'s family set.
fn mask(ip: IpAddr, prefix: u8) -> u128 {
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let all = if ip.is_ipv4() {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    match width - u32::from(prefix) {
        128 => 0,
        host => all & !((1u128 << host) - 1),
    }
}

/// The proxies the owner trusts to say who the client is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNetwork>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNetwork>) -> Self {
        TrustedProxies(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    pub fn networks(&self) -> &[IpNetwork] {
        &self.0
    }
}

/// `web.trusted_proxies`: a bad entry is located on its own line.
pub(super) fn parse(
    raw: Option<Spanned<Vec<Spanned<String>>>>,
    located: Located<'_>,
) -> Result<TrustedProxies, ConfigError> {
    const KEY: &str = "web.trusted_proxies";
    let Some(raw) = raw else {
        return Ok(TrustedProxies::default());
    };
    if raw.get_ref().len() > MAX_ENTRIES {
        return Err(located(
            raw.span(),
            KEY,
            format!("at most {MAX_ENTRIES} entries"),
        ));
    }
    let mut networks = Vec::new();
    for entry in raw.into_inner() {
        let net =
            IpNetwork::parse(entry.get_ref().trim()).map_err(|m| located(entry.span(), KEY, m))?;
        networks.push(net);
    }
    Ok(TrustedProxies(networks))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn networks_hold_their_addresses_only() {
        let net = IpNetwork::parse("10.0.0.0/8").expect("net");
        assert!(net.contains(ip("10.200.3.4")) && !net.contains(ip("11.0.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped counts as IPv4"
        );
        let one = IpNetwork::parse("127.0.0.1").expect("addr");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = IpNetwork::parse("fd00::/8").expect("v6");
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all = IpNetwork::parse("0.0.0.0/0").expect("all");
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("::1")));
        assert_eq!(IpNetwork::parse("::1").expect("v6").to_string(), "::1");
        assert_eq!(net.to_string(), "10.0.0.0/8");
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0/8",
            "localhost",
            "",
            "::1/129",
            "10.0.0.0/-1",
        ] {
            assert!(IpNetwork::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_trusted_proxy_names_its_line_and_key() {
        let text = "[web]\ntrusted_proxies = [\n  \"127.0.0.1\",\n  \"10.0.0.0/33\",\n]\n";
        let e = Config::parse(Path::new("/t.toml"), text)
            .expect_err("bad prefix")
            .to_string();
        assert!(
            e.starts_with("/t.toml:4: key `web.trusted_proxies`") && e.contains("10.0.0.0/33"),
            "{e}"
        );
        let c = Config::parse(
            Path::new("/t.toml"),
            "[web]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\n",
        )
        .expect("valid");
        assert_eq!(c.web.trusted_proxies.networks().len(), 3);
        assert!(c.web.trusted_proxies.contains(ip("10.9.8.7")));
        let none = Config::parse(Path::new("/t.toml"), "").expect("valid");
        assert!(none.web.trusted_proxies.is_empty(), "empty by default");
    }
}
