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
//! [`Policy::block_for`]; every failure after that blocks it again. Attempts made while
//! waiting are refused without looking at the password and do not count. Failures older
//! than [`FORGET_AFTER_MICROS`] are forgotten; a completed login clears its keys, and
//! the periodic expiry pass removes keys whose failures are forgotten
//! ([`is_forgotten`]).
//!
//! Owners are told of a key's first block only (until its failures are forgotten or
//! cleared), and at most once per [`ALERT_EVERY_MICROS`] in all ([`BlockAlerts`]): a
//! stranger sending one wrong password per block, or from every IPv6 /64 they own,
//! must not turn each block into a stored alert, a mail and a webhook push.

use sha2::{Digest, Sha256};

use crate::index::ThrottleEntry;

/// Login-blocked alerts to the owners: at most one per hour; the blocks in between
/// are counted and told with the next one.
pub const ALERT_EVERY_MICROS: i64 = 3600 * 1_000_000;

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

/// Records a failed attempt; returns true if this failure started the key's first
/// block since its failures were last forgotten or cleared (the one worth telling the
/// owners of; later blocks of the same key are not news).
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
        let first = !entry.block_told;
        entry.block_told = true;
        return first;
    }
    entry.blocked = false;
    if n > policy.free {
        let exp = (n - policy.free - 1).min(30);
        let delay = (1i64 << exp).min(policy.max_delay_secs);
        entry.not_before_micros = now + delay * 1_000_000;
    }
    false
}

/// What to tell the owners of a new block: nothing (an alert went out within
/// [`ALERT_EVERY_MICROS`]; the block is counted), or an alert mentioning how many blocks
/// were held back since when. In memory: a restart may tell once more.
#[derive(Debug, Default)]
pub struct BlockAlerts {
    last_told_micros: Option<i64>,
    held: u32,
    held_since_micros: i64,
}

/// Blocks not told since a time, to mention in the next alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub count: u32,
    pub since_micros: i64,
}

impl BlockAlerts {
    /// Called for a key's first block at `now`: `Some` to raise an alert (with the
    /// blocks held back before it, if any), `None` to hold this one back.
    pub fn offer(&mut self, now: i64) -> Option<Option<Held>> {
        if self
            .last_told_micros
            .is_some_and(|t| now - t < ALERT_EVERY_MICROS)
        {
            if self.held == 0 {
                self.held_since_micros = now;
            }
            self.held = self.held.saturating_add(1);
            return None;
        }
        self.last_told_micros = Some(now);
        let held = (self.held > 0).then_some(Held {
            count: self.held,
            since_micros: self.held_since_micros,
        });
        self.held = 0;
        Some(held)
    }
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
/// account exists). The name is hashed so the key has a fixed length: a stranger may
/// type a name as long as the form allows, and each one is stored.
pub fn account_key(username: &str) -> String {
    let name = username.trim().to_lowercase();
    format!("acct:{}", hex::encode(Sha256::digest(name.as_bytes())))
}

/// Whether an entry can be dropped at `now`: its failures would be forgotten at the
/// next one ([`on_failure`]) and it holds no wait or block, so removing it changes
/// nothing. Without this a key tried once (any made-up name, any IPv6 /64) would
/// stay stored for ever.
pub fn is_forgotten(entry: &ThrottleEntry, now: i64) -> bool {
    now - entry.last_failure_micros > FORGET_AFTER_MICROS && now >= entry.not_before_micros
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
            !on_failure(&mut e, now + 900 * S, ACCOUNT),
            "and restart on failure, which is not news"
        );
        assert!(e.blocked);
    }

    #[test]
    fn only_a_keys_first_block_is_news_until_its_failures_are_forgotten() {
        let mut e = ThrottleEntry::default();
        let mut now = 1_000 * S;
        let mut news = 0;
        // One failure every 15 minutes for 4 hours.
        for _ in 0..=16 {
            assert_eq!(check(&e, now), Verdict::Allow);
            news += usize::from(on_failure(&mut e, now, ACCOUNT));
            now += 900 * S;
        }
        assert_eq!(news, 1);
        now += FORGET_AFTER_MICROS + 1;
        for _ in 0..10 {
            news += usize::from(on_failure(&mut e, now, ACCOUNT));
            now += 900 * S;
        }
        assert_eq!(news, 2, "after a quiet day a new block is news again");
    }

    #[test]
    fn block_alerts_are_at_most_hourly_and_count_what_was_held() {
        let mut a = BlockAlerts::default();
        assert_eq!(a.offer(0), Some(None));
        assert_eq!(a.offer(60 * S), None);
        assert_eq!(a.offer(120 * S), None);
        assert_eq!(
            a.offer(ALERT_EVERY_MICROS),
            Some(Some(Held {
                count: 2,
                since_micros: 60 * S
            }))
        );
        assert_eq!(a.offer(ALERT_EVERY_MICROS + S), None);
        assert_eq!(
            a.offer(3 * ALERT_EVERY_MICROS),
            Some(Some(Held {
                count: 1,
                since_micros: ALERT_EVERY_MICROS + S
            }))
        );
        assert_eq!(a.offer(5 * ALERT_EVERY_MICROS), Some(None));
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
    fn account_keys_have_a_bounded_length_whatever_was_typed() {
        let short = account_key("a");
        let long = account_key(&"x".repeat(15_000));
        assert_eq!(long.len(), short.len());
        assert!(long.len() <= 5 + 64, "{} bytes", long.len());
        assert!(long.starts_with("acct:"));
    }

    #[test]
    fn entries_are_forgotten_only_after_a_quiet_day_and_any_block_ended() {
        let mut e = ThrottleEntry::default();
        on_failure(&mut e, 10 * S, ACCOUNT);
        assert!(!is_forgotten(&e, 10 * S + FORGET_AFTER_MICROS));
        assert!(is_forgotten(&e, 10 * S + FORGET_AFTER_MICROS + 1));
        e.not_before_micros = 20 * S + FORGET_AFTER_MICROS;
        assert!(!is_forgotten(&e, 10 * S + FORGET_AFTER_MICROS + 1));
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
        assert_eq!(account_key(" Alice "), account_key("alice"));
        assert_ne!(account_key("alice"), account_key("alicf"));
        let a: std::net::IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        let m: std::net::IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(address_key(m), "addr:192.0.2.1");
    }
}
