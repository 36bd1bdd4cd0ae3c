//! Token buckets: requests per key ([`RateLimiter`]) and failed authentications per client
//! address ([`AuthFailureLimiter`]).
//!
//! Hand-written rather than `governor`: a failure-limit token is taken before the database
//! lookup (so that concurrent guesses cannot all pass a check before any is counted) and
//! given back when the lookup accepts the key, and governor's keyed limiter cannot give
//! back; its keyed store also grows without bound unless swept. Here the number of buckets
//! is bounded: a full bucket is the same as a new one, so full buckets are forgotten, and
//! past the bound the rest share one overflow bucket.

use super::client::ClientAddress;
use crate::config::{AuthFailureLimit, RateLimit};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept per limiter before full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;
/// How often, at most, a limiter at its bound sweeps out its full buckets.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A token bucket per API key: `per_second` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: TokenBuckets<i64>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            buckets: TokenBuckets::new(limit.per_second, limit.burst),
        }
    }

    /// Takes a token for `key_id`, or says how long until one is available.
    pub fn check(&self, key_id: i64) -> Result<(), Duration> {
        self.buckets.take(key_id, Instant::now())
    }
}

/// Failed authentications per client address: `per_minute` of them, then 429 until the
/// bucket refills. Each lookup of a key not known valid reserves a token, and gets it back
/// when the key is accepted: only refusals spend. Keys known valid are not checked against
/// it, so a client behind the same address as an attacker keeps working with its key.
#[derive(Debug)]
pub struct AuthFailureLimiter {
    buckets: TokenBuckets<ClientAddress>,
}

impl AuthFailureLimiter {
    pub fn new(limit: AuthFailureLimit) -> AuthFailureLimiter {
        let per_minute = f64::from(limit.per_minute);
        AuthFailureLimiter {
            buckets: TokenBuckets::new(per_minute / 60.0, per_minute),
        }
    }

    /// Reserves one failure of `client`'s budget for a lookup, or says how long to wait.
    pub fn reserve(&self, client: ClientAddress) -> Result<(), Duration> {
        self.buckets.take(client, Instant::now())
    }

    /// Gives back a reservation: the lookup did not refuse the key.
    pub fn release(&self, client: ClientAddress) {
        self.buckets.give_back(client, Instant::now());
    }
}

/// Token buckets by key, bounded in number.
#[derive(Debug)]
struct TokenBuckets<K> {
    per_second: f64,
    burst: f64,
    state: Mutex<Buckets<K>>,
}

#[derive(Debug)]
struct Buckets<K> {
    by_key: HashMap<K, Bucket>,
    /// Shared by every key that arrives while `by_key` is at its bound.
    overflow: Bucket,
    last_sweep: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Copy> TokenBuckets<K> {
    fn new(per_second: f64, burst: f64) -> TokenBuckets<K> {
        TokenBuckets {
            per_second,
            burst,
            state: Mutex::new(Buckets {
                by_key: HashMap::new(),
                overflow: Bucket {
                    tokens: burst,
                    at: Instant::now(),
                },
                last_sweep: None,
            }),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        self.with_bucket(key, now, |bucket| {
            let wait = self.wait(bucket);
            if wait.is_ok() {
                bucket.tokens -= 1.0;
            }
            wait
        })
    }

    /// Returns a token taken by [`TokenBuckets::take`].
    fn give_back(&self, key: K, now: Instant) {
        let _ = self.with_bucket(key, now, |bucket| {
            bucket.tokens = (bucket.tokens + 1.0).min(self.burst);
            Ok::<(), ()>(())
        });
    }

    fn wait(&self, bucket: &Bucket) -> Result<(), Duration> {
        if bucket.tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    /// Runs `use_bucket` on `key`'s bucket, refilled up to `now`.
    fn with_bucket<T>(
        &self,
        key: K,
        now: Instant,
        use_bucket: impl FnOnce(&mut Bucket) -> Result<(), T>,
    ) -> Result<(), T> {
        // A poisoned lock means a panic elsewhere; limiting nothing beats failing every request.
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        if !state.by_key.contains_key(&key) && state.by_key.len() >= MAX_BUCKETS {
            self.sweep(&mut state, now);
        }
        let fresh = Bucket {
            tokens: self.burst,
            at: now,
        };
        let bucket = if state.by_key.len() < MAX_BUCKETS || state.by_key.contains_key(&key) {
            state.by_key.entry(key).or_insert(fresh)
        } else {
            &mut state.overflow
        };
        self.refill(bucket, now);
        use_bucket(bucket)
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
    }

    /// Forgets the buckets that have refilled: they are the same as new ones.
    fn sweep(&self, state: &mut Buckets<K>, now: Instant) {
        if state
            .last_sweep
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return;
        }
        state.last_sweep = Some(now);
        let (per_second, burst) = (self.per_second, self.burst);
        state.by_key.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens + elapsed * per_second < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn the_bucket_allows_a_burst_then_refills_at_the_rate() {
        let buckets = TokenBuckets::new(2.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take(1, start).is_ok());
        }
        let wait = buckets.take(1, start).err().unwrap_or_default();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(
            buckets.take(2, start).is_ok(),
            "keys have their own buckets"
        );
        assert!(buckets.take(1, start + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn a_token_given_back_can_be_taken_again() {
        let buckets = TokenBuckets::new(1.0, 1.0);
        let now = Instant::now();
        for _ in 0..5 {
            assert!(buckets.take(7, now).is_ok());
            buckets.give_back(7, now);
        }
        assert!(buckets.take(7, now).is_ok());
        assert!(buckets.take(7, now).is_err());
    }

    #[test]
    fn past_the_bound_full_buckets_are_forgotten_and_the_rest_share_one() {
        let buckets = TokenBuckets::new(1.0, 2.0);
        let start = Instant::now();
        for key in 0..MAX_BUCKETS as u64 {
            let _ = buckets.take(key, start);
        }
        // Every bucket is spent: a newcomer shares the overflow bucket.
        assert!(buckets.take(u64::MAX, start).is_ok());
        assert!(buckets.take(u64::MAX - 1, start).is_ok());
        assert!(buckets.take(u64::MAX - 2, start).is_err());
        // Refilled buckets are swept out, so the next newcomer gets its own.
        let later = start + Duration::from_secs(10);
        assert!(buckets.take(u64::MAX - 3, later).is_ok());
        let state = buckets.state.lock().map(|s| s.by_key.len()).unwrap_or(0);
        assert_eq!(state, 1);
    }

    #[test]
    fn failures_are_limited_per_address() {
        let limiter = AuthFailureLimiter::new(AuthFailureLimit { per_minute: 3 });
        let attacker = ClientAddress::from_ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let other = ClientAddress::from_ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        // Accepted lookups cost nothing.
        for _ in 0..10 {
            assert!(limiter.reserve(attacker).is_ok());
            limiter.release(attacker);
        }
        for _ in 0..3 {
            assert!(limiter.reserve(attacker).is_ok());
        }
        let wait = limiter.reserve(attacker).err().unwrap_or_default();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert!(limiter.reserve(other).is_ok());
    }
}
