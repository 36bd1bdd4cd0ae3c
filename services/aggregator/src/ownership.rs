//! Taking a shard: bump the epoch (the fence), refuse a stream that is behind the stored
//! offset, and decide whether the consumer must be rewound to the first unapplied message.

use crate::consumer::{consumer_name, ShardContext};
use crate::error::AggregatorError;
use crate::offsets::{self, ShardLease};
use async_nats::jetstream::{self, consumer};

/// What taking the shard found.
pub enum Ownership {
    /// Nothing was delivered between the consumer's ack floor and this message, so no earlier
    /// owner holds unacknowledged deliveries and stream order is intact: consume on.
    InOrder(ShardLease),
    /// Messages delivered to an earlier owner (or an earlier loop of this process) and never
    /// acked come back only after `ack_wait`, *after* newer ones. Folding the newer ones first
    /// would move the offset past them and their redelivery would be skipped as applied: lost.
    /// So the consumer is rewound to the first unapplied message (server 2.14+
    /// `CONSUMER.RESET`) and consumed in stream order.
    NeedsRewind(ShardLease),
    /// The stream ends below the stored offset (rolled back or recreated).
    Refused,
}

/// Acquires the shard for the message with consumer delivery sequence `delivery`.
pub async fn acquire(
    context: &ShardContext,
    database: &deadpool_postgres::Client,
    consumer: &consumer::PullConsumer,
    shard: u32,
    delivery: u64,
) -> Result<Ownership, AggregatorError> {
    let lease = offsets::acquire(database, shard, &context.settings.instance).await?;
    if let Some(refusal) = stream_behind_offset(context, shard, lease.applied_seq).await? {
        tracing::error!(shard, error = %refusal, "refusing shard");
        return Ok(Ownership::Refused);
    }
    if crate::retention::refuse_on_gap(context, database, shard, lease.applied_seq).await? {
        return Ok(Ownership::Refused);
    }
    tracing::info!(
        shard,
        epoch = lease.epoch,
        applied_seq = lease.applied_seq,
        "acquired shard"
    );
    let floor = consumer
        .get_info()
        .await
        .map_err(|e| AggregatorError::Fetch {
            shard,
            reason: e.to_string(),
        })?
        .ack_floor;
    if delivery == floor.consumer_sequence + 1 && floor.stream_sequence <= lease.applied_seq {
        Ok(Ownership::InOrder(lease))
    } else {
        Ok(Ownership::NeedsRewind(lease))
    }
}

/// Rewinds the shard's durable consumer so the next delivery is `next_seq` (or the first
/// message of the shard after it): `$JS.API.CONSUMER.RESET.<stream>.<consumer>`.
pub async fn reset_consumer(
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
        "CONSUMER.RESET.{}.{}",
        context.subjects.txn_stream_of(shard),
        consumer_name(shard)
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
    let consumer_error = |e: &dyn std::fmt::Display| AggregatorError::Consumer {
        shard,
        reason: e.to_string(),
    };
    let mut stream = context
        .jetstream
        .get_stream(context.subjects.txn_stream_of(shard))
        .await
        .map_err(|e| consumer_error(&e))?;
    let info = stream.info().await.map_err(|e| consumer_error(&e))?;
    let stream_last = info.state.last_sequence;
    Ok(
        (stream_last < stored).then(|| AggregatorError::StreamBehindOffset {
            shard,
            stream: context.subjects.txn_stream_of(shard),
            stream_last,
            stored,
        }),
    )
}
