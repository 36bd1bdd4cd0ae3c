//! `altdata recover-shard`: recovery from a retention gap ([`crate::retention`]). With ingest
//! stopped (every file finished), the shard is taken (its epoch bumped, which fences any other
//! owner), its aggregates are rebuilt from the identity record (`altdata_facts::rebuild_shard`)
//! and its offset moved to the stream's last message, all in one transaction with a cache
//! invalidation for everything rebuilt. Every message still in the stream is in the identity
//! record already, so nothing after the offset is missed.

use crate::config::AggregatorSettings;
use crate::consumer::ShardContext;
use crate::error::AggregatorError;
use crate::offsets;
use altdata_common::connect;
use altdata_domain::{shard_of, Category};
use altdata_proto::v1::CacheInvalidation;
use altdata_proto::{Message, SCHEMA_VERSION};
use chrono::NaiveDate;
use std::sync::Arc;
use tokio::sync::Notify;

/// What a recovery did.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub shard: u32,
    pub from: NaiveDate,
    pub merchants: usize,
    pub rebuilt: altdata_facts::Rebuilt,
    pub offset: u64,
}

/// Rebuilds `shard` from the identity record from `from` on (default: the earliest day of the
/// rows of the files the gap covers).
pub async fn recover_shard(
    settings: AggregatorSettings,
    shard: u32,
    from: Option<NaiveDate>,
) -> Result<Recovery, AggregatorError> {
    let pool = connect::postgres_pool(&settings.connections).await?;
    let client = connect::nats(&settings.connections.nats_url).await?;
    let jetstream = async_nats::jetstream::new(client);
    let subjects = settings.connections.subjects();
    let shard_count = settings.connections.shard_count;
    let mut database = pool.get().await?;
    let unfinished = database
        .query_opt(
            "SELECT path FROM ingest_files WHERE status = 'processing' LIMIT 1",
            &[],
        )
        .await?;
    if let Some(row) = unfinished {
        let path: String = row.get(0);
        return Err(AggregatorError::Recovery(format!(
            "ingest is not idle ({path} is being processed): stop ingest and let it finish or \
             fail its files, then recover"
        )));
    }
    let context = ShardContext {
        settings: Arc::new(settings),
        pool: pool.clone(),
        jetstream: jetstream.clone(),
        subjects: subjects.clone(),
        relay_wake: Arc::new(Notify::new()),
    };
    let lease = offsets::acquire(&database, shard, &context.settings.instance).await?;
    let gap =
        crate::retention::expired_unapplied(&context, &database, shard, lease.applied_seq).await?;
    let mut stream = jetstream
        .get_stream(subjects.txn_stream_of(shard))
        .await
        .map_err(|e| AggregatorError::Recovery(e.to_string()))?;
    let last_seq = stream
        .info()
        .await
        .map_err(|e| AggregatorError::Recovery(e.to_string()))?
        .state
        .last_sequence;
    let from = match from {
        Some(day) => day,
        None => earliest_day(&database, gap.as_ref().map_or(&[][..], |g| &g.files)).await?,
    };
    let merchants: Vec<i64> = database
        .query(
            "SELECT id FROM dim_merchants
             UNION SELECT DISTINCT merchant_id FROM txn_identity WHERE merchant_id IS NOT NULL
             UNION SELECT DISTINCT merchant_id FROM unmapped_transactions WHERE merchant_id IS NOT NULL",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get::<_, i64>(0))
        .filter(|&id| shard_of(id, shard_count) == shard)
        .collect();
    let today = chrono::Utc::now().date_naive();
    database
        .execute("SELECT ensure_daily_partitions($1, $2)", &[&from, &today])
        .await?;
    let transaction = database.transaction().await?;
    let rebuilt = altdata_facts::rebuild_shard(&transaction, &merchants, from).await?;
    altdata_facts::rebuild_shard_panel(&transaction, shard, &merchants, from).await?;
    let moved = transaction
        .execute(
            "UPDATE shard_offsets SET stream_seq = $2, last_commit_at = now()
             WHERE shard = $1 AND epoch = $3",
            &[&(shard as i32), &(last_seq as i64), &lease.epoch],
        )
        .await?;
    if moved != 1 {
        return Err(AggregatorError::Recovery(format!(
            "shard {shard} was taken by another instance during recovery; stop the aggregators \
             owning it and recover again"
        )));
    }
    let invalidation = CacheInvalidation {
        schema_version: SCHEMA_VERSION,
        merchant_ids: merchants.clone(),
        categories: Category::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        regions: Vec::new(),
        first_date: altdata_domain::date_to_epoch_days(from),
        last_date: altdata_domain::date_to_epoch_days(today),
        committed_at_ms: chrono::Utc::now().timestamp_millis(),
        cause: "recovery".to_owned(),
    };
    transaction
        .execute(
            "INSERT INTO outbox (kind, payload) VALUES ('cache_invalidation', $1)",
            &[&invalidation.encode_to_vec()],
        )
        .await?;
    transaction.commit().await?;
    metrics::gauge!("altdata_aggregator_retention_gap", "shard" => shard.to_string()).set(0.0);
    tracing::info!(shard, %from, merchants = merchants.len(), ?rebuilt, offset = last_seq, "shard recovered from the identity record");
    Ok(Recovery {
        shard,
        from,
        merchants: merchants.len(),
        rebuilt,
        offset: last_seq,
    })
}

/// The earliest day of the rows the gap's files delivered (a week back without any).
async fn earliest_day(
    database: &deadpool_postgres::Client,
    files: &[String],
) -> Result<NaiveDate, AggregatorError> {
    let earliest: Option<NaiveDate> = database
        .query_one(
            "SELECT min(i.metric_date) FROM txn_identity i
             JOIN ingest_files f ON f.id = i.file_id WHERE f.path = ANY($1)",
            &[&files],
        )
        .await?
        .get(0);
    Ok(earliest.unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Duration::days(7)))
}
