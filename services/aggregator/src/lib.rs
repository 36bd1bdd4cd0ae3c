//! Aggregator: consumes resolved transactions from JetStream, one durable pull consumer per
//! owned shard, folds them into windows and commits each window to PostgreSQL exactly once
//! (fenced offsets in the same transaction), then acks. An outbox relay publishes aggregate
//! updates and cache invalidations after commit.

pub mod compact;
pub mod config;
pub mod consumer;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod flush;
pub mod metrics;
pub mod offsets;
pub mod outbox;
pub mod ownership;
pub mod recover;
pub mod retention;
pub mod window;

pub use config::AggregatorSettings;
pub use consumer::ShardExit;
pub use error::AggregatorError;

use altdata_common::connect;
use altdata_common::ops::Readiness;
use altdata_common::Shutdown;
use consumer::ShardContext;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How each owned shard ended.
#[derive(Debug, Default)]
pub struct AggregatorReport {
    pub shards: Vec<(u32, ShardExit)>,
}

/// Runs the aggregator until shutdown (or, with `until_idle`, until every owned shard has
/// caught up and the outbox is drained).
pub async fn run(
    settings: AggregatorSettings,
    shutdown: Shutdown,
) -> Result<AggregatorReport, AggregatorError> {
    let mut pool_settings = settings.connections.clone();
    // A connection per shard, one for the outbox relay, one for compaction, and one spare for
    // a shard reconnecting while its old connection is still held.
    pool_settings.database_pool_size = settings.shards.len() + 3;
    let pool = connect::postgres_pool(&pool_settings).await?;
    let client = connect::nats(&settings.connections.nats_url).await?;
    let jetstream = async_nats::jetstream::new(client);
    let subjects = settings.connections.subjects();
    connect::ensure_streams(&jetstream, &subjects, &settings.connections.streams).await?;

    let readiness = Readiness::default();
    if let Some(addr) = settings.ops_addr {
        let (readiness, shutdown) = (readiness.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = altdata_common::ops::serve_ops(addr, readiness, shutdown).await {
                tracing::error!(error = %error, "ops listener failed");
            }
        });
    }

    let relay_wake = Arc::new(Notify::new());
    let relay_shutdown = Shutdown::new();
    #[cfg(feature = "fault-injection")]
    let relay_enabled = !settings.faults.relay_disabled;
    #[cfg(not(feature = "fault-injection"))]
    let relay_enabled = true;
    let relay = relay_enabled.then(|| {
        tokio::spawn(outbox::run_relay(
            pool.clone(),
            jetstream.clone(),
            subjects.clone(),
            relay_wake.clone(),
            relay_shutdown.clone(),
        ))
    });

    let compaction = settings
        .compact_interval
        .map(|interval| tokio::spawn(compact::run(pool.clone(), interval, shutdown.clone())));

    let drain_timeout = settings.drain_timeout;
    let shards = settings.shards.clone();
    let context = Arc::new(ShardContext {
        settings: Arc::new(settings),
        pool: pool.clone(),
        jetstream,
        subjects,
        relay_wake,
    });
    let mut workers = tokio::task::JoinSet::new();
    for &shard in &shards {
        let (context, shutdown) = (context.clone(), shutdown.clone());
        workers.spawn(async move { (shard, consumer::run_shard(context, shard, shutdown).await) });
    }
    readiness.set(true);
    tracing::info!(shards = ?shards, "aggregator running");

    let mut report = AggregatorReport::default();
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((shard, Ok(ShardExit::Refused))) => {
                // A refused shard needs a person: the instance is no longer ready.
                readiness.set(false);
                report.shards.push((shard, ShardExit::Refused));
            }
            Ok((shard, Ok(exit))) => report.shards.push((shard, exit)),
            Ok((shard, Err(error))) => {
                // A shard nobody consumes while the process looks healthy would stall until
                // someone noticed: stop every shard (they drain and commit) and exit with the
                // error, so the supervisor restarts the instance and it takes the shard again.
                // `make cluster-test` found one: a consumer set-up timing out while the
                // stream's leader failed over.
                tracing::error!(shard, error = %error, "shard worker failed; stopping the instance");
                readiness.set(false);
                shutdown.trigger();
                first_error.get_or_insert(error);
            }
            Err(join_error) => tracing::error!(error = %join_error, "shard worker panicked"),
        }
    }
    readiness.set(false);
    if let Some(compaction) = compaction {
        // Answers are the same however far it got; a statement already sent finishes on the
        // server.
        compaction.abort();
    }
    // Every window is committed: let the relay publish what they wrote, then stop it.
    relay_shutdown.trigger();
    let relay = async move {
        match relay {
            Some(relay) => relay.await,
            None => Ok(Ok(())),
        }
    };
    match tokio::time::timeout(drain_timeout.max(Duration::from_secs(1)), relay).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => {
            tracing::warn!(error = %error, "outbox relay stopped with rows pending; they are published on the next start")
        }
        Ok(Err(join_error)) => tracing::error!(error = %join_error, "outbox relay panicked"),
        Err(_) => tracing::warn!(
            "outbox relay drain timed out; pending rows are published on the next start"
        ),
    }
    report.shards.sort_by_key(|(shard, _)| *shard);
    match first_error {
        Some(error) => Err(error),
        None => Ok(report),
    }
}
