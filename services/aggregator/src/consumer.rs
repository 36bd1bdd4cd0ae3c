//! One shard's consume loop: receive → (acquire or rewind) → classify → apply (fold, skip or
//! dead-letter) → flush → commit → ack.
//!
//! Ack policy: the consumer uses `AckPolicy::All`, and the last message of a window is
//! double-acked only after the flush transaction committed, so a crash before the commit
//! redelivers the window and a crash after it finds the window's sequence already stored in
//! `shard_offsets` and skips it. A message at or below the stored offset is acked at once
//! (already applied). Poison is published to the DLQ and then terminated.

use crate::config::AggregatorSettings;
use crate::error::AggregatorError;
use crate::flush::{ensure_partitions, flush_window, FlushError};
use crate::metrics::ShardMetrics;
use crate::offsets::ShardLease;
use crate::ownership::{self, Ownership};
use crate::window::Window;
use altdata_common::connect::Subjects;
use altdata_common::Shutdown;
use altdata_proto::v1::TransactionBatch;
use altdata_proto::{Message as _, SCHEMA_VERSION};
use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often an idle shard checks that the stream still holds what it has not applied.
const RETENTION_CHECK: Duration = Duration::from_secs(60);

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
        .get_stream(subjects.txn_stream_of(shard))
        .await
        .map_err(|e| consumer_error(e.to_string()))?;
    let name = consumer_name(shard);
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

/// The durable consumer's name for a shard.
pub fn consumer_name(shard: u32) -> String {
    format!("aggregate-shard-{shard}")
}

/// What the loop waits for next. (The message is not boxed: that would allocate once per
/// message to save a move.)
#[allow(clippy::large_enum_variant)]
enum Next {
    Shutdown,
    FlushDue,
    /// No message within the idle poll.
    Idle,
    Message(jetstream::Message),
}

/// What was done with one message, deciding its acknowledgement.
enum MessageOutcome {
    /// Its events folded into the window: acked with the window after commit.
    Folded { events: u64 },
    /// At or below the stored offset: already applied, acked now.
    AlreadyApplied,
    /// Part of the current window already (a redelivery while it is open): acked with it.
    InWindow,
    /// Undecodable or of an unknown version: in the DLQ, terminated.
    DeadLettered,
}

/// The loop, top to bottom: each step is a method of [`ShardLoop`].
async fn consume(
    context: &ShardContext,
    shard: u32,
    shutdown: &Shutdown,
    metrics: &ShardMetrics,
) -> Result<ShardExit, AggregatorError> {
    let mut shard_loop = ShardLoop::open(context, shard, metrics).await?;
    // Checked before any message arrives: a shard whose every event expired receives none.
    if shard_loop.retention_gap().await? {
        return Ok(ShardExit::Refused);
    }
    let mut gap_checked = Instant::now();
    loop {
        let message = match shard_loop.next(shutdown).await? {
            Next::Shutdown => return shard_loop.stop().await,
            Next::FlushDue => {
                if shard_loop.flush_and_ack().await? == Flushed::Fenced {
                    return Ok(ShardExit::Fenced);
                }
                continue;
            }
            Next::Idle => {
                // An idle shard may be idle because its events expired unseen.
                if gap_checked.elapsed() >= RETENTION_CHECK {
                    if shard_loop.retention_gap().await? {
                        return Ok(ShardExit::Refused);
                    }
                    gap_checked = Instant::now();
                }
                if context.settings.until_idle
                    && shard_loop.window.is_empty()
                    && shard_loop.caught_up().await?
                {
                    return Ok(ShardExit::Idle);
                }
                continue;
            }
            Next::Message(message) => message,
        };
        let stream_seq = shard_loop.check_delivery(&message)?;
        match shard_loop.own().await? {
            Owned::Yes => {}
            Owned::Rewound => continue,
            Owned::Refused => return Ok(ShardExit::Refused),
        }
        let outcome = shard_loop.classify(&message, stream_seq).await?;
        shard_loop.acknowledge(outcome, message).await?;
        if shard_loop.window.events() >= context.settings.window_max_events
            && shard_loop.flush_and_ack().await? == Flushed::Fenced
        {
            return Ok(ShardExit::Fenced);
        }
    }
}

/// Whether a flush committed or lost the fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    Committed,
    Fenced,
}

/// Whether this loop may fold the message it received.
enum Owned {
    Yes,
    /// The consumer was rewound to the first unapplied message: receive again.
    Rewound,
    /// The stream is behind the stored offset.
    Refused,
}

/// One shard's consume loop state: the consumer and its pull stream, the database
/// connection, the lease (once acquired), the open window and the delivery sequence seen.
struct ShardLoop<'a> {
    context: &'a ShardContext,
    shard: u32,
    metrics: &'a ShardMetrics,
    consumer: consumer::PullConsumer,
    /// `None` only while a rewind waits for the old pulls to expire.
    messages: Option<consumer::pull::Stream>,
    database: deadpool_postgres::Client,
    lease: Option<ShardLease>,
    window: Window,
    /// The newest folded message: acked (for the whole window) after its commit.
    last_message: Option<jetstream::Message>,
    known_months: HashSet<(i32, u32)>,
    /// The consumer's delivery sequence of the last message received: every delivery to this
    /// consumer goes to its one pinned client, so a jump means deliveries were lost in flight
    /// (a NATS restart, a dropped subscription) and would come back only after `ack_wait`,
    /// behind newer messages.
    last_delivery: Option<u64>,
}

impl<'a> ShardLoop<'a> {
    async fn open(
        context: &'a ShardContext,
        shard: u32,
        metrics: &'a ShardMetrics,
    ) -> Result<ShardLoop<'a>, AggregatorError> {
        let consumer = shard_consumer(
            &context.jetstream,
            &context.subjects,
            &context.settings,
            shard,
        )
        .await?;
        let messages = open_messages(&consumer, &context.settings, shard).await?;
        Ok(ShardLoop {
            context,
            shard,
            metrics,
            consumer,
            messages: Some(messages),
            database: context.pool.get().await?,
            lease: None,
            window: Window::default(),
            last_message: None,
            known_months: HashSet::new(),
            last_delivery: None,
        })
    }

    fn fetch_error(&self, error: &dyn std::fmt::Display) -> AggregatorError {
        AggregatorError::Fetch {
            shard: self.shard,
            reason: error.to_string(),
        }
    }

    /// Waits for shutdown, the window's flush deadline or the next message.
    async fn next(&mut self, shutdown: &Shutdown) -> Result<Next, AggregatorError> {
        let flush_due = self
            .window
            .opened_at
            .map(|opened| opened + self.context.settings.window_max_age);
        let idle_poll = Duration::from_millis(250);
        let Some(messages) = self.messages.as_mut() else {
            return Err(self.fetch_error(&"the message stream is closed"));
        };
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(Next::Shutdown),
            _ = sleep_until(flush_due), if flush_due.is_some() => return Ok(Next::FlushDue),
            next = tokio::time::timeout(idle_poll, messages.next()) => next,
        };
        match next {
            Err(_elapsed) => Ok(Next::Idle),
            Ok(None) => Err(self.fetch_error(&"the message stream ended")),
            Ok(Some(Err(error))) => Err(self.fetch_error(&error)),
            Ok(Some(Ok(message))) => Ok(Next::Message(message)),
        }
    }

    /// Shutdown: flush what the window holds, ack it, stop.
    async fn stop(&mut self) -> Result<ShardExit, AggregatorError> {
        if self.lease.is_some()
            && !self.window.is_empty()
            && self.flush_and_ack().await? == Flushed::Fenced
        {
            return Ok(ShardExit::Fenced);
        }
        Ok(ShardExit::Stopped)
    }

    /// The message's stream sequence, after checking that no delivery was skipped: nothing
    /// past a gap may be folded, so a gap restarts the consumer, which drops the window
    /// (unacked, so nothing is lost) and rewinds to the stored offset.
    fn check_delivery(&mut self, message: &jetstream::Message) -> Result<u64, AggregatorError> {
        let info = message.info().map_err(|e| self.fetch_error(&e))?;
        self.metrics.lag.set(info.pending as f64);
        let delivery = info.consumer_sequence;
        if let Some(last) = self.last_delivery.filter(|last| delivery != last + 1) {
            return Err(self.fetch_error(&format!(
                "delivery sequence jumped from {last} to {delivery}: resynchronising from the stored offset"
            )));
        }
        self.last_delivery = Some(delivery);
        Ok(info.stream_sequence)
    }

    /// Takes ownership on the first message (so a standby that is never pinned never disturbs
    /// the active owner's epoch), rewinding the consumer when earlier deliveries may be
    /// outstanding.
    async fn own(&mut self) -> Result<Owned, AggregatorError> {
        if self.lease.is_some() {
            return Ok(Owned::Yes);
        }
        let delivery = self.last_delivery.unwrap_or(0);
        match ownership::acquire(
            self.context,
            &self.database,
            &self.consumer,
            self.shard,
            delivery,
        )
        .await?
        {
            Ownership::Refused => Ok(Owned::Refused),
            Ownership::InOrder(lease) => {
                self.lease = Some(lease);
                Ok(Owned::Yes)
            }
            Ownership::NeedsRewind(lease) => {
                // What was buffered is dropped (unacked), and the pulls still waiting at the
                // server must expire before the reset: the server would otherwise answer them,
                // after the reset, into the dropped subscription, and those deliveries too
                // would come back only after `ack_wait`.
                self.messages = None;
                let pull_expires = pull_expiry(&self.context.settings);
                tokio::time::sleep(pull_expires + Duration::from_millis(250)).await;
                ownership::reset_consumer(self.context, self.shard, lease.applied_seq + 1).await?;
                self.messages =
                    Some(open_messages(&self.consumer, &self.context.settings, self.shard).await?);
                self.lease = Some(lease);
                // A reset restarts the delivery sequence at 1: if our first delivery is not 1,
                // the first ones went to another client and must not be folded past.
                self.last_delivery = Some(0);
                Ok(Owned::Rewound)
            }
        }
    }

    /// Decides what the message is (already applied, in the window, an event, poison) and
    /// folds or dead-letters it.
    async fn classify(
        &mut self,
        message: &jetstream::Message,
        stream_seq: u64,
    ) -> Result<MessageOutcome, AggregatorError> {
        let applied_seq = self.lease.map_or(0, |lease| lease.applied_seq);
        if stream_seq <= applied_seq {
            return Ok(MessageOutcome::AlreadyApplied);
        }
        if stream_seq <= self.window.last_stream_seq {
            return Ok(MessageOutcome::InWindow);
        }
        match decode(&message.payload) {
            Ok(batch) => {
                for event in &batch.events {
                    self.window.fold(event, stream_seq);
                }
                Ok(MessageOutcome::Folded {
                    events: batch.events.len() as u64,
                })
            }
            Err(reason) => {
                dead_letter(self.context, self.shard, message, &reason).await?;
                self.window.cover(stream_seq);
                Ok(MessageOutcome::DeadLettered)
            }
        }
    }

    /// Acknowledges per the policy at the top of this file.
    async fn acknowledge(
        &mut self,
        outcome: MessageOutcome,
        message: jetstream::Message,
    ) -> Result<(), AggregatorError> {
        let ack_error = |e: &dyn std::fmt::Display| AggregatorError::Ack {
            shard: self.shard,
            reason: e.to_string(),
        };
        match outcome {
            MessageOutcome::Folded { events } => {
                self.metrics.events.increment(events);
                self.last_message = Some(message);
            }
            MessageOutcome::AlreadyApplied => {
                self.metrics.skipped_redeliveries.increment(1);
                // Already committed: acknowledging it now is safe and stops redelivery.
                message.ack().await.map_err(|e| ack_error(&e))?;
            }
            MessageOutcome::InWindow => self.metrics.skipped_redeliveries.increment(1),
            MessageOutcome::DeadLettered => {
                self.metrics.dead_lettered.increment(1);
                message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(|e| ack_error(&e))?;
            }
        }
        Ok(())
    }

    /// Flushes the window in one transaction, then acks its last message.
    async fn flush_and_ack(&mut self) -> Result<Flushed, AggregatorError> {
        let Some(lease) = self.lease.as_mut() else {
            return Ok(Flushed::Committed);
        };
        let shard = self.shard;
        let started = Instant::now();
        ensure_partitions(&self.database, &self.window, &mut self.known_months).await?;
        let mut backoff = Duration::from_millis(100);
        let outcome = loop {
            match flush_window(&mut self.database, shard, lease.epoch, &self.window).await {
                Ok(outcome) => break outcome,
                Err(FlushError::Fenced { epoch, .. }) => {
                    self.metrics.fence_rejections.increment(1);
                    tracing::error!(shard, epoch, "flush rejected by the fence: another instance owns this shard; stopping this shard without acking");
                    return Ok(Flushed::Fenced);
                }
                Err(FlushError::Other(error)) if error.retryable() => {
                    // The window is kept: retrying commits exactly what would have committed.
                    tracing::warn!(shard, error = %error, retry_in_ms = backoff.as_millis() as u64, "flush failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if self.database.is_closed() {
                        self.database = self.context.pool.get().await?;
                    }
                }
                Err(FlushError::Other(error)) => return Err(error),
            }
        };
        #[cfg(feature = "fault-injection")]
        crate::faults::after_commit(&self.context.settings.faults, shard, lease.commits)?;
        // Ack only after commit: a crash before this line redelivers the window, whose
        // sequence is now stored, so the redelivery is skipped rather than counted twice.
        if let Some(message) = self.last_message.take() {
            message
                .double_ack()
                .await
                .map_err(|e| AggregatorError::Ack {
                    shard,
                    reason: e.to_string(),
                })?;
        }
        lease.applied_seq = lease.applied_seq.max(self.window.last_stream_seq);
        lease.commits += 1;
        self.metrics.flush_events.record(outcome.events as f64);
        self.metrics
            .flush_seconds
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            shard,
            events = outcome.events,
            cells = outcome.cells,
            "flushed"
        );
        self.window.clear();
        self.context.relay_wake.notify_one();
        Ok(Flushed::Committed)
    }

    /// Whether events of this shard expired before it applied them ([`crate::retention`]).
    async fn retention_gap(&self) -> Result<bool, AggregatorError> {
        let applied = match self.lease {
            Some(lease) => lease.applied_seq,
            None => crate::offsets::applied_seq(&self.database, self.shard).await?,
        };
        crate::retention::refuse_on_gap(self.context, &self.database, self.shard, applied).await
    }

    async fn caught_up(&self) -> Result<bool, AggregatorError> {
        let mut consumer = self.consumer.clone();
        let info = consumer.info().await.map_err(|e| self.fetch_error(&e))?;
        Ok(info.num_pending == 0 && info.num_ack_pending == 0)
    }
}

/// Pulls expire well inside the pin's lifetime so an idle owner keeps its pin.
fn pull_expiry(settings: &AggregatorSettings) -> Duration {
    settings.pin_ttl.min(Duration::from_secs(5)) / 2
}

/// The pinned pull stream of the shard's consumer: at start and again after a rewind.
async fn open_messages(
    consumer: &consumer::PullConsumer,
    settings: &AggregatorSettings,
    shard: u32,
) -> Result<consumer::pull::Stream, AggregatorError> {
    consumer
        .stream()
        .group(PRIORITY_GROUP)
        .max_messages_per_batch(settings.pull_batch)
        .expires(pull_expiry(settings))
        .messages()
        .await
        .map_err(|e| AggregatorError::Fetch {
            shard,
            reason: e.to_string(),
        })
}

/// A batch this build can fold whole: its version and every event's are this build's. One
/// unreadable event makes the whole message poison, so a batch is applied entirely or not.
pub fn decode(payload: &[u8]) -> Result<TransactionBatch, String> {
    let batch = TransactionBatch::decode(payload)
        .map_err(|e| format!("undecodable TransactionBatch: {e}"))?;
    let unsupported = |version: u32| {
        format!("unsupported schema_version {version} (this build reads {SCHEMA_VERSION})")
    };
    if batch.schema_version != SCHEMA_VERSION {
        return Err(unsupported(batch.schema_version));
    }
    if let Some(event) = batch
        .events
        .iter()
        .find(|e| e.schema_version != SCHEMA_VERSION)
    {
        return Err(format!(
            "an event of the batch: {}",
            unsupported(event.schema_version)
        ));
    }
    Ok(batch)
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
    crate::offsets::applied_seq(&client, shard).await
}
