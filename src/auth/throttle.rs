//! Password-guessing defence: growing delays, then temporary blocks (pure logic; the
//! time is an argument and the counters live in the index).
//!
//! Two kinds of key are counted for every attempt: the account name as typed (whether
//! or not it exists, so the answer reveals nothing) and the client address (IPv6 by
//! /64). A browser that has completed a login for the account before (it holds that
//! account's device cookie) is counted under its own key instead of the account's, so a
//! stranger hammering the account cannot lock the owner's own phone out (OWASP's
//! "device cookies"; ASVS 6.1.1).
//!
//! Numbers (per key): the first [`Policy::free`] failures cost nothing; each further
//! failure makes the next attempt wait 2^(n − free) seconds, capped at
//! [`Policy::max_delay`]; at [`Policy::block_after`] failures the key is blocked for
//! [`Policy::block_for`] and the owner is alerted; every failure after that blocks it
//! again. Attempts made while waiting are refused without looking at the password and do
//! not count. Failures older than [`FORGET_AFTER_MICROS`] are forgotten; a completed
//! login clears its keys.

use crate::index::ThrottleEntry;

/// Failures are forgotten after a day without any.
pub const FORGET_AFTER_MICROS: i64 = 24 * 3600 * 1_000_000;

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub free: u32,
    pub max_delay_secs: i64,
    pub block_after: u32,
    pub block_for_secs: i64,
}

/// Per account (or per account and known device).
pub const ACCOUNT: Policy = Policy {
    free: 3,
    max_delay_secs: 60,
    block_after: 10,
    block_for_secs: 15 * 60,
};

/// Per address: a household behind one NAT address shares it, so it is looser.
pub const ADDRESS: Policy = Policy {
    free: 5,
    max_delay_secs: 60,
    block_after: 20,
    block_for_secs: 15 * 60,
};

/// Whether an attempt may be looked at now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Too soon after the last failure; try again at this time (µs).
    Wait {
        until_micros: i64,
    },
    Blocked {
        until_micros: i64,
    },
}

pub fn check(entry: &ThrottleEntry, now: i64) -> Verdict {
    if now < entry.not_before_micros {
        if entry.blocked {
            Verdict::Blocked {
                until_micros: entry.not_before_micros,
            }
        } else {
            Verdict::Wait {
                until_micros: entry.not_before_micros,
            }
        }
    } else {
        Verdict::Allow
    }
}

/// Records a failed attempt; returns true if this failure started a block.
pub fn on_failure(entry: &mut ThrottleEntry, now: i64, policy: Policy) -> bool {
    if now - entry.last_failure_micros > FORGET_AFTER_MICROS {
        *entry = ThrottleEntry::default();
    }
    entry.failures = entry.failures.saturating_add(1);
    entry.last_failure_micros = now;
    let n = entry.failures;
    if n >= policy.block_after {
        entry.not_before_micros = now + policy.block_for_secs * 1_000_000;
        entry.blocked = true;
        return true;
    }
    entry.blocked = false;
    if n > policy.free {
        let exp = (n - policy.free - 1).min(30);
        let delay = (1i64 << exp).min(policy.max_delay_secs);
        entry.not_before_micros = now + delay * 1_000_000;
    }
    false
}

/// The later of two verdicts' waits (blocks win over delays).
pub fn worst(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::Blocked { until_micros: x }, Verdict::Blocked { until_micros: y }) => {
            Verdict::Blocked {
                until_micros: x.max(y),
            }
        }
        (v @ Verdict::Blocked { .. }, _) | (_, v @ Verdict::Blocked { .. }) => v,
        (Verdict::Wait { until_micros: x }, Verdict::Wait { until_micros: y }) => Verdict::Wait {
            until_micros: x.max(y),
        },
        (v @ Verdict::Wait { .. }, _) | (_, v @ Verdict::Wait { .. }) => v,
        _ => Verdict::Allow,
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one household).
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("addr:{v4}"),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = v6.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The key an account name is counted under (case-insensitive, whether or not the
/// account exists).
pub fn account_key(username: &str) -> String {
    format!("acct:{}", username.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn delays_grow_after_the_free_attempts_then_the_key_is_blocked() {
        let mut e = ThrottleEntry::default();
        let mut now = 1_000 * S;
        let mut waits = Vec::new();
        for _ in 0..9 {
            assert_eq!(check(&e, now), Verdict::Allow);
            assert!(!on_failure(&mut e, now, ACCOUNT));
            waits.push((e.not_before_micros - now).max(0) / S);
            now = now.max(e.not_before_micros);
        }
        assert_eq!(waits, vec![0, 0, 0, 1, 2, 4, 8, 16, 32]);
        assert!(on_failure(&mut e, now, ACCOUNT), "the 10th failure blocks");
        assert_eq!(
            check(&e, now + 60 * S),
            Verdict::Blocked {
                until_micros: now + 900 * S
            }
        );
        assert_eq!(check(&e, now + 900 * S), Verdict::Allow, "blocks end");
        assert!(
            on_failure(&mut e, now + 900 * S, ACCOUNT),
            "and restart on failure"
        );
    }

    #[test]
    fn waiting_is_reported_and_old_failures_are_forgotten() {
        let mut e = ThrottleEntry::default();
        for i in 0..4 {
            on_failure(&mut e, i * 10 * S, ACCOUNT);
        }
        assert_eq!(
            check(&e, 30 * S),
            Verdict::Wait {
                until_micros: 31 * S
            }
        );
        on_failure(&mut e, 30 * S + FORGET_AFTER_MICROS + 1, ACCOUNT);
        assert_eq!(e.failures, 1);
    }

    #[test]
    fn worst_verdict_prefers_blocks_then_later_waits() {
        let w = |t| Verdict::Wait { until_micros: t };
        let b = |t| Verdict::Blocked { until_micros: t };
        assert_eq!(worst(w(5), w(9)), w(9));
        assert_eq!(worst(w(50), b(9)), b(9));
        assert_eq!(worst(Verdict::Allow, w(3)), w(3));
        assert_eq!(worst(Verdict::Allow, Verdict::Allow), Verdict::Allow);
    }

    #[test]
    fn keys_normalise_names_and_group_ipv6_by_64() {
        assert_eq!(account_key(" Alice "), "acct:alice");
        let a: std::net::IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        let m: std::net::IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(address_key(m), "addr:192.0.2.1");
    }
}
