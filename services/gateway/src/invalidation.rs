//! The cache invalidator: a durable JetStream pull consumer on `<PREFIX>_CACHE` that turns
//! every `CacheInvalidation` into generation bumps in Redis.
//!
//! One durable consumer (`gateway-cache-invalidator`) is shared by every gateway instance,
//! work-queue style: the cache lives in shared Redis, so each invalidation needs applying
//! once, by any instance, and none is missed while all instances are down (the consumer
//! remembers its position).
//!
//! Ack policy, per batch: decode every message; `Term` those that cannot be read (they never
//! will be); bump the union of their generation keys in one pipeline; ack only after Redis
//! confirmed the bumps. If Redis is down, nak with a delay so the server redelivers: an
//! invalidation is never dropped. Applying one twice only bumps a counter twice, which is
//! harmless.

use crate::cache::{Cache, Dependency};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use altdata_common::connect::{self, StreamLimits, Subjects};
use altdata_common::{Prefix, Shutdown};
use altdata_domain::Category;
use altdata_proto::v1::CacheInvalidation;
use altdata_proto::{Message, SCHEMA_VERSION};
use async_nats::jetstream::{self, consumer, AckKind};
use fred::prelude::*;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;

/// The durable consumer's name; shared by every gateway instance of a pipeline.
pub const CONSUMER_NAME: &str = "gateway-cache-invalidator";
/// Messages applied per Redis round trip, at most.
const BATCH: usize = 256;
/// How long the server waits before redelivering a nak'ed message.
const REDELIVERY_DELAY: Duration = Duration::from_secs(1);

/// The consumer, created (or found) at start so that nothing published after `build`
/// returns is missed.
pub struct Invalidator {
    consumer: consumer::PullConsumer,
}

impl Invalidator {
    pub async fn create(
        nats: &async_nats::Client,
        subjects: &Subjects,
        limits: &StreamLimits,
    ) -> Result<Invalidator, GatewayError> {
        let js = jetstream::new(nats.clone());
        let stream = match js.get_stream(subjects.cache_stream()).await {
            Ok(stream) => stream,
            Err(_) => {
                // Nobody made the streams yet (the gateway started first): make them with the
                // configured limits (ALTDATA_TXN_MAX_MB etc.), as ingest and the aggregator
                // would. An existing stream is left as its owner configured it.
                connect::ensure_streams(&js, subjects, limits).await?;
                js.get_stream(subjects.cache_stream())
                    .await
                    .map_err(|e| GatewayError::Consumer(e.to_string()))?
            }
        };
        let consumer = stream
            .get_or_create_consumer(
                CONSUMER_NAME,
                consumer::pull::Config {
                    durable_name: Some(CONSUMER_NAME.to_owned()),
                    description: Some("gateway: bumps Redis cache generations".to_owned()),
                    // A new consumer starts at the end: no cached answer can predate it,
                    // since answers are only cached by gateways, which create it first.
                    deliver_policy: consumer::DeliverPolicy::New,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 4 * BATCH as i64,
                    filter_subject: subjects.cache_invalidate(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| GatewayError::Consumer(e.to_string()))?;
        Ok(Invalidator { consumer })
    }

    /// Applies invalidations until shutdown. Transient failures are retried, never fatal.
    pub async fn run(
        self,
        writer: GenerationWriter,
        shutdown: Shutdown,
    ) -> Result<(), GatewayError> {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_triggered() {
            let messages = match self
                .consumer
                .stream()
                .max_messages_per_batch(BATCH)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
            {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot pull cache invalidations, retrying");
                    wait(&shutdown, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            let mut batches = messages.ready_chunks(BATCH);
            loop {
                let batch = tokio::select! {
                    batch = batches.next() => batch,
                    _ = shutdown.cancelled() => return Ok(()),
                };
                let Some(batch) = batch else {
                    break;
                };
                let mut received = Vec::with_capacity(batch.len());
                for item in batch {
                    match item {
                        Ok(message) => received.push(message),
                        Err(error) => {
                            tracing::warn!(error = %error, "cache invalidation pull error")
                        }
                    }
                }
                if !received.is_empty() {
                    apply_batch(&writer, received, &shutdown).await;
                }
            }
        }
        Ok(())
    }
}

/// Decode → bump → ack (or nak) for one batch.
async fn apply_batch(
    writer: &GenerationWriter,
    messages: Vec<jetstream::Message>,
    shutdown: &Shutdown,
) {
    let mut keys = BTreeSet::new();
    let mut readable = Vec::with_capacity(messages.len());
    for message in messages {
        match decode(&message.payload) {
            Ok(invalidation) => {
                keys.extend(generation_keys(&writer.prefix, &invalidation));
                if writer.moves_edges(invalidation.first_date, invalidation.last_date) {
                    keys.insert(Cache::flush_key(&writer.prefix));
                }
                readable.push(message);
            }
            Err(reason) => {
                writer.metrics.invalidations_rejected.increment(1);
                tracing::error!(subject = %message.subject, reason, "unreadable cache invalidation terminated");
                // Term: redelivering a message this build cannot read would never help.
                if let Err(error) = message.ack_with(AckKind::Term).await {
                    tracing::warn!(error = %error, "cannot terminate a cache invalidation");
                }
            }
        }
    }
    if readable.is_empty() {
        return;
    }
    match writer.bump(&keys).await {
        Ok(()) => {
            writer
                .metrics
                .invalidations_applied
                .increment(readable.len() as u64);
            // Ack only now: the generations are bumped, so the change is visible to every
            // lookup. A lost ack means a redelivery and a second, harmless bump.
            for message in readable {
                if let Err(error) = message.ack().await {
                    tracing::warn!(error = %error, "cannot ack a cache invalidation; it will be redelivered");
                }
            }
        }
        Err(error) => {
            writer.metrics.invalidation_failures.increment(1);
            tracing::warn!(error = %error, messages = readable.len(), "cannot bump cache generations; invalidations will be redelivered");
            for message in readable {
                let _ = message.ack_with(AckKind::Nak(Some(REDELIVERY_DELAY))).await;
            }
            wait(shutdown, REDELIVERY_DELAY).await;
        }
    }
}

fn decode(payload: &[u8]) -> Result<CacheInvalidation, String> {
    let invalidation = CacheInvalidation::decode(payload).map_err(|e| e.to_string())?;
    if invalidation.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "schema_version {} is not {SCHEMA_VERSION}",
            invalidation.schema_version
        ));
    }
    Ok(invalidation)
}

/// The cause of the invalidation `altdata disclosure --k` writes (`altdata_facts::set_disclosure_k`).
pub use altdata_facts::DISCLOSURE_CHANGED;

/// Every generation counter an invalidation bumps: all, each category, each merchant; and the
/// flush counter, which every cached answer depends on, when the disclosure rule's k changed.
pub fn generation_keys(prefix: &Prefix, invalidation: &CacheInvalidation) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    keys.insert(Cache::generation_key(prefix, &Dependency::All));
    if invalidation.cause == DISCLOSURE_CHANGED {
        keys.insert(Cache::flush_key(prefix));
    }
    for text in &invalidation.categories {
        match Category::parse(text) {
            Some(category) => {
                keys.insert(Cache::generation_key(
                    prefix,
                    &Dependency::Category(category),
                ));
            }
            None => tracing::warn!(category = %text, "unknown category in a cache invalidation"),
        }
    }
    for id in &invalidation.merchant_ids {
        keys.insert(Cache::generation_key(prefix, &Dependency::Merchant(*id)));
    }
    keys
}

/// Bumps generation counters in Redis.
#[derive(Clone)]
pub struct GenerationWriter {
    client: Option<fred::clients::Client>,
    prefix: Prefix,
    metrics: Metrics,
    edges: std::sync::Arc<std::sync::Mutex<PanelEdges>>,
}

/// The days with data as the invalidations this gateway applied have shown them. Every answer
/// says "no data" for days outside them (`query::coverage`), whatever its subject, so a change
/// that moves an edge (a new last day, a late earlier day) reaches every cached answer: the
/// flush counter is bumped. Unknown at start, so the first dated change bumps it too.
#[derive(Debug, Default)]
pub struct PanelEdges {
    known: Option<(i32, i32)>,
}

impl PanelEdges {
    /// Records a change over days `first..=last` (days since 1970; 0 = not dated); true when
    /// it moves an edge.
    pub fn extends(&mut self, first: i32, last: i32) -> bool {
        if first == 0 && last == 0 {
            return false;
        }
        match self.known {
            Some((known_first, known_last)) if first >= known_first && last <= known_last => false,
            Some((known_first, known_last)) => {
                self.known = Some((first.min(known_first), last.max(known_last)));
                true
            }
            None => {
                self.known = Some((first, last));
                true
            }
        }
    }
}

impl GenerationWriter {
    pub fn new(
        client: Option<fred::clients::Client>,
        prefix: Prefix,
        metrics: Metrics,
    ) -> GenerationWriter {
        GenerationWriter {
            client,
            prefix,
            metrics,
            edges: Default::default(),
        }
    }

    /// Whether a change over `first..=last` moves the edges of the days with data.
    fn moves_edges(&self, first: i32, last: i32) -> bool {
        self.edges
            .lock()
            .map(|mut edges| edges.extends(first, last))
            .unwrap_or(true)
    }

    /// INCRs every key in one pipeline (one round trip; in a Redis Cluster each INCR goes to
    /// the node of its key's slot).
    pub async fn bump(&self, keys: &BTreeSet<String>) -> Result<(), fred::error::Error> {
        let client = self
            .client
            .as_ref()
            .filter(|client| client.is_connected())
            .ok_or_else(|| {
                fred::error::Error::new(fred::error::ErrorKind::IO, "Redis is not connected")
            })?;
        let pipeline = client.pipeline();
        for key in keys {
            let () = pipeline.incr(key.as_str()).await?;
        }
        let _: Vec<i64> = pipeline.all().await?;
        Ok(())
    }
}

async fn wait(shutdown: &Shutdown, duration: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = shutdown.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalidation_bumps_all_its_categories_and_merchants() {
        let prefix = Prefix::parse("t").unwrap_or_default();
        let keys = generation_keys(
            &prefix,
            &CacheInvalidation {
                schema_version: SCHEMA_VERSION,
                merchant_ids: vec![7, 9],
                categories: vec!["coffee_shop".into(), "nonsense".into()],
                ..Default::default()
            },
        );
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "t:{all}:gen",
                "t:{category:coffee_shop}:gen",
                "t:{merchant:7}:gen",
                "t:{merchant:9}:gen"
            ]
        );
    }

    #[test]
    fn a_change_of_k_reaches_every_cached_answer() {
        let prefix = Prefix::parse("t").unwrap_or_default();
        let keys = generation_keys(
            &prefix,
            &CacheInvalidation {
                schema_version: SCHEMA_VERSION,
                cause: DISCLOSURE_CHANGED.to_owned(),
                ..Default::default()
            },
        );
        assert!(keys.contains(&Cache::flush_key(&prefix)), "{keys:?}");
    }

    #[test]
    fn a_change_that_moves_the_edges_of_the_data_reaches_every_answer() {
        let mut edges = PanelEdges::default();
        assert!(!edges.extends(0, 0), "an undated change moves nothing");
        assert!(edges.extends(20_000, 20_010), "the first dated change");
        assert!(!edges.extends(20_003, 20_010));
        assert!(edges.extends(20_010, 20_011), "a new last day");
        assert!(edges.extends(19_990, 19_995), "a late earlier day");
        assert!(!edges.extends(19_990, 20_011));
    }

    #[test]
    fn other_schema_versions_are_refused() {
        let bytes = CacheInvalidation {
            schema_version: 99,
            ..Default::default()
        }
        .encode_to_vec();
        assert!(decode(&bytes).is_err());
        assert!(decode(b"\xff\xff\xff").is_err());
    }
}
