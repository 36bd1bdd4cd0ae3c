//! One shard's consume loop: decode → fold into the window → flush → commit → ack.
//!
//! Ack policy: the consumer uses `AckPolicy::All`, and the last message of a batch is
//! double-acked only after the flush transaction committed, so a crash before the commit
//! redelivers the batch and a crash after it finds the batch's sequence already stored in
//! `shard_offsets` and skips it. Poison is published to the DLQ and then terminated.

use crate::config::AggregatorSettings;
use crate::error::AggregatorError;
use crate::flush::{ensure_partitions, flush_window, FlushError};
use crate::metrics::ShardMetrics;
use crate::offsets::{self, ShardLease};
use crate::window::Window;
use altdata_common::connect::Subjects;
use altdata_common::Shutdown;
use altdata_proto::v1::TransactionEvent;
use altdata_proto::{Message as _, SCHEMA_VERSION};
use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The priority group every shard consumer pins one client in.
pub const PRIORITY_GROUP: &str = "aggregate";

/// Header carrying why a message was dead-lettered.
pub const DLQ_REASON_HEADER: &str = "Altdata-Dlq-Reason";

/// How a shard worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardExit {
    /// Shutdown was requested; the window was flushed and acked.
    Stopped,
    /// `--until-idle`: nothing left to consume.
    Idle,
    /// A newer instance owns the shard; this one stopped without applying anything.
    Fenced,
    /// The stream is behind the stored offset; the shard was refused.
    Refused,
}

/// What was done with one message, deciding its acknowledgement.
enum MessageOutcome {
    /// Folded into the window: acked with the batch after commit.
    Folded,
    /// At or below the stored offset: already applied, acked now.
    AlreadyApplied,
    /// Part of the current window already (a redelivery while it is open): acked with it.
    InWindow,
    /// Undecodable or of an unknown version: in the DLQ, terminated.
    DeadLettered,
}

/// Everything a shard worker needs, shared by all workers of an instance.
pub struct ShardContext {
    pub settings: Arc<AggregatorSettings>,
    pub pool: deadpool_postgres::Pool,
    pub jetstream: jetstream::Context,
    pub subjects: Subjects,
    pub relay_wake: Arc<Notify>,
}

/// Runs one shard until shutdown, idle (with `until_idle`), fence loss or refusal.
/// Transient errors restart the consumer after a pause; the window is never lost unacked
/// data, because nothing is acknowledged before it commits.
pub async fn run_shard(
    context: Arc<ShardContext>,
    shard: u32,
    shutdown: Shutdown,
) -> Result<ShardExit, AggregatorError> {
    let metrics = ShardMetrics::new(shard);
    let mut backoff = Duration::from_millis(200);
    loop {
        match consume(&context, shard, &shutdown, &metrics).await {
            Ok(exit) => return Ok(exit),
            Err(error) if error.retryable() && !shutdown.is_triggered() => {
                tracing::warn!(shard, error = %error, retry_in_ms = backoff.as_millis() as u64, "shard consumer failed, restarting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return Ok(ShardExit::Stopped),
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Creates (or finds) the shard's durable pull consumer in the pinned-client priority group.
pub async fn shard_consumer(
    jetstream: &jetstream::Context,
    subjects: &Subjects,
    settings: &AggregatorSettings,
    shard: u32,
) -> Result<consumer::PullConsumer, AggregatorError> {
    let consumer_error = |reason: String| AggregatorError::Consumer { shard, reason };
    let stream = jetstream
        .get_stream(subjects.txn_stream())
        .await
        .map_err(|e| consumer_error(e.to_string()))?;
    let name = format!("aggregate-shard-{shard}");
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: subjects.txn_shard(shard),
        ack_policy: consumer::AckPolicy::All,
        ack_wait: settings.ack_wait,
        deliver_policy: consumer::DeliverPolicy::All,
        // A full window plus the pulls in flight may be unacknowledged at once.
        max_ack_pending: (settings.window_max_events + 4 * settings.pull_batch) as i64,
        priority_policy: consumer::PriorityPolicy::PinnedClient,
        priority_groups: vec![PRIORITY_GROUP.to_owned()],
        priority_timeout: settings.pin_ttl,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| consumer_error(e.to_string()))
}

async fn consume(
    context: &ShardContext,
    shard: u32,
    shutdown: &Shutdown,
    metrics: &ShardMetrics,
) -> Result<ShardExit, AggregatorError> {
    let settings = &context.settings;
    let consumer = shard_consumer(&context.jetstream, &context.subjects, settings, shard).await?;
    let fetch_error = |e: &dyn std::fmt::Display| AggregatorError::Fetch {
        shard,
        reason: e.to_string(),
    };
    // Pulls expire well inside the pin's lifetime so an idle owner keeps its pin.
    let pull_expires = settings.pin_ttl.min(Duration::from_secs(5)) / 2;
    // One way to open the pinned pull stream: at start and again after a rewind.
    let open_messages = || {
        consumer
            .stream()
            .group(PRIORITY_GROUP)
            .max_messages_per_batch(settings.pull_batch)
            .expires(pull_expires)
            .messages()
    };
    let mut messages = open_messages().await.map_err(|e| fetch_error(&e))?;

    let mut database = context.pool.get().await?;
    let mut lease: Option<ShardLease> = None;
    let mut window = Window::default();
    let mut last_message: Option<jetstream::Message> = None;
    let mut known_months = HashSet::new();
    // The consumer's delivery sequence of the last message received: every delivery to this
    // consumer goes to its one pinned client, so a jump means deliveries were lost in flight
    // (a NATS restart, a dropped subscription) and would come back only after `ack_wait`,
    // behind newer messages.
    let mut last_delivery: Option<u64> = None;
    let idle_poll = Duration::from_millis(250);

    loop {
        let flush_due = window
            .opened_at
            .map(|opened| opened + settings.window_max_age);
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            _ = sleep_until(flush_due), if flush_due.is_some() => Some(None),
            next = tokio::time::timeout(idle_poll, messages.next()) => Some(Some(next)),
        };
        let next = match next {
            // Shutdown: flush what we have, ack it, stop.
            None => {
                if let Some(lease) = lease.as_mut() {
                    if !window.is_empty() {
                        let exit = flush_and_ack(
                            context,
                            &mut database,
                            lease,
                            &mut window,
                            &mut last_message,
                            &mut known_months,
                            metrics,
                        )
                        .await?;
                        if exit.is_some() {
                            return Ok(ShardExit::Fenced);
                        }
                    }
                }
                return Ok(ShardExit::Stopped);
            }
            // The window is old enough: flush it.
            Some(None) => {
                if let Some(current) = lease.as_mut() {
                    if flush_and_ack(
                        context,
                        &mut database,
                        current,
                        &mut window,
                        &mut last_message,
                        &mut known_months,
                        metrics,
                    )
                    .await?
                    .is_some()
                    {
                        return Ok(ShardExit::Fenced);
                    }
                }
                continue;
            }
            Some(Some(next)) => next,
        };
        let message = match next {
            Err(_elapsed) => {
                if settings.until_idle && window.is_empty() && caught_up(&consumer).await? {
                    return Ok(ShardExit::Idle);
                }
                continue;
            }
            Ok(None) => return Err(fetch_error(&"the message stream ended")),
            Ok(Some(Err(error))) => return Err(fetch_error(&error)),
            Ok(Some(Ok(message))) => message,
        };
        let info = message.info().map_err(|e| fetch_error(&e))?;
        let stream_seq = info.stream_sequence;
        metrics.lag.set(info.pending as f64);
        let delivery = info.consumer_sequence;
        if let Some(last) = last_delivery.filter(|last| delivery != last + 1) {
            // Nothing past the gap may be folded. Restarting the consumer drops the window
            // (unacked, so nothing is lost) and the next lease rewinds to the stored offset.
            return Err(fetch_error(&format!(
                "delivery sequence jumped from {last} to {delivery}: resynchronising from the stored offset"
            )));
        }
        last_delivery = Some(delivery);

        // Ownership is taken on the first message, so a standby that is never pinned never
        // disturbs the active owner's epoch.
        let current = match lease.as_mut() {
            Some(current) => current,
            None => {
                let acquired = offsets::acquire(&database, shard, &settings.instance).await?;
                if let Some(refusal) =
                    stream_behind_offset(context, shard, acquired.applied_seq).await?
                {
                    tracing::error!(shard, error = %refusal, "refusing shard");
                    return Ok(ShardExit::Refused);
                }
                tracing::info!(
                    shard,
                    epoch = acquired.epoch,
                    applied_seq = acquired.applied_seq,
                    "acquired shard"
                );
                // The common case (a first start, a restart after a clean stop): nothing was
                // delivered between the consumer's ack floor and this message, so no earlier
                // owner holds unacknowledged deliveries and stream order is intact. Consume on
                // without a rewind (which costs a pull expiry and a pin hand-over).
                let floor = consumer
                    .get_info()
                    .await
                    .map_err(|e| fetch_error(&e))?
                    .ack_floor;
                if delivery == floor.consumer_sequence + 1
                    && floor.stream_sequence <= acquired.applied_seq
                {
                    lease.insert(acquired)
                } else {
                    // Messages delivered to an earlier owner (or to an earlier consume loop of
                    // this process) and never acked come back only after `ack_wait`, *after*
                    // newer ones. Folding the newer ones first would move the offset past them
                    // and their redelivery would be skipped as applied: lost. So a new owner
                    // rewinds the consumer to the first unapplied message (server 2.14+
                    // CONSUMER.RESET), drops what it had buffered, and consumes in stream order.
                    // Its pull requests still waiting at the server must expire first: the server
                    // would otherwise answer them, after the reset, into the dropped
                    // subscription, and those deliveries too would come back only after ack_wait.
                    drop(messages);
                    tokio::time::sleep(pull_expires + Duration::from_millis(250)).await;
                    reset_consumer(context, shard, acquired.applied_seq + 1).await?;
                    messages = open_messages().await.map_err(|e| fetch_error(&e))?;
                    lease = Some(acquired);
                    // A reset restarts the delivery sequence at 1: if our first delivery is not
                    // 1, the first ones went to another client (still pinned, or a pull request
                    // of ours the server answered late) and must not be folded past.
                    last_delivery = Some(0);
                    continue;
                }
            }
        };

        let outcome = if stream_seq <= current.applied_seq {
            MessageOutcome::AlreadyApplied
        } else if stream_seq <= window.last_stream_seq {
            MessageOutcome::InWindow
        } else {
            match decode(&message.payload) {
                Ok(event) => {
                    window.fold(&event, stream_seq);
                    MessageOutcome::Folded
                }
                Err(reason) => {
                    dead_letter(context, shard, &message, &reason).await?;
                    window.cover(stream_seq);
                    MessageOutcome::DeadLettered
                }
            }
        };
        match outcome {
            MessageOutcome::Folded => {
                metrics.events.increment(1);
                last_message = Some(message);
            }
            MessageOutcome::AlreadyApplied => {
                metrics.skipped_redeliveries.increment(1);
                // Already committed: acknowledging it now is safe and stops redelivery.
                message.ack().await.map_err(|e| AggregatorError::Ack {
                    shard,
                    reason: e.to_string(),
                })?;
            }
            MessageOutcome::InWindow => metrics.skipped_redeliveries.increment(1),
            MessageOutcome::DeadLettered => {
                metrics.dead_lettered.increment(1);
                message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(|e| AggregatorError::Ack {
                        shard,
                        reason: e.to_string(),
                    })?;
            }
        }
        if window.events >= settings.window_max_events
            && flush_and_ack(
                context,
                &mut database,
                current,
                &mut window,
                &mut last_message,
                &mut known_months,
                metrics,
            )
            .await?
            .is_some()
        {
            return Ok(ShardExit::Fenced);
        }
    }
}

/// Flushes the window in one transaction, then acks its last message. Returns `Some` when
/// the fence rejected the flush: nothing was applied and nothing is acked.
async fn flush_and_ack(
    context: &ShardContext,
    database: &mut deadpool_postgres::Client,
    lease: &mut ShardLease,
    window: &mut Window,
    last_message: &mut Option<jetstream::Message>,
    known_months: &mut HashSet<(i32, u32)>,
    metrics: &ShardMetrics,
) -> Result<Option<ShardExit>, AggregatorError> {
    let shard = lease.shard;
    let started = Instant::now();
    ensure_partitions(database, window, known_months).await?;
    let mut backoff = Duration::from_millis(100);
    let outcome = loop {
        match flush_window(database, shard, lease.epoch, window).await {
            Ok(_)
                if context
                    .settings
                    .faults
                    .crash_after_commits
                    .is_some_and(|n| lease.commits + 1 >= n) =>
            {
                return Err(AggregatorError::InjectedCrash { shard });
            }
            Ok(outcome) => break outcome,
            Err(FlushError::Fenced { epoch, .. }) => {
                metrics.fence_rejections.increment(1);
                tracing::error!(shard, epoch, "flush rejected by the fence: another instance owns this shard; stopping this shard without acking");
                return Ok(Some(ShardExit::Fenced));
            }
            Err(FlushError::Other(error)) if error.retryable() => {
                // The window is kept: retrying commits exactly what would have committed.
                tracing::warn!(shard, error = %error, retry_in_ms = backoff.as_millis() as u64, "flush failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                if database.is_closed() {
                    *database = context.pool.get().await?;
                }
            }
            Err(FlushError::Other(error)) => return Err(error),
        }
    };
    // Ack only after commit: a crash before this line redelivers the batch, whose sequence
    // is now stored, so the redelivery is skipped rather than counted twice.
    if let Some(message) = last_message.take() {
        message
            .double_ack()
            .await
            .map_err(|e| AggregatorError::Ack {
                shard,
                reason: e.to_string(),
            })?;
    }
    lease.applied_seq = lease.applied_seq.max(window.last_stream_seq);
    lease.commits += 1;
    metrics.flush_events.record(outcome.events as f64);
    metrics
        .flush_seconds
        .record(started.elapsed().as_secs_f64());
    tracing::debug!(
        shard,
        events = outcome.events,
        cells = outcome.cells,
        "flushed"
    );
    window.clear();
    context.relay_wake.notify_one();
    Ok(None)
}

fn decode(payload: &[u8]) -> Result<TransactionEvent, String> {
    let event = TransactionEvent::decode(payload)
        .map_err(|e| format!("undecodable TransactionEvent: {e}"))?;
    if event.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema_version {} (this build reads {SCHEMA_VERSION})",
            event.schema_version
        ));
    }
    Ok(event)
}

async fn dead_letter(
    context: &ShardContext,
    shard: u32,
    message: &jetstream::Message,
    reason: &str,
) -> Result<(), AggregatorError> {
    let dlq_error = |e: &dyn std::fmt::Display| AggregatorError::DeadLetter {
        shard,
        reason: e.to_string(),
    };
    let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(DLQ_REASON_HEADER, reason);
    headers.insert("Altdata-Original-Subject", message.subject.as_str());
    headers.insert("Altdata-Original-Seq", seq.to_string().as_str());
    headers.insert("Nats-Msg-Id", format!("dlq-{shard}-{seq}").as_str());
    tracing::warn!(shard, seq, reason, "dead-lettering message");
    context
        .jetstream
        .publish_with_headers(context.subjects.txn_dlq(), headers, message.payload.clone())
        .await
        .map_err(|e| dlq_error(&e))?
        .await
        .map_err(|e| dlq_error(&e))?;
    Ok(())
}

/// Rewinds the shard's durable consumer so the next delivery is `next_seq` (or the first
/// message of the shard after it): `$JS.API.CONSUMER.RESET.<stream>.<consumer>`.
async fn reset_consumer(
    context: &ShardContext,
    shard: u32,
    next_seq: u64,
) -> Result<(), AggregatorError> {
    #[derive(serde::Serialize)]
    struct ResetRequest {
        seq: u64,
    }
    #[derive(serde::Deserialize)]
    struct ResetReply {
        #[serde(default)]
        reset_seq: u64,
    }
    // A Fetch error is retryable: the worker restarts its consumer and tries again.
    let consumer_error = |reason: String| AggregatorError::Fetch { shard, reason };
    let subject = format!(
        "CONSUMER.RESET.{}.aggregate-shard-{shard}",
        context.subjects.txn_stream()
    );
    let reply: jetstream::response::Response<ResetReply> = context
        .jetstream
        .request(
            subject,
            &ResetRequest {
                seq: next_seq.max(1),
            },
        )
        .await
        .map_err(|e| consumer_error(format!("consumer reset: {e}")))?;
    match reply {
        jetstream::response::Response::Ok(reply) => {
            tracing::info!(
                shard,
                next_seq,
                reset_seq = reply.reset_seq,
                "consumer rewound to the first unapplied message"
            );
            Ok(())
        }
        jetstream::response::Response::Err { error } => {
            Err(consumer_error(format!("consumer reset refused: {error}")))
        }
    }
}

/// `Some(error)` when the stream's last sequence is below the stored offset.
async fn stream_behind_offset(
    context: &ShardContext,
    shard: u32,
    stored: u64,
) -> Result<Option<AggregatorError>, AggregatorError> {
    let mut stream = context
        .jetstream
        .get_stream(context.subjects.txn_stream())
        .await
        .map_err(|e| AggregatorError::Consumer {
            shard,
            reason: e.to_string(),
        })?;
    let info = stream.info().await.map_err(|e| AggregatorError::Consumer {
        shard,
        reason: e.to_string(),
    })?;
    let stream_last = info.state.last_sequence;
    Ok(
        (stream_last < stored).then(|| AggregatorError::StreamBehindOffset {
            shard,
            stream: context.subjects.txn_stream(),
            stream_last,
            stored,
        }),
    )
}

async fn caught_up(consumer: &consumer::PullConsumer) -> Result<bool, AggregatorError> {
    let mut consumer = consumer.clone();
    let info = consumer.info().await.map_err(|e| AggregatorError::Fetch {
        shard: u32::MAX,
        reason: e.to_string(),
    })?;
    Ok(info.num_pending == 0 && info.num_ack_pending == 0)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// The stored offset, for callers that only observe (freshness, tests).
pub async fn stored_offset(
    pool: &deadpool_postgres::Pool,
    shard: u32,
) -> Result<u64, AggregatorError> {
    let client = pool.get().await?;
    offsets::applied_seq(&client, shard).await
}
