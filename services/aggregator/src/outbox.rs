//! The outbox relay: publishes rows written by flushes (and by review decisions) to
//! JetStream, then marks them published. A crash between commit and publish loses nothing:
//! the row is still pending and is published on restart; `Nats-Msg-Id` (the outbox id) makes
//! a publish repeated after a crash between publish and mark harmless.

use crate::error::AggregatorError;
use altdata_common::connect::Subjects;
use altdata_common::Shutdown;
use altdata_proto::v1::AggregateUpdateBatch;
use altdata_proto::Message;
use async_nats::jetstream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Rows published per relay transaction.
const RELAY_BATCH: i64 = 64;
/// Publishes awaiting acknowledgement at once. The client refuses (and blocks) past its own
/// in-flight limit of 5,000, and one flush's row can hold thousands of updates.
const MAX_IN_FLIGHT: usize = 1_024;

/// How often the relay measures what is still waiting to be published.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(15);

/// Publishes pending outbox rows until shutdown; on shutdown, drains what is left (bounded by
/// the caller's drain timeout).
pub async fn run_relay(
    pool: deadpool_postgres::Pool,
    jetstream: jetstream::Context,
    subjects: Subjects,
    wake: Arc<Notify>,
    shutdown: Shutdown,
) -> Result<(), AggregatorError> {
    let published = metrics::counter!("altdata_outbox_published_total");
    let mut backlog = Backlog::new();
    let mut backoff = Duration::from_millis(200);
    loop {
        backlog.measure_if_due(&pool).await;
        match relay_once(&pool, &jetstream, &subjects).await {
            Ok(0) => {
                backoff = Duration::from_millis(200);
                if shutdown.is_triggered() {
                    return Ok(());
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            Ok(rows) => published.increment(rows as u64),
            Err(error) => {
                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "outbox relay failed, retrying");
                if shutdown.is_triggered() {
                    return Err(error);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The rows not yet published and the age of the oldest: `altdata_outbox_pending_rows` and
/// `altdata_outbox_oldest_pending_seconds` (the AltdataOutboxBacklog alert). Measured on its
/// own schedule, whatever the relay's attempts do, so a relay that keeps failing still
/// reports a growing backlog. Every replica reports the same table: alerts take the max.
struct Backlog {
    pending_rows: metrics::Gauge,
    oldest_pending_seconds: metrics::Gauge,
    last: Option<tokio::time::Instant>,
}

impl Backlog {
    fn new() -> Backlog {
        Backlog {
            pending_rows: metrics::gauge!("altdata_outbox_pending_rows"),
            oldest_pending_seconds: metrics::gauge!("altdata_outbox_oldest_pending_seconds"),
            last: None,
        }
    }

    async fn measure_if_due(&mut self, pool: &deadpool_postgres::Pool) {
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < BACKLOG_INTERVAL)
        {
            return;
        }
        self.last = Some(now);
        match pending(pool).await {
            Ok((rows, oldest_seconds)) => {
                self.pending_rows.set(rows as f64);
                self.oldest_pending_seconds.set(oldest_seconds);
            }
            Err(error) => tracing::debug!(error = %error, "cannot measure the outbox backlog"),
        }
    }
}

/// Pending rows and the age in seconds of the oldest (ids grow with time; the partial index
/// `outbox_pending` holds exactly these rows).
async fn pending(pool: &deadpool_postgres::Pool) -> Result<(i64, f64), AggregatorError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT count(*),
                    coalesce(extract(epoch FROM now() - (
                        SELECT created_at FROM outbox WHERE published_at IS NULL
                        ORDER BY id LIMIT 1)), 0)::float8
             FROM outbox WHERE published_at IS NULL",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Publishes one batch of pending rows; returns how many rows it published.
pub async fn relay_once(
    pool: &deadpool_postgres::Pool,
    jetstream: &jetstream::Context,
    subjects: &Subjects,
) -> Result<usize, AggregatorError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    // SKIP LOCKED lets several relays (one per aggregator replica) share the table.
    let rows = transaction
        .query(
            "SELECT id, kind, payload FROM outbox WHERE published_at IS NULL
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[&RELAY_BATCH],
        )
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let relay_error = |e: &dyn std::fmt::Display| AggregatorError::Relay(e.to_string());
    let mut acks = Vec::new();
    let mut ids = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.get(0);
        let kind: &str = row.get(1);
        let payload: &[u8] = row.get(2);
        ids.push(id);
        match kind {
            "cache_invalidation" => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("outbox-{id}").as_str());
                let ack = jetstream
                    .publish_with_headers(
                        subjects.cache_invalidate(),
                        headers,
                        payload.to_vec().into(),
                    )
                    .await
                    .map_err(|e| relay_error(&e))?;
                acks.push(ack);
            }
            "aggregate_updates" => {
                let batch = match AggregateUpdateBatch::decode(payload) {
                    Ok(batch) => batch,
                    Err(error) => {
                        // Written by this code base; if it cannot be read, say so loudly and
                        // move on rather than block every later row.
                        tracing::error!(outbox_id = id, error = %error, "undecodable outbox row skipped");
                        continue;
                    }
                };
                for (index, update) in batch.updates.iter().enumerate() {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", format!("outbox-{id}-{index}").as_str());
                    let ack = jetstream
                        .publish_with_headers(
                            subjects.agg_daily(update.merchant_id),
                            headers,
                            update.encode_to_vec().into(),
                        )
                        .await
                        .map_err(|e| relay_error(&e))?;
                    acks.push(ack);
                    if acks.len() >= MAX_IN_FLIGHT {
                        settle(&mut acks).await?;
                    }
                }
            }
            other => tracing::error!(outbox_id = id, kind = other, "unknown outbox kind skipped"),
        }
    }
    settle(&mut acks).await?;
    transaction
        .execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    transaction.commit().await?;
    Ok(ids.len())
}

/// Waits for every outstanding publish acknowledgement.
async fn settle(
    acks: &mut Vec<jetstream::context::PublishAckFuture>,
) -> Result<(), AggregatorError> {
    for ack in acks.drain(..) {
        ack.await
            .map_err(|e| AggregatorError::Relay(e.to_string()))?;
    }
    Ok(())
}

/// Deletes rows published more than `keep` ago, so the table stays small.
pub async fn prune(pool: &deadpool_postgres::Pool, keep: Duration) -> Result<u64, AggregatorError> {
    let client = pool.get().await?;
    let seconds = keep.as_secs_f64();
    Ok(client
        .execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            &[&seconds],
        )
        .await?)
}
