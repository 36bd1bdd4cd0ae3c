//! Keys found valid, by SHA-256, remembered for a short time to spare the database a lookup
//! per request.
//!
//! Only valid keys enter: a refused key is never remembered, so no number of bad keys can
//! push a valid one out. A revocation removes its key at once ([`KeyCache::forget`], on the
//! NATS message); the time to live bounds how long a missed message leaves a revoked key
//! working. Past its time to live an entry is read again from the database, but is still
//! known to have been valid: its re-reading is no guess, so the failure budget of its
//! address does not apply (a flood from behind the same proxy cannot lock it out).

use super::Principal;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A key found valid, and whether that was recently enough (within the time to live) to
/// trust it without reading it again.
#[derive(Debug, Clone)]
pub struct Remembered {
    pub principal: Principal,
    pub fresh: bool,
}

/// Keys remembered at most. Valid keys are few; past this many, a new key is simply not
/// remembered (it is looked up each time) rather than pushing another out.
const MAX_REMEMBERED_KEYS: usize = 10_000;

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The principal of a key found valid, fresh or not.
    pub fn get(&self, hash: &str) -> Option<Remembered> {
        let entries = self.entries.lock().ok()?;
        let (principal, at) = entries.get(hash)?;
        Some(Remembered {
            principal: principal.clone(),
            fresh: at.elapsed() < self.ttl,
        })
    }

    pub fn put(&self, hash: String, principal: Principal) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_REMEMBERED_KEYS && !entries.contains_key(&hash) {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_REMEMBERED_KEYS {
                return;
            }
        }
        entries.insert(hash, (principal, Instant::now()));
    }

    /// Drops the entry of the key with SHA-256 `hash`, if any.
    pub fn remove(&self, hash: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(hash);
        }
    }

    /// Drops every entry of key `key_id`: it was revoked or rotated away.
    pub fn forget(&self, key_id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (principal, _)| principal.key_id != key_id);
        }
    }

    /// Whether key `key_id` is remembered (fresh or not).
    pub fn holds(&self, key_id: i64) -> bool {
        self.entries
            .lock()
            .is_ok_and(|entries| entries.values().any(|(p, _)| p.key_id == key_id))
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn principal(key_id: i64) -> Principal {
        Principal {
            key_id,
            key_prefix: format!("adx_{key_id:04}"),
            name: String::new(),
            role: Role::Analyst,
            expires_at: None,
        }
    }

    #[test]
    fn a_full_cache_keeps_its_keys_and_declines_new_ones() {
        let cache = KeyCache::new(Duration::from_secs(60));
        for id in 0..MAX_REMEMBERED_KEYS as i64 {
            cache.put(format!("hash{id}"), principal(id));
        }
        cache.put("newcomer".to_owned(), principal(-1));
        assert_eq!(cache.len(), MAX_REMEMBERED_KEYS);
        assert!(
            cache.get("hash0").is_some_and(|r| r.fresh),
            "the first key survives"
        );
        assert!(cache.get("newcomer").is_none());
    }

    #[test]
    fn forgetting_a_key_drops_it_and_nothing_else() {
        let cache = KeyCache::new(Duration::from_secs(60));
        cache.put("a".to_owned(), principal(1));
        cache.put("b".to_owned(), principal(2));
        cache.forget(1);
        assert!(cache.get("a").is_none());
        assert!(cache.holds(2) && !cache.holds(1));
    }

    #[test]
    fn entries_go_stale_after_the_time_to_live_and_are_still_known() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.put("a".to_owned(), principal(1));
        let remembered = cache.get("a");
        assert!(remembered.is_some_and(|r| !r.fresh && r.principal.key_id == 1));
    }
}
