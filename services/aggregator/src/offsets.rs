//! Shard ownership and offsets in `shard_offsets`: the epoch (fencing token) this instance
//! acquired, and the last stream sequence applied.

use crate::error::AggregatorError;

/// What this instance holds for one shard after acquiring it.
#[derive(Debug, Clone, Copy)]
pub struct ShardLease {
    pub shard: u32,
    /// Fencing token: a flush commits only while the row still carries it.
    pub epoch: i64,
    /// Messages at or below this stream sequence are already applied.
    pub applied_seq: u64,
    /// Flushes committed under this lease.
    pub commits: u32,
}

/// Takes ownership of a shard by bumping its epoch. Any older owner's next flush fails its
/// fence check, rolls back and stops, so two instances can never both apply a batch.
pub async fn acquire(
    client: &deadpool_postgres::Client,
    shard: u32,
    instance: &str,
) -> Result<ShardLease, AggregatorError> {
    let row = client
        .query_one(
            "INSERT INTO shard_offsets (shard, epoch, owner) VALUES ($1, 1, $2)
             ON CONFLICT (shard) DO UPDATE SET epoch = shard_offsets.epoch + 1, owner = excluded.owner
             RETURNING epoch, stream_seq",
            &[&(shard as i32), &instance],
        )
        .await?;
    let epoch: i64 = row.get(0);
    let applied: i64 = row.get(1);
    Ok(ShardLease {
        shard,
        epoch,
        applied_seq: applied.max(0) as u64,
        commits: 0,
    })
}

/// The stored offset of a shard, without taking ownership (for `--until-idle` and freshness).
pub async fn applied_seq(
    client: &deadpool_postgres::Client,
    shard: u32,
) -> Result<u64, AggregatorError> {
    let row = client
        .query_opt(
            "SELECT stream_seq FROM shard_offsets WHERE shard = $1",
            &[&(shard as i32)],
        )
        .await?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
}
