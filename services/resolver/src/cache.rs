//! A bounded cache of resolutions by raw descriptor and MCC, over a second one of decisions by
//! normalised descriptor: raw strings repeat less than one would hope (on generated data
//! about one row in five hits the first level), but after normalisation most of them are a
//! few thousand merchants, so the fuzzy match runs once per normalised form.
//!
//! A raw descriptor enters the first level only when it is seen a second time (a "doorkeeper",
//! as in TinyLFU): most raw strings never repeat, and caching every one of them cost more
//! (allocations, a table that keeps growing, memory never reused while it is hot) than the
//! repeats saved: 3.5 against 2.8 µs a row with no first level at all on a 1M-row file.
//!
//! Each worker owns its cache (`&mut self`, no lock). When it is full it is cleared, which is
//! simpler than LRU and costs one cold pass over the working set. Clear it, or make a new one,
//! when the resolver is rebuilt after a mapping change.

use crate::fuzzy::Continuation;
use crate::normalize::Shape;
use crate::{Decision, Resolution, Resolver};
/// Keys are descriptors from input files: a hasher seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::fmt::Write;
use std::hash::BuildHasher;
use std::sync::Arc;

/// Separates descriptor and MCC in a key; it cannot appear in either (descriptors are text from
/// a CSV field, and a unit separator there would only cost a cache miss).
const KEY_SEPARATOR: char = '\u{1f}';

/// The doorkeeper's most slots (8 MiB): twice the capacity, up to this.
const DOORKEEPER_MAX: usize = 1 << 20;

#[derive(Debug)]
pub struct ResolutionCache {
    capacity: usize,
    entries: HashMap<String, Arc<Resolution>>,
    /// Fingerprints of raw keys seen once, by fingerprint modulo its length (a power of two).
    doorkeeper: Box<[u64]>,
    key: String,
    decisions: DecisionCache,
    hits: u64,
    misses: u64,
}

/// Decisions by normalised text, place words and MCC, made without the city; and, for the
/// few where a city could change the outcome, by city as well. Most descriptors of a brand
/// differ only in their city (`BURGER KING` in a thousand towns): one fuzzy match serves
/// them all ([`Resolver::city_changes_outcome`] says when it cannot).
#[derive(Debug)]
pub(crate) struct DecisionCache {
    capacity: usize,
    /// The decision without a city, and what a city after the words could continue.
    general: HashMap<String, (Decision, Vec<Continuation>)>,
    by_city: HashMap<String, Decision>,
    key: String,
}

impl DecisionCache {
    fn new(capacity: usize) -> DecisionCache {
        let initial = capacity.min(1 << 14);
        DecisionCache {
            capacity,
            general: HashMap::with_capacity_and_hasher(initial, Default::default()),
            by_city: HashMap::with_capacity_and_hasher(initial, Default::default()),
            key: String::new(),
        }
    }

    pub(crate) fn get_or_decide(
        &mut self,
        resolver: &Resolver,
        text: &str,
        city: Option<&str>,
        shape: Shape,
        mcc: &str,
    ) -> Decision {
        self.key.clear();
        self.key.push_str(text);
        self.key.push(KEY_SEPARATOR);
        for count in [Some(shape.place_words), shape.name_words] {
            match count.map(u8::try_from) {
                None => self.key.push('-'),
                // Nearly always 0 to 3: a digit without the formatting machinery, once a row.
                Some(Ok(digit @ 0..=9)) => self.key.push(char::from(b'0' + digit)),
                // Writing to a String cannot fail.
                Some(_) => {
                    let _ = write!(self.key, "{}", count.unwrap_or_default());
                }
            }
        }
        self.key.push(KEY_SEPARATOR);
        self.key.push_str(mcc);
        // One look-up a row; the general decision is what nearly every row gets.
        let city_matters = |continuations: &[Continuation]| {
            city.filter(|city| resolver.city_changes_outcome(text, city, continuations))
        };
        let (decision, city) = match self.general.get(self.key.as_str()) {
            Some((decision, continuations)) => (decision.clone(), city_matters(continuations)),
            None => {
                let (decision, continuations) = resolver.decide_noting_city(text, None, shape, mcc);
                let city = city_matters(&continuations);
                if self.general.len() >= self.capacity {
                    self.general.clear();
                }
                self.general
                    .insert(self.key.clone(), (decision.clone(), continuations));
                (decision, city)
            }
        };
        let Some(city) = city else {
            return decision;
        };
        self.key.push(KEY_SEPARATOR);
        self.key.push_str(city);
        if let Some(found) = self.by_city.get(self.key.as_str()) {
            return found.clone();
        }
        let (decision, _) = resolver.decide_noting_city(text, Some(city), shape, mcc);
        if self.by_city.len() >= self.capacity {
            self.by_city.clear();
        }
        self.by_city.insert(self.key.clone(), decision.clone());
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
            doorkeeper: vec![0; (2 * capacity).next_power_of_two().min(DOORKEEPER_MAX)]
                .into_boxed_slice(),
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
        if self.seen_before() {
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
            self.entries
                .insert(self.key.clone(), Arc::clone(&resolution));
        }
        resolution
    }

    /// Whether the current key was seen before (by fingerprint); notes it if not. Two keys
    /// sharing a slot only cost a missed or an early admission, never a wrong answer.
    fn seen_before(&mut self) -> bool {
        // Never 0, the empty slot.
        let fingerprint = self.entries.hasher().hash_one(self.key.as_str()) | 1;
        let slot = fingerprint as usize & (self.doorkeeper.len() - 1);
        if self.doorkeeper[slot] == fingerprint {
            return true;
        }
        self.doorkeeper[slot] = fingerprint;
        false
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

    /// Forgets every resolution and decision (keeps the counters), for example after a
    /// mapping change.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.doorkeeper.fill(0);
        self.decisions.general.clear();
        self.decisions.by_city.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use altdata_domain::catalogue::Catalogue;

    fn resolver() -> Resolver {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n1,Starbucks,coffee_shop,starbucks,,,5814\n",
        )
        .unwrap_or_default();
        Resolver::new(&catalogue, vec![], vec![], vec![])
    }

    #[test]
    fn repeated_descriptors_hit_the_cache() {
        let resolver = resolver();
        let mut cache = ResolutionCache::new(10);
        // Admitted on its second sighting, served from the cache from the third on.
        let first = cache.get_or_resolve(&resolver, "STARBUCKS #1", "5814");
        let second = cache.get_or_resolve(&resolver, "STARBUCKS #1", "5814");
        let third = cache.get_or_resolve(&resolver, "STARBUCKS #1", "5814");
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(Arc::ptr_eq(&second, &third));
        assert_eq!(first, second);
        assert_eq!((cache.hits(), cache.misses()), (1, 2));
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
            // Twice each: the second sighting is admitted.
            for _ in 0..2 {
                cache.get_or_resolve(&resolver, &format!("STARBUCKS #{n}"), "");
            }
            assert!((1..=3).contains(&cache.len()), "{}", cache.len());
        }
    }

    /// The cache answers exactly what the resolver decides with the city, whichever city
    /// came first: also where the city continues a name (`DELTA AIR` + `LINES`) or glues onto
    /// the words into one (`TACO` + `BELL`).
    #[test]
    fn a_decision_shared_across_cities_is_the_one_made_with_the_city() {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n\
             1,Starbucks,coffee_shop,starbucks,,,5814\n\
             2,Delta Air Lines,airline,delta,,,3058\n\
             3,Delta,gas_station,delta_gas,,,5541\n\
             4,Taco Bell,fast_food,taco_bell,,,5814\n\
             5,Boston Market,restaurant,boston_market,,,5812\n\
             6,Harbor Marketplace,grocery,harbor,,,5411\n",
        )
        .unwrap_or_default();
        let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
        let texts = [
            "STARBUCKS",
            "DELTA AIR",
            "DELTA",
            "TACO",
            "BOSTON",
            "HARBOR MARKET",
        ];
        let cities = [
            None,
            Some("SEATTLE"),
            Some("LINES"),
            Some("BELL"),
            Some("MARKET"),
            Some("PLACE"),
        ];
        // Each of these cities changes the decision: the cache must not reuse the general one.
        for (text, city) in [
            ("DELTA AIR", "LINES"),
            ("TACO", "BELL"),
            ("HARBOR MARKET", "PLACE"),
        ] {
            assert_ne!(
                resolver.decide(text, None, Shape::default(), ""),
                resolver.decide(text, Some(city), Shape::default(), ""),
                "{text:?} in {city:?}"
            );
        }
        for order in [false, true] {
            let mut cache = DecisionCache::new(100);
            for text in texts {
                let mut seen = cities.to_vec();
                if order {
                    seen.reverse();
                }
                for city in seen {
                    let cached = cache.get_or_decide(&resolver, text, city, Shape::default(), "");
                    let fresh = resolver.decide(text, city, Shape::default(), "");
                    assert_eq!(cached, fresh, "{text:?} in {city:?}");
                }
            }
        }
        assert!(matches!(
            resolver.decide("TACO", Some("BELL"), Shape::default(), ""),
            Decision::Auto { merchant_id: 4, .. }
        ));
    }

    /// After a mapping change the cache is cleared and must not answer from the old
    /// resolver: neither a resolution nor a decision survives `clear`.
    #[test]
    fn clear_forgets_decisions_too() {
        let resolver_for = |id: i64| {
            let catalogue = Catalogue::parse(&format!(
                "id,name,category,brand_id,ticker_symbol,match_names,mcc\n{id},Starbucks,coffee_shop,starbucks,,,5814\n"
            ))
            .unwrap_or_default();
            Resolver::new(&catalogue, vec![], vec![], vec![])
        };
        let (before, after) = (resolver_for(1), resolver_for(2));
        let mut cache = ResolutionCache::new(10);
        let first = cache.get_or_resolve(&before, "STARBUCKS #1", "5814");
        assert_eq!(first.merchant_id(), Some(1));
        cache.clear();
        let second = cache.get_or_resolve(&after, "STARBUCKS #2", "5814");
        assert_eq!(second.merchant_id(), Some(2));
    }
}
