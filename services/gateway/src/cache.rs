//! The answer cache in Redis, keyed by canonical query and by generation counters.
//!
//! Every answer depends on two generation counters: `<prefix>:{flush}:gen` (bumped by an
//! admin flush) and the counter of its dependency, `<prefix>:{all}:gen`,
//! `<prefix>:{category:<c>}:gen` or `<prefix>:{merchant:<id>}:gen`. A cached answer lives
//! beside its dependency's counter, at `<prefix>:{<dependency>}:q:<sha256 of the canonical
//! query>:<fingerprint>`, where the fingerprint is the value of both counters. The invalidator
//! bumps the counters a change touches, so the next lookup computes a different key and
//! misses; old entries are never served again and expire by TTL. Because the counters are
//! read *before* the answer is computed, an answer computed from old data is stored under the
//! old fingerprint and cannot shadow a newer one.
//!
//! The `{...}` is a Redis Cluster hash tag: a dependency's counter and its answers share a
//! slot, so they live on one node and are lost together if that node restarts empty (a
//! counter back at zero never meets an answer it already invalidated), while different
//! dependencies spread over the cluster. No command spans two slots: the two counters are
//! read with two GETs in one pipeline, never one MGET. A single Redis ignores the tags.
//!
//! Redis is optional: every failure degrades to "unavailable" (compute from PostgreSQL)
//! and is counted; none is an error for the caller.

use crate::metrics::Metrics;
use altdata_common::Prefix;
use altdata_domain::Category;
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// What the cache did for one answer; sent as `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// The client asked for a fresh answer (`Cache-Control: no-cache`), or the route is never
    /// cached.
    Bypass,
    /// Redis could not be used; the answer was computed from PostgreSQL.
    Unavailable,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
            CacheStatus::Unavailable => "unavailable",
        }
    }
}

/// The generation counter an answer depends on besides the flush counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    All,
    Category(Category),
    Merchant(i64),
}

/// A cached answer: its body (JSON) with when it was computed and how fresh its data was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub computed_at_ms: i64,
    pub data_as_of: Option<chrono::DateTime<chrono::Utc>>,
    pub body: serde_json::Value,
}

/// Where to look an answer up and store it: the key, fixed at lookup time.
#[derive(Debug, Clone)]
pub struct CacheSlot {
    pub key: String,
}

/// The Redis side of the cache.
#[derive(Clone)]
pub struct Cache {
    client: Option<fred::clients::Client>,
    prefix: Prefix,
    ttl: Duration,
    metrics: Metrics,
}

impl Cache {
    pub fn new(
        client: Option<fred::clients::Client>,
        prefix: Prefix,
        ttl: Duration,
        metrics: Metrics,
    ) -> Cache {
        Cache {
            client,
            prefix,
            ttl,
            metrics,
        }
    }

    /// The Redis client, for the invalidator.
    pub fn client(&self) -> Option<fred::clients::Client> {
        self.client.clone()
    }

    /// `<prefix>:{<dependency>}`: the hash-tagged start of the dependency's counter and of
    /// every answer that depends on it.
    fn dependency_tag(prefix: &Prefix, dependency: &Dependency) -> String {
        match dependency {
            Dependency::All => prefix.redis_key("{all}"),
            Dependency::Category(category) => {
                prefix.redis_key(&format!("{{category:{}}}", category.as_str()))
            }
            Dependency::Merchant(id) => prefix.redis_key(&format!("{{merchant:{id}}}")),
        }
    }

    pub fn generation_key(prefix: &Prefix, dependency: &Dependency) -> String {
        format!("{}:gen", Cache::dependency_tag(prefix, dependency))
    }

    pub fn flush_key(prefix: &Prefix) -> String {
        prefix.redis_key("{flush}:gen")
    }

    /// Where an answer to `canonical_query` computed at `fingerprint` is stored.
    pub fn answer_key(
        prefix: &Prefix,
        dependency: &Dependency,
        canonical_query: &str,
        fingerprint: &str,
    ) -> String {
        let digest = hex::encode(Sha256::digest(canonical_query.as_bytes()));
        format!(
            "{}:q:{digest}:{fingerprint}",
            Cache::dependency_tag(prefix, dependency)
        )
    }

    /// A connected client, or `None` (counted) when Redis is not usable right now.
    fn connected(&self) -> Option<&fred::clients::Client> {
        match &self.client {
            Some(client) if client.is_connected() => Some(client),
            _ => {
                self.metrics.cache_unavailable.increment(1);
                None
            }
        }
    }

    /// Reads the generations the answer depends on (two GETs, one round trip) and, unless
    /// `bypass`, the cached answer under the resulting key. `Err(())` means Redis is
    /// unavailable.
    pub async fn lookup(
        &self,
        canonical_query: &str,
        dependency: &Dependency,
        bypass: bool,
    ) -> Result<(CacheSlot, Option<CachedAnswer>), ()> {
        let client = self.connected().ok_or(())?;
        let generations = match self.generations(client, dependency).await {
            Ok(values) => values,
            Err(error) => {
                self.unavailable("read generations", &error);
                return Err(());
            }
        };
        let fingerprint = generations
            .iter()
            .map(|g| g.unwrap_or(0).to_string())
            .collect::<Vec<_>>()
            .join(".");
        let slot = CacheSlot {
            key: Cache::answer_key(&self.prefix, dependency, canonical_query, &fingerprint),
        };
        if bypass {
            return Ok((slot, None));
        }
        let cached: Option<String> = match client.get(&slot.key).await {
            Ok(value) => value,
            Err(error) => {
                self.unavailable("read an answer", &error);
                return Err(());
            }
        };
        let answer = cached.and_then(|text| match serde_json::from_str(&text) {
            Ok(answer) => Some(answer),
            Err(error) => {
                // Written by an older build, perhaps: treat as a miss and overwrite.
                tracing::warn!(error = %error, "unreadable cached answer ignored");
                None
            }
        });
        Ok((slot, answer))
    }

    /// The flush generation and the dependency's, in that order. They live in different
    /// slots (a Redis Cluster refuses an MGET across slots), so they are two GETs in one
    /// pipeline: one round trip, each routed to its node.
    async fn generations(
        &self,
        client: &fred::clients::Client,
        dependency: &Dependency,
    ) -> Result<Vec<Option<i64>>, fred::error::Error> {
        let pipeline = client.pipeline();
        let () = pipeline.get(Cache::flush_key(&self.prefix)).await?;
        let () = pipeline
            .get(Cache::generation_key(&self.prefix, dependency))
            .await?;
        pipeline.all().await
    }

    /// Stores an answer with the TTL backstop. Failures are logged and counted, never
    /// returned: the caller already has its answer.
    pub async fn store(&self, slot: &CacheSlot, answer: &CachedAnswer) {
        let Some(client) = self.connected() else {
            return;
        };
        let text = match serde_json::to_string(answer) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(error = %error, "cannot serialise an answer for the cache");
                return;
            }
        };
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX).max(1);
        let stored: Result<(), fred::error::Error> = client
            .set(&slot.key, text, Some(Expiration::EX(ttl)), None, false)
            .await;
        if let Err(error) = stored {
            self.unavailable("store an answer", &error);
        }
    }

    /// Makes every cached answer unreachable at once, by bumping the flush counter.
    pub async fn flush_all(&self) -> Result<i64, fred::error::Error> {
        let client = self.client.as_ref().ok_or_else(|| {
            fred::error::Error::new(fred::error::ErrorKind::Config, "no Redis client")
        })?;
        client.incr(Cache::flush_key(&self.prefix)).await
    }

    fn unavailable(&self, what: &str, error: &fred::error::Error) {
        self.metrics.cache_unavailable.increment(1);
        tracing::warn!(error = %error, "cannot {what} in Redis; answering from PostgreSQL");
    }
}
