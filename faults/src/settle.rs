//! After the faults stop: wait (with a deadline) until the pipeline has caught up. Every file
//! done (the hostile provider's failing files failed), every shard's stored offset at the end of its subject, the outbox published, the
//! gateway's invalidator caught up, every poison message dead-lettered.

use crate::harness::Harness;
use crate::pipeline::SHARDS;
use anyhow::Context;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Status {
    pub files_done: i64,
    pub files_failed: i64,
    /// Files neither done nor failed.
    pub files_other: Vec<String>,
    /// (shard, stored offset, last sequence on its subject) where stored < last.
    pub shards_behind: Vec<(u32, i64, u64)>,
    pub outbox_pending: i64,
    pub invalidations_pending: u64,
    pub dlq: u64,
}

impl Status {
    fn done(&self, files: Files, poison: usize) -> bool {
        self.files_done == files.done as i64
            && self.files_failed == files.failed as i64
            && self.files_other.is_empty()
            && self.shards_behind.is_empty()
            && self.outbox_pending == 0
            && self.invalidations_pending == 0
            && self.dlq >= poison as u64
    }

    fn describe(&self, files: Files, poison: usize) -> String {
        format!(
            "files done {}/{}, failed {}/{} (others: {:?}); shards behind (shard, stored, stream last): {:?}; \
             outbox pending {}; invalidations pending {}; DLQ {}/{poison}",
            self.files_done,
            files.done,
            self.files_failed,
            files.failed,
            self.files_other,
            self.shards_behind,
            self.outbox_pending,
            self.invalidations_pending,
            self.dlq
        )
    }
}

/// How many files must end done, and failed.
#[derive(Debug, Clone, Copy)]
pub struct Files {
    pub done: usize,
    pub failed: usize,
}

pub async fn status(harness: &Harness) -> anyhow::Result<Status> {
    let db = harness.db().await?;
    let mut status = Status::default();
    for row in db
        .query(
            "SELECT status, path, count(*) OVER (PARTITION BY status) FROM ingest_files",
            &[],
        )
        .await?
    {
        let state: String = row.get(0);
        if state == "done" {
            status.files_done = row.get(2);
        } else if state == "failed" {
            status.files_failed = row.get(2);
        } else {
            status
                .files_other
                .push(format!("{} ({state})", row.get::<_, String>(1)));
        }
    }
    let offsets: std::collections::HashMap<i32, i64> = db
        .query("SELECT shard, stream_seq FROM shard_offsets", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let prefix = &harness.pipeline.prefix;
    for shard in 0..SHARDS {
        let subject = format!("{prefix}.txn.v1.{shard}");
        let stream = stream_of(harness, &subject).await?;
        let last = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message.sequence,
            Err(error)
                if error.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                0
            }
            Err(error) => return Err(error).context("last message of a shard"),
        };
        let stored = offsets.get(&(shard as i32)).copied().unwrap_or(0);
        if (stored as u64) < last {
            status.shards_behind.push((shard, stored, last));
        }
    }
    status.outbox_pending = db
        .query_one(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL",
            &[],
        )
        .await?
        .get(0);
    let cache = harness
        .jetstream
        .get_stream(format!("{}_CACHE", prefix.to_ascii_uppercase()))
        .await
        .context("CACHE stream")?;
    let mut invalidator: async_nats::jetstream::consumer::PullConsumer = cache
        .get_consumer("gateway-cache-invalidator")
        .await
        .map_err(|e| anyhow::anyhow!("the gateway's invalidation consumer: {e}"))?;
    let info = invalidator.info().await?;
    status.invalidations_pending = info.num_pending + info.num_ack_pending as u64;
    status.dlq = dlq_count(harness).await?;
    Ok(status)
}

/// The transaction stream holding `subject` (shards spread over several streams).
async fn stream_of(
    harness: &Harness,
    subject: &str,
) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    let name = harness
        .jetstream
        .stream_by_subject(subject)
        .await
        .with_context(|| format!("the stream of {subject}"))?;
    harness
        .jetstream
        .get_stream(&name)
        .await
        .with_context(|| format!("stream {name}"))
}

async fn dlq_count(harness: &Harness) -> anyhow::Result<u64> {
    let subject = format!("{}.txn.v1.dlq", harness.pipeline.prefix);
    let stream = stream_of(harness, &subject).await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: subject,
            ..Default::default()
        })
        .await?;
    Ok(consumer.cached_info().num_pending)
}

/// Polls until everything caught up, restarting any role that died on its own meanwhile.
pub async fn settle(
    harness: &mut Harness,
    files: Files,
    poison: usize,
    deadline: Duration,
) -> anyhow::Result<Status> {
    let until = Instant::now() + deadline;
    loop {
        harness.pipeline.supervise();
        let last_error = match status(harness).await {
            Ok(status) if status.done(files, poison) => return Ok(status),
            Ok(status) => status.describe(files, poison),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= until {
            anyhow::bail!("the pipeline did not settle within {deadline:?}: {last_error}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
