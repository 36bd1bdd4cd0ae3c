//! The retention guard: events that expired from the stream (its `max_age`, 7 days by
//! default) before this shard applied them are lost to the stream. A shard that finds such a
//! gap stops loudly instead of skipping it: readiness fails, `altdata_aggregator_retention_gap`
//! says which shard, the log says which stream sequences were lost and which files they came
//! from; `altdata recover-shard` (`altdata_facts::rebuild_shard`) rebuilds the shard's
//! aggregates from the identity record.

use crate::consumer::ShardContext;
use crate::error::AggregatorError;
use chrono::{DateTime, Utc};

/// What expired before it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionGap {
    /// Stream sequences that may have held this shard's events, inclusive.
    pub lost_from: u64,
    pub lost_to: u64,
    /// Files finished while the lost events were published.
    pub files: Vec<String>,
}

/// Whether the shard must stop: logs the gap and raises `altdata_aggregator_retention_gap`
/// when there is one.
pub async fn refuse_on_gap(
    context: &ShardContext,
    database: &deadpool_postgres::Client,
    shard: u32,
    applied_seq: u64,
) -> Result<bool, AggregatorError> {
    let Some(gap) = expired_unapplied(context, database, shard, applied_seq).await? else {
        return Ok(false);
    };
    metrics::gauge!("altdata_aggregator_retention_gap", "shard" => shard.to_string()).set(1.0);
    tracing::error!(
        shard,
        lost_from = gap.lost_from,
        lost_to = gap.lost_to,
        files = ?gap.files,
        "refusing shard: events expired from the stream before they were applied; re-ingesting \
         cannot bring them back (the identity record takes them for duplicates): stop ingest, \
         then run `altdata recover-shard --shard {shard}`, which rebuilds the shard's aggregates \
         from the identity record (docs/RELIABILITY.md)"
    );
    Ok(true)
}

/// The gap when the stream no longer holds every message after the shard's stored offset, the
/// oldest message it still holds is newer than the shard's last commit, and a file delivered
/// in between sent this shard an event (the identity record says which merchants it did):
/// what was published between that commit and that message is gone, and the shard never saw it.
pub async fn expired_unapplied(
    context: &ShardContext,
    database: &deadpool_postgres::Client,
    shard: u32,
    applied_seq: u64,
) -> Result<Option<RetentionGap>, AggregatorError> {
    let consumer_error = |e: &dyn std::fmt::Display| AggregatorError::Consumer {
        shard,
        reason: e.to_string(),
    };
    let mut stream = context
        .jetstream
        .get_stream(context.subjects.txn_stream_of(shard))
        .await
        .map_err(|e| consumer_error(&e))?;
    let state = stream
        .info()
        .await
        .map_err(|e| consumer_error(&e))?
        .state
        .clone();
    if state.first_sequence <= applied_seq + 1 {
        return Ok(None);
    }
    let row = database
        .query_one(
            "SELECT (SELECT last_commit_at FROM shard_offsets WHERE shard = $1),
                    (SELECT max(last_commit_at) FROM shard_offsets)",
            &[&(shard as i32)],
        )
        .await?;
    let last_commit: Option<DateTime<Utc>> = row.get(0);
    // An empty stream reports no first timestamp (year 1): everything it had is gone, so the
    // oldest kept message is "now".
    let first_kept: DateTime<Utc> = if state.messages == 0 {
        Utc::now()
    } else {
        DateTime::from_timestamp(
            state.first_timestamp.unix_timestamp(),
            state.first_timestamp.nanosecond(),
        )
        .unwrap_or_default()
    };
    if last_commit.is_some_and(|at| at >= first_kept) {
        // The shard committed after the oldest message still kept: what expired was older
        // than its last commit, so it was applied or was not this shard's.
        return Ok(None);
    }
    let files = database
        .query(
            "SELECT path FROM ingest_files
             WHERE ($1::timestamptz IS NULL OR finished_at >= $1) AND started_at <= $2
             ORDER BY started_at",
            &[&last_commit, &first_kept],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Only a gap if one of those files sent this shard an event (what expired may all have
    // been other shards', say for a shard that has never had any).
    let merchants = database
        .query(
            "SELECT DISTINCT i.merchant_id FROM txn_identity i
             JOIN ingest_files f ON f.id = i.file_id
             WHERE i.merchant_id IS NOT NULL
               AND ($1::timestamptz IS NULL OR f.finished_at >= $1) AND f.started_at <= $2",
            &[&last_commit, &first_kept],
        )
        .await?;
    let shard_count = context.settings.connections.shard_count;
    let sent_here = merchants
        .iter()
        .any(|row| altdata_domain::shard_of(row.get(0), shard_count) == shard);
    Ok(sent_here.then_some(RetentionGap {
        lost_from: applied_seq + 1,
        lost_to: state.first_sequence - 1,
        files,
    }))
}
