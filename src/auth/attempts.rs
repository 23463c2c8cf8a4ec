//! One guess at a time per throttling key.
//!
//! The throttle ([`super::throttle`]) decides from the failures already recorded, and
//! a failure is recorded only once its password hash (or code check) is done. Without
//! this gate an attacker could send a hundred attempts at once (one HTTP/2 connection
//! carries a hundred streams): all would pass the check before the first failure was
//! written, and the guessing limit would become the hashing speed. So an attempt holds
//! its keys from the throttle check until its outcome is recorded, and the next attempt
//! on any of those keys waits for it and then sees that outcome.
//!
//! Waiting is bounded: past [`MAX_WAITING`] attempts queued on one key, further ones
//! are refused at once (as throttled), so a flood cannot pile up tasks or hold up
//! the hashing queue that real logins share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Attempts that may queue behind the one being checked, per key.
pub const MAX_WAITING: usize = 4;

/// Above this many idle keys the map is swept when the next attempt comes in.
const SWEEP_ABOVE: usize = 256;

#[derive(Default)]
pub struct AttemptGate {
    keys: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Held while an attempt is checked and its outcome recorded; dropping it lets the
/// next attempt on the same keys go ahead.
#[must_use = "the attempt is only serialised while this is held"]
pub struct AttemptPass {
    _held: Vec<OwnedMutexGuard<()>>,
}

/// Too many attempts are already waiting on one of the keys.
#[derive(Debug)]
pub struct TooManyWaiting;

impl AttemptGate {
    /// Waits until no other attempt holds any of `keys`, then holds them all.
    pub async fn enter(&self, keys: &[String]) -> Result<AttemptPass, TooManyWaiting> {
        // A fixed order, so two attempts sharing two keys never wait on each other.
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut held = Vec::with_capacity(sorted.len());
        for key in sorted {
            let lock = self.lock_for(key)?;
            held.push(lock.lock_owned().await);
        }
        Ok(AttemptPass { _held: held })
    }

    fn lock_for(&self, key: &str) -> Result<Arc<AsyncMutex<()>>, TooManyWaiting> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() > SWEEP_ABOVE {
            // Only the map holds an idle key's lock.
            keys.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        let lock = keys.entry(key.to_owned()).or_default();
        // The map's reference, the holder's, and one per waiter.
        if Arc::strong_count(lock) > MAX_WAITING + 1 {
            return Err(TooManyWaiting);
        }
        Ok(lock.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn keys(a: &str, b: &str) -> Vec<String> {
        vec![a.to_owned(), b.to_owned()]
    }

    #[tokio::test]
    async fn an_attempt_waits_for_one_sharing_any_key() {
        let gate = Arc::new(AttemptGate::default());
        let first = gate.enter(&keys("acct:a", "addr:1")).await.expect("first");
        let g = gate.clone();
        let mut second = tokio::spawn(async move { g.enter(&keys("acct:b", "addr:1")).await });
        let waited = tokio::time::timeout(Duration::from_millis(200), &mut second).await;
        assert!(
            waited.is_err(),
            "the second attempt must wait for the first"
        );
        // Unrelated keys go ahead.
        let other = gate.enter(&keys("acct:c", "addr:2")).await.expect("other");
        drop(other);
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second attempt goes ahead once the first is done")
            .expect("task");
        assert!(second.is_ok());
    }

    #[tokio::test]
    async fn past_the_queue_bound_attempts_are_refused_at_once() {
        let gate = Arc::new(AttemptGate::default());
        let holder = gate.enter(&keys("acct:a", "addr:1")).await.expect("holder");
        let mut waiting = Vec::new();
        for _ in 0..MAX_WAITING {
            let g = gate.clone();
            waiting.push(tokio::spawn(async move {
                g.enter(&keys("acct:a", "addr:1")).await.map(drop)
            }));
        }
        // Let every waiter reach its queue.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(gate.enter(&keys("acct:a", "addr:9")).await.is_err());
        assert!(gate.enter(&["acct:a".to_owned()]).await.is_err());
        drop(holder);
        for w in waiting {
            assert!(w.await.expect("task").is_ok(), "queued attempts all run");
        }
        assert!(gate.enter(&keys("acct:a", "addr:1")).await.is_ok());
    }

    #[tokio::test]
    async fn idle_keys_are_swept() {
        let gate = AttemptGate::default();
        for i in 0..(SWEEP_ABOVE + 10) {
            drop(gate.enter(&[format!("addr:{i}")]).await.expect("enter"));
        }
        let len = gate.keys.lock().expect("map").len();
        assert!(len <= SWEEP_ABOVE + 1, "{len} keys kept");
    }
}
