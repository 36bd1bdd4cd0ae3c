//! The write path: the aggregator (windows folded in memory, one transaction per flush that
//! upserts the daily table and every rollup) against the original design's one autocommit
//! `INSERT … ON CONFLICT` per event into `agg_daily_merchant_spend` with `hll_add` of the
//! customer, on the same events (taken from the main end-to-end run's stream).

use crate::e2e::{applied_events, wait_for_consumers, Topology};
use crate::proc::{Role, ServerCpu, Usage};
use crate::sandbox::{Sandbox, StreamBudget};
use crate::stats::rate;
use crate::Bench;
use altdata_domain::epoch_days_to_date;
use altdata_proto::v1::{TransactionBatch, TransactionEvent};
use altdata_proto::Message;
use anyhow::{anyhow, bail, Context};
use async_nats::jetstream::{self, consumer, context::PublishAckFuture};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One event as it sits in the stream: its shard and its bytes.
pub type StreamEvent = (u32, Bytes);

#[derive(Debug, Clone, Serialize)]
pub struct BatchedRun {
    pub events: u64,
    /// From the aggregator's start until every event is applied.
    pub seconds: f64,
    pub events_per_s: f64,
    /// When the first commit was seen, after the start.
    pub first_commit_s: Option<f64>,
    /// From the first commit seen to the last: the write path's throughput once running.
    pub steady_events_per_s: Option<f64>,
    pub aggregator: Usage,
    pub postgres_cpu_s: f64,
    pub nats_cpu_s: f64,
    pub extra_env: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PerEventRun {
    pub events: u64,
    pub seconds: f64,
    pub events_per_s: f64,
    pub postgres_cpu_s: f64,
}

/// Reads up to `limit` events of a sandbox's transaction stream (no ack, ephemeral).
pub async fn read_events(
    bench: &Bench,
    sandbox: &Sandbox,
    limit: u64,
) -> anyhow::Result<Vec<StreamEvent>> {
    let mut stream = bench
        .js
        .get_stream(sandbox.subjects.txn_stream_of(0))
        .await
        .map_err(|e| anyhow!("stream: {e}"))?;
    let available = stream
        .info()
        .await
        .map_err(|e| anyhow!("stream info: {e}"))?
        .state
        .messages;
    // `available` counts messages (batches); `limit` counts events.
    let reader: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("reader consumer: {e}"))?;
    let mut messages = reader
        .stream()
        .max_messages_per_batch(5_000)
        .messages()
        .await
        .map_err(|e| anyhow!("pull: {e}"))?;
    let mut events = Vec::with_capacity(limit.min(10_000_000) as usize);
    let mut read = 0u64;
    while (events.len() as u64) < limit && read < available {
        read += 1;
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .context("reading the stream stalled")?
            .ok_or_else(|| anyhow!("reader ended"))?
            .map_err(|e| anyhow!("pull: {e}"))?;
        let Some(shard) = message
            .subject
            .rsplit('.')
            .next()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let batch = TransactionBatch::decode(message.payload.as_ref())
            .map_err(|e| anyhow!("a batch of the stream: {e}"))?;
        events.extend(
            batch
                .events
                .iter()
                .map(|event| (shard, Bytes::from(event.encode_to_vec()))),
        );
    }
    events.truncate(limit as usize);
    Ok(events)
}

/// Events per batch when the bench publishes: what a 1,024-row chunk of ingest gives each of
/// 16 shards.
pub const BATCH_EVENTS: usize = 64;

/// Publishes events into a sandbox's stream as ingest does (batches of one shard's events,
/// [`BATCH_EVENTS`] each), with a window of 4096 outstanding acks.
pub async fn publish_events(
    js: &jetstream::Context,
    sandbox: &Sandbox,
    events: &[StreamEvent],
    tag: &str,
) -> anyhow::Result<()> {
    let subjects: Vec<async_nats::Subject> = (0..1024)
        .map(|s| sandbox.subjects.txn_shard(s).into())
        .collect();
    let mut queue: VecDeque<PublishAckFuture> = VecDeque::with_capacity(4096);
    for (i, (shard, payload)) in batches(events).into_iter().enumerate() {
        while queue.len() >= 4096 {
            if let Some(ack) = queue.pop_front() {
                ack.await.map_err(|e| anyhow!("publish ack: {e}"))?;
            }
        }
        let message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(format!("{tag}:{i}"));
        queue.push_back(
            tokio::time::timeout(
                crate::limits::SEND_TIMEOUT,
                js.send_publish(subjects[shard as usize].clone(), message),
            )
            .await
            .map_err(|_| anyhow!("publish {i} stalled"))?
            .map_err(|e| anyhow!("publish: {e}"))?,
        );
    }
    while let Some(ack) = queue.pop_front() {
        ack.await.map_err(|e| anyhow!("publish ack: {e}"))?;
    }
    Ok(())
}

/// The events as ingest would publish them: per shard, in order, [`BATCH_EVENTS`] a batch.
fn batches(events: &[StreamEvent]) -> Vec<(u32, Bytes)> {
    let mut pending: std::collections::BTreeMap<u32, (Vec<u8>, usize)> = Default::default();
    let mut out = Vec::new();
    for (shard, event) in events {
        let (bytes, count) = pending.entry(*shard).or_default();
        if *count == 0 {
            altdata_proto::batch::start(bytes);
        }
        altdata_proto::batch::push_event(bytes, event);
        *count += 1;
        if *count == BATCH_EVENTS {
            out.push((*shard, Bytes::from(std::mem::take(bytes))));
            *count = 0;
        }
    }
    out.extend(
        pending
            .into_iter()
            .filter(|(_, (_, count))| *count > 0)
            .map(|(shard, (bytes, _))| (shard, Bytes::from(bytes))),
    );
    out
}

/// The aggregator alone over pre-published events: from its start until all are applied.
pub async fn batched(
    bench: &Bench,
    events: &[StreamEvent],
    shards: u32,
    extra_env: &[(String, String)],
) -> anyhow::Result<BatchedRun> {
    let sandbox = Sandbox::create(
        "write-batched",
        &bench.servers,
        StreamBudget::for_events(events.len() as u64),
        true,
    )
    .await?;
    let outcome = batched_in(bench, &sandbox, events, shards, extra_env).await;
    sandbox.cleanup().await;
    outcome
}

async fn batched_in(
    bench: &Bench,
    sandbox: &Sandbox,
    events: &[StreamEvent],
    shards: u32,
    extra_env: &[(String, String)],
) -> anyhow::Result<BatchedRun> {
    sandbox.ensure_streams(&bench.js).await?;
    publish_events(&bench.js, sandbox, events, "wp").await?;
    let client = sandbox.client().await?;
    let mut env = sandbox.child_env(shards);
    env.extend(extra_env.iter().cloned());
    let target = events.len() as u64;
    let cpu_before = ServerCpu::sample(&bench.nats_pids);
    let started = Instant::now();
    let aggregator = Role::spawn(
        &bench.binary,
        "write-batched-aggregate",
        &["aggregate".to_owned()],
        &env,
        &bench.log_dir,
    )?;
    wait_for_consumers(
        bench,
        sandbox,
        shards,
        Topology::default(),
        std::slice::from_ref(&aggregator),
    )
    .await?;
    let deadline = started + Duration::from_secs(60).max(Duration::from_secs(target / 1_000));
    // The first commit seen: the steady rate runs from it to the last.
    let mut first_commit: Option<(Instant, u64)> = None;
    let finished = loop {
        let applied = applied_events(&client).await?;
        if applied > 0 && first_commit.is_none() {
            first_commit = Some((Instant::now(), applied));
        }
        if applied >= target {
            break Instant::now();
        }
        if aggregator.has_exited() {
            bail!("the aggregator exited early:\n{}", aggregator.log_tail(20));
        }
        if Instant::now() >= deadline {
            bail!(
                "the aggregator applied {} of {target} within {:?}",
                applied_events(&client).await?,
                deadline - started
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cpu = ServerCpu::sample(&bench.nats_pids).since(&cpu_before);
    let aggregator = aggregator.stop(Duration::from_secs(60)).await?;
    let steady_events_per_s = first_commit
        .filter(|(at, applied)| *at < finished && *applied < target)
        .map(|(at, applied)| rate(target - applied, finished - at));
    Ok(BatchedRun {
        events: target,
        seconds: (finished - started).as_secs_f64(),
        events_per_s: rate(target, finished - started),
        first_commit_s: first_commit.map(|(at, _)| (at - started).as_secs_f64()),
        steady_events_per_s,
        aggregator,
        postgres_cpu_s: cpu.postgres_s,
        nats_cpu_s: cpu.nats_s,
        extra_env: extra_env.to_vec(),
    })
}

const PER_EVENT_UPSERT: &str = "
INSERT INTO agg_daily_merchant_spend AS t
    (merchant_id, region, metric_date, total_spend_cents, transaction_count, refund_cents,
     refund_count, customers)
VALUES ($1, $2, $3, $4, $5, $6, $7, hll_add(hll_empty(), hll_hash_bigint($8)))
ON CONFLICT (merchant_id, region, metric_date) DO UPDATE SET
    total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
    transaction_count = t.transaction_count + excluded.transaction_count,
    refund_cents = t.refund_cents + excluded.refund_cents,
    refund_count = t.refund_count + excluded.refund_count,
    customers = hll_add(t.customers, hll_hash_bigint($8)),
    updated_at = now()";

fn region_of(region: &str) -> String {
    match region.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => region.to_ascii_uppercase(),
        _ => "XX".to_owned(),
    }
}

/// The original design: one autocommit upsert per event, sequential, one connection.
pub async fn per_event(bench: &Bench, events: &[StreamEvent]) -> anyhow::Result<PerEventRun> {
    let sandbox = Sandbox::create(
        "write-per-event",
        &bench.servers,
        StreamBudget::for_events(1_000),
        true,
    )
    .await?;
    let outcome = per_event_in(bench, &sandbox, events).await;
    sandbox.cleanup().await;
    outcome
}

async fn per_event_in(
    bench: &Bench,
    sandbox: &Sandbox,
    events: &[StreamEvent],
) -> anyhow::Result<PerEventRun> {
    let decoded: Vec<TransactionEvent> = events
        .iter()
        .filter_map(|(_, payload)| TransactionEvent::decode(payload.as_ref()).ok())
        .collect();
    let client = sandbox.client().await?;
    let (Some(first), Some(last)) = (
        decoded.iter().map(|e| e.metric_date).min(),
        decoded.iter().map(|e| e.metric_date).max(),
    ) else {
        bail!("no events for the per-event write path");
    };
    // Partitions are DDL made ahead in production too; not part of the measurement.
    client
        .execute(
            "SELECT ensure_daily_partitions($1, $2)",
            &[&epoch_days_to_date(first), &epoch_days_to_date(last)],
        )
        .await?;
    let statement = client.prepare(PER_EVENT_UPSERT).await?;
    let cpu_before = ServerCpu::sample(&bench.nats_pids);
    let started = Instant::now();
    for event in &decoded {
        let (gross, sales, refund, refunds) = if event.amount_cents < 0 {
            (0i64, 0i64, -event.amount_cents, 1i64)
        } else {
            (event.amount_cents, 1, 0, 0)
        };
        client
            .execute(
                &statement,
                &[
                    &event.merchant_id,
                    &region_of(&event.region),
                    &epoch_days_to_date(event.metric_date),
                    &gross,
                    &sales,
                    &refund,
                    &refunds,
                    &(event.customer_key as i64),
                ],
            )
            .await?;
    }
    let elapsed = started.elapsed();
    let cpu = ServerCpu::sample(&bench.nats_pids).since(&cpu_before);
    Ok(PerEventRun {
        events: decoded.len() as u64,
        seconds: elapsed.as_secs_f64(),
        events_per_s: rate(decoded.len() as u64, elapsed),
        postgres_cpu_s: cpu.postgres_s,
    })
}
