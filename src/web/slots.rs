//! Counted slots per key: at most `max` holders of one key at once (live views per
//! session, connections per client address). A [`Slot`] gives its place back when
//! dropped, so a task that ends in any way frees it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// How many of each key are held, and the most one key may hold.
pub struct Slots<K> {
    max: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// One held place of `key`; dropping it frees the place.
pub struct Slot<K: Eq + Hash> {
    slots: Arc<Slots<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Slots<K> {
    pub fn new(max: usize) -> Arc<Slots<K>> {
        Arc::new(Slots {
            max,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A place for `key`, or `None` when it already holds `max`.
    pub fn acquire(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        // A poisoned lock only means another holder panicked; the counts stay valid.
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(key.clone()).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_max_and_a_dropped_slot_frees_its_place() {
        let slots = Slots::new(2);
        let a = slots.acquire("a").expect("first");
        let _b = slots.acquire("a").expect("second");
        assert!(slots.acquire("a").is_none(), "third of one key");
        assert!(slots.acquire("other").is_some(), "other keys are apart");
        drop(a);
        assert!(slots.acquire("a").is_some(), "freed by drop");
    }
}
