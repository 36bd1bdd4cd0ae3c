//! A bounded cache of resolutions by raw descriptor and MCC, over a second one of decisions by
//! normalised descriptor: raw strings repeat less than one would hope (on generated data
//! about one row in five hits the first level), but after normalisation most of them are a
//! few thousand merchants, so the fuzzy match runs once per normalised form.
//!
//! Each worker owns its cache (`&mut self`, no lock). When it is full it is cleared, which is
//! simpler than LRU and costs one cold pass over the working set. Clear it, or make a new one,
//! when the resolver is rebuilt after a mapping change.

use crate::{Decision, Resolution, Resolver};
/// Keys are descriptors from input files: a hasher seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::fmt::Write;
use std::sync::Arc;

/// Separates descriptor and MCC in a key; it cannot appear in either (descriptors are text from
/// a CSV field, and a unit separator there would only cost a cache miss).
const KEY_SEPARATOR: char = '\u{1f}';

#[derive(Debug)]
pub struct ResolutionCache {
    capacity: usize,
    entries: HashMap<String, Arc<Resolution>>,
    key: String,
    decisions: DecisionCache,
    hits: u64,
    misses: u64,
}

/// Decisions by everything [`Resolver`]'s decision depends on: the normalised text, the city
/// found in it, how many place words it had, and the MCC.
#[derive(Debug)]
pub(crate) struct DecisionCache {
    capacity: usize,
    entries: HashMap<String, Decision>,
    key: String,
}

impl DecisionCache {
    fn new(capacity: usize) -> DecisionCache {
        DecisionCache {
            capacity,
            entries: HashMap::with_capacity_and_hasher(capacity.min(1 << 14), Default::default()),
            key: String::new(),
        }
    }

    pub(crate) fn get_or_decide(
        &mut self,
        text: &str,
        city: Option<&str>,
        place_words: usize,
        mcc: &str,
        decide: impl FnOnce(&str, Option<&str>, usize, &str) -> Decision,
    ) -> Decision {
        self.key.clear();
        self.key.push_str(text);
        self.key.push(KEY_SEPARATOR);
        self.key.push_str(city.unwrap_or_default());
        // Writing to a String cannot fail.
        let _ = write!(self.key, "{KEY_SEPARATOR}{place_words}{KEY_SEPARATOR}");
        self.key.push_str(mcc);
        if let Some(found) = self.entries.get(self.key.as_str()) {
            return found.clone();
        }
        let decision = decide(text, city, place_words, mcc);
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries.insert(self.key.clone(), decision.clone());
        decision
    }
}

impl ResolutionCache {
    /// A cache holding at most `capacity` resolutions (at least one).
    pub fn new(capacity: usize) -> ResolutionCache {
        let capacity = capacity.max(1);
        ResolutionCache {
            capacity,
            entries: HashMap::with_capacity_and_hasher(capacity.min(1 << 16), Default::default()),
            key: String::new(),
            decisions: DecisionCache::new(capacity),
            hits: 0,
            misses: 0,
        }
    }

    /// The cached resolution, or a new one from `resolver`.
    pub fn get_or_resolve(&mut self, resolver: &Resolver, raw: &str, mcc: &str) -> Arc<Resolution> {
        self.key.clear();
        self.key.push_str(raw);
        self.key.push(KEY_SEPARATOR);
        self.key.push_str(mcc);
        if let Some(found) = self.entries.get(self.key.as_str()) {
            self.hits += 1;
            return Arc::clone(found);
        }
        self.misses += 1;
        let resolution = Arc::new(resolver.resolve_with_decisions(raw, mcc, &mut self.decisions));
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries
            .insert(self.key.clone(), Arc::clone(&resolution));
        resolution
    }

    pub fn hits(&self) -> u64 {
        self.hits
    }

    pub fn misses(&self) -> u64 {
        self.misses
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every resolution (keeps the counters), for example after a mapping change.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use altdata_common::catalogue::Catalogue;

    fn resolver() -> Resolver {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n1,Starbucks,coffee_shop,starbucks,,,5814\n",
        )
        .unwrap_or_default();
        match Resolver::new(&catalogue, vec![], vec![], vec![]) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn repeated_descriptors_hit_the_cache() {
        let resolver = resolver();
        let mut cache = ResolutionCache::new(10);
        let first = cache.get_or_resolve(&resolver, "STARBUCKS #1", "5814");
        let second = cache.get_or_resolve(&resolver, "STARBUCKS #1", "5814");
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!((cache.hits(), cache.misses()), (1, 1));
    }

    #[test]
    fn mcc_is_part_of_the_key() {
        let resolver = resolver();
        let mut cache = ResolutionCache::new(10);
        cache.get_or_resolve(&resolver, "STARBUCKS", "5814");
        cache.get_or_resolve(&resolver, "STARBUCKS", "");
        assert_eq!(cache.misses(), 2);
    }

    #[test]
    fn cache_never_grows_past_its_capacity() {
        let resolver = resolver();
        let mut cache = ResolutionCache::new(3);
        for n in 0..10 {
            cache.get_or_resolve(&resolver, &format!("STARBUCKS #{n}"), "");
            assert!(cache.len() <= 3);
        }
    }
}
