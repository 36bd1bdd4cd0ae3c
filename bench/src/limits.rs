//! The ceilings the pipeline is compared with: bare JetStream (publish with `Nats-Msg-Id`
//! and a window of outstanding acks, consumed at the same time by a pull consumer that acks)
//! and CSV parsing (the csv crate's `ByteRecord` over the generated files).

use crate::events::{encode, EventMaker};
use crate::sandbox::{Sandbox, Servers, StreamBudget};
use crate::stats::rate;
use anyhow::{anyhow, Context};
use async_nats::jetstream::{self, consumer, context::PublishAckFuture, stream};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct JetStreamLimit {
    pub messages: u64,
    pub payload_bytes: usize,
    pub publish_window: usize,
    pub subjects: u32,
    /// Publisher and consumer running together: messages / time until the consumer has all.
    pub together_msgs_per_s: f64,
    /// Messages / time until the publisher had every ack (while the consumer ran).
    pub publish_msgs_per_s: f64,
    pub consumer: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishOnly {
    pub publish_window: usize,
    pub messages: u64,
    pub msgs_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CsvLimit {
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_s: f64,
    pub mb_per_s: f64,
    /// Rows of each file, in the order given (for choosing subsets of a size).
    #[serde(skip)]
    pub per_file_rows: Vec<u64>,
}

const PULL_BATCH: usize = 2_000;
/// A JetStream context for publishing. async-nats bounds acks in flight per context with a
/// semaphore of 5,000 permits; inside this process that bound was once exhausted after
/// exactly 5,000 awaited publishes (not reproducible in a small program), so the bench's
/// publishers take a bound far above any window they use; the windows themselves are ours.
pub fn publisher(client: async_nats::Client) -> jetstream::Context {
    jetstream::context::ContextBuilder::new()
        .max_ack_inflight(1 << 22)
        .build(client)
}

/// A publish that cannot even be sent within this is a stall, reported rather than waited on.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

fn payloads(count: usize) -> Vec<Bytes> {
    let mut rng = rand::thread_rng();
    let mut maker = EventMaker::new((1..=3_216).collect(), 20_400, 28, "L");
    (0..count)
        .map(|_| encode(&maker.next(&mut rng).0))
        .collect()
}

async fn limits_stream(
    js: &jetstream::Context,
    sandbox: &Sandbox,
) -> anyhow::Result<jetstream::stream::Stream> {
    js.create_stream(stream::Config {
        name: sandbox.prefix.stream("LIMITS"),
        subjects: vec![sandbox.prefix.subject("limits.>")],
        storage: stream::StorageType::File,
        max_bytes: sandbox.budget.txn_mb * 1024 * 1024,
        duplicate_window: Duration::from_secs(120),
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow!("create the limits stream: {e}"))
}

/// Publishes `messages` with a window of `window` outstanding acks over 16 subjects; returns
/// when every ack is in.
async fn publish_all(
    js: &jetstream::Context,
    sandbox: &Sandbox,
    messages: u64,
    window: usize,
    payloads: &[Bytes],
) -> anyhow::Result<Instant> {
    let subjects: Vec<async_nats::Subject> = (0..16)
        .map(|s| sandbox.prefix.subject(&format!("limits.{s}")).into())
        .collect();
    let mut queue: VecDeque<PublishAckFuture> = VecDeque::with_capacity(window);
    for i in 0..messages {
        while queue.len() >= window {
            if let Some(ack) = queue.pop_front() {
                ack.await.map_err(|e| anyhow!("publish ack: {e}"))?;
            }
        }
        let message = jetstream::message::PublishMessage::build()
            .payload(payloads[i as usize % payloads.len()].clone())
            .message_id(format!("bench:{i}"));
        let ack = tokio::time::timeout(
            SEND_TIMEOUT,
            js.send_publish(subjects[(i % 16) as usize].clone(), message),
        )
        .await
        .map_err(|_| anyhow!("publish {i} of {messages} stalled for {SEND_TIMEOUT:?}"))?
        .map_err(|e| anyhow!("publish: {e}"))?;
        queue.push_back(ack);
    }
    while let Some(ack) = queue.pop_front() {
        ack.await.map_err(|e| anyhow!("publish ack: {e}"))?;
    }
    Ok(Instant::now())
}

/// Bare JetStream: publish and consume together.
pub async fn jetstream_limit(
    servers: &Servers,
    messages: u64,
    window: usize,
) -> anyhow::Result<JetStreamLimit> {
    let sandbox = Sandbox::create(
        "jetstream-limit",
        servers,
        StreamBudget::for_events(messages),
        false,
    )
    .await?;
    let result = jetstream_limit_in(&sandbox, servers, messages, window).await;
    sandbox.cleanup().await;
    result
}

async fn jetstream_limit_in(
    sandbox: &Sandbox,
    servers: &Servers,
    messages: u64,
    window: usize,
) -> anyhow::Result<JetStreamLimit> {
    let publisher = altdata_common::connect::nats(&servers.nats_url).await?;
    let subscriber = altdata_common::connect::nats(&servers.nats_url).await?;
    let js = self::publisher(publisher);
    let js_sub = jetstream::new(subscriber);
    limits_stream(&js, sandbox).await?;
    // The consumer lives on its own connection, as it would in its own process.
    let stream = js_sub
        .get_stream(sandbox.prefix.stream("LIMITS"))
        .await
        .map_err(|e| anyhow!("stream: {e}"))?;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("limits".to_owned()),
            ack_policy: consumer::AckPolicy::All,
            max_ack_pending: 60_000,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("consumer: {e}"))?;
    let payloads = payloads(4_096);
    let payload_bytes = payloads.iter().map(Bytes::len).sum::<usize>() / payloads.len();

    let started = Instant::now();
    let consume = tokio::spawn(async move {
        let mut stream = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .messages()
            .await
            .map_err(|e| anyhow!("pull: {e}"))?;
        let mut received = 0u64;
        while received < messages {
            let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .context("no message for 30s")?
                .ok_or_else(|| anyhow!("pull stream ended"))?
                .map_err(|e| anyhow!("pull: {e}"))?;
            received += 1;
            // AckAll, one ack per pull batch: what the aggregator does after each commit.
            if received.is_multiple_of(PULL_BATCH as u64) || received == messages {
                message.ack().await.map_err(|e| anyhow!("ack: {e}"))?;
            }
        }
        anyhow::Ok(Instant::now())
    });
    let published = publish_all(&js, sandbox, messages, window, &payloads).await?;
    let consumed = consume.await.map_err(|e| anyhow!("consumer task: {e}"))??;
    Ok(JetStreamLimit {
        messages,
        payload_bytes,
        publish_window: window,
        subjects: 16,
        together_msgs_per_s: rate(messages, consumed - started),
        publish_msgs_per_s: rate(messages, published - started),
        consumer: format!("durable pull, AckPolicy::All, batch {PULL_BATCH}, ack per batch"),
    })
}

/// Publish alone (no consumer) at several windows: the ingest publish window's effect.
pub async fn publish_window_sweep(
    servers: &Servers,
    messages: u64,
    windows: &[usize],
) -> anyhow::Result<Vec<PublishOnly>> {
    let mut results = Vec::new();
    let payloads = payloads(4_096);
    for &window in windows {
        let sandbox = Sandbox::create(
            "publish-window",
            servers,
            StreamBudget::for_events(messages),
            false,
        )
        .await?;
        let outcome = async {
            let client = altdata_common::connect::nats(&servers.nats_url).await?;
            let js = publisher(client);
            limits_stream(&js, &sandbox).await?;
            let started = Instant::now();
            let done = publish_all(&js, &sandbox, messages, window, &payloads).await?;
            anyhow::Ok(PublishOnly {
                publish_window: window,
                messages,
                msgs_per_s: rate(messages, done - started),
            })
        }
        .await;
        sandbox.cleanup().await;
        results.push(outcome?);
    }
    Ok(results)
}

/// CSV parse: every generated file through `csv::Reader::read_byte_record`, one thread.
pub async fn csv_limit(files: Vec<PathBuf>) -> anyhow::Result<CsvLimit> {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let (mut rows, mut bytes) = (0u64, 0u64);
        let mut per_file_rows = Vec::with_capacity(files.len());
        let mut record = csv::ByteRecord::new();
        for file in &files {
            bytes += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .from_path(file)
                .with_context(|| format!("{}", file.display()))?;
            let before = rows;
            while reader.read_byte_record(&mut record)? {
                rows += 1;
            }
            per_file_rows.push(rows - before);
        }
        let elapsed = started.elapsed();
        Ok(CsvLimit {
            files: files.len(),
            rows,
            bytes,
            seconds: elapsed.as_secs_f64(),
            rows_per_s: rate(rows, elapsed),
            mb_per_s: bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9),
            per_file_rows,
        })
    })
    .await
    .map_err(|e| anyhow!("csv task: {e}"))?
}
